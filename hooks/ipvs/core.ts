/**
 * IPVS in the node's packet path (Linux 6.18 net/netfilter/ipvs/ip_vs_core.c
 * ip_vs_in_hook / ip_vs_out_hook / handle_response / ip_vs_schedule /
 * ip_vs_leave, ip_vs_ctl.c ip_vs_service_find, ip_vs_xmit.c
 * ip_vs_nat_xmit / ip_vs_dr_xmit / ip_vs_tunnel_xmit / ip_vs_send_or_cont /
 * ip_vs_nat_send_or_cont, ip_vs_nfct.c ip_vs_update_conntrack,
 * include/net/ip_vs.h ip_vs_notrack).
 *
 * The module registers ip_vs_ops4 / ip_vs_ops6 (priorities.ts ipvsSlots)
 * for each family that has a virtual service (ip_vs_register_hooks at the
 * first service of the family): ip_vs_in_hook on LOCAL_IN after the
 * filter table, so iptables INPUT sees the packet to the virtual address
 * first, and on LOCAL_OUT after the NAT core's DNAT side; ip_vs_out_hook
 * (the replies of masqueraded connections) on LOCAL_IN, LOCAL_OUT and
 * FORWARD. ip_vs_in_hook finds the packet's connection or schedules a new
 * one on the first packet (a TCP SYN, any UDP datagram, an SCTP INIT),
 * then transmits it itself: the masquerade DNAT and the direct-routing and
 * tunnel transmitters route to the real server and send the packet
 * through NF_HOOK(LOCAL_OUT) and POST_ROUTING (NF_STOLEN for the hook it
 * came from); a real server on the node itself takes it on (NF_ACCEPT).
 *
 * IPv4 ICMP errors about a connection (ip_vs_in_icmp on LOCAL_IN,
 * LOCAL_OUT and FORWARD through ip_vs_forward_icmp, ip_vs_out_icmp) are
 * related by their embedded header and sent on or un-NATed as the
 * connection's packets are (ip_vs_icmp_xmit, handle_response_icmp).
 *
 * Not modelled (documented gaps): ICMPv6 errors (ip_vs_in_icmp_v6 /
 * ip_vs_out_icmp_v6 pass them), errors about IPIP-tunnelled requests and
 * net.ipv4.vs.schedule_icmp, connection synchronisation, the ftp helper and persistence
 * engines (--pe sip), one-packet scheduling (-o), real-server-started
 * connections (conn_out_counter), the tunnel types GUE and GRE, IPv6 in
 * tunnels, SCTP's state machine (an SCTP connection keeps the 3 s timeout of a new one),
 * the re-route of un-NATed replies (snat_reroute).
 */
