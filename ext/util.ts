/**
 * Value parsers and printers shared by the extensions, each a port of the
 * libxtables helper named in its comment, so that the accepted spellings and
 * the printed forms are iptables' own.
 */
import { fail } from '../core/errors.js';
import type { Family } from '../core/ast.js';
import { parseIPv4, parseIPv6, sharedPrefixMask, maskToCidr, formatAddr } from '../core/addr.js';

/**
 * `strtoumax(s, &end, base)` as glibc does it: leading blanks, an optional
 * `+`, `0x` for hex and a leading `0` for octal when base is 0. Returns the
 * value and the index where parsing stopped (`end === start` when nothing
 * was read). Values are bigint so u64 options stay exact; `overflow` is set
 * above 2^64-1 (ERANGE).
 */
export function strtoumax(s: string, base = 0, start = 0): { value: bigint; end: number; overflow: boolean } {
  let i = start;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n')) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') {
    neg = s[i] === '-';
    i++;
  }
  let b = base;
  if ((b === 0 || b === 16) && s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && hexDigit(s.charCodeAt(i + 2)) >= 0) {
    i += 2;
    b = 16;
  } else if (b === 0) {
    b = s[i] === '0' ? 8 : 10;
  }
  const digitsStart = i;
  let v = 0n;
  const B = BigInt(b);
  while (i < s.length) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0 || d >= b) break;
    v = v * B + BigInt(d);
    i++;
  }
  if (i === digitsStart) return { value: 0n, end: start, overflow: false };
  const overflow = v > 0xffffffffffffffffn;
  if (neg) v = (-v) & 0xffffffffffffffffn;
  return { value: v, end: i, overflow };
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * `xtables_strtoul_base()`: a whole-string unsigned number in [min, max]
 * (max 0 means no upper bound beyond u64); a leading `-` is refused.
 * Returns undefined when the text is not such a number.
 */
export function strtoulWhole(s: string, min: bigint, max: bigint, base = 0): bigint | undefined {
  let p = 0;
  while (p < s.length && (s[p] === ' ' || s[p] === '\t')) p++;
  if (s[p] === '-') return undefined;
  const r = strtoumax(s, base);
  if (r.end === 0 && r.value === 0n && !/^\s*\+?0/.test(s)) return undefined;
  if (r.end !== s.length || r.overflow) return undefined;
  if (r.value < min || (max !== 0n && r.value > max)) return undefined;
  return r.value;
}

/**
 * `xtables_strtoui` with end pointer: parses a number prefix and returns
 * it with the rest, or undefined when no number starts the text.
 */
export function strtoulPrefix(s: string, min: bigint, max: bigint, base = 0): { value: bigint; rest: string } | undefined {
  let p = 0;
  while (p < s.length && (s[p] === ' ' || s[p] === '\t')) p++;
  if (s[p] === '-') return undefined;
  const r = strtoumax(s, base);
  if (r.end === 0) return undefined;
  if (r.overflow || r.value < min || (max !== 0n && r.value > max)) return undefined;
  return { value: r.value, rest: s.slice(r.end) };
}

/** A whole unsigned number as a JS number (for values up to 2^32-1). */
export function parseUint(s: string, min: number, max: number, what: string): number {
  const v = strtoulWhole(s, BigInt(min), BigInt(max));
  if (v === undefined) fail(`${what} \`${s}' is invalid`);
  return Number(v);
}

/** `0x%x` as iptables prints marks and masks. */
export function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16);
}

// ---------------------------------------------------------------------------
// Protocols

/**
 * `xtables_chain_protos[]` (libxtables/xtables.c, 1.8.13): the names
 * iptables knows without /etc/protocols; iptables-save prints these names
 * and the number for every other protocol.
 */
