/**
 * `nfvm replay` timed from outside, as a user runs it: for each ruleset
 * (compiled from iptables-save text in a node snapshot) a capture of N and
 * one of 2N frames is written, the bundled command (dist/cli.mjs) replays
 * each with --engine reference, --engine vm --optimize=0 and --engine vm
 * --optimize=1, and the time of the child process is taken: its CPU time
 * (user + system, from /proc/self/stat's cutime and cstime: Linux) by
 * default, which other processes on a loaded machine disturb far less than
 * the wall time; NFVM_BENCH_CLOCK=wall takes the wall time (also where
 * /proc is absent). The cost per frame is (t(2N) - t(N)) / N, so start-up,
 * snapshot loading and compiling cancel. Each measurement is repeated (NFVM_BENCH_REPEAT, default
 * 3) and reported as a range; the speed-ups are ranges of the per-repetition
 * ratios: the unoptimized VM against the reference, and the optimized VM
 * against the unoptimized one.
 *
 * Rulesets: ClassBench acl1/fw1/ipc1 at 1k rules with their traces and at
 * 10k rules with headers synthesised from the filters (the corpus: NFVM_CORPUS
 * or ../shared/corpus; skipped with a line when absent), in filter FORWARD,
 * frames arriving on eth0 and routed out of eth1; kube-proxy rulesets of
 * 1,000 and 10,000 Services (bench/gen-kube.ts), SYNs to Service cluster IPs.
 *
 *   npm run bench -- replay          (NFVM_BENCH_SETS=acl1_1k,kube-1000 picks sets)
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, writePcap } from '../hooks/input/capture.js';
import { CLASSBENCH_SETS, filtersToRestore, headerFrame, parseFilters, parseTrace, synthHeaders, type CbHeader } from './classbench.js';
import { clusterIpHeaders, kubeProxyRuleset } from './gen-kube.js';

const CORPUS = process.env.NFVM_CORPUS || join(process.cwd(), '..', 'shared', 'corpus');
const CLI = join(process.cwd(), 'dist', 'cli.mjs');
const NODE = join(process.cwd(), 'test', 'path', 'fixtures', 'node');
const REPEAT = Number(process.env.NFVM_BENCH_REPEAT ?? 3);
const MODES: [string, string[]][] = [
  ['reference', ['--engine', 'reference']],
  ['vm -O0', ['--engine', 'vm', '--optimize=0']],
  ['vm -O1', ['--engine', 'vm', '--optimize=1']],
];

interface ReplaySet {
  name: string;
  rules: string;
  headers: CbHeader[];
  /** Frames in the smaller capture (the larger has twice as many). */
  n: number;
}

function sets(): ReplaySet[] {
  const out: ReplaySet[] = [];
  if (!existsSync(CORPUS)) console.warn(`[skip] ClassBench replay sets: no corpus at ${CORPUS} (set NFVM_CORPUS)`);
  else {
    for (const { name, rules, trace } of CLASSBENCH_SETS) {
      const filters = parseFilters(readFileSync(join(CORPUS, rules), 'utf8'));
      const headers = trace ? parseTrace(readFileSync(join(CORPUS, trace), 'utf8')) : synthHeaders(filters, 5000, 7);
      // frames per capture: the 10k sets cost the x_tables evaluator about ten times more per frame
      out.push({ name, rules: filtersToRestore(filters), headers, n: trace ? 400_000 : 40_000 });
    }
  }
  for (const [services, n] of [[1000, 400_000], [10_000, 40_000]] as const) {
    out.push({ name: `kube-${services}`, rules: kubeProxyRuleset({ services, endpointsPerService: 2 }), headers: clusterIpHeaders(services, 5000), n });
  }
  const only = process.env.NFVM_BENCH_SETS?.split(',');
  return only ? out.filter((s) => only.includes(s.name)) : out;
}

/** USER_HZ: the unit of /proc's clock-tick fields (100 on every Linux architecture). */
const USER_HZ = 100;

/** CPU seconds (user + system) of this process's waited-for children, or undefined without /proc. */
function childrenCpu(): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  // fields after "pid (comm) ": state is field 3, cutime 16, cstime 17
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[16 - 3]) + Number(f[17 - 3])) / USER_HZ;
}

const CLOCK = process.env.NFVM_BENCH_CLOCK === 'wall' || childrenCpu() === undefined ? 'wall' : 'cpu';

/** Seconds of `nfvm replay` on `pcap` (CPU or wall: CLOCK), checked to have replayed `frames` frames. */
function replay(snap: string, pcap: string, frames: number, mode: string[]): number {
  const t0 = process.hrtime.bigint();
  const c0 = childrenCpu() ?? 0;
  const r = spawnSync(process.execPath, [CLI, 'replay', snap, '--pcap', pcap, '--iface', 'eth0', '--json', ...mode], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const s = CLOCK === 'cpu' ? (childrenCpu() ?? 0) - c0 : Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`nfvm replay ${mode.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { summary: { frames: number } };
  if (doc.summary.frames !== frames) throw new Error(`nfvm replay: ${doc.summary.frames} frames, expected ${frames}`);
  return s;
}

const range = (xs: number[], digits: number): string => {
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}-${hi}`;
};

export interface ReplayRow {
  set: string;
  frames: string;
  /** µs per frame per mode, as ranges over the repetitions. */
  [mode: string]: string;
}

export function benchReplay(): ReplayRow[] {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: build it first (node build.mjs)`);
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bench-replay-'));
  const rows: ReplayRow[] = [];
  try {
    for (const set of sets()) {
      const snap = join(tmp, set.name);
      cpSync(NODE, snap, { recursive: true });
      writeFileSync(join(snap, 'iptables-save.txt'), `# Generated by iptables-save v1.8.9 on Thu Jan  1 00:00:00 2026\n${set.rules}`);
      const pcaps = [set.n, 2 * set.n].map((count) => {
        const f = join(tmp, `${set.name}-${count}.pcap`);
        writeFileSync(f, writePcap(Array.from({ length: count }, (_, i) => ({ data: headerFrame(set.headers[i % set.headers.length]!) })), { linktype: LINKTYPE_RAW }));
        return f;
      });
      const us: Record<string, number[]> = {};
      for (let rep = 0; rep < REPEAT; rep++) {
        for (const [mode, args] of MODES) {
          const t1 = replay(snap, pcaps[0]!, set.n, args);
          const t2 = replay(snap, pcaps[1]!, 2 * set.n, args);
          (us[mode] ??= []).push(((t2 - t1) / set.n) * 1e6);
        }
      }
      const ratio = (a: string, b: string) => us[a]!.map((x, i) => x / us[b]![i]!);
      const row: ReplayRow = { set: set.name, frames: `${set.n}/${2 * set.n}`, clock: CLOCK };
      for (const [mode] of MODES) row[`${mode} µs/frame`] = range(us[mode]!, 2);
      row['vm -O0 vs reference'] = `${range(ratio('reference', 'vm -O0'), 1)}x`;
      row['vm -O1 vs vm -O0'] = `${range(ratio('vm -O0', 'vm -O1'), 1)}x`;
      row['vm -O1 vs reference'] = `${range(ratio('reference', 'vm -O1'), 1)}x`;
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
