/**
 * The copy a TEE rule sends to its gateway: nf_dup_ipv4() / nf_dup_ipv6()
 * over the node (the XtDup the engines' TEE target calls).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/nf_dup_ipv4.c  nf_dup_ipv4(): nothing while nf_skb_duplicated is set (a clone
 *                                     is in ip_local_out: a TEE on the clone's own path copies
 *                                     nothing); pskb_copy() (mark, priority, pkt_type and secmark
 *                                     come along, the socket does not); nf_reset_ct() and
 *                                     nf_ct_set(skb, NULL, IP_CT_UNTRACKED): conntrack and NAT leave
 *                                     the clone alone; IP_DF set; the TTL one less at PRE_ROUTING and
 *                                     LOCAL_IN; nf_dup_ipv4_route(): ip_route_output_key() to the
 *                                     gateway with the packet's DSCP, TEE's oif, no mark, no source and
 *                                     FLOWI_FLAG_KNOWN_NH (an on-link gateway is the next hop:
 *                                     rt_set_nexthop() of the uncached route sets rt_gw4 to it); no
 *                                     route: the clone is freed; then ip_local_out()
 *   net/ipv6/netfilter/nf_dup_ipv6.c  nf_dup_ipv6(): the same with the hop limit and no DF bit;
 *                                     nf_dup_ipv6_route(): ip6_route_output() to the gateway with
 *                                     the flow label (an RTF_CACHE clone whose gateway is it)
 *   net/ipv4/route.c                  ip_route_output_key_hash_rcu(): bound to an oif and without a
 *                                     route, the gateway is taken to be on that link
 *   net/ipv4/ip_output.c              __ip_local_out(): tot_len and the header checksum again
 * The kernel sends the clone from inside the target, while the chain runs.
 * The engines run one packet at a time, so the clone waits in `pending`
 * until the table's hook function returns (hooks/tables.ts calls flush()),
 * and leaves before the next hook entry sees the original: only the rules
 * after the TEE in the same table meet the original before its clone has
 * passed OUTPUT and POSTROUTING, which matters only for state those rules
 * and the clone's path share (a quota, a limit, an nth counter).
 */
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING, NF_CT_STATE_UNTRACKED_BIT } from '../core/netfilter.js';
import type { XtDup } from '../ext/xt.js';
import {
  M_CPU, M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_END, M_MARK, M_NFPROTO, M_NHOFF, M_PKTTYPE, M_PRIORITY, M_SECMARK,
} from '../vm/layout.js';
import { LINKTYPE_IPV4, LINKTYPE_IPV6, Packet, decodePacket, resetMeta } from '../vm/packet.js';
import { HOOK_CHAIN_NAMES } from './priorities.js';
import { inetChecksum } from './input/spec.js';
import { formatIPv4, formatIPv6 } from './route/addr.js';
import { fibLookup } from './route/index.js';
import { RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST } from './route/types.js';
import type { Node } from './snapshot/node.js';
import { dropped, newPathCtx, routeText, tableName, type Cast, type InetFamily, type OutputRoute, type PathCtx } from './path/ctx.js';
import type { Fate } from './path/fate.js';
import { localOutRouted } from './path/local-out.js';

/** A clone waiting for its table's hook function to return. */
interface DupRequest {
  readonly pf: number;
  /** The IP packet as pskb_copy() took it, DF and TTL already done. */
  readonly bytes: Uint8Array;
  readonly mark: number;
  readonly priority: number;
  readonly pkttype: number;
  readonly secmark: number;
  /** The CPU the original is handled on: the clone is sent there too. */
  readonly cpu: number;
  readonly gw: Uint8Array;
  /** The device the route is bound to (priv->oif), '' for none. */
  readonly oif: string;
  readonly hook: number;
  readonly what: string;
}

