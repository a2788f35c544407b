/**
 * nf_defrag_ipv4 and nf_defrag_ipv6 as hook modules: registered with
 * conntrack (which needs whole packets) at NF_IP_PRI_CONNTRACK_DEFRAG (-400)
 * on PRE_ROUTING and LOCAL_OUT. Fragments are reassembled (path/ip-frag.ts):
 * a fragment is held (NF_STOLEN) until its datagram is whole, which then
 * goes on through the hook in its place.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/nf_defrag_ipv4.c   ipv4_conntrack_defrag(): every fragment (ip_is_fragment)
 *   net/ipv6/netfilter/nf_defrag_ipv6_hooks.c, nf_conntrack_reasm.c   ipv6_defrag() →
 *                         nf_ct_frag6_gather() → nf_ct_frag6_queue() (path/ip-frag.ts defrag6)
 */
import { M_IIF } from '../vm/layout.js';
import { NF_ACCEPT, NF_DROP, NF_INET_LOCAL_OUT, NF_STOLEN, NFPROTO_IPV6, type Backend } from '../core/netfilter.js';
import { FRAG_DONE, FRAG_DROPPED, FRAG_HELD, IP_DEFRAG_CONNTRACK_IN, IP_DEFRAG_CONNTRACK_OUT, type IpFrags } from './path/ip-frag.js';
import type { Packet } from '../vm/packet.js';
import type { NodeHookOps } from './hook.js';
import { hookSlots } from './priorities.js';
import { isFragment } from './path/ipv4.js';

/** The nf_defrag ops of family `pf` (NFPROTO_IPV4 / NFPROTO_IPV6). */
export function defragOps(pf: number, backend: Backend, frags: IpFrags): NodeHookOps[] {
  const ops = (hooknum: number) => {
    if (pf === NFPROTO_IPV6) {
      // ipv6_defrag() → nf_ct_frag6_gather(): queued (NF_STOLEN), dropped (NF_DROP), whole or as it is (NF_ACCEPT)
      const user = hooknum === NF_INET_LOCAL_OUT ? 'out' : 'in';
      return (pkt: Packet) => {
        const r = frags.defrag6(pkt, user, pkt.meta[M_IIF]!);
        return r === FRAG_HELD ? NF_STOLEN : r === FRAG_DROPPED ? NF_DROP : NF_ACCEPT;
      };
    }
    // ipv4_conntrack_defrag() → nf_ct_ipv4_gather_frags(): the user by hook (zone 0)
    const user = hooknum === NF_INET_LOCAL_OUT ? IP_DEFRAG_CONNTRACK_OUT : IP_DEFRAG_CONNTRACK_IN;
    return (pkt: Packet) => (!isFragment(pkt) || frags.defrag(pkt, user) === FRAG_DONE ? NF_ACCEPT : NF_STOLEN);
  };
  return hookSlots(pf, backend, { conntrack: true, tables: [] })
    .filter((s) => s.component === 'defrag')
    .map((s) => ({ pf, hooknum: s.hook, priority: s.priority, name: s.owner, source: { kind: 'defrag' }, hook: ops(s.hook) }));
}
