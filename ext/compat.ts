/**
 * The lowering of an extension nf_tables has no expression for: what
 * iptables-nft loads for it (iptables/nft.c add_match/add_target), the
 * x_tables match or target inside nf_tables (net/netfilter/nft_compat.c),
 * here a vm/expr/compat.ts record calling the module's reference face, the
 * same xt_NAME.c function the x_tables evaluator runs.
 *
 * What the function sees is built as each loader builds it:
 *  - 'nft' (nft_compat_set_par): thoff and fragoff from the pktinfo
 *    (nft_thoff(pkt), pkt->fragoff), 0 when the network header did not
 *    validate (nft_set_pktinfo_unspec);
 *  - 'legacy' (ipt_do_table / ip6t_do_table): IPv4 thoff = ihl * 4 and the
 *    fragment offset field; IPv6 thoff and fragoff from ip6_packet_match's
 *    ipv6_find_hdr(skb, &thoff, -1, &fragoff, NULL) when the rule has `-p`
 *    (AH skipped by its length), 0 otherwise. A header chain that walk cannot
 *    follow hotdrops (or does not match on a later fragment), as
 *    ip6_packet_match decides.
 * The parameter block is built once per rule and refilled per packet.
 *
 * The reference face of such a module (the x_tables evaluator) is the same
 * function; for 'nft' it is wrapped (asNftCompat) to see what nft_compat
 * gives it: the pktinfo's thoff/fragoff, and a hotdrop ending the rule at
 * once (nft_match_eval sets NF_DROP whatever the match returned, where
 * ipt_do_table still counts a rule whose match returned true and runs its
 * target before dropping).
 */
import type { MatchNode } from '../core/ast.js';
import { NF_DROP } from '../core/netfilter.js';
import { NfvmError, type SourcePos } from '../core/errors.js';
import { F_L4PROTO, M_END, M_FLAGS, M_FRAGOFF, M_HOOK, M_NHOFF, M_THOFF, NFT_CONTINUE } from '../vm/layout.js';
import { emitXtCompat } from '../vm/expr/compat.js';
import type { Packet } from '../vm/packet.js';
import type { LowerCtx } from './lower.js';
import type { ExtTargetNode, MatchModule, TargetModule } from './types.js';
import type { Backend } from '../core/netfilter.js';
import type { Family } from '../core/ast.js';
import { NotModelled, XT_CONTINUE, ipv6FindHdr, type MatchFn, type TargetFn, type XtActionParam } from './xt.js';

/** Fills `par` for `pkt`; returns 1, or 0 (the rule does not match) / -1 (hotdrop) from ip6_packet_match's walk. */
type Filler = (par: XtActionParam, pkt: Packet) => number;

const findOut = { fragoff: 0 };

function filler(c: LowerCtx): Filler {
  if (!c.legacy) {
    return (par) => {
      setNftPar(par);
      return 1;
    };
  }
  if (!c.v6) {
    return (par, pkt) => {
      const d = pkt.data;
      const nh = par.nh;
      par.thoff = (d[nh]! & 0x0f) * 4;
      par.fragoff = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff;
      return 1;
    };
  }
  const proto = c.rule?.proto ?? 0;
  const inv = c.rule?.invProto ?? false;
  if (proto === 0) {
    return (par) => {
      par.thoff = 0;
      par.fragoff = 0;
      return 1;
    };
  }
  return (par) => {
    par.thoff = 0;
    par.fragoff = 0;
    const protohdr = ipv6FindHdr(par, findOut);
    if (protohdr < 0) return findOut.fragoff === 0 ? -1 : 0;
    par.fragoff = findOut.fragoff;
    return (protohdr === proto) !== inv ? 1 : 0;
  };
}

function newPar(c: LowerCtx, pkt: Packet): XtActionParam {
  return {
    pkt, d: pkt.data, meta: pkt.meta, hook: 0, nh: 0, end: 0, thoff: 0, fragoff: 0, hotdrop: false, env: c.xtEnv(), chain: '', rule: 0,
  };
}

