/**
 * The one table of every match and target module nfvm knows: the parser,
 * the checks, the printer, the VM lowering and the reference semantics of
 * an extension are all found here by name. Adding an extension is one file
 * under `ext/match/` or `ext/target/` (every face, or a documented refusal)
 * plus its line in MATCHES or TARGETS; test/ext/registry.test.ts checks
 * that every module here has all its faces.
 */
import type { Family } from '../core/ast.js';
import type { MatchModule, TargetModule } from './types.js';
import { tcp, udp } from './match/tcpudp.js';
import { comment } from './match/comment.js';
import { mark } from './match/mark.js';
import { icmp, icmp6 } from './match/icmp.js';
import { multiport } from './match/multiport.js';
import { length } from './match/length.js';
import { ttl, hl } from './match/ttl.js';
import { tos } from './match/tos.js';
import { dscp } from './match/dscp.js';
import { ecn } from './match/ecn.js';
import { pkttype } from './match/pkttype.js';
import { addrtype } from './match/addrtype.js';
import { iprange } from './match/iprange.js';
import { mac } from './match/mac.js';
import { devgroup } from './match/devgroup.js';
import { cpu } from './match/cpu.js';
import { cgroup } from './match/cgroup.js';
import { osf } from './match/osf.js';
import { realm } from './match/realm.js';
import { conntrack, state } from './match/conntrack.js';
import { connmark } from './match/connmark.js';
import { helper } from './match/helper.js';
import { connlimit } from './match/connlimit.js';
import { connbytes } from './match/connbytes.js';
import { cluster } from './match/cluster.js';
import { socket } from './match/socket.js';
import { owner } from './match/owner.js';
import { ipvs } from './match/ipvs.js';
import { policy } from './match/policy.js';
import { rpfilter } from './match/rpfilter.js';
import { physdev } from './match/physdev.js';
import { limit } from './match/limit.js';
import { hashlimit } from './match/hashlimit.js';
import { statistic } from './match/statistic.js';
import { set } from './match/set.js';
import { recent } from './match/recent.js';
import { nfacct } from './match/nfacct.js';
import { string } from './match/string.js';
import { u32 } from './match/u32.js';
import { quota } from './match/quota.js';
import { time } from './match/time.js';
import { rateest } from './match/rateest.js';
import { connlabel } from './match/connlabel.js';
import { bpf } from './match/bpf.js';
import { sctp } from './match/sctp.js';
import { dccp } from './match/dccp.js';
import { esp } from './match/esp.js';
import { ah, ah6 } from './match/ah.js';
import { ipcomp } from './match/ipcomp.js';
import { frag } from './match/frag.js';
import { rt } from './match/rt.js';
import { hbh, dst } from './match/hbh.js';
import { ipv6header } from './match/ipv6header.js';
import { srh } from './match/srh.js';
import { eui64 } from './match/eui64.js';
import { mh } from './match/mh.js';
import { tcpmss } from './match/tcpmss.js';
import { MARK } from './target/MARK.js';
import { TOS } from './target/TOS.js';
import { DSCP } from './target/DSCP.js';
import { TTL, HL } from './target/TTL.js';
import { TCPMSS } from './target/TCPMSS.js';
import { CHECKSUM } from './target/CHECKSUM.js';
import { CLASSIFY } from './target/CLASSIFY.js';
import { CONNMARK } from './target/CONNMARK.js';
import { CT, NOTRACK } from './target/CT.js';
import { AUDIT } from './target/AUDIT.js';
import { SET } from './target/SET.js';
import { REJECT4, REJECT6 } from './target/REJECT.js';
import { LOG } from './target/LOG.js';
import { NFLOG } from './target/NFLOG.js';
import { TRACE } from './target/TRACE.js';
import { NFQUEUE } from './target/NFQUEUE.js';
import { NAT_TARGETS } from './target/NAT.js';
import { NETMAP4, NETMAP6 } from './target/NETMAP.js';
import { TPROXY4, TPROXY6 } from './target/TPROXY.js';
import { ECN } from './target/ECN.js';
import { TEE } from './target/TEE.js';
import { SECMARK, CONNSECMARK } from './target/SECMARK.js';
import { HMARK } from './target/HMARK.js';
import { IDLETIMER } from './target/IDLETIMER.js';
import { LED } from './target/LED.js';
import { RATEEST } from './target/RATEEST.js';
import { SYNPROXY } from './target/SYNPROXY.js';
import { TCPOPTSTRIP } from './target/TCPOPTSTRIP.js';
import { SNPT, DNPT } from './target/NPT.js';

