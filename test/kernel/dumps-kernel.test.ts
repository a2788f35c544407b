/**
 * The real-dump conformance test against the Linux kernel.
 *
 * For every dump of the corpus (test/helpers/dumps.ts): a fresh network
 * namespace, `iptables-legacy-restore [-c] < dump` in it (ip6tables-legacy-*
 * for IPv6 dumps), `iptables-legacy-save [-c]`, and the namespace deleted
 * again (in a `finally`, also on failure). nfvm's
 * `saveRuleset(parseRestore(dump))` must print the same lines per table
 * (`#` lines ignored, table order irrelevant: the kernel lists tables in the
 * order they were registered).
 *
 * The installed tools are iptables 1.8.9; nfvm prints what iptables 1.8.13
 * prints. NORMALISATIONS turns the 1.8.9 forms that changed into the 1.8.13
 * ones, each naming the iptables change; nothing else is adjusted.
 *
 * A dump the kernel refuses must be listed in KERNEL_REFUSALS (helpers/dumps.ts):
 * either a syntax error (then nfvm must reject it too: EXPECTED_REJECTIONS)
 * or a missing kernel feature (then nfvm must still parse it).
 *
 * Runs only as root with iptables-legacy-restore and `ip` installed; skips
 * with a message otherwise. Namespaces run two at a time (the machine has
 * two cores).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS, HAVE_CORPUS } from '../helpers/corpus.js';
import { LEGACY_TOOLS, compareSaves, kernelRoundTrip, kernelSkip, normalised, pool, preflight, type KernelResult } from '../helpers/kernel.js';
import { discoverDumps, EXPECTED_REJECTIONS, KERNEL_REFUSALS, DUMP_DIRS, type Dump } from '../helpers/dumps.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';

const CONCURRENCY = 2;

// without the corpus the global setup has said so (test/global-setup.ts); the kernel's prerequisites by the one policy
const ENABLED = HAVE_CORPUS && !kernelSkip('kernel dump conformance', LEGACY_TOOLS, preflight);
const SUITE = 'real dumps against the kernel (iptables-legacy 1.8.9, normalised to 1.8.13)';

interface Outcome {
  dump: Dump;
  kernel: KernelResult | undefined;
  kernelError: string | undefined;
  nfvm: string | undefined;
  nfvmError: string | undefined;
  /** Per table, the first differing lines (kernel vs nfvm), empty when equal. */
  diffs: string[];
}

function nfvmSave(d: Dump): { out?: string; err?: string } {
  try {
    return { out: saveRuleset(parseRestore(d.text, { family: d.family, counters: d.counters, file: d.id }), { counters: d.counters, comments: false }) };
  } catch (e) {
    return { err: (e as Error).message };
  }
}


const dumps = ENABLED ? discoverDumps().dumps : [];
const outcomes = new Map<string, Outcome>();
let elapsedMs = 0;

describe.skipIf(!ENABLED)(HAVE_CORPUS ? SUITE : `${SUITE} (skipped: no corpus at ${CORPUS})`, () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const rs = await pool(dumps, CONCURRENCY, async (d): Promise<Outcome> => {
      let kernel: KernelResult | undefined;
      let kernelError: string | undefined;
      try {
        kernel = await kernelRoundTrip(d);
      } catch (e) {
        kernelError = (e as Error).message;
      }
      const { out, err } = nfvmSave(d);
      const diffs = kernel?.loaded && out !== undefined ? compareSaves(kernel.save, out) : [];
      return { dump: d, kernel, kernelError, nfvm: out, nfvmError: err, diffs };
    });
    for (const o of rs) outcomes.set(o.dump.id, o);
    elapsedMs = Date.now() - t0;
  }, 600_000);

  afterAll(() => {
    if (!outcomes.size) return;
    const all = [...outcomes.values()];
    const loaded = all.filter((o) => o.kernel?.loaded);
    const compared = loaded.filter((o) => o.nfvm !== undefined);
    const equal = compared.filter((o) => o.diffs.length === 0);
    const refused = all.filter((o) => o.kernel && !o.kernel.loaded);
    const lines: string[] = [];
    lines.push(`kernel dump conformance: ${all.length} dumps, ${compared.length} compared, ${equal.length} equal, ${compared.length - equal.length} differing, ` +
      `${refused.length} refused by the kernel, ${loaded.length - compared.length} loaded by the kernel but rejected by nfvm; ${(elapsedMs / 1000).toFixed(1)} s`);
    for (const dir of DUMP_DIRS) {
      const inDir = all.filter((o) => o.dump.dir === dir);
      const c = inDir.filter((o) => o.kernel?.loaded && o.nfvm !== undefined);
      lines.push(`  ${dir}: ${inDir.length} dumps, ${c.filter((o) => o.diffs.length === 0).length}/${c.length} compared equal, ${inDir.filter((o) => o.kernel && !o.kernel.loaded).length} refused by the kernel`);
    }
    for (const [name, n] of normalised) lines.push(`  normalised ${n} kernel lines: ${name}`);
    for (const o of refused) {
      lines.push(`  refused: ${o.dump.id}: ${o.kernel!.restoreStderr.split('\n')[0]} | nfvm: ${o.nfvmError ?? 'parses'}`);
    }
    for (const o of compared) if (o.diffs.length) lines.push(`  differs: ${o.dump.id}\n    ${o.diffs.join('\n').split('\n').join('\n    ')}`);
    for (const o of loaded) if (o.nfvm === undefined) lines.push(`  nfvm rejects a dump the kernel loads: ${o.dump.id}: ${o.nfvmError}`);
    console.log(lines.join('\n'));
  });

  for (const d of dumps) {
    it(`${d.id}${d.family === 'ip6' ? ' (ip6)' : ''}${d.counters ? ' (-c)' : ''}`, () => {
      const o = outcomes.get(d.id);
      expect(o, 'the kernel run did not happen').toBeDefined();
      expect(o!.kernelError, 'kernel run').toBeUndefined();
      const k = o!.kernel!;
      const expectedRejection = EXPECTED_REJECTIONS[d.id];
      const refusal = KERNEL_REFUSALS[d.id];
      if (!k.loaded) {
        expect(refusal, `the kernel refuses ${d.id} but KERNEL_REFUSALS does not list it:\n${k.restoreStderr}`).toBeDefined();
        expect(k.restoreStderr).toMatch(refusal!.kernel);
        if (expectedRejection) {
          expect(o!.nfvmError, 'nfvm must reject a dump iptables-restore refuses for syntax').toBeDefined();
        } else {
          expect(o!.nfvmError, 'nfvm must parse a dump the kernel refuses only for a missing feature').toBeUndefined();
        }
        return;
      }
      expect(refusal, `KERNEL_REFUSALS lists ${d.id} but the kernel loads it`).toBeUndefined();
      expect(o!.nfvmError, 'nfvm rejects a dump the kernel loads').toBeUndefined();
      expect(o!.diffs.join('\n'), 'kernel and nfvm saves differ').toBe('');
    });
  }
});
