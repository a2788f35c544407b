/**
 * ClassBench rule sets (acl1/fw1/ipc1, 1k and 10k) convert to iptables rules
 * nfvm parses and prints back, and their traces to packets; the naive
 * first-match scan the benchmarks compare against agrees with the trace
 * generator (the first match is never after the generating filter).
 */
import { expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { corpusPath, describeCorpus } from './helpers/corpus.js';
import { filtersToRestore, firstMatch, parseFilters, parseTrace, headerFrame } from '../bench/classbench.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';

/** Directory, set, and whether the corpus has its header trace (NAME_trace; the 10k sets have none). */
const SETS = [
  ['classbench-lyxocs-ruleSet', 'acl1_1k', true],
  ['classbench-lyxocs-ruleSet', 'fw1_1k', true],
  ['classbench-lyxocs-ruleSet', 'ipc1_1k', true],
  ['classbench-neurocuts/classbench', 'acl1_10k', false],
  ['classbench-neurocuts/classbench', 'fw1_10k', false],
  ['classbench-neurocuts/classbench', 'ipc1_10k', false],
] as const;

describeCorpus('ClassBench as iptables', () => {
  for (const [dir, name, hasTrace] of SETS) {
    it(`${name} converts, parses and saves back${hasTrace ? ', and its trace meets the same first rules' : ''}`, () => {
      const filters = parseFilters(readFileSync(corpusPath(dir, name), 'utf8'));
      expect(filters.length).toBeGreaterThan(500);
      const text = filtersToRestore(filters);
      const rs = parseRestore(text);
      const rules = rs.tables.get('filter')!.chains.get('FORWARD')!.rules;
      expect(rules).toHaveLength(filters.length);
      const saved = saveRuleset(rs, { comments: false });
      expect(saveRuleset(parseRestore(saved), { comments: false })).toBe(saved);
      const trace = corpusPath(dir, `${name}_trace`);
      if (!hasTrace) return;
      const headers = parseTrace(readFileSync(trace, 'utf8'));
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
