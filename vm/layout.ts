/**
 * Kernel constants and the memory layouts the VM shares with its producers.
 *
 * Mirrors (Linux 6.18):
 *   include/uapi/linux/netfilter.h            verdicts, NFPROTO_*, hooks
 *   include/uapi/linux/netfilter/nf_tables.h  registers, payload bases, meta keys, cmp/range/bitwise ops
 *   include/net/netfilter/nf_tables.h         struct nft_regs, NFT_JUMP_STACK_SIZE
 *   net/netfilter/nf_tables_api.c             nft_parse_register(), nft_parse_register_load/store()
 *
 * Names are the kernel's, so that grepping works across both trees.
 */
import {
  NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_INET, NFPROTO_ARP, NFPROTO_BRIDGE, NFPROTO_NETDEV,
} from '../core/netfilter.js';

// The VM keeps packet bytes in registers in memory order and reads them back as
// host-order words (like the kernel on x86). Typed arrays use host order, so a
// big-endian host would change every printed constant and every fast compare.
if (new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] !== 0x04) {
  throw new Error('nfvm: the VM requires a little-endian host');
}

// ---------------------------------------------------------------------------
// Registers (struct nft_regs)
// ---------------------------------------------------------------------------

/** Number of u32 words in struct nft_regs (the verdict overlays words 0..3). */
const NFT_REG32_NUM = 20;
/** Bytes in a 128-bit register (NFT_REG_1..4). */
export const NFT_REG_SIZE = 16;
/** Bytes in a 32-bit register (NFT_REG32_00..15). */
const NFT_REG32_SIZE = 4;
/** Bytes in the whole register block: sizeof_field(struct nft_regs, data). */
export const NFT_REGS_BYTES = NFT_REG32_NUM * NFT_REG32_SIZE;
/** Largest data item (nft_data): 64 bytes. */
export const NFT_DATA_VALUE_MAXLEN = 64;

/** UAPI register numbers (enum nft_registers). */
export const NFT_REG_VERDICT = 0; // verdict area, u32 slots 0..3
export const NFT_REG_1 = 1; // 128-bit, u32 slots 4..7
export const NFT_REG_2 = 2; // slots 8..11
export const NFT_REG_3 = 3; // slots 12..15
export const NFT_REG_4 = 4; // slots 16..19
export const NFT_REG32_00 = 8; // 32-bit registers 8..23 alias slots 4..19
export const NFT_REG32_01 = 9;
export const NFT_REG32_02 = 10;
export const NFT_REG32_03 = 11;
export const NFT_REG32_04 = 12;
export const NFT_REG32_05 = 13;
export const NFT_REG32_06 = 14;
export const NFT_REG32_07 = 15;
export const NFT_REG32_08 = 16;
export const NFT_REG32_09 = 17;
export const NFT_REG32_10 = 18;
export const NFT_REG32_11 = 19;
export const NFT_REG32_12 = 20;
export const NFT_REG32_13 = 21;
export const NFT_REG32_14 = 22;
export const NFT_REG32_15 = 23;
/** Highest 128-bit register number (NFT_REG_MAX). */
export const NFT_REG_MAX = NFT_REG_4;

/**
 * nft_parse_register(): UAPI register number → u32 slot index in the
 * register block, or -1 for numbers the kernel rejects with -ERANGE (5..7, >23).
 * Bytecode operands hold slot indexes; the emitters take UAPI numbers.
 */
export function regSlot(reg: number): number {
  if (reg >= 0 && reg <= NFT_REG_4) return reg * (NFT_REG_SIZE / NFT_REG32_SIZE);
  if (reg >= NFT_REG32_00 && reg <= NFT_REG32_15) return reg + NFT_REG_SIZE / NFT_REG32_SIZE - NFT_REG32_00;
  return -1;
}

/**
 * nft_dump_register(): u32 slot → the register number the kernel reports (and
 * libnftnl prints). Slots on a 16-byte boundary print as NFT_REG_n.
 */
export function slotReg(slot: number): number {
  if (slot % (NFT_REG_SIZE / NFT_REG32_SIZE) === 0) return slot / (NFT_REG_SIZE / NFT_REG32_SIZE);
  return slot - NFT_REG_SIZE / NFT_REG32_SIZE + NFT_REG32_00;
}

