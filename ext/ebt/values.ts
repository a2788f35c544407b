/**
 * Option values shared by the ebtables modules and the rule parser:
 * ethertype names (/etc/ethertypes, as libxtables' getethertype.c reads
 * it), MACs with masks and their well-known names (libxtables
 * `xtables_parse_mac_and_mask` / `xtables_print_well_known_mac_and_mask`),
 * the standard verdict names (`ebt_fill_target`), IP addresses with masks
 * and port and number ranges as libebt_ip/ip6/stp take and print them, and
 * ICMP/IGMP types (`ebt_parse_icmp` / `ebt_print_icmp_type` of libxt_icmp.h).
 */
import { fail } from '../../core/errors.js';
import type { EbtVerdict, MacMask } from '../../core/ebt-ast.js';
import { etherAton, formatMac, maskToCidr, formatAddr } from '../../core/addr.js';
import { parseAddrMask } from '../hostmask.js';
import { cStrtoul } from '../numbers.js';
import { parseRange, typeByName, type IcmpName } from '../match/icmp.js';

/** /etc/ethertypes as netbase ships it: name, number, aliases (getethertypebynumber returns the first). */
const ETHERTYPES: ReadonlyArray<readonly [name: string, num: number, aliases?: readonly string[]]> = [
  ['IPv4', 0x0800, ['ip', 'ip4']], ['X25', 0x0805], ['ARP', 0x0806, ['ether-arp']], ['FR_ARP', 0x0808],
  ['BPQ', 0x08ff], ['TRILL', 0x22f3], ['L2-IS-IS', 0x22f4], ['TEB', 0x6558], ['RAW_FR', 0x6559],
  ['RARP', 0x8035], ['ATALK', 0x809b], ['AARP', 0x80f3], ['802_1Q', 0x8100, ['8021q', '1q', '802.1q', 'dot1q']],
  ['IPX', 0x8137], ['NetBEUI', 0x8191], ['IPv6', 0x86dd, ['ip6']], ['PPP', 0x880b], ['MPLS', 0x8847],
  ['MPLS_MULTI', 0x8848], ['ATMMPOA', 0x884c], ['PPP_DISC', 0x8863], ['PPP_SES', 0x8864], ['ATMFATE', 0x8884],
  ['EAPOL', 0x888e], ['S-TAG', 0x88a8], ['EAP_PREAUTH', 0x88c7], ['LLDP', 0x88cc], ['MACSEC', 0x88e5],
  ['PBB', 0x88e7, ['macinmac']], ['MVRP', 0x88f5], ['PTP', 0x88f7], ['FCOE', 0x8906], ['FIP', 0x8914],
  ['ROCE', 0x8915], ['LoWPAN', 0xa0ed],
];

/** getethertypebyname(): a name or alias, case-insensitive. */
export function ethertypeByName(s: string): number | undefined {
  const l = s.toLowerCase();
  for (const [name, num, aliases] of ETHERTYPES) {
    if (name.toLowerCase() === l || aliases?.some((a) => a.toLowerCase() === l)) return num;
  }
  return undefined;
}

/** getethertypebynumber(): the first name of a number. */
export function ethertypeName(n: number): string | undefined {
  for (const [name, num] of ETHERTYPES) if (num === n) return name;
  return undefined;
}

/** `strtol(s, &end, base)` over the whole string; undefined when anything is left or nothing was read. */
export function wholeNumber(s: string, base: number): number | undefined {
  if (s === '' || /^\s/.test(s)) return undefined;
  const r = cStrtoul(s, base);
  if (r.end === 0 || r.end !== s.length || s[0] === '-') return undefined;
  return r.value > 0xffffffffn ? undefined : Number(r.value);
}

const ONES = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const MULTICAST_MASK = Uint8Array.of(1, 0, 0, 0, 0, 0);
const WELL_KNOWN: ReadonlyArray<readonly [string, Uint8Array, Uint8Array]> = [
  ['Unicast', new Uint8Array(6), MULTICAST_MASK],
  ['Multicast', Uint8Array.of(1, 0, 0, 0, 0, 0), MULTICAST_MASK],
  ['Broadcast', ONES, ONES],
  ['BGA', Uint8Array.of(0x01, 0x80, 0xc2, 0, 0, 0), ONES],
];

/**
 * `xtables_parse_mac_and_mask()`: Unicast, Multicast, Broadcast, BGA
 * (case-insensitive), or `mac[/mask]` (ether_aton); the address is ANDed
 * with the mask. Undefined for a malformed value.
 */
export function parseMacMask(s: string): MacMask | undefined {
  for (const [name, addr, mask] of WELL_KNOWN) {
    if (name.toLowerCase() === s.toLowerCase()) return { addr: addr.slice(), mask: mask.slice() };
  }
  const slash = s.indexOf('/');
  const addr = etherAton(slash < 0 ? s : s.slice(0, slash));
  const mask = slash < 0 ? ONES.slice() : etherAton(s.slice(slash + 1));
  if (!addr || !mask) return undefined;
  for (let i = 0; i < 6; i++) addr[i]! &= mask[i]!;
  return { addr, mask };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
}