const CHAIN_PROTOS: ReadonlyArray<readonly [string, number]> = [
  ['tcp', 6],
  ['sctp', 132],
  ['udp', 17],
  ['udplite', 136],
  ['icmp', 1],
  ['ipv6-icmp', 58],
  ['icmpv6', 58],
  ['esp', 50],
  ['ah', 51],
  // iptables 1.8.8 "libxtables: Boost rule dump times" put mobility-header first;
  // 1.8.11 "libxtables: Add dccp and ipcomp to xtables_chain_protos"
  ['mobility-header', 135],
  ['ipv6-mh', 135],
  ['mh', 135],
  ['dccp', 33],
  ['ipcomp', 108],
  ['all', 0],
];

/**
 * Further protocol names accepted on input, as a stock /etc/protocols
 * (netbase) spells them; iptables resolves them with getprotobyname().
 */
const ETC_PROTOCOLS: ReadonlyArray<readonly [string, number]> = [
  ['ip', 0], ['hopopt', 0], ['igmp', 2], ['ggp', 3], ['ipencap', 4], ['st', 5], ['egp', 8], ['igp', 9],
  ['pup', 12], ['hmp', 20], ['xns-idp', 22], ['rdp', 27], ['iso-tp4', 29], ['dccp', 33], ['xtp', 36],
  ['ddp', 37], ['idpr-cmtp', 38], ['ipv6', 41], ['ipv6-route', 43], ['ipv6-frag', 44], ['idrp', 45],
  ['rsvp', 46], ['gre', 47], ['skip', 57], ['ipv6-nonxt', 59], ['ipv6-opts', 60], ['rspf', 73],
  ['vmtp', 81], ['eigrp', 88], ['ospf', 89], ['ax.25', 93], ['ipip', 94], ['etherip', 97], ['encap', 98],
  ['pim', 103], ['ipcomp', 108], ['vrrp', 112], ['l2tp', 115], ['isis', 124], ['fc', 133],
  ['manet', 138], ['hip', 139], ['shim6', 140], ['wesp', 141], ['rohc', 142], ['ethernet', 143],
  ['mptcp', 262],
];

/** Protocol name (case-insensitive, as iptables lowercases it) or number → number. */
export function parseProtocol(s: string): number {
  const lower = s.toLowerCase();
  const n = strtoulWhole(lower, 0n, 255n);
  if (n !== undefined) return Number(n);
  for (const [name, num] of CHAIN_PROTOS) if (name === lower) return num;
  for (const [name, num] of ETC_PROTOCOLS) if (name === lower && num <= 255) return num;
  return fail(`unknown protocol "${s}" specified`);
}

/** `proto_to_name(proto, nolookup=1)`: the built-in name or undefined. */
export function protoName(p: number): string | undefined {
  for (const [name, num] of CHAIN_PROTOS) if (num === p) return name;
  return undefined;
}

/** A protocol as iptables-save prints it: the built-in name or the number. */
export function protoToString(p: number): string {
  return protoName(p) ?? String(p);
}

// ---------------------------------------------------------------------------
// Ports

/**
 * Well-known service names accepted where iptables calls getservbyname().
 * iptables-save always prints numbers, so these matter only on input.
 */
const SERVICES: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  tcpmux: 1, echo: 7, discard: 9, systat: 11, daytime: 13, netstat: 15, qotd: 17, chargen: 19,
  'ftp-data': 20, ftp: 21, ssh: 22, telnet: 23, smtp: 25, time: 37, whois: 43, tacacs: 49,
  domain: 53, bootps: 67, bootpc: 68, tftp: 69, gopher: 70, finger: 79, http: 80, www: 80,
  kerberos: 88, pop3: 110, sunrpc: 111, auth: 113, ident: 113, nntp: 119, ntp: 123,
  'netbios-ns': 137, 'netbios-dgm': 138, 'netbios-ssn': 139, imap2: 143, imap: 143, snmp: 161,
  'snmp-trap': 162, bgp: 179, irc: 194, ldap: 389, https: 443, 'microsoft-ds': 445, isakmp: 500,
  syslog: 514, printer: 515, submission: 587, ldaps: 636, rsync: 873, imaps: 993, pop3s: 995,
  socks: 1080, openvpn: 1194, 'ms-sql-s': 1433, l2tp: 1701, pptp: 1723, radius: 1812,
  'radius-acct': 1813, nfs: 2049, mysql: 3306, 'ms-wbt-server': 3389, 'ipsec-nat-t': 4500,
  sip: 5060, postgresql: 5432, x11: 6000, 'http-alt': 8080, webcache: 8080,
});