/** Every match module (the order is the one `did you mean` hints see options in). */
const MATCHES: readonly MatchModule[] = [
  tcp,
  udp,
  comment,
  mark,
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
  cgroup,
  osf,
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
  rateest,
  connlabel,
  bpf,
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

/** Every target module (ACCEPT/DROP/QUEUE/RETURN and chain jumps are the rule parser's own). */
const TARGETS: readonly TargetModule[] = [
  MARK,
  TOS,
  DSCP,
  TTL,
  HL,
  TCPMSS,
  CHECKSUM,
  CLASSIFY,
  CONNMARK,
  CT,
  NOTRACK,
  AUDIT,
  SET,
  REJECT4,
  REJECT6,
  LOG,
  NFLOG,
  TRACE,
  NFQUEUE,
  ...NAT_TARGETS,
  NETMAP4,
  NETMAP6,
  TPROXY4,
  TPROXY6,
  ECN,
  TEE,
  SECMARK,
  CONNSECMARK,
  HMARK,
  IDLETIMER,
  LED,
  RATEEST,
  SYNPROXY,
  TCPOPTSTRIP,
  SNPT,
  DNPT,
];

const matchByName = new Map<string, MatchModule[]>();
const targetByName = new Map<string, TargetModule[]>();

function index<M extends { name: string; aliases?: readonly string[] }>(mods: readonly M[], into: Map<string, M[]>) {
  for (const m of mods) {
    for (const n of [m.name, ...(m.aliases ?? [])]) {
      const list = into.get(n) ?? [];
      list.push(m);
      into.set(n, list);
    }
  }
}
index(MATCHES, matchByName);
index(TARGETS, targetByName);

/** name → module for one family (the first module of that name valid for the family). */
function perFamily<M extends { family?: Family }>(byName: Map<string, M[]>, family: Family): Map<string, M> {
  const out = new Map<string, M>();
  for (const [name, mods] of byName) {
    const m = mods.find((x) => x.family === undefined || x.family === family);
    if (m) out.set(name, m);
  }
  return out;
}
const matchIp = perFamily(matchByName, 'ip');
const matchIp6 = perFamily(matchByName, 'ip6');
const targetIp = perFamily(targetByName, 'ip');
const targetIp6 = perFamily(targetByName, 'ip6');

export function findMatch(name: string, family: Family): MatchModule | undefined {
  return (family === 'ip' ? matchIp : matchIp6).get(name);
}

export function findTarget(name: string, family: Family): TargetModule | undefined {
  return (family === 'ip' ? targetIp : targetIp6).get(name);
}

export function allMatches(): readonly MatchModule[] {
  return MATCHES;
}

export function allTargets(): readonly TargetModule[] {
  return TARGETS;
}

let optionNames: string[] | undefined;
/** Every long option of every module (for "did you mean" hints). */
export function allOptionNames(): readonly string[] {
  if (!optionNames) {
    const s = new Set<string>();
    for (const m of [...MATCHES, ...TARGETS]) for (const o of m.options) s.add(o.name);
    optionNames = [...s];
  }
  return optionNames;
}

/**
 * Kernel targets nfvm has no module for. `-j NAME` with one of these is
 * kept verbatim (and reported) instead of being taken for a jump to a
 * missing chain.
 */
export const KNOWN_FOREIGN_TARGETS: ReadonlySet<string> = new Set([
  'ARPMANGLE', 'CLUSTERIP', 'MIRROR',
  'SAME', 'ULOG', 'IPV4OPTSSTRIP',
  'ROUTE', 'FLOWOFFLOAD', 'IMQ', 'TARPIT', 'DELUDE', 'CHAOS', 'STEAL', 'SYSRQ', 'ACCOUNT', 'XOR',
  'LOGMARK', 'DHCPMAC', 'ECHO', 'IPMARK', 'TRACE_LOG',
]);
