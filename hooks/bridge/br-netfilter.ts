/**
 * br_netfilter: bridged IPv4/IPv6 frames through the iptables hooks, as
 * net/bridge/br_netfilter_hooks.c and br_netfilter_ipv6.c (Linux 6.18)
 * register them once a bridge exists (brnf_device_event):
 *
 *   br_nf_pre_routing   NF_BR_PRE_ROUTING, NF_BR_PRI_BRNF (0): with bridge-nf-call-iptables
 *                       (-ip6tables) or the bridge's own nf_call_iptables, an IP frame (a
 *                       VLAN-tagged one only with bridge-nf-filter-vlan-tagged) gets an
 *                       nf_bridge_info (physindev = the port, ipv4_daddr), in = the bridge,
 *                       PACKET_OTHERHOST becomes HOST for the hook, and passes NF_INET_PRE_ROUTING
 *                       (conntrack, nat, mangle, raw: in = the bridge); then br_nf_pre_routing_finish:
 *                       a destination changed by DNAT is routed (ip_route_input on the bridge):
 *                       out of the bridge again → still bridged (br_nf_pre_routing_finish_bridge:
 *                       the destination MAC becomes the neighbour's, the source MAC stays, then
 *                       br_handle_frame_finish; a neighbour without an address is resolved first,
 *                       which is not modelled), anywhere else → the frame's destination becomes
 *                       the bridge's own MAC and it goes up (local delivery or routing); the
 *                       other bridge PRE_ROUTING entries after br_netfilter run (br_nf_hook_thresh)
 *   br_nf_forward       NF_BR_FORWARD, 0: NF_INET_FORWARD with in = out = the bridge,
 *                       physoutdev = the egress port; then the bridge FORWARD entries after it
 *   br_nf_post_routing  NF_BR_POST_ROUTING, NF_BR_PRI_LAST: a frame with a physoutdev (it was
 *                       bridged) passes NF_INET_POST_ROUTING (in none, out the bridge)
 *   br_nf_local_in      NF_BR_LOCAL_IN, NF_BR_PRI_LAST: confirms the unconfirmed conntrack of a
 *                       frame that is not PACKET_HOST (a broadcast going up)
 *   ip_sabotage_in      NF_INET_PRE_ROUTING, NF_IP_PRI_FIRST (IPv4 and IPv6): a frame that passed
 *                       PREROUTING in the bridge skips it when it comes up the bridge device
 *
 * ARP (bridge-nf-call-arptables: arptables FORWARD) is not modelled (no
 * arptables); neither is PPPoE (bridge-nf-filter-pppoe-tagged: the PPPoE
 * session header is not decoded); bridge-nf-pass-vlan-input-dev (VLAN
 * devices over the bridge) is not modelled.
 */
import {
  NF_ACCEPT, NF_DROP, NF_BR_FORWARD, NF_BR_LOCAL_IN, NF_BR_POST_ROUTING, NF_BR_PRE_ROUTING, NF_INET_FORWARD, NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING, NF_STOLEN, NFPROTO_BRIDGE, NFPROTO_IPV4, NFPROTO_IPV6,
} from '../../core/netfilter.js';
import {
  BRNF_IN_PREROUTING, BRNF_PHYSOUT, BRNF_PKT_OTHERHOST, BRNF_PRESENT, BRNF_SABOTAGE_DONE, M_BRNF, M_BRNF_DADDR, M_CT_ID, M_MACOFF,
  M_END, M_NHOFF, M_PHYSINNAME, M_PROTOCOL, M_PHYSOUTNAME, M_PKTTYPE, PACKET_HOST, PACKET_OTHERHOST,
} from '../../vm/layout.js';
import { ETH_P_IP, ETH_P_IPV6, setNameWords, type Packet } from '../../vm/packet.js';
import { ipView } from './view.js';
import { formatMac } from '../../core/addr.js';
import type { NodeHookOps, NodeHookState } from '../hook.js';
import { dropped, type Dst, type InetFamily, type PathCtx } from '../path/ctx.js';
import type { Fate } from '../path/fate.js';
import { NF_BR_PRI_BRNF, NF_BR_PRI_LAST, NF_IP_PRI_FIRST } from '../priorities.js';
import type { Sysctls } from '../snapshot/sysctl.js';
import type { Link } from '../snapshot/node.js';
import { BR_NF_PRE_ROUTING } from './nf-bridge.js';
import type { BridgeNode } from './bridge.js';

