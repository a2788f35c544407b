/**
 * icmp and icmp6 matches: iptables `extensions/libipt_icmp.c` and
 * `extensions/libip6t_icmp6.c` (type names and parser in `libxt_icmp.h`),
 * kernel `net/ipv4/netfilter/ip_tables.c` (`icmp_match`, `.proto` =
 * IPPROTO_ICMP) and `net/ipv6/netfilter/ip6_tables.c` (`icmp6_match`,
 * `.proto` = IPPROTO_ICMPV6): the rule needs `-p icmp` / `-p ipv6-icmp`.
 *
 * `--icmp-type` takes a name (any unambiguous case-insensitive prefix of
 * one), `type`, `type/code` or `type/min:max`. The IPv4 match starts as
 * type 0xff ("any"); the IPv6 one as type 0.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulPrefix } from '../numbers.js';
import {
  NFT_BREAK, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ,
} from '../../vm/layout.js';
import { emitCmp, emitPayload, emitRange, emitVerdict, emitXtL4 } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import { headerPointer, type MatchFn } from '../xt.js';

interface IcmpData {
  /** ICMP type; 0xff with codes 0..255 is `any` (IPv4 only). */
  type: number;
  /** Inclusive code range. */
  codeMin: number;
  codeMax: number;
  invert: boolean;
}

/** A type name with its type and code range (libxt_icmp.h icmp_codes[], libebt_ip.c igmp_types[]). */
export type IcmpName = readonly [name: string, type: number, codeMin: number, codeMax: number];

/** libxt_icmp.h icmp_codes[] (aliases included, in table order). */
export const ICMP_NAMES: readonly IcmpName[] = [
  ['any', 0xff, 0, 0xff],
  ['echo-reply', 0, 0, 0xff],
  ['pong', 0, 0, 0xff],
  ['destination-unreachable', 3, 0, 0xff],
  ['network-unreachable', 3, 0, 0],
  ['host-unreachable', 3, 1, 1],
  ['protocol-unreachable', 3, 2, 2],
  ['port-unreachable', 3, 3, 3],
  ['fragmentation-needed', 3, 4, 4],
  ['source-route-failed', 3, 5, 5],
  ['network-unknown', 3, 6, 6],
  ['host-unknown', 3, 7, 7],
  ['network-prohibited', 3, 9, 9],
  ['host-prohibited', 3, 10, 10],
  ['TOS-network-unreachable', 3, 11, 11],
  ['TOS-host-unreachable', 3, 12, 12],
  ['communication-prohibited', 3, 13, 13],
  ['host-precedence-violation', 3, 14, 14],
  ['precedence-cutoff', 3, 15, 15],
  ['source-quench', 4, 0, 0xff],
  ['redirect', 5, 0, 0xff],
  ['network-redirect', 5, 0, 0],
  ['host-redirect', 5, 1, 1],
  ['TOS-network-redirect', 5, 2, 2],
  ['TOS-host-redirect', 5, 3, 3],
  ['echo-request', 8, 0, 0xff],
  ['ping', 8, 0, 0xff],
  ['router-advertisement', 9, 0, 0xff],
  ['router-solicitation', 10, 0, 0xff],
  ['time-exceeded', 11, 0, 0xff],
  ['ttl-exceeded', 11, 0, 0xff],
  ['ttl-zero-during-transit', 11, 0, 0],
  ['ttl-zero-during-reassembly', 11, 1, 1],
  ['parameter-problem', 12, 0, 0xff],
  ['ip-header-bad', 12, 0, 0],
  ['required-option-missing', 12, 1, 1],
  ['timestamp-request', 13, 0, 0xff],
  ['timestamp-reply', 14, 0, 0xff],
  ['address-mask-request', 17, 0, 0xff],
  ['address-mask-reply', 18, 0, 0xff],
];

