/**
 * Input and output of the commands: reading a file or stdin (`-`) with the
 * error every command prints for it, and the terminal checks (colour,
 * progress) made in one place.
 */
import { constants, isAscii } from 'node:buffer';
import { readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { NfvmError } from '../core/errors.js';
import { bigInput } from './v8-flags.js';

/** Bytes of the longest input read as one text (V8's longest string: a byte is at least one character). */
const MAX_INPUT = constants.MAX_STRING_LENGTH;

/** The text of `file` (`-`: stdin); a file that cannot be read is an 'io' NfvmError. */
export function readInput(file: string): string {
  const tooLong = (n?: number) =>
    new NfvmError('io', n === undefined ? `longer than the ${MAX_INPUT} bytes nfvm reads as one text` : `${n} bytes, more than the ${MAX_INPUT} nfvm reads as one text`, inputName(file), undefined, undefined);
  if (file !== '-') {
    let size = 0;
    try {
      const st = statSync(file);
      size = st.isFile() ? st.size : 0;
    } catch {
      // readFileSync below says why
    }
    if (size > MAX_INPUT) throw tooLong(size);
  }
  try {
    const b = file === '-' ? readStdin(() => tooLong()) : readFileSync(file);
    if (b.length > MAX_INPUT) throw tooLong(b.length);
    bigInput(b.length);
    // ASCII (nearly every ruleset) is its own Latin-1: a copy instead of a UTF-8 decode (a third of the time on a 35 MB dump)
    return b.toString(isAscii(b) ? 'latin1' : 'utf8');
  } catch (e) {
    if (e instanceof NfvmError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new NfvmError('io', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? (e as Error).message})`, file, undefined, undefined);
  }
}

/** Standard input to its end, refused (`tooLong()`) as soon as it is longer than MAX_INPUT: a pipe has no size to ask first. */
function readStdin(tooLong: () => Error): Buffer {
  const chunks: Buffer[] = [];
  const chunk = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      // a non-blocking descriptor with nothing yet: wait for the writer
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if ((e as NodeJS.ErrnoException).code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    total += n;
    if (total > MAX_INPUT) throw tooLong();
    // a copy of what was read: a pipe gives a few KiB at a time, the read buffer is reused
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
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

/** Characters of a piece of a long output (linePieces, cli/json.ts jsonPieces), at least: the last may be shorter. */
export const PIECE_CHARS = 1 << 16;

/** Lines, each with its newline, in pieces of PIECE_CHARS. */
export function* linePieces(lines: Iterable<string>): Generator<string> {
  let buf = '';
  for (const l of lines) {
    buf += `${l}\n`;
    if (buf.length >= PIECE_CHARS) {
      yield buf;
      buf = '';
    }
  }
  if (buf !== '') yield buf;
}

/** An output as one string (what writeOutput writes; for callers that read it, tests among them). */
export function outputText(out: Output): string {
  return typeof out === 'string' ? out : [...out].join('');
}

/**
 * Writes a command's output to stdout; stops early when the reader has gone
 * (EPIPE ends the process quietly). Pieces go straight to the descriptor:
 * through the stream, every piece after the first would wait in its queue
 * until the command returns (the whole output in memory, 90 MB more for the
 * listing of a 100,000-rule ruleset into a pipe); written here, a slow
 * reader holds the command back instead.
 */
export function writeOutput(out: Output): void {
  if (typeof out === 'string') {
    process.stdout.write(out);
    return;
  }
  for (const chunk of out) {
    if (!writeAll(1, chunk)) return;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** All of `text` to `fd`; false when the reader has gone (EPIPE). */
function writeAll(fd: number, text: string): boolean {
  const b = Buffer.from(text, 'utf8');
  for (let at = 0; at < b.length; ) {
    try {
      at += writeSync(fd, b, at);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // a non-blocking pipe that is full: wait for the reader
      if (code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (code === 'EPIPE') return false;
      throw e;
    }
  }
  return true;
}
