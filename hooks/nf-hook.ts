/**
 * nf_hook() as the packet path calls it (include/linux/netfilter.h, Linux
 * 6.18): nothing to do when no entry is registered at the point; otherwise
 * the devices go on the packet and into struct nf_hook_state, nf_hook_slow()
 * runs the registry's entries, and a verdict that ends the walk becomes the
 * packet's fate (verdict.ts). A REJECT asks the node's stack for its reply
 * (hooks/answer/reject.ts) with the packet as the hook saw it.
 */
import type { Link } from './snapshot/node.js';
import { setDeviceWords, type DevWords, type Packet } from '../vm/packet.js';
import { hookState, type NodeHookState, type NodeRegistry } from './hook.js';
import { nfHookSlow } from './registry.js';
import { linkDev, type Netfilter, type PathCtx } from './path/ctx.js';
import type { Fate } from './path/fate.js';
import { DropScratch, verdictFate } from './verdict.js';
import { HOOK_CHAIN_NAMES } from './priorities.js';

/** What hook() gives for the packet ip_sabotage_in stole (the caller goes on with it: ctx.brSabotage). */
const SABOTAGED: Fate = Object.freeze({ kind: 'stolen', by: undefined });

/** NF_HOOK for one family (NFPROTO_*) over a registry. */
export class NfHook implements Netfilter {
  /** The packet's connection in words, for a note at each hook once conntrack has seen it (when the family runs conntrack). */
  ctNote: ((pkt: Packet) => string) | undefined;

  /** The hook state of each nesting depth (a hook's entry may send a packet through hooks: TEE), reused packet after packet. */
  private readonly states: NodeHookState[] = [];
  private depth = 0;
  /** The dropped fate of a replay's packet (verdictFate), filled again for each. */
  private readonly dropScratch = new DropScratch();
  /** The last devices' records (a packet meets the same few links hook after hook). */
  private lastIn: Link | undefined;
  private lastInDev: DevWords = linkDev(undefined);
  private lastOut: Link | undefined;
  private lastOutDev: DevWords = linkDev(undefined);

  constructor(
    readonly registry: NodeRegistry,
    readonly pf: number,
  ) {}

  hook(hook: number, pkt: Packet, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx): 1 | Fate {
    const entries = this.registry.entries(this.pf, hook);
    if (entries.length === 0) return 1;
    if (!ctx.quiet && ctx.ctSeen && this.ctNote) ctx.steps.push({ kind: 'conntrack', text: `conntrack at ${HOOK_CHAIN_NAMES[hook]}: ${this.ctNote(pkt)}` });
    if (inLink !== this.lastIn) {
      this.lastIn = inLink;
      this.lastInDev = linkDev(inLink);
    }
    setDeviceWords(pkt, true, this.lastInDev);
    if (outLink !== this.lastOut) {
      this.lastOut = outLink;
      this.lastOutDev = linkDev(outLink);
    }
    setDeviceWords(pkt, false, this.lastOutDev);
    const st = hookState(this.states, this.depth, this.pf, hook, inLink, outLink, ctx);
    this.depth++;
    try {
      const from = ctx.steps.length;
      if (nfHookSlow(entries, pkt, st) === 1) return 1;
      // ip_sabotage_in stole the packet to go on with it itself (receive() does): no fate to make
      if (ctx.brSabotage) return SABOTAGED;
      // a replay's reused context, outside answers and nested hooks: the dropped fate is the scratch's
      const f = verdictFate(entries[st.index]!, st.verdict, st, from, ctx.transient && ctx.depth === 0 && this.depth === 1 ? this.dropScratch : undefined);
      // reject_tg(): the reply is sent from within the hook, the packet as it stands there.
      if (f.kind === 'rejected') ctx.stack?.reject(this.pf, pkt, hook, f, st.inLink, ctx);
      return f;
    } finally {
      this.depth--;
    }
  }
}