/** nft_parse_register_load/store checks on a slot: a reason or null. */
export function checkRegLoad(slot: number, len: number): string | null {
  if (slot < NFT_REG_1 * (NFT_REG_SIZE / NFT_REG32_SIZE)) return `register slot ${slot} is not a data register (-EINVAL)`;
  if (len <= 0) return `length ${len} is not positive (-EINVAL)`;
  if (slot * NFT_REG32_SIZE + len > NFT_REGS_BYTES) return `${len} bytes at slot ${slot} overrun the registers (-ERANGE)`;
  return null;
}
export const checkRegStore = checkRegLoad;

// ---------------------------------------------------------------------------
// nf_tables verdicts (include/uapi/linux/netfilter/nf_tables.h, enum nft_verdicts)
// ---------------------------------------------------------------------------

export const NFT_CONTINUE = -1; // keep evaluating this rule
export const NFT_BREAK = -2; // rule does not match: next rule
export const NFT_JUMP = -3; // call a chain, push the return point
export const NFT_GOTO = -4; // switch to a chain without pushing
export const NFT_RETURN = -5; // pop, or the base chain policy

/** Jump stack depth (NFT_JUMP_STACK_SIZE); nf_tables_api refuses nesting that deep (-EMLINK). */
export const NFT_JUMP_STACK_SIZE = 16;

/** libnftnl nftnl_family2str(). */
export function familyName(nfproto: number): string {
  switch (nfproto) {
    case NFPROTO_IPV4: return 'ip';
    case NFPROTO_IPV6: return 'ip6';
    case NFPROTO_INET: return 'inet';
    case NFPROTO_ARP: return 'arp';
    case NFPROTO_BRIDGE: return 'bridge';
    case NFPROTO_NETDEV: return 'netdev';
    default: return 'unknown';
  }
}

// ---------------------------------------------------------------------------
// Expression enums (include/uapi/linux/netfilter/nf_tables.h)
// ---------------------------------------------------------------------------

/** enum nft_payload_bases */
export const NFT_PAYLOAD_LL_HEADER = 0;
export const NFT_PAYLOAD_NETWORK_HEADER = 1;
export const NFT_PAYLOAD_TRANSPORT_HEADER = 2;
export const NFT_PAYLOAD_INNER_HEADER = 3;
/** libnftnl base2str(): printed as `@ <name> header + off`. */
export const PAYLOAD_BASE_NAMES: readonly string[] = Object.freeze(['link', 'network', 'transport', 'inner']);

/** enum nft_cmp_ops (memcmp over the bytes). */
export const NFT_CMP_EQ = 0;
export const NFT_CMP_NEQ = 1;
export const NFT_CMP_LT = 2;
export const NFT_CMP_LTE = 3;
export const NFT_CMP_GT = 4;
export const NFT_CMP_GTE = 5;
export const CMP_OP_NAMES: readonly string[] = Object.freeze(['eq', 'neq', 'lt', 'lte', 'gt', 'gte']);

/** enum nft_range_ops */
export const NFT_RANGE_EQ = 0;
export const NFT_RANGE_NEQ = 1;

/** enum nft_bitwise_ops (MASK_XOR was called BOOL before 6.x). */
export const NFT_BITWISE_MASK_XOR = 0;
export const NFT_BITWISE_LSHIFT = 1;
export const NFT_BITWISE_RSHIFT = 2;
// Linux 6.13+: boolean operations of two registers (NFTA_BITWISE_SREG2)
export const NFT_BITWISE_AND = 3;
export const NFT_BITWISE_OR = 4;
export const NFT_BITWISE_XOR = 5;

/** enum nft_byteorder_ops */
export const NFT_BYTEORDER_NTOH = 0;
export const NFT_BYTEORDER_HTON = 1;

/** NFT_LOOKUP_F_INV: match when the key is absent. */
export const NFT_LOOKUP_F_INV = 1;
/**
 * Not a kernel flag: the rule's builder set the NFTA_LOOKUP_FLAGS attribute
 * even when zero (ebtables-nft's among, gen_lookup()), which libnftnl then
 * prints (`0x0`); nft sends it only with NFT_LOOKUP_F_INV.
 */
export const LOOKUP_FLAGS_ATTR = 0x10000;

/** enum nft_ng_types */
export const NFT_NG_INCREMENTAL = 0;
export const NFT_NG_RANDOM = 1;

/** enum nft_limit_type, NFT_LIMIT_F_INV, and the packet burst default. */
export const NFT_LIMIT_PKTS = 0;
export const NFT_LIMIT_PKT_BYTES = 1;
export const NFT_LIMIT_F_INV = 1;
export const NFT_LIMIT_PKT_BURST_DEFAULT = 5;

