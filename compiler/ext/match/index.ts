/** Every match module, in no particular order (the registry indexes them by name). */
import type { MatchModule } from '../types.js';
import { tcp, udp } from './tcpudp.js';
import { comment } from './comment.js';
import { mark } from './mark.js';
// imports: group A (addresses, headers, packet fields)
// imports: group B (conntrack, sockets, policy, bridge)
// imports: group C (rates, sets, content, time)

export const MATCHES: readonly MatchModule[] = [
  tcp,
  udp,
  comment,
  mark,
  // list: group A
  // list: group B
  // list: group C
];
