/** Every match module, in no particular order (the registry indexes them by name). */
import type { MatchModule } from '../types.js';
import { tcp, udp } from './tcpudp.js';
import { comment } from './comment.js';
import { mark } from './mark.js';

export const MATCHES: readonly MatchModule[] = [tcp, udp, comment, mark];
