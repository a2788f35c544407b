/**
 * The JavaScript heap as a bounded resource. An input that needs more heap
 * than this Node.js allows (a snapshot of millions of rules on a machine, or
 * in a container, whose memory gives V8 a small heap limit) ends in a typed
 * error, exit 2, instead of V8's out-of-memory abort with its native stack
 * trace.
 *
 * The loops that grow with the input (the lines of a ruleset parsed, the
 * rules compiled) call heapCheck() once per item. Every HEAP_CHECK_EVERY
 * calls it reads V8's heap statistics; when less than the margin is left
 * below the heap limit, it collects garbage once (what is in use may be
 * garbage V8 has not collected yet) and throws when the room is still short.
 * Reading the statistics costs a few microseconds: a thousandth of a
 * microsecond per item.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NfvmError, type SourcePos } from './errors.js';

/** Items between two looks at the heap (a few MB of parsed rules at most). */
const HEAP_CHECK_EVERY = 4096;
const MB = 1 << 20;

let calls = 0;
let collect: (() => void) | undefined;

/**
 * The room kept free below the limit: the young generation's (V8 counts its
 * 48 MB in the limit, the old generation may not grow into it), 16 MB for
 * the next HEAP_CHECK_EVERY items and the error's own report, and a sixteenth
 * of the limit (V8 gives up a little before the old generation is full:
 * "ineffective mark-compacts near heap limit").
 */
function margin(limit: number): number {
  return 64 * MB + limit / 16;
}

/** A full collection (V8's gc(), exposed the first time it is needed). */
function fullGc(): void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

/**
 * One item of a loop that grows with the input: every HEAP_CHECK_EVERY
 * calls, heapCheckNow(). `what` says what needs the memory (`parsing the
 * ruleset`), `file` and `line` (0: none) where the input stood when the heap
 * ran short.
 */
export function heapCheck(what: string, file: string, line = 0): void {
  if (++calls < HEAP_CHECK_EVERY) return;
  calls = 0;
  heapCheckNow(what, file, line > 0 ? { line, col: 1 } : undefined);
}

/** Throws NfvmError 'memory' when less than the margin is left below the heap limit, garbage collected. */
function heapCheckNow(what: string, file: string, pos?: SourcePos): void {
  if (roomLeft()) return;
  fullGc();
  if (roomLeft()) return;
  const s = getHeapStatistics();
  const limit = Math.round(s.heap_size_limit / MB);
  throw new NfvmError(
    'memory',
    `${what} needs more memory than this Node.js allows its JavaScript heap (${Math.round(s.used_heap_size / MB)} MB in use, the limit ${limit} MB); ` +
      `a larger heap, e.g. NODE_OPTIONS=--max-old-space-size=${2 * limit}, or a machine with more memory`,
    file,
    pos,
    undefined,
  );
}

function roomLeft(): boolean {
  const s = getHeapStatistics();
  return s.heap_size_limit - s.used_heap_size > margin(s.heap_size_limit);
}

/**
 * The RangeError V8 raises when memory outside the heap runs out (an
 * ArrayBuffer it cannot allocate) or a string would be longer than it can
 * make, as the command line reports it: a typed error, not an internal one.
 * An invalid array length is left an internal error: a negative or absurd
 * length is a bug, not the input's size.
 */
export function outOfMemory(e: unknown): string | undefined {
  if (!(e instanceof RangeError)) return undefined;
  return /Array buffer allocation failed|Invalid string length/.test(e.message) ? e.message : undefined;
}
