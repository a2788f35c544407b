/**
 * NF_HOOK() of the bridge family (NFPROTO_BRIDGE) as the bridge calls it,
 * with its okfn: the registry's entries run in order (nf_hook_slow), and
 * when all accept, the bridge goes on with `okfn`. Mirrors Linux 6.18:
 *
 *   net/bridge/br_input.c         nf_hook_bridge_pre(): the PRE_ROUTING walk that also stops
 *                                 when an entry set the broute flag (BR_INPUT_SKB_CB()->
 *                                 br_netfilter_broute): the frame goes up the port as not bridged
 *   net/bridge/br_netfilter_hooks.c br_nf_hook_thresh(): the rest of a hook's entries after
 *                                 br_netfilter (priority above NF_BR_PRI_BRNF, or after
 *                                 br_nf_pre_routing itself)
 *
 * An entry that carries the packet on itself (br_netfilter's: it passes the
 * IP hooks, then calls the bridge's next step) returns NF_STOLEN after
 * leaving the packet's fate in ctx.brStolen.
 */
import {
  NF_ACCEPT, NF_DROP, NF_QUEUE, NF_VERDICT_FLAG_QUEUE_BYPASS, NF_VERDICT_MASK, NFPROTO_BRIDGE,
} from '../../core/netfilter.js';
import { setBridgePort, setDevice, type Packet } from '../../vm/packet.js';
import { bridgeView } from './view.js';
import { hookState, type NodeHookOps, type NodeHookState, type NodeRegistry } from '../hook.js';
import { arphrd, type PathCtx } from '../path/ctx.js';
import type { Fate } from '../path/fate.js';
import type { Link } from '../snapshot/node.js';
import { verdictFate } from '../verdict.js';
import { NF_BR_PRI_BRNF } from '../priorities.js';

/**
 * The bridge's step after a hook (NF_HOOK's okfn): a method called on its
 * object with the packet, a device and the context (a method and its
 * object, not a closure: nothing is made per frame).
 */
export type BrOkfn<T> = (this: T, pkt: Packet, dev: Link, ctx: PathCtx) => Fate;

/** The name br_netfilter's PRE_ROUTING entry registers under (br_nf_hook_thresh looks for it). */
export const BR_NF_PRE_ROUTING = 'br_nf_pre_routing';

export class BrHook {
  /** Set by a PRE_ROUTING entry (the broute table's DROP: meta set bri_broute 1 / ebt_broute): route the frame, do not bridge it. */
  broute = false;
  /** The hook state of each nesting depth (br_netfilter runs the rest of a hook from within an entry), reused frame after frame. */
  private readonly states: NodeHookState[] = [];
  private depth = 0;

  constructor(
    readonly registry: NodeRegistry,
    /** The bridge a device is a port of ('' for none): the bridge names the hooks see (M_BRIINAME, M_BRIONAME). */
    private readonly bridgeOf: (dev: string) => string,
  ) {}

  entries(hook: number): readonly NodeHookOps[] {
    return this.registry.entries(NFPROTO_BRIDGE, hook);
  }

  /**
   * NF_HOOK(NFPROTO_BRIDGE, hook, in, out, okfn) from entry `from`, okfn
   * called on `self` with the packet, `okDev` and the context; `brouted`
   * (PRE_ROUTING only, nf_hook_bridge_pre) is where a brouted frame goes
   * (called the same way).
   */
  run<T>(hook: number, pkt: Packet, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx, self: T, okfn: BrOkfn<T>, okDev: Link, from = 0, brouted?: BrOkfn<T>): Fate {
    const e = this.entries(hook);
    if (from >= e.length) return okfn.call(self, pkt, okDev, ctx);
    bridgeView(pkt);
    setBridgePort(pkt, 'in', inLink ? this.bridgeOf(inLink.name) : '');
    setBridgePort(pkt, 'out', outLink ? this.bridgeOf(outLink.name) : '');
    if (inLink) setDevice(pkt, 'in', inLink.ifindex, inLink.name, arphrd(inLink), inLink.group);
    else setDevice(pkt, 'in', 0);
    if (outLink) setDevice(pkt, 'out', outLink.ifindex, outLink.name, arphrd(outLink), outLink.group);
    else setDevice(pkt, 'out', 0);
    const st = hookState(this.states, this.depth, NFPROTO_BRIDGE, hook, inLink, outLink, ctx);
    const steps = ctx.steps.length;
    this.broute = false;
    this.depth++;
    try {
      for (let i = from; i < e.length; i++) {
        const v = e[i]!.hook(pkt, st);
        switch (v & NF_VERDICT_MASK) {
          case NF_ACCEPT:
            if (brouted && this.broute) {
              this.broute = false;
              return brouted.call(self, pkt, okDev, ctx);
            }
            continue;
          case NF_QUEUE:
            // no queue has a listener: the bypass flag goes on, anything else is dropped
            if (v & NF_VERDICT_FLAG_QUEUE_BYPASS) continue;
            st.index = i;
            st.verdict = v;
            return verdictFate(e[i]!, v, st, steps);
          case NF_DROP:
            st.index = i;
            st.verdict = v;
            return verdictFate(e[i]!, v, st, steps);
          default: {
            const f = ctx.brStolen;
            ctx.brStolen = undefined;
            if (f) return f;
            st.index = i;
            st.verdict = v;
            return verdictFate(e[i]!, v, st, steps);
          }
        }
      }
    } finally {
      this.depth--;
    }
    return okfn.call(self, pkt, okDev, ctx);
  }

  /** br_nf_hook_thresh(): the entries br_netfilter has not run yet, then okfn. */
  thresh<T>(hook: number, pkt: Packet, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx, self: T, okfn: BrOkfn<T>, okDev: Link): Fate {
    const e = this.entries(hook);
    let i = 0;
    for (; i < e.length; i++) {
      const p = e[i]!.priority;
      if (p < NF_BR_PRI_BRNF) continue;
      if (p > NF_BR_PRI_BRNF) break;
      if (e[i]!.name === BR_NF_PRE_ROUTING) {
        i++;
        break;
      }
    }
    return this.run(hook, pkt, inLink, outLink, ctx, self, okfn, okDev, i);
  }
}
