/** Every match module, in no particular order (the registry indexes them by name). */
import type { MatchModule } from '../types.js';
import { tcp, udp } from './tcpudp.js';
import { comment } from './comment.js';
import { mark } from './mark.js';
// imports: group A (addresses, headers, packet fields)
import { icmp, icmp6 } from './icmp.js';
import { multiport } from './multiport.js';
import { length } from './length.js';
import { ttl, hl } from './ttl.js';
import { tos } from './tos.js';
import { dscp } from './dscp.js';
import { ecn } from './ecn.js';
import { pkttype } from './pkttype.js';
import { addrtype } from './addrtype.js';
import { iprange } from './iprange.js';
import { mac } from './mac.js';
import { devgroup } from './devgroup.js';
import { cpu } from './cpu.js';
import { realm } from './realm.js';
// imports: group B (conntrack, sockets, policy, bridge)
import { conntrack, state } from './conntrack.js';
import { connmark } from './connmark.js';
import { helper } from './helper.js';
import { connlimit } from './connlimit.js';
import { connbytes } from './connbytes.js';
import { cluster } from './cluster.js';
import { socket } from './socket.js';
import { owner } from './owner.js';
import { ipvs } from './ipvs.js';
import { policy } from './policy.js';
import { rpfilter } from './rpfilter.js';
import { physdev } from './physdev.js';
// imports: group C (rates, sets, content, time)
import { limit } from './limit.js';
import { hashlimit } from './hashlimit.js';
import { statistic } from './statistic.js';
import { set } from './set.js';
import { recent } from './recent.js';
import { nfacct } from './nfacct.js';
import { string } from './string.js';
import { u32 } from './u32.js';
import { quota } from './quota.js';
import { time } from './time.js';
// imports: group F (misc)
import { rateest } from './rateest.js';
import { connlabel } from './connlabel.js';
import { bpf } from './bpf.js';
// imports: group E (header matches)
import { sctp } from './sctp.js';
import { dccp } from './dccp.js';
import { esp } from './esp.js';
import { ah, ah6 } from './ah.js';
import { ipcomp } from './ipcomp.js';
import { frag } from './frag.js';
import { rt } from './rt.js';
import { hbh, dst } from './hbh.js';
import { ipv6header } from './ipv6header.js';
import { srh } from './srh.js';
import { eui64 } from './eui64.js';
import { mh } from './mh.js';
import { tcpmss } from './tcpmss.js';

export const MATCHES: readonly MatchModule[] = [
  tcp,
  udp,
  comment,
  mark,
  // list: group A
  icmp,
  icmp6,
  multiport,
  length,
  ttl,
  hl,
  tos,
  dscp,
  ecn,
  pkttype,
  addrtype,
  iprange,
  mac,
  devgroup,
  cpu,
  realm,
  // list: group B
  conntrack,
  state,
  connmark,
  helper,
  connlimit,
  connbytes,
  cluster,
  socket,
  owner,
  ipvs,
  policy,
  rpfilter,
  physdev,
  // list: group C
  limit,
  hashlimit,
  statistic,
  set,
  recent,
  nfacct,
  string,
  u32,
  quota,
  time,
  // list: group F
  rateest,
  connlabel,
  bpf,
  // list: group E
  sctp,
  dccp,
  esp,
  ah,
  ah6,
  ipcomp,
  frag,
  rt,
  hbh,
  dst,
  ipv6header,
  srh,
  eui64,
  mh,
  tcpmss,
];
