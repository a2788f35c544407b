/**
 * Splitting one iptables-restore line into arguments.
 *
 * This follows iptables' `add_param_to_argv()` (iptables/xshared.c, 1.8.x):
 *  - blanks (space, tab) separate arguments; runs of blanks are one separator;
 *  - a double quote opens a quoted section; inside it a backslash escapes the
 *    next character and the next unescaped double quote closes the section AND
 *    ends the argument (`"a b"c` is two arguments, `a b` and `c`);
 *  - outside quotes a backslash and a single quote are ordinary characters;
 *  - `""` is an empty argument;
 *  - an argument may hold at most 1023 bytes ("Parameter too long!").
 * A quote left open at the end of the line is an error here (iptables would
 * silently take the rest of the line, which is never what the user meant).
 */
import { NfvmError } from '../../core/errors.js';

export interface Arg {
  /** The argument with quotes removed and escapes applied. */
  text: string;
  /** 1-based column where the argument starts in the line. */
  col: number;
  /** True when any part of the argument was quoted. */
  quoted: boolean;
}

/**
 * A flat copy of a string sliced from the input text (V8 slices strings of
 * 13 characters or more: the slice keeps the whole input alive, 15 MB for a
 * 100,000-rule dump, and a Map lookup with it is several times slower,
 * since V8 hashes it again each time: measured about 1 µs against 0.15 µs).
 * What the AST keeps of a line (chain names, long option arguments) is made
 * flat once. Short strings are never sliced.
 */
export function flat(s: string): string {
  if (s.length < 13) return s;
  // through one reused buffer as Latin-1: a fresh flat string, twice as fast as a JSON round trip; a
  // string with a character above U+00FF comes back changed and is copied the slow way
  if (s.length <= FLAT_BUF.length) {
    const c = FLAT_BUF.toString('latin1', 0, FLAT_BUF.write(s, 0, 'latin1'));
    if (c === s) return c;
  }
  return JSON.parse(JSON.stringify(s)) as string;
}

const FLAT_BUF = Buffer.allocUnsafe(1024);

/** iptables' xt_param_buf holds 1024 bytes including the terminating NUL. */
const PARAM_MAX = 1023;

export function splitArgs(line: string, lineNo: number, file: string, startCol = 1): Arg[] {
  const out = new FreshArgs();
  split(line, lineNo, file, startCol, out);
  return out.list;
}

/**
 * splitArgs() for a caller that is done with the arguments before its next
 * call (the restore loop: one command line at a time): the Arg objects are
 * reused from line to line, so a 100,000-line input does not make a million
 * of them. The array is fresh; the objects in it change on the next call.
 */
export function splitArgsReused(line: string, lineNo: number, file: string, startCol = 1): Arg[] {
  REUSED.n = 0;
  split(line, lineNo, file, startCol, REUSED);
  return REUSED.list.slice(0, REUSED.n);
}

/** Where split() puts the arguments. */
interface ArgSink {
  add(text: string, col: number, quoted: boolean): void;
}

class FreshArgs implements ArgSink {
  readonly list: Arg[] = [];
  add(text: string, col: number, quoted: boolean): void {
    this.list.push({ text, col, quoted });
  }
}

class ReusedArgs implements ArgSink {
  readonly list: Arg[] = [];
  n = 0;
  add(text: string, col: number, quoted: boolean): void {
    const a = this.list[this.n];
    if (a === undefined) this.list.push({ text, col, quoted });
    else {
      a.text = text;
      a.col = col;
      a.quoted = quoted;
    }
    this.n++;
  }
}

const REUSED = new ReusedArgs();

/** Drops what the reused arguments still point at (the last line's text, which holds the whole input). */
export function releaseReusedArgs(): void {
  for (const a of REUSED.list) a.text = '';
  REUSED.n = 0;
}

