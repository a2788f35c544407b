/**
 * fuzz/delta.ts: the second ruleset of a diff parsed only where its lines
 * differ from the first's. It must be the ruleset a whole parse gives (the
 * same saved text, the same source positions), share the unchanged chains,
 * and give up (undefined) where a whole parse is needed: other commands, a
 * rule the kernel's checks refuse, a chain nobody declared.
 */
import { expect, it } from 'vitest';
import type { Ruleset } from '../../core/ast.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';
import { parseDelta } from '../../fuzz/delta.js';
import { describeCorpus, kubeTracepacketRules } from '../helpers/corpus.js';

/** The source positions of the rules of the chains `only` names. */
const positions = (rs: Ruleset, only: ReadonlySet<string>) => {
  const out: string[] = [];
  for (const [tn, t] of rs.tables) {
    for (const c of t.chains.values()) {
      if (!only.has(`${tn}\0${c.name}`)) continue;
      for (const r of c.rules) out.push(`${tn} ${c.name} ${r.pos.line}:${r.pos.col} ${r.matches.map((m) => `${m.pos.line}:${m.pos.col}`).join(',')} ${r.target.kind === 'none' ? '' : `${r.target.pos.line}:${r.target.pos.col}`}`);
    }
  }
  return out;
};

describeCorpus('parseDelta on a real kube-proxy dump', () => {
  const old = kubeTracepacketRules;

  it('a changed DNAT target and a removed rule: the ruleset a whole parse gives, unchanged chains shared', () => {
    const text = old();
    const lines = text.split('\n');
    const dnat = lines.findIndex((l) => / -j DNAT --to-destination /.test(l));
    const masq = lines.findIndex((l) => /^-A KUBE-POSTROUTING .*-j RETURN/.test(l));
    expect(dnat).toBeGreaterThan(0);
    expect(masq).toBeGreaterThan(0);
    lines[dnat] = lines[dnat]!.replace(/--to-destination (\d+\.\d+\.\d+\.)(\d+)/, (_, p: string, d: string) => `--to-destination ${p}${Number(d) ^ 1}`);
    const dnatChain = /^-A (\S+)/.exec(lines[dnat]!)![1]!;
    lines.splice(masq, 1);
    const edited = lines.join('\n');
    const a = parseRestore(text, { file: 'old' });
    const d = parseDelta(a, text, edited, { file: 'new' });
    expect(d).toBeDefined();
    const whole = parseRestore(edited, { file: 'new' });
    expect(saveRuleset(d!.rs)).toBe(saveRuleset(whole));
    // the chains parsed again have their place in the new text (the shared ones keep the old text's: only a load error names them, and the old ruleset loads first)
    expect(positions(d!.rs, d!.changed)).toEqual(positions(whole, d!.changed));
    expect(positions(d!.rs, d!.changed).length).toBeGreaterThan(2);
    expect([...d!.changed].map((k) => k.replace('\0', ' ')).sort()).toEqual(['nat KUBE-POSTROUTING', `nat ${dnatChain}`].sort());
    let shared = 0;
    let own = 0;
    for (const [tn, t] of d!.rs.tables) {
      for (const [cn, c] of t.chains) {
        if (a.tables.get(tn)!.chains.get(cn) === c) shared++;
        else own++;
      }
    }
    expect(own).toBe(2);
    expect(shared).toBeGreaterThan(10);
    // the filter table, unchanged, is the same object
    expect(d!.rs.tables.get('filter')).toBe(a.tables.get('filter'));
  });

  it('gives up where a whole parse is needed', () => {
    const text = old();
    const a = parseRestore(text, { file: 'old' });
    // a rule the kernel refuses (DNAT in filter): the whole parse locates it
    const bad = text.replace(/(\*filter\n(?:[^\n]*\n)*?)(COMMIT)/, '$1-A INPUT -j DNAT --to-destination 10.0.0.1\n$2');
    expect(bad).not.toBe(text);
    expect(parseDelta(a, text, bad, { file: 'new' })).toBeUndefined();
    expect(() => parseRestore(bad, { file: 'new' })).toThrow(/DNAT/);
    // another command than -A
    expect(parseDelta(a, text, text.replace(/\nCOMMIT\n/, '\n-I INPUT -j ACCEPT\nCOMMIT\n'), { file: 'new' })).toBeUndefined();
    // a rule of an undeclared chain
    expect(parseDelta(a, text, text.replace(/\nCOMMIT\n/, '\n-A NOSUCH -j ACCEPT\nCOMMIT\n'), { file: 'new' })).toBeUndefined();
    // the same text: nothing changed, every table shared
    const same = parseDelta(a, text, text, { file: 'new' });
    expect(same?.changed.size).toBe(0);
    for (const [tn, t] of a.tables) expect(same!.rs.tables.get(tn)).toBe(t);
  });
});