/** `xtables_parse_port()`: a service name or a number 0..65535. */
export function parsePort(s: string): number {
  const named = SERVICES[s];
  if (named !== undefined) return named;
  const v = strtoulWhole(s, 0n, 65535n);
  if (v === undefined) fail(`invalid port/service \`${s}' specified`);
  return Number(v);
}

/**
 * `a`, `a:b`, `:b`, `a:` and `:` as tcp/udp/conntrack port ranges take them
 * (parse_tcp_ports): an empty bound is 0 or 65535.
 */
export function parsePortRange(s: string): [number, number] {
  const i = s.indexOf(':');
  if (i < 0) {
    const p = parsePort(s);
    return [p, p];
  }
  const a = s.slice(0, i);
  const b = s.slice(i + 1);
  const lo = a.length ? parsePort(a) : 0;
  const hi = b.length ? parsePort(b) : 0xffff;
  if (lo > hi) fail('invalid portrange (min > max)');
  return [lo, hi];
}

// ---------------------------------------------------------------------------
// Addresses

/** xtables' numeric_to_ipaddr / numeric_to_ip6addr: IPv4 takes 1 to 4 dotted parts ("10.1" is 10.1.0.0). */
export function parseAddr(family: Family, s: string): Uint8Array | undefined {
  return family === 'ip' ? parseIPv4(s, 1) : parseIPv6(s);
}

/**
 * `xtables_ipparse_any` / `xtables_ip6parse_any` for one address: `addr`,
 * `addr/len` or `addr/mask`; the address is ANDed with the mask (as
 * iptables does before handing it to the kernel). Hostnames are not
 * resolved (nfvm never does DNS), except `localhost`.
 */
export function parseAddrMask(family: Family, s: string): { addr: Uint8Array; mask: Uint8Array } {
  const bytes = family === 'ip' ? 4 : 16;
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  let mask: Uint8Array;
  if (slash < 0) {
    mask = sharedPrefixMask(bytes * 8, bytes);
  } else {
    const m = s.slice(slash + 1);
    const asAddr = family === 'ip' && m.includes('.') ? parseIPv4(m, 1) : family === 'ip6' && m.includes(':') ? parseIPv6(m) : undefined;
    if (asAddr) {
      mask = asAddr;
    } else {
      const len = strtoulWhole(m, 0n, BigInt(bytes * 8), 10);
      if (len === undefined) fail(`invalid mask \`${m}' specified`);
      mask = sharedPrefixMask(Number(len), bytes);
    }
  }
  let addr: Uint8Array | undefined;
  if (host === 'localhost' || host === 'localhost.localdomain' || (family === 'ip6' && host === 'ip6-localhost')) {
    addr = family === 'ip' ? Uint8Array.of(127, 0, 0, 1) : parseIPv6('::1');
  } else if (host === '' && family === 'ip') {
    addr = undefined;
  } else {
    addr = parseAddr(family, host);
  }
  if (!addr) fail(`host/network \`${host}' not found`);
  for (let i = 0; i < bytes; i++) addr[i]! &= mask[i]!;
  return { addr, mask };
}

/** `a/len`, or `a/dotted-mask` for a non-contiguous mask, as iptables-save prints addresses. */
export function formatAddrMask(family: Family, am: { addr: Uint8Array; mask: Uint8Array }): string {
  const cidr = maskToCidr(am.mask);
  return formatAddr(family, am.addr) + '/' + (cidr >= 0 ? String(cidr) : formatAddr(family, am.mask));
}

/**
 * `xtables_parse_mark_mask()` (XTTYPE_MARKMASK32): `value[/mask]`, each a
 * u32 in any C base; the mask defaults to 0xffffffff. Returns uint32 values.
 */
