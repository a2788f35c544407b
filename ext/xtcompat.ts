/**
 * The VM lowering of an x_tables match nf_tables has no expression for:
 * iptables-nft loads it as a compat `match` expression (nft_compat.c) whose
 * evaluation calls the xt_match's own function with `struct
 * xt_action_param` filled from the packet (nft_compat_set_par: the hook,
 * the devices, thoff and fragoff of nft_pktinfo). The function is the
 * module's reference face, made once per rule from its data, so both
 * engines run the same kernel match on the same kind of state; its state
 * (a rule's own, or the node's named tables: ext/xtstate.ts) is the
 * engine's, as the kernel's matchinfo is the rule's.
 */
import type { MatchNode } from '../core/ast.js';
import { M_FLAGS, M_FRAGOFF, M_HOOK, M_LEN, M_NHOFF, M_THOFF, F_L4PROTO } from '../vm/layout.js';
import { emitXtCompatMatch, XT_COMPAT_HOTDROP, XT_COMPAT_MATCH, XT_COMPAT_NOMATCH } from '../vm/expr/xtcompat.js';
import type { Packet } from '../vm/packet.js';
import type { LowerCtx } from './lower.js';
import { type MatchFn, type XtActionParam, type XtEnv } from './xt.js';
import type { XtState } from './xtstate.js';

/** The XtEnv the compat matches of one lowering see (the engine's options; shared with ext/compat.ts's). */
function compatEnv(c: LowerCtx): XtEnv {
  return c.xtEnv();
}

/** The node's XtState the lowering's engine uses. */
export function lowerXtState(c: LowerCtx): XtState {
  return compatEnv(c).xt;
}

/**
 * Emits `[ match name NAME rev REV ]` running `make`'s MatchFn (the
 * module's reference face for the node's data).
 */
export function lowerXtCompat(c: LowerCtx, m: MatchNode, rev: number, make: (xt: XtState) => MatchFn): void {
  const env = compatEnv(c);
  const fn = make(env.xt);
  const par: XtActionParam = {
    pkt: undefined as unknown as Packet, d: new Uint8Array(0), meta: new Int32Array(0), hook: 0, nh: 0, end: 0, thoff: 0, fragoff: 0,
    hotdrop: false, env, chain: '', rule: 0,
  };
  const v4 = c.family === 'ip';
  const match = (pkt: Packet): number => {
    const meta = pkt.meta;
    const nh = meta[M_NHOFF]!;
    par.pkt = pkt;
    par.d = pkt.data;
    par.meta = meta;
    par.hook = meta[M_HOOK]!;
    par.nh = nh;
    par.end = nh + meta[M_LEN]!;
    if (v4) {
      const d = pkt.data;
      par.thoff = (d[nh]! & 0x0f) * 4;
      par.fragoff = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff;
    } else {
      par.thoff = meta[M_FLAGS]! & F_L4PROTO ? meta[M_THOFF]! - nh : 0;
      par.fragoff = meta[M_FRAGOFF]!;
    }
    par.hotdrop = false;
    const r = fn(par);
    return par.hotdrop ? XT_COMPAT_HOTDROP : r ? XT_COMPAT_MATCH : XT_COMPAT_NOMATCH;
  };
  emitXtCompatMatch(c.b, { name: m.name, rev, match });
}
