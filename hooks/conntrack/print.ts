/**
 * `conntrack -L` (conntrack-tools 1.4.7 over libnetfilter_conntrack) for the
 * model's table, and a JSON form of the same fields.
 *
 * Mirrors:
 *   libnetfilter_conntrack src/conntrack/snprintf_default.c  __snprintf_conntrack_default (field order)
 *   libnetfilter_conntrack src/conntrack/snprintf.c          proto2str, l3proto2str, states, sctp_states
 *   Linux 6.18 net/netfilter/nf_conntrack_netlink.c          what a dump carries: CTA_TIMEOUT
 *     (nf_ct_expires / HZ), CTA_PROTOINFO (TCP, SCTP state), CTA_STATUS, CTA_MARK (always in
 *     dumps), CTA_ZONE / CTA_TUPLE_ZONE (only a non-default zone, by direction), CTA_USE,
 *     CTA_COUNTERS_* (nf_conntrack_acct)
 *
 *   tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.1.0.2 sport=40000 dport=80 src=10.1.0.2 dst=10.0.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1
 *
 * `-o extended` prefixes the layer 3 (`ipv4     2 `). Not printed: the
 * timestamp fields (nf_conntrack_timestamp: conntrack-tools subtracts from
 * the wall clock), secctx and labels, which the model does not have.
 * Entries come in creation order; the kernel's order is its random hash order.
 */
import { IPS_ASSURED, IPS_CONFIRMED, IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_DYING, IPS_EXPECTED, IPS_FIXED_TIMEOUT, IPS_HELPER, IPS_HW_OFFLOAD, IPS_OFFLOAD, IPS_SEEN_REPLY, IPS_SEQ_ADJUST, IPS_SRC_NAT, IPS_SRC_NAT_DONE, IPS_TEMPLATE, IPS_UNTRACKED, NFPROTO_IPV4 } from '../../core/netfilter.js';
import { NF_CT_DEFAULT_ZONE_DIR, NF_CT_ZONE_DIR_ORIG, NF_CT_ZONE_DIR_REPL, type NfConntrack } from './core.js';
import { TCP_CONNTRACK_NAMES, tcpState } from './proto_tcp.js';
import { CT_HELPERS } from '../../vm/ct-env.js';
import { formatIPv4, formatIPv6 } from '../route/addr.js';
import { SCTP_CONNTRACK_NAMES, sctpState } from './proto_sctp.js';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS, hasPorts } from './tuple.js';

/** proto2str of libnetfilter_conntrack ("unknown" otherwise). */
const PROTO_NAMES: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 136: 'udplite', 1: 'icmp', 58: 'icmpv6', 132: 'sctp', 47: 'gre', 33: 'dccp' };

const STATUS_NAMES: ReadonlyArray<readonly [number, string]> = [
  [IPS_EXPECTED, 'EXPECTED'], [IPS_SEEN_REPLY, 'SEEN_REPLY'], [IPS_ASSURED, 'ASSURED'], [IPS_CONFIRMED, 'CONFIRMED'],
  [IPS_SRC_NAT, 'SRC_NAT'], [IPS_DST_NAT, 'DST_NAT'], [IPS_SEQ_ADJUST, 'SEQ_ADJUST'], [IPS_SRC_NAT_DONE, 'SRC_NAT_DONE'],
  [IPS_DST_NAT_DONE, 'DST_NAT_DONE'], [IPS_DYING, 'DYING'], [IPS_FIXED_TIMEOUT, 'FIXED_TIMEOUT'], [IPS_TEMPLATE, 'TEMPLATE'],
  [IPS_UNTRACKED, 'UNTRACKED'], [IPS_HELPER, 'HELPER'], [IPS_OFFLOAD, 'OFFLOAD'], [IPS_HW_OFFLOAD, 'HW_OFFLOAD'],
];

/** inet_ntoa / inet_ntop of a tuple's address words. */
export function addrText(l3num: number, t: Int32Array, o: number): string {
  return l3num === NFPROTO_IPV4 ? formatIPv4(t[o]! >>> 0) : formatIPv6(t.subarray(o, o + 4));
}

/** The names of the IPS_* bits of `status` within `mask`, in bit order. */
export function statusNames(status: number, mask = -1): string[] {
  return STATUS_NAMES.filter(([b]) => status & mask & b).map(([, n]) => n);
}

/** One tuple's fields in a dump. */
export interface CtTupleJson {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  id?: number;
  srckey?: number;
  dstkey?: number;
  zone?: number;
}

/** A conntrack as `conntrack -L` shows it, as data. */
export interface CtEntryJson {
  l3proto: string;
  l3num: number;
  proto: string;
  protonum: number;
  /** Seconds left (nf_ct_expires / HZ). */
  timeout: number;
  /** TCP or SCTP state name. */
  state?: string;
  original: CtTupleJson;
  reply: CtTupleJson;
  /** IPS_* status bit names. */
  status: string[];
  mark: number;
  zone?: number;
  /** The conntrack helper's name (CT --helper). */
  helper?: string;
  use: number;
  counters?: { original: { packets: number; bytes: number }; reply: { packets: number; bytes: number } };
}

