/**
 * ClassBench first-match agreement with the optimizer on: for the acl1, fw1
 * and ipc1 1k rule sets and their traces (and the 10k sets with headers
 * synthesised from the filters), the rule whose counter a packet raises in
 * the optimized VM is the naive linear scan's first match (every rule
 * ACCEPTs, so exactly one rule or the DROP policy counts each packet). The
 * whole FORWARD chain is one classified run.
 */
import { expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { corpusPath, describeCorpus } from '../helpers/corpus.js';
import { CLASSBENCH_SETS, filtersToRestore, firstMatch, headerFrame, parseFilters, parseTrace, synthHeaders } from '../../bench/classbench.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { vmTable } from '../../engine/vm-table.js';
import { disasm } from '../../vm/disasm.js';
import { LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../vm/packet.js';
import { M_HOOK, M_NFPROTO } from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP, NF_INET_FORWARD, NFPROTO_IPV4 } from '../../core/netfilter.js';

describeCorpus('optimize=1: ClassBench first match', () => {
  for (const { name, rules, trace } of CLASSBENCH_SETS) {
    it(`${name}: the counted rule is the naive first match`, () => {
      const filters = parseFilters(readFileSync(corpusPath(rules), 'utf8'));
      const rs = parseRestore(filtersToRestore(filters));
      const e = vmTable(rs, 'filter', { optimize: 1 });
      const prog = e.compiled.program;
      expect(disasm(prog)).toContain(`[ classify set __cls0 rules 1-${filters.length} ]`);
      // counter index → 0-based FORWARD rule number (-1: the policy)
      const ruleOf = new Map<number, number>();
      for (const info of e.compiled.rules) if (info.chain === 'FORWARD' && info.counter >= 0) ruleOf.set(info.counter, info.kind === 'policy' ? -1 : info.num - 1);
      const headers = trace ? parseTrace(readFileSync(corpusPath(trace), 'utf8')) : synthHeaders(filters, 3000, 11);
      const pkt = new Packet(128);
      const before = new Float64Array(prog.counters.length);
      let wrong = 0;
      for (const h of headers) {
        pkt.setFrame(headerFrame(h));
        decodePacket(pkt, LINKTYPE_RAW);
        pkt.meta[M_NFPROTO] = NFPROTO_IPV4;
        pkt.meta[M_HOOK] = NF_INET_FORWARD;
        setDevice(pkt, 'in', 2, 'eth0');
        before.set(prog.counters);
        const v = e.run('FORWARD', pkt);
        let counted: number | undefined;
        for (let i = 0; i < prog.counters.length; i += 2) {
          if (prog.counters[i] !== before[i]) {
            expect(counted).toBeUndefined();
            counted = ruleOf.get(i >> 1);
          }
        }
        const want = firstMatch(filters, h);
        expect(v).toBe(want >= 0 ? NF_ACCEPT : NF_DROP);
        if (counted !== want) wrong++;
      }
      expect(wrong).toBe(0);
    });
  }
});
