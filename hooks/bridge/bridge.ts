/**
 * The bridges of the node: a frame received on a bridge port is bridged,
 * flooded, or goes up to the bridge device (and the IP path there).
 *
 * Mirrors Linux 6.18:
 *   net/bridge/br_input.c    br_handle_frame(): a source MAC that is not a valid unicast
 *                            address is dropped, link-local group addresses (01:80:c2:00:00:0X)
 *                            are not bridged, a port neither forwarding nor learning drops,
 *                            pkt_type HOST when the destination is the bridge's address, then the
 *                            PRE_ROUTING hooks (nf_hook_bridge_pre, nf-bridge.ts);
 *                            br_handle_frame_finish(): ingress VLAN filter, learning (br_fdb_update),
 *                            broadcast and multicast go up locally too (no multicast snooping querier:
 *                            flooded), a learning port stops here, unicast looked up in the fdb: a
 *                            local entry goes up (br_pass_frame_up), a known port gets the frame
 *                            (br_forward), an unknown address is flooded (br_flood); the local copy
 *                            goes up after the forwarded ones
 *                            br_pass_frame_up(): NF_BR_LOCAL_IN with in = the port, then
 *                            netif_receive_skb on the bridge device (the IP path, in = the bridge)
 *   net/bridge/br_forward.c  should_deliver(): not back out of the ingress port unless hairpin,
 *                            the port forwarding, the VLAN allowed on egress;
 *                            __br_forward(): NF_BR_FORWARD (in = ingress port, out = egress port),
 *                            br_forward_finish(): NF_BR_POST_ROUTING (in = none), then the device;
 *                            br_flood(): every port by the flood flag of the frame's kind
 *                            (BR_FLOOD / BR_MCAST_FLOOD / BR_BCAST_FLOOD), a clone each
 *   net/bridge/br_vlan.c     br_allowed_ingress(): with vlan_filtering, an untagged (or priority
 *                            tagged) frame takes the port's PVID (none: dropped), a tagged one must
 *                            be a member VLAN; br_allowed_egress(); br_handle_vlan() (egress
 *                            untagged: the tag removed)
 *   net/bridge/br_fdb.c      (fdb.ts)
 *
 * Not modelled: STP (the snapshot's port states are taken as they are),
 * multicast snooping (groups are flooded as with mcast_snooping 0 or no
 * querier), proxy ARP / neighbour suppression, port isolation's backup
 * ports, locked ports, MST. Egress tagging changes the frame only in the
 * packet's bookkeeping (the VLAN the hooks see), not in its bytes.
 */
import { F_MAC_HEADER, M_CT_ID, M_END, M_FLAGS, M_MACOFF, M_NFPROTO, M_NHOFF, M_PKTTYPE, PACKET_HOST } from '../../vm/layout.js';
import { ETH_P_8021Q, setDevice, type Packet } from '../../vm/packet.js';
import { ipView } from './view.js';
import { NF_BR_FORWARD, NF_BR_LOCAL_IN, NF_BR_LOCAL_OUT, NF_BR_POST_ROUTING, NF_BR_PRE_ROUTING } from '../../core/netfilter.js';
import { formatMac } from '../../core/addr.js';
import type { Link, Node } from '../snapshot/node.js';
import type { BridgeDevice, BridgePort } from '../snapshot/bridge.js';
import { arphrd, dropped, type InetFamily, type PathCtx } from '../path/ctx.js';
import type { Fate } from '../path/fate.js';
import { receive } from '../path/receive.js';
import { ethTypeTrans } from '../path/eth.js';
import { Fdb, type FdbEntry } from './fdb.js';
import type { BrHook } from './nf-bridge.js';

/** What the bridge asks of conntrack for the clones of a flooded frame (they share the original's entry). */
export interface CtRefs {
  nfConntrackGet(id: number): void;
  nfResetCt(pkt: Packet): void;
}