/** What the clone's path needs of the node. */
export interface DupNode {
  readonly node: Node;
  inet(pf: number): InetFamily;
  /** A packet the IP stack sent out of a bridge device goes on through the bridge (NodeModel.bridgeXmit). */
  xmit(pkt: Packet, fate: Fate, ctx: PathCtx): Fate;
  /** The clone left the model: it lets go of what it holds (nf_reset_ct). */
  release(pkt: Packet): void;
}

export class NodeDup implements XtDup {
  /** nf_skb_duplicated: set while a clone is in ip_local_out. */
  private duplicating = false;
  /** The clones made while the current hook function runs, in order. */
  readonly pending: DupRequest[] = [];
  /** The clone's packet buffer (clones do not nest: nf_skb_duplicated). */
  private readonly pkt = new Packet();

  constructor(private readonly n: DupNode) {}

  dup(pkt: Packet, hook: number, gw: Uint8Array, oif: string, what: string): void {
    if (this.duplicating) return;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const bytes = pkt.data.slice(nh, m[M_END]!);
    const pf = m[M_NFPROTO]!;
    const ttlHook = hook === NF_INET_PRE_ROUTING || hook === NF_INET_LOCAL_IN;
    if (pf === NFPROTO_IPV4 && bytes.length >= 20) {
      bytes[6] = bytes[6]! | 0x40; // frag_off |= htons(IP_DF)
      if (ttlHook) bytes[8] = (bytes[8]! - 1) & 0xff;
    } else if (pf === NFPROTO_IPV6 && bytes.length >= 40) {
      if (ttlHook) bytes[7] = (bytes[7]! - 1) & 0xff;
    } else return;
    this.pending.push({
      pf, bytes, mark: m[M_MARK]!, priority: m[M_PRIORITY]!, pkttype: m[M_PKTTYPE]!, secmark: m[M_SECMARK]!, cpu: m[M_CPU]!, gw: gw.slice(),
      // priv->oif: the ifindex of a device of that name, -1 (no binding) without one
      oif: oif !== '' && this.n.node.links.has(oif) ? oif : '', hook, what,
    });
  }

  /** Sends the clones made since the last flush, each through ip_local_out, recording them on `ctx` (not while a clone is being sent). */
  flush(ctx: PathCtx): void {
    if (this.duplicating) return;
    while (this.pending.length !== 0) {
      const req = this.pending.shift()!;
      this.duplicating = true;
      try {
        this.send(req, ctx);
      } finally {
        this.duplicating = false;
      }
    }
  }

  private send(req: DupRequest, ctx: PathCtx): void {
    const pkt = this.pkt;
    const v6 = req.pf === NFPROTO_IPV6;
    const fn = v6 ? 'nf_dup_ipv6' : 'nf_dup_ipv4';
    const b = req.bytes;
    if (!v6) {
      // __ip_local_out(): tot_len = skb->len, ip_send_check()
      b[2] = (b.length >>> 8) & 0xff;
      b[3] = b.length & 0xff;
      b[10] = 0;
      b[11] = 0;
      const c = inetChecksum(b, 0, (b[0]! & 0x0f) * 4);
      b[10] = c >>> 8;
      b[11] = c & 0xff;
    }
    resetMeta(pkt);
    pkt.setFrame(b);
    decodePacket(pkt, v6 ? LINKTYPE_IPV6 : LINKTYPE_IPV4);
    const m = pkt.meta;
    m[M_MARK] = req.mark;
    m[M_PRIORITY] = req.priority;
    m[M_PKTTYPE] = req.pkttype;
    m[M_SECMARK] = req.secmark;
    m[M_CPU] = req.cpu;
    // nf_reset_ct(); nf_ct_set(skb, NULL, IP_CT_UNTRACKED)
    m[M_CT_ID] = -1;
    m[M_CT_STATE] = NF_CT_STATE_UNTRACKED_BIT;
    m[M_CT_DIR] = -1;
    m[M_CT_STATUS] = 0;
    m[M_CT_MARK] = 0;
    const actx = newPathCtx(ctx.quiet, undefined, ctx.stack, ctx.depth + 1);
    const gw = v6 ? formatIPv6(words(req.gw)) : formatIPv4(word(req.gw, 0));
    if (!ctx.quiet) {
      const ttl = v6 ? `hop limit ${b[7]}` : `TTL ${b[8]}, DF set`;
      actx.steps.push({ kind: 'check', text: `${fn}: a copy of the packet at ${HOOK_CHAIN_NAMES[req.hook] ?? req.hook} (${req.what}): untracked, ${ttl}` });
    }
    const route = this.route(req, pkt, gw);
    let fate: Fate;
    if ('fate' in route) fate = route.fate;
    else {
      if (!ctx.quiet) actx.steps.push({ kind: 'route', text: route.text });
      fate = this.n.xmit(pkt, localOutRouted(this.n.inet(req.pf), pkt, route, '', actx), actx);
    }
    if (actx.nat.length) fate.nat = actx.nat;
    const sent = fate.kind === 'sent' ? pkt.data.slice(m[M_NHOFF]!, m[M_END]!) : b;
    ctx.clones.push({
      result: { kind: 'tee-clone', why: `${fn}: ${req.what} at ${HOOK_CHAIN_NAMES[req.hook] ?? req.hook}`, depth: ctx.depth + 1, steps: actx.steps, fate, packet: sent, kernelFields: [], clone: true },
      ctx: actx,
    });
    this.n.release(pkt);
  }

