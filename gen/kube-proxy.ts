/**
 * `nfvm gen kube-proxy`: a node snapshot of a Kubernetes node with N Services
 * of M endpoints each, in the structure kube-proxy (pkg/proxy/iptables,
 * pkg/proxy/ipvs, pkg/proxy/nftables proxier.go) writes in each mode.
 *
 * iptables mode: syncProxyRules() as iptables-save prints its result: the
 * base-chain jumps, KUBE-SERVICES (one dispatch rule per Service port, the
 * nodeport rule last), KUBE-SVC-* (masquerade mark for sources outside the
 * cluster CIDR, then the `statistic --mode random` ladder: endpoint i of n
 * taken with probability 1/(n-i), which kube-proxy prints as "%0.10f" and
 * iptables stores as lround(2^31 * p), printed back with "%.11f"),
 * KUBE-SEP-* (hairpin mark, DNAT), KUBE-NODEPORTS and KUBE-EXT-* for
 * NodePorts, KUBE-SVL-* and the health-check node ports for
 * externalTrafficPolicy Local, KUBE-MARK-MASQ and KUBE-POSTROUTING. Chain
 * names are kube-proxy's: "KUBE-SVC-" + the first 16 base32 characters of
 * sha256(servicePortName + protocol) (portProtoHash), KUBE-SEP- of
 * servicePortName + protocol + endpoint.
 *
 * IPVS mode: ipvsadm-save.txt (one virtual service per Service port and per
 * NodePort, rr, masquerading real servers of weight 1), ipset-save.txt (the
 * sets KUBE-CLUSTER-IP, KUBE-LOOP-BACK, KUBE-NODE-PORT-TCP/UDP and, for
 * externalTrafficPolicy Local, KUBE-NODE-PORT-LOCAL-TCP/UDP (whose rules
 * keep the client's address), KUBE-IPVS-IPS, KUBE-HEALTH-CHECK-NODE-PORT;
 * a set's rule only when the set has members, as writeIptablesRules()
 * writes them), the dummy device kube-ipvs0
 * holding every ClusterIP as a /32 (so the node accepts them as local and
 * IPVS takes them on LOCAL_IN), and the iptables rules of IPVS mode, which
 * match those sets instead of listing the Services.
 *
 * nftables mode: nft-ruleset.txt is kube-proxy's table `ip kube-proxy` as
 * `nft list ruleset` prints it (the verdict maps service-ips and
 * service-nodeports, numgen endpoint maps); nfvm reads iptables-save text,
 * not nft syntax, so the same ruleset is also written in the form nfvm
 * runs (see nftablesRules()): the verdict map is an ipset hash:ip,port with
 * skbinfo whose element for a Service carries the Service's number in the
 * packet mark (SET --map-set ... --map-mark on a new connection: one hash
 * lookup, as the vmap's in kube-proxy's nat chains),
 * and the goto is a tree of mark chains linked by gotos, two bits a level
 * (at most 3 tests, log4 N levels: the kernel's jump-stack limit counts
 * gotos too), ending in a goto to the Service's chain; the
 * `numgen random mod n` endpoint map is the statistic ladder (the same
 * distribution). nft-ruleset.txt is not read by nfvm.
 */
import { constants } from 'node:buffer';
import { hash } from 'node:crypto';
import { MAX_FILE_BYTES } from '../hooks/snapshot/read.js';
import { formatIpvsadmSave, parseIpvsadmSave } from '../hooks/ipvs/index.js';
import { deriveRoutes4, type DeriveAddr } from '../hooks/route/derive.js';
import { formatAddr, formatPrefix, parseAddr } from '../hooks/route/addr.js';
import { RTN_NAMES, RTN_UNICAST, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_TABLE_LOCAL, type Route } from '../hooks/route/types.js';
import { heapCheck } from '../core/heap.js';

export type KubeMode = 'iptables' | 'ipvs' | 'nftables';
export const KUBE_MODES: readonly KubeMode[] = ['iptables', 'ipvs', 'nftables'];

export interface KubeGenOptions {
  services: number;
  endpoints: number;
  mode: KubeMode;
  /** Services of type NodePort (the first 2,768: the port range 30000-32767 holds no more). */
  nodePorts?: boolean;
  /** externalTrafficPolicy: Local for the NodePort Services (with nodePorts). */
  localTrafficPolicy?: boolean;
  /** Picks each Service's port and protocol; the same seed gives the same snapshot. */
  seed?: number;
}

/** The node: eth0 192.168.0.2/24, pods in 10.128.0.0/9 behind cni0, ClusterIPs in 10.96.0.0/12. */
export const NODE_IP = '192.168.0.2';
export const CLUSTER_CIDR = '10.128.0.0/9';
const NODEPORT_FIRST = 30000;
const NODEPORT_COUNT = 2768;
const HEALTHCHECK_FIRST = 10300;
export const MAX_SERVICES = 1 << 20;
/** Endpoints fit in 10.128.0.0/9 after the first 256 addresses. */
export const MAX_ENDPOINTS_TOTAL = (1 << 23) - 512;
/** The Service number's bits of the mark in nftables mode (clear of kube-proxy's 0x4000). */
const VMAP_SHIFT = 16;
export const MAX_NFT_SERVICES = 65535;

/** The tables, chains and rules of every node (about 2,000 characters), with room. */
const FIXED_CHARS = 4096;

/**
 * Characters of the largest file of a generated snapshot (iptables-save.txt;
 * in IPVS mode ipvsadm-save.txt or ipset-save.txt), over-estimated: per
 * Service, per its first endpoint and per further endpoint, the most a
 * node of 1,000 Services with 0, 1, 10 or 100 endpoints takes (NodePorts
 * with the local traffic policy the most), plus a tenth for the longer
 * numbers of bigger nodes, plus what every node has.
 */
