/**
 * kube-proxy's modes through the full node path (`nfvm bench`, `npm run bench kube`):
 *
 *   packet   for N Services of M endpoints (gen/kube-proxy.ts) in iptables
 *            mode unoptimized (--optimize=0), iptables mode optimized
 *            (classifier prefilters), IPVS mode (ip_vs_in_hook schedules the
 *            SYN and masquerades it out) and nftables mode (its verdict
 *            maps as nfvm runs them): the cost of the first packet of a
 *            connection (a TCP SYN from a pod to a random Service's cluster
 *            IP and port, a new connection every time: conntrack, nat
 *            PREROUTING, DNAT, FORWARD, POSTROUTING) and of an established
 *            packet (a UDP datagram of a connection whose reply was seen),
 *            in batches of BATCH packets timed by tinybench: ns/packet is the
 *            batch's mean over BATCH, p50/p99 are those of the batches.
 *   update   the full compile of a node (rules parsed, checked, compiled,
 *            node assembled) and a one-Service change: kube-proxy's partial
 *            sync after one endpoint's DNAT target moved (partialSync),
 *            applied onto the node's tables with --noflush semantics, then
 *            the nat table compiled again (nfvm compiles a table whole, as
 *            the kernel replaces it whole), and the bytecode plus constant
 *            pool size.
 *   classbench  ClassBench ACL/FW/IPC at 1k and 10k rules (bench/engines.ts).
 *
 * "kernel rules walked" is what x_tables walks for the packet (the model
 * in kernel-model.ts reads it): in iptables mode the average position of a
 * Service's rule in KUBE-SERVICES plus the fixed chains; in IPVS and
 * nftables mode a constant.
 */
import { Bench } from 'tinybench';
import { kubeProxySnapshot, kubeServices, type KubeMode, type KubeService } from '../gen/kube-proxy.js';
import { buildNode } from '../hooks/snapshot/read.js';
import { buildNodeModel, type NodeModel } from '../hooks/node.js';
import { loadFrame, LINKTYPE_RAW, type Frame } from '../hooks/input/capture.js';
import { Packet, resetMeta } from '../vm/packet.js';
import { vmTable } from '../engine/vm-table.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { headerFrame } from './classbench.js';

export const BATCH = 256;

export type BenchMode = 'iptables' | 'iptables-opt' | 'ipvs' | 'nftables';
export const BENCH_MODES: readonly BenchMode[] = ['iptables', 'iptables-opt', 'ipvs', 'nftables'];

export interface PacketRow {
  mode: BenchMode;
  services: number;
  endpoints: number;
  packet: 'first' | 'established';
  'ns/packet': number;
  Mpps: number;
  'p50 ns': number;
  'p99 ns': number;
  'kernel rules walked': number;
  /** Why the row has no figures. */
  skipped?: string;
}

export interface UpdateRow {
  services: number;
  endpoints: number;
  'gen ms': number;
  'compile ms': number;
  'one-Service change ms': number;
  'bytecode+pool MB': number;
}