/** A bridge as the path uses it. */
export interface Bridge {
  readonly dev: BridgeDevice;
  readonly link: Link;
  /** Port names in port-list order. */
  readonly ports: readonly BridgePort[];
  readonly fdb: Fdb;
  /** Per device (port or the bridge), vid → { untagged }, and the PVID. */
  readonly vlans: Map<string, { vids: Map<number, boolean>; pvid: number }>;
}

/** The per-frame facts of a bridged frame that the hooks after PRE_ROUTING read. */
export interface BrFrame {
  bridge: Bridge;
  /** The port it came in on. */
  port: Link;
  /** The frame's VLAN (0 without VLAN filtering). */
  vid: number;
  /** It had an 802.1Q tag on the wire. */
  wireTagged: boolean;
}

const ETH_ALEN = 6;


export class BridgeNode {
  readonly bridges = new Map<string, Bridge>();
  /** port name → its bridge. */
  readonly portOf = new Map<string, { bridge: Bridge; port: BridgePort }>();
  /** The node's clock in nanoseconds (learning, ageing). */
  now = 0;
  /** Conntrack references of the clones (set when the node tracks connections). */
  ct: CtRefs | undefined;
  /** The frame being bridged (one at a time; nested answers do not cross the bridge). */
  frame: BrFrame | undefined;
  /**
   * The record and the fate of a replay's frame (a reused context, not an
   * answer), filled again for each: read before the next frame. Answers and
   * the node's own frames (devXmit) make their own.
   */
  private topFrame: BrFrame | undefined;
  private readonly topFate: Fate & { kind: 'bridged' } = { kind: 'bridged', bridge: '', ports: [], local: undefined };
  /** Packets for the clones of flooded frames, by nesting depth. */
  private readonly clones: Packet[] = [];
  private cloneDepth = 0;

  constructor(
    readonly node: Node,
    readonly nf: BrHook,
    private readonly inet: (pf: number) => InetFamily | undefined,
    private readonly newPacket: () => Packet,
  ) {
    const lvl = node.bridge;
    for (const dev of lvl.bridges.values()) {
      const link = node.links.get(dev.name);
      if (!link) continue;
      const vlans = new Map<string, { vids: Map<number, boolean>; pvid: number }>();
      for (const v of lvl.vlans) {
        if (v.dev !== dev.name && lvl.ports.get(v.dev)?.bridge !== dev.name) continue;
        let e = vlans.get(v.dev);
        if (!e) vlans.set(v.dev, (e = { vids: new Map(), pvid: 0 }));
        e.vids.set(v.vid, v.untagged);
        if (v.pvid) e.pvid = v.vid;
      }
      // ageing_time is in centiseconds (USER_HZ 100)
      const fdb = new Fdb(dev.ageingTime * 10_000_000);
      const b: Bridge = { dev, link, ports: dev.ports.map((p) => lvl.ports.get(p)!), fdb, vlans };
      this.bridges.set(dev.name, b);
      for (const p of b.ports) this.portOf.set(p.name, { bridge: b, port: p });
      // br_fdb_change_mac_address / fdb_add_local of each port: the local (permanent) entries
      const local = (mac: Uint8Array, port: string, vid: number) => fdb.add(mac, vid, { port, local: true, static: true, updated: 0 });
      const vidsOf = (devName: string) => (dev.vlanFiltering ? [0, ...(vlans.get(devName)?.vids.keys() ?? [])] : [0]);
      for (const vid of vidsOf(dev.name)) local(dev.mac, '', vid);
      for (const p of b.ports) for (const vid of vidsOf(p.name)) local(p.mac, p.name, vid);
    }
    for (const e of lvl.fdb) {
      // the bridge's fdb (`master br0`); a device's own list (`self`) is not the bridge's
      const b = this.bridges.get(e.master);
      if (!b) continue;
      const port = e.dev === b.dev.name ? '' : e.dev;
      const local = e.state === 'permanent';
      b.fdb.add(e.mac, fdbVid(b, e.vlan), { port, local, static: local || e.state === 'static', updated: 0 });
    }
  }

