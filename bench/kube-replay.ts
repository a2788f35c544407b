/**
 * kube-proxy's IPVS and nftables modes timed from outside, as a user runs
 * them: `nfvm gen kube-proxy --mode M` writes the node, `nfvm replay` feeds
 * it a capture of N and one of 2N frames on cni0 (pods to Service cluster
 * IPs), and the child's CPU time (user + system, /usr/bin/time: the machine
 * is shared) of each is taken; the cost per frame is (t(2N) - t(N)) / N, so
 * start-up, gen's snapshot loading and compiling cancel. Repeated
 * (NFVM_BENCH_REPEAT, default 3) and reported as ranges.
 *
 *   established  FLOWS UDP flows to random Services, their first datagrams
 *                scheduled (IPVS) or NATed (nftables) once, then the same
 *                flows over and over: every later frame is an established
 *                packet of its connection
 *   first        TCP SYNs of new connections to random Services (each frame
 *                its own client address and port)
 *
 *   node dist/bench.mjs kube-replay [--services 1000,30000] [--modes ipvs,nftables] [--frames N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, writePcap } from '../hooks/input/capture.js';
import { kubeServices, type KubeMode } from '../gen/kube-proxy.js';
import { headerFrame } from './classbench.js';
import { range, timed } from './proc.js';
import { tcpChecksum } from './kube.js';

const CLI = join(process.cwd(), 'dist', 'cli.mjs');
const REPEAT = Number(process.env.NFVM_BENCH_REPEAT ?? 3);
const FLOWS = 256;

export interface KubeReplayRow {
  mode: KubeMode;
  services: number;
  packet: 'established' | 'first';
  frames: number;
  /** ns per frame of each repetition. */
  ns: number[];
  'ns/frame': string;
  Mpps: string;
}

const ip = (s: string): number => s.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);

/** The frames of one capture: `n` established or first packets. */
function frames(mode: KubeMode, services: number, kind: 'established' | 'first', n: number): Uint8Array[] {
  const svcs = kubeServices({ services, endpoints: 2, mode });
  let x = 99991;
  const rnd = (): number => (x = (x * 1103515245 + 12345) >>> 0);
  const out: Uint8Array[] = [];
  if (kind === 'established') {
    const udp = svcs.filter((s) => s.proto === 'udp');
    const flows = Array.from({ length: FLOWS }, (_, i) => {
      const sv = udp[rnd() % udp.length]!;
      return headerFrame({ src: (ip('10.210.0.0') + i) >>> 0, dst: ip(sv.clusterIp), sport: 2000 + i, dport: sv.port, proto: 17, filter: 0 });
    });
    for (let i = 0; i < n; i++) out.push(flows[i % FLOWS]!);
    return out;
  }
  const tcp = svcs.filter((s) => s.proto === 'tcp');
  for (let c = 0; c < n; c++) {
    const sv = tcp[rnd() % tcp.length]!;
    const d = headerFrame({ src: (ip('10.200.0.0') + (c >>> 14)) >>> 0, dst: ip(sv.clusterIp), sport: 1024 + (c & 16383), dport: sv.port, proto: 6, filter: 0 });
    d[33] = 0x02; // SYN
    tcpChecksum(d);
    out.push(d);
  }
  return out;
}

function pcap(list: readonly Uint8Array[]): Uint8Array {
  // 10 µs apart on the capture's clock: no connection times out within a run
  return writePcap(list.map((data, i) => ({ data, tsSec: Math.floor(i / 100_000), tsNsec: (i % 100_000) * 10_000 })), { linktype: LINKTYPE_RAW });
}

export function benchKubeReplay(sizes: readonly number[], modes: readonly KubeMode[], n: number): KubeReplayRow[] {
  const rows: KubeReplayRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'nfvm-kube-replay-'));
  try {
    for (const mode of modes) {
      for (const services of sizes) {
        const snap = join(dir, `${mode}-${services}`);
        timed(process.execPath, [CLI, 'gen', 'kube-proxy', '--services', String(services), '--endpoints', '2', '--mode', mode, snap]);
        for (const kind of ['established', 'first'] as const) {
          const files = [n, 2 * n].map((k) => {
            const f = join(dir, `${mode}-${services}-${kind}-${k}.pcap`);
            writeFileSync(f, pcap(frames(mode, services, kind, k)));
            return f;
          });
          const ns: number[] = [];
          for (let r = 0; r < REPEAT; r++) {
            const [t1, t2] = files.map((f) => timed(process.execPath, [CLI, 'replay', snap, '--pcap', f, '--iface', 'cni0', '--workers', '1', '--json']).cpu) as [number, number];
            ns.push(((t2 - t1) * 1e9) / n);
          }
          rows.push({ mode, services, packet: kind, frames: n, ns: ns.map((v) => Math.round(v)), 'ns/frame': range(ns, 0), Mpps: range(ns.map((v) => 1e3 / v), 2) });
          console.log(`. ${mode} ${services} ${kind}: ${range(ns, 0)} ns/frame`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function kubeReplayMain(argv: readonly string[]): number {
  let sizes = [1000, 30_000];
  let modes: KubeMode[] = ['ipvs', 'nftables'];
  let n = 100_000;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i] ?? '';
    if (a === '--services') sizes = v.split(',').map(Number);
    else if (a === '--modes') modes = v.split(',') as KubeMode[];
    else if (a === '--frames') n = Number(v);
    else {
      process.stderr.write(`kube-replay: unknown option ${a}\n`);
      return 2;
    }
  }
  console.table(benchKubeReplay(sizes, modes, n).map(({ ns: _ns, ...r }) => r));
  return 0;
}