/** The br_netfilter switches of the namespace (net.bridge.*). */
export interface BrnfSysctl {
  callIptables: boolean;
  callIp6tables: boolean;
  callArptables: boolean;
  filterVlanTagged: boolean;
  filterPppoeTagged: boolean;
}

export function brnfSysctl(s: Sysctls): BrnfSysctl {
  return {
    callIptables: s.bridgeNfCallIptables(),
    callIp6tables: s.bridgeNfCallIp6tables(),
    callArptables: s.num('net.bridge.bridge-nf-call-arptables') > 0,
    filterVlanTagged: s.num('net.bridge.bridge-nf-filter-vlan-tagged') > 0,
    filterPppoeTagged: s.num('net.bridge.bridge-nf-filter-pppoe-tagged') > 0,
  };
}

/** What br_netfilter asks of conntrack: nf_confirm (br_nf_local_in). */
export interface BrnfConntrack {
  isConfirmed(id: number): boolean;
  confirm(pkt: Packet): number;
}

export class BrNetfilter {
  constructor(
    readonly br: BridgeNode,
    readonly sysctl: BrnfSysctl,
    private readonly inet: (pf: number) => InetFamily | undefined,
    readonly ct: BrnfConntrack | undefined,
  ) {}

  /** The entries br_netfilter registers (br_nf_ops). */
  ops(): NodeHookOps[] {
    const mod = { kind: 'module' as const, explain: (v: number, st: NodeHookState) => this.explain(v, st) };
    const sabotage = (pf: number): NodeHookOps => ({ pf, hooknum: NF_INET_PRE_ROUTING, priority: NF_IP_PRI_FIRST, name: 'ip_sabotage_in', source: mod, hook: (pkt, st) => ipSabotageIn(pkt, st) });
    return [
      { pf: NFPROTO_BRIDGE, hooknum: NF_BR_PRE_ROUTING, priority: NF_BR_PRI_BRNF, name: BR_NF_PRE_ROUTING, source: mod, hook: (pkt, st) => this.preRouting(pkt, st) },
      { pf: NFPROTO_BRIDGE, hooknum: NF_BR_LOCAL_IN, priority: NF_BR_PRI_LAST, name: 'br_nf_local_in', source: mod, hook: (pkt) => this.localIn(pkt) },
      { pf: NFPROTO_BRIDGE, hooknum: NF_BR_FORWARD, priority: NF_BR_PRI_BRNF, name: 'br_nf_forward', source: mod, hook: (pkt, st) => this.forward(pkt, st) },
      { pf: NFPROTO_BRIDGE, hooknum: NF_BR_POST_ROUTING, priority: NF_BR_PRI_LAST, name: 'br_nf_post_routing', source: mod, hook: (pkt, st) => this.postRouting(pkt, st) },
      sabotage(NFPROTO_IPV4),
      sabotage(NFPROTO_IPV6),
    ];
  }

  /** The fate of br_netfilter's own drops (br_validate_ipv4/ipv6: a bad header). */
  private explain(v: number, _st: NodeHookState): Fate | undefined {
    if (v !== NF_DROP) return undefined;
    return dropped('bad-header', 'br_netfilter: the IP header does not validate (br_validate_ipv4 / br_validate_ipv6)');
  }

  /** IS_IP / is_vlan_ip (and the IPv6 twins) of the frame as it is at `out` (undefined: PRE_ROUTING). */
  private family(pkt: Packet, out: string | undefined): number {
    const proto = pkt.meta[M_PROTOCOL]!;
    const pf = proto === ETH_P_IP ? NFPROTO_IPV4 : proto === ETH_P_IPV6 ? NFPROTO_IPV6 : 0;
    if (pf === 0) return 0;
    if (this.br.tagPresent(out) && !this.sysctl.filterVlanTagged) return 0;
    return pf;
  }

