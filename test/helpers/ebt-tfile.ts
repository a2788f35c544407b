/**
 * The ebtables side of iptables' extension tests (`extensions/libebt_*.t`):
 * the same file format as test/helpers/tfile.ts, but each line is the rule
 * of `ebtables -t TABLE -A CHAIN rule`, and the expected line is compared
 * with the ebtables-save line of the chain, as iptables-test.py does for
 * ebtables: a rule printed without a target carries `-j CONTINUE`, which
 * the files leave out except where they spell it.
 */
import { basename } from 'node:path';
import { applyEbtCommands, emptyEbtRuleset } from '../../compiler/ebt/restore.js';
import { saveEbtRule } from '../../compiler/ebt/save.js';
import { splitArgs } from '../../compiler/parse/argv.js';
import { NfvmError } from '../../core/errors.js';
import type { TCase, TOutcome } from './tfile.js';

/** The saved form a line expects: `-A CHAIN expected`, with `-j CONTINUE` when it names no target. */
export function ebtExpected(c: TCase): string {
  const want = `-A ${c.chain} ${c.expected}`.trimEnd();
  return / -j /.test(` ${c.expected}`) ? want : `${want} -j CONTINUE`;
}

/** The outcome, with the line nfvm printed (untrimmed) when the rule loaded. */
export function runEbtCase(c: TCase): TOutcome & { saved?: string } {
  const file = basename(c.file);
  let saved: string;
  try {
    const args = splitArgs(`-t ${c.table} -A ${c.chain} ${c.rule}`, c.line, file);
    const rs = applyEbtCommands(emptyEbtRuleset(), [{ args, line: c.line }], { file });
    const chain = rs.tables.get(c.table as never)!.chains.get(c.chain)!;
    saved = chain.rules.map((r) => saveEbtRule(c.chain, r, false)).join('\n');
  } catch (e) {
    if (!(e instanceof NfvmError)) return { case: c, ok: false, detail: `crash: ${(e as Error).stack}` };
    if (c.result === 'FAIL') {
      return e.pos ? { case: c, ok: true, detail: e.message } : { case: c, ok: false, detail: `error without position: ${e.message}` };
    }
    return { case: c, ok: false, detail: `rejected: ${e.message}` };
  }
  const want = ebtExpected(c);
  const got = saved.trimEnd();
  if (c.result === 'FAIL') return { case: c, ok: false, detail: `accepted, saved as: ${saved}` };
  if (c.result === 'NOMATCH') return { case: c, ok: got !== want, detail: saved, saved };
  return { case: c, ok: got === want, detail: got === want ? '' : `got:  ${got}\nwant: ${want}`, saved };
}