export function parseMarkMask(s: string, ext: string, opt: string): [number, number] {
  const bad = (): never => fail(`${ext}: bad integer value for option "--${opt}", or out of range.`);
  const a = strtoulPrefix(s, 0n, 0xffffffffn);
  if (!a) return bad();
  let mask = 0xffffffff;
  let rest = a.rest;
  if (rest.startsWith('/')) {
    const b = strtoulPrefix(rest.slice(1), 0n, 0xffffffffn);
    if (!b) return bad();
    mask = Number(b.value);
    rest = b.rest;
  }
  if (rest !== '') return bad();
  return [Number(a.value), mask];
}

/** XTTYPE_UINT32 etc.: a whole number in [min, max] with the x6 error message. */
export function parseUintOpt(s: string, min: number, max: number, ext: string, opt: string): number {
  const v = strtoulWhole(s, BigInt(min), BigInt(max));
  if (v === undefined) fail(`${ext}: bad value for option "--${opt}" near "${s}", or out of range (${min}-${max}).`);
  return Number(v);
}

// ---------------------------------------------------------------------------
// x6 option tables (libxtables/xtoptions.c): the generic checks iptables runs
// from an extension's `struct xt_option_entry[]`, for options that share an
// id under several spellings or exclude each other (`.excl`).

/** One row of an extension's option table, as far as the generic checks need it. */
export interface XtOptEntry {
  readonly name: string;
  readonly id: number;
  /** `.excl`: bit mask (1 << id) of the options this one cannot be combined with. */
  readonly excl?: number;
  /** XTOPT_MAND */
  readonly mand?: boolean;
}

/**
 * The name iptables reports for an option id: getopt hands the id to
 * xtables_option_lookup(), which returns the table's first entry with it
 * (so `--ttl` is reported, and inverted, as `--ttl-eq`).
 */
export function xtOptName(table: readonly XtOptEntry[], id: number): string {
  return table.find((e) => e.id === id)?.name ?? String(id);
}

/**
 * xtables_option_parse()'s double-use test for an option given under a
 * second spelling of the same id; returns the updated xflags.
 */
export function xtOptUse(ext: string, table: readonly XtOptEntry[], xflags: number, name: string): number {
  const e = table.find((o) => o.name === name);
  if (!e) return xflags;
  const bit = 1 << e.id;
  if (xflags & bit) fail(`${ext}: option "--${xtOptName(table, e.id)}" can only be used once.`, 'option');
  return xflags | bit;
}

/**
 * xtables_options_fcheck(): mandatory options, then `.excl` conflicts,
 * walking the table in order as iptables does (so the message names the
 * option that comes first in the table).
 */
export function xtOptFcheck(ext: string, table: readonly XtOptEntry[], xflags: number): void {
  xtOptFcheckAlso(ext, table, xflags);
}

/** The xflags of the option names given (for xtOptFcheck from a module's `final`). */
export function xtOptFlags(table: readonly XtOptEntry[], seen: ReadonlySet<string>): number {
  let f = 0;
  for (const e of table) if (seen.has(e.name)) f |= 1 << e.id;
  return f;
}

/**
 * XTTYPE_UINT8RC/UINT16RC/UINT32RC/UINT64RC (xtopt_parse_mint): `a`, `a:b`,
 * `:b`, `a:` and `:` with an empty first bound 0 and an empty second bound
 * the type's maximum; every bound in any C base. iptables 1.8.13 also
 * refuses a range whose lower bound exceeds the upper one.
 */
