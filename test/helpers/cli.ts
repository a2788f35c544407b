/**
 * The nfvm command as users run it: the executable and the bundle beside it
 * as `node build.mjs` lays them out in dist/ (bundle.mjs), built once per
 * test file into a temporary directory, and ways to run it: as a child
 * process, behind a shell pipe, on a pseudo-terminal (script(1)).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleCli } from '../../bundle.mjs';
import { have } from './kernel.js';

export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Builds the command into `dir` (a fresh temporary directory by default);
 * returns the executable's path. Without the code cache unless `warm` (it
 * changes only how fast the command starts: test/cli/code-cache.test.ts).
 */
export async function buildCli(dir = mkdtempSync(join(tmpdir(), 'nfvm-cli-bundle-')), warm = false): Promise<string> {
  return bundleCli(dir, { warm, sourcemap: false });
}

/** Runs the bundle with `args` (stdin `input`), no colour. */
export function runCli(cli: string, args: readonly string[], input?: string): CliRun {
  const r = spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** The command line that runs the bundle, quoted for sh. */
export function cliCommand(cli: string, args: readonly string[]): string {
  return [process.execPath, cli, ...args].map(q).join(' ');
}

/** `sh -c SCRIPT`: for pipes (`nfvm save big.txt | head -1`). */
export function sh(script: string): CliRun {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Why the pseudo-terminal runs cannot happen here, or undefined. */
export const NO_PTY = have('script') ? undefined : 'needs script(1) (util-linux) for a pseudo-terminal';

/** Runs `command` (a sh command line) on a pseudo-terminal: what the terminal showed (stdout and stderr together). */
export function onPty(command: string): CliRun {
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
