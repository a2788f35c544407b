/**
 * tcp and udp matches: libxt_tcp.c / libxt_udp.c, kernel xt_tcpudp.c.
 *
 * Data mirrors `struct xt_tcp` / `struct xt_udp`: port ranges (spts, dpts,
 * inclusive), TCP flags mask/comparison, TCP option kind and the inversion
 * flags. Kernel `.proto` is IPPROTO_TCP/UDP, so the rule needs `-p tcp|udp`.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parsePortRange } from '../protocols.js';
import { strtoulWhole } from '../numbers.js';
import {
  NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ,
} from '../../vm/layout.js';
import { emitBitwise, emitCmp, emitPayload, emitRange, emitXtL4, emitXtMatchTcpOpt } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { be, type LowerCtx } from '../lower.js';
import { be16, headerPointer, type MatchFn, type XtActionParam } from '../xt.js';

export interface PortsData {
  spts: [number, number];
  dpts: [number, number];
  invSpt: boolean;
  invDpt: boolean;
}

export interface TcpData extends PortsData {
  /** TCP option kind (0 = no option match). */
  option: number;
  invOption: boolean;
  flgMask: number;
  flgCmp: number;
  invFlags: boolean;
  /** Which options were given (TCP_SRC_PORTS etc. of libxt_tcp). */
  given: number;
}

type UdpData = PortsData & { given: number };

/** libxt_tcp tcp_flag_names[], in the order print_tcpf walks them. */
const TCP_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
  ['ALL', 0x3f],
  ['NONE', 0],
];

function parseTcpFlags(s: string): number {
  let r = 0;
  for (const part of s.split(',')) {
    if (part === '') continue; // strtok skips empty fields
    const f = TCP_FLAG_NAMES.find(([n]) => n.toLowerCase() === part.toLowerCase());
    if (!f) fail(`Unknown TCP flag \`${part}'`);
    r |= f[1];
  }
  return r;
}

function printTcpFlags(flags: number): string {
  const names: string[] = [];
  let f = flags;
  while (f) {
    const e = TCP_FLAG_NAMES.find(([, v]) => v & f)!;
    names.push(e[0]);
    f &= ~e[1];
  }
  return names.length ? names.join(',') : 'NONE';
}

/**
 * Port ranges shared between rules: the full range and single ports are the
 * common ones (a 100,000-rule ruleset holds one array per distinct port, not
 * two per rule). Data is never changed in place after parsing.
 */
const FULL_PORTS = Object.freeze([0, 0xffff]) as readonly number[] as [number, number];
const singlePorts: [number, number][] = [];

function sharedPorts(s: string): [number, number] {
  const r = parsePortRange(s);
  if (r[0] === 0 && r[1] === 0xffff) return FULL_PORTS;
  if (r[0] !== r[1]) return r;
  return (singlePorts[r[0]] ??= Object.freeze(r) as readonly number[] as [number, number]);
}

/** At most this many distinct tcp (udp) data are kept for sharing. */
const SHARED_MAX = 4096;

/**
 * Equal data shared between rules: a kube-proxy dump says `-m tcp --dport
 * 80` or a bare `-m tcp` in tens of thousands of rules. `key` packs every
 * field into two exact integers (each below 2^53), so no string is built per
 * rule; it returns false when a field is outside the range the packing
 * assumes, and such data is not shared (kept as parsed), so two different
 * data never meet under one key.
 */
const K = [0, 0];
function sharer2<D>(key: (d: D, k: number[]) => boolean): (d: D) => D {
  const seen = new Map<number, Map<number, D>>();
  let size = 0;
  return (d) => {
    if (!key(d, K)) return d;
    let inner = seen.get(K[0]!);
    const have = inner?.get(K[1]!);
    if (have !== undefined) return have;
    if (size < SHARED_MAX) {
      if (inner === undefined) seen.set(K[0]!, (inner = new Map()));
      inner.set(K[1]!, d);
      size++;
    }
    return d;
  };
}