  /** br_nf_pre_routing() / br_nf_pre_routing_ipv6(). */
  private preRouting(pkt: Packet, st: NodeHookState): number {
    const f = this.br.frame;
    if (!f) return NF_DROP;
    const pf = this.family(pkt, undefined);
    if (pf === 0) return NF_ACCEPT;
    const brdev = f.bridge.dev;
    if (pf === NFPROTO_IPV6 ? !this.sysctl.callIp6tables && !brdev.nfCallIp6tables : !this.sysctl.callIptables && !brdev.nfCallIptables) return NF_ACCEPT;
    const af = this.inet(pf)!;
    const port = st.inLink!;
    const ctx = st.ctx;
    ipView(pkt);
    if (!validate(af, pkt, f.bridge.link, ctx)) return NF_DROP;
    // nf_bridge_alloc + setup_pre_routing
    const m = pkt.meta;
    m[M_BRNF] = BRNF_PRESENT | BRNF_IN_PREROUTING;
    hideOtherhost(m);
    setNameWords(pkt, M_PHYSINNAME, port.name);
    setNameWords(pkt, M_PHYSOUTNAME, '');
    saveDaddr(pkt, pf);
    if (!ctx.quiet) ctx.steps.push({ kind: 'hook', text: `br_nf_pre_routing: ${iptablesOf(pf)} PREROUTING with in ${brdev.name} (physdev in ${port.name})` });
    const pre = af.nf.hook(NF_INET_PRE_ROUTING, pkt, f.bridge.link, undefined, ctx);
    ctx.brStolen = pre !== 1 ? pre : this.preRoutingFinish(pkt, af, port, ctx);
    return NF_STOLEN;
  }

