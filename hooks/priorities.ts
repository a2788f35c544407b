/**
 * Netfilter hook priorities and who registers where.
 *
 * Mirrors (Linux 6.18):
 *   include/uapi/linux/netfilter_ipv4.h   enum nf_ip_hook_priorities
 *   include/uapi/linux/netfilter_ipv6.h   enum nf_ip6_hook_priorities
 *   net/ipv4/netfilter/iptable_{raw,mangle,nat,filter,security}.c, ip6table_*.c
 *   net/netfilter/nf_conntrack_proto.c    conntrack in/local/confirm ops
 *   net/ipv4/netfilter/nf_defrag_ipv4.c, net/ipv6/netfilter/nf_defrag_ipv6_hooks.c
 *   net/netfilter/nf_nat_proto.c          the NAT core's hooks (nf_nat_ipv4_ops)
 * and iptables 1.8 `iptables/nft.c` (the base chains iptables-nft creates).
 *
 * A packet runs the entries of one (family, hook) in ascending priority; see
 * registry.ts for the tie rule.
 */
import {
  NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING, type Backend,
} from '../core/netfilter.js';

export const INT_MIN = -2147483648;
export const INT_MAX = 2147483647;

// enum nf_ip_hook_priorities
export const NF_IP_PRI_FIRST = INT_MIN;
export const NF_IP_PRI_RAW_BEFORE_DEFRAG = -450;
export const NF_IP_PRI_CONNTRACK_DEFRAG = -400;
export const NF_IP_PRI_RAW = -300;
export const NF_IP_PRI_SELINUX_FIRST = -225;
export const NF_IP_PRI_CONNTRACK = -200;
export const NF_IP_PRI_MANGLE = -150;
export const NF_IP_PRI_NAT_DST = -100;
export const NF_IP_PRI_FILTER = 0;
export const NF_IP_PRI_SECURITY = 50;
export const NF_IP_PRI_NAT_SRC = 100;
export const NF_IP_PRI_SELINUX_LAST = 225;
export const NF_IP_PRI_CONNTRACK_HELPER = 300;
export const NF_IP_PRI_CONNTRACK_CONFIRM = INT_MAX;
export const NF_IP_PRI_LAST = INT_MAX;

// enum nf_ip6_hook_priorities (no CONNTRACK_CONFIRM member: confirm uses NF_IP6_PRI_LAST)
export const NF_IP6_PRI_FIRST = INT_MIN;
export const NF_IP6_PRI_RAW_BEFORE_DEFRAG = -450;
export const NF_IP6_PRI_CONNTRACK_DEFRAG = -400;
export const NF_IP6_PRI_RAW = -300;
export const NF_IP6_PRI_SELINUX_FIRST = -225;
export const NF_IP6_PRI_CONNTRACK = -200;
export const NF_IP6_PRI_MANGLE = -150;
export const NF_IP6_PRI_NAT_DST = -100;
export const NF_IP6_PRI_FILTER = 0;
export const NF_IP6_PRI_SECURITY = 50;
export const NF_IP6_PRI_NAT_SRC = 100;
export const NF_IP6_PRI_SELINUX_LAST = 225;
export const NF_IP6_PRI_CONNTRACK_HELPER = 300;
export const NF_IP6_PRI_LAST = INT_MAX;

/**
 * Base-chain priorities of the tables iptables-nft creates (iptables/nft.c,
 * table xtables_ipv4 / xtables_ipv6; seen on 6.18 with `nft list ruleset`).
 * Only security differs from the x_tables priority: 150, not 50.
 */
export const NFT_IPT_PRI_RAW = -300;
export const NFT_IPT_PRI_MANGLE = -150;
export const NFT_IPT_PRI_NAT_DST = -100;
export const NFT_IPT_PRI_FILTER = 0;
export const NFT_IPT_PRI_SECURITY = 150;
export const NFT_IPT_PRI_NAT_SRC = 100;

// enum nf_br_hook_priorities (include/uapi/linux/netfilter_bridge.h)
export const NF_BR_PRI_FIRST = INT_MIN;
export const NF_BR_PRI_NAT_DST_BRIDGED = -300;
export const NF_BR_PRI_FILTER_BRIDGED = -200;
export const NF_BR_PRI_BRNF = 0;
export const NF_BR_PRI_NAT_DST_OTHER = 100;
export const NF_BR_PRI_FILTER_OTHER = 200;
export const NF_BR_PRI_NAT_SRC = 300;
export const NF_BR_PRI_LAST = INT_MAX;