/** Set flags (enum nft_set_flags) the VM models. */
export const NFT_SET_ANONYMOUS = 0x1;
export const NFT_SET_CONSTANT = 0x2;
export const NFT_SET_INTERVAL = 0x4;
export const NFT_SET_MAP = 0x8;

/**
 * enum nft_meta_keys, with the libnftnl meta_key2str() names (index = key).
 */
export const NFT_META_LEN = 0; // skb->len, u32 host
export const NFT_META_PROTOCOL = 1; // skb->protocol, 2 bytes network order
export const NFT_META_PRIORITY = 2; // skb->priority, u32 host
export const NFT_META_MARK = 3; // skb->mark, u32 host
export const NFT_META_IIF = 4; // input ifindex, 0 without device
export const NFT_META_OIF = 5; // output ifindex, 0 without device
export const NFT_META_IIFNAME = 6; // 16 bytes, NUL padded
export const NFT_META_OIFNAME = 7;
export const NFT_META_IIFTYPE = 8; // dev->type u16 host; no device → BREAK
export const NFT_META_OIFTYPE = 9;
export const NFT_META_SKUID = 10; // socket fsuid; no full socket → BREAK
export const NFT_META_SKGID = 11;
export const NFT_META_NFTRACE = 12; // skb->nf_trace, 1 byte
export const NFT_META_RTCLASSID = 13;
export const NFT_META_SECMARK = 14;
export const NFT_META_NFPROTO = 15; // hook family, 1 byte
export const NFT_META_L4PROTO = 16; // pkt->tprot, 1 byte; no L4 info → BREAK
export const NFT_META_BRI_IIFNAME = 17;
export const NFT_META_BRI_OIFNAME = 18;
export const NFT_META_PKTTYPE = 19; // skb->pkt_type, 1 byte (LOOPBACK remapped)
export const NFT_META_CPU = 20;
export const NFT_META_IIFGROUP = 21; // dev->group; no device → BREAK
export const NFT_META_OIFGROUP = 22;
export const NFT_META_CGROUP = 23;
export const NFT_META_PRANDOM = 24; // pseudo-random u32 (seeded here)
export const NFT_META_SECPATH = 25;
export const NFT_META_IIFKIND = 26;
export const NFT_META_OIFKIND = 27;
export const NFT_META_BRI_IIFPVID = 28;
export const NFT_META_BRI_IIFVPROTO = 29;
export const NFT_META_TIME_NS = 30;
export const NFT_META_TIME_DAY = 31;
export const NFT_META_TIME_HOUR = 32;
export const NFT_META_SDIF = 33;
export const NFT_META_SDIFNAME = 34;
export const NFT_META_BRI_BROUTE = 35;
export const META_KEY_NAMES: readonly string[] = Object.freeze([
  'len', 'protocol', 'priority', 'mark', 'iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype',
  'skuid', 'skgid', 'nftrace', 'rtclassid', 'secmark', 'nfproto', 'l4proto', 'bri_iifname', 'bri_oifname', 'pkttype',
  'cpu', 'iifgroup', 'oifgroup', 'cgroup', 'random', 'secpath', 'iifkind', 'oifkind', 'bri_iifpvid', 'bri_iifvproto',
  'time', 'day', 'hour', 'sdif', 'sdifname', 'broute',
]);

/** skb->pkt_type values (PACKET_*). */
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;
export const PACKET_OUTGOING = 4;
export const PACKET_LOOPBACK = 5;

/** Interface name size (IFNAMSIZ). */
export const IFNAMSIZ = 16;

// ---------------------------------------------------------------------------
// Packet metadata record: Int32Array words (vm/packet.ts fills it). It is the
// model's struct sk_buff + struct nft_pktinfo + struct nf_hook_state.
// ---------------------------------------------------------------------------