import { IP_CT_DIR_ORIGINAL, NF_ACCEPT, NF_DROP, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_STOLEN, NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { formatIPv4, formatIPv6 } from '../../core/addr.js';
import type { XtIpvs, XtIpvsConn } from '../../ext/xt.js';
import { F_IPVS_PROPERTY, F_L4PROTO, M_CT_DIR, M_CT_ID, M_END, M_FLAGS, M_FRAG_MAX_SIZE, M_FRAGOFF, M_L4PROTO, M_MARK, M_NHOFF, M_PKTTYPE, M_THOFF, PACKET_HOST } from '../../vm/layout.js';
import { LINKTYPE_IPV4, LINKTYPE_IPV6, Packet, decodePacket, resetMeta } from '../../vm/packet.js';
import { NF_CT_DEFAULT_ZONE_ID, setNoCt, type NfConntrack } from '../conntrack/core.js';
import { T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS } from '../conntrack/tuple.js';
import type { NodeHookOps, NodeHookState } from '../hook.js';
import { localOutRouted } from '../path/local-out.js';
import { isLoopback, wordsInto } from '../path/ipv6.js';
import { ipDecreaseTtl } from '../path/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_PORT_UNREACH, ICMPV6_TIME_EXCEED } from '../answer/wire.js';
import type { InetFamily, OutputRoute } from '../path/ctx.js';
import type { Fate } from '../path/fate.js';
import { ipvsSlots } from '../priorities.js';
import type { Sysctls } from '../snapshot/sysctl.js';
import { jiffiesAt } from '../conntrack/core.js';
import { IpvsConn, IpvsConnTable, addrWords, FTPPORT, IP_VS_DIR_INPUT, IP_VS_DIR_OUTPUT, IPVS_SYSCTL_DEFAULTS, IP_VS_CONN_F_NFCT, TCP_STATE_NAMES, TH_RST, TH_SYN, type IpvsSysctl } from './conn.js';
import { IP_VS_SVC_F_PERSISTENT, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_FWD_MASK, IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL, addrPort, type IpvsConfig } from './save.js';
import type { IpvsService } from './service.js';
import { IpvsSvcTable, buildServices } from './service.js';
import type { SchedPacket } from './sched/index.js';
import { ipipEncap, ipvsManip, ipvsNatIcmp } from './xmit.js';
import { inetChecksum } from '../input/spec.js';

/** include/net/ip_vs.h FTPDATA: the active FTP data port. */
const FTPDATA = 20;

/** include/uapi/linux/sctp.h SCTP_CID_INIT. */
const SCTP_CID_INIT = 1;

/** What the node lends IPVS: its families' paths, its conntrack, its own stack's source address choice. */
export interface IpvsNodeEnv {
  inet(pf: number): InetFamily;
  /** The node's conntrack (loaded with IPVS: ip_vs_register_conntrack takes it for every service's family). */
  ct: NfConntrack | undefined;
  /** The source address of an IPv4 output route to `daddr` (do_output_route4 with IP_VS_RT_MODE_CONNECT), 0 when none. */
  saddr4(daddr: number): number;
  /** net.ipv4.ip_unprivileged_port_start: the ports below it need CAP_NET_BIND_SERVICE (inet_port_requires_bind_service). */
  unprivilegedPortStart: number;
}

/** net.ipv4.ip_unprivileged_port_start as the snapshot gives it (NaN when it does not): the kernel's default 1024. */
export function unprivilegedPortStart(v: number): number {
  return Number.isNaN(v) ? 1024 : v;
}

const fmt = (a: Uint8Array) => (a.length === 4 ? formatIPv4(a) : formatIPv6(a));

/** The net.ipv4.vs.* sysctls of the snapshot (ip_vs_ctl.c defaults where it gives none). */
export function ipvsSysctl(s: Sysctls): IpvsSysctl {
  const out = { ...IPVS_SYSCTL_DEFAULTS };
  for (const k of Object.keys(out) as (keyof IpvsSysctl)[]) {
    const v = s.num(`net.ipv4.vs.${k}`);
    if (!Number.isNaN(v)) out[k] = v;
  }
  return out;
}

export class NodeIpvs implements XtIpvs {
  services: IpvsService[] = [];
  table: IpvsConnTable;
  /** A packet changed the state (a connection, a scheduler's choice, a counter) since the services were built. */
  private used = false;
  private clockNs = 0;
  /** ip_vs_svc_table keyed by protocol, address and port; ip_vs_svc_fwm_table by family and mark. */
  private svcTab: IpvsSvcTable;
  /** The headers of the packet in hand (headers() fills them; no object per packet). */
  private readonly h = new Headers();
  /** The fate of the packet the last entry stole or dropped (the fate translator reads it). */
  private fate: Fate | undefined;
  /** A conntrack tuple dropConntrack() looks up or updateConntrack() writes. */
  private readonly tuple = new Int32Array(TUPLE_WORDS);
  /** A scratch packet for the output routes to real servers. */
  private readonly rtPkt = new Packet(64);

  constructor(readonly cfg: IpvsConfig, readonly sysctl: IpvsSysctl, readonly env: IpvsNodeEnv) {
    this.table = new IpvsConnTable(sysctl);
    this.svcTab = new IpvsSvcTable([]);
    this.reset();
  }

  /** ipvs->ftpsvc_counter: services of port 21. */
  private ftpServices = 0;

  /** The services as `ipvsadm -R` makes them, no connection. */
  private reset(): void {
    this.services = buildServices(this.cfg);
    this.ftpServices = this.services.filter((s) => !s.conf.fwmark && s.conf.port === FTPPORT).length;
    this.table = new IpvsConnTable(this.sysctl);
    this.table.dropConntrack = (cp) => this.dropConntrack(cp);
    this.svcTab = new IpvsSvcTable(this.services);
    this.used = false;
  }

  /**
   * The state saved for a restore (trace --all-branches runs each branch
   * from it): only before any packet changed it, when restoring is
   * building the services again; undefined otherwise.
   */
  checkpoint(): (() => void) | undefined {
    return this.used ? undefined : () => this.reset();
  }

  /** The node's clock in nanoseconds; set at each packet's time, it runs the connection timers due then. */
  get nowNs(): number {
    return this.clockNs;
  }

  set nowNs(ns: number) {
    this.clockNs = ns;
    this.table.expireDue(this.now);
  }

  get now(): number {
    return jiffiesAt(this.clockNs, this.table.hz);
  }

  /**
   * ip_vs_conn_drop_conntrack(): the conntrack whose original tuple is the
   * connection's (client to virtual address, default zone) is killed.
   */
  private dropConntrack(cp: IpvsConn): void {
    const ct = this.env.ct;
    if (!ct || cp.cport === 0) return;
    const t = this.tuple;
    addrWords(cp.caddr, t, T_SRC);
    addrWords(cp.vaddr, t, T_DST);
    t[T_PORTS] = ((cp.cport << 16) | cp.vport) | 0;
    t[T_PROTO] = ((cp.caddr.length === 4 ? NFPROTO_IPV4 : NFPROTO_IPV6) << 8) | cp.protocol;
    const n = ct.findGet(t, 0, NF_CT_DEFAULT_ZONE_ID, 0);
    if (n >= 0) ct.nfCtDelete(n >> 1);
  }

  /** The families that have a virtual service: ip_vs_register_hooks(af) ran for them. */
  families(): number[] {
    const out: number[] = [];
    if (this.services.some((s) => s.conf.family === 4)) out.push(NFPROTO_IPV4);
    if (this.services.some((s) => s.conf.family === 6)) out.push(NFPROTO_IPV6);
    return out;
  }

  /** ip_vs_ops4 / ip_vs_ops6 as nf_hook_ops of the node. */
  ops(): NodeHookOps[] {
    const source = { kind: 'module' as const, explain: (v: number) => (v === NF_STOLEN || v === NF_DROP ? this.fate : undefined) };
    const out: NodeHookOps[] = [];
    for (const pf of this.families()) {
      for (const s of ipvsSlots(pf)) {
        const hook = s.component === 'ipvs-in' ? (p: Packet, st: NodeHookState) => this.inHook(p, st)
          : s.component === 'ipvs-out' ? (p: Packet, st: NodeHookState) => this.outHook(p, st)
          : (p: Packet, st: NodeHookState) => this.forwardIcmp(p, st);
        out.push({ pf, hooknum: s.hook, priority: s.priority, name: s.owner, source, hook });
      }
    }
    return out;
  }

  /**
   * ip_vs_service_find(): by the packet's mark first (a fwmark service),
   * then by protocol, address and port, then a port-zero service of the
   * address (nullsvc_counter).
   */
  serviceFind(family: 4 | 6, mark: number, protocol: number, vaddr: Uint8Array, vport: number): IpvsService | undefined {
    const w = new Int32Array(4);
    addrWords(vaddr, w, 0);
    return this.serviceFindW(family, mark, protocol, w, 0, vport);
  }

  /** ip_vs_service_find() over the address words of the packet. */
  private serviceFindW(family: number, mark: number, protocol: number, w: Int32Array, at: number, vport: number): IpvsService | undefined {
    const t = this.svcTab;
    if (mark) {
      const s = t.findMark(family, mark);
      if (s) return s;
    }
    let s = t.find(family, protocol, w, at, vport);
    // an FTP service (port 21) takes the data connections: TCP to port 20 or to an unprivileged port
    if (!s && protocol === IPPROTO_TCP && this.ftpServices > 0 && (vport === FTPDATA || vport >= this.env.unprivilegedPortStart)) s = t.find(family, protocol, w, at, FTPPORT);
    return s ?? t.find(family, protocol, w, at, 0);
  }

  /** ip_vs_in_hook(): requests to virtual services. */
  inHook(pkt: Packet, st: NodeHookState): number {
    const m = pkt.meta;
    // "Already marked as IPVS request or reply?"
    if (m[M_FLAGS]! & F_IPVS_PROPERTY) return NF_ACCEPT;
    if (st.hook !== NF_INET_LOCAL_OUT && m[M_PKTTYPE] !== PACKET_HOST) return NF_ACCEPT;
    if (isIcmp4(pkt)) {
      const v = this.inIcmp(pkt, st);
      if (v !== NOT_RELATED) return v;
    }
    const h = this.h;
    if (!headers(pkt, h)) return NF_ACCEPT;
    this.used = true;
    const ctx = st.ctx;
    const now = this.now;
    let cp = this.table.inGetW(h.family, h.protocol, h.w, H_SADDR, h.sport, h.w, H_DADDR, h.dport, now) ?? undefined;
    if (cp && isNewConn(h)) {
      const r = this.table.reuseCheck(cp, now, this.confirmedCt(pkt));
      if (r === 'drop') {
        this.note(st, `ipvs: ${h.text}: a new connection where connection ${connText(cp)} ended, whose conntrack still holds it: dropped (conn_reuse_mode; the client retransmits)`);
        return this.drop(`a new connection of ${h.text} where an old one's conntrack is still confirmed (conn_reuse_mode)`);
      }
      if (r !== cp) this.note(st, `ipvs: ${h.text}: connection ${connText(cp)} expired for the new connection (${this.table.sysctl.expire_nodest_conn && cp.dest?.weight === 0 ? 'expire_nodest_conn' : 'conn_reuse_mode'})`);
      cp = r ?? undefined;
    }
    if (!cp) {
      // pp->conn_schedule (tcp_conn_schedule, udp_conn_schedule, sctp_conn_schedule).
      if (!schedulable(pkt, h)) return NF_ACCEPT;
      const svc = this.serviceFindW(h.family, m[M_MARK]!, h.protocol, h.w, H_DADDR, h.dport);
      if (!svc) return NF_ACCEPT;
      // ip_vs_schedule(): "Never schedule Active FTPDATA connections" (client port 20): ignored, the packet goes on
      if (h.sport === FTPDATA && (h.protocol === IPPROTO_TCP || h.protocol === IPPROTO_UDP || h.protocol === IPPROTO_SCTP)) {
        this.note(st, `ipvs: ${h.text}: not scheduled (ip_vs_schedule: client port 20, FTPDATA)`);
        return NF_ACCEPT;
      }
      // a service found by its address is the packet's destination: the connection keeps the service's bytes as its vaddr (read only)
      const sp: SchedPacket = { family: h.family, protocol: h.protocol, saddr: h.addr(H_SADDR), sport: h.sport, daddr: svc.conf.fwmark ? h.addr(H_DADDR) : svc.conf.addr, dport: h.dport, inverse: false };
      const c = svc.conf;
      const nonPersistPortMismatch = !(c.flags & IP_VS_SVC_F_PERSISTENT) && !c.fwmark && h.dport !== c.port;
      const made = nonPersistPortMismatch ? null : this.table.schedule(svc, sp, now);
      if (!made) return this.leave(pkt, st, svc, h);
      cp = made;
      if (!ctx.quiet) {
        const d = cp.dest!;
        this.note(st, `ipvs: ${h.text} matches service ${svcText(svc)} (${c.sched}${c.flags & IP_VS_SVC_F_PERSISTENT ? `, persistent ${c.timeout}` : ''}): scheduled to rs ${addrPort(d.addr.length === 4 ? 4 : 6, d.addr, cp.dport)} (${fwdName(cp.flags)}, weight ${d.weight}${cp.control ? `, by the template of ${fmt(cp.control.caddr)}` : ''})`);
      }
    } else if (!ctx.quiet) this.note(st, `ipvs: ${h.text}: connection ${connText(cp)} (${tcpStateName(cp)})`);
    // ip_vs_in_stats(), ip_vs_set_state(IP_VS_DIR_INPUT), cp->packet_xmit().
    countStats(cp, m[M_END]! - m[M_NHOFF]!, true);
    this.table.stateTransition(cp, IP_VS_DIR_INPUT, h.tcpFlags, now);
    return this.xmit(pkt, st, cp, h);
  }

  /** ip_vs_out_hook(): replies of real servers to clients of masqueraded (and other) connections. */
  outHook(pkt: Packet, st: NodeHookState): number {
    const m = pkt.meta;
    if (m[M_FLAGS]! & F_IPVS_PROPERTY) return NF_ACCEPT;
    if (isIcmp4(pkt)) {
      const v = this.outIcmp(pkt, st);
      if (v !== NOT_RELATED) return v;
    }
    const h = this.h;
    if (!headers(pkt, h)) return NF_ACCEPT;
    const now = this.now;
    const cp = this.table.outGetW(h.family, h.protocol, h.w, H_SADDR, h.sport, h.w, H_DADDR, h.dport, now);
    if (!cp) return NF_ACCEPT;
    this.used = true;
    // handle_response(): only masquerade rewrites the reply (DR and TUN replies do not pass here).
    if ((cp.flags & IP_VS_CONN_F_FWD_MASK) === IP_VS_CONN_F_MASQ) {
      if (!ipvsManip(pkt, h.protocol, false, cp.vaddr, cp.vport)) return this.drop('a reply too short to rewrite (handle_response)');
      if (!st.ctx.quiet) {
        const t = `IPVS un-NAT: source ${addrPort(h.family, cp.daddr, cp.dport)} to ${addrPort(h.family, cp.vaddr, cp.vport)}`;
        this.note(st, `ipvs: reply ${h.text} of connection ${connText(cp)}: ${t}`);
        st.ctx.nat.push(t);
      }
    }
    countStats(cp, m[M_END]! - m[M_NHOFF]!, false);
    this.table.stateTransition(cp, IP_VS_DIR_OUTPUT, h.tcpFlags, now);
    this.afterNat(pkt, cp);
    return NF_ACCEPT;
  }

  /**
   * ip_vs_forward_icmp(): on FORWARD, an IPv4 ICMP error goes through
   * ip_vs_in_icmp (ip_vs_forward_icmp_v6: ICMPv6 errors are not modelled,
   * they pass).
   */
  forwardIcmp(pkt: Packet, st: NodeHookState): number {
    if (st.pf !== NFPROTO_IPV4 || (pkt.meta[M_FLAGS]! & F_IPVS_PROPERTY) || !isIcmp4(pkt)) return NF_ACCEPT;
    const v = this.inIcmp(pkt, st);
    return v === NOT_RELATED ? NF_ACCEPT : v;
  }

  /**
   * The embedded header of an IPv4 ICMP error (ip_vs_in_icmp /
   * ip_vs_out_icmp up to the connection lookup): NOT_RELATED for an ICMP
   * message that is not an error IPVS handles (not DEST_UNREACH,
   * SOURCE_QUENCH, TIME_EXCEEDED), NF_DROP for a truncated ICMP header,
   * NF_ACCEPT when the error cannot be about a connection (the embedded
   * header or its ports cut short, a non-first fragment, a protocol IPVS
   * does not schedule, an IPIP tunnel's error: not modelled); otherwise the
   * embedded IP header's offset, its protocol in `this.h.protocol`, its
   * addresses in this.h.w (source at H_SADDR) and ports in sport/dport.
   */
  private icmpInner(pkt: Packet): number {
    const d = pkt.data;
    const m = pkt.meta;
    const icmp = m[M_THOFF]!;
    const end = m[M_END]!;
    if (icmp + 8 > end) return -NF_DROP - 1;
    const type = d[icmp]!;
    if (type !== ICMP_DEST_UNREACH && type !== ICMP_SOURCE_QUENCH && type !== ICMP_TIME_EXCEEDED) return -NOT_RELATED - 1;
    const cih = icmp + 8;
    if (cih + 20 > end || d[cih]! >> 4 !== 4) return -NF_ACCEPT - 1;
    const proto = d[cih + 9]!;
    // IPPROTO_IPIP: the error about a tunnelled request (ip_vs_find_tunnel) is not modelled.
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_SCTP) return -NF_ACCEPT - 1;
    // frag_safe_skb_hp(): no ports in a non-first fragment, none past the end.
    const ports = cih + (d[cih]! & 15) * 4;
    if ((((d[cih + 6]! & 0x1f) << 8) | d[cih + 7]!) !== 0 || ports + 4 > end) return -NF_ACCEPT - 1;
    const h = this.h;
    h.family = 4;
    h.protocol = proto;
    h.w.fill(0);
    h.w[H_SADDR] = rd32(d, cih + 12);
    h.w[H_DADDR] = rd32(d, cih + 16);
    h.sport = (d[ports]! << 8) | d[ports + 1]!;
    h.dport = (d[ports + 2]! << 8) | d[ports + 3]!;
    h.tcpFlags = 0;
    h.chunk = -1;
    return cih;
  }

  /**
   * ip_vs_in_icmp(): an ICMP error from the client's side about a reply of
   * a connection (the embedded packet runs vaddr:vport > caddr:cport: the
   * lookup is ip_vs_conn_in_get over its addresses reversed). The checksum
   * must hold (ip_vs_checksum_complete, else NF_DROP); the error counts as
   * an incoming packet (ip_vs_in_stats) and goes out by ip_vs_icmp_xmit:
   * direct routing and tunnels send it as the connection sends its
   * requests (cp->packet_xmit); masquerade rewrites it for the real server
   * (ip_vs_nat_icmp, outer destination and embedded source) and sends it
   * (ip_vs_nat_send_or_cont). Without a connection the error passes
   * (net.ipv4.vs.schedule_icmp, default 0, is not modelled).
   */
  private inIcmp(pkt: Packet, st: NodeHookState): number {
    const cih = this.icmpInner(pkt);
    if (cih < 0) return -cih - 1;
    const h = this.h;
    const m = pkt.meta;
    // The embedded headers hold the reply: the client is its destination.
    const cp = this.table.inGetW(4, h.protocol, h.w, H_DADDR, h.dport, h.w, H_SADDR, h.sport, this.now);
    if (!cp) return NF_ACCEPT;
    this.used = true;
    const about = st.ctx.quiet ? '' : `ICMP error about ${h.text}`;
    if (inetChecksum(pkt.data, m[M_THOFF]!, m[M_END]!) !== 0) {
      this.note(st, `ipvs: ${about}: bad ICMP checksum, dropped (ip_vs_in_icmp)`);
      return this.drop('an ICMP error about an IPVS connection with a bad checksum (ip_vs_in_icmp)');
    }
    countStats(cp, m[M_END]! - m[M_NHOFF]!, true);
    const fwd = cp.flags & IP_VS_CONN_F_FWD_MASK;
    if (fwd !== IP_VS_CONN_F_MASQ) {
      // ip_vs_icmp_xmit(): "no need to translate address/port back".
      if (!st.ctx.quiet) this.note(st, `ipvs: ${about}: connection ${connText(cp)} (ip_vs_in_icmp), sent as its requests are`);
      cp.inpkts++;
      h.protocol = IPPROTO_ICMP;
      return this.xmit(pkt, st, cp, h);
    }
    const af = this.env.inet(st.pf);
    const rt = this.outRoute(pkt, st, af, cp, false, true);
    if (!rt) return NF_DROP;
    // LOCALNODE from FORWARD is not supported (IP_VS_RT_MODE_NON_LOCAL only).
    if (rt.local && st.hook === NF_INET_FORWARD) return this.drop(`an ICMP error on FORWARD for local real server ${fmt(cp.daddr)} (ip_vs_icmp_xmit)`);
    if (rt.local && fromWorldToLoopback(st, cp)) return this.drop(`DNAT of an ICMP error from another host to loopback address ${fmt(cp.daddr)} (ip_vs_icmp_xmit)`);
    ipvsNatIcmp(pkt, cih, false, cp.daddr, cp.dport);
    if (!st.ctx.quiet) {
      const t = `IPVS DNAT of an ICMP error to ${addrPort(4, cp.daddr, cp.dport)}`;
      this.note(st, `ipvs: ${about}: connection ${connText(cp)} (ip_vs_in_icmp): ${t}`);
      st.ctx.nat.push(t);
    }
    return this.sendOrCont(pkt, st, af, cp, rt, st.ctx.quiet ? '' : 'masquerade of an ICMP error (ip_vs_nat_icmp)');
  }

  /**
   * ip_vs_out_icmp() and handle_response_icmp(): an ICMP error from the
   * real server's side about a request (the embedded packet runs
   * caddr:cport > daddr:dport: ip_vs_conn_out_get over it reversed). Only
   * a masqueraded connection's is rewritten (ip_vs_nat_icmp: outer source
   * and embedded destination become the virtual address and port), after
   * the checksum check (NF_DROP when it fails), and counted as an outgoing
   * packet; the others pass as they are.
   */
  private outIcmp(pkt: Packet, st: NodeHookState): number {
    const cih = this.icmpInner(pkt);
    if (cih < 0) return -cih - 1;
    const h = this.h;
    const m = pkt.meta;
    const cp = this.table.outGetW(4, h.protocol, h.w, H_DADDR, h.dport, h.w, H_SADDR, h.sport, this.now);
    if (!cp) return NF_ACCEPT;
    this.used = true;
    // handle_response_icmp(): only masquerade un-NATs the error; every method goes on to after_nat
    if ((cp.flags & IP_VS_CONN_F_FWD_MASK) === IP_VS_CONN_F_MASQ) {
      const about = st.ctx.quiet ? '' : `ICMP error about ${h.text}`;
      if (inetChecksum(pkt.data, m[M_THOFF]!, m[M_END]!) !== 0) {
        this.note(st, `ipvs: ${about}: bad ICMP checksum, dropped (handle_response_icmp)`);
        return this.drop('an ICMP error about an IPVS connection with a bad checksum (handle_response_icmp)');
      }
      ipvsNatIcmp(pkt, cih, true, cp.vaddr, cp.vport);
      if (!st.ctx.quiet) {
        const t = `IPVS un-NAT of an ICMP error: source ${fmt(cp.daddr)} to ${fmt(cp.vaddr)}`;
        this.note(st, `ipvs: ${about}: connection ${connText(cp)} (ip_vs_out_icmp): ${t}`);
        st.ctx.nat.push(t);
      }
    }
    countStats(cp, m[M_END]! - m[M_NHOFF]!, false);
    this.afterNat(pkt, cp);
    return NF_ACCEPT;
  }

  /**
   * ip_vs_leave(): a service without a real server to take the packet: the
   * client is told ICMP port unreachable (whatever the protocol: no socket
   * is there to answer with a reset) and the packet dropped.
   */
  private leave(pkt: Packet, st: NodeHookState, svc: IpvsService, h: Headers): number {
    // "When the virtual ftp service is presented, packets destined for other services on the VIP ... pass"
    if (svc.conf.port === FTPPORT && h.dport !== FTPPORT) return NF_ACCEPT;
    const v6 = h.family === 6;
    // The error goes through the hooks as a packet of its own: the text of this one first.
    const why = `service ${svcText(svc)} has no real server to schedule ${h.text} to (ip_vs_leave: ICMP port unreachable)`;
    st.ctx.stack?.icmpError(v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, pkt, v6 ? ICMPV6_DEST_UNREACH : ICMP_DEST_UNREACH, v6 ? ICMPV6_PORT_UNREACH : ICMP_PORT_UNREACH, 0, st.inLink, st.ctx);
    this.note(st, `ipvs: ${why}`);
    return this.drop(why);
  }

  private drop(detail: string): number {
    this.fate = { kind: 'dropped', reason: 'ipvs', detail, by: undefined };
    return NF_DROP;
  }

  private note(st: NodeHookState, text: string): void {
    if (!st.ctx.quiet) st.ctx.steps.push({ kind: 'hook', text });
  }

  /** cp->packet_xmit by the connection's forwarding method. */
  private xmit(pkt: Packet, st: NodeHookState, cp: IpvsConn, h: Headers): number {
    const af = this.env.inet(st.pf);
    const fwd = cp.flags & IP_VS_CONN_F_FWD_MASK;
    const quiet = st.ctx.quiet;
    const rt = this.outRoute(pkt, st, af, cp, fwd === IP_VS_CONN_F_TUNNEL, h.protocol === IPPROTO_ICMP || h.protocol === IPPROTO_ICMPV6);
    if (!rt) return NF_DROP;
    if (fwd === IP_VS_CONN_F_MASQ) {
      // ip_vs_nat_xmit(): "From world but DNAT to loopback address?"
      if (rt.local && fromWorldToLoopback(st, cp)) return this.drop(`DNAT of a packet from another host to loopback address ${fmt(cp.daddr)} (ip_vs_nat_xmit)`);
      if (!ipvsManip(pkt, h.protocol, true, cp.daddr, cp.dport)) return this.drop('a request too short to rewrite (ip_vs_nat_xmit)');
      const rs = quiet ? '' : addrPort(h.family, cp.daddr, cp.dport);
      if (!quiet) st.ctx.nat.push(`IPVS DNAT to ${rs}`);
      this.updateConntrack(pkt, cp, true);
      return this.sendOrCont(pkt, st, af, cp, rt, quiet ? '' : `masquerade (DNAT to ${rs})`);
    }
    if (fwd === IP_VS_CONN_F_DROUTE) {
      // ip_vs_dr_xmit(): the packet unchanged, to the real server as next hop (IP_VS_RT_MODE_KNOWN_NH).
      const d = cp.dest;
      const nh = d && d.dstCache === rt ? (d.dstCacheNh ??= viaGateway(rt, fmt(cp.daddr))) : viaGateway(rt, fmt(cp.daddr));
      return this.sendOrCont(pkt, st, af, cp, nh, quiet ? '' : `direct routing to ${fmt(cp.daddr)}`);
    }
    if (fwd === IP_VS_CONN_F_TUNNEL) {
      // ip_vs_tunnel_xmit(): a real server on the node takes the packet as it is (ip_vs_send_or_cont, local)
      if (rt.local) return this.sendOrCont(pkt, st, af, cp, rt, quiet ? '' : `tunnel to ${fmt(cp.daddr)}`);
      if (h.family !== 4) return this.drop('IPv6 tunnelling is not modelled');
      const s = this.env.saddr4(word(cp.daddr, 0));
      const saddr = Uint8Array.of(s >>> 24, (s >>> 16) & 255, (s >>> 8) & 255, s & 255);
      const inner = pkt.data.slice(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!);
      const outer = ipipEncap(inner, saddr, cp.daddr);
      const mark = pkt.meta[M_MARK]!;
      pkt.setFrame(outer);
      decodePacket(pkt, LINKTYPE_IPV4);
      pkt.meta[M_MARK] = mark;
      return this.sendOrCont(pkt, st, af, cp, rt, `tunnel (IPIP ${formatIPv4(saddr)} > ${fmt(cp.daddr)})`);
    }
    // IP_VS_CONN_F_LOCALNODE: ip_vs_null_xmit, the packet goes on.
    return NF_ACCEPT;
  }

  /**
   * __ip_vs_get_out_rt(): the route to the connection's real server; off the
   * node, not for a loopback source (crosses_local_route_boundary), one TTL
   * less (decrement_ttl) and within the route's MTU (ensure_mtu_is_adequate;
   * not checked for an ICMP error IPVS relays). Undefined: the packet is
   * dropped, its fate set.
   */
  private outRoute(pkt: Packet, st: NodeHookState, af: InetFamily, cp: IpvsConn, tunnel: boolean, icmp: boolean): Exclude<OutputRoute, { fate: Fate }> | undefined {
    const rt = this.destRoute(af, cp);
    if ('fate' in rt) {
      this.drop(`no route to real server ${fmt(cp.daddr)} (__ip_vs_get_out_rt)`);
      return undefined;
    }
    if (rt.local) return rt;
    if (loopbackSource(pkt, st)) {
      this.drop(`a loopback source sent to real server ${fmt(cp.daddr)} off the node (__ip_vs_get_out_rt: crosses_local_route_boundary)`);
      return undefined;
    }
    if (!this.decrementTtl(pkt, st, af, rt.dev, cp)) return undefined;
    if (!icmp && !this.mtuAdequate(pkt, st, af, rt.dev, tunnel)) return undefined;
    return rt;
  }

  /**
   * decrement_ttl() of __ip_vs_get_out_rt(), for a real server that is not
   * on the node: the TTL (hop limit) one less, or at 1 or below the sender
   * told ICMP time exceeded (ICMPv6 from the output device) and the packet
   * dropped (false).
   */
  private decrementTtl(pkt: Packet, st: NodeHookState, af: InetFamily, dev: string, cp: IpvsConn): boolean {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const v6 = st.pf === NFPROTO_IPV6;
    const ttl = d[nh + (v6 ? 7 : 8)]!;
    if (ttl <= 1) {
      if (v6) st.ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_TIME_EXCEED, 0, 0, af.node.links.get(dev) ?? st.inLink, st.ctx);
      else st.ctx.stack?.icmpError(NFPROTO_IPV4, pkt, ICMP_TIME_EXCEEDED, 0, 0, st.inLink, st.ctx);
      const why = `${v6 ? 'hop limit' : 'TTL'} ${ttl} exceeded on the way to real server ${fmt(cp.daddr)} (__ip_vs_get_out_rt: decrement_ttl, ICMP${v6 ? 'v6' : ''} time exceeded sent)`;
      this.note(st, `ipvs: ${why}`);
      this.drop(why);
      return false;
    }
    if (v6) d[nh + 7] = ttl - 1;
    else ipDecreaseTtl(d, nh);
    return true;
  }

  /**
   * ip_vs_send_or_cont() / ip_vs_nat_send_or_cont(): the packet becomes
   * IPVS's (ipvs_property), loses its conntrack unless the connection keeps
   * one (ip_vs_notrack); to a real server on the node it goes on
   * (NF_ACCEPT), otherwise through NF_HOOK(LOCAL_OUT) and dst_output
   * (NF_STOLEN for the hook it came from).
   */
  private sendOrCont(pkt: Packet, st: NodeHookState, af: InetFamily, cp: IpvsConn, rt: Exclude<OutputRoute, { fate: Fate }>, how: string): number {
    const m = pkt.meta;
    m[M_FLAGS] = m[M_FLAGS]! | F_IPVS_PROPERTY;
    if (!(cp.flags & IP_VS_CONN_F_NFCT)) this.notrack(pkt);
    const quiet = st.ctx.quiet;
    if (rt.local) {
      if (!quiet) this.note(st, `ipvs: ${how}: the real server is this node, the packet goes on`);
      return NF_ACCEPT;
    }
    if (!quiet) this.note(st, `ipvs: ${how}: sent through OUTPUT and POSTROUTING (${rt.text})`);
    const f = localOutRouted(af, pkt, rt, '', st.ctx);
    // A request received from another host leaves as forwarded; a local client's stays sent.
    this.fate = f.kind === 'sent' && st.hook === NF_INET_LOCAL_IN ? af.forwarded(pkt, f.dev, f.via, st.ctx) : f;
    return NF_STOLEN;
  }

  /**
   * ensure_mtu_is_adequate() of __ip_vs_get_out_rt(), for a real server off
   * the node: the route's MTU (its device's; less the IPIP header for a
   * tunnel) against the packet. IPv4: with DF set and the packet longer, the
   * sender is told fragmentation needed and the packet dropped (a tunnelled
   * one goes on to be fragmented when net.ipv4.vs.pmtu_disc is 0); IPv6: a
   * packet longer (or whose largest fragment before nf_defrag was), told
   * packet too big unless a later fragment.
   */
  private mtuAdequate(pkt: Packet, st: NodeHookState, af: InetFamily, dev: string, tunnel: boolean): boolean {
    const m = pkt.meta;
    const mtu = (af.node.links.get(dev)?.mtu ?? 1500) - (tunnel ? 20 : 0);
    const len = m[M_END]! - m[M_NHOFF]!;
    if (st.pf === NFPROTO_IPV6) {
      const fragMax = m[M_FRAG_MAX_SIZE]!;
      if (fragMax ? fragMax <= mtu : len <= mtu) return true;
      if (m[M_FRAGOFF] === 0) st.ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_PKT_TOOBIG, 0, mtu, st.inLink, st.ctx);
      return this.mtuDrop(st, len, mtu, dev, 'ICMPv6 packet too big');
    }
    if (tunnel && !this.sysctl.pmtu_disc) return true;
    if ((pkt.data[m[M_NHOFF]! + 6]! & 0x40) === 0 || len <= mtu) return true;
    st.ctx.stack?.icmpError(NFPROTO_IPV4, pkt, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, st.inLink, st.ctx);
    return this.mtuDrop(st, len, mtu, dev, 'ICMP fragmentation needed');
  }

  private mtuDrop(st: NodeHookState, len: number, mtu: number, dev: string, sent: string): false {
    const why = `${len} bytes exceed the MTU ${mtu} of the way to the real server by ${dev} (__ip_vs_get_out_rt: ensure_mtu_is_adequate, ${sent} sent)`;
    this.note(st, `ipvs: ${why}`);
    this.drop(why);
    return false;
  }

  /** ip_vs_conn_uses_old_conntrack(): the packet has a conntrack, and a confirmed one. */
  private confirmedCt(pkt: Packet): boolean {
    const ct = this.env.ct;
    const e = pkt.meta[M_CT_ID]!;
    return ct !== undefined && e >= 0 && ct.isConfirmed(e);
  }

  /** ip_vs_notrack(): the packet lets go of its conntrack and is untracked. */
  private notrack(pkt: Packet): void {
    const ct = this.env.ct;
    if (ct && pkt.meta[M_CT_ID]! >= 0) ct.nfResetCt(pkt);
    setNoCt(pkt.meta, true);
  }

  /**
   * handle_response()'s after_nat, for a reply of any forwarding method:
   * the packet becomes IPVS's (ipvs_property) and is untracked, unless the
   * connection keeps conntrack: then ip_vs_update_conntrack(skb, cp, 0).
   */
  private afterNat(pkt: Packet, cp: IpvsConn): void {
    pkt.meta[M_FLAGS] = pkt.meta[M_FLAGS]! | F_IPVS_PROPERTY;
    if (!(cp.flags & IP_VS_CONN_F_NFCT)) this.notrack(pkt);
    else this.updateConntrack(pkt, cp, false);
  }

  /**
   * ip_vs_update_conntrack(): with net.ipv4.vs.conntrack, the unconfirmed
   * conntrack of a masqueraded connection's packet in its original
   * direction gets the reply tuple the other side will use: for a request
   * (`outin`) replies from the real server (the reply tuple's source
   * becomes cp->daddr:dport), for a packet of the real server (a reply
   * whose conntrack had gone) requests to the virtual address (its
   * destination becomes cp->vaddr:vport). ICMP keeps its ids.
   */
  private updateConntrack(pkt: Packet, cp: IpvsConn, outin: boolean): void {
    const ct = this.env.ct;
    const m = pkt.meta;
    const e = m[M_CT_ID]!;
    if (!(cp.flags & IP_VS_CONN_F_NFCT) || (cp.flags & IP_VS_CONN_F_FWD_MASK) !== IP_VS_CONN_F_MASQ) return;
    if (!ct || e < 0 || ct.isConfirmed(e) || m[M_CT_DIR] !== IP_CT_DIR_ORIGINAL) return;
    const at = (2 * e + 1) * TUPLE_WORDS;
    const t = this.tuple;
    t.set(ct.tuples.subarray(at, at + TUPLE_WORDS));
    addrWords(outin ? cp.daddr : cp.vaddr, t, outin ? T_SRC : T_DST);
    const proto = t[T_PROTO]! & 0xff;
    if (proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6) {
      t[T_PORTS] = outin ? ((cp.dport << 16) | (t[T_PORTS]! & 0xffff)) | 0 : ((t[T_PORTS]! & 0xffff0000) | cp.vport) | 0;
    }
    ct.alterReply(e, t, 0);
  }

  /**
   * __ip_vs_get_out_rt() with a dest: the route kept in dest->dest_dst
   * (__ip_vs_dst_set) and used while it holds (__ip_vs_dst_check); the
   * node's routes do not change under a replay, so it holds until the
   * services are built again. A connection without a dest routes each time.
   */
  private destRoute(af: InetFamily, cp: IpvsConn): OutputRoute {
    const d = cp.dest;
    if (!d) return this.routeTo(af, cp.daddr);
    if (d.dstCache === undefined || d.dstCacheAf !== af) {
      d.dstCache = this.routeTo(af, d.addr);
      d.dstCacheAf = af;
      d.dstCacheNh = undefined;
    }
    return d.dstCache;
  }

  /** __ip_vs_get_out_rt(): the output route of a flow to `daddr` alone (do_output_route4 / do_output_route6). */
  private routeTo(af: InetFamily, daddr: Uint8Array): OutputRoute {
    const p = this.rtPkt;
    resetMeta(p);
    const v4 = daddr.length === 4;
    const b = new Uint8Array(v4 ? 20 : 40);
    if (v4) {
      b[0] = 0x45;
      b[3] = 20;
      b[8] = 64;
      b.set(daddr, 16);
    } else {
      b[0] = 0x60;
      b[6] = 59;
      b[7] = 64;
      b.set(daddr, 24);
    }
    p.setFrame(b);
    decodePacket(p, v4 ? LINKTYPE_IPV4 : LINKTYPE_IPV6);
    return af.routeOutput(p, '');
  }

  /**
   * The ipvs match's lookup (xt_ipvs.c ipvs_mt: pp->conn_out_get over the
   * headers read inversely).
   */
  connOutGetInverse(pkt: Packet): XtIpvsConn | undefined {
    const h = this.h;
    if (!headers(pkt, h)) return undefined;
    return this.table.outGetW(h.family, h.protocol, h.w, H_DADDR, h.dport, h.w, H_SADDR, h.sport, this.now) ?? undefined;
  }

  /** `ipvsadm -L -n -c`: the connection table (templates included). */
  connList(): string {
    const now = this.now;
    this.table.expireDue(now);
    // ipvsadm.c list_conn(): "pro expire %-11s %-18s %-18s %s".
    let out = 'IPVS connection entries\npro expire state       source             virtual            destination\n';
    for (const cp of this.table.entries()) out += IpvsConnTable.format(cp, now, this.table.hz) + '\n';
    return out;
  }
}

