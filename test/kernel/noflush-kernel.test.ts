/**
 * iptables-restore sessions against the kernel: a ruleset with counters is
 * loaded (`iptables-restore -c`), then changes are applied one after the
 * other with `iptables-restore [--noflush] [-c]` (test/helpers/restore-gen.ts),
 * and after each the kernel's `iptables-save -c` must equal nfvm's save of
 * the same change applied to its ruleset (parseRestore with `base` and
 * `noflush`): the rules, their order, which counters survive (the rules the
 * change left alone keep theirs; new, replaced and zeroed ones start from
 * 0 or the -c values), the policies and their counters (libiptc zeroes a
 * legacy table's policy counters, iptables-nft keeps them). A change the
 * kernel refuses nfvm must refuse; the session then goes on from the
 * kernel's tables (those committed before the failing one stay).
 *
 * Both backends (iptables-legacy-restore, iptables-nft-restore), a quarter
 * of the sessions IPv6 (ip6tables-*), each session in a fresh namespace. Root and the tools, else a skip with a
 * message (a failure under CI). NFVM_PROPERTY_SCALE scales the sessions,
 * FC_SEED replays a run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compareSaves, kernelSkip, netnsAdd, netnsDel, pool, run } from '../helpers/kernel.js';
import { runs, scaled } from '../helpers/runs.js';
import { restoreGen, type RestoreStep } from '../helpers/restore-gen.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';
import type { Ruleset } from '../../core/ast.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save'];
const ENABLED = !kernelSkip('iptables-restore --noflush sessions against the kernel', TOOLS);
const SESSIONS = runs(24);
const STEPS = 6;
const SEED = Number(process.env.FC_SEED ?? 20261207);
const BACKENDS = ['legacy', 'nft'] as const;
type Backend = (typeof BACKENDS)[number];
/** Every fourth session is IPv6 (ip6tables-*-restore). */
const familyOf = (seed: number): 'ip' | 'ip6' => (seed % 4 === 3 ? 'ip6' : 'ip');

interface Outcome {
  steps: number;
  compared: number;
  refusedBoth: number;
  /** The kernel's reasons for the refusals both made. */
  refusals: string[];
  diffs: string[];
}

let seq = 0;

/**
 * A session: `base` loaded, then the changes `next` writes, each against
 * the tables as they stand (the kernel's, which nfvm's equal after a
 * compared change and are read back after a refused one), up to STEPS.
 */
async function session(base: string, next: (rs: Ruleset, i: number) => RestoreStep | undefined, backend: Backend, label: string, family: 'ip' | 'ip6' = 'ip'): Promise<Outcome> {
  const ns = `nfvm-nf-${process.pid % 10000}-${++seq}-${randomBytes(2).toString('hex')}`;
  const add = netnsAdd(ns);
  if (add.status !== 0) throw new Error(`ip netns add ${ns} failed: ${add.stderr}`);
  const o: Outcome = { steps: 0, compared: 0, refusedBoth: 0, refusals: [], diffs: [] };
  const exec = (tool: string, args: string[], input?: string) => run('ip', ['netns', 'exec', ns, `${family === 'ip6' ? 'ip6' : 'ip'}tables-${backend}-${tool}`, ...args], input);
  try {
    const loaded = await exec('restore', ['-c'], base);
    if (loaded.code !== 0) throw new Error(`${label}: the base does not load: ${loaded.stderr}`);
    // nfvm starts from the tables as the kernel holds them (ip6tables-nft-restore 1.8.9 -c leaves the rules' counters at 0)
    const loadedSave = await exec('save', ['-c']);
    let rs: Ruleset = parseRestore(loadedSave.stdout, { file: 'base', counters: true, backend, family });
    for (let i = 0, step = next(rs, 0); step !== undefined; step = next(rs, ++i)) {
      o.steps++;
      const k = await exec('restore', [...(step.noflush ? ['--noflush'] : []), ...(step.counters ? ['-c'] : [])], step.text);
      const saved = await exec('save', ['-c']);
      if (saved.code !== 0) throw new Error(`${label}: iptables-${backend}-save failed: ${saved.stderr}`);
      let mine: Ruleset | undefined;
      let err: string | undefined;
      try {
        mine = parseRestore(step.text, { file: `step${i + 1}`, base: rs, noflush: step.noflush, counters: step.counters, backend, family });
      } catch (e) {
        err = (e as Error).message;
      }
      const what = `${label} step ${i + 1} (${step.noflush ? '--noflush' : 'flush'}${step.counters ? ' -c' : ''})`;
      if ((k.code === 0) !== (mine !== undefined)) {
        o.diffs.push(`${what}: the kernel ${k.code === 0 ? 'accepts' : `refuses (${k.stderr.trim().split('\n')[0]})`}, nfvm ${err === undefined ? 'accepts' : `refuses (${err})`}\n${step.text}`);
        break;
      }
      if (mine === undefined) {
        // both refuse: go on from what the kernel holds
        o.refusedBoth++;
        o.refusals.push(k.stderr.trim().split('\n')[0]!.replace(/line \d+/, 'line N'));
        rs = parseRestore(saved.stdout, { file: 'kernel', counters: true, backend, family });
        continue;
      }
      o.compared++;
      const d = compareSaves(saved.stdout, saveRuleset(mine, { counters: true }));
      if (d.length) {
        o.diffs.push(`${what}:\n${d.join('\n')}\n--- change:\n${step.text}`);
        break;
      }
      rs = mine;
    }
    return o;
  } finally {
    netnsDel(ns);
  }
}

