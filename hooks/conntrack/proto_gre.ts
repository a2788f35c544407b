/**
 * GRE connection tracking.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_gre.c:
 * nf_conntrack_gre_packet: the UNREPLIED timeout until traffic is seen both
 * ways, then the REPLIED (stream) timeout and ASSURED. Without the PPTP
 * helper the keymap is empty: version 0 tuples have no keys, version 1 has
 * the call id as destination key and 0 as source key (gre_pkt_to_tuple in
 * tuple.ts).
 */
import { IPS_ASSURED, IPS_NAT_CLASH, IPS_SEEN_REPLY, NF_ACCEPT } from '../../core/netfilter.js';
import { M_END, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import type { NfConntrack } from './core.js';

const GRE_CT_UNREPLIED = 0;
const GRE_CT_REPLIED = 1;

/** nf_conntrack_gre_packet() */
export function nfConntrackGrePacket(ct: NfConntrack, e: number, pkt: Packet, ctinfo: number): number {
  const len = pkt.meta[M_END]! - pkt.meta[M_NHOFF]!;
  const status = ct.status[e]!;
  const timeouts = ct.nfCtTimeoutLookup(e) ?? ct.sysctl.greTimeouts;
  if (status & IPS_SEEN_REPLY) {
    ct.nfCtRefreshAcct(e, ctinfo, len, timeouts[GRE_CT_REPLIED]!);
    if (status & IPS_NAT_CLASH) return NF_ACCEPT;
    ct.status[e]! |= IPS_ASSURED;
  } else {
    ct.nfCtRefreshAcct(e, ctinfo, len, timeouts[GRE_CT_UNREPLIED]!);
  }
  return NF_ACCEPT;
}