/** Output route `rt` with `gateway` as its next hop (its text, made when read, stays the route's). */
function viaGateway(rt: Exclude<OutputRoute, { fate: Fate }>, gateway: string): Exclude<OutputRoute, { fate: Fate }> {
  return { dev: rt.dev, gateway, local: rt.local, cast: rt.cast, get text() { return rt.text; } };
}

/** An ICMP message that is not an error about a connection (`*related = 0`): the hook goes on with it as any packet. */
const NOT_RELATED = 0x7fff;
const IPPROTO_ICMP = 1, IPPROTO_ICMPV6 = 58;
const ICMP_SOURCE_QUENCH = 4;

/** Scratch words of an IPv6 address (the loopback tests). */
const ADDR6 = new Uint32Array(4);

/**
 * crosses_local_route_boundary()'s check for a route that is not local:
 * the packet's source is a loopback address (IPv6 ::1 from a loopback
 * device or none).
 */
function loopbackSource(pkt: Packet, st: NodeHookState): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  if (st.pf === NFPROTO_IPV4) return d[nh + 12] === 127;
  return isLoopback(wordsInto(d, nh + 8, ADDR6)) && (st.inLink === undefined || st.inLink.loopback === true);
}

/**
 * "From world but DNAT to loopback address?": the real server is a loopback
 * address and the packet came in on a route from another host (IPv4:
 * rt_is_input_route; IPv6: a device that is not loopback).
 */
