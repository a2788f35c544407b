/**
 * The `nfvm` command.
 *
 * Exit codes follow iptables: 0 success, 1 other problem, 2 bad input or
 * usage (PARAMETER_PROBLEM). Every error on input is printed as
 * `file:line:col: reason` and nothing is written to stdout on failure.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { NfvmError } from '../core/errors.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset, NFVM_VERSION } from '../compiler/save.js';
import type { Family, TableName } from '../core/ast.js';
import { compileTable } from '../compiler/compile.js';
import { disasm } from '../vm/disasm.js';
import { captureSnapshot, CaptureError } from '../hooks/snapshot/capture.js';
import { readSnapshot } from '../hooks/snapshot/read.js';
import { CliUsageError, TRACE_USAGE, cmdTrace } from './trace.js';
import { REPLAY_USAGE, cmdReplay } from './replay.js';

const USAGE = `nfvm ${NFVM_VERSION}: a kernel-faithful model of Linux packet filtering

Usage:
  nfvm save FILE [--family ip|ip6] [-c|--counters]
      Parse an iptables-save/iptables-restore file (- for stdin), apply the
      kernel's load-time checks and print it exactly as iptables-save would.

  nfvm disasm FILE [--family ip|ip6] [--table T] [--backend nft|legacy] [--optimize=0|1]
      Compile the file's tables (or table T) to VM bytecode and print each
      rule in \`nft --debug=netlink\` notation. backend legacy (default) keeps
      x_tables semantics; nft emits what iptables-nft emits. --optimize=1
      puts a classifier (\`classify\`) before each run of 16 or more simple
      rules, as the engines run it (legacy backend); 0 (default) does not.

  nfvm snapshot DIR
      Capture this machine's (network namespace's) node snapshot into the new
      directory DIR, as root: iptables-save, ip6tables-save, ip -j addr/link/
      route/rule (both families) and the net.* sysctls; written atomically,
      then read back and summarised.

${TRACE_USAGE}
${REPLAY_USAGE}
Options:
  -h, --help       this text
  -V, --version    print the version

Exit codes: 0 ok, 1 other problem, 2 bad input or usage.
`;

class UsageError extends Error {}

function readInput(file: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NfvmError('io', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? (e as Error).message})`, file, undefined, undefined);
  }
}

function family(v: string | undefined): Family {
  if (v === undefined || v === 'ip' || v === 'ipv4' || v === '4') return 'ip';
  if (v === 'ip6' || v === 'ipv6' || v === '6') return 'ip6';
  throw new UsageError(`unknown family "${v}" (expected ip or ip6)`);
}

function cmdSave(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      family: { type: 'string' },
      counters: { type: 'boolean', short: 'c' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('save takes exactly one FILE (- for stdin)');
  const file = positionals[0]!;
  const text = readInput(file);
  const rs = parseRestore(text, { family: family(values.family), file: file === '-' ? '<stdin>' : file, counters: values.counters ?? false });
  for (const w of rs.warnings) process.stderr.write(`${w.file}:${w.pos ? `${w.pos.line}:${w.pos.col}:` : ''} warning: ${w.message}\n`);
  if (rs.unknownExtensions.length) {
    process.stderr.write(`nfvm: kept verbatim without semantics: ${rs.unknownExtensions.join(', ')}\n`);
  }
  return saveRuleset(rs, { counters: values.counters ?? false });
}

function cmdDisasm(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      family: { type: 'string' },
      table: { type: 'string' },
      backend: { type: 'string' },
      optimize: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('disasm takes exactly one FILE (- for stdin)');
  const optimize = values.optimize ?? '0';
  if (optimize !== '0' && optimize !== '1') throw new UsageError(`--optimize takes 0 or 1, not "${optimize}"`);
  const backend = values.backend ?? 'legacy';
  if (backend !== 'legacy' && backend !== 'nft') throw new UsageError(`unknown backend "${backend}" (expected nft or legacy)`);
  const file = positionals[0]!;
  const name = file === '-' ? '<stdin>' : file;
  const rs = parseRestore(readInput(file), { family: family(values.family), file: name });
  const tables = values.table !== undefined ? [values.table] : [...rs.tables.keys()];
  const out: string[] = [];
  for (const t of tables) {
    if (!rs.tables.has(t as TableName)) throw new UsageError(`table ${t} is not in ${name}`);
    const { program } = compileTable(rs, t as TableName, { backend, file: name, optimize: optimize === '1' ? 1 : 0 });
    const text = disasm(program);
    if (text) out.push(text);
  }
  return out.join('\n');
}

function cmdSnapshot(argv: string[]): string {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('snapshot takes exactly one DIR (a directory to create)');
  const rep = captureSnapshot(positionals[0]!);
  for (const s of rep.skipped) process.stderr.write(`nfvm: ${s.file} not captured: ${s.reason}\n`);
  const node = readSnapshot(rep.dir);
  const routes = (f: typeof node.fib4) => [...f.tables.values()].reduce((n, t) => n + t.size, 0);
  return `${positionals[0]}: ${rep.written.join(' ')}\n` +
    `${node.links.size} links, ${node.addresses.length} addresses, ${routes(node.fib4)}+${routes(node.fib6)} routes, ` +
    `${node.fib4.rules.length}+${node.fib6.rules.length} rules, iptables backend ${node.iptables?.backend ?? 'unknown'}\n`;
}

export function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  try {
    let out: string;
    switch (cmd) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      case '-V':
      case '--version':
        process.stdout.write(`nfvm ${NFVM_VERSION}\n`);
        return 0;
      case 'save':
        out = cmdSave(rest);
        break;
      case 'disasm':
        out = cmdDisasm(rest);
        break;
      case 'snapshot':
        out = cmdSnapshot(rest);
        break;
      case 'trace':
        out = cmdTrace(rest);
        break;
      case 'replay':
        out = cmdReplay(rest);
        break;
      default:
        throw new UsageError(`unknown command "${cmd}" (try nfvm --help)`);
    }
    process.stdout.write(out);
    return 0;
  } catch (e) {
    if (e instanceof NfvmError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    if (e instanceof CaptureError) {
      process.stderr.write(`nfvm: ${e.message}\n`);
      return 1;
    }
    if (e instanceof UsageError || e instanceof CliUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`nfvm: ${(e as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`nfvm: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
