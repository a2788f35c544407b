/**
 * Kernel UAPI vocabulary shared by every layer of nfvm (Linux 6.18):
 * include/uapi/linux/netfilter.h (verdicts, families, hooks),
 * include/uapi/linux/netfilter/nf_conntrack_common.h (ctinfo, status bits,
 * the `ct state` bits), nf_conntrack_tuple_common.h (directions), and the
 * backend a ruleset was loaded with.
 */

/** Which iptables flavour loaded the ruleset: x_tables (iptables-legacy) or nf_tables (iptables-nft). */
export type Backend = 'legacy' | 'nft';

/** enum ip_conntrack_info: what skb->_nfct says about the packet. */
export const IP_CT_ESTABLISHED = 0; // part of an established connection (either direction)
export const IP_CT_RELATED = 1; // like NEW, but related to an existing connection (ICMP error, expectation)
export const IP_CT_NEW = 2; // started a new connection (original direction only); may be a retransmission
export const IP_CT_IS_REPLY = 3; // >= this: reply direction
export const IP_CT_ESTABLISHED_REPLY = IP_CT_ESTABLISHED + IP_CT_IS_REPLY;
export const IP_CT_RELATED_REPLY = IP_CT_RELATED + IP_CT_IS_REPLY;
export const IP_CT_NUMBER = 5;
/** Kernel-internal ctinfo of the untracked template (NOTRACK, CT --notrack). */
export const IP_CT_UNTRACKED = 7;

/** enum ip_conntrack_dir */
export const IP_CT_DIR_ORIGINAL = 0;
export const IP_CT_DIR_REPLY = 1;

/** `ct state` / xt_conntrack state bits: NF_CT_STATE_BIT(ctinfo) = 1 << (ctinfo % IP_CT_IS_REPLY + 1). */
export const NF_CT_STATE_INVALID_BIT = 1 << 0;
export const NF_CT_STATE_ESTABLISHED_BIT = 1 << (IP_CT_ESTABLISHED + 1);
export const NF_CT_STATE_RELATED_BIT = 1 << (IP_CT_RELATED + 1);
export const NF_CT_STATE_NEW_BIT = 1 << (IP_CT_NEW + 1);
export const NF_CT_STATE_UNTRACKED_BIT = 1 << 6;

/** NF_CT_STATE_BIT(ctinfo) */
export function nfCtStateBit(ctinfo: number): number {
  return 1 << ((ctinfo % IP_CT_IS_REPLY) + 1);
}

/** enum ip_conntrack_status (ct->status bits). */
export const IPS_EXPECTED = 1 << 0; // an expected connection
export const IPS_SEEN_REPLY = 1 << 1; // packets seen in both directions
export const IPS_ASSURED = 1 << 2; // never to be early-dropped
export const IPS_CONFIRMED = 1 << 3; // in the hash table (nf_conntrack_confirm)
export const IPS_SRC_NAT = 1 << 4; // the original source is altered
export const IPS_DST_NAT = 1 << 5; // the original destination is altered
export const IPS_NAT_MASK = IPS_DST_NAT | IPS_SRC_NAT;
export const IPS_SEQ_ADJUST = 1 << 6;
export const IPS_SRC_NAT_DONE = 1 << 7; // the SNAT binding is set up
export const IPS_DST_NAT_DONE = 1 << 8; // the DNAT binding is set up
export const IPS_NAT_DONE_MASK = IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE;
export const IPS_DYING = 1 << 9;
export const IPS_FIXED_TIMEOUT = 1 << 10;
export const IPS_TEMPLATE = 1 << 11;
export const IPS_UNTRACKED = 1 << 12;
/** Reuses the untracked bit: a conntrack that lost a NAT clash race (nf_ct_resolve_clash). */
export const IPS_NAT_CLASH = IPS_UNTRACKED;
export const IPS_HELPER = 1 << 13; // a helper was attached explicitly (CT --helper)
export const IPS_OFFLOAD = 1 << 14;
export const IPS_HW_OFFLOAD = 1 << 15;

// ---------------------------------------------------------------------------
// Verdicts (include/uapi/linux/netfilter.h)
// ---------------------------------------------------------------------------

export const NF_DROP = 0; // drop; high 16 bits may carry -errno (NF_DROP_ERR)
export const NF_ACCEPT = 1; // accept, continue with the next hook
export const NF_STOLEN = 2; // consumed by the hook
export const NF_QUEUE = 3; // to a userspace queue (number in the high 16 bits)
export const NF_REPEAT = 4; // call the hook again
export const NF_STOP = 5; // deprecated
export const NF_MAX_VERDICT = NF_STOP;
/** The kernel switches on `code & NF_VERDICT_MASK` for the netfilter verdicts. */
export const NF_VERDICT_MASK = 0x000000ff;
export const NF_VERDICT_QMASK = 0xffff0000;
export const NF_VERDICT_QBITS = 16;
/** NF_QUEUE with this flag continues when no program listens on the queue. */
export const NF_VERDICT_FLAG_QUEUE_BYPASS = 0x00008000;

// ---------------------------------------------------------------------------
// Families (enum nfproto) and hooks (enum nf_inet_hooks)
// ---------------------------------------------------------------------------

export const NFPROTO_UNSPEC = 0;
export const NFPROTO_INET = 1;
export const NFPROTO_IPV4 = 2;
export const NFPROTO_ARP = 3;
export const NFPROTO_NETDEV = 5;
export const NFPROTO_BRIDGE = 7;
export const NFPROTO_IPV6 = 10;

export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;

/**
 * The bridge hooks (include/uapi/linux/netfilter_bridge.h): NF_BR_PRE_ROUTING
 * to NF_BR_POST_ROUTING share the inet numbering, NF_BR_BROUTING is
 * ebtables' own (the broute table, run from br_handle_frame).
 */
export const NF_BR_PRE_ROUTING = 0;
export const NF_BR_LOCAL_IN = 1;
export const NF_BR_FORWARD = 2;
export const NF_BR_LOCAL_OUT = 3;
export const NF_BR_POST_ROUTING = 4;
export const NF_BR_BROUTING = 5;
export const NF_BR_NUMHOOKS = 6;

/**
 * ebtables' standard verdicts (include/uapi/linux/netfilter_bridge/ebtables.h):
 * what a standard target, a chain policy or an extension target returns to
 * ebt_do_table(); a value >= 0 is the offset of a user chain to jump to.
 */
export const EBT_ACCEPT = -1;
export const EBT_DROP = -2;
export const EBT_CONTINUE = -3;
export const EBT_RETURN = -4;