/** A port range packed into 32 bits, or -1 outside 0..65535. */
function packPorts(r: readonly [number, number]): number {
  const a = r[0], b = r[1];
  return a >= 0 && a <= 0xffff && b >= 0 && b <= 0xffff && Number.isInteger(a) && Number.isInteger(b) ? a * 0x10000 + b : -1;
}

/** An integer in 0..max, or -1. */
function small(v: number, max: number): number {
  return Number.isInteger(v) && v >= 0 && v <= max ? v : -1;
}

const SRC = 1;
const DST = 2;
const FLAGS = 4;
const OPTION = 8;

function savePorts(name: string, r: [number, number], inv: boolean): string {
  // 1.8.13 also prints an inverted full range (`! --sport 0:65535`)
  if (r[0] === 0 && r[1] === 0xffff && !inv) return '';
  return `${inv ? ' !' : ''} --${name} ${r[0] === r[1] ? r[0] : `${r[0]}:${r[1]}`}`;
}

export const tcp: MatchModule<TcpData> = {
  kind: 'match',
  name: 'tcp',
  proto: 6,
  options: [
    { name: 'source-port', arg: 1, invert: true, multi: true },
    { name: 'sport', arg: 1, invert: true, multi: true },
    { name: 'destination-port', arg: 1, invert: true, multi: true },
    { name: 'dport', arg: 1, invert: true, multi: true },
    { name: 'syn', arg: 0, invert: true, multi: true },
    { name: 'tcp-flags', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'tcp-option', arg: 1, invert: true, multi: true },
  ],
  init: () => ({ spts: FULL_PORTS, dpts: FULL_PORTS, invSpt: false, invDpt: false, option: 0, invOption: false, flgMask: 0, flgCmp: 0, invFlags: false, given: 0 }),
  share: sharer2((d, k) => {
    const s = packPorts(d.spts), p = packPorts(d.dpts), m = small(d.flgMask, 0xff), c = small(d.flgCmp, 0xff), o = small(d.option, 0xff), g = small(d.given, 15);
    if (s < 0 || p < 0 || m < 0 || c < 0 || o < 0 || g < 0) return false;
    k[0] = s * 0x10000 + m * 0x100 + c;
    k[1] = p * 0x10000 + o * 0x100 + (d.invSpt ? 0x80 : 0) + (d.invDpt ? 0x40 : 0) + (d.invOption ? 0x20 : 0) + (d.invFlags ? 0x10 : 0) + g;
    return true;
  }),
  parse(d, opt, arg, invert, _ctx, extra) {
    switch (opt) {
      case 'source-port':
      case 'sport':
        if (d.given & SRC) fail("Only one `--source-port' allowed", 'option');
        d.spts = sharedPorts(arg!);
        d.invSpt = invert;
        d.given |= SRC;
        return;
      case 'destination-port':
      case 'dport':
        if (d.given & DST) fail("Only one `--destination-port' allowed", 'option');
        d.dpts = sharedPorts(arg!);
        d.invDpt = invert;
        d.given |= DST;
        return;
      case 'syn':
      case 'tcp-flags':
        if (d.given & FLAGS) fail("Only one of `--syn' or `--tcp-flags'  allowed", 'option');
        if (opt === 'syn') {
          d.flgMask = parseTcpFlags('SYN,RST,ACK,FIN');
          d.flgCmp = parseTcpFlags('SYN');
        } else {
          d.flgMask = parseTcpFlags(arg!);
          d.flgCmp = parseTcpFlags(extra[0]!);
        }
        d.invFlags = invert;
        d.given |= FLAGS;
        return;
      case 'tcp-option': {
        if (d.given & OPTION) fail("Only one `--tcp-option' allowed", 'option');
        const v = strtoulWhole(arg!, 1n, 255n);
        if (v === undefined) fail(`Bad TCP option "${arg}"`);
        d.option = Number(v);
        d.invOption = invert;
        d.given |= OPTION;
        return;
      }
    }
  },
  save(d) {
    let s = savePorts('sport', d.spts, d.invSpt) + savePorts('dport', d.dpts, d.invDpt);
    if (d.option || d.invOption) s += `${d.invOption ? ' !' : ''} --tcp-option ${d.option}`;
    if (d.flgMask || d.invFlags) s += `${d.invFlags ? ' !' : ''} --tcp-flags ${printTcpFlags(d.flgMask)} ${printTcpFlags(d.flgCmp)}`;
    return s;
  },
  lower: lowerTcp,
  reference: (d, _family, backend) => (backend === 'nft' && nftNative(d) ? tcpNft(d) : tcpMt(d)),
};