function fromWorldToLoopback(st: NodeHookState, cp: IpvsConn): boolean {
  const a = cp.daddr;
  if (a.length === 4) return a[0] === 127 && st.hook !== NF_INET_LOCAL_OUT;
  return isLoopback(wordsInto(a, 0, ADDR6)) && st.inLink !== undefined && !st.inLink.loopback;
}

/** An IPv4 ICMP packet, not a non-first fragment (ip_vs_in_hook / ip_vs_out_hook: iph.protocol == IPPROTO_ICMP). */
function isIcmp4(pkt: Packet): boolean {
  const m = pkt.meta;
  return (m[M_FLAGS]! & F_L4PROTO) !== 0 && m[M_L4PROTO] === IPPROTO_ICMP && m[M_FRAGOFF] === 0 && pkt.data[m[M_NHOFF]!]! >> 4 === 4;
}

/** Where Headers.w holds the source and the destination address words. */
const H_SADDR = 0, H_DADDR = 4;

/**
 * The headers IPVS reads (ip_vs_fill_iph_skb() and the ports), copied out
 * of the packet (the conn table keys by them while the packet is
 * rewritten) into one reused record: the addresses as big-endian words.
 */
class Headers {
  family: 4 | 6 = 4;
  protocol = 0;
  /** Source address words at H_SADDR, destination at H_DADDR (an IPv4 address in the first word, zeroes after). */
  readonly w = new Int32Array(8);
  sport = 0;
  dport = 0;
  /** TCP flags (0 for other protocols). */
  tcpFlags = 0;
  /** SCTP: the first chunk's type (-1 when absent). */
  chunk = -1;