const results = new Map<string, Outcome>();

/** The README's example: the example node's rules, then kube-proxy's partial sync once shop/checkout has an endpoint. */
const EXAMPLE = {
  base: readFileSync(new URL('../../examples/node/iptables-save.txt', import.meta.url), 'utf8'),
  step: { text: readFileSync(new URL('../../examples/changes/checkout-endpoints.txt', import.meta.url), 'utf8'), noflush: true, counters: false },
};

describe.skipIf(!ENABLED)('iptables-restore --noflush sessions against the kernel', () => {
  beforeAll(async () => {
    const cases = Array.from({ length: SESSIONS }, (_, i) => SEED + i).flatMap((seed) => BACKENDS.map((b) => ({ seed, b })));
    const outs = await pool(cases, 2, async ({ seed, b }) => {
      const family = familyOf(seed);
      const g = restoreGen(seed, b, family);
      return [`${b} ${seed}`, await session(g.base, (rs, i) => (i < STEPS ? g.next(rs) : undefined), b, `${b} ${family === 'ip6' ? 'IPv6 ' : ''}session ${seed}`, family)] as const;
    });
    for (const [k, v] of outs) results.set(k, v);
    for (const b of BACKENDS) results.set(`example ${b}`, await session(EXAMPLE.base, (_, i) => (i === 0 ? EXAMPLE.step : undefined), b, `${b} example node and kube-proxy change`));
  }, scaled(600_000));

  afterAll(() => {
    if (!results.size) return;
    const all = [...results.values()];
    const sum = (f: (o: Outcome) => number) => all.reduce((a, o) => a + f(o), 0);
    console.log(`iptables-restore sessions against the kernel: ${results.size} sessions (${SESSIONS} seeds from ${SEED} x ${BACKENDS.length} backends, and the example node on each), ` +
      `${sum((o) => o.steps)} changes, ${sum((o) => o.compared)} saves compared, ${sum((o) => o.refusedBoth)} refused by both, ${all.filter((o) => o.diffs.length).length} sessions differ`);
    const why = new Map<string, number>();
    for (const o of all) for (const w of o.refusals) why.set(w, (why.get(w) ?? 0) + 1);
    for (const [w, n] of [...why].sort((a, b) => b[1] - a[1])) console.log(`  refused by both ${n}x: ${w}`);
  });

  it('the example node with kube-proxy\'s change for shop/checkout (examples/changes) leaves the kernel\'s rules, both backends', () => {
    for (const b of BACKENDS) {
      const o = results.get(`example ${b}`)!;
      expect(o.diffs.join('\n')).toBe('');
      expect(o.compared).toBe(1);
    }
  });

  for (const b of BACKENDS) {
    it(`${b}: every change leaves the kernel's rules and counters`, () => {
      const mine = [...results.entries()].filter(([k]) => k.startsWith(`${b} `));
      expect(mine.length).toBe(SESSIONS);
      expect(mine.reduce((a, [, o]) => a + o.compared, 0), 'no save was compared').toBeGreaterThan(0);
      expect(mine.flatMap(([, o]) => o.diffs).slice(0, 3).join('\n\n')).toBe('');
    });
  }
});
