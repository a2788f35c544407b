/**
 * icmpv6_send() / icmp_send() called by a target on the packet it was
 * given (ip6t_NPT's parameter problem: net/ipv6/netfilter/ip6t_NPT.c,
 * Linux 6.18). The kernel sends the error from inside the target; the
 * engines run one packet at a time, so the request waits until the table's
 * hook function returns (hooks/tables.ts calls flush()) and the node's
 * stack (hooks/answer) then answers the packet as the target left it, with
 * its rules and rate limits.
 */
import type { XtIcmp } from '../ext/xt.js';
import type { Packet } from '../vm/packet.js';
import type { Link } from './snapshot/node.js';
import type { PathCtx } from './path/ctx.js';

export class NodeXtIcmp implements XtIcmp {
  /** (pf, type, code, info) of each error asked for since the last flush. */
  readonly pending: number[] = [];

  icmpSend(pf: number, type: number, code: number, info: number): void {
    this.pending.push(pf, type, code, info);
  }

  /** The errors asked for while the chain ran, for `pkt` received on `dev` (undefined: locally generated). */
  flush(pkt: Packet, dev: Link | undefined, ctx: PathCtx): void {
    const p = this.pending;
    for (let i = 0; i < p.length; i += 4) ctx.stack?.icmpError(p[i]!, pkt, p[i + 1]!, p[i + 2]!, p[i + 3]!, dev, ctx);
    p.length = 0;
  }
}