  /** The address at H_SADDR or H_DADDR as bytes (a copy). */
  addr(at: number): Uint8Array {
    const n = this.family === 4 ? 4 : 16;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (this.w[at + (i >> 2)]! >>> (24 - 8 * (i & 3))) & 255;
    return out;
  }

  /** `TCP 10.0.0.2:40000 > 192.168.50.1:80` for the notes. */
  get text(): string {
    return `${protoName(this.protocol)} ${addrPort(this.family, this.addr(H_SADDR), this.sport)} > ${addrPort(this.family, this.addr(H_DADDR), this.dport)}`;
  }
}

/**
 * ip_vs_fill_iph_skb() and the ports into `h`: a TCP, UDP or SCTP packet
 * that is not a non-first fragment; false for any other.
 */
function headers(pkt: Packet, h: Headers): boolean {
  const m = pkt.meta;
  if (!(m[M_FLAGS]! & F_L4PROTO) || m[M_FRAGOFF] !== 0) return false;
  const protocol = m[M_L4PROTO]!;
  if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP && protocol !== IPPROTO_SCTP) return false;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = m[M_END]!;
  if (th + (protocol === IPPROTO_TCP ? 14 : 4) > end) return false;
  const w = h.w;
  if (d[nh]! >> 4 === 4) {
    h.family = 4;
    w[H_SADDR] = rd32(d, nh + 12);
    w[H_DADDR] = rd32(d, nh + 16);
    w[H_SADDR + 1] = w[H_SADDR + 2] = w[H_SADDR + 3] = 0;
    w[H_DADDR + 1] = w[H_DADDR + 2] = w[H_DADDR + 3] = 0;
  } else {
    h.family = 6;
    for (let i = 0; i < 4; i++) {
      w[H_SADDR + i] = rd32(d, nh + 8 + 4 * i);
      w[H_DADDR + i] = rd32(d, nh + 24 + 4 * i);
    }
  }
  h.protocol = protocol;
  h.sport = (d[th]! << 8) | d[th + 1]!;
  h.dport = (d[th + 2]! << 8) | d[th + 3]!;
  h.tcpFlags = protocol === IPPROTO_TCP ? d[th + 13]! : 0;
  h.chunk = protocol === IPPROTO_SCTP && th + 13 <= end ? d[th + 12]! : -1;
  return true;
}