function tupleJson(ct: NfConntrack, node: number, zone: number | undefined): CtTupleJson {
  const t = ct.tuples;
  const o = node * TUPLE_WORDS;
  const l3num = t[o + T_PROTO]! >>> 8;
  const protonum = t[o + T_PROTO]! & 0xff;
  const ports = t[o + T_PORTS]!;
  const j: CtTupleJson = { src: addrText(l3num, t, o + T_SRC), dst: addrText(l3num, t, o + T_DST) };
  if (hasPorts(protonum) || protonum === 33) {
    j.sport = ports >>> 16;
    j.dport = ports & 0xffff;
  } else if (protonum === IPPROTO_ICMP || protonum === IPPROTO_ICMPV6) {
    j.type = (ports >>> 8) & 0xff;
    j.code = ports & 0xff;
    j.id = ports >>> 16;
  } else if (protonum === IPPROTO_GRE) {
    j.srckey = ports >>> 16;
    j.dstkey = ports & 0xffff;
  }
  if (zone !== undefined) j.zone = zone;
  return j;
}

/** The dump fields of conntrack `e` at the table's current time. */
export function conntrackEntry(ct: NfConntrack, e: number): CtEntryJson {
  const t = ct.tuples;
  const o = 2 * e * TUPLE_WORDS;
  const l3num = t[o + T_PROTO]! >>> 8;
  const protonum = t[o + T_PROTO]! & 0xff;
  const zid = ct.zoneId[e]!, zdir = ct.zoneDir[e]!;
  const st = ct.status[e]!;
  const j: CtEntryJson = {
    l3proto: l3num === NFPROTO_IPV4 ? 'ipv4' : 'ipv6',
    l3num,
    proto: PROTO_NAMES[protonum] ?? 'unknown',
    protonum,
    timeout: Math.floor((ct.isConfirmed(e) ? ct.expires(e) : ct.ctTimeout(e)) / ct.sysctl.hz),
    original: tupleJson(ct, 2 * e, zid && zdir === NF_CT_ZONE_DIR_ORIG ? zid : undefined),
    reply: tupleJson(ct, 2 * e + 1, zid && zdir === NF_CT_ZONE_DIR_REPL ? zid : undefined),
    status: statusNames(st),
    mark: ct.mark[e]! >>> 0,
    use: ct.use[e]!,
  };
  if (protonum === IPPROTO_TCP) j.state = TCP_CONNTRACK_NAMES[tcpState(ct, e)] ?? 'NONE';
  else if (protonum === IPPROTO_SCTP) j.state = SCTP_CONNTRACK_NAMES[sctpState(ct, e)] ?? 'NONE';
  if (zid && zdir === NF_CT_DEFAULT_ZONE_DIR) j.zone = zid;
  if (ct.helper[e]) j.helper = CT_HELPERS[ct.helper[e]!] ?? String(ct.helper[e]);
  if (ct.ext[e]! & 1) {
    const a = ct.acct;
    j.counters = { original: { packets: a[e * 4]!, bytes: a[e * 4 + 1]! }, reply: { packets: a[e * 4 + 2]!, bytes: a[e * 4 + 3]! } };
  }
  return j;
}

function tupleText(protonum: number, j: CtTupleJson, dirName: string): string {
  let s = `src=${j.src} dst=${j.dst} `;
  if (j.sport !== undefined) s += `sport=${j.sport} dport=${j.dport} `;
  else if (protonum === IPPROTO_GRE) s += `srckey=0x${j.srckey!.toString(16)} dstkey=0x${j.dstkey!.toString(16)} `;
  else if (j.type !== undefined) s += `type=${j.type} code=${j.code} id=${j.id} `;
  if (j.zone !== undefined) s += `zone-${dirName}=${j.zone} `;
  return s;
}

/** __snprintf_conntrack_default() of one entry. */
export function conntrackLine(j: CtEntryJson, extended = false): string {
  let s = '';
  if (extended) s += `${j.l3proto.padEnd(8)} ${j.l3num} `;
  s += `${j.proto.padEnd(8)} ${j.protonum} `;
  s += `${j.timeout} `;
  if (j.state !== undefined) s += `${j.state} `;
  s += tupleText(j.protonum, j.original, 'orig');
  if (j.counters) s += `packets=${j.counters.original.packets} bytes=${j.counters.original.bytes} `;
  if (!j.status.includes('SEEN_REPLY')) s += '[UNREPLIED] ';
  s += tupleText(j.protonum, j.reply, 'reply');
  if (j.counters) s += `packets=${j.counters.reply.packets} bytes=${j.counters.reply.bytes} `;
  if (j.status.includes('HW_OFFLOAD')) s += '[HW_OFFLOAD] ';
  else if (j.status.includes('OFFLOAD')) s += '[OFFLOAD] ';
  else if (j.status.includes('ASSURED')) s += '[ASSURED] ';
  s += `mark=${j.mark} `;
  if (j.zone !== undefined) s += `zone=${j.zone} `;
  if (j.helper !== undefined) s += `helper=${j.helper} `;
  s += `use=${j.use}`;
  return s;
}

/** The table as `conntrack -L [-o extended]` prints it at `now` (stdout lines). */
export function conntrackList(ct: NfConntrack, nowNs: number, extended = false): string[] {
  return ct.dump(nowNs).map((e) => conntrackLine(conntrackEntry(ct, e), extended));
}

/** The table's entries as data at `now`. */
export function conntrackListJson(ct: NfConntrack, nowNs: number): CtEntryJson[] {
  return ct.dump(nowNs).map((e) => conntrackEntry(ct, e));
}

/** The line conntrack-tools prints on stderr after a listing. */
export function conntrackSummary(n: number): string {
  return `conntrack v1.4.7 (conntrack-tools): ${n} flow entries have been shown.`;
}