export function parseUintRangeOpt(s: string, lmax: bigint, ext: string, opt: string, maxiter = 2): bigint[] {
  const vals: bigint[] = [];
  let p = 0;
  for (;;) {
    if (vals.length === maxiter) fail(`${ext}: Too many components for option "--${opt}" (max: ${maxiter})`);
    let end: number;
    let v: bigint;
    if (p >= s.length || s[p] === ':') {
      end = p;
      v = vals.length === 1 ? lmax : 0n;
    } else {
      const rest = s.slice(p);
      const r = strtoulPrefix(rest, 0n, lmax);
      if (!r) fail(`${ext}: bad value for option "--${opt}" near "${rest}", or out of range (0-${lmax}).`);
      v = r.value;
      end = s.length - r.rest.length;
      if (end < s.length && s[end] !== ':') fail(`${ext}: Argument to "--${opt}" has unexpected characters near "${s.slice(end)}".`);
    }
    vals.push(v);
    if (end >= s.length) break;
    p = end + 1;
  }
  if (vals.length === 2 && vals[0]! > vals[1]!) fail(`${ext}: range ${vals[0]}:${vals[1]} for option "--${opt}" is reversed (min > max).`);
  return vals;
}

/** `tos_symbol_names[]` (xtoptions.c): the RFC 1349 names XTTYPE_TOSMASK accepts. */
export const TOS_SYMBOLS: ReadonlyArray<readonly [string, number]> = [
  ['Minimize-Delay', 0x10],
  ['Maximize-Throughput', 0x08],
  ['Maximize-Reliability', 0x04],
  ['Minimize-Cost', 0x02],
  ['Normal-Service', 0x00],
];

/**
 * XTTYPE_TOSMASK (xtopt_parse_tosmask): `value[/mask]` numbers (mask
 * default 0xff) or a symbolic name (case-insensitive), whose mask is the
 * option's `.max` (`symMask`: 0x3f for tos revision 1 and TOS revision 1).
 */
export function parseTosMask(s: string, symMask: number): { value: number; mask: number } {
  const a = strtoulPrefix(s, 0n, 0xffn);
  if (a) {
    let mask = 0xff;
    let rest = a.rest;
    if (rest.startsWith('/')) {
      const b = strtoulPrefix(rest.slice(1), 0n, 0xffn);
      if (!b) fail(`Illegal value: "${s}"`);
      mask = Number(b.value);
      rest = b.rest;
    }
    if (rest !== '') fail(`Illegal value: "${s}"`);
    return { value: Number(a.value), mask };
  }
  for (const [name, v] of TOS_SYMBOLS) if (name.toLowerCase() === s.toLowerCase()) return { value: v, mask: symMask };
  return fail(`Symbolic name "${s}" is unknown`);
}

/**
 * `xtables_parse_val_mask()`: `value[/mask]` (u32, any C base, mask
 * default 0xffffffff) or, when `names` is given (an iproute2 map file such
 * as /etc/iproute2/group), a name from it.
 */
export function parseValMask(s: string, ext: string, opt: string, names?: ReadonlyMap<string, number>): [number, number] {
  const byName = (): [number, number] => {
    const v = names!.get(s);
    if (v === undefined) fail(`${ext}: could not map name ${s} to an integer value for option "--${opt}".`);
    return [v, 0xffffffff];
  };
  const badVal = (): never => fail(`${ext}: bad integer value for option "--${opt}", or out of range.`);
  const a = strtoulPrefix(s, 0n, 0xffffffffn);
  if (!a) return names ? byName() : badVal();
  if (a.rest === '') return [Number(a.value), 0xffffffff];
  if (!a.rest.startsWith('/')) {
    if (names) return byName();
    fail(`${ext}: trailing garbage after value for option "--${opt}".`);
  }
  const b = strtoulPrefix(a.rest.slice(1), 0n, 0xffffffffn);
  if (!b) return badVal();
  if (b.rest !== '') fail(`${ext}: trailing garbage after value for option "--${opt}".`);
  return [Number(a.value), Number(b.value)];
}

/**
 * `xtables_service_to_port(name, NULL)` / getservbyname(): a service name
 * only (no numbers), or undefined when the name is unknown.
 */
export function serviceToPort(name: string): number | undefined {
  return SERVICES[name];
}

// ---------------------------------------------------------------------------
// Group C helpers (limit/hashlimit/statistic/time/recent): C library number
// parsing as glibc does it, and xtables_options_fcheck with `.also`.