/** libxt_icmp.h icmpv6_codes[]. */
export const ICMPV6_NAMES: readonly IcmpName[] = [
  ['destination-unreachable', 1, 0, 0xff],
  ['no-route', 1, 0, 0],
  ['communication-prohibited', 1, 1, 1],
  ['beyond-scope', 1, 2, 2],
  ['address-unreachable', 1, 3, 3],
  ['port-unreachable', 1, 4, 4],
  ['failed-policy', 1, 5, 5],
  ['reject-route', 1, 6, 6],
  ['packet-too-big', 2, 0, 0xff],
  ['time-exceeded', 3, 0, 0xff],
  ['ttl-exceeded', 3, 0, 0xff],
  ['ttl-zero-during-transit', 3, 0, 0],
  ['ttl-zero-during-reassembly', 3, 1, 1],
  ['parameter-problem', 4, 0, 0xff],
  ['bad-header', 4, 0, 0],
  ['unknown-header-type', 4, 1, 1],
  ['unknown-option', 4, 2, 2],
  ['echo-request', 128, 0, 0xff],
  ['ping', 128, 0, 0xff],
  ['echo-reply', 129, 0, 0xff],
  ['pong', 129, 0, 0xff],
  ['mld-listener-query', 130, 0, 0xff],
  ['mld-listener-report', 131, 0, 0xff],
  ['mld-listener-done', 132, 0, 0xff],
  ['mld-listener-reduction', 132, 0, 0xff],
  ['router-solicitation', 133, 0, 0xff],
  ['router-advertisement', 134, 0, 0xff],
  ['neighbour-solicitation', 135, 0, 0xff],
  ['neighbor-solicitation', 135, 0, 0xff],
  ['neighbour-advertisement', 136, 0, 0xff],
  ['neighbor-advertisement', 136, 0, 0xff],
  ['redirect', 137, 0, 0xff],
];

/** `parse_range()`: `n` or `n:m`, each 0..255 in any C base; the rest of the text. */
export function parseRange(s: string): { lo: number; hi: number; rest: string } | undefined {
  const a = strtoulPrefix(s, 0n, 255n);
  if (!a) return undefined;
  let hi = Number(a.value);
  let rest = a.rest;
  if (rest.startsWith(':')) {
    const b = strtoulPrefix(rest.slice(1), 0n, 255n);
    if (!b) return undefined;
    hi = Number(b.value);
    rest = b.rest;
  }
  return { lo: Number(a.value), hi, rest };
}

/** Each table's names in lower case, made once per table. */
const LOWER = new WeakMap<readonly IcmpName[], readonly string[]>();

/**
 * The name `s` is an unambiguous prefix of, compared without case
 * (strncasecmp(name, s, strlen(s)) in __ipt_parse_icmp() and
 * ebt_parse_icmp()).
 */
export function typeByName(names: readonly IcmpName[], s: string, what: string): IcmpName | undefined {
  let lowered = LOWER.get(names);
  if (lowered === undefined) LOWER.set(names, (lowered = names.map((n) => n[0].toLowerCase())));
  let match: IcmpName | undefined;
  const lower = s.toLowerCase();
  for (let i = 0; i < names.length; i++) {
    if (!lowered[i]!.startsWith(lower)) continue;
    const n = names[i]!;
    if (match) fail(`Ambiguous ${what} type \`${s}': \`${match[0]}' or \`${n[0]}'?`);
    match = n;
  }
  return match;
}

/** `__ipt_parse_icmp()`: a type name prefix or `type[/code[:code]]`. */
function parseIcmpType(s: string, names: readonly IcmpName[], what: 'ICMP' | 'ICMPv6'): { type: number; codeMin: number; codeMax: number } {
  const match = typeByName(names, s, what);
  if (match) return { type: match[1], codeMin: match[2], codeMax: match[3] };
  const t = parseRange(s);
  if (!t) return fail(`Unknown ${what} type \`${s}'`);
  if (t.lo !== t.hi) fail(`${what} type range not supported`);
  if (t.rest === '') return { type: t.lo, codeMin: 0, codeMax: 0xff };
  if (t.rest[0] === '/') {
    const c = parseRange(t.rest.slice(1));
    if (!c) return fail(`Unknown ${what} code \`${s}'`);
    if (c.rest !== '') fail(`unknown character ${c.rest[0]}`);
    return { type: t.lo, codeMin: c.lo, codeMax: c.hi };
  }
  return fail(`unknown character ${t.rest[0]}`);
}

