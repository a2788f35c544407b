/**
 * The node's sockets as the socket match reaches them (ext/xt.ts
 * XtSockets), over the snapshot's ss.txt (hooks/snapshot/ss.ts).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/nf_socket_ipv4.c  nf_socket_get_sock_v4(): TCP inet_lookup(), UDP udp4_lib_lookup()
 *   net/ipv6/netfilter/nf_socket_ipv6.c  nf_socket_get_sock_v6(): TCP inet6_lookup(), UDP udp6_lib_lookup()
 *   net/ipv4/inet_hashtables.c           __inet_lookup_established(): the connection's four-tuple (an
 *                                        AF_INET6 socket's IPv4 connection too), the bound device;
 *                                        then __inet_lookup_listener() (hooks/answer/sockets.ts)
 *   net/ipv4/udp.c, net/ipv6/udp.c        __udp4_lib_lookup() / __udp6_lib_lookup(): the sockets bound
 *                                        to the destination address, then the wildcard ones;
 *                                        compute_score(): a connected socket only for its peer (and
 *                                        preferred), a device-bound one only for its device (and
 *                                        preferred), IPv4: an AF_INET socket before an AF_INET6 one
 * The kernel's last tie-break (sk_incoming_cpu, then the hash order) is
 * the order of ss.txt here.
 */
import type { XtSock, XtSockets } from '../ext/xt.js';
import type { Node } from './snapshot/node.js';
import { onPort, socketAt as socketAtIndex, type ListenSocket } from './snapshot/ss.js';
import { lookupConnection, lookupListener, sameWords, sockWords } from './answer/sockets.js';

export class NodeXtSockets implements XtSockets {
  /** Every socket of the table as the matches see it, by its number (socketAt). */
  private readonly socks: XtSock[] = [];
  private readonly found = new Map<ListenSocket, XtSock>();

  constructor(private readonly node: Node) {
    const t = node.sockets;
    if (!t) return;
    [...t.sockets, ...t.connected].forEach((s, index) => {
      const x: XtSock = { full: s.state !== 'TIME-WAIT' && s.state !== 'SYN-RECV', wildcard: s.addr === undefined, transparent: s.transparent, mark: s.mark, timeWait: s.state === 'TIME-WAIT', index, cgroup: s.cgroup };
      this.socks.push(x);
      this.found.set(s, x);
    });
  }

  private sock(s: ListenSocket): XtSock {
    return this.found.get(s)!;
  }

  byIndex(index: number): XtSock | undefined {
    return this.socks[index];
  }

  primaryAddr4(ifindex: number): number {
    for (const a of this.node.addresses) if (a.family === 4 && a.ifindex === ifindex && !a.secondary) return a.local.w[0]! >>> 0;
    return 0;
  }

  firstAddr6(ifindex: number, out: Uint32Array): boolean {
    for (const a of this.node.addresses) {
      if (a.family !== 6 || a.ifindex !== ifindex || a.tentative || a.deprecated) continue;
      out.set(a.local.w);
      return true;
    }
    return false;
  }

  tproxyLookup(family: 4 | 6, proto: number, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, ifindex: number, established: boolean): XtSock | undefined {
    const t = this.node.sockets;
    if (!t || (proto !== 6 && proto !== 17)) return undefined;
    const dev = this.node.linksByIndex.get(ifindex)?.name ?? '';
    if (proto === 6) {
      const s = established ? lookupConnection(t, family, saddr, sport, daddr, dport, dev) : lookupListener(t, 'tcp', family, daddr, dport, dev);
      return s && this.sock(s);
    }
    const x = this.udp(family, saddr, sport, daddr, dport, dev);
    if (!x) return undefined;
    // udp4_lib_lookup() / udp6_lib_lookup() then: established wants a connected socket bound to an address, listener an unconnected one
    const connected = socketAtIndex(t, x.index)?.peer !== undefined;
    return (established ? connected && !x.wildcard : !connected) ? x : undefined;
  }

  lookup(family: 4 | 6, proto: number, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, ifindex: number): XtSock | undefined {
    const t = this.node.sockets;
    if (!t || (proto !== 6 && proto !== 17)) return undefined;
    const dev = this.node.linksByIndex.get(ifindex)?.name ?? '';
    if (proto === 6) {
      const c = lookupConnection(t, family, saddr, sport, daddr, dport, dev);
      if (c) return this.sock(c);
      const l = lookupListener(t, 'tcp', family, daddr, dport, dev);
      return l && this.sock(l);
    }
    return this.udp(family, saddr, sport, daddr, dport, dev);
  }

  /** __udp4_lib_lookup() / __udp6_lib_lookup(): the best score among the sockets bound to daddr, else among the wildcard ones. */
  private udp(family: 4 | 6, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, dev: string): XtSock | undefined {
    const on = onPort(this.node.sockets!, 'udp', dport);
    for (let pass = 0; pass < 2; pass++) {
      let best: ListenSocket | undefined;
      let bestScore = -1;
      for (let l = 0; l < 2; l++) {
        for (const s of l === 0 ? on.conn : on.listen) {
          let score: number;
          if (family === 4) {
            // an IPV6_V6ONLY socket never takes IPv4 (a wildcard AF_INET6 socket that does shows as `*`)
            if (s.family === 6 && !s.v4mapped) continue;
            score = s.family === 4 ? 2 : 1;
          } else {
            if (s.family !== 6 || s.v4mapped && s.addr !== undefined) continue;
            score = 0;
          }
          const local = sockWords(s.addr, s.family, family);
          if (local === null) continue;
          if (pass === 0 ? local === undefined || !sameWords(local, daddr) : local !== undefined) continue;
          if (s.peer) {
            const peer = sockWords(s.peer.addr, s.family, family);
            if (!peer || !sameWords(peer, saddr) || s.peer.port !== sport) continue;
            score += family === 4 ? 8 : 2;
          }
          if (s.dev !== '') {
            if (s.dev !== dev) continue;
            score += family === 4 ? 4 : 1;
          }
          if (score > bestScore) {
            best = s;
            bestScore = score;
          }
        }
      }
      if (best) return this.sock(best);
    }
    return undefined;
  }
}