export function kubeTextEstimate(o: KubeGenOptions): number {
  // IPVS mode: its iptables rules do not grow with the endpoints; ipvsadm-save.txt and the sets do, less
  if (o.mode === 'ipvs') return FIXED_CHARS + 1.1 * o.services * (200 + o.endpoints * 80);
  // the NodePort range holds NODEPORT_COUNT Services; those have the external chains too
  const np = o.nodePorts === true ? Math.min(o.services, NODEPORT_COUNT) : 0;
  const more = Math.max(0, o.endpoints - 1);
  const first = o.endpoints > 0 ? 1 : 0;
  // (a NodePort Service without endpoints has its REJECT in KUBE-EXTERNAL-SERVICES and its health check instead)
  return FIXED_CHARS + 1.1 * (o.services * (170 + first * 560 + more * 450) + np * (first * 960 + (1 - first) * 320 + more * 90));
}

export interface KubeService {
  index: number;
  /** servicePortName as kube-proxy prints it: namespace/name:portname. */
  name: string;
  proto: 'tcp' | 'udp';
  clusterIp: string;
  port: number;
  targetPort: number;
  nodePort?: number;
  healthCheckNodePort?: number;
  endpoints: string[];
  /** Endpoints on this node (externalTrafficPolicy Local keeps only these). */
  local: boolean[];
  svcChain: string;
  extChain: string;
  svlChain: string;
  sepChains: string[];
}