export const icmp: MatchModule<IcmpData> = {
  kind: 'match',
  name: 'icmp',
  family: 'ip',
  proto: 1,
  options: [{ name: 'icmp-type', arg: 1, invert: true }],
  init: () => ({ type: 0xff, codeMin: 0, codeMax: 0xff, invert: false }),
  parse(d, _opt, arg, invert) {
    Object.assign(d, parseIcmpType(arg!, ICMP_NAMES, 'ICMP'));
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('icmp-type')) fail('icmp: option "--icmp-type" must be specified', 'option');
  },
  save(d) {
    const inv = d.invert ? ' !' : '';
    if (d.type === 0xff && d.codeMin === 0 && d.codeMax === 0xff) return `${inv} --icmp-type any`;
    return `${inv} --icmp-type ${d.type}${d.codeMin !== 0 || d.codeMax !== 0xff ? `/${d.codeMin}` : ''}`;
  },
  lower: lowerIcmp,
  reference: icmpMt,
};

export const icmp6: MatchModule<IcmpData> = {
  kind: 'match',
  name: 'icmp6',
  family: 'ip6',
  // xtables_find_match() takes these spellings for icmp6
  aliases: ['icmpv6', 'ipv6-icmp'],
  proto: 58,
  options: [{ name: 'icmpv6-type', arg: 1, invert: true }],
  init: () => ({ type: 0, codeMin: 0, codeMax: 0xff, invert: false }),
  parse(d, _opt, arg, invert) {
    Object.assign(d, parseIcmpType(arg!, ICMPV6_NAMES, 'ICMPv6'));
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('icmpv6-type')) fail('icmp6: option "--icmpv6-type" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --icmpv6-type ${d.type}${d.codeMin !== 0 || d.codeMax !== 0xff ? `/${d.codeMin}` : ''}`,
  lower: lowerIcmp,
  reference: icmp6Mt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * icmp / icmp6 (ip_tables.c icmp_match, ip6_tables.c icmp6_match):
 * `(type == t && code_min <= code <= code_max) XOR invert`. Type and code
 * are adjacent bytes, so the conjunction is one 2-byte range over
 * type‖code (nft would write `icmp type t icmp code a-b`); a full code range
 * compares the type byte alone. IPv4 type 0xff ("any") matches every ICMP
 * header: nothing to compare (and `! any` never matches: a BREAK verdict).
 */
function lowerIcmp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as IcmpData;
  // iptables-nft 1.8.9 keeps icmp an xt match (compat): x_tables semantics in both backends
  emitXtL4(c.b, 8);
  if (!c.v6 && d.type === 0xff && d.codeMin === 0 && d.codeMax === 0xff) {
    if (d.invert) emitVerdict(c.b, NFT_BREAK);
    return;
  }
  const op = d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (d.codeMin === 0 && d.codeMax === 0xff) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, TH, 0, 1);
      emitCmp(c.b, op, r, [d.type]);
    });
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, TH, 0, 2);
    if (d.codeMin === d.codeMax) emitCmp(c.b, op, r, [d.type, d.codeMin]);
    else if (d.codeMin > d.codeMax) emitVerdict(c.b, d.invert ? 0 : NFT_BREAK);
    else emitRange(c.b, d.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, [d.type, d.codeMin], [d.type, d.codeMax]);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * icmp match: net/ipv4/netfilter/ip_tables.c icmp_match(), icmp_type_code_match() (kernel 6.18).
 */
/** sizeof(struct icmphdr): the whole 8-byte header must be readable. */
const ICMPHDR_LEN = 8;

function icmpMt(info: IcmpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const ic = headerPointer(par, par.thoff, ICMPHDR_LEN);
    if (ic < 0) {
      par.hotdrop = true;
      return false;
    }
    const type = par.d[ic]!;
    const code = par.d[ic + 1]!;
    const hit = info.type === 0xff || (type === info.type && code >= info.codeMin && code <= info.codeMax);
    return hit !== info.invert;
  };
}

/**
 * icmp6 match: net/ipv6/netfilter/ip6_tables.c icmp6_match(), icmp6_type_code_match()
 * (kernel 6.18). Unlike IPv4 there is no "any" type 0xff.
 */
/** sizeof(struct icmp6hdr) */
const ICMP6HDR_LEN = 8;

function icmp6Mt(info: IcmpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const ic = headerPointer(par, par.thoff, ICMP6HDR_LEN);
    if (ic < 0) {
      par.hotdrop = true;
      return false;
    }
    const type = par.d[ic]!;
    const code = par.d[ic + 1]!;
    return (type === info.type && code >= info.codeMin && code <= info.codeMax) !== info.invert;
  };
}