/** `xtables_print_mac_and_mask()`: the address, `/mask` unless it is all ones. */
export function formatMacMask(m: MacMask): string {
  return bytesEqual(m.mask, ONES) ? formatMac(m.addr) : `${formatMac(m.addr)}/${formatMac(m.mask)}`;
}

/** `xtables_print_well_known_mac_and_mask()`: a name where one fits, else the address and mask. */
export function formatWellKnownMac(m: MacMask): string {
  for (const [name, addr, mask] of WELL_KNOWN) if (bytesEqual(m.addr, addr) && bytesEqual(m.mask, mask)) return name;
  return formatMacMask(m);
}

/** A MAC option value (`--arp-mac-src`, `--stp-root-addr`), with ebtables' message on error. */
export function macMaskOption(s: string, what: string): MacMask {
  const m = parseMacMask(s);
  if (!m) fail(`Problem with specified ${what} mac '${s}'`);
  return m;
}

/** A single MAC (`--to-dst`, `--arpreply-mac`): ether_aton, no mask. */
export function macOption(s: string, what: string): Uint8Array {
  const a = etherAton(s);
  if (!a) fail(`Problem with specified ${what} '${s}'`);
  return a;
}

export const EBT_VERDICTS: readonly EbtVerdict[] = ['ACCEPT', 'DROP', 'CONTINUE', 'RETURN'];

/** `ebt_fill_target()`: a standard verdict name for `--*-target` options. */
export function parseVerdict(s: string, opt: string): EbtVerdict {
  const v = EBT_VERDICTS.find((n) => n === s);
  if (!v) fail(`Illegal target name '${s}'`, 'value');
  void opt;
  return v;
}

/** An IPv4/IPv6 address with mask as libebt_ip/ip6/arp take it (`addr[/len|/mask]`, ANDed). */
export function parseIpMask(family: 'ip' | 'ip6', s: string): { addr: Uint8Array; mask: Uint8Array } {
  return parseAddrMask(family, s);
}

/** The address and mask as ebtables prints them: no mask when it is all ones, `/len`, or a dotted mask. */
export function formatIpMask(family: 'ip' | 'ip6', am: { addr: Uint8Array; mask: Uint8Array }): string {
  const cidr = maskToCidr(am.mask);
  if (cidr === am.mask.length * 8) return formatAddr(family, am.addr);
  return formatAddr(family, am.addr) + '/' + (cidr >= 0 ? String(cidr) : formatAddr(family, am.mask));
}

/**
 * `n`, `n:m`, `:m`, `n:` and `:` with each bound in [0, max] (libebt_stp's
 * parse_range, strtoul base 0); `lo > hi` is an error.
 */
export function parseNumRange(s: string, max: number, base = 0): [number, number] | undefined {
  const colon = s.indexOf(':');
  const num = (t: string): number | undefined => {
    const v = wholeNumber(t, base);
    return v === undefined || v > max ? undefined : v;
  };
  if (colon < 0) {
    const v = num(s);
    return v === undefined ? undefined : [v, v];
  }
  const a = s.slice(0, colon);
  const b = s.slice(colon + 1);
  const lo = a === '' ? 0 : num(a);
  const hi = b === '' ? max : num(b);
  if (lo === undefined || hi === undefined || lo > hi) return undefined;
  return [lo, hi];
}

/** A range as ebtables prints it: `n` or `n:m`. */
export function formatRange(r: readonly [number, number]): string {
  return r[0] === r[1] ? String(r[0]) : `${r[0]}:${r[1]}`;
}

/** An ICMP or IGMP type name with its type and code range (libxt_icmp.h, libebt_ip.c igmp_types). */
export type TypeName = IcmpName;

/** `ebt_parse_icmp()`: a name prefix (case-insensitive, unambiguous) or `type[:type][/code[:code]]`. */
export function parseIcmpTypeCode(names: readonly TypeName[], s: string, what: string): { type: [number, number]; code: [number, number] } {
  const match = typeByName(names, s, what);
  if (match) return { type: [match[1], match[1]], code: [match[2], match[3]] };
  const t = parseRange(s);
  if (!t) fail(`Unknown ${what} type \`${s}'`);
  if (t.rest === '') return { type: [t.lo, t.hi], code: [0, 0xff] };
  if (t.rest[0] !== '/') fail(`Unknown ${what} type \`${s}'`);
  const c = parseRange(t.rest.slice(1));
  if (!c || c.rest !== '') fail(`Unknown ${what} code \`${s}'`);
  return { type: [t.lo, t.hi], code: [c.lo, c.hi] };
}

/** `ebt_print_icmp_type()`: the first name with that type (and code range), else the numbers. */
export function formatIcmpTypeCode(names: readonly TypeName[], type: readonly [number, number], code: readonly [number, number] | undefined): string {
  let s: string;
  if (type[0] !== type[1]) {
    s = `${type[0]}:${type[1]}`;
  } else {
    for (const n of names) {
      if (n[1] !== type[0]) continue;
      if (!code || (n[2] === code[0] && n[3] === code[1])) return n[0];
    }
    s = String(type[0]);
  }
  if (!code) return s;
  return s + (code[0] === code[1] ? `/${code[0]}` : `/${code[0]}:${code[1]}`);
}

/** The refusal of the faces nfvm does not run for the bridge family yet. */
