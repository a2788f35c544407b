/**
 * Runner for iptables' extension test files (`extensions/*.t`).
 *
 * Format (iptables-test.py): `:CHAIN[,CHAIN...]` selects the chains the
 * following lines are added to, `*table` the table, `@`/`%` lines are setup
 * commands (ignored), `#` comments. A test line is
 * `rule;expected;OK|FAIL|NOMATCH[;NFT|LEGACY[;other-result]]`: OK means
 * `iptables -A CHAIN rule` loads and iptables-save prints `-A CHAIN expected`
 * (`=` for the rule itself); FAIL means it is refused; NOMATCH that it loads
 * but saves differently. nfvm models the legacy (x_tables) backend, so a
 * line scoped to NFT takes its alternative result (or is skipped).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRule } from '../../compiler/save.js';
import { NfvmError } from '../../core/errors.js';
import type { Family } from '../../core/ast.js';
import type { KnownObjects } from '../../ext/types.js';

export interface TCase {
  file: string;
  line: number;
  table: string;
  chain: string;
  rule: string;
  expected: string;
  result: 'OK' | 'FAIL' | 'NOMATCH';
  /** The ipsets, nfacct objects and cttimeout policies the file's setup lines created (default: not modelled). */
  objects?: KnownObjects;
}

export interface TOutcome {
  case: TCase;
  ok: boolean;
  detail: string;
}

export function familyOf(file: string): Family {
  return basename(file).startsWith('libip6t_') ? 'ip6' : 'ip';
}

export function readTFile(path: string): TCase[] {
  const text = readFileSync(path, 'utf8');
  const out: TCase[] = [];
  let chains: string[] = [];
  let table = 'filter';
  // the kernel objects the setup lines create: a test runs in a fresh namespace that has no others
  const ipsets = new Set<string>();
  const nfacct = new Set<string>();
  const ctTimeouts = new Set<string>();
  text.split('\n').forEach((raw, idx) => {
    const line = raw.trimEnd();
    if (line.startsWith('@')) {
      const w = line.slice(1).trim().split(/\s+/);
      const [tool, verb, name] = w;
      if (tool === 'nfacct' && name) (verb === 'add' ? nfacct.add(name) : nfacct.delete(name));
      if (tool === 'ipset' && name) (/^(-N|create|-n)$/.test(verb!) ? ipsets.add(name) : /^(-X|destroy)$/.test(verb!) && ipsets.delete(name));
      if (tool === 'nfct' && verb === 'timeout' && w[3]) (name === 'add' ? ctTimeouts.add(w[3]) : ctTimeouts.delete(w[3]));
      return;
    }
    if (!line || line.startsWith('#') || line.startsWith('%')) return;
    if (line.startsWith(':')) {
      chains = line.slice(1).split(',').map((c) => c.trim());
      return;
    }
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      return;
    }
    const f = line.split(';');
    if (f.length < 3) return;
    let result = f[2] as TCase['result'];
    if (f[3] === 'NFT') {
      if (!f[4]) return;
      result = f[4] as TCase['result'];
    }
    for (const chain of chains) {
      out.push({
        file: path,
        line: idx + 1,
        table,
        chain,
        rule: f[0]!,
        expected: f[1] === '=' ? f[0]! : f[1]!,
        result,
        objects: { ipsets: new Set(ipsets), nfacct: new Set(nfacct), ctTimeouts: new Set(ctTimeouts) },
      });
    }
  });
  return out;
}

export function runCase(c: TCase, family: Family): TOutcome {
  const builtin = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].includes(c.chain);
  const text = `*${c.table}\n${builtin ? '' : `:${c.chain} - [0:0]\n`}-A ${c.chain} ${c.rule}\nCOMMIT\n`;
  let saved: string;
  try {
    const rs = parseRestore(text, { family, file: basename(c.file), ...(c.objects ? { objects: c.objects } : {}) });
    const t = rs.tables.get(c.table as never)!;
    const rules = t.chains.get(c.chain)!.rules;
    saved = rules.map((r) => saveRule(family, c.chain, r, false)).join('\n');
  } catch (e) {
    if (!(e instanceof NfvmError)) return { case: c, ok: false, detail: `crash: ${(e as Error).stack}` };
    if (c.result === 'FAIL') {
      return e.pos ? { case: c, ok: true, detail: e.message } : { case: c, ok: false, detail: `error without position: ${e.message}` };
    }
    return { case: c, ok: false, detail: `rejected: ${e.message}` };
  }
  const want = `-A ${c.chain} ${c.expected}`.trimEnd();
  if (c.result === 'FAIL') return { case: c, ok: false, detail: `accepted, saved as: ${saved}` };
  if (c.result === 'NOMATCH') return { case: c, ok: saved !== want, detail: saved };
  return { case: c, ok: saved === want, detail: saved === want ? '' : `got:  ${saved}\nwant: ${want}` };
}