  /** br_nf_pre_routing_finish() / br_nf_pre_routing_finish_ipv6(). */
  private preRoutingFinish(pkt: Packet, af: InetFamily, port: Link, ctx: PathCtx): Fate {
    const f = this.br.frame!;
    const m = pkt.meta;
    restoreOtherhost(m);
    m[M_BRNF] = m[M_BRNF]! & ~BRNF_IN_PREROUTING;
    const brLink = f.bridge.link;
    if (daddrChanged(pkt, af.pf)) {
      const rt = af.routeInput(pkt, brLink, ctx);
      if (rt.kind === 'drop') return rt.fate;
      if (rt.kind === 'forward' && rt.dev === brLink.name) {
        // bridged_dnat: the rest of the bridge PRE_ROUTING entries, then br_nf_pre_routing_finish_bridge()
        const nexthop = rt.gateway ?? af.daddr(pkt);
        const neigh = this.br.node.bridge.neigh.find((n) => n.dev === brLink.name && n.dst === nexthop);
        if (!neigh) {
          const why = `br_nf_pre_routing_finish_bridge: no neighbour entry for ${nexthop} on ${brLink.name}: the kernel queues the frame and resolves the address (neighbour resolution is not modelled)`;
          if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: why });
          return dropped('bridge', why);
        }
        return this.br.nf.thresh(NF_BR_PRE_ROUTING, pkt, port, undefined, ctx, undefined, () => {
          // neigh_hh_bridge() (or, for a neighbour without a cached header, neigh->output and
          // br_nf_pre_routing_finish_bridge_slow(), which restores the source MAC and type): only the
          // destination MAC becomes the neighbour's; then br_handle_frame_finish() on the input port
          pkt.data.set(neigh.mac, m[M_MACOFF]!);
          if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_nf_pre_routing_finish_bridge: the new destination ${nexthop} is on ${brLink.name} again: destination MAC set to its neighbour entry's ${formatMac(neigh.mac)}, bridged` });
          return this.br.handleFrameFinish(pkt, port, ctx);
        }, port);
      } else {
        // the frame goes up to the bridge device (routed or delivered): its destination MAC becomes the bridge's
        const mac = m[M_MACOFF]!;
        pkt.data.set(f.bridge.dev.mac, mac);
        m[M_PKTTYPE] = PACKET_HOST;
        if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_nf_pre_routing_finish: the new destination ${af.daddr(pkt)} is not on ${brLink.name}: up to ${brLink.name} (destination MAC set to the bridge's)` });
      }
    }
    // skb_dst_set_noref(skb, &bridge_parent_rtable(physindev)->dst): the bridge's fake rtable (br_netfilter_rtable_init:
    // no RTCF_LOCAL, not an input route, on the bridge device), which icmp_send() takes for a REJECT in FORWARD
    if (!daddrChanged(pkt, af.pf)) ctx.dst = this.fakeRtable(brLink.name);
    return this.br.nf.thresh(NF_BR_PRE_ROUTING, pkt, port, undefined, ctx, this.br, this.br.handleFrameFinish, port);
  }

  private readonly fakeRtables = new Map<string, Dst>();
  /** br->fake_rtable of bridge `dev`. */
  private fakeRtable(dev: string): Dst {
    let d = this.fakeRtables.get(dev);
    if (!d) this.fakeRtables.set(dev, (d = { input: false, local: false, cast: 'unicast', dev }));
    return d;
  }

  /** br_nf_local_in(): nf_confirm for a conntrack that is not yet confirmed, of a frame that is not PACKET_HOST. */
  private localIn(pkt: Packet): number {
    const id = pkt.meta[M_CT_ID]!;
    if (!this.ct || id < 0 || pkt.meta[M_PKTTYPE] === PACKET_HOST || this.ct.isConfirmed(id)) return NF_ACCEPT;
    return this.ct.confirm(pkt);
  }

  /** br_nf_forward() → br_nf_forward_ip(). */
  private forward(pkt: Packet, st: NodeHookState): number {
    const m = pkt.meta;
    if ((m[M_BRNF]! & BRNF_PRESENT) === 0) return NF_ACCEPT;
    const out = st.outLink!;
    const pf = this.family(pkt, out.name);
    if (pf === 0) return NF_ACCEPT;
    const f = this.br.frame!;
    const af = this.inet(pf)!;
    const ctx = st.ctx;
    const inPort = st.inLink;
    hideOtherhost(m);
    ipView(pkt);
    if (!validate(af, pkt, f.bridge.link, ctx)) return NF_DROP;
    m[M_BRNF] = m[M_BRNF]! | BRNF_PHYSOUT;
    setNameWords(pkt, M_PHYSOUTNAME, out.name);
    if (!ctx.quiet) ctx.steps.push({ kind: 'hook', text: `br_nf_forward: ${iptablesOf(pf)} FORWARD with in and out ${f.bridge.dev.name} (physdev ${inPort?.name ?? ''} > ${out.name})` });
    const fwd = af.nf.hook(NF_INET_FORWARD, pkt, f.bridge.link, f.bridge.link, ctx);
    if (fwd !== 1) {
      ctx.brStolen = fwd;
      return NF_STOLEN;
    }
    // br_nf_forward_finish()
    restoreOtherhost(m);
    ctx.brStolen = this.br.nf.thresh(NF_BR_FORWARD, pkt, inPort, out, ctx, this.br, this.br.forwardFinish, out);
    return NF_STOLEN;
  }

  /** br_nf_post_routing(). */
  private postRouting(pkt: Packet, st: NodeHookState): number {
    const m = pkt.meta;
    if ((m[M_BRNF]! & (BRNF_PRESENT | BRNF_PHYSOUT)) !== (BRNF_PRESENT | BRNF_PHYSOUT)) return NF_ACCEPT;
    const out = st.outLink!;
    const pf = this.family(pkt, out.name);
    if (pf === 0) return NF_ACCEPT;
    const f = this.br.frame!;
    const af = this.inet(pf)!;
    const ctx = st.ctx;
    hideOtherhost(m);
    ipView(pkt);
    if (!ctx.quiet) ctx.steps.push({ kind: 'hook', text: `br_nf_post_routing: ${iptablesOf(pf)} POSTROUTING with out ${f.bridge.dev.name} (physdev out ${out.name})` });
    const post = af.nf.hook(NF_INET_POST_ROUTING, pkt, undefined, f.bridge.link, ctx);
    if (post !== 1) {
      ctx.brStolen = post;
      return NF_STOLEN;
    }
    // br_nf_dev_queue_xmit()
    restoreOtherhost(m);
    ctx.brStolen = this.br.transmit(pkt, out, ctx);
    return NF_STOLEN;
  }
}

