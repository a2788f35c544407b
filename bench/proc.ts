/**
 * A child process timed from outside: wall seconds, CPU seconds (user +
 * system, from /usr/bin/time; the machine is shared, so CPU time is the
 * steadier figure under load) and peak resident memory. Without
 * /usr/bin/time only the wall time is known.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Timed {
  wall: number;
  /** user + system seconds, NaN without /usr/bin/time */
  cpu: number;
  /** peak resident set in MB, NaN without /usr/bin/time */
  rssMB: number;
  stdout: string;
}

const TIME = '/usr/bin/time';
export const HAVE_TIME = existsSync(TIME);

/** Runs `cmd args` to completion; throws with its stderr when it fails (an exit status not in `ok`). */
export function timed(cmd: string, args: readonly string[], ok: readonly number[] = [0]): Timed {
  const dir = mkdtempSync(join(tmpdir(), 'nfvm-bench-time-'));
  const out = join(dir, 'time');
  try {
    const argv = HAVE_TIME ? [TIME, '-o', out, '-f', '%U %S %M', cmd, ...args] : [cmd, ...args];
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status === null || !ok.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    if (!HAVE_TIME) return { wall, cpu: NaN, rssMB: NaN, stdout: r.stdout };
    const [u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number];
    return { wall, cpu: u + s, rssMB: m / 1024, stdout: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `lo-hi` of the values at `digits` decimals (one value when they agree). */
export function range(xs: readonly number[], digits: number): string {
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}-${hi}`;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
