/**
 * The reference's match table: extension name (as the AST names it) → a
 * factory that turns the parser's data into the kernel's match function.
 * A name missing here is refused by the engine ("semantics not modelled yet").
 */
import type { MatchFn } from '../../../ext/xt.js';
import { addrtype } from './addrtype.js';
import { comment } from './comment.js';
import { connmark } from './connmark.js';
import { conntrack } from './conntrack.js';
import { dscp } from './dscp.js';
import { ecn } from './ecn.js';
import { hl } from './hl.js';
import { icmp } from './icmp.js';
import { icmp6 } from './icmp6.js';
import { iprange } from './iprange.js';
import { length } from './length.js';
import { mac } from './mac.js';
import { mark } from './mark.js';
import { multiport } from './multiport.js';
import { pkttype } from './pkttype.js';
import { statistic } from './statistic.js';
import { tcp } from './tcp.js';
import { tos } from './tos.js';
import { ttl } from './ttl.js';
import { udp } from './udp.js';

type Factory = (data: any, family: 'ip' | 'ip6') => MatchFn;

export const MATCH_FACTORIES: ReadonlyMap<string, Factory> = new Map<string, Factory>([
  ['tcp', tcp],
  ['udp', udp],
  ['icmp', icmp],
  ['icmp6', icmp6],
  ['multiport', multiport],
  ['mark', mark],
  ['iprange', iprange],
  ['length', length],
  ['ttl', ttl],
  ['hl', hl],
  ['tos', tos],
  ['dscp', dscp],
  ['ecn', ecn],
  ['addrtype', addrtype],
  ['mac', mac],
  ['pkttype', pkttype],
  ['comment', comment],
  ['statistic', statistic],
  ['conntrack', conntrack],
  ['state', conntrack],
  ['connmark', connmark],
]);