export const udp: MatchModule<UdpData> = {
  kind: 'match',
  name: 'udp',
  proto: 17,
  options: [
    { name: 'source-port', arg: 1, invert: true, multi: true },
    { name: 'sport', arg: 1, invert: true, multi: true },
    { name: 'destination-port', arg: 1, invert: true, multi: true },
    { name: 'dport', arg: 1, invert: true, multi: true },
  ],
  init: () => ({ spts: FULL_PORTS, dpts: FULL_PORTS, invSpt: false, invDpt: false, given: 0 }),
  share: sharer2((d, k) => {
    const s = packPorts(d.spts), p = packPorts(d.dpts), g = small(d.given, 15);
    if (s < 0 || p < 0 || g < 0) return false;
    k[0] = s;
    k[1] = p * 0x40 + (d.invSpt ? 0x20 : 0) + (d.invDpt ? 0x10 : 0) + g;
    return true;
  }),
  parse(d, opt, arg, invert) {
    if (opt === 'source-port' || opt === 'sport') {
      if (d.given & SRC) fail("Only one `--source-port' allowed", 'option');
      d.spts = sharedPorts(arg!);
      d.invSpt = invert;
      d.given |= SRC;
    } else {
      if (d.given & DST) fail("Only one `--destination-port' allowed", 'option');
      d.dpts = sharedPorts(arg!);
      d.invDpt = invert;
      d.given |= DST;
    }
  },
  save: (d) => savePorts('sport', d.spts, d.invSpt) + savePorts('dport', d.dpts, d.invDpt),
  lower: lowerUdp,
  reference: (d, _family, backend) => (backend === 'nft' && nftNative(d) ? udpNft(d) : udpMt(d)),
};

// --- the backends ------------------------------------------------------------
/**
 * Whether iptables-nft 1.8.9 lowers the match to nf_tables expressions
 * (add_nft_tcp / add_nft_udp): not when it is all-default (`-m tcp` alone,
 * `--dport 0:65535`: "iptables -A INPUT -m udp" would become a rule without
 * the match) or tests a TCP option; those stay the x_tables match in a
 * compat `match` expression, with its semantics in both backends.
 */
export function nftNative(d: TcpData | UdpData): boolean {
  const t = d as Partial<TcpData>;
  if (t.option || t.invOption) return false;
  return d.spts[0] !== 0 || d.spts[1] !== 0xffff || d.dpts[0] !== 0 || d.dpts[1] !== 0xffff || d.invSpt || d.invDpt || !!t.flgMask || !!t.flgCmp || !!t.invFlags;
}

/**
 * add_nft_tcpudp(): a single non-zero sport and dport with equal inversion
 * are ONE 4-byte compare of sport‖dport. Inverted, that is "(sport, dport)
 * != (a, b)", true when either differs, where the x_tables match needs both
 * to (kernel-facts §1.8).
 */
function mergedPorts(d: PortsData): boolean {
  return d.spts[0] !== 0 && d.spts[0] === d.spts[1] && d.dpts[0] !== 0 && d.dpts[0] === d.dpts[1] && d.invSpt === d.invDpt;
}

