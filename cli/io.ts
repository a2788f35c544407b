/**
 * Input and output of the commands: reading a file or stdin (`-`) with the
 * error every command prints for it, and the terminal checks (colour,
 * progress) made in one place.
 */
import { isAscii } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { NfvmError } from '../core/errors.js';

/** The text of `file` (`-`: stdin); a file that cannot be read is an 'io' NfvmError. */
export function readInput(file: string): string {
  try {
    const b = file === '-' ? readFileSync(0) : readFileSync(file);
    // ASCII (nearly every ruleset) is its own Latin-1: a copy instead of a UTF-8 decode (a third of the time on a 35 MB dump)
    return b.toString(isAscii(b) ? 'latin1' : 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NfvmError('io', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? (e as Error).message})`, file, undefined, undefined);
  }
}

/** The name a file goes by in messages (`<stdin>` for `-`). */
export function inputName(file: string): string {
  return file === '-' ? '<stdin>' : file;
}

/** Colour on stdout: only on a terminal, never under --json; NO_COLOR and FORCE_COLOR respected. */
export function useColour(json: boolean): boolean {
  if (json || process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return process.stdout.isTTY === true && process.env.TERM !== 'dumb';
}

/**
 * What a command prints: one string, or (for big outputs) its pieces in
 * order. A command returns pieces only once everything that can fail has
 * run, so that an error never leaves half an output behind.
 */
export type Output = string | Iterable<string>;

/** Writes a command's output to stdout; stops early when the reader has gone (EPIPE ends the process quietly). */
export function writeOutput(out: Output): void {
  if (typeof out === 'string') {
    process.stdout.write(out);
    return;
  }
  for (const chunk of out) {
    if (process.stdout.destroyed) return;
    process.stdout.write(chunk);
  }
}
