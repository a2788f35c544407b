/**
 * iprange match, revision 1: iptables `extensions/libxt_iprange.c`
 * (`iprange_mt_parse`, `iprange_mt4_save`/`iprange_mt6_save`), kernel
 * `net/netfilter/xt_iprange.c` (no checkentry): the source and/or
 * destination address within an inclusive range `a-b` (a single address
 * means `a-a`). A reversed range is accepted with a warning; it never
 * matches.
 */
import { fail } from '../../core/errors.js';
import type { Family, MatchNode } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { strtoulPrefix } from '../numbers.js';
import { formatAddr, parseIPv6 } from '../../core/addr.js';
import { NFT_PAYLOAD_NETWORK_HEADER as NH, NFT_RANGE_EQ, NFT_RANGE_NEQ } from '../../vm/layout.js';
import { emitPayload, emitRange } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';

interface IpRange {
  /** Inclusive bounds, 4 or 16 bytes in network order. */
  min: Uint8Array;
  max: Uint8Array;
  invert: boolean;
}

interface IprangeData {
  /** IPRANGE_SRC (with IPRANGE_SRC_INV) */
  src: IpRange | undefined;
  /** IPRANGE_DST (with IPRANGE_DST_INV) */
  dst: IpRange | undefined;
}

/**
 * `xtables_numeric_to_ipaddr()`: 1 to 4 dot-separated bytes, each in any C
 * base (`010` is 8, `0x0a` is 10); missing trailing bytes are 0.
 */
function numericToIPv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length > 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < parts.length; i++) {
    const r = strtoulPrefix(parts[i]!, 0n, 255n);
    if (!r || r.rest !== '') return undefined;
    out[i] = Number(r.value);
  }
  return out;
}

function parseAddr(family: Family, s: string, opt: string): Uint8Array {
  const a = family === 'ip' ? numericToIPv4(s) : parseIPv6(s);
  if (!a) fail(`iprange: Bad value for "--${opt}" option: "${s}"`);
  return a;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export const iprange: MatchModule<IprangeData> = {
  kind: 'match',
  name: 'iprange',
  pure: true,
  options: [
    { name: 'src-range', arg: 1, invert: true },
    { name: 'dst-range', arg: 1, invert: true },
  ],
  init: () => ({ src: undefined, dst: undefined }),
  parse(d, opt, arg, invert, ctx) {
    const s = arg!;
    const dash = s.indexOf('-');
    const from = dash < 0 ? s : s.slice(0, dash);
    const to = dash < 0 ? s : s.slice(dash + 1);
    const r: IpRange = { min: parseAddr(ctx.family, from, opt), max: parseAddr(ctx.family, to, opt), invert };
    if (dash >= 0 && compare(r.min, r.max) > 0) ctx.warn(`xt_iprange: range ${from}-${to} is reversed and will never match`);
    if (opt === 'src-range') d.src = r;
    else d.dst = r;
  },
  final(d) {
    if (!d.src && !d.dst) fail("iprange match: You must specify `--src-range' or `--dst-range'", 'option');
  },
  save(d, ctx) {
    const one = (opt: string, r: IpRange | undefined) =>
      r ? `${r.invert ? ' !' : ''} --${opt} ${formatAddr(ctx.family, r.min)}-${formatAddr(ctx.family, r.max)}` : '';
    return one('src-range', d.src) + one('dst-range', d.dst);
  },
  lower: lowerIprange,
  reference: iprangeMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** iprange (xt_iprange): a range over the 4/16-byte address, as nft `ip saddr a-b`. */
function lowerIprange(c: LowerCtx, m: MatchNode): void {
  const d = m.data as IprangeData;
  const len = c.v6 ? 16 : 4;
  for (const [side, off] of [[d.src, c.v6 ? 8 : 12], [d.dst, c.v6 ? 24 : 16]] as const) {
    if (!side) continue;
    c.withReg(len, (r) => {
      emitPayload(c.b, r, NH, off, len);
      emitRange(c.b, side.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, side.min, side.max);
    });
  }
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * iprange match: net/netfilter/xt_iprange.c iprange_mt4() / iprange_mt6() (kernel 6.18).
 * Addresses compare as unsigned big-endian numbers, bounds inclusive.
 */
/** memcmp-order comparison of `len` bytes of the packet at `at` with `b`. */
function cmpAddr(d: Uint8Array, at: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) if (d[at + i] !== b[i]) return d[at + i]! - b[i]!;
  return 0;
}

function outside(d: Uint8Array, at: number, r: IpRange): boolean {
  return cmpAddr(d, at, r.min) < 0 || cmpAddr(d, at, r.max) > 0;
}

function iprangeMt(info: IprangeData, family: 'ip' | 'ip6'): MatchFn {
  const saddr = family === 'ip' ? 12 : 8;
  const daddr = family === 'ip' ? 16 : 24;
  return (par) => {
    if (info.src && outside(par.d, par.nh + saddr, info.src) !== info.src.invert) return false;
    if (info.dst && outside(par.d, par.nh + daddr, info.dst) !== info.dst.invert) return false;
    return true;
  };
}