function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** kube-proxy's portProtoHash / servicePortEndpointChainName: base32(sha256(s))[:16]. */
export function kubeHash(s: string): string {
  hashChars(s);
  return withHash('');
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** The 16 characters of the last hashChars(). */
const HASH_CHARS = new Uint8Array(16);
/** The bytes of a name being made (withHash). */
const NAME_BUF = Buffer.alloc(64);

/** kubeHash(s) into HASH_CHARS. */
function hashChars(s: string): void {
  const d = hash('sha256', s, 'buffer') as unknown as Buffer;
  let v = 0;
  let bits = 0;
  for (let i = 0, at = 0; at < 16; i++) {
    v = ((v << 8) | d[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5 && at < 16) {
      HASH_CHARS[at++] = BASE32.charCodeAt((v >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
}

/**
 * `prefix` and the last hashChars() as one flat string, not a
 * concatenation: a 30,000-Service node has hundreds of thousands of chain
 * names, sorted and written out, and V8 compares and copies a flat string
 * several times faster.
 */
function withHash(prefix: string): string {
  const at = NAME_BUF.write(prefix, 0, 'latin1');
  NAME_BUF.set(HASH_CHARS, at);
  return NAME_BUF.toString('latin1', 0, at + 16);
}

/** xorshift32: the seed's stream of port choices. */
function rng(seed: number): () => number {
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The ports Services listen on, with their pods' target ports (weights: how often the seed picks each). */
const PORTS: ReadonlyArray<readonly [number, 'tcp' | 'udp', number, number]> = [
  [80, 'tcp', 8080, 6], [443, 'tcp', 8443, 2], [53, 'udp', 53, 1], [6379, 'tcp', 6379, 1],
];

/** What is wrong with the options (the command's usage message), or undefined. */
export function kubeOptionsProblem(o: KubeGenOptions): string | undefined {
  const bad = (m: string): string => m;
  if (!Number.isInteger(o.services) || o.services < 1 || o.services > MAX_SERVICES) return bad(`--services: 1 to ${MAX_SERVICES}`);
  if (!Number.isInteger(o.endpoints) || o.endpoints < 0 || o.endpoints > 1000) return bad('--endpoints: 0 to 1000');
  if (o.services * o.endpoints > MAX_ENDPOINTS_TOTAL) return bad(`--services x --endpoints: at most ${MAX_ENDPOINTS_TOTAL} endpoints (the pod network ${CLUSTER_CIDR})`);
  if (o.mode === 'nftables' && o.services > MAX_NFT_SERVICES) return bad(`--services: at most ${MAX_NFT_SERVICES} in nftables mode (the Service number is carried in mark bits 16-31)`);
  if (o.localTrafficPolicy && !o.nodePorts) return bad('--local-traffic-policy goes with --nodeports (externalTrafficPolicy applies to NodePort Services)');
  const chars = kubeTextEstimate(o);
  if (chars > MAX_FILE_BYTES) return bad(`--services x --endpoints: about ${Math.round(chars / 2 ** 20)} MiB in the snapshot's largest file, more than the ${MAX_FILE_BYTES / 2 ** 20} MiB nfvm reads as a snapshot file`);
  return undefined;
}

/** The Services of a generated node, in order (what the snapshot's rules, sets and IPVS services are made of). */
export function kubeServices(o: KubeGenOptions): KubeService[] {
  const problem = kubeOptionsProblem(o);
  if (problem) throw new RangeError(problem);
  const next = rng(o.seed ?? 1);
  const total = PORTS.reduce((s, p) => s + p[3], 0);
  const out: KubeService[] = [];
  for (let s = 0; s < o.services; s++) {
    heapCheck('generating the kube-proxy node', 'nfvm gen');
    let r = next() % total;
    let pi = 0;
    while (r >= PORTS[pi]![3]) r -= PORTS[pi++]![3];
    const [port, proto, targetPort] = PORTS[pi]!;
    const name = `ns${s % 100}/svc${s}:p${port}`;
    hashChars(name + proto);
    const svcChain = withHash('KUBE-SVC-');
    const extChain = withHash('KUBE-EXT-');
    const svlChain = withHash('KUBE-SVL-');
    const endpoints: string[] = [];
    const local: boolean[] = [];
    const sepChains: string[] = [];
    for (let e = 0; e < o.endpoints; e++) {
      const addr = ipv4(((10 << 24) | (128 << 16)) + 256 + s * o.endpoints + e);
      endpoints.push(addr);
      local.push(e % 2 === 0);
      hashChars(`${name}${proto}${addr}:${targetPort}`);
      sepChains.push(withHash('KUBE-SEP-'));
    }
    const np = o.nodePorts && s < NODEPORT_COUNT ? NODEPORT_FIRST + s : undefined;
    out.push({
      index: s, name, proto, clusterIp: ipv4(((10 << 24) | (96 << 16)) + 1 + s), port, targetPort,
      nodePort: np, healthCheckNodePort: np !== undefined && o.localTrafficPolicy ? HEALTHCHECK_FIRST + s : undefined,
      endpoints, local, svcChain, extChain, svlChain, sepChains,
    });
  }
  return out;
}

/**
 * The probability kube-proxy writes for endpoint i of n ("%0.10f" of
 * 1/(n-i)), as iptables-save prints it back: libxt_statistic stores
 * lround(2^31 * p) and prints "%.11f" of that over 2^31.
 */
export function statisticProbability(i: number, n: number): string {
  const p = Number((1 / (n - i)).toFixed(10));
  return (Math.round(p * 0x80000000) / 0x80000000).toFixed(11);
}

/**
 * The text is made in pieces of about PIECE characters, each ending at a
 * line's end: `nfvm gen` writes them to the file as they come through one
 * staging buffer, and kubeProxySnapshot() joins them. A 30,000-Service node
 * (about a million rules, 140 MB of text) is never held whole on the way to
 * the file, and nothing is copied more than once: fresh memory costs page
 * faults (11 µs a 4 KB page, about 3 ms a megabyte, on the virtual machine
 * nfvm's figures come from).
 */
class Pieces {
  private static readonly PIECE = 1 << 16;
  private parts: string[] = [];
  private n = 0;
  add(s: string): void {
    this.parts.push(s);
    this.n += s.length;
  }
  rule(chain: string, rule: string): void {
    this.add(`-A ${chain} ${rule}\n`);
  }
  get full(): boolean {
    return this.n >= Pieces.PIECE;
  }
  take(): string {
    const s = this.parts.join('');
    this.parts = [];
    this.n = 0;
    return s;
  }
}

/** How a chain that belongs to one Service is written (TableText.made). */
const enum Made {
  /** KUBE-SVC-*: the masquerade mark for sources outside the cluster, then the endpoint ladder. */
  SVC,
  /** KUBE-SEP-*: one endpoint's hairpin mark and DNAT. */
  SEP,
  /** KUBE-EXT-*: the NodePort's way into the Service (or its local endpoints). */
  EXT,
  /** KUBE-SVL-*: the ladder over the local endpoints. */
  SVL,
}

/**
 * A table's chains in iptables-save order: builtins, then user chains
 * sorted by name. Chains several Services add to (KUBE-SERVICES,
 * KUBE-NODEPORTS, ...) keep their rules as text; a chain of one Service
 * (hundreds of thousands of them) keeps only what it is made from, and its
 * rules are made when the table is written, in its place in the order.
 */
class TableText {
  /** Rules of the builtin and shared chains (the text after `-A chain `), by chain. */
  private readonly lines = new Map<string, string[]>();
  /** The chains of one Service: name, what they are (Made), the Service and the endpoint (SEP). */
  private readonly madeName: string[] = [];
  private readonly madeHow: Made[] = [];
  private readonly madeSvc: KubeService[] = [];
  private readonly madeEp: number[] = [];
  constructor(readonly name: string, private readonly builtins: readonly string[]) {
    for (const b of builtins) this.lines.set(b, []);
  }
  /** A shared chain's rules (the chain made, empty, if it was not). */
  chain(name: string): string[] {
    let r = this.lines.get(name);
    if (!r) this.lines.set(name, (r = []));
    return r;
  }
  add(chain: string, rule: string): void {
    this.chain(chain).push(rule);
  }
  /** A chain of one Service, made when written (its name is no other chain's). */
  made(name: string, how: Made, sv: KubeService, ep = 0): void {
    this.madeName.push(name);
    this.madeHow.push(how);
    this.madeSvc.push(sv);
    this.madeEp.push(ep);
  }

  /** User chains sorted by name: per chain, its index in the made arrays, or -1 for a shared chain. */
  private order(): { names: string[]; made: Int32Array } {
    // the names sorted as they are (flat strings sort fastest), then each found again
    const index = new Map<string, number>();
    for (const c of this.lines.keys()) if (!this.builtins.includes(c)) index.set(c, -1);
    for (let i = 0; i < this.madeName.length; i++) index.set(this.madeName[i]!, i);
    const names = [...index.keys()].sort();
    const made = new Int32Array(names.length);
    for (let k = 0; k < names.length; k++) made[k] = index.get(names[k]!)!;
    return { names, made };
  }

  /** The table's text, in pieces. */
  *text(out: Pieces): Generator<string> {
    const { names, made } = this.order();
    out.add(`*${this.name}\n`);
    for (const b of this.builtins) out.add(`:${b} ACCEPT [0:0]\n`);
    for (const u of names) {
      out.add(`:${u} - [0:0]\n`);
      if (out.full) yield out.take();
    }
    for (const b of this.builtins) yield* this.shared(out, b);
    for (let k = 0; k < names.length; k++) {
      const i = made[k]!;
      if (i < 0) yield* this.shared(out, names[k]!);
      else {
        writeMade(out, this.madeName[i]!, this.madeHow[i]!, this.madeSvc[i]!, this.madeEp[i]!);
        if (out.full) yield out.take();
      }
    }
    out.add('COMMIT\n');
  }

  private *shared(out: Pieces, chain: string): Generator<string> {
    for (const r of this.lines.get(chain)!) {
      out.rule(chain, r);
      if (out.full) yield out.take();
    }
  }
}

function q(comment: string): string {
  return `"${comment}"`;
}

/** The parts every mode shares: KUBE-MARK-MASQ, KUBE-POSTROUTING and their jumps. */
function masqueradeChains(nat: TableText): void {
  nat.add('POSTROUTING', `-m comment --comment ${q('kubernetes postrouting rules')} -j KUBE-POSTROUTING`);
  nat.add('KUBE-MARK-MASQ', '-j MARK --set-xmark 0x4000/0x4000');
  nat.add('KUBE-POSTROUTING', '-m mark ! --mark 0x4000/0x4000 -j RETURN');
  nat.add('KUBE-POSTROUTING', '-j MARK --set-xmark 0x4000/0x0');
  nat.add('KUBE-POSTROUTING', `-m comment --comment ${q('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`);
}

/** The statistic ladder over the endpoints `pick` (with their comments) into `chain`. */
function endpointLadder(out: Pieces, chain: string, sv: KubeService, pick: readonly number[]): void {
  pick.forEach((e, i) => {
    const stat = i < pick.length - 1 ? ` -m statistic --mode random --probability ${statisticProbability(i, pick.length)}` : '';
    out.rule(chain, `-m comment --comment ${q(`${sv.name} -> ${sv.endpoints[e]}:${sv.targetPort}`)}${stat} -j ${sv.sepChains[e]}`);
  });
}

/** The match of a Service's ClusterIP and protocol, and of its port. */
const clusterIp = (sv: KubeService): string => `-d ${sv.clusterIp}/32 -p ${sv.proto}`;
const port = (sv: KubeService): string => `-m ${sv.proto} --dport ${sv.port}`;

const ALL = (sv: KubeService): number[] => sv.endpoints.map((_, i) => i);
const LOCAL = (sv: KubeService): number[] => ALL(sv).filter((e) => sv.local[e]);

/** The rules of a chain of one Service (serviceChains() says which chains a Service has). */
function writeMade(out: Pieces, chain: string, how: Made, sv: KubeService, ep: number): void {
  switch (how) {
    case Made.SVC:
      out.rule(chain, `! -s ${CLUSTER_CIDR} ${clusterIp(sv)} -m comment --comment ${q(`${sv.name} cluster IP`)} ${port(sv)} -j KUBE-MARK-MASQ`);
      endpointLadder(out, chain, sv, ALL(sv));
      return;
    case Made.SEP: {
      const addr = sv.endpoints[ep]!;
      out.rule(chain, `-s ${addr}/32 -m comment --comment ${q(sv.name)} -j KUBE-MARK-MASQ`);
      out.rule(chain, `-p ${sv.proto} -m comment --comment ${q(sv.name)} -m ${sv.proto} -j DNAT --to-destination ${addr}:${sv.targetPort}`);
      return;
    }
    case Made.EXT:
      if (sv.healthCheckNodePort === undefined) {
        out.rule(chain, `-m comment --comment ${q(`masquerade traffic for ${sv.name} external destinations`)} -j KUBE-MARK-MASQ`);
        out.rule(chain, `-j ${sv.svcChain}`);
        return;
      }
      out.rule(chain, `-s ${CLUSTER_CIDR} -m comment --comment ${q(`pod traffic for ${sv.name} external destinations`)} -j ${sv.svcChain}`);
      out.rule(chain, `-m comment --comment ${q(`masquerade LOCAL traffic for ${sv.name} external destinations`)} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`);
      out.rule(chain, `-m comment --comment ${q(`route LOCAL traffic for ${sv.name} external destinations`)} -m addrtype --src-type LOCAL -j ${sv.svcChain}`);
      out.rule(chain, `-j ${sv.svlChain}`);
      return;
    case Made.SVL:
      endpointLadder(out, chain, sv, LOCAL(sv));
      return;
  }
}

/** externalTrafficPolicy Local: the health-check node port accepted (filter KUBE-NODEPORTS). */
function healthCheckRule(filter: TableText, sv: KubeService): void {
  filter.add('KUBE-NODEPORTS', `-p tcp -m comment --comment ${q(`${sv.name} health check node port`)} -m tcp --dport ${sv.healthCheckNodePort} -j ACCEPT`);
}

/** The chains behind a Service's dispatch rule (KUBE-SVC, KUBE-SEP, KUBE-EXT, KUBE-SVL), shared by iptables and nftables modes. */
function serviceChains(nat: TableText, filter: TableText, sv: KubeService): void {
  heapCheck('generating the kube-proxy node', 'nfvm gen');
  if (sv.endpoints.length === 0) {
    // syncProxyRules(): no nat chains, only filter rules rejecting the Service's addresses, its NodePort too
    // (KUBE-EXTERNAL-SERVICES, on any local address); a health-check node port is accepted all the same
    const reject = `-m comment --comment ${q(`${sv.name} has no endpoints`)}`;
    filter.add('KUBE-SERVICES', `${clusterIp(sv)} ${reject} ${port(sv)} -j REJECT --reject-with icmp-port-unreachable`);
    if (sv.nodePort !== undefined) {
      filter.add('KUBE-EXTERNAL-SERVICES', `-p ${sv.proto} ${reject} -m addrtype --dst-type LOCAL -m ${sv.proto} --dport ${sv.nodePort} -j REJECT --reject-with icmp-port-unreachable`);
    }
    if (sv.healthCheckNodePort !== undefined) healthCheckRule(filter, sv);
    return;
  }
  nat.made(sv.svcChain, Made.SVC, sv);
  sv.sepChains.forEach((c, e) => nat.made(c, Made.SEP, sv, e));
  if (sv.nodePort === undefined) return;
  nat.add('KUBE-NODEPORTS', `-p ${sv.proto} -m comment --comment ${q(sv.name)} -m ${sv.proto} --dport ${sv.nodePort} -j ${sv.extChain}`);
  nat.made(sv.extChain, Made.EXT, sv);
  if (sv.healthCheckNodePort === undefined) return;
  healthCheckRule(filter, sv);
  // a ladder over no endpoint is no rule, and a chain no rule names is not written
  if (LOCAL(sv).length > 0) nat.made(sv.svlChain, Made.SVL, sv);
}

/** filter-table chains of iptables and nftables modes and their base jumps (tracepacket.rules' layout). */
function filterBase(filter: TableText): void {
  filter.add('INPUT', `-m comment --comment ${q('kubernetes health check service ports')} -j KUBE-NODEPORTS`);
  filter.add('INPUT', `-m conntrack --ctstate NEW -m comment --comment ${q('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES`);
  filter.add('FORWARD', `-m comment --comment ${q('kubernetes forwarding rules')} -j KUBE-FORWARD`);
  filter.add('FORWARD', `-m conntrack --ctstate NEW -m comment --comment ${q('kubernetes service portals')} -j KUBE-SERVICES`);
  filter.add('FORWARD', `-m conntrack --ctstate NEW -m comment --comment ${q('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES`);
  filter.add('OUTPUT', `-m conntrack --ctstate NEW -m comment --comment ${q('kubernetes service portals')} -j KUBE-SERVICES`);
  filter.chain('KUBE-EXTERNAL-SERVICES');
  filter.chain('KUBE-NODEPORTS');
  filter.chain('KUBE-SERVICES');
  filter.add('KUBE-FORWARD', '-m conntrack --ctstate INVALID -j DROP');
  filter.add('KUBE-FORWARD', `-m comment --comment ${q('kubernetes forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`);
  filter.add('KUBE-FORWARD', `-m comment --comment ${q('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
}

function natBase(nat: TableText): void {
  nat.add('PREROUTING', `-m comment --comment ${q('kubernetes service portals')} -j KUBE-SERVICES`);
  nat.add('OUTPUT', `-m comment --comment ${q('kubernetes service portals')} -j KUBE-SERVICES`);
  masqueradeChains(nat);
  nat.chain('KUBE-NODEPORTS');
}

const FILTER = ['INPUT', 'FORWARD', 'OUTPUT'];
const NAT = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'];
const MANGLE = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
const NODEPORT_RULE = `-m comment --comment ${q('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`;


/** The tables' iptables-save text in pieces (ASCII). */
function* tablesText(tables: readonly TableText[]): Generator<string> {
  const out = new Pieces();
  for (const t of tables) yield* t.text(out);
  yield out.take();
}

/** The pieces joined (kubeOptionsProblem() keeps sizes under MAX_FILE_BYTES, half of a string's room: only a wrong estimate reaches the check). */
function joined(pieces: Iterable<string>): string {
  const all: string[] = [];
  let size = 0;
  for (const p of pieces) {
    size += p.length;
    if (size > constants.MAX_STRING_LENGTH) throw new RangeError(`kube-proxy text of more than ${size} characters, more than a string holds`);
    all.push(p);
  }
  return all.join('');
}

/** iptables mode's iptables-save text. */
export function iptablesRules(svcs: readonly KubeService[]): string {
  return joined(iptablesText(svcs));
}

/** iptables mode's iptables-save text, in pieces. */
function iptablesText(svcs: readonly KubeService[]): Generator<string> {
  const filter = new TableText('filter', FILTER);
  const nat = new TableText('nat', NAT);
  filterBase(filter);
  natBase(nat);
  for (const sv of svcs) {
    if (sv.endpoints.length > 0) nat.add('KUBE-SERVICES', `${clusterIp(sv)} -m comment --comment ${q(`${sv.name} cluster IP`)} ${port(sv)} -j ${sv.svcChain}`);
    serviceChains(nat, filter, sv);
  }
  nat.add('KUBE-SERVICES', NODEPORT_RULE);
  return tablesText([filter, nat]);
}

/** The name of the nftables-mode mark tree's chain for the Service numbers with `prefix` in their top `depth` bits. */
function vmapChain(depth: number, prefix: number): string {
  return `KUBE-VMAP-${depth}-${prefix.toString(16).toUpperCase()}`;
}

/**
 * nftables mode in the form nfvm runs: `ip daddr . meta l4proto . th dport
 * vmap @service-ips` as the map set KUBE-NFT-SERVICE-IPS (Service number + 1
 * in mark bits 16..) and the mark tree; the rest as in iptables mode.
 */
export function nftablesRules(svcs: readonly KubeService[]): { rules: Iterable<string>; ipsets: string } {
  const filter = new TableText('filter', FILTER);
  const mangle = new TableText('mangle', MANGLE);
  const nat = new TableText('nat', NAT);
  filterBase(filter);
  natBase(nat);
  const live = svcs.filter((s) => s.endpoints.length > 0);
  const levels = Math.max(1, Math.ceil(Math.log2(live.length + 1) / 2));
  const bits = 2 * levels;
  const set = 'KUBE-NFT-SERVICE-IPS';
  const mask = (((1 << bits) - 1) << VMAP_SHIFT) >>> 0;
  const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
  const ipsets = [`create ${set} hash:ip,port family inet hashsize 1024 maxelem ${Math.max(65536, live.length)} skbinfo`];
  live.forEach((sv, i) => ipsets.push(`add ${set} ${sv.clusterIp},${sv.proto}:${sv.port} skbmark ${hex((i + 1) << VMAP_SHIFT)}/${hex(mask)}`));
  if (live.length > 0) {
    // xt_SET's --map-set works from mangle only: mangle PREROUTING/OUTPUT (priority -150) look the map up, nat (-100) follows the mark.
    // kube-proxy's vmap sits in its nat chains, which see the first packet of a connection only (nf_nat_inet_fn binds a
    // connection once): so does this lookup, on a connection not yet confirmed (NEW alone would also take a UDP flow's
    // later packets until a reply comes), and a packet whose key is not in the map leaves SET with its mark unchanged
    // (set_target_v3), so one lookup is all it costs.
    for (const hook of ['PREROUTING', 'OUTPUT']) mangle.add(hook, `-m conntrack --ctstate NEW ! --ctstatus CONFIRMED -m comment --comment ${q('service-ips verdict map')} -j SET --map-set ${set} dst,dst --map-mark`);
    nat.add('KUBE-SERVICES', `-m mark ! --mark 0x0/${hex(mask)} -j ${vmapChain(0, 0)}`);
  }
  // The tree over v = number + 1, two bits a level (the kernel's jump-stack limit of 16 counts gotos too, so a
  // binary tree would nest too deep): the chain for prefix p (v's top 2d bits) tests the next two bits.
  const build = (depth: number, prefix: number): void => {
    const chain = vmapChain(depth, prefix);
    if (depth === levels) {
      nat.add(chain, `-g ${live[prefix - 1]!.svcChain}`);
      return;
    }
    const shift = 2 * (levels - 1 - depth);
    const digitMask = (3 << (shift + VMAP_SHIFT)) >>> 0;
    const kids = [3, 2, 1, 0].filter((d) => {
      const lo = (prefix * 4 + d) << shift;
      return lo <= live.length && lo + (1 << shift) - 1 >= 1;
    });
    kids.forEach((d, k) => {
      const child = prefix * 4 + d;
      nat.add(chain, k === kids.length - 1 ? `-g ${vmapChain(depth + 1, child)}` : `-m mark --mark ${hex((d << (shift + VMAP_SHIFT)) >>> 0)}/${hex(digitMask)} -g ${vmapChain(depth + 1, child)}`);
      build(depth + 1, child);
    });
  };
  if (live.length > 0) build(0, 0);
  for (const sv of svcs) serviceChains(nat, filter, sv);
  nat.add('KUBE-SERVICES', NODEPORT_RULE);
  return { rules: tablesText([filter, mangle, nat]), ipsets: ipsets.join('\n') + '\n' };
}

/** kube-proxy's own nftables ruleset (`nft list ruleset`), for reading beside the form nfvm runs. */
export function nftRuleset(svcs: readonly KubeService[]): string {
  const L: string[] = ['table ip kube-proxy {'];
  const nm = (sv: KubeService): string => `${kubeHash(sv.name + sv.proto).slice(0, 8)}-${sv.name.replace(':', '/').replace(/\/p(\d+)$/, `/${sv.proto}/p$1`)}`;
  const epn = (sv: KubeService, e: number): string => `endpoint-${kubeHash(sv.name + sv.proto + sv.endpoints[e]).slice(0, 8)}-${sv.name.replace(':', '/').replace(/\/p(\d+)$/, `/${sv.proto}/p$1`)}__${sv.endpoints[e]}/${sv.targetPort}`;
  L.push('\tmap service-ips {', '\t\ttype ipv4_addr . inet_proto . inet_service : verdict', '\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"');
  const live = svcs.filter((s) => s.endpoints.length > 0);
  if (live.length) L.push(`\t\telements = { ${live.map((sv) => `${sv.clusterIp} . ${sv.proto} . ${sv.port} : goto service-${nm(sv)}`).join(',\n\t\t\t     ')} }`);
  L.push('\t}');
  const nps = live.filter((s) => s.nodePort !== undefined);
  L.push('\tmap service-nodeports {', '\t\ttype inet_proto . inet_service : verdict', '\t\tcomment "NodePort traffic"');
  if (nps.length) L.push(`\t\telements = { ${nps.map((sv) => `${sv.proto} . ${sv.nodePort} : goto external-${nm(sv)}`).join(',\n\t\t\t     ')} }`);
  L.push('\t}');
  L.push('\tchain nat-prerouting {', '\t\ttype nat hook prerouting priority dstnat; policy accept;', '\t\tjump services', '\t}');
  L.push('\tchain nat-output {', '\t\ttype nat hook output priority dstnat; policy accept;', '\t\tjump services', '\t}');
  L.push('\tchain nat-postrouting {', '\t\ttype nat hook postrouting priority srcnat; policy accept;', '\t\tjump masquerading', '\t}');
  L.push('\tchain mark-for-masquerade {', '\t\tmeta mark set meta mark | 0x00004000', '\t}');
  L.push('\tchain masquerading {', '\t\tmeta mark & 0x00004000 == 0x00000000 return', '\t\tmeta mark set meta mark ^ 0x00004000', '\t\tmasquerade fully-random', '\t}');
  L.push('\tchain services {', '\t\tip daddr . meta l4proto . th dport vmap @service-ips', '\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports', '\t}');
  for (const sv of live) {
    L.push(`\tchain service-${nm(sv)} {`, `\t\tip daddr ${sv.clusterIp} ${sv.proto} dport ${sv.port} ip saddr != ${CLUSTER_CIDR} jump mark-for-masquerade`);
    L.push(`\t\tnumgen random mod ${sv.endpoints.length} vmap { ${sv.endpoints.map((_, e) => `${e} : goto ${epn(sv, e)}`).join(' , ')} }`, '\t}');
    if (sv.nodePort !== undefined) L.push(`\tchain external-${nm(sv)} {`, '\t\tjump mark-for-masquerade', `\t\tgoto service-${nm(sv)}`, '\t}');
    sv.endpoints.forEach((ep, e) => {
      L.push(`\tchain ${epn(sv, e)} {`, `\t\tip saddr ${ep} jump mark-for-masquerade`, `\t\tmeta l4proto ${sv.proto} dnat to ${ep}:${sv.targetPort}`, '\t}');
    });
  }
  L.push('}');
  return L.join('\n') + '\n';
}

/** IPVS mode: the iptables rules, ipsets and `ipvsadm-save -n` text. */
export function ipvsFiles(svcs: readonly KubeService[]): { rules: Iterable<string>; ipsets: string; ipvsadm: string } {
  const filter = new TableText('filter', FILTER);
  const nat = new TableText('nat', NAT);
  natBase(nat);
  const set = (name: string, dst: string): string => `-m set --match-set ${name} ${dst}`;
  nat.add('KUBE-SERVICES', `! -s ${CLUSTER_CIDR} -m comment --comment ${q('Kubernetes service cluster ip + port for masquerade purpose')} ${set('KUBE-CLUSTER-IP', 'dst,dst')} -j KUBE-MARK-MASQ`);
  nat.add('KUBE-SERVICES', '-m addrtype --dst-type LOCAL -j KUBE-NODE-PORT');
  nat.add('KUBE-SERVICES', `${set('KUBE-CLUSTER-IP', 'dst,dst')} -j ACCEPT`);
  nat.add('KUBE-POSTROUTING', `-m comment --comment ${q('Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose')} ${set('KUBE-LOOP-BACK', 'dst,dst,src')} -j MASQUERADE`);
  // KUBE-POSTROUTING's loop-back rule comes first in IPVS mode
  const post = nat.chain('KUBE-POSTROUTING');
  post.unshift(post.pop()!);
  // KUBE-NODE-PORT's rules come once the sets are filled: kube-proxy writes one only for a set with members
  nat.chain('KUBE-NODE-PORT');
  filter.add('INPUT', `-m comment --comment ${q('kubernetes ipvs access filter')} -j KUBE-IPVS-FILTER`);
  filter.add('INPUT', `-m comment --comment ${q('kubernetes health check service ports')} -j KUBE-NODE-PORT`);
  filter.add('FORWARD', `-m comment --comment ${q('kubernetes forwarding rules')} -j KUBE-FORWARD`);
  filter.add('OUTPUT', `-m comment --comment ${q('kubernetes ipvs access filter')} -j KUBE-IPVS-OUT-FILTER`);
  filter.add('KUBE-FORWARD', `-m comment --comment ${q('kubernetes forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`);
  filter.add('KUBE-FORWARD', `-m comment --comment ${q('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  filter.add('KUBE-IPVS-FILTER', `${set('KUBE-CLUSTER-IP', 'dst,dst')} -j RETURN`);
  filter.add('KUBE-IPVS-FILTER', `${set('KUBE-HEALTH-CHECK-NODE-PORT', 'dst')} -j RETURN`);
  filter.add('KUBE-IPVS-FILTER', `-m conntrack --ctstate NEW ${set('KUBE-IPVS-IPS', 'dst')} -j REJECT --reject-with icmp-port-unreachable`);
  filter.add('KUBE-NODE-PORT', `-m comment --comment ${q('Kubernetes health check node port')} ${set('KUBE-HEALTH-CHECK-NODE-PORT', 'dst')} -j ACCEPT`);
  filter.chain('KUBE-IPVS-OUT-FILTER');
  const live = svcs.filter((s) => s.endpoints.length > 0);
  const nEp = live.reduce((n, s) => n + s.endpoints.length, 0);
  const max = (n: number): number => Math.max(65536, n);
  const ips: string[] = [];
  const sets: [string, string, string[]][] = [
    ['KUBE-CLUSTER-IP', `hash:ip,port family inet hashsize 1024 maxelem ${max(svcs.length)}`, []],
    ['KUBE-LOOP-BACK', `hash:ip,port,ip family inet hashsize 1024 maxelem ${max(nEp)}`, []],
    ['KUBE-NODE-PORT-TCP', 'bitmap:port range 0-65535', []],
    ['KUBE-NODE-PORT-LOCAL-TCP', 'bitmap:port range 0-65535', []],
    ['KUBE-NODE-PORT-UDP', 'bitmap:port range 0-65535', []],
    ['KUBE-NODE-PORT-LOCAL-UDP', 'bitmap:port range 0-65535', []],
    ['KUBE-HEALTH-CHECK-NODE-PORT', 'bitmap:port range 0-65535', []],
    ['KUBE-IPVS-IPS', `hash:ip family inet hashsize 1024 maxelem ${max(svcs.length)}`, ips],
  ];
  const el = (name: string): string[] => sets.find((s) => s[0] === name)![2];
  const vs: string[] = [];
  const flag = (p: string): string => (p === 'tcp' ? '-t' : '-u');
  for (const sv of svcs) {
    el('KUBE-CLUSTER-IP').push(`${sv.clusterIp},${sv.proto}:${sv.port}`);
    ips.push(sv.clusterIp);
    vs.push(`-A ${flag(sv.proto)} ${sv.clusterIp}:${sv.port} -s rr`);
    for (const ep of sv.endpoints) {
      el('KUBE-LOOP-BACK').push(`${ep},${sv.proto}:${sv.targetPort},${ep}`);
      vs.push(`-a ${flag(sv.proto)} ${sv.clusterIp}:${sv.port} -r ${ep}:${sv.targetPort} -m -w 1`);
    }
    if (sv.nodePort !== undefined) {
      el(`KUBE-NODE-PORT-${sv.proto.toUpperCase()}`).push(String(sv.nodePort));
      // externalTrafficPolicy Local: the NodePort also in KUBE-NODE-PORT-LOCAL-*, whose rule returns before the masquerade mark
      if (sv.healthCheckNodePort !== undefined) el(`KUBE-NODE-PORT-LOCAL-${sv.proto.toUpperCase()}`).push(String(sv.nodePort));
      vs.push(`-A ${flag(sv.proto)} ${NODE_IP}:${sv.nodePort} -s rr`);
      sv.endpoints.forEach((ep, e) => {
        if (sv.healthCheckNodePort === undefined || sv.local[e]) vs.push(`-a ${flag(sv.proto)} ${NODE_IP}:${sv.nodePort} -r ${ep}:${sv.targetPort} -m -w 1`);
      });
    }
    if (sv.healthCheckNodePort !== undefined) el('KUBE-HEALTH-CHECK-NODE-PORT').push(String(sv.healthCheckNodePort));
  }
  // writeIptablesRules()'s ipsetWithIptablesChain entries for KUBE-NODE-PORT, in its order (a Local set before its
  // protocol's), each written only when its set has members
  for (const p of ['TCP', 'UDP'] as const) {
    const proto = `-p ${p.toLowerCase()} -m comment --comment`;
    if (el(`KUBE-NODE-PORT-LOCAL-${p}`).length) {
      nat.add('KUBE-NODE-PORT', `${proto} ${q(`Kubernetes nodeport ${p} port with externalTrafficPolicy=local`)} ${set(`KUBE-NODE-PORT-LOCAL-${p}`, 'dst')} -j RETURN`);
    }
    if (el(`KUBE-NODE-PORT-${p}`).length) {
      nat.add('KUBE-NODE-PORT', `${proto} ${q(`Kubernetes nodeport ${p} port for masquerade purpose`)} ${set(`KUBE-NODE-PORT-${p}`, 'dst')} -j KUBE-MARK-MASQ`);
    }
  }
  const ipsetText: string[] = [];
  for (const [name, spec, els] of sets) {
    ipsetText.push(`create ${name} ${spec}`);
    for (const e of els) ipsetText.push(`add ${name} ${e}`);
  }
    // ipvsadm-save prints the services and their real servers in its own order: the text goes through nfvm's reader and printer of it
  const ipvsadm = formatIpvsadmSave(parseIpvsadmSave(vs.join('\n') + '\n', 'ipvsadm-save.txt'));
  return { rules: tablesText([filter, nat]), ipsets: ipsetText.join('\n') + '\n', ipvsadm };
}

/** The snapshot's device, address and route files: lo, eth0 (the node IP), cni0 (the pod network), kube-ipvs0 in IPVS mode. */
function nodeFiles(svcs: readonly KubeService[], mode: KubeMode): { link: string; addr: string; route: string } {
  const links: { ifname: string; flags: string[]; mtu: number; operstate: string; link_type: string; address: string; addr: object[]; kind?: string }[] = [
    { ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', address: '00:00:00:00:00:00', addr: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' }] },
    { ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', link_type: 'ether', address: '52:54:00:00:00:02', addr: [{ family: 'inet', local: NODE_IP, prefixlen: 24, broadcast: '192.168.0.255', scope: 'global', label: 'eth0' }] },
    { ifname: 'cni0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, operstate: 'UP', link_type: 'ether', address: '0a:58:0a:80:00:01', addr: [{ family: 'inet', local: '10.128.0.1', prefixlen: 9, broadcast: '10.255.255.255', scope: 'global', label: 'cni0' }] },
  ];
  if (mode === 'ipvs') {
    links.push({
      ifname: 'kube-ipvs0', flags: ['BROADCAST', 'NOARP'], mtu: 1500, operstate: 'DOWN', link_type: 'ether', address: '6e:2a:10:00:00:01', kind: 'dummy',
      addr: svcs.map((s) => ({ family: 'inet', local: s.clusterIp, prefixlen: 32, scope: 'global', label: 'kube-ipvs0' })),
    });
  }
  const link = links.map((l, i) => JSON.stringify({ ifindex: i + 1, ifname: l.ifname, flags: l.flags, mtu: l.mtu, operstate: l.operstate, link_type: l.link_type, address: l.address, ...(l.kind ? { linkinfo: { info_kind: l.kind } } : {}) }));
  const addr = links.map((l, i) => JSON.stringify({ ifindex: i + 1, ifname: l.ifname, flags: l.flags, mtu: l.mtu, operstate: l.operstate, link_type: l.link_type, address: l.address, addr_info: l.addr }));
  return { link: `[${link.join(',\n')}]\n`, addr: `[${addr.join(',\n')}]\n`, route: routeFile(links) };
}

/** The node network's gateway: the default route every node has (the node's own traffic to a ClusterIP needs a route before OUTPUT's DNAT). */
const GATEWAY = '192.168.0.1';

/**
 * `ip -j route show table all` of the node: the default route via GATEWAY
 * and the routes the kernel makes for the addresses (hooks/route/derive.ts),
 * each table in key order, main before local, as iproute2 lists them.
 */
function routeFile(links: readonly { ifname: string; flags: string[]; link_type: string; addr: object[] }[]): string {
  const derive = new Map(links.map((l) => [l.ifname, { name: l.ifname, up: l.flags.includes('UP'), loopback: l.link_type === 'loopback' }]));
  const addrs: DeriveAddr[] = [];
  for (const l of links) {
    for (const a of l.addr as { local: string; prefixlen: number; broadcast?: string }[]) {
      addrs.push({ dev: l.ifname, local: parseAddr(a.local)!, prefixlen: a.prefixlen, broadcast: a.broadcast === undefined ? undefined : parseAddr(a.broadcast), secondary: false, noprefixroute: false, tentative: false, metric: 0 });
    }
  }
  const key = (r: Route): number => r.dst.w[0]! * 64 + r.plen;
  const routes = deriveRoutes4(derive, addrs).sort((x, y) => (x.table === y.table ? key(x) - key(y) : x.table === RT_TABLE_LOCAL ? 1 : -1));
  const scope = (r: Route): string | undefined => (r.scope === RT_SCOPE_HOST ? 'host' : r.scope === RT_SCOPE_LINK ? 'link' : undefined);
  const lines = [JSON.stringify({ dst: 'default', gateway: GATEWAY, dev: 'eth0', flags: [] })];
  for (const r of routes) {
    lines.push(JSON.stringify({
      type: r.type === RTN_UNICAST ? undefined : RTN_NAMES[r.type], dst: formatPrefix(r.dst, r.plen), dev: r.nexthops[0]!.dev,
      table: r.table === RT_TABLE_LOCAL ? 'local' : undefined, protocol: r.protocol, scope: scope(r),
      prefsrc: r.prefsrc === undefined ? undefined : formatAddr(r.prefsrc), flags: [],
    }));
  }
  return `[${lines.join(',\n')}]\n`;
}

/** The snapshot directory's files (name -> text) of a generated kube-proxy node. */
export function kubeProxySnapshot(o: KubeGenOptions): Map<string, string> {
  return new Map([...kubeProxyFiles(o)].map(([name, t]) => [name, typeof t === 'string' ? t : joined(t)]));
}

/**
 * The same files, the iptables-save text in pieces (made as they are read,
 * once): `nfvm gen` writes them as they come (a 30,000-Service text is
 * 140 MB, never held whole).
 */
export function kubeProxyFiles(o: KubeGenOptions): Map<string, string | Iterable<string>> {
  const svcs = kubeServices(o);
  const files = new Map<string, string | Iterable<string>>();
  const { link, addr, route } = nodeFiles(svcs, o.mode);
  files.set('ip-link.json', link);
  files.set('ip-addr.json', addr);
  files.set('ip-route.json', route);
  // kube-proxy's IPVS proxier (pkg/proxy/ipvs/proxier.go) sets vs/conntrack, vs/expire_nodest_conn and
  // vs/expire_quiescent_template to 1 (vs/conn_reuse_mode only on kernels before 5.9).
  const vs = o.mode === 'ipvs' ? 'net.ipv4.vs.conntrack = 1\nnet.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.expire_quiescent_template = 1\n' : '';
  files.set('sysctl.txt', 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.route_localnet = 1\n' + vs);
  if (o.mode === 'iptables') files.set('iptables-save.txt', iptablesText(svcs));
  else if (o.mode === 'nftables') {
    const n = nftablesRules(svcs);
    files.set('iptables-save.txt', n.rules);
    files.set('ipset-save.txt', n.ipsets);
    files.set('nft-ruleset.txt', nftRuleset(svcs));
  } else {
    const v = ipvsFiles(svcs);
    files.set('iptables-save.txt', v.rules);
    files.set('ipset-save.txt', v.ipsets);
    files.set('ipvsadm-save.txt', v.ipvsadm);
  }
  return files;
}