// --- lowering (the VM engine) ------------------------------------------------
/**
 * tcp and udp (xt_tcpudp), as iptables-nft's add_nft_tcp / add_nft_udp /
 * add_nft_tcpudp lower them: the flags first (1 byte at transport+13,
 * bitwise mask, cmp), then the ports: a single sport and a single dport
 * with equal inversion as ONE 4-byte compare, otherwise each side as cmp
 * (single port), cmp lte/gt (a range from 0) or range eq/neq.
 *
 * `--tcp-option` is x_tables' option walk (xt_match tcpopt, vm/expr/xtmatch.ts).
 *
 * The x_tables meaning (backend 'legacy', and under 'nft' the matches
 * iptables-nft leaves to xt: nftNative) puts the guard (xt_l4) first and
 * never merges an inverted pair: "(sport, dport) != (a, b)" would match when
 * only one differs, the kernel's tcp match needs both to. Under 'nft' a
 * native match is iptables-nft's expressions, with their meaning.
 */
function range16(c: LowerCtx, r: number, lo: number, hi: number, inv: boolean): void {
  if (lo === hi) emitCmp(c.b, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, r, be(lo, 2));
  else if (lo === 0) emitCmp(c.b, inv ? NFT_CMP_GT : NFT_CMP_LTE, r, be(hi, 2));
  else emitRange(c.b, inv ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(lo, 2), be(hi, 2));
}

/** `xt`: with x_tables semantics (see above). */
function lowerPorts(c: LowerCtx, d: PortsData, xt: boolean): void {
  const [s0, s1] = d.spts;
  const [d0, d1] = d.dpts;
  if (mergedPorts(d) && !(xt && d.invSpt)) {
    c.withReg(4, (r) => {
      emitPayload(c.b, r, TH, 0, 4);
      emitCmp(c.b, d.invSpt ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [...be(s0, 2), ...be(d0, 2)]);
    });
    return;
  }
  // x_tables' port_match() inverts even the full range (never matches); nft emits nothing for it
  if (s0 || s1 < 0xffff || (xt && d.invSpt)) {
    c.withReg(2, (r) => {
      emitPayload(c.b, r, TH, 0, 2);
      range16(c, r, s0, s1, d.invSpt);
    });
  }
  if (d0 || d1 < 0xffff || (xt && d.invDpt)) {
    c.withReg(2, (r) => {
      emitPayload(c.b, r, TH, 2, 2);
      range16(c, r, d0, d1, d.invDpt);
    });
  }
}

function lowerTcp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TcpData;
  const xt = c.legacy || !nftNative(d);
  if (xt) emitXtL4(c.b, 20, true);
  if (d.flgMask || d.invFlags) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, TH, 13, 1);
      emitBitwise(c.b, r, r, [d.flgMask], [0]);
      emitCmp(c.b, d.invFlags ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [d.flgCmp]);
    });
  }
  lowerPorts(c, d, xt);
  // nf_tables' exthdr walks options differently; iptables-nft itself falls back to the xt match
  if (d.option) emitXtMatchTcpOpt(c.b, d.option, d.invOption);
}

function lowerUdp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as UdpData;
  const xt = c.legacy || !nftNative(d);
  if (xt) emitXtL4(c.b, 8);
  lowerPorts(c, d, xt);
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * tcp match: net/netfilter/xt_tcpudp.c tcp_mt(), tcp_find_option() (kernel 6.18).
 */
/** sizeof(struct tcphdr) */
const TCPHDR_LEN = 20;

export function portMatch(min: number, max: number, port: number, invert: boolean): boolean {
  return (port >= min && port <= max) !== invert;
}

function findOption(par: XtActionParam, option: number, optlen: number, invert: boolean): boolean {
  if (optlen === 0) return invert;
  const op = headerPointer(par, par.thoff + TCPHDR_LEN, optlen);
  if (op < 0) {
    par.hotdrop = true;
    return false;
  }
  const d = par.d;
  for (let i = 0; i < optlen; ) {
    if (d[op + i] === option) return !invert;
    if (d[op + i]! < 2) i++;
    else {
      // op[i+1] may lie one byte past the options: the kernel reads the
      // packet byte there (or its stack copy); past the packet we take 0.
      const len = op + i + 1 < par.end ? d[op + i + 1]! : 0;
      i += len || 1;
    }
  }
  return invert;
}

