/**
 * `nfvm save FILE`: an iptables-restore file through the parser and the
 * kernel's load-time checks, printed as iptables-save prints it (or, with
 * --json, as the document README "JSON output" describes).
 */
import { dirname, resolve } from 'node:path';
import { parseEbtRestore } from '../compiler/ebt/restore.js';
import { saveEbtRuleset } from '../compiler/ebt/save.js';
import { ExtError } from '../core/errors.js';
import { saveChunks } from '../compiler/save.js';
import { ipsetNames, parseIpsetSave } from '../compiler/ipset.js';
import { parseBackend, parseCommand, parseFamily, UsageError, type CommandSpec } from './args.js';
import { rulesWithChanges } from './model.js';
import { inputName, readInput, type Output } from './io.js';
import { JsonText, jsonDoc, jsonPieces, rulesetJson } from './json.js';

export const SAVE: CommandSpec = {
  name: 'save',
  usage: `  nfvm save FILE [--family ip|ip6|bridge] [-c|--counters] [--json] [--ipset FILE] [--apply CHANGE]... [--noflush] [--backend legacy|nft]
      Parse an iptables-save/iptables-restore file (- for stdin), apply the
      kernel's load-time checks and print it exactly as iptables-save would.
      --apply CHANGE (repeatable): FILE is what the kernel holds and CHANGE
      iptables-restore input applied to it, in order, as iptables-restore
      [--noflush] [-c] applies it: a table CHANGE names is flushed first
      (its policies kept), or with --noflush gone on with (a chain line
      flushes that user chain); the tables it does not name stay; rules it
      leaves alone keep their counters. The backend (the counters of the
      policies differ) is --backend, else FILE's header's, else legacy.
      --ipset FILE: the node's sets (\`ipset save\` output): a rule naming a
      set that is not there is refused as iptables refuses it.
      --family bridge reads ebtables-save/ebtables-restore text and prints it
      as ebtables-save does. --json prints the ruleset as one JSON document.
`,
  options: {
    family: { type: 'string' }, counters: { type: 'boolean', short: 'c' }, json: { type: 'boolean' }, ipset: { type: 'string' },
    apply: { type: 'string', multi: true }, noflush: { type: 'boolean' }, backend: { type: 'string' },
  },
};

export function cmdSave(argv: readonly string[]): Output {
  const a = parseCommand(SAVE, argv);
  if (a.help) return SAVE.usage;
  if (a.positionals.length !== 1) throw new UsageError('save takes exactly one FILE (- for stdin)');
  const file = a.positionals[0]!;
  const counters = a.flag('counters');
  const changes = a.all('apply');
  if ((a.flag('noflush') || a.str('backend') !== undefined) && !changes.length) throw new UsageError('save: --noflush and --backend say how --apply CHANGE applies: give one');
  if (a.str('family') === 'bridge') {
    if (changes.length) throw new UsageError('save: --apply is for iptables input, not --family bridge');
    return saveBridge(file, counters, a.flag('json'));
  }
  const sets = a.str('ipset');
  const objects = sets === undefined ? undefined : { ipsets: ipsetNames(parseIpsetSave(readInput(sets), inputName(sets))) };
  const rs = rulesWithChanges({ file: inputName(file), text: readInput(file) }, changes.map((c) => ({ file: inputName(c), text: readInput(c) })), {
    family: parseFamily(a.str('family')), backend: parseBackend(a.str('backend')), noflush: a.flag('noflush'), counters, objects,
  });
  for (const w of rs.warnings) process.stderr.write(`${w.file}:${w.pos ? `${w.pos.line}:${w.pos.col}:` : ''} warning: ${w.message}\n`);
  if (rs.unknownExtensions.length) {
    process.stderr.write(`nfvm: kept verbatim without semantics: ${rs.unknownExtensions.join(', ')}\n`);
  }
  if (!a.flag('json')) return saveChunks(rs, { counters });
  return jsonPieces({
    schema: 1,
    file: inputName(file),
    family: rs.family,
    tables: rulesetJson(rs),
    warnings: rs.warnings.map((w) => ({ file: w.file, line: w.pos?.line ?? null, col: w.pos?.col ?? null, message: w.message })),
    unknownExtensions: rs.unknownExtensions,
    text: new JsonText(() => saveChunks(rs, { counters })),
  });
}

/** The largest file `--among-src-file`/`--among-dst-file` may name (ebtables reads it whole). */
const AMONG_FILE_MAX = 1 << 20;

/** `nfvm save --family bridge`: ebtables-save text through the ebtables parser and printer. */
function saveBridge(file: string, counters: boolean, json: boolean): string {
  const base = file === '-' ? process.cwd() : dirname(file);
  const readFile = (path: string): string => {
    let text: string;
    try {
      text = readInput(resolve(base, path));
    } catch {
      throw new ExtError(`cannot read ${path}`, 'io');
    }
    if (text.length > AMONG_FILE_MAX) throw new ExtError(`${path} is larger than ${AMONG_FILE_MAX} bytes`, 'io');
    return text;
  };
  const rs = parseEbtRestore(readInput(file), { file: inputName(file), readFile });
  const text = saveEbtRuleset(rs, { counters });
  if (!json) return text;
  const tables: Record<string, unknown> = {};
  for (const t of rs.tables.values()) {
    tables[t.name] = [...t.chains.values()].map((c) => ({
      name: c.name,
      builtin: c.builtin,
      policy: c.policy,
      rules: c.rules.length,
    }));
  }
  return jsonDoc({ schema: 1, file: inputName(file), family: 'bridge', tables, warnings: [], unknownExtensions: [], text });
}
