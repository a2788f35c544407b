/**
 * `nfvm disasm FILE`: each table compiled to nfvm's bytecode, every rule in
 * `nft --debug=netlink` notation (vm/disasm.ts); with --json, per rule its
 * iptables-save text and its expression lines.
 */
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRule } from '../compiler/save.js';
import type { Family, Ruleset, TableName } from '../core/ast.js';
import { compileTable, type CompileOptions, type CompiledTable, type RuleInfo, type RuleInfos } from '../compiler/compile.js';
import { disasm, disasmChunks, disasmRuleAt, disasmSets } from '../vm/disasm.js';
import type { Program } from '../vm/program.js';
import { ruleOffsets } from '../vm/program.js';
import { parseBackend, parseCommand, parseFamily, UsageError, type CommandSpec } from './args.js';
import { inputName, readInput, type Output } from './io.js';
import { jsonDoc, jsonPieces } from './json.js';
import { parseEbtRestore } from '../compiler/ebt/restore.js';
import { saveEbtRule } from '../compiler/ebt/save.js';
import { compileEbtTable, type EbtCompiledTable } from '../compiler/ebt/compile.js';
import type { EbtTableName } from '../core/ebt-ast.js';

export const DISASM: CommandSpec = {
  name: 'disasm',
  usage: `  nfvm disasm FILE [--family ip|ip6|bridge] [--table T] [--backend nft|legacy] [--optimize=0|1] [--json]
      Compile the file's tables (or table T) to VM bytecode and print each
      rule in \`nft --debug=netlink\` notation. --family bridge reads
      ebtables-save text and compiles it as ebtables-nft loads it (backend
      nft, the only one for the bridge). backend legacy (default) keeps
      x_tables semantics; nft emits what iptables-nft emits. --optimize=1
      puts a classifier (\`classify\`) before each run of 16 or more simple
      rules, as the engines run it (legacy backend); 0 (default) does not.
      --json prints the listing as one JSON document.
`,
  options: { family: { type: 'string' }, table: { type: 'string' }, backend: { type: 'string' }, optimize: { type: 'string' }, json: { type: 'boolean' } },
};

export function cmdDisasm(argv: readonly string[]): Output {
  const a = parseCommand(DISASM, argv);
  if (a.help) return DISASM.usage;
  if (a.positionals.length !== 1) throw new UsageError('disasm takes exactly one FILE (- for stdin)');
  const optimize = a.str('optimize') ?? '0';
  if (optimize !== '0' && optimize !== '1') throw new UsageError(`--optimize takes 0 or 1, not "${optimize}"`);
  const backend = parseBackend(a.str('backend')) ?? 'legacy';
  const file = a.positionals[0]!;
  const name = inputName(file);
  if (a.str('family') === 'bridge') {
    if (a.str('backend') === 'legacy') throw new UsageError('the bridge family compiles as ebtables-nft loads it: --backend nft');
    return disasmBridge(file, a.str('table'), a.flag('json'));
  }
  const family = parseFamily(a.str('family'));
  const table = a.str('table');
  const opts: CompileOptions = { backend, file: name, optimize: optimize === '1' ? 1 : 0 };
  if (a.flag('json')) {
    const { rs, compiled } = compileFile(file, family, table, opts);
    return jsonPieces({ schema: 1, file: name, family: rs.family, backend, optimize: Number(optimize), tables: compiled.map((c) => tableJson(rs, c)) });
  }
  // the listing needs only the programs: the AST is garbage once compileFile returns, before the text is built
  return listing(compileFile(file, family, table, opts).compiled.map((c) => c.program));
}

/** The programs' listings, separated by a blank line (a program without rules prints nothing). */
function* listing(programs: Program[]): Generator<string> {
  let first = true;
  for (const p of programs) {
    let started = false;
    for (const piece of disasmChunks(p)) {
      if (!started) {
        if (!first) yield '\n';
        started = true;
        first = false;
      }
      yield piece;
    }
  }
}

/** The file's tables (or table `table`) parsed and compiled. */
function compileFile(file: string, family: Family | undefined, table: string | undefined, opts: CompileOptions): { rs: Ruleset; compiled: CompiledTable[] } {
  const rs = parseRestore(readInput(file), { family, file: opts.file });
  const tables = table !== undefined ? [table] : [...rs.tables.keys()];
  const compiled: CompiledTable[] = [];
  for (const t of tables) {
    if (!rs.tables.has(t as TableName)) throw new UsageError(`table ${t} is not in ${opts.file}`);
    compiled.push(compileTable(rs, t as TableName, opts));
  }
  return { rs, compiled };
}

/** A compiled table: its chains in declaration order, each rule with its text and expression lines. */
function tableJson(rs: Ruleset, c: CompiledTable) {
  const ast = rs.tables.get(c.program.table as TableName)!;
  return chainsJson(ast.name, ast.chains.keys(), c.program, c.rules, (info) => {
    const r = ast.chains.get(info.chain)?.rules[info.num - 1];
    return r ? saveRule(rs.family, info.chain, r, false) : '';
  });
}

/** The chains of a program in `names` order, each rule with `text(rule)` and its expression lines. */
function chainsJson(table: string, names: Iterable<string>, prog: Program, rules: RuleInfos, text: (info: RuleInfo) => string) {
  const offs = ruleOffsets(prog);
  const chains = new Map<string, { name: string; rules: { num: number; rule: string; expr: string[] }[] }>();
  for (const name of names) chains.set(name, { name, rules: [] });
  rules.forEach((info, i) => {
    chains.get(info.chain)?.rules.push({
      num: info.num,
      rule: text(info),
      expr: offs[i]! < 0 ? [] : disasmRuleAt(prog, offs[i]!).flatMap((l) => l.split('\n')).map((l) => l.trim()),
    });
  });
  return { name: table, chains: [...chains.values()] };
}

/** `nfvm disasm --family bridge`: each ebtables table as ebtables-nft's nf_tables rules. */
function disasmBridge(file: string, table: string | undefined, json: boolean): string {
  const name = inputName(file);
  const rs = parseEbtRestore(readInput(file), { file: name });
  const tables = table !== undefined ? [table] : [...rs.tables.keys()];
  const compiled: EbtCompiledTable[] = [];
  for (const t of tables) {
    if (!rs.tables.has(t as EbtTableName)) throw new UsageError(`table ${t} is not in ${name}`);
    compiled.push(compileEbtTable(rs, t as EbtTableName, { file: name }));
  }
  // per table its anonymous sets (among's), then its rules, as nft --debug=netlink lists them
  if (!json) return compiled.map((c) => disasmSets(c.program) + disasm(c.program)).filter((t) => t !== '').join('\n');
  return jsonDoc({
    schema: 1, file: name, family: 'bridge', backend: 'nft', optimize: 0,
    tables: compiled.map((c) => {
      const ast = rs.tables.get(c.program.table as EbtTableName)!;
      return chainsJson(ast.name, ast.chains.keys(), c.program, c.rules, (info) => {
        const r = ast.chains.get(info.chain)?.rules[info.num - 1];
        return info.kind === 'rule' && r ? saveEbtRule(info.chain, r, false) : '';
      });
    }),
  });
}