function tcpMt(info: TcpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) {
      // "Don't allow a fragment of TCP 8 bytes in": offset 1 overlaps the flags.
      if (par.fragoff === 1) par.hotdrop = true;
      return false;
    }
    const th = headerPointer(par, par.thoff, TCPHDR_LEN);
    if (th < 0) {
      par.hotdrop = true;
      return false;
    }
    const d = par.d;
    if (!portMatch(info.spts[0], info.spts[1], be16(d, th), info.invSpt)) return false;
    if (!portMatch(info.dpts[0], info.dpts[1], be16(d, th + 2), info.invDpt)) return false;
    if (((d[th + 13]! & info.flgMask) === info.flgCmp) === info.invFlags) return false;
    if (info.option) {
      const doff = d[th + 12]! >> 4;
      if (doff * 4 < TCPHDR_LEN) {
        par.hotdrop = true;
        return false;
      }
      if (!findOption(par, info.option, doff * 4 - TCPHDR_LEN, info.invOption)) return false;
    }
    return true;
  };
}

/**
 * udp match: net/netfilter/xt_tcpudp.c udp_mt() (kernel 6.18).
 */
/** sizeof(struct udphdr) */
const UDPHDR_LEN = 8;

function udpMt(info: UdpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const uh = headerPointer(par, par.thoff, UDPHDR_LEN);
    if (uh < 0) {
      par.hotdrop = true;
      return false;
    }
    return (
      portMatch(info.spts[0], info.spts[1], be16(par.d, uh), info.invSpt) &&
      portMatch(info.dpts[0], info.dpts[1], be16(par.d, uh + 2), info.invDpt)
    );
  };
}

// --- reference semantics under iptables-nft (backend 'nft') ------------------
/*
 * What iptables-nft 1.8.9's expressions for a native tcp/udp match do
 * (nf_tables_core.c nft_payload_fast_eval(), nft_cmp.c, nft_range.c,
 * kernel 6.18): each test loads 1, 2 or 4 aligned bytes from the transport
 * header, which the kernel's fast path reads even from a non-first fragment
 * (vm/expr/payload.ts); a load past the end of the packet BREAKs: the rule
 * does not match, nothing is hotdropped. The flags byte first, then the
 * ports as add_nft_tcpudp() lowers them (mergedPorts: one 4-byte compare).
 */
function nftPorts(par: XtActionParam, d: PortsData): boolean {
  const [s0, s1] = d.spts;
  const [d0, d1] = d.dpts;
  if (mergedPorts(d)) {
    const at = headerPointer(par, par.thoff, 4);
    if (at < 0) return false;
    return (be16(par.d, at) === s0 && be16(par.d, at + 2) === d0) !== d.invSpt;
  }
  if (s0 || s1 < 0xffff) {
    const at = headerPointer(par, par.thoff, 2);
    if (at < 0 || !portMatch(s0, s1, be16(par.d, at), d.invSpt)) return false;
  }
  if (d0 || d1 < 0xffff) {
    const at = headerPointer(par, par.thoff + 2, 2);
    if (at < 0 || !portMatch(d0, d1, be16(par.d, at), d.invDpt)) return false;
  }
  return true;
}

function tcpNft(info: TcpData): MatchFn {
  return (par) => {
    if (info.flgMask || info.invFlags) {
      const at = headerPointer(par, par.thoff + 13, 1);
      if (at < 0 || ((par.d[at]! & info.flgMask) === info.flgCmp) === info.invFlags) return false;
    }
    return nftPorts(par, info);
  };
}

function udpNft(info: UdpData): MatchFn {
  return (par) => nftPorts(par, info);
}
