/**
 * Typed errors for everything nfvm reads.
 *
 * One primitive, in the acorn style: a `NfvmError` carries the file, the
 * 1-based line and column, the offending token and the reason; `format()`
 * prints it the way compilers do (`rules.txt:14:23: unknown option "--dprot"`).
 * The command line maps every NfvmError to exit code 2.
 */

export interface SourcePos {
  /** 1-based line number in the input. */
  line: number;
  /** 1-based column of the first character of the token. */
  col: number;
}

export type ErrorKind =
  | 'syntax' // the text cannot be tokenised or has the wrong shape
  | 'option' // an unknown, misplaced or malformed option
  | 'value' // an option argument out of range or of the wrong form
  | 'check' // a load-time check the kernel (or iptables-restore) performs
  | 'io' // the input cannot be read
  | 'memory'; // the input needs more memory than the JavaScript heap may take (core/heap.ts)

export class NfvmError extends Error {
  override name = 'NfvmError';
  constructor(
    readonly kind: ErrorKind,
    readonly reason: string,
    readonly file: string,
    readonly pos: SourcePos | undefined,
    readonly token: string | undefined,
  ) {
    super(formatLocated(file, pos, reason));
  }

  format(): string {
    return this.message;
  }
}

function formatLocated(file: string, pos: SourcePos | undefined, reason: string): string {
  if (!pos) return `${file}: ${reason}`;
  return `${file}:${pos.line}:${pos.col}: ${reason}`;
}

/**
 * An error raised by an extension's option parser. It has no position of its
 * own; the rule parser adds the position of the option being parsed.
 */
export class ExtError extends Error {
  override name = 'ExtError';
  constructor(
    reason: string,
    readonly kind: ErrorKind = 'value',
  ) {
    super(reason);
  }
}

/** Throws an ExtError; the `never` return lets callers write `return fail(...)`. */
export function fail(reason: string, kind: ErrorKind = 'value'): never {
  throw new ExtError(reason, kind);
}