export const M_NFPROTO = 0; // nft_pf(pkt): NFPROTO_* of the hook
export const M_HOOK = 1; // nft_hook(pkt): NF_INET_* (-1 outside a hook)
export const M_IIF = 2; // state->in->ifindex; 0 = no input device
export const M_OIF = 3; // state->out->ifindex; 0 = no output device
export const M_IIFTYPE = 4; // in->type (ARPHRD_*)
export const M_OIFTYPE = 5; // out->type
export const M_IIFGROUP = 6; // in->group
export const M_OIFGROUP = 7; // out->group
export const M_MARK = 8; // skb->mark
export const M_PRIORITY = 9; // skb->priority
export const M_PKTTYPE = 10; // skb->pkt_type (PACKET_*)
export const M_CPU = 11; // smp_processor_id()
export const M_SKUID = 12; // socket fsuid, -1 = no (full) socket with a file
export const M_SKGID = 13; // socket fsgid, -1 = no socket
export const M_CT_STATE = 14; // ct state bits (NF_CT_STATE_*), filled by the conntrack model
export const M_CT_MARK = 15; // ct->mark
export const M_CT_STATUS = 16; // ct->status bits
export const M_CT_DIR = 17; // CTINFO2DIR, -1 = no conntrack
export const M_L4PROTO = 18; // pkt->tprot (valid when F_L4PROTO)
export const M_FRAGOFF = 19; // pkt->fragoff: IPv4 raw 13-bit field (8-byte units), IPv6 bytes
export const M_LEN = 20; // skb->len at the hook: the L3 length (network header to end)
export const M_THOFF = 21; // transport header, absolute frame offset (nft_thoff)
export const M_FLAGS = 22; // F_* below
export const M_PROTOCOL = 23; // skb->protocol as a host number (0x0800, 0x86dd)
export const M_NHOFF = 24; // network header, absolute frame offset
export const M_MACOFF = 25; // MAC header, absolute frame offset (valid when F_MAC_HEADER)
export const M_END = 26; // end of packet data, absolute frame offset (= NHOFF + LEN)
export const M_SECMARK = 27; // skb->secmark
export const M_IIFNAME = 28; // 4 words (16 bytes, NUL padded): in->name
export const M_OIFNAME = 32; // 4 words: out->name
export const M_CT_ID = 36; // the conntrack's number in the conntrack table (skb->_nfct); -1 none, <= -2 a template
// The bridge family (decodeBridgeFrame / setBridgePort in packet.ts): what ebt_do_table and
// the nf_tables bridge expressions read besides the port devices in M_IIF*/M_OIF*.
export const M_BRIINAME = 37; // 4 words: br_port_get_rcu(in)->br->dev->name, zero when in is no bridge port
export const M_BRIONAME = 41; // 4 words: the bridge of the output port
export const M_VLAN_TCI = 45; // skb->vlan_tci (valid when M_VLAN_PROTO != 0)
export const M_VLAN_PROTO = 46; // skb->vlan_proto as a host number; 0 = !skb_vlan_tag_present()
// br_netfilter's struct nf_bridge_info (the skb extension SKB_EXT_BRIDGE_NF) of a bridged IP packet:
export const M_BRNF = 47; // BRNF_* bits below; 0 = no nf_bridge_info
export const M_PHYSINNAME = 48; // 4 words: nf_bridge->physinif's name (the bridge port it came in on)
export const M_PHYSOUTNAME = 52; // 4 words: nf_bridge->physoutdev's name (set at FORWARD)
export const M_BRNF_DADDR = 56; // 4 words: nf_bridge->ipv4_daddr / ipv6_daddr as the packet entered PREROUTING
export const M_RTCLASSID = 60; // skb_dst(skb)->tclassid (IPv4 routing realms), 0 without a route
// ip6_packet_match()'s view of an IPv6 packet with an AH header (valid when F_XT_AH): x_tables
// calls ipv6_find_hdr() without IP6_FH_F_AUTH and so walks past AH, where nf_tables' pktinfo
// (M_L4PROTO/M_THOFF/M_FRAGOFF) stops at it. Legacy ip6tables tables run with these in place.
export const M_XT_L4PROTO = 61;
export const M_XT_THOFF = 62;
export const M_XT_FRAGOFF = 63;
// skb->sk of a locally generated packet, as xt_owner reads it (M_SKUID/M_SKGID above hold the
// file's fsuid/fsgid when there is one): SK_* below, then the file's supplementary groups.
export const M_SK = 64; // SK_NONE, SK_KERNEL or SK_FILE
export const M_SK_NGROUPS = 65; // f_cred->group_info->ngroups (at most SK_MAX_GROUPS)
export const M_SK_GROUPS = 66; // SK_MAX_GROUPS words: f_cred->group_info->gid[]
/** Supplementary groups a packet's socket can carry in the model. */
export const SK_MAX_GROUPS = 8;
export const M_SK_INDEX = 74; // SK_ASSIGNED: the socket's number in the node's socket table (hooks/snapshot/ss.ts socketAt)
// sk->sk_cgrp_data of the packet's socket (any SK_* but SK_NONE), as xt_cgroup reads it:
export const M_SK_CGROUP = 75; // sock_cgroup_ptr(): the cgroup v2 number (vm/cgroup.ts cgroupId; 0 the root)
export const M_SK_CLASSID = 76; // sock_cgroup_classid(): the net_cls class id, 0 without net_cls
export const M_FRAG_MAX_SIZE = 77; // IPCB(skb)->frag_max_size of a datagram nf_defrag reassembled (with F_IGNORE_DF)
/** Words in the metadata record. */
export const META_WORDS = 78;

