/**
 * The headline figures, in one run on this machine, all from outside:
 *
 *   chain    cost per non-matching rule of a compiled linear chain, nfvm's VM
 *            (unoptimized) and x_tables evaluator (bench/chain.ts) against
 *            Linux x_tables and nf_tables (bench/kernel.ts, as root)
 *   acl      the 1,000-rule ClassBench ACL (acl1_1k with its trace): `nfvm
 *            replay` with default options against --engine reference
 *   cb10k    ClassBench acl1, fw1 and ipc1 at 10k rules (headers synthesised
 *            from the filters; NFVM_BENCH_CB10K picks them): --optimize=1
 *            against --optimize=0
 *   big      100k-rule save / disasm --optimize=1 (bench/big.ts)
 *
 * Per-frame costs are the slope between captures of F and 2F frames, in the
 * child's CPU time; each figure is a range over NFVM_BENCH_REPEAT (default 3)
 * repetitions.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, writePcap } from '../hooks/input/capture.js';
import { filtersToRestore, headerFrame, parseFilters, parseTrace, synthHeaders, type CbHeader } from './classbench.js';
import { benchChain, replaySeconds, snapshotWith, type ChainRow } from './chain.js';
import { benchKernel, type KernelRow } from './kernel.js';
import { range } from './proc.js';

const CORPUS = process.env.NFVM_CORPUS || join(process.cwd(), '..', 'shared', 'corpus');
const REPEAT = Number(process.env.NFVM_BENCH_REPEAT ?? 3);
/**
 * Frames F of the two ratios (F and 2F are replayed): the slope must be long
 * against the 10 ms of /usr/bin/time's CPU clock (at 0.6 µs a frame, a
 * million frames are 0.6 s).
 */
const FRAMES_1K = Number(process.env.NFVM_BENCH_ACL_FRAMES ?? 1_000_000);
const FRAMES_10K = Number(process.env.NFVM_BENCH_CB10K_FRAMES ?? 200_000);

export interface RatioRow {
  figure: string;
  frames: string;
  'µs/frame A': string;
  'µs/frame B': string;
  'A/B': string;
}

/** µs per frame of two replay modes on one ruleset, and their ratio, per repetition. */
function ratio(figure: string, rules: string, headers: CbHeader[], frames: number, a: readonly string[], b: readonly string[]): RatioRow {
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bench-ratio-'));
  try {
    const snap = snapshotWith(join(tmp, 'node'), rules);
    const pcaps = [frames, 2 * frames].map((count) => {
      const f = join(tmp, `${count}.pcap`);
      writeFileSync(f, writePcap(Array.from({ length: count }, (_, i) => ({ data: headerFrame(headers[i % headers.length]!) })), { linktype: LINKTYPE_RAW }));
      return f;
    });
    const us = (mode: readonly string[]): number => ((replaySeconds(snap, pcaps[1]!, 2 * frames, mode) - replaySeconds(snap, pcaps[0]!, frames, mode)) / frames) * 1e6;
    const ua: number[] = [];
    const ub: number[] = [];
    for (let rep = 0; rep < REPEAT; rep++) {
      ua.push(us(a));
      ub.push(us(b));
    }
    const row = { figure, frames: `${frames}/${2 * frames}`, 'µs/frame A': range(ua, 2), 'µs/frame B': range(ub, 2), 'A/B': `${range(ua.map((x, i) => x / ub[i]!), 1)}x` };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface Headline {
  chain: ChainRow[];
  kernel: KernelRow[] | string;
  ratios: RatioRow[] | string;
}

export function benchHeadline(): Headline {
  const chain = benchChain();
  const kernel = benchKernel();
  if (typeof kernel === 'string') console.log(`[skip] Linux x_tables/nf_tables: ${kernel}`);
  let ratios: RatioRow[] | string;
  if (!existsSync(CORPUS)) {
    ratios = `no corpus at ${CORPUS} (set NFVM_CORPUS)`;
    console.log(`[skip] ClassBench figures: ${ratios}`);
  } else {
    const acl = parseFilters(readFileSync(join(CORPUS, 'classbench-lyxocs-ruleSet/acl1_1k'), 'utf8'));
    const aclTrace = parseTrace(readFileSync(join(CORPUS, 'classbench-lyxocs-ruleSet/acl1_1k_trace'), 'utf8'));
    ratios = [
      // one thread on both sides (a capture of 4 MiB or more would start a worker per core, each reading every frame)
      ratio('acl1_1k: --engine reference (A) / default options (B)', filtersToRestore(acl), aclTrace, FRAMES_1K, ['--engine', 'reference', '--workers', '1'], ['--workers', '1']),
    ];
    // the three ClassBench seeds at 10k rules: access lists, firewalls (wildcards: several blocks to search), IP chains
    for (const set of (process.env.NFVM_BENCH_CB10K ?? 'acl1_10k,fw1_10k,ipc1_10k').split(',')) {
      const cb10k = parseFilters(readFileSync(join(CORPUS, `classbench-neurocuts/classbench/${set}`), 'utf8'));
      ratios.push(ratio(`${set}: --optimize=0 (A) / --optimize=1 (B)`, filtersToRestore(cb10k), synthHeaders(cb10k, 5000, 7), FRAMES_10K, ['--engine', 'vm', '--optimize=0', '--workers', '1'], ['--engine', 'vm', '--optimize=1', '--workers', '1']));
    }
  }
  return { chain, kernel, ratios };
}
