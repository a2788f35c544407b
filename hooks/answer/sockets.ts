/**
 * Which listening socket of the snapshot (ss.txt, hooks/snapshot/ss.ts) a
 * locally delivered TCP segment or UDP datagram reaches.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/inet_hashtables.c  __inet_lookup_listener(): the sockets bound to the destination
 *                               address first, then the wildcard ones; compute_score(): a
 *                               device-bound socket only for its device (and preferred), an
 *                               AF_INET socket before a dual-stack AF_INET6 one, IPV6_V6ONLY
 *                               sockets never for IPv4
 *   net/ipv6/inet6_hashtables.c inet6_lookup_listener(): AF_INET6 sockets only
 *   net/ipv4/udp.c, ipv6/udp.c  __udp4_lib_lookup() / __udp6_lib_lookup(): the same two passes
 *                               and preferences for unconnected sockets
 *   __inet_lookup_established() (lookupConnection): before the listeners,
 *                               the connection whose four-tuple the segment
 *                               carries (an AF_INET6 socket's IPv4
 *                               connection too), bound device respected
 * A snapshot of `ss -ltun` has no connections: a segment of one then
 * reaches no socket.
 */
import { onPort, type ListenSocket, type SocketTable } from '../snapshot/ss.js';
import { addrEqual } from '../route/addr.js';

/**
 * The socket for (proto, family of the packet, destination address words,
 * port, input device), or undefined.
 */
export function lookupListener(t: SocketTable | undefined, proto: 'tcp' | 'udp', family: 4 | 6, daddr: ArrayLike<number>, port: number, dev: string): ListenSocket | undefined {
  if (!t) return undefined;
  let best: ListenSocket | undefined;
  let bestScore = -1;
  // Pass 1: bound to the address; pass 2: wildcard.
  const listen = onPort(t, proto, port).listen;
  for (let pass = 0; pass < 2 && !best; pass++) {
    for (const s of listen) {
      if (s.dev !== '' && s.dev !== dev) continue;
      let ok: boolean;
      if (family === 4) {
        if (s.family === 4) ok = pass === 0 ? s.addr !== undefined && s.addr.w[0] === daddr[0] : s.addr === undefined;
        else if (!s.v4mapped) ok = false; // IPV6_V6ONLY
        else ok = pass === 0 ? s.addr !== undefined && s.addr.w[3] === daddr[0] : s.addr === undefined;
      } else {
        if (s.family !== 6 || (s.addr !== undefined && s.addr.w[2] === 0xffff && s.addr.w[0] === 0 && s.addr.w[1] === 0)) ok = false;
        else ok = pass === 0 ? s.addr !== undefined && addrEqual(s.addr.w, daddr) : s.addr === undefined;
      }
      if (!ok) continue;
      // A device-bound socket first, then an AF_INET one before a dual-stack AF_INET6 one.
      const score = (s.dev !== '' ? 4 : 0) + (s.family === 4 ? 1 : 0);
      if (score > bestScore) {
        best = s;
        bestScore = score;
      }
    }
  }
  return best;
}

/** A socket's own address words as a packet of `family` sees them (an AF_INET6 socket's IPv4 address is mapped); undefined for the any address, null when the family cannot reach it. */
export function sockWords(addr: { w: ArrayLike<number> } | undefined, sockFamily: 4 | 6, family: 4 | 6): ArrayLike<number> | undefined | null {
  if (!addr) return undefined;
  if (sockFamily === family) return addr.w;
  if (family === 4 && sockFamily === 6) {
    const w = addr.w;
    return w[0] === 0 && w[1] === 0 && w[2] === 0xffff ? [w[3]!] : null;
  }
  return null;
}

export function sameWords(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]! >>> 0 !== b[i]! >>> 0) return false;
  return true;
}

/**
 * __inet_lookup_established(): the TCP socket of the connection from
 * saddr:sport to daddr:dport on `dev` (with `proto` 'udp': a UDP socket
 * connected to that peer and bound to that address), or undefined.
 */
export function lookupConnection(t: SocketTable | undefined, family: 4 | 6, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, dev: string, proto: 'tcp' | 'udp' = 'tcp'): ListenSocket | undefined {
  if (!t) return undefined;
  for (const s of onPort(t, proto, dport).conn) {
    if (!s.peer || s.peer.port !== sport) continue;
    if (family === 6 && s.family !== 6) continue;
    if (s.dev !== '' && s.dev !== dev) continue;
    const local = sockWords(s.addr, s.family, family);
    const peer = sockWords(s.peer.addr, s.family, family);
    if (local && peer && sameWords(local, daddr) && sameWords(peer, saddr)) return s;
  }
  return undefined;
}
