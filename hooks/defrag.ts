/**
 * nf_defrag_ipv4 and nf_defrag_ipv6 as hook modules: registered with
 * conntrack (which needs whole packets) at NF_IP_PRI_CONNTRACK_DEFRAG (-400)
 * on PRE_ROUTING and LOCAL_OUT. IPv4 fragments are reassembled
 * (path/ip-frag.ts): a fragment is held (NF_STOLEN) until its datagram is
 * whole, which then goes on through the hook in its place. IPv6
 * reassembly is not modelled: a fragment nf_defrag_ipv6 takes is held and
 * never completed.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/nf_defrag_ipv4.c   ipv4_conntrack_defrag(): every fragment (ip_is_fragment)
 *   net/ipv6/netfilter/nf_defrag_ipv6_hooks.c, nf_conntrack_reasm.c   ipv6_defrag() →
 *                         nf_ct_frag6_gather() → nf_ct_frag6_queue(): see defrag6Takes
 */
import { F_IGNORE_DF, M_FLAGS, M_FRAG_MAX_SIZE, M_LEN, M_NHOFF } from '../vm/layout.js';
import { NF_ACCEPT, NF_INET_LOCAL_OUT, NF_STOLEN, NFPROTO_IPV6, type Backend } from '../core/netfilter.js';
import { FRAG_DONE, IP_DEFRAG_CONNTRACK_IN, IP_DEFRAG_CONNTRACK_OUT, type IpFrags } from './path/ip-frag.js';
import type { Packet } from '../vm/packet.js';
import type { NodeHookOps } from './hook.js';
import { hookSlots } from './priorities.js';
import { isFragment } from './path/ipv4.js';
import {
  NEXTHDR_AUTH, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_NONE, NEXTHDR_ROUTING,
} from './path/ipv6.js';

/** The nf_defrag ops of family `pf` (NFPROTO_IPV4 / NFPROTO_IPV6). */
export function defragOps(pf: number, backend: Backend, frags?: IpFrags): NodeHookOps[] {
  const ops = (hooknum: number) => {
    if (pf === NFPROTO_IPV6 || !frags) return (pkt: Packet) => (defrag6Takes(pkt) ? NF_STOLEN : NF_ACCEPT);
    // ipv4_conntrack_defrag() → nf_ct_ipv4_gather_frags(): the user by hook (zone 0), skb->ignore_df once whole
    const user = hooknum === NF_INET_LOCAL_OUT ? IP_DEFRAG_CONNTRACK_OUT : IP_DEFRAG_CONNTRACK_IN;
    return (pkt: Packet) => {
      if (!isFragment(pkt)) return NF_ACCEPT;
      if (frags.defrag(pkt, user) !== FRAG_DONE) return NF_STOLEN;
      pkt.meta[M_FLAGS] = pkt.meta[M_FLAGS]! | F_IGNORE_DF;
      pkt.meta[M_FRAG_MAX_SIZE] = frags.lastMaxSize;
      return NF_ACCEPT;
    };
  };
  return hookSlots(pf, backend, { conntrack: true, tables: [] })
    .filter((s) => s.component === 'defrag')
    .map((s) => ({ pf, hooknum: s.hook, priority: s.priority, name: s.owner, source: { kind: 'defrag' }, hook: ops(s.hook) }));
}

/**
 * nf_defrag_ipv6 (ipv6_defrag → nf_ct_frag6_gather → nf_ct_frag6_queue):
 * whether the fragment is taken (queued for reassembly, or dropped as
 * malformed: both end the packet here) or goes on unchanged. A packet
 * without a fragment header, with payload_len 0, or an atomic fragment
 * (offset 0, no MF; reassembly of it is not modelled) goes on; so does a
 * first fragment without its whole upper-layer header (thdrTruncated) and
 * a non-final fragment whose end is not a multiple of 8 (nf_ct_frag6_queue
 * says -EPROTO, which nf_ct_frag6_gather turns into 0): unreassembled.
 * Checked against 6.18 in test/kernel/replay6-kernel.test.ts.
 */
export function defrag6Takes(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  if (nh + 40 > end) return false;
  const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
  if (plen === 0) return false;
  let next = d[nh + 6]!;
  let off = nh + 40;
  for (let n = 0; n < 16; n++) {
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 8 > end) return true; // pskb_may_pull fails: -ENOMEM, dropped
      const fo = (d[off + 2]! << 8) | d[off + 3]!;
      if ((fo & 0xfff9) === 0) return false;
      const offset = fo & 0xfff8;
      if (offset === 0 && thdrTruncated(d, d[off]!, off + 8, end)) return false;
      const last = offset + (plen - (off + 8 - (nh + 40)));
      if ((fo & 1) !== 0 && (last & 7) !== 0) return false;
      return true;
    }
    // find_prev_fhdr(): every extension header (ipv6_ext_hdr) before the fragment header, AH included
    if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST && next !== NEXTHDR_AUTH) return false;
    if (off + 2 > end) return false;
    const len = next === NEXTHDR_AUTH ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  return false;
}

/**
 * ipv6frag_thdr_truncated() for a first fragment (RFC 8200 4.5): whether the
 * headers after the fragment header stop before a whole upper-layer header
 * (TCP 20, UDP 8, ICMPv6 8 bytes, anything else 1). nf_ct_frag6_gather
 * returns 0 for such a fragment ("Drop incomplete fragment"), so
 * nf_defrag_ipv6 accepts it as it is.
 */
function thdrTruncated(d: Uint8Array, next: number, off: number, end: number): boolean {
  // ipv6_skip_exthdr(): an unreadable extension header or NEXTHDR_NONE → -1 → not truncated.
  for (let n = 0; n < 16 && (next === NEXTHDR_HOP || next === NEXTHDR_ROUTING || next === NEXTHDR_DEST || next === NEXTHDR_AUTH ||
    next === NEXTHDR_FRAGMENT || next === NEXTHDR_NONE); n++) {
    if (next === NEXTHDR_NONE) return false;
    if (off + 2 > end) return false;
    let len: number;
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 4 > end) return false;
      if ((((d[off + 2]! << 8) | d[off + 3]!) & 0xfff8) !== 0) return false;
      len = 8;
    } else len = next === NEXTHDR_AUTH ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  const need = next === 6 ? 20 : next === 17 || next === 58 ? 8 : 1;
  return off + need > end;
}