/** nft's symbolic priorities for the ip/ip6/inet families (`priority filter` etc.). */
export const NFT_PRIO_NAMES: ReadonlyMap<string, number> = new Map([
  ['raw', -300], ['mangle', -150], ['dstnat', -100], ['filter', 0], ['security', 50], ['srcnat', 100],
]);

/** What a hook entry belongs to, so the packet path knows what to run there. */
export type HookComponent =
  | 'defrag' // nf_defrag_ipv4/ipv6
  | 'conntrack-in' // ipv4_conntrack_in / ipv6_conntrack_in (PRE_ROUTING)
  | 'conntrack-local' // ipv4_conntrack_local (LOCAL_OUT)
  | 'conntrack-confirm' // nf_confirm (LOCAL_IN, POST_ROUTING)
  | 'ipvs-in' // ip_vs_in_hook: schedule and forward requests to virtual services
  | 'ipvs-out' // ip_vs_out_hook: un-NAT the replies of masqueraded connections
  | 'ipvs-icmp' // ip_vs_forward_icmp / ip_vs_forward_icmp_v6
  | 'table'; // an iptables table (x_tables) or an iptables-nft base chain


export interface HookSlot {
  /** NFPROTO_IPV4 or NFPROTO_IPV6. */
  readonly family: number;
  /** NF_INET_*. */
  readonly hook: number;
  readonly priority: number;
  readonly component: HookComponent;
  /** iptables table name for component 'table'. */
  readonly table?: string;
  /** nft chain type for the nf_tables backend ('filter' | 'route' | 'nat'). */
  readonly chainType?: 'filter' | 'route' | 'nat';
  /** Kernel function or module that registers it (for traces and docs). */
  readonly owner: string;
}

const PRE = NF_INET_PRE_ROUTING, IN = NF_INET_LOCAL_IN, FWD = NF_INET_FORWARD, OUT = NF_INET_LOCAL_OUT, POST = NF_INET_POST_ROUTING;

/** Hooks of each iptables table (the xt_table valid_hooks). */
export const TABLE_HOOKS: ReadonlyMap<string, readonly number[]> = new Map([
  ['raw', [PRE, OUT]],
  ['mangle', [PRE, IN, FWD, OUT, POST]],
  ['nat', [PRE, IN, OUT, POST]],
  ['filter', [IN, FWD, OUT]],
  ['security', [IN, FWD, OUT]],
]);

function tableSlots(family: number, backend: Backend): HookSlot[] {
  const v6 = family === NFPROTO_IPV6;
  const mod = (t: string) => (backend === 'legacy' ? `${v6 ? 'ip6table' : 'iptable'}_${t}` : `nft ${v6 ? 'ip6' : 'ip'} ${t}`);
  const out: HookSlot[] = [];
  const add = (table: string, hook: number, priority: number, chainType: 'filter' | 'route' | 'nat' = 'filter') =>
    out.push(backend === 'nft'
      ? { family, hook, priority, component: 'table', table, chainType, owner: mod(table) }
      : { family, hook, priority, component: 'table', table, owner: mod(table) });
  if (backend === 'legacy') {
    for (const h of TABLE_HOOKS.get('raw')!) add('raw', h, NF_IP_PRI_RAW);
    for (const h of TABLE_HOOKS.get('mangle')!) add('mangle', h, NF_IP_PRI_MANGLE);
    // iptable_nat registers through the NAT core (nf_nat_ipv4_ops): DNAT side -100, SNAT side 100.
    add('nat', PRE, NF_IP_PRI_NAT_DST);
    add('nat', IN, NF_IP_PRI_NAT_SRC);
    add('nat', OUT, NF_IP_PRI_NAT_DST);
    add('nat', POST, NF_IP_PRI_NAT_SRC);
    for (const h of TABLE_HOOKS.get('filter')!) add('filter', h, NF_IP_PRI_FILTER);
    for (const h of TABLE_HOOKS.get('security')!) add('security', h, NF_IP_PRI_SECURITY);
  } else {
    for (const h of TABLE_HOOKS.get('raw')!) add('raw', h, NFT_IPT_PRI_RAW);
    for (const h of TABLE_HOOKS.get('mangle')!) add('mangle', h, NFT_IPT_PRI_MANGLE, h === OUT ? 'route' : 'filter');
    add('nat', PRE, NFT_IPT_PRI_NAT_DST, 'nat');
    add('nat', IN, NFT_IPT_PRI_NAT_SRC, 'nat');
    add('nat', OUT, NFT_IPT_PRI_NAT_DST, 'nat');
    add('nat', POST, NFT_IPT_PRI_NAT_SRC, 'nat');
    for (const h of TABLE_HOOKS.get('filter')!) add('filter', h, NFT_IPT_PRI_FILTER);
    for (const h of TABLE_HOOKS.get('security')!) add('security', h, NFT_IPT_PRI_SECURITY);
  }
  return out;
}

