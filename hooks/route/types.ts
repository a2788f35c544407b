/**
 * Routing constants and the shapes of routes and policy rules.
 *
 * Mirrors (Linux 6.18): include/uapi/linux/rtnetlink.h (RTN_*, RT_TABLE_*,
 * RT_SCOPE_*), include/uapi/linux/fib_rules.h (FR_ACT_*, FIB_RULE_INVERT),
 * net/ipv4/fib_semantics.c (fib_props: the error and scope of each type).
 */
import type { Family, IpAddr } from './addr.js';

// enum rtn_type
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_THROW = 9;
export const RTN_NAT = 10;
export const RTN_XRESOLVE = 11;
/** iproute2's names, indexed by RTN_*. */
export const RTN_NAMES: readonly string[] = [
  'unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve',
];

// enum rt_class_t
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_COMPAT = 252;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

// enum rt_scope_t
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const SCOPE_NAMES: ReadonlyMap<string, number> = new Map([
  ['global', RT_SCOPE_UNIVERSE], ['universe', RT_SCOPE_UNIVERSE], ['site', RT_SCOPE_SITE], ['link', RT_SCOPE_LINK],
  ['host', RT_SCOPE_HOST], ['nowhere', RT_SCOPE_NOWHERE],
]);

// FR_ACT_*
export const FR_ACT_UNSPEC = 0;
export const FR_ACT_TO_TBL = 1;
export const FR_ACT_GOTO = 2;
export const FR_ACT_NOP = 3;
export const FR_ACT_BLACKHOLE = 6;
export const FR_ACT_UNREACHABLE = 7;
export const FR_ACT_PROHIBIT = 8;

// errno values (x86/generic)
export const EINVAL = 22;
export const EAGAIN = 11;
export const EACCES = 13;
export const ESRCH = 3;
export const ENETUNREACH = 101;
export const EHOSTUNREACH = 113;

/** fib_props[type].error, negated (0 = the route is usable). */
export const FIB_PROPS_ERROR: readonly number[] = [
  0, 0, 0, 0, 0, 0, EINVAL, EHOSTUNREACH, EACCES, EAGAIN, EINVAL, EINVAL,
];

/** A routing table's name as `ip route` prints it. */
export function tableName(id: number): string {
  return id === RT_TABLE_LOCAL ? 'local' : id === RT_TABLE_MAIN ? 'main' : id === RT_TABLE_DEFAULT ? 'default' : String(id);
}

export interface Nexthop {
  /** Gateway address, or undefined for a directly connected route. */
  readonly gateway: IpAddr | undefined;
  /** Output device name ('' when none, e.g. blackhole). */
  readonly dev: string;
  readonly weight: number;
  /** RTNH_F_* names as iproute2 prints them (onlink, linkdown, dead, ...). */
  readonly flags: readonly string[];
  /** nh_tclassid (RTA_FLOW, `realms FROM/TO`): FROM << 16 | TO; absent = 0. */
  readonly realm?: number;
}

/** One route (an fib_alias with its fib_info). */
export interface Route {
  readonly family: Family;
  readonly table: number;
  /** RTN_*. */
  readonly type: number;
  /** Prefix address with host bits cleared. */
  readonly dst: IpAddr;
  readonly plen: number;
  /** TOS (IPv4 dsfield byte) the route is restricted to; 0 = any. */
  readonly tos: number;
  /** Priority (`metric`); lowest wins among routes of one prefix and TOS. */
  readonly metric: number;
  /** RT_SCOPE_*. */
  readonly scope: number;
  readonly protocol: string;
  readonly prefsrc: IpAddr | undefined;
  /** At least one entry, except for routes without nexthops (blackhole, unreachable, ...: []). */
  readonly nexthops: readonly Nexthop[];
}

/** One policy rule (struct fib_rule + fib4_rule / fib6_rule). */
export interface FibRule {
  readonly family: Family;
  /** `priority` (pref). */
  readonly pref: number;
  /** FR_ACT_*. */
  readonly action: number;
  /** Table for FR_ACT_TO_TBL. */
  readonly table: number;
  /** Target pref for FR_ACT_GOTO. */
  readonly gotoTarget: number;
  /** `not`: FIB_RULE_INVERT. */
  readonly invert: boolean;
  readonly src: IpAddr | undefined;
  readonly srcLen: number;
  readonly dst: IpAddr | undefined;
  readonly dstLen: number;
  /** Input device name ('' = any); a name no link has never matches (kernel: ifindex -1, "[detached]"). */
  readonly iif: string;
  readonly oif: string;
  readonly mark: number;
  readonly markMask: number;
  /** Legacy TOS selector (compared with the flow's TOS & 0x1c); 0 = any. */
  readonly tos: number;
  /** Full DSCP selector (6.x `dscp`), -1 = none. */
  readonly dscp: number;
  /** IP protocol, 0 = any. */
  readonly ipProto: number;
  /** Port ranges; [0, 0] = any. */
  readonly sport: readonly [number, number];
  readonly dport: readonly [number, number];
  readonly uid: readonly [number, number] | undefined;
  /** suppress_prefixlength: -1 = off. */
  readonly suppressPrefixlen: number;
  /** suppress_ifgroup: -1 = off. */
  readonly suppressIfgroup: number;
  /** l3mdev or tun_id selectors: never match here (no VRF, no tunnel metadata in the model). */
  readonly unmatchable: boolean;
  /** fib4_rule tclassid (FRA_FLOW, `realms FROM/TO`): FROM << 16 | TO; absent = 0. */
  readonly realms?: number;
}

/** The flow a route lookup is made for (struct flowi4 / flowi6). */
export interface FlowKey {
  daddr: string | IpAddr;
  saddr?: string | IpAddr;
  /** Input device; '' or absent for locally generated traffic (the kernel then uses lo). */
  iif?: string;
  /** Output device the route must use ('' = any). */
  oif?: string;
  mark?: number;
  /** TOS byte of the packet (IPv4) / traffic class (IPv6). */
  tos?: number;
  proto?: number;
  sport?: number;
  dport?: number;
  uid?: number;
}

export type FibError = 'unreachable' | 'prohibit' | 'blackhole' | 'noroute';

export type FibResult =
  | {
      readonly ok: true;
      /** iproute2 name of the route type. */
      readonly type: string;
      readonly rtnType: number;
      readonly table: number;
      readonly route: Route;
      /** The nexthop used: fib_table_lookup's first usable one, or the one a forwarded packet's hash picks (route/multipath.ts, Fib.nexthopResult). */
      readonly dev: string;
      readonly gateway: IpAddr | undefined;
      readonly prefsrc: IpAddr | undefined;
      readonly rule: FibRule | undefined;
    }
  | {
      readonly ok: false;
      readonly error: FibError;
      /** Positive errno the kernel returns (ENETUNREACH, EHOSTUNREACH, EACCES, EINVAL). */
      readonly errno: number;
      readonly rule: FibRule | undefined;
      readonly route: Route | undefined;
    };
