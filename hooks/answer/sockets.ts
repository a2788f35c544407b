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
 * Connected UDP sockets and established TCP connections are not in `ss
 * -ltun`: a segment of an established connection reaches no socket here.
 */
import type { ListenSocket, SocketTable } from '../snapshot/ss.js';
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
  for (let pass = 0; pass < 2 && !best; pass++) {
    for (const s of t.sockets) {
      if (s.proto !== proto || s.port !== port) continue;
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