  /** nf_dup_ipv4_route() / nf_dup_ipv6_route(): the output route to the gateway, which is the next hop unless the route has its own. */
  private route(req: DupRequest, pkt: Packet, gw: string): OutputRoute {
    const v6 = req.pf === NFPROTO_IPV6;
    const fn = v6 ? 'nf_dup_ipv6_route' : 'nf_dup_ipv4_route';
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const daddr = v6 ? { family: 6 as const, w: words(req.gw) } : { family: 4 as const, w: Uint32Array.of(word(req.gw, 0)) };
    // flowi4: daddr, dscp, scope universe, the oif, no mark, no source; flowi6: daddr, the oif, flow label
    const oif = req.oif;
    const res = fibLookup(this.n.node, v6 ? { daddr, oif, mark: 0 } : { daddr, oif, mark: 0, tos: d[nh + 1]! & 0xfc });
    if (!res.ok) {
      // ip_route_output_key_hash_rcu(): with an oif and no route, "Apparently, routing tables are wrong. Assume, that the destination is on link."
      if (!v6 && oif !== '') return { dev: oif, gateway: gw, local: false, cast: 'unicast', text: `${fn}: no route to the gateway ${gw} through ${oif}: assumed on link, out ${oif}` };
      return { fate: dropped('no-route', `${fn}: no route to the gateway ${gw}${oif ? ` through ${oif}` : ''} (${res.error}): the copy is freed`) };
    }
    const local = res.rtnType === RTN_LOCAL || (v6 && res.rtnType === RTN_ANYCAST);
    if (local) return { dev: 'lo', gateway: undefined, local: true, cast: 'unicast', text: `${fn}: the gateway ${gw} is local: out lo and back in` };
    const rgw = res.gateway && res.gateway.family === res.route.dst.family ? (v6 ? formatIPv6(res.gateway.w) : formatIPv4(res.gateway.w[0]!)) : undefined;
    const w0 = daddr.w[0]!;
    const cast: Cast = v6
      ? (w0 >>> 24 === 0xff ? 'multicast' : 'unicast')
      : w0 === 0xffffffff || res.rtnType === RTN_BROADCAST ? 'broadcast' : w0 >>> 28 === 0xe || res.rtnType === RTN_MULTICAST ? 'multicast' : 'unicast';
    return {
      dev: res.dev, gateway: rgw ?? gw, local: false, cast,
      text: `${fn}: gateway ${gw} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): out ${res.dev}${rgw ? '' : ` to ${gw}`}`,
    };
  }
}

function word(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function words(b: Uint8Array): Uint32Array {
  return Uint32Array.of(word(b, 0), word(b, 4), word(b, 8), word(b, 12));
}