/** Points `par` at `pkt` (the packet object is the engine's, usually the same every time). */
function bind(par: XtActionParam, pkt: Packet): void {
  if (par.pkt !== pkt) {
    par.pkt = pkt;
    par.d = pkt.data;
    par.meta = pkt.meta;
  }
  const m = pkt.meta;
  par.hook = m[M_HOOK]!;
  par.nh = m[M_NHOFF]!;
  par.end = m[M_END]!;
  par.hotdrop = false;
}

/** The function a factory builds, or the typed refusal at `pos` when it throws NotModelled. */
function build<F>(c: LowerCtx, factory: () => F, pos: SourcePos | undefined): F {
  try {
    return factory();
  } catch (err) {
    // the refusal in its own words, as the reference engine gives it
    if (err instanceof NotModelled) throw new NfvmError('check', err.message, c.file, pos ?? c.rule?.pos, err.what);
    throw err;
  }
}

/** Lowers match `m` to an nft_compat match record running what `factory` builds (revision `rev`, as iptables-nft loads it). */
export function lowerCompatMatch(c: LowerCtx, m: MatchNode, factory: () => MatchFn, rev = 0): void {
  const fn = build(c, factory, m.pos);
  const fill = filler(c);
  const legacy = c.legacy;
  let par: XtActionParam | null = null;
  emitXtCompat(c.b, {
    kind: 'match',
    name: m.name,
    rev,
    fn: (pkt, env) => {
      if (par === null) par = newPar(c, pkt);
      bind(par, pkt);
      const f = fill(par, pkt);
      if (f <= 0) return f;
      const r = fn(par);
      if (!par.hotdrop) return r ? 1 : 0;
      // nft_match_eval drops at once; ipt_do_table goes on with a rule whose match returned true
      if (!legacy || !r) return -1;
      env.xtHotdrop = true;
      return 1;
    },
  });
  c.compatInRule = true;
}

/** Lowers target `t` to an nft_compat target record running what `factory` builds (revision `rev`). */
export function lowerCompatTarget(c: LowerCtx, t: ExtTargetNode, factory: () => TargetFn, rev = 0): void {
  const fn = build(c, factory, t.pos);
  const fill = filler(c);
  let par: XtActionParam | null = null;
  emitXtCompat(c.b, {
    kind: 'target',
    name: t.name,
    rev,
    fn: (pkt) => {
      if (par === null) par = newPar(c, pkt);
      bind(par, pkt);
      fill(par, pkt);
      const v = fn(par);
      if (par.hotdrop) return NF_DROP;
      return v === XT_CONTINUE ? NFT_CONTINUE : v | 0;
    },
  });
}

/** nft_compat_set_par() over the x_tables parameter block: thoff/fragoff from the pktinfo. */
function setNftPar(par: XtActionParam): void {
  const m = par.meta;
  const l4 = (m[M_FLAGS]! & F_L4PROTO) !== 0;
  par.thoff = l4 ? m[M_THOFF]! - par.nh : 0;
  par.fragoff = l4 ? m[M_FRAGOFF]! : 0;
}

/** The reference face of a compat-lowered match for `backend` (see the header). */
export function asNftCompat(fn: MatchFn, backend: Backend): MatchFn {
  if (backend !== 'nft') return fn;
  return (par) => {
    const thoff = par.thoff;
    const fragoff = par.fragoff;
    setNftPar(par);
    const r = fn(par);
    par.thoff = thoff;
    par.fragoff = fragoff;
    return r && !par.hotdrop;
  };
}

/** The lowering and reference faces of a match nf_tables has no expression for: both run `make`'s function. */
export function compatMatchFaces<D>(make: (d: D, family: Family) => MatchFn, rev = 0): Pick<MatchModule<D>, 'lower' | 'reference'> {
  return {
    lower: (c, m) => lowerCompatMatch(c, m, () => make(m.data as D, c.family), rev),
    reference: (d, family, backend) => asNftCompat(make(d, family), backend),
  };
}

/** The lowering and reference faces of a target run through nft_compat. */
export function compatTargetFaces<D>(make: (d: D, family: Family) => TargetFn, rev = 0): Pick<TargetModule<D>, 'lower' | 'reference'> {
  return {
    lower: (c, t) => lowerCompatTarget(c, t, () => make(t.data, c.family), rev),
    reference: (d, family) => make(d, family),
  };
}