const rd32 = (d: Uint8Array, at: number): number => (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!;

/**
 * Whether the protocol's conn_schedule looks for a service: TCP on a SYN
 * without RST (tcp_conn_schedule, sloppy_tcp off), SCTP on an INIT
 * (sctp_conn_schedule, sloppy_sctp off), UDP always.
 */
function schedulable(_pkt: Packet, h: Headers): boolean {
  if (h.protocol === IPPROTO_TCP) return (h.tcpFlags & TH_RST) === 0 && (h.tcpFlags & TH_SYN) !== 0;
  if (h.protocol === IPPROTO_SCTP) return h.chunk === SCTP_CID_INIT;
  return true;
}

/** is_new_conn(): a TCP segment with SYN set (th->syn, whatever else is set), an SCTP INIT. */
function isNewConn(h: Headers): boolean {
  if (h.protocol === IPPROTO_TCP) return (h.tcpFlags & TH_SYN) !== 0;
  if (h.protocol === IPPROTO_SCTP) return h.chunk === SCTP_CID_INIT;
  return false;
}

/** ip_vs_in_stats() / ip_vs_out_stats(): the packet and its bytes on the service's and the real server's counters. */
function countStats(cp: IpvsConn, len: number, input: boolean): void {
  countOn(cp.svc, len, input);
  if (cp.dest) countOn(cp.dest, len, input);
}

function countOn(s: { inpkts: number; inbytes: number; outpkts: number; outbytes: number }, len: number, input: boolean): void {
  if (input) {
    s.inpkts++;
    s.inbytes += len;
  } else {
    s.outpkts++;
    s.outbytes += len;
  }
}

const word = (a: Uint8Array, i: number) => ((a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!) >>> 0;
const protoName = (p: number) => (p === IPPROTO_TCP ? 'TCP' : p === IPPROTO_UDP ? 'UDP' : p === IPPROTO_SCTP ? 'SCTP' : String(p));

function svcText(s: IpvsService): string {
  const c = s.conf;
  return c.fwmark ? `FWM ${c.fwmark}` : `${protoName(c.protocol)} ${addrPort(c.family, c.addr, c.port)}`;
}

function fwdName(flags: number): string {
  const f = flags & IP_VS_CONN_F_FWD_MASK;
  return f === IP_VS_CONN_F_MASQ ? 'Masq' : f === IP_VS_CONN_F_TUNNEL ? 'Tunnel' : f === IP_VS_CONN_F_DROUTE ? 'Route' : 'Local';
}

function connText(cp: IpvsConn): string {
  const fam = cp.caddr.length === 4 ? 4 : 6;
  return `${addrPort(fam, cp.caddr, cp.cport)} > ${addrPort(fam, cp.vaddr, cp.vport)} > ${addrPort(fam, cp.daddr, cp.dport)}`;
}

function tcpStateName(cp: IpvsConn): string {
  return cp.protocol === IPPROTO_TCP ? `state ${TCP_STATE_NAMES[cp.state]}` : protoName(cp.protocol);
}

