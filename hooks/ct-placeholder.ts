/**
 * The conntrack seam, until hooks/conntrack/ and hooks/nat/ model
 * connection tracking and NAT: whether a ruleset loads conntrack, the hook
 * entries conntrack registers (at their kernel priorities, accepting every
 * packet), and the conntrack state a packet brings.
 *
 *  - loading a ruleset registers conntrack (and nf_defrag, defrag.ts) when it
 *    has a nat table or an extension whose checkentry takes a conntrack
 *    reference (nf_ct_netns_get): conntrack, state, connmark, CONNMARK, CT,
 *    NOTRACK, helper, the NAT targets, ...;
 *  - ipv4_conntrack_in/ipv6_conntrack_in (PRE_ROUTING -200),
 *    ipv4_conntrack_local (LOCAL_OUT -200) and nf_confirm (LOCAL_IN and
 *    POST_ROUTING, INT_MAX) are registered and accept: the packet's state is
 *    what it brings (a packet spec's `ct ...`; a captured frame is the first
 *    packet of its own connection, ctstate NEW, when conntrack is loaded, and
 *    has no conntrack entry otherwise: captureCt);
 *  - the packets the node's stack sends in answer get the conntrack words
 *    the kernel gives them (answerCt: the seam the integration replaces).
 */
import type { Ruleset } from '../core/ast.js';
import {
  IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT, NF_CT_STATE_UNTRACKED_BIT,
  NF_ACCEPT, type Backend,
} from '../core/netfilter.js';
import type { Answer } from './path/ctx.js';
import { M_CT_DIR, M_CT_STATE, M_CT_STATUS } from '../vm/layout.js';
import type { Packet } from '../vm/packet.js';
import type { NodeHookOps } from './hook.js';
import { hookSlots } from './priorities.js';

/** Extensions whose checkentry takes a conntrack reference (nf_ct_netns_get). */
const CT_MATCHES = new Set(['conntrack', 'state', 'connmark', 'helper', 'connbytes', 'connlimit', 'cluster', 'ipvs', 'socket']);
const CT_TARGETS = new Set(['CONNMARK', 'CT', 'NOTRACK', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP', 'CONNSECMARK', 'TPROXY']);

/** Whether loading `rs` would register conntrack (and nf_defrag) in the namespace. */
export function needsConntrack(rs: Ruleset): boolean {
  if (rs.tables.has('nat')) return true;
  for (const t of rs.tables.values())
    for (const c of t.chains.values())
      for (const r of c.rules) {
        if (r.matches.some((m) => CT_MATCHES.has(m.name))) return true;
        if ((r.target.kind === 'ext' || r.target.kind === 'unknown') && CT_TARGETS.has(r.target.name)) return true;
      }
  return false;
}

/** Conntrack's entries of family `pf`, accepting every packet. */
export function conntrackOps(pf: number, backend: Backend): NodeHookOps[] {
  const accept = () => NF_ACCEPT;
  return hookSlots(pf, backend, { conntrack: true, tables: [] })
    .filter((s) => s.component !== 'defrag')
    .map((s) => ({ pf, hooknum: s.hook, priority: s.priority, name: s.owner, source: { kind: 'module' }, hook: accept }));
}

/** A captured frame's conntrack fields: ctstate NEW when the node runs conntrack, none otherwise. */
export function captureCt(pkt: Packet, conntrack: boolean): void {
  const m = pkt.meta;
  if (conntrack) {
    m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
    m[M_CT_STATUS] = 0;
    m[M_CT_DIR] = 0;
  } else {
    m[M_CT_STATE] = 0;
    m[M_CT_DIR] = -1;
  }
}

/**
 * THE CONNTRACK SEAM OF THE NODE'S ANSWERS (the conntrack integration
 * replaces this function): the conntrack of a packet the node's stack
 * sends in answer to another (hooks/answer), before it enters
 * ip_local_out.
 *
 * In the kernel an ICMP error and REJECT's reset take the original's entry
 * with nf_ct_attach() (icmp_glue_bits, icmpv6_getfrag, nf_send_reset):
 * ctinfo IP_CT_RELATED_REPLY when the original went in the original
 * direction, and conntrack at LOCAL_OUT leaves them alone; an echo reply
 * and the stack's own reset are looked up as any packet and find the reply
 * direction of the original's connection. Here, without a conntrack
 * table: RELATED (attached) or ESTABLISHED (looked up) in the reply
 * direction when the original was tracked; the first packet of its own
 * connection (NEW) otherwise. Returns the answer's ctx.ct (skb->_nfct):
 * the original's entry when attached.
 */
export function answerCt(pkt: Packet, a: Answer, conntrack: boolean): unknown {
  const m = pkt.meta;
  if (!conntrack) {
    m[M_CT_STATE] = 0;
    m[M_CT_DIR] = -1;
    return undefined;
  }
  const tracked = a.origCtDir >= 0 && (a.origCtState & ~NF_CT_STATE_UNTRACKED_BIT) !== 0;
  if (!tracked) {
    m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
    m[M_CT_STATUS] = 0;
    m[M_CT_DIR] = 0;
    return undefined;
  }
  m[M_CT_STATE] = a.attach ? NF_CT_STATE_RELATED_BIT : NF_CT_STATE_ESTABLISHED_BIT;
  m[M_CT_STATUS] = a.origCtStatus;
  m[M_CT_DIR] = a.origCtDir === IP_CT_DIR_REPLY ? IP_CT_DIR_ORIGINAL : IP_CT_DIR_REPLY;
  return a.attach ? a.origCt : undefined;
}
