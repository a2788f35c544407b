/**
 * ClassBench rule sets (acl1/fw1/ipc1, 1k and 10k) convert to iptables rules
 * nfvm parses and prints back, and their traces to packets; the naive
 * first-match scan the benchmarks compare against agrees with the trace
 * generator (the first match is never after the generating filter).
 */
import { expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { corpusPath, describeCorpus } from './helpers/corpus.js';
import { CLASSBENCH_SETS, filtersToRestore, firstMatch, parseFilters, parseTrace, headerFrame } from '../bench/classbench.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';


describeCorpus('ClassBench as iptables', () => {
  for (const { name, rules: rulesPath, trace: tracePath } of CLASSBENCH_SETS) {
    it(`${name} converts, parses and saves back${tracePath ? ', and its trace meets the same first rules' : ''}`, () => {
      const filters = parseFilters(readFileSync(corpusPath(rulesPath), 'utf8'));
      expect(filters.length).toBeGreaterThan(500);
      const text = filtersToRestore(filters);
      const rs = parseRestore(text);
      const rules = rs.tables.get('filter')!.chains.get('FORWARD')!.rules;
      expect(rules).toHaveLength(filters.length);
      const saved = saveRuleset(rs, { comments: false });
      expect(saveRuleset(parseRestore(saved), { comments: false })).toBe(saved);
      if (!tracePath) return;
      const headers = parseTrace(readFileSync(corpusPath(tracePath), 'utf8'));
      expect(headers.length).toBeGreaterThan(5000);
      for (const h of headers) {
        const m = firstMatch(filters, h);
        expect(m).toBeGreaterThanOrEqual(0);
        expect(m).toBeLessThanOrEqual(h.filter);
        expect(headerFrame(h).length).toBeGreaterThanOrEqual(28);
      }
    });
  }
});
