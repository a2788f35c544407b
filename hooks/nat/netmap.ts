/**
 * NETMAP: one-to-one mapping of a whole network.
 *
 * Mirrors (Linux 6.18) net/netfilter/xt_NETMAP.c (netmap_tg4, netmap_tg6):
 * netmask = ~(min ^ max); the packet's destination (PRE_ROUTING,
 * LOCAL_OUT) or source (POST_ROUTING, LOCAL_IN) keeps its host part and
 * takes the network part of the range; nf_nat_setup_info to that one
 * address with the rule's flags, HOOK2MANIP of the hook.
 */
import { M_CT_ID, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NFPROTO_IPV4, NF_ACCEPT } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import { NF_NAT_MANIP_DST, hook2manip, type NfNat, type NfNatRange2 } from './core.js';

const netmapAddr = new Int32Array(4);

/** netmap_tg4 / netmap_tg6 */
export function nfNatNetmap(nat: NfNat, pkt: Packet, range: NfNatRange2, hook: number): number {
  const m = pkt.meta;
  const e = m[M_CT_ID]!;
  if (e < 0) return NF_ACCEPT;
  const manip = hook2manip(hook);
  const d = pkt.data;
  const v4 = m[M_NFPROTO] === NFPROTO_IPV4;
  const at = m[M_NHOFF]! + (v4 ? (manip === NF_NAT_MANIP_DST ? 16 : 12) : manip === NF_NAT_MANIP_DST ? 24 : 8);
  const w = netmapAddr;
  w.fill(0);
  for (let i = 0; i < (v4 ? 1 : 4); i++) {
    const netmask = ~(range.minAddr[i]! ^ range.maxAddr[i]!);
    const a = (d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!;
    w[i] = (a & ~netmask) | (range.minAddr[i]! & netmask);
  }
  return nat.setupToAddress(pkt, e, range, w, manip);
}