function ip(s: string): number {
  const [a, b, c, d] = s.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function frame(data: Uint8Array): Frame {
  return { data, origLen: data.length, tsSec: 0, tsNsec: 0, linktype: LINKTYPE_RAW, ifId: 0, ifName: '', section: 0, offset: 0, flags: 0, comment: '' } as Frame;
}

/** Fills the TCP checksum of an IPv4 packet with a 20-byte header (conntrack checks it on PREROUTING). */
export function tcpChecksum(d: Uint8Array): void {
  d[36] = d[37] = 0;
  let sum = 6 + (d.length - 20);
  for (let i = 12; i < 20; i += 2) sum += (d[i]! << 8) | d[i + 1]!;
  for (let i = 20; i < d.length; i += 2) sum += (d[i]! << 8) | (d[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  d[36] = c >> 8;
  d[37] = c & 255;
}

/** x_tables rules a first packet to Service number i walks in iptables mode (kernel-model.ts). */
export function iptablesRulesWalked(i: number, endpoints: number): number {
  // nat PREROUTING 1, KUBE-SERVICES i + 1, KUBE-SVC masq test + the ladder to the middle endpoint, KUBE-SEP 2;
  // filter FORWARD 2 (KUBE-FORWARD 2), KUBE-SERVICES (empty), KUBE-EXTERNAL-SERVICES (empty); nat POSTROUTING 1 + KUBE-POSTROUTING 1
  return 1 + (i + 1) + 1 + (endpoints + 1) / 2 + 2 + 4 + 2;
}

const RULES_WALKED_FLAT: Record<'ipvs' | 'nftables', number> = {
  // nat PREROUTING 1, KUBE-SERVICES 3 (set tests), FORWARD/INPUT ~4, POSTROUTING 2 (+ one hash lookup per set test)
  ipvs: 10,
  // mangle 1 (the map lookup), nat PREROUTING 1, KUBE-SERVICES 1, the mark tree (about 1.5 per level, not x_tables' cost: a vmap is one lookup), KUBE-SVC, KUBE-SEP, FORWARD, POSTROUTING
  nftables: 12,
};

export function snapshotModel(mode: BenchMode, services: number, endpoints: number): { model: NodeModel; svcs: KubeService[]; genMs: number; compileMs: number } {
  const kmode: KubeMode = mode === 'iptables-opt' ? 'iptables' : mode;
  const o = { services, endpoints, mode: kmode };
  const t0 = performance.now();
  const files = kubeProxySnapshot(o);
  const t1 = performance.now();
  const model = buildNodeModel(buildNode('<gen>', files), { optimize: mode === 'iptables' ? 0 : 1 });
  const t2 = performance.now();
  return { model, svcs: kubeServices(o), genMs: t1 - t0, compileMs: t2 - t1 };
}

/** The two packet tasks of one mode and size. */
export async function benchPackets(mode: BenchMode, services: number, endpoints: number, time: number): Promise<PacketRow[]> {
  const base = { mode, services, endpoints };
  const { model, svcs } = snapshotModel(mode, services, endpoints);
  // each result is read before the next packet goes in, as `nfvm replay` reads them (cli/replay-run.ts):
  // the node reuses one context and one result, and the figures are those of the path replay runs
  model.reuseResults = true;
  const pkt = new Packet();
  const input = { now: 1e9 };
  let x = 99991;
  const rnd = (): number => (x = (x * 1103515245 + 12345) >>> 0);
  let client = 0;
  // first packets: a TCP SYN of a new connection each (the client address and port never repeat)
  const tcp = svcs.filter((s) => s.proto === 'tcp');
  const batch: Frame[] = [];
  const fill = (): void => {
    batch.length = 0;
    for (let i = 0; i < BATCH; i++) {
      const sv = tcp[rnd() % tcp.length]!;
      const c = client++;
      const d = headerFrame({ src: (ip('10.200.0.0') + (c >>> 14)) >>> 0, dst: ip(sv.clusterIp), sport: 1024 + (c & 16383), dport: sv.port, proto: 6, filter: 0 });
      d[33] = 0x02; // SYN
      d[34] = 0xfa; // window 64240
      d[35] = 0xf0;
      tcpChecksum(d);
      batch.push(frame(d));
    }
  };
  // a full conntrack table whose early drop finds nothing to evict near the new connection's bucket
  // drops its first packet, as the kernel does ("nf_conntrack: table full, dropping packet"): counted, not an error
  let tableFull = 0;
  const run = (fs: readonly Frame[]): void => {
    for (let i = 0; i < fs.length; i++) {
      resetMeta(pkt);
      loadFrame(pkt, fs[i]!);
      input.now += 1000;
      const f = model.receive(pkt, 'cni0', input).fate;
      if (f.kind === 'forwarded') continue;
      if (f.kind === 'dropped' && f.reason === 'conntrack' && /table is full/.test(f.detail)) tableFull++;
      else throw new Error(`bench kube: a Service packet was ${f.kind}${f.kind === 'dropped' ? ` (${f.reason}: ${f.detail})` : ''}`);
    }
  };
  // established: UDP connections whose reply went through (the endpoint answers from its target port)
  const udp = svcs.filter((s) => s.proto === 'udp' && s.endpoints.length > 0);
  const est: Frame[] = [];
  const pool = udp.length > 0 ? udp : [];
  for (let i = 0; i < BATCH && pool.length > 0; i++) {
    const sv = pool[rnd() % pool.length]!;
    const cli = (ip('10.210.0.0') + i) >>> 0;
    const fwd = frame(headerFrame({ src: cli, dst: ip(sv.clusterIp), sport: 2000 + i, dport: sv.port, proto: 17, filter: 0 }));
    resetMeta(pkt);
    loadFrame(pkt, fwd);
    const r = model.receive(pkt, 'cni0', input);
    if (r.fate.kind !== 'forwarded' || !sv.endpoints.includes(r.fate.dst)) throw new Error(`bench kube: ${sv.name} did not reach an endpoint`);
    run([frame(headerFrame({ src: ip(r.fate.dst), dst: cli, sport: sv.targetPort, dport: 2000 + i, proto: 17, filter: 0 }))]);
    est.push(fwd);
  }
  // the first thousands of packets run before the JIT has compiled the path: warm up as long as is measured
  const bench = new Bench({ time, warmupTime: Math.max(150, time), warmupIterations: 4 });
  bench.add('first', () => run(batch), { beforeEach: fill });
  if (est.length) bench.add('established', () => run(est));
  fill();
  await bench.run();
  if (tableFull) console.error(`bench kube: ${mode} ${services}: ${tableFull} first packets dropped by a full conntrack table (nf_conntrack_max ${model.conntrackModule?.ct.sysctl.max}), as the kernel drops them`);
  const walked = mode === 'nftables' || mode === 'ipvs' ? RULES_WALKED_FLAT[mode] : iptablesRulesWalked((services - 1) / 2, endpoints);
  return bench.tasks.map((t) => {
    const r = t.result;
    const ok = r && r.state === 'completed';
    if (r && r.state === 'errored') throw r.error;
    const per = (ms: number | undefined): number => (ms === undefined ? NaN : +((ms * 1e6) / BATCH).toFixed(0));
    const ns = ok ? per(r.latency.mean) : NaN;
    return {
      ...base, packet: t.name as 'first' | 'established', 'ns/packet': ns, Mpps: +(1e3 / ns).toFixed(3),
      'p50 ns': ok ? per(r.latency.p50) : NaN, 'p99 ns': ok ? per(r.latency.p99) : NaN,
      'kernel rules walked': t.name === 'first' ? +walked.toFixed(1) : 0,
    };
  });
}

/** The chains kube-proxy's partial sync always rewrites (pkg/proxy/iptables/proxier.go: filterChains, natChains). */
const SYNCED_CHAINS: Readonly<Record<'filter' | 'nat', readonly string[]>> = {
  filter: ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'],
  nat: ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'],
};

/**
 * kube-proxy's partial sync (iptables-restore --noflush input) after Service
 * `sv`'s first endpoint moved: per table the chains it always rewrites
 * (a chain line flushes each, then its rules from `text`), in nat also
 * `sv`'s KUBE-SVC and KUBE-SEP chains, the first endpoint's DNAT target moved.
 */
export function partialSync(text: string, sv: KubeService): string {
  const out: string[] = [];
  for (const table of ['filter', 'nat'] as const) {
    const body = text.slice(text.indexOf(`*${table}\n`), text.indexOf('\nCOMMIT', text.indexOf(`*${table}\n`)));
    const chains = new Set([...SYNCED_CHAINS[table], ...(table === 'nat' ? [sv.svcChain, sv.sepChains[0]!] : [])]);
    const present = [...chains].filter((c) => body.includes(`\n:${c} `));
    out.push(`*${table}`, ...present.map((c) => `:${c} - [0:0]`));
    for (const line of body.split('\n')) {
      const chain = line.startsWith('-A ') ? line.slice(3, line.indexOf(' ', 3)) : '';
      if (chains.has(chain)) out.push(line);
    }
    out.push('COMMIT');
  }
  return `${out.join('\n').replace(`--to-destination ${sv.endpoints[0]}:`, `--to-destination ${sv.endpoints[0]!.replace(/\d+$/, (d) => String(Number(d) ^ 1))}:`)}\n`;
}

/** Full compile and a one-Service change, for iptables mode optimized. */
export function benchUpdate(services: number, endpoints: number): UpdateRow {
  const { model, svcs, genMs, compileMs } = snapshotModel('iptables-opt', services, endpoints);
  const rs = model.rs4!;
  const nat = vmTable(rs, 'nat', { seed: 1, optimize: 1 });
  const prog = nat.compiled.program;
  const filter = vmTable(rs, 'filter', { seed: 1, optimize: 1 }).compiled.program;
  const bytes = (prog.code.length + prog.pool.length + filter.code.length + filter.pool.length) * 4;
  // one Service changed (its first endpoint's DNAT target moves), applied as kube-proxy's partial sync applies it:
  // iptables-restore --noflush of the chains it always rewrites (filter's, nat KUBE-SERVICES with every Service,
  // KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ) and the changed Service's chains, onto the node's tables;
  // then the nat table compiled again (nfvm compiles a table whole, as the kernel replaces it whole)
  const sv = svcs[svcs.length >> 1]!;
  const text = kubeProxySnapshot({ services, endpoints, mode: 'iptables' }).get('iptables-save.txt')!;
  const delta = partialSync(text, sv);
  const t0 = performance.now();
  vmTable(parseRestore(delta, { file: 'sync', base: rs, noflush: true }), 'nat', { seed: 1, optimize: 1 });
  const changeMs = performance.now() - t0;
  return { services, endpoints, 'gen ms': +genMs.toFixed(0), 'compile ms': +compileMs.toFixed(0), 'one-Service change ms': +changeMs.toFixed(1), 'bytecode+pool MB': +(bytes / 1e6).toFixed(2) };
}