/** M_SK: no socket (skb->sk NULL: a received, forwarded or REJECT-made packet). */
export const SK_NONE = 0;
/** M_SK: a kernel socket, which has no file (the stack's control sockets that send its ICMP errors, echo replies and resets). */
export const SK_KERNEL = 1;
/** M_SK: a program's socket with its file (M_SKUID, M_SKGID and the groups are the file's credentials). */
export const SK_FILE = 2;
/** M_SK: a received packet TPROXY gave one of the node's sockets (nf_tproxy_assign_sock), M_SK_INDEX. */
export const SK_ASSIGNED = 3;

/** M_BRNF bits */
export const BRNF_PRESENT = 0x1; // nf_bridge_info_exists()
export const BRNF_IN_PREROUTING = 0x2; // nf_bridge->in_prerouting
export const BRNF_PKT_OTHERHOST = 0x4; // nf_bridge->pkt_otherhost
export const BRNF_SABOTAGE_DONE = 0x8; // nf_bridge->sabotage_in_done
export const BRNF_PHYSOUT = 0x10; // nf_bridge->physoutdev is set

/** M_FLAGS bits */
export const F_L4PROTO = 0x1; // NFT_PKTINFO_L4PROTO: tprot/thoff/fragoff are valid
export const F_MAC_HEADER = 0x2; // skb_mac_header_was_set() && mac_len != 0
export const F_NFTRACE = 0x4; // skb->nf_trace
export const F_IPVS_PROPERTY = 0x8; // skb->ipvs_property: IPVS transmitted or un-NATed the packet
export const F_XT_AH = 0x20; // an AH header before the upper layer: M_XT_* hold x_tables' view
export const F_FRAGMENTED = 0x80; // IP6SKB_FRAGMENTED: an IPv6 datagram reassembled, or an atomic fragment ipv6_frag_rcv passed
export const F_IGNORE_DF = 0x40; // skb->ignore_df: nf_defrag reassembled it (ip_exceeds_mtu then reads M_FRAG_MAX_SIZE)
export const F_BR_BROUTE = 0x10; // BR_INPUT_SKB_CB(skb)->br_netfilter_broute (nft_meta_bridge_set_eval: meta broute set 1)
export const F_CSUM_PARTIAL = 0x100; // CHECKSUM_PARTIAL: the transport checksum is left to the device (nfvm's bytes hold the whole sum)

// ---------------------------------------------------------------------------
// Chain table: CHAIN_WORDS Int32 words per chain.
// ---------------------------------------------------------------------------

export const CH_FIRST = 0; // word offset of the chain's first RULE (or its END)
export const CH_POLICY = 1; // NF_ACCEPT / NF_DROP for base chains, -1 for regular chains
export const CH_NAME = 2; // index into Program.strings
export const CH_HOOK = 3; // NF_INET_* for base chains, -1 otherwise
export const CH_RULES = 4; // number of rules
export const CHAIN_WORDS = 5;

// ---------------------------------------------------------------------------
// Trace ring: TRACE_WORDS Int32 words per event (VmEnv.trace, vm/program.ts).
// ---------------------------------------------------------------------------

export const EV_TYPE = 0; // TRACE_* below (NFT_TRACETYPE_* numbering where one exists)
export const EV_CHAIN = 1; // chain index
export const EV_RULE = 2; // rule index (Program-wide), -1 for policy/return
export const EV_VERDICT = 3; // verdict code
export const EV_ARG = 4; // event argument (the word offset of a log expression)
export const TRACE_WORDS = 5;

export const TRACE_POLICY = 1; // NFT_TRACETYPE_POLICY: base chain policy applied
export const TRACE_RETURN = 2; // NFT_TRACETYPE_RETURN: end of a chain / return
export const TRACE_RULE = 3; // NFT_TRACETYPE_RULE: a rule matched (verdict attached)
export const TRACE_LOG = 16; // a log expression ran (non-terminating)
export const TRACE_NFTRACE = 17; // meta set nftrace ran (non-terminating)