/** XtOptEntry with `.also` (bit mask of the options this one requires). */
export interface XtOptEntryAlso extends XtOptEntry {
  readonly also?: number;
}

/**
 * xtables_options_fcheck() with xtables_option_fcheck2()'s `.also` test:
 * per table entry, XTOPT_MAND, then for every other id in id order first
 * "also requires", then "cannot be used together with".
 */
export function xtOptFcheckAlso(ext: string, table: readonly XtOptEntryAlso[], xflags: number): void {
  for (const e of table) {
    if (e.mand && !(xflags & (1 << e.id))) fail(`${ext}: option "--${e.name}" must be specified`, 'option');
    if (!(xflags & (1 << e.id))) continue;
    for (let i = 0; i < 32; i++) {
      if (i === e.id) continue;
      const other = table.find((o) => o.id === i);
      if (!other) continue;
      const of = 1 << i;
      if ((e.also ?? 0) & of && !(xflags & of)) fail(`${ext}: option "--${e.name}" also requires "--${other.name}".`, 'option');
      if (!((e.excl ?? 0) & of)) continue;
      if ((xflags & ((1 << e.id) | of)) !== ((1 << e.id) | of)) continue;
      fail(`${ext}: option "--${e.name}" cannot be used together with "--${other.name}".`, 'option');
    }
  }
}

/** C `isspace()` in the C locale. */
export function cIsSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/**
 * glibc `strtoll(s, &end, 10)` (what `atoi`/`atoll` call): leading blanks,
 * a sign, decimal digits; clamped to the i64 range on overflow. `end` is
 * 0 when no digits were read.
 */
export function cStrtoll(s: string): { value: bigint; end: number } {
  let i = 0;
  while (cIsSpace(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') neg = s[i++] === '-';
  const d0 = i;
  let v = 0n;
  while (i < s.length && s[i]! >= '0' && s[i]! <= '9') {
    if (v <= 0x7fffffffffffffffn) v = v * 10n + BigInt(s.charCodeAt(i) - 48);
    i++;
  }
  if (i === d0) return { value: 0n, end: 0 };
  if (neg) v = v > 0x8000000000000000n ? -0x8000000000000000n : -v;
  else if (v > 0x7fffffffffffffffn) v = 0x7fffffffffffffffn;
  return { value: v, end: i };
}

/** glibc `atoi()`: `(int)strtol(s, NULL, 10)` on LP64, as an i32. */
export function cAtoi(s: string): number {
  return Number(BigInt.asIntN(32, cStrtoll(s).value));
}

/**
 * glibc `strtoul(s, &end, base)` on LP64: like strtoumax, but a `-` negates
 * modulo 2^64 and overflow clamps to ULONG_MAX. `end` is the index where
 * parsing stopped (0 when nothing was read).
 */
export function cStrtoul(s: string, base = 10): { value: bigint; end: number } {
  const r = strtoumax(s, base);
  if (r.end === 0) return { value: 0n, end: 0 };
  return { value: r.overflow ? 0xffffffffffffffffn : r.value, end: r.end };
}

/**
 * A protocol as iptables-save (1.8.13) prints `-p`: `proto_to_name(proto, true)`
 * (iptables 1.8.11 "iptables-save: Avoid /etc/protocols lookups"): the
 * xtables_chain_protos name (33 saves as `dccp`, 108 as `ipcomp`), else the
 * number (47 saves as `47`, where 1.8.9 printed the /etc/protocols `gre`).
 */
export function protoSaveName(p: number): string {
  return protoToString(p);
}

/**
 * A string as `xtables_save_string()` prints it: bare when the text
 * is non-empty and only `[A-Za-z0-9_-]`, else double-quoted with `"`, `\` and
 * `'` backslash-escaped.
 */
export function saveString(s: string): string {
  if (s.length > 0 && /^[A-Za-z0-9_-]+$/.test(s)) return s;
  let out = '"';
  for (const c of s) {
    if (c === '"' || c === '\\' || c === "'") out += '\\';
    out += c;
  }
  return out + '"';
}