  /** Whether frames received on `dev` enter a bridge. */
  isPort(dev: string): boolean {
    return this.portOf.has(dev);
  }

  /** br_handle_frame(): a frame received on bridge port `dev`. */
  handleFrame(pkt: Packet, dev: Link, ctx: PathCtx): Fate {
    const bp = this.portOf.get(dev.name)!;
    const b = bp.bridge;
    const m = pkt.meta;
    setDevice(pkt, 'in', dev.ifindex, dev.name, arphrd(dev), dev.group);
    setDevice(pkt, 'out', 0);
    if (!dev.up) return dropped('device', `${dev.name} is down`);
    if ((m[M_FLAGS]! & F_MAC_HEADER) === 0) return dropped('bad-header', 'frame without an Ethernet header on a bridge port');
    ethTypeTrans(pkt, dev);
    const d = pkt.data;
    const mac = m[M_MACOFF]!;
    const src = mac + ETH_ALEN;
    if ((d[src]! & 1) !== 0 || isZero(d, src)) return dropped('bridge', `source MAC ${formatMac(d.subarray(src, src + 6))} is not a unicast address (br_handle_frame)`);
    if (d[mac] === 0x01 && d[mac + 1] === 0x80 && d[mac + 2] === 0xc2 && d[mac + 3] === 0 && d[mac + 4] === 0 && (d[mac + 5]! & 0xf0) === 0) {
      return dropped('bridge', 'link-local group address (01:80:c2:00:00:0X): not bridged (STP and link-local protocols are not modelled)');
    }
    const state = bp.port.state;
    if (state !== 'forwarding' && state !== 'learning') return dropped('bridge', `port ${dev.name} is ${state}`);
    if (sameMac(d, mac, b.dev.mac)) m[M_PKTTYPE] = PACKET_HOST;
    const wireTagged = ((d[mac + 12]! << 8) | d[mac + 13]!) === ETH_P_8021Q;
    if (ctx.transient && ctx.depth === 0) {
      const t = (this.topFrame ??= { bridge: b, port: dev, vid: 0, wireTagged });
      t.bridge = b;
      t.port = dev;
      t.vid = 0;
      t.wireTagged = wireTagged;
      this.frame = t;
    } else this.frame = { bridge: b, port: dev, vid: 0, wireTagged };
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_handle_frame: ${dev.name} is a port of ${b.dev.name} (${state}), ${formatMac(d.subarray(src, src + 6))} > ${formatMac(d.subarray(mac, mac + 6))}` });
    return this.nf.run(NF_BR_PRE_ROUTING, pkt, dev, undefined, ctx, this, this.handleFrameFinish, dev, 0, this.brouted);
  }

  /** A brouted frame (broute DROP): not bridged, up the port's own stack as if the port were not in a bridge. */
  private brouted(pkt: Packet, dev: Link, ctx: PathCtx): Fate {
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `broute: the frame is routed, not bridged (up ${dev.name}'s own stack)` });
    ipView(pkt);
    const af = this.inet(pkt.meta[M_NFPROTO]!);
    if (!af) return dropped('not-ip', 'a brouted frame that is not IPv4 or IPv6 (ARP and other protocols are not modelled)');
    // RX_HANDLER_PASS: __netif_receive_skb goes on with the same skb, the pkt_type br_handle_frame
    // and ebt_broute left (no second eth_type_trans)
    return receive(af, pkt, dev, ctx, true);
  }

  /** br_handle_frame_finish(). */
  handleFrameFinish(pkt: Packet, dev: Link, ctx: PathCtx): Fate {
    const bp = this.portOf.get(dev.name)!;
    const b = bp.bridge;
    const f = this.frame!;
    const m = pkt.meta;
    const d = pkt.data;
    const mac = m[M_MACOFF]!;
    if (bp.port.state === 'disabled') return dropped('bridge', `port ${dev.name} is disabled`);
    const vid = this.allowedIngress(b, dev.name, pkt);
    if (vid < 0) return dropped('bridge', `VLAN ${-vid - 1 || 'untagged'} not allowed on ${dev.name} (br_allowed_ingress)`);
    f.vid = vid;
    if (bp.port.learning) b.fdb.update(pkt, mac + ETH_ALEN, dev.name, vid, this.now);
    const promisc = b.link.flags.includes('PROMISC');
    let localRcv = promisc;
    let kind: 'unicast' | 'multicast' | 'broadcast' = 'unicast';
    if (d[mac]! & 1) {
      kind = isBroadcast(d, mac) ? 'broadcast' : 'multicast';
      // broadcast by definition; multicast: no snooping querier, so flooded and delivered locally
      localRcv = true;
    }
    if (bp.port.state === 'learning') return dropped('bridge', `port ${dev.name} is learning: the address was learned, the frame dropped`);
    let dst: FdbEntry | undefined;
    if (kind === 'unicast') dst = b.fdb.find(d, mac, vid, this.now);
    if (dst && dst.local) {
      if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `fdb: ${formatMac(d.subarray(mac, mac + 6))} is ${b.dev.name}'s own (local): up to ${b.dev.name}` });
      return this.passFrameUp(pkt, b, dev, ctx);
    }
    const top = ctx.transient && ctx.depth === 0 ? this.topFate : undefined;
    let ports: { port: string; fate: Fate | undefined }[];
    if (top === undefined) ports = [];
    else {
      ports = top.ports;
      ports.length = 0;
    }
    if (dst) {
      if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `fdb: ${formatMac(d.subarray(mac, mac + 6))} on ${dst.port}${dst.static ? ' (static)' : ''}` });
      const to = b.ports.find((p) => p.name === dst.port);
      if (to && this.shouldDeliver(b, to, dev.name, vid)) {
        ports.push({ port: to.name, fate: localRcv ? this.deliverClone(pkt, b, to, dev, ctx) : this.brForward(pkt, b, to, dev, ctx) });
      }
    } else {
      if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `${kind === 'unicast' ? `fdb: ${formatMac(d.subarray(mac, mac + 6))} unknown` : kind}: flooded (br_flood)` });
      const targets = b.ports.filter((p) => (kind === 'unicast' ? p.flood : kind === 'multicast' ? p.mcastFlood : p.bcastFlood) && this.shouldDeliver(b, p, dev.name, vid));
      targets.forEach((to, i) => {
        const last = i === targets.length - 1 && !localRcv;
        ports.push({ port: to.name, fate: last ? this.brForward(pkt, b, to, dev, ctx) : this.deliverClone(pkt, b, to, dev, ctx) });
      });
    }
    const local = localRcv ? this.passFrameUp(pkt, b, dev, ctx) : undefined;
    if (top === undefined) return { kind: 'bridged', bridge: b.dev.name, ports, local };
    top.bridge = b.dev.name;
    top.local = local;
    // the last frame's NAT rewrites (Node.finish)
    if (top.nat !== undefined) top.nat = undefined;
    return top;
  }

  /** should_deliver() */
  private shouldDeliver(b: Bridge, to: BridgePort, inPort: string, vid: number): boolean {
    return (to.hairpin || to.name !== inPort) && to.state === 'forwarding' && this.allowedEgress(b, to.name, vid) && !(to.isolated && this.portOf.get(inPort)?.port.isolated);
  }

  /** deliver_clone(): the frame's copy to `to`, the original kept for the next. */
  private deliverClone(pkt: Packet, b: Bridge, to: BridgePort, inDev: Link | undefined, ctx: PathCtx): Fate | undefined {
    const depth = this.cloneDepth++;
    const c = (this.clones[depth] ??= this.newPacket());
    c.data.set(pkt.data.subarray(0, pkt.len));
    c.len = pkt.len;
    c.meta.set(pkt.meta);
    const id = c.meta[M_CT_ID]!;
    if (this.ct && id >= 0) this.ct.nfConntrackGet(id);
    const saved = this.frame;
    try {
      return this.brForward(c, b, to, inDev, ctx);
    } finally {
      this.frame = saved;
      this.ct?.nfResetCt(c);
      this.cloneDepth--;
    }
  }

  /** __br_forward(): NF_BR_FORWARD (NF_BR_LOCAL_OUT, in none, for the bridge's own packets) then br_forward_finish. Undefined when the frame left the port. */
  private brForward(pkt: Packet, b: Bridge, to: BridgePort, inDev: Link | undefined, ctx: PathCtx): Fate | undefined {
    const out = this.node.links.get(to.name)!;
    const f = this.nf.run(inDev ? NF_BR_FORWARD : NF_BR_LOCAL_OUT, pkt, inDev, out, ctx, this, this.forwardFinish, out);
    return f.kind === 'bridged' && f.ports.length === 1 && f.ports[0]!.fate === undefined ? undefined : f;
  }

  /** br_forward_finish(): NF_BR_POST_ROUTING (in = none), then br_dev_queue_push_xmit. */
  forwardFinish(pkt: Packet, out: Link, ctx: PathCtx): Fate {
    return this.nf.run(NF_BR_POST_ROUTING, pkt, undefined, out, ctx, this, this.transmit, out);
  }

  /** br_dev_queue_push_xmit(): the frame leaves the port. */
  transmit(_pkt: Packet, out: Link, ctx: PathCtx): Fate {
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_dev_queue_push_xmit: out ${out.name}` });
    const b = this.frame!.bridge;
    if (!out.up) return dropped('device', `${out.name} is down`);
    return { kind: 'bridged', bridge: b.dev.name, ports: [{ port: out.name, fate: undefined }], local: undefined };
  }

  /** br_pass_frame_up(): NF_BR_LOCAL_IN (in = the port), then netif_receive_skb on the bridge device. */
  passFrameUp(pkt: Packet, b: Bridge, inDev: Link, ctx: PathCtx): Fate {
    const f = this.frame!;
    if (b.dev.vlanFiltering && !this.allowedEgress(b, b.dev.name, f.vid)) {
      return dropped('bridge', `VLAN ${f.vid} is not one of ${b.dev.name}'s own (br_pass_frame_up)`);
    }
    return this.nf.run(NF_BR_LOCAL_IN, pkt, inDev, undefined, ctx, this, this.passFrameUpFinish, inDev);
  }

  /** br_pass_frame_up()'s okfn: netif_receive_skb on the frame's bridge device. */
  private passFrameUpFinish(pkt: Packet, _inDev: Link, ctx: PathCtx): Fate {
    const f = this.frame!;
    const b = f.bridge;
    ipView(pkt);
    const af = this.inet(pkt.meta[M_NFPROTO]!);
    if (!af) return dropped('not-ip', `up to ${b.dev.name}: not an IPv4 or IPv6 packet (ARP and other protocols are not modelled)`);
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_pass_frame_up: up to ${b.dev.name}` });
    // br_handle_vlan() for the bridge device: with VLAN filtering the tag stays unless the VLAN is egress-untagged there
    return receive(af, pkt, b.link, ctx, true, b.dev.vlanFiltering ? (this.tagPresent(b.dev.name) ? f.vid : 0) : undefined);
  }

  /**
   * br_dev_xmit() (net/bridge/br_device.c): a packet the node's IP stack sent out of bridge device
   * `b` (after POSTROUTING), as a frame from the bridge's address to the
   * neighbour `nexthop` (the snapshot's neighbour table; a broadcast or
   * multicast destination maps to its group address): a known unicast
   * address goes to its port, anything else is flooded, each copy through
   * NF_BR_LOCAL_OUT (in none) and NF_BR_POST_ROUTING. The packet's own
   * fate `sent` when the neighbour is unknown (the kernel would resolve it
   * first: not modelled), that fate with the frame and its ports
   * (`bridge`) when every copy left, else what stopped a copy.
   */
  devXmit(ip: Packet, b: Bridge, sent: Fate & { kind: 'forwarded' | 'sent' }, ctx: PathCtx): Fate {
    // ip_forward() passes only PACKET_HOST frames: a forwarded packet goes to one neighbour
    const nexthop = sent.via ?? sent.dst;
    const cast = sent.kind === 'sent' ? sent.cast : 'unicast';
    const m = ip.meta;
    const nh = m[M_NHOFF]!;
    const len = m[M_END]! - nh;
    const d = ip.data;
    const v6 = d[nh]! >> 4 === 6;
    let dmac: Uint8Array | undefined;
    if (cast === 'broadcast') dmac = BROADCAST_MAC;
    else if (cast === 'multicast') {
      // ipv6_eth_mc_map() (include/net/if_inet6.h), ip_eth_mc_map() (include/net/ip.h)
      const a = nh + (v6 ? 24 : 16);
      dmac = groupMac;
      if (v6) {
        dmac[0] = dmac[1] = 0x33;
        for (let i = 0; i < 4; i++) dmac[2 + i] = d[a + 12 + i]!;
      } else {
        dmac[0] = 1;
        dmac[1] = 0;
        dmac[2] = 0x5e;
        dmac[3] = d[a + 1]! & 0x7f;
        dmac[4] = d[a + 2]!;
        dmac[5] = d[a + 3]!;
      }
    } else dmac = this.node.bridge.neigh.find((n) => n.dev === b.dev.name && n.dst === nexthop)?.mac;
    if (!dmac) {
      if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_dev_xmit: no neighbour entry for ${nexthop} on ${b.dev.name} (neighbour resolution is not modelled): the bridge hooks are not run` });
      return sent;
    }
    const depth = this.cloneDepth++;
    const pkt = (this.clones[depth] ??= this.newPacket());
    const saved = this.frame;
    try {
      pkt.meta.set(m);
      pkt.data.set(dmac, 0);
      pkt.data.set(b.dev.mac, ETH_ALEN);
      pkt.data[12] = v6 ? 0x86 : 0x08;
      pkt.data[13] = v6 ? 0xdd : 0x00;
      pkt.data.set(d.subarray(nh, nh + len), 14);
      pkt.len = 14 + len;
      ipView(pkt);
      m[M_CT_ID] = -1; // the frame holds the packet's conntrack reference now
      const vid = b.dev.vlanFiltering ? b.vlans.get(b.dev.name)?.pvid ?? 0 : 0;
      this.frame = { bridge: b, port: b.link, vid, wireTagged: false };
      const dst = cast === 'unicast' ? b.fdb.find(pkt.data, 0, vid, this.now) : undefined;
      const ports: { port: string; fate: Fate | undefined }[] = [];
      if (dst && dst.local) return dropped('bridge', `br_dev_xmit: ${nexthop}'s address is the bridge's own`);
      if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `br_dev_xmit: to ${formatMac(dmac)}${dst ? ` on ${dst.port} (fdb)` : ': flooded'}` });
      const targets = dst ? b.ports.filter((p) => p.name === dst.port) : b.ports.filter((p) => cast !== 'unicast' || p.flood);
      const ok = targets.filter((p) => p.state === 'forwarding' && this.allowedEgress(b, p.name, vid));
      ok.forEach((to, i) => {
        ports.push({ port: to.name, fate: i === ok.length - 1 ? this.brForward(pkt, b, to, undefined, ctx) : this.deliverClone(pkt, b, to, undefined, ctx) });
      });
      if (ports.length === 0 || ports.some((p) => p.fate !== undefined)) return { kind: 'bridged', bridge: b.dev.name, ports, local: undefined };
      // every copy left: the packet's fate stands, with the frame and the ports it left by
      return { ...sent, bridge: { ports: ports.map((p) => p.port), srcMac: formatMac(b.dev.mac), dstMac: formatMac(dmac) } };
    } finally {
      this.ct?.nfResetCt(pkt);
      this.frame = saved;
      this.cloneDepth--;
    }
  }

  /** br_allowed_ingress(): the frame's VLAN (0 without filtering), or -(vid + 1) when not allowed (-1: untagged without a PVID). */
  private allowedIngress(b: Bridge, port: string, pkt: Packet): number {
    if (!b.dev.vlanFiltering) return 0;
    const v = b.vlans.get(port);
    const d = pkt.data;
    const mac = pkt.meta[M_MACOFF]!;
    const tagged = ((d[mac + 12]! << 8) | d[mac + 13]!) === ETH_P_8021Q;
    const tagVid = tagged ? ((d[mac + 14]! << 8) | d[mac + 15]!) & 0xfff : 0;
    if (tagVid === 0) return v && v.pvid ? v.pvid : -1;
    return v?.vids.has(tagVid) ? tagVid : -(tagVid + 1);
  }

  /** br_allowed_egress() */
  private allowedEgress(b: Bridge, dev: string, vid: number): boolean {
    if (!b.dev.vlanFiltering) return true;
    return b.vlans.get(dev)?.vids.has(vid) ?? false;
  }

  /** Whether the frame carries a VLAN tag (skb_vlan_tag_present) as it leaves for `out` (br_handle_vlan), or at PRE_ROUTING (out undefined). */
  tagPresent(out: string | undefined): boolean {
    const f = this.frame;
    if (!f) return false;
    if (!f.bridge.dev.vlanFiltering || out === undefined) return f.wireTagged;
    return !(f.bridge.vlans.get(out)?.vids.get(f.vid) ?? false);
  }

  /** The bridge of port `dev`. */
  bridgeOf(dev: string): Bridge | undefined {
    return this.portOf.get(dev)?.bridge;
  }

  /** The fdb entries of every bridge, as `bridge fdb show` lists them (for traces and tests). */
  fdbText(): string[] {
    const out: string[] = [];
    for (const b of this.bridges.values()) {
      for (const [vid, k, e] of b.fdb.entries()) {
        const mac = new Uint8Array(6);
        let x = k;
        for (let i = 5; i >= 0; i--) {
          mac[i] = x % 256;
          x = Math.floor(x / 256);
        }
        const state = e.local ? ' permanent' : e.static ? ' static' : '';
        out.push(`${formatMac(mac)} dev ${e.port || b.dev.name}${vid ? ` vlan ${vid}` : ''} master ${b.dev.name}${state}`);
      }
    }
    return out;
  }
}

const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/** devXmit's multicast destination, filled per packet (read before any nested transmit). */
const groupMac = new Uint8Array(6);

/** The VLAN key of a snapshot fdb entry (0 without VLAN filtering). */
function fdbVid(b: Bridge, vlan: number | undefined): number {
  return b.dev.vlanFiltering ? (vlan ?? 0) : 0;
}

function isZero(d: Uint8Array, at: number): boolean {
  for (let i = 0; i < 6; i++) if (d[at + i] !== 0) return false;
  return true;
}

function isBroadcast(d: Uint8Array, at: number): boolean {
  for (let i = 0; i < 6; i++) if (d[at + i] !== 0xff) return false;
  return true;
}

/** The 6 bytes at `at` of `d` are `mac`. */
export function sameMac(d: Uint8Array, at: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (d[at + i] !== mac[i]) return false;
  return true;
}