/** Conntrack and defrag entries (registered per netns once something needs conntrack). */
function conntrackSlots(family: number): HookSlot[] {
  const v6 = family === NFPROTO_IPV6;
  const p = v6 ? 'ipv6' : 'ipv4';
  return [
    { family, hook: PRE, priority: NF_IP_PRI_CONNTRACK_DEFRAG, component: 'defrag', owner: v6 ? 'nf_defrag_ipv6' : 'nf_defrag_ipv4' },
    { family, hook: OUT, priority: NF_IP_PRI_CONNTRACK_DEFRAG, component: 'defrag', owner: v6 ? 'nf_defrag_ipv6' : 'nf_defrag_ipv4' },
    { family, hook: PRE, priority: NF_IP_PRI_CONNTRACK, component: 'conntrack-in', owner: `${p}_conntrack_in` },
    { family, hook: OUT, priority: NF_IP_PRI_CONNTRACK, component: 'conntrack-local', owner: `${p}_conntrack_local` },
    { family, hook: IN, priority: NF_IP_PRI_CONNTRACK_CONFIRM, component: 'conntrack-confirm', owner: 'nf_confirm' },
    { family, hook: POST, priority: NF_IP_PRI_CONNTRACK_CONFIRM, component: 'conntrack-confirm', owner: 'nf_confirm' },
  ];
}

/**
 * Every hook entry of one family for a backend: the five iptables tables and,
 * when `conntrack` is set, defrag/conntrack/confirm. The list is in a
 * deterministic order (tables, then conntrack); registering it in that order
 * gives the kernel's arrays since no two entries share a (hook, priority).
 */
export function hookSlots(family: number, backend: Backend, opts: { conntrack?: boolean; tables?: readonly string[] } = {}): HookSlot[] {
  if (family !== NFPROTO_IPV4 && family !== NFPROTO_IPV6) throw new RangeError(`hookSlots: family ${family} is not NFPROTO_IPV4/IPV6`);
  let slots = tableSlots(family, backend);
  if (opts.tables) {
    const keep = new Set(opts.tables);
    slots = slots.filter((s) => keep.has(s.table!));
  }
  return opts.conntrack ? [...slots, ...conntrackSlots(family)] : slots;
}

/**
 * IPVS's entries (net/netfilter/ipvs/ip_vs_core.c ip_vs_ops4 / ip_vs_ops6,
 * registered by ip_vs_register_hooks() when the first service is added).
 * Linux 6.18 names them ip_vs_in_hook / ip_vs_out_hook (before 6.2:
 * ip_vs_remote_request4 and ip_vs_reply4 on LOCAL_IN, ip_vs_local_request4 and
 * ip_vs_local_reply4 on LOCAL_OUT). On LOCAL_IN both run after the filter
 * table (0) and security (50), just before the NAT core's SNAT side (100):
 * iptables INPUT sees the packet to the virtual address first. On LOCAL_OUT
 * they run right after the DNAT side (-100). On FORWARD, ip_vs_forward_icmp
 * at 99 and the reply un-NAT at 100, after filter FORWARD.
 */
export function ipvsSlots(family: number): HookSlot[] {
  if (family !== NFPROTO_IPV4 && family !== NFPROTO_IPV6) throw new RangeError(`ipvsSlots: family ${family} is not NFPROTO_IPV4/IPV6`);
  const v6 = family === NFPROTO_IPV6;
  return [
    { family, hook: IN, priority: NF_IP_PRI_NAT_SRC - 2, component: 'ipvs-out', owner: 'ip_vs_out_hook' },
    { family, hook: IN, priority: NF_IP_PRI_NAT_SRC - 1, component: 'ipvs-in', owner: 'ip_vs_in_hook' },
    { family, hook: OUT, priority: NF_IP_PRI_NAT_DST + 1, component: 'ipvs-out', owner: 'ip_vs_out_hook' },
    { family, hook: OUT, priority: NF_IP_PRI_NAT_DST + 2, component: 'ipvs-in', owner: 'ip_vs_in_hook' },
    { family, hook: FWD, priority: 99, component: 'ipvs-icmp', owner: v6 ? 'ip_vs_forward_icmp_v6' : 'ip_vs_forward_icmp' },
    { family, hook: FWD, priority: 100, component: 'ipvs-out', owner: 'ip_vs_out_hook' },
  ];
}

/** NF_INET_* hook names as iptables names the builtin chains. */
export const HOOK_CHAIN_NAMES: readonly string[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

export { NFPROTO_IPV4, NFPROTO_IPV6 };
