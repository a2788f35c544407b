/**
 * Capturing a snapshot of the machine (network namespace) nfvm runs in.
 *
 * Runs the commands whose output read.ts reads and writes their output into
 * a fresh directory atomically: everything goes to a temporary directory next
 * to the target, which is renamed into place only when every file is written
 * (nothing half-written on failure). Needs root for the iptables dumps.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface CaptureCommand {
  readonly file: string;
  /** Candidates in order: the first that exists is run. */
  readonly argv: readonly (readonly string[])[];
  /** Missing tool → file skipped (with a note) instead of failing. */
  readonly optional: boolean;
  /** Keep only these lines of the output. */
  readonly filter?: (line: string) => boolean;
}

export const CAPTURE_COMMANDS: readonly CaptureCommand[] = [
  { file: 'iptables-save.txt', argv: [['iptables-save'], ['iptables-legacy-save']], optional: true },
  { file: 'ip6tables-save.txt', argv: [['ip6tables-save'], ['ip6tables-legacy-save']], optional: true },
  { file: 'ip-addr.json', argv: [['ip', '-j', 'addr', 'show']], optional: false },
  { file: 'ip-link.json', argv: [['ip', '-j', '-d', 'link', 'show']], optional: false },
  { file: 'ip-route.json', argv: [['ip', '-j', 'route', 'show', 'table', 'all']], optional: false },
  { file: 'ip6-route.json', argv: [['ip', '-j', '-6', 'route', 'show', 'table', 'all']], optional: false },
  { file: 'ip-rule.json', argv: [['ip', '-j', 'rule', 'show']], optional: false },
  { file: 'ip6-rule.json', argv: [['ip', '-j', '-6', 'rule', 'show']], optional: false },
  // Only net.*: the rest of `sysctl -a` (hostname, random uuid, ...) is not the node's network.
  { file: 'sysctl.txt', argv: [['sysctl', '-a']], optional: true, filter: (l) => l.startsWith('net.') },
];

export class CaptureError extends Error {
  override name = 'CaptureError';
}

export interface RunResult {
  /** undefined when the program does not exist. */
  readonly status: number | null | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

export type Runner = (argv: readonly string[]) => RunResult;

export const defaultRunner: Runner = (argv) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, timeout: 120_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return { status: undefined, stdout: '', stderr: '' };
  if (r.error) throw new CaptureError(`${argv.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

export interface CaptureReport {
  readonly dir: string;
  readonly written: readonly string[];
  /** Files not written, with the reason (a missing optional tool). */
  readonly skipped: readonly { file: string; reason: string }[];
}

/** Captures into `dir`, which must not exist yet. */
export function captureSnapshot(dir: string, run: Runner = defaultRunner): CaptureReport {
  const target = resolve(dir);
  if (existsSync(target)) throw new CaptureError(`${dir}: already exists (the snapshot is written to a new directory)`);
  const outputs = new Map<string, string>();
  const skipped: { file: string; reason: string }[] = [];
  for (const c of CAPTURE_COMMANDS) {
    let done = false;
    for (const argv of c.argv) {
      const r = run(argv);
      if (r.status === undefined) continue;
      // sysctl -a exits non-zero for the odd unreadable key but prints the rest.
      if (r.status !== 0 && !(argv[0] === 'sysctl' && r.stdout !== '')) {
        throw new CaptureError(`${argv.join(' ')} failed (exit ${r.status}): ${r.stderr.trim().split('\n')[0] ?? ''}`);
      }
      let text = r.stdout;
      if (c.filter) text = text.split('\n').filter(c.filter).join('\n') + '\n';
      outputs.set(c.file, text);
      done = true;
      break;
    }
    if (!done) {
      const tools = c.argv.map((a) => a[0]).join(' or ');
      if (!c.optional) throw new CaptureError(`${tools}: not found`);
      skipped.push({ file: c.file, reason: `${tools} not found` });
    }
  }
  const tmp = mkdtempSync(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    for (const [f, t] of outputs) writeFileSync(join(tmp, f), t, { mode: 0o644 });
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new CaptureError(`${dir}: cannot write the snapshot (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return { dir: target, written: [...outputs.keys()], skipped };
}
