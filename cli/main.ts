/**
 * The `nfvm` command.
 *
 * Exit codes follow iptables: 0 success, 1 other problem, 2 bad input or
 * usage (PARAMETER_PROBLEM). Every error on input is printed as
 * `file:line:col: reason` and nothing is written to stdout on failure.
 * Output cut short by its reader (`nfvm save big.txt | head`) ends quietly.
 */
import { NfvmError } from '../core/errors.js';
import { outOfMemory } from '../core/heap.js';
import { NFVM_VERSION } from '../compiler/save.js';
import { CaptureError } from '../hooks/snapshot/capture.js';
import { UsageError, type CommandSpec } from './args.js';
import { SAVE, cmdSave } from './save.js';
import { DISASM, cmdDisasm } from './disasm.js';
import { SNAPSHOT, cmdSnapshot } from './snapshot.js';
import { TRACE, cmdTrace } from './trace.js';
import { REPLAY, cmdReplay } from './replay.js';
import { isReplayWorker, replayWorker } from './replay-workers.js';
import { writeOutput, type Output } from './io.js';
import { DIFF, cmdDiff } from './diff.js';
import { FUZZ, cmdFuzz } from './fuzz.js';
import { GEN, cmdGen } from './gen.js';
import { BENCH, cmdBench } from './bench.js';

/** A command's output, and its exit status when not 0 (diff: 1 when differences were found). */
type CommandResult = Output | { out: string; code: number };

const COMMANDS: ReadonlyMap<string, { spec: CommandSpec; run: (argv: readonly string[]) => CommandResult }> = new Map<string, { spec: CommandSpec; run: (argv: readonly string[]) => CommandResult }>([
  ['save', { spec: SAVE, run: cmdSave }],
  ['disasm', { spec: DISASM, run: cmdDisasm }],
  ['snapshot', { spec: SNAPSHOT, run: cmdSnapshot }],
  ['trace', { spec: TRACE, run: cmdTrace }],
  ['replay', { spec: REPLAY, run: cmdReplay }],
  ['fuzz', { spec: FUZZ, run: cmdFuzz }],
  ['diff', { spec: DIFF, run: cmdDiff }],
  ['gen', { spec: GEN, run: cmdGen }],
  ['bench', { spec: BENCH, run: cmdBench }],
]);

const USAGE = `nfvm ${NFVM_VERSION}: a kernel-faithful model of Linux packet filtering

Usage:
${[...COMMANDS.values()].map((c) => c.spec.usage).join('\n')}
Options:
  -h, --help       this text (nfvm COMMAND --help: that command's)
  -V, --version    print the version

Exit codes: 0 ok, 1 other problem, 2 bad input or usage.
`;

export function main(argv: readonly string[]): number {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        return 0;
      case 'help': {
        const c = rest[0] === undefined ? undefined : COMMANDS.get(rest[0]);
        if (rest[0] !== undefined && !c) throw new UsageError(`unknown command "${rest[0]}" (try nfvm --help)`);
        process.stdout.write(c ? c.spec.usage : USAGE);
        return 0;
      }
      case '-V':
      case '--version':
        process.stdout.write(`nfvm ${NFVM_VERSION}\n`);
        return 0;
    }
    const c = COMMANDS.get(cmd);
    if (!c) throw new UsageError(`unknown command "${cmd}" (try nfvm --help)`);
    const r = c.run(rest);
    if (typeof r === 'string' || !('code' in r)) {
      writeOutput(r);
      return 0;
    }
    writeOutput(r.out);
    return r.code;
  } catch (e) {
    if (e instanceof NfvmError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    if (e instanceof CaptureError) {
      process.stderr.write(`nfvm: ${e.message}\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`nfvm: ${e.message}\n`);
      return 2;
    }
    const oom = outOfMemory(e);
    if (oom !== undefined) {
      process.stderr.write(`nfvm: out of memory: ${oom} (the input needs more memory than this machine or Node.js gives)\n`);
      return 2;
    }
    process.stderr.write(`nfvm: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

/**
 * A reader that went away (EPIPE: `| head`) ends the command quietly; the
 * exit status is the command's (0 when it had finished).
 */
function quietOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw e;
  });
}

if (isReplayWorker()) {
  // A worker thread of `nfvm replay --workers N` (the bundle loads itself).
  replayWorker();
} else {
  quietOnBrokenPipe(process.stdout);
  quietOnBrokenPipe(process.stderr);
  process.exitCode = main(process.argv.slice(2));
}
