/**
 * Every real iptables-save dump of the corpus parses, and nfvm's save is a
 * fixed point: parse(save(x)) saves the same text. Dumps iptables-restore
 * itself refuses for their syntax are rejected, with the expected message
 * at the expected line (EXPECTED_REJECTIONS in helpers/dumps.ts, each with
 * its reason). No root needed; the comparison with the kernel's own save
 * is test/kernel/dumps-kernel.test.ts.
 *
 * Files under the dump directories that have a table line but are not
 * restore inputs are listed, with the reason, in NOT_DUMPS
 * (helpers/dumps.ts); the table printed by the first test below shows them.
 */
import { expect, it } from 'vitest';
import { describeCorpus } from './helpers/corpus.js';
import { discoverDumps, DUMP_DIRS, EXPECTED_REJECTIONS, EXTRACTIONS, NOT_DUMPS, KERNEL_REFUSALS } from './helpers/dumps.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { NfvmError } from '../core/errors.js';

const { dumps, skipped } = discoverDumps();

describeCorpus('real dumps: discovery', () => {
  it('finds dumps in every corpus directory and skips only the listed non-dumps', () => {
    const rows = skipped.map((s) => `  ${s.id}\n      ${s.reason}`);
    const ex = Object.entries(EXTRACTIONS).map(([id, e]) => `  ${id}\n      ${e.note}`);
    console.log(`real dumps: ${dumps.length} dumps (${dumps.filter((d) => d.family === 'ip6').length} ip6, ` +
      `${dumps.filter((d) => d.counters).length} with counters)\nskipped files with a table line:\n${rows.join('\n')}\nfiles with text around the dump:\n${ex.join('\n')}`);
    for (const dir of DUMP_DIRS) expect(dumps.some((d) => d.dir === dir), dir).toBe(true);
    expect(skipped.map((s) => s.id).sort()).toEqual(Object.keys(NOT_DUMPS).sort());
  });

  it('lists expected rejections and kernel refusals only for discovered dumps', () => {
    const ids = new Set(dumps.map((d) => d.id));
    for (const id of Object.keys(EXPECTED_REJECTIONS)) expect(ids.has(id), id).toBe(true);
    for (const id of Object.keys(KERNEL_REFUSALS)) expect(ids.has(id), id).toBe(true);
    // every syntax rejection is one the kernel refuses too
    for (const id of Object.keys(EXPECTED_REJECTIONS)) expect(KERNEL_REFUSALS[id], id).toBeDefined();
  });

  it('tells the families and counters apart', () => {
    const byId = new Map(dumps.map((d) => [d.id, d]));
    const f = (suffix: string) => [...byId.values()].find((d) => d.id.endsWith(suffix));
    expect(f('ipt-save/dumps/fedora27-ip6tables')?.family).toBe('ip6');
    expect(f('ipt-restore/dumps/ip6tables.dump')?.family).toBe('ip6');
    expect(f('configs_ipv6_server/mailserver')?.family).toBe('ip6');
    expect(f('Parser_Test/data/iptables-save')?.family).toBe('ip');
    expect(f('ipt-save/dumps/fedora27-iptables')?.counters).toBe(true);
    expect(dumps.filter((d) => d.counters).map((d) => d.id)).toEqual([
      'netfilter-iptables/iptables/tests/shell/testcases/ipt-save/dumps/fedora27-iptables',
    ]);
    expect(dumps.filter((d) => d.id.includes('pastebin.com_FNwfaEED')).length).toBe(2);
  });
});

describeCorpus('real dumps: parse and save', () => {
  for (const d of dumps) {
    const rej = EXPECTED_REJECTIONS[d.id];
    if (rej) {
      it(`${d.id} is rejected: ${rej.reason}`, () => {
        let err: unknown;
        try {
          parseRestore(d.text, { family: d.family, counters: d.counters, file: d.id });
        } catch (e) {
          err = e;
        }
        expect(err, 'nfvm accepts a dump iptables-restore refuses').toBeInstanceOf(NfvmError);
        const e = err as NfvmError;
        expect(e.message).toMatch(rej.message);
        expect(e.pos?.line).toBe(rej.line);
      });
      continue;
    }
    it(`${d.id}${d.family === 'ip6' ? ' (ip6)' : ''}${d.counters ? ' (-c)' : ''}`, () => {
      const opts = { family: d.family, counters: d.counters, file: d.id };
      const rs = parseRestore(d.text, opts);
      expect(rs.tables.size).toBeGreaterThan(0);
      for (const counters of d.counters ? [true, false] : [false]) {
        const once = saveRuleset(rs, { counters });
        const twice = saveRuleset(parseRestore(once, { ...opts, counters }), { counters });
        expect(twice).toBe(once);
      }
    });
  }
});
