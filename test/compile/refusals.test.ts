/**
 * Every refusal iptables-restore 1.8.9 makes in userspace for a restore
 * file (test/helpers/refusals.ts, recorded from the real tool) is nfvm's
 * too: the same reason (iptables' words, optionally followed by nfvm's
 * hint in parentheses), located at the line iptables names and the column
 * of the offending word, exit 2 through the bundled command; the lines
 * iptables accepts, nfvm accepts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRestore } from '../../compiler/parse/restore.js';
import { NfvmError } from '../../core/errors.js';
import { REFUSALS, refusalInput, refusalReason } from '../helpers/refusals.js';
import { buildCli, runCli } from '../helpers/cli.js';

let cli = '';
beforeAll(async () => {
  cli = await buildCli();
});

describe('iptables-restore refusals (iptables 1.8.9, recorded)', () => {
  it.each(REFUSALS.map((r) => [r.rule.length > 60 ? `${r.rule.slice(0, 40)}... (${r.rule.length} chars)` : r.rule, r] as const))('%s', (_name, r) => {
    const text = refusalInput(r);
    let err: unknown;
    let rs;
    try {
      rs = parseRestore(text, { family: r.family, file: 'rules' });
    } catch (e) {
      err = e;
    }
    if (r.legacy === 0) {
      expect(err).toBeUndefined();
      // a line of the other family is ignored: no rule
      if (/ -[46] /.test(r.rule)) expect([...rs!.tables.get('filter')!.chains.values()].flatMap((c) => c.rules)).toEqual([]);
      return;
    }
    expect(err).toBeInstanceOf(NfvmError);
    const e = err as NfvmError;
    const reason = refusalReason(r.stderr);
    expect(reason).not.toBe('');
    if (e.reason !== reason) expect(e.reason.startsWith(`${reason} (`), `nfvm: ${e.reason}\niptables: ${reason}`).toBe(true);
    // the line iptables names; the column of the word nfvm blames
    expect(r.stderr.includes(`Error occurred at line: ${e.pos!.line}\n`) || /^iptables-restore v[\d.]+ \(legacy\): Bad line (\d+)/.exec(r.stderr)?.[1] === String(e.pos!.line)).toBe(true);
    expect(`${e.pos!.line}:${e.pos!.col}`).toBe(r.at);
  });

  it('nat -j DROP through the bundled command: exit 2, the reason located, nothing on stdout', () => {
    const r = REFUSALS.find((x) => x.table === 'nat' && x.rule === '-A PREROUTING -j DROP')!;
    expect(runCli(cli, ['save', '-'], refusalInput(r))).toEqual({
      code: 2, out: '', err: '<stdin>:2:18: The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.\n',
    });
  });
});