function split(line: string, lineNo: number, file: string, startCol: number, out: ArgSink): void {
  // Fast path: no quote anywhere, so arguments are plain blank-separated slices.
  let nextQuote = line.indexOf('"');
  if (nextQuote < 0) return splitPlain(line, lineNo, file, startCol, out);
  const col0 = startCol - 1;
  const n = line.length;
  // blanks are only spaces and no backslash escapes anything (every saved ruleset): the words
  // and quoted sections are found with indexOf() rather than character by character
  const simple = line.indexOf('\t') < 0 && line.indexOf('\n') < 0 && line.indexOf('\\') < 0;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10) {
      i++;
      continue;
    }
    // one argument: unquoted runs and quoted sections, until a blank outside quotes or a closing quote
    const start = i;
    if (simple) {
      if (nextQuote >= 0 && nextQuote < i) nextQuote = line.indexOf('"', i);
      let blank = line.indexOf(' ', i);
      if (blank < 0) blank = n;
      if (nextQuote < 0 || nextQuote > blank) {
        // a word without a quote
        if (blank - i > PARAM_MAX) {
          throw new NfvmError('syntax', 'Parameter too long!', file, { line: lineNo, col: col0 + start + 1 }, line.slice(start, start + 40));
        }
        out.add(line.slice(i, blank), col0 + start + 1, false);
        i = blank;
        continue;
      }
      // a quote before the next blank: what precedes it, then the quoted section up to the next quote
      const close = line.indexOf('"', nextQuote + 1);
      if (close < 0) throw new NfvmError('syntax', 'unterminated quote', file, { line: lineNo, col: col0 + nextQuote + 1 }, '"');
      const text = i === nextQuote ? line.slice(nextQuote + 1, close) : line.slice(i, nextQuote) + line.slice(nextQuote + 1, close);
      if (text.length > PARAM_MAX) {
        throw new NfvmError('syntax', 'Parameter too long!', file, { line: lineNo, col: col0 + start + 1 }, text.slice(0, 40));
      }
      out.add(text, col0 + start + 1, true);
      i = close + 1;
      nextQuote = line.indexOf('"', i);
      continue;
    }
    let text = '';
    let quoted = false;
    let seg = i;
    for (;;) {
      if (i >= n || c === 32 || c === 9 || c === 10) {
        text += line.slice(seg, i);
        break;
      }
      if (c === 34) {
        // a quoted section: a backslash escapes the next character, the next unescaped quote ends the argument
        text += line.slice(seg, i);
        quoted = true;
        const quoteCol = i;
        i++;
        seg = i;
        for (;;) {
          if (i >= n) throw new NfvmError('syntax', 'unterminated quote', file, { line: lineNo, col: col0 + quoteCol + 1 }, '"');
          c = line.charCodeAt(i);
          if (c === 92) {
            if (i + 1 >= n) throw new NfvmError('syntax', 'unterminated quote', file, { line: lineNo, col: col0 + quoteCol + 1 }, '"');
            text += line.slice(seg, i);
            seg = i + 1;
            i += 2;
            continue;
          }
          if (c === 34) break;
          i++;
        }
        text += line.slice(seg, i);
        i++;
        break;
      }
      i++;
      c = line.charCodeAt(i);
    }
    if (text.length > PARAM_MAX) {
      throw new NfvmError('syntax', 'Parameter too long!', file, { line: lineNo, col: col0 + start + 1 }, text.slice(0, 40));
    }
    out.add(text, col0 + start + 1, quoted);
  }
}

function splitPlain(line: string, lineNo: number, file: string, startCol: number, out: ArgSink): void {
  const n = line.length;
  // only spaces separate: each word ends at the next one (indexOf), not found character by character
  const spaces = line.indexOf('\t') < 0 && line.indexOf('\n') < 0;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10) {
      i++;
      continue;
    }
    const start = i;
    if (spaces) {
      i = line.indexOf(' ', i);
      if (i < 0) i = n;
    } else {
      do {
        i++;
        c = line.charCodeAt(i);
      } while (i < n && c !== 32 && c !== 9 && c !== 10);
    }
    if (i - start > PARAM_MAX) {
      throw new NfvmError('syntax', 'Parameter too long!', file, { line: lineNo, col: startCol + start }, line.slice(start, start + 40));
    }
    out.add(line.slice(start, i), startCol + start, false);
  }
}