/** br_validate_ipv4() / br_validate_ipv6(): the header checks, then the frame trimmed to the IP length (pskb_trim_rcsum). */
function validate(af: InetFamily, pkt: Packet, dev: Link, ctx: PathCtx): boolean {
  if (af.pf === NFPROTO_IPV6 ? !brValidateIpv6(pkt) : af.rcvCore(pkt, dev, ctx)) return false;
  pkt.len = pkt.meta[M_END]!;
  return true;
}

/**
 * br_validate_ipv6() (br_netfilter_ipv6.c): the header is there, version 6,
 * payload_len within the frame (a zero one behind a hop-by-hop header, a
 * jumbogram, is not checked here). Unlike ipv6_rcv() it asks nothing of the device (disable_ipv6)
 * and drops no martian address.
 */
function brValidateIpv6(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const avail = pkt.len - nh;
  if (avail < 40 || d[nh]! >> 4 !== 6) return false;
  const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
  if (plen === 0 && d[nh + 6] === 0) return true;
  return plen + 40 <= avail;
}

/** ip_sabotage_in(): a bridged frame that passed PREROUTING in the bridge goes straight to ip_rcv_finish. */
function ipSabotageIn(pkt: Packet, st: NodeHookState): number {
  const m = pkt.meta;
  const f = m[M_BRNF]!;
  if ((f & BRNF_PRESENT) === 0 || f & BRNF_SABOTAGE_DONE) return NF_ACCEPT;
  if (f & BRNF_IN_PREROUTING) return NF_ACCEPT;
  m[M_BRNF] = f | BRNF_SABOTAGE_DONE;
  st.ctx.brSabotage = true;
  if (!st.ctx.quiet) st.ctx.steps.push({ kind: 'hook', text: 'ip_sabotage_in: PREROUTING was passed in the bridge (br_netfilter), not again' });
  return NF_STOLEN;
}

/** nf_bridge->ipv4_daddr / ipv6_daddr: the destination address as the frame entered PREROUTING. */
function saveDaddr(pkt: Packet, pf: number): void {
  const d = pkt.data;
  const m = pkt.meta;
  const at = m[M_NHOFF]! + (pf === NFPROTO_IPV6 ? 24 : 16);
  const words = pf === NFPROTO_IPV6 ? 4 : 1;
  for (let i = 0; i < 4; i++) m[M_BRNF_DADDR + i] = i < words ? (d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]! : 0;
}

/** br_nf_ipv4_daddr_was_changed() / the IPv6 twin. */
function daddrChanged(pkt: Packet, pf: number): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const at = m[M_NHOFF]! + (pf === NFPROTO_IPV6 ? 24 : 16);
  const words = pf === NFPROTO_IPV6 ? 4 : 1;
  for (let i = 0; i < words; i++) {
    if (((d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!) !== m[M_BRNF_DADDR + i]) return true;
  }
  return false;
}

/**
 * setup_pre_routing(), br_nf_forward_ip(), br_nf_post_routing(): the IP
 * hooks see a frame for another host as PACKET_HOST, nf_bridge->pkt_otherhost
 * remembers it.
 */
function hideOtherhost(m: Int32Array): void {
  if (m[M_PKTTYPE] === PACKET_OTHERHOST) {
    m[M_PKTTYPE] = PACKET_HOST;
    m[M_BRNF] = m[M_BRNF]! | BRNF_PKT_OTHERHOST;
  }
}

/** br_nf_pre_routing_finish(), br_nf_forward_finish(), br_nf_dev_queue_xmit(): PACKET_OTHERHOST back after the IP hooks. */
function restoreOtherhost(m: Int32Array): void {
  if (m[M_BRNF]! & BRNF_PKT_OTHERHOST) {
    m[M_PKTTYPE] = PACKET_OTHERHOST;
    m[M_BRNF] = m[M_BRNF]! & ~BRNF_PKT_OTHERHOST;
  }
}

function iptablesOf(pf: number): string {
  return pf === NFPROTO_IPV6 ? 'ip6tables' : 'iptables';
}
