/**
 * Differential test of the front end against the kernel: generated
 * rulesets (test/helpers/gen.ts: abbreviated options, `=` arguments,
 * protocol numbers, implicit protocol matches, open port ranges, dotted
 * masks, quoted strings, user chains named like Object.prototype members,
 * counters) are loaded with `iptables-legacy-restore -c` in a fresh network
 * namespace and read back with `iptables-legacy-save -c`; `nfvm save -c`
 * must print the same lines. Runs as root with the iptables tools; skips
 * otherwise.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LEGACY_TOOLS, compareSaves, kernelRoundTrip, kernelSkip, pool, preflight } from '../helpers/kernel.js';
import { ruleset } from '../helpers/gen.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';
import { runs, scaled } from '../helpers/runs.js';

const SKIP = kernelSkip('generated rulesets against the kernel', LEGACY_TOOLS, preflight);

const N = runs(48);

describe.skipIf(SKIP)('generated rulesets against the kernel', () => {
  it(`${N} rulesets load identically`, async () => {
    const texts = fc.sample(ruleset, { numRuns: N, seed: 20261126 });
    const results = await pool(texts, 2, async (text) => {
      const k = await kernelRoundTrip({ family: 'ip', text, counters: true });
      return { text, k };
    });
    const failures: string[] = [];
    let compared = 0;
    let refusedByBoth = 0;
    for (const { text, k } of results) {
      let mine: string | undefined;
      let why = '';
      try {
        mine = saveRuleset(parseRestore(text, { counters: true }), { counters: true, comments: false });
      } catch (e) {
        why = (e as Error).message;
      }
      if (!k.loaded || mine === undefined) {
        if (k.loaded !== (mine !== undefined)) {
          failures.push(`kernel ${k.loaded ? 'loads' : `refuses (${k.restoreStderr.split('\n')[0]})`}, nfvm ${mine !== undefined ? 'accepts' : `refuses (${why})`}\n${text}`);
        } else refusedByBoth++;
        continue;
      }
      compared++;
      const diffs = compareSaves(k.save, mine);
      if (diffs.length) failures.push(`${diffs.join('\n')}\n--- input:\n${text}`);
    }
    console.log(`generated rulesets against the kernel: ${compared} compared, ${refusedByBoth} refused by both, ${failures.length} disagreements`);
    expect(failures.slice(0, 3).join('\n\n')).toBe('');
    expect(compared).toBeGreaterThan(N / 2);
  }, scaled(300_000));
});
