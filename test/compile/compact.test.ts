/**
 * The compact forms big rulesets are kept in: the flat copy of an argument
 * the AST keeps (compiler/parse/argv.ts flat()) and the rule bookkeeping of
 * a compiled table (compiler/rule-info.ts).
 */
import { describe, expect, it } from 'vitest';
import { flat } from '../../compiler/parse/argv.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';
import { compileTable, RuleInfos } from '../../compiler/compile.js';

describe('flat()', () => {
  it('copies any string unchanged, Latin-1 or not, short or long', () => {
    const line = 'x'.repeat(50) + 'café au lait, 日本語のコメント, emoji 🙂 and \u00ff\u0100 at the edge' + 'y'.repeat(2000);
    for (let a = 0; a < 120; a += 7) for (const len of [1, 12, 13, 40, 1023, 1024, 1025, 1500]) {
      const s = line.slice(a, a + len);
      expect(flat(s)).toBe(s);
    }
  });

  it('keeps a comment beyond Latin-1 through parse and save', () => {
    const text = ['*filter', ':INPUT ACCEPT [0:0]', '-A INPUT -m comment --comment "Ünïcödé: 日本語のコメント 🙂 over thirteen" -j ACCEPT', 'COMMIT', ''].join('\n');
    expect(saveRuleset(parseRestore(text), { comments: false })).toContain('-A INPUT -m comment --comment "Ünïcödé: 日本語のコメント 🙂 over thirteen" -j ACCEPT');
  });
});

describe('RuleInfos', () => {
  it('gives back what was pushed, in order, and undefined past either end', () => {
    const r = new RuleInfos(1);
    const want = [
      { chain: 'INPUT', num: 0, kind: 'wrap', counter: -1, tailLike: false },
      { chain: 'INPUT', num: 1, kind: 'rule', counter: 0, tailLike: true },
      { chain: 'KUBE-SEP-ABC', num: 1 << 20, kind: 'rule', counter: 123456, tailLike: false },
      { chain: 'INPUT', num: 2, kind: 'policy', counter: 123457, tailLike: true },
    ] as const;
    for (const w of want) r.push(w.chain, w.num, w.kind, w.counter, w.tailLike);
    expect(r.length).toBe(4);
    expect([...r]).toEqual(want);
    want.forEach((w, i) => expect(r.at(i)).toEqual(w));
    expect(r.at(-1)).toBeUndefined();
    expect(r.at(4)).toBeUndefined();
  });

  it('numbers a compiled table\'s rules, policies and wraps as the chains hold them (an empty builtin chain has no wrap)', () => {
    const text = ['*filter', ':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':U - [0:0]',
      '-A INPUT -p tcp -j U', '-A INPUT -j ACCEPT', '-A U -s 10.0.0.1/32 -j DROP', 'COMMIT', ''].join('\n');
    const c = compileTable(parseRestore(text), 'filter', { policyRules: true });
    const seen = [...c.rules].map((i) => `${i.chain}:${i.kind}:${i.num}:${i.counter}:${i.tailLike}`);
    expect(seen).toEqual([
      'INPUT:wrap:0:-1:false', 'INPUT:policy:3:0:true', 'INPUT:rule:1:1:false', 'INPUT:rule:2:2:true',
      'FORWARD:policy:1:3:true', 'OUTPUT:policy:1:4:true',
      'U:rule:1:5:false',
    ]);
    expect(c.rules.length).toBe(c.program.nrules);
  });
});
