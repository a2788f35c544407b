/**
 * iptables' ebtables extension tests (`extensions/libebt_*.t`, iptables
 * 1.8.13): every OK line must load and print as ebtables-save prints it,
 * every FAIL line must be refused with a located error. Read in place from
 * the corpus; the per-file pass rate of every file is printed.
 */
import { describe, expect, it, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import { HAVE_CORPUS, corpusPath, describeCorpus } from './helpers/corpus.js';
import { readTFile, type TOutcome } from './helpers/tfile.js';
import { runEbtCase } from './helpers/ebt-tfile.js';

const dir = corpusPath('netfilter-iptables', 'extensions');
const files = HAVE_CORPUS ? readdirSync(dir).filter((f) => /^libebt_.*\.t$/.test(f)).sort() : [];

const rates: string[] = [];
afterAll(() => {
  if (rates.length) console.log('ebtables .t pass rates:\n' + rates.join('\n'));
});

describeCorpus('ebtables extension .t files', () => {
  it('finds the ebtables files', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });
  for (const f of files) {
    const outcomes: TOutcome[] = readTFile(`${dir}/${f}`).map(runEbtCase);
    rates.push(`  ${f.padEnd(24)} ${outcomes.filter((o) => o.ok).length}/${outcomes.length}`);
    describe(f, () => {
      for (const o of outcomes) {
        it(`line ${o.case.line} [${o.case.table}/${o.case.chain}] ${o.case.result}: ${o.case.rule}`, () => {
          expect(o.ok, o.detail).toBe(true);
        });
      }
    });
  }
});
