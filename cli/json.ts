/**
 * The ruleset as JSON, for `save --json` and `replay --json` (README
 * "JSON output"): tables in input order, chains in iptables-save order
 * (builtins in hook order, then user chains by name), each rule as
 * iptables-save prints it, with its source line and counters (numbers:
 * exact up to 2^53).
 */
import type { Counters, Ruleset, Table } from '../core/ast.js';
import { chainOrder, saveRule } from '../compiler/save.js';
import { PIECE_CHARS } from './io.js';

export interface RuleJson {
  rule: string;
  line: number;
  packets: number;
  bytes: number;
}

export interface ChainJson {
  name: string;
  builtin: boolean;
  /** ACCEPT / DROP for a builtin chain, null for a user chain. */
  policy: string | null;
  /** The policy's counters (0 for a user chain). */
  packets: number;
  bytes: number;
  rules: RuleJson[];
}

export interface TableJson {
  name: string;
  /** Made a chain at a time as they are written (a 1,000,000-rule table is never held as JSON objects at once). */
  chains: JsonStream<ChainJson>;
}

const num = (c: Counters | undefined) => ({ packets: Number(c?.packets ?? 0n), bytes: Number(c?.bytes ?? 0n) });

export function rulesetJson(rs: Ruleset): TableJson[] {
  return [...rs.tables.values()].map((t) => ({ name: t.name, chains: new JsonStream(() => chainsJson(rs.family, t)) }));
}

function* chainsJson(family: Ruleset['family'], t: Table): Generator<ChainJson> {
  for (const c of chainOrder(t)) {
    yield {
      name: c.name,
      builtin: c.builtin,
      policy: c.builtin ? (c.policy ?? 'ACCEPT') : null,
      ...(c.builtin ? num(c.policyCounters) : num(undefined)),
      rules: c.rules.map((r) => ({ rule: saveRule(family, c.name, r, false), line: r.pos.line, ...num(r.counters) })),
    };
  }
}

/** A --json document: two-space indented, one trailing newline. */
export function jsonDoc(doc: object): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/**
 * An array of a document that jsonPieces() writes an item at a time as
 * `items()` yields them, never holding them all (a conntrack table of
 * millions of entries). JSON.stringify sees the whole array (toJSON).
 * Each item is written whole: an item holding a stream is not streamed.
 */
export class JsonStream<T> {
  constructor(readonly items: () => Iterable<T>) {}
  toJSON(): T[] {
    return [...this.items()];
  }
}

/**
 * A string of a document that jsonPieces() writes a piece at a time as
 * `pieces()` yields them, each escaped as JSON.stringify escapes it (a big
 * ruleset's listing is never one string). JSON.stringify sees the whole
 * string (toJSON). No piece may end inside a surrogate pair.
 */
export class JsonText {
  constructor(readonly pieces: () => Iterable<string>) {}
  toJSON(): string {
    return [...this.pieces()].join('');
  }
}

/**
 * jsonDoc(doc) in pieces, the same text for plain data (a toJSON is called
 * without its key): JsonStreams and arrays of more than
 * `big` items are written an item at a time, in pieces of about 64 KiB, so
 * that a document larger than a string can be (V8: 2^29 characters, about
 * 900,000 conntrack entries) is still written, in memory that does not
 * grow with it.
 */
export function* jsonPieces(doc: object, big = 1024): Generator<string> {
  yield* jsonValue(doc, '', big);
  yield '\n';
}

/** A value JSON.stringify leaves out of an object (and writes as null in an array). */
const omitted = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

function* jsonValue(v: unknown, indent: string, big: number): Generator<string> {
  if (v instanceof JsonText) {
    yield '"';
    for (const p of v.pieces()) yield JSON.stringify(p).slice(1, -1);
    yield '"';
    return;
  }
  if (v instanceof JsonStream || (Array.isArray(v) && holdsStream(v, big))) {
    const inner = `${indent}  `;
    // items that hold no stream go to JSON.stringify a batch at a time, at their depth (itemsText):
    // at most BATCH items, fewer when they are long, so that a batch's text stays under half a piece
    const batch: unknown[] = [];
    let most = 16;
    const whole = v instanceof JsonStream;
    let buf = '';
    let first = true;
    for (const x of whole ? v.items() : (v as unknown[])) {
      if (whole || !holdsStream(x, big)) {
        batch.push(x);
        if (batch.length < most) continue;
      }
      if (batch.length > 0) {
        const text = itemsText(batch, inner);
        most = Math.max(1, Math.min(BATCH, Math.floor((batch.length * PIECE_CHARS) / 2 / text.length)));
        buf += `${first ? '[\n' : ',\n'}${text}`;
        first = false;
        batch.length = 0;
      }
      if (buf.length >= PIECE_CHARS) {
        yield buf;
        buf = '';
      }
      if (whole || !holdsStream(x, big)) continue;
      yield `${buf}${first ? '[\n' : ',\n'}${inner}`;
      buf = '';
      first = false;
      yield* jsonValue(x, inner, big);
    }
    if (batch.length > 0) {
      buf += `${first ? '[\n' : ',\n'}${itemsText(batch, inner)}`;
      first = false;
    }
    yield first ? '[]' : `${buf}\n${indent}]`;
    return;
  }
  if (holdsStream(v, big)) {
    const inner = `${indent}  `;
    let first = true;
    for (const [k, x] of Object.entries(v as object)) {
      const streamed = holdsStream(x, big);
      const text = omitted(x) || streamed ? undefined : JSON.stringify(x, null, 2);
      if (text === undefined && !streamed) continue;
      yield `${first ? '{\n' : ',\n'}${inner}${JSON.stringify(k)}: `;
      first = false;
      if (text === undefined) yield* jsonValue(x, inner, big);
      else yield text.replaceAll('\n', `\n${inner}`);
    }
    yield first ? '{}' : `\n${indent}}`;
    return;
  }
  // JSON text has no newline but its indentation's (a string's is escaped)
  yield JSON.stringify(v, null, 2).replaceAll('\n', `\n${indent}`);
}

/** Items of a streamed array per JSON.stringify call. */
const BATCH = 256;

/**
 * The items of `batch` as jsonDoc() writes them inside an array whose items
 * are indented by `inner` (an even number of spaces): `inner` + item,
 * `,\n` + `inner` + item, ... One JSON.stringify call of the batch nested
 * in as many arrays as put its items at that depth, its wrappers cut off
 * (each wrapper level j adds `[\n` after 2j spaces in front and the same
 * length behind): no per-item call, no re-indenting. What JSON.stringify
 * leaves out of an array it writes as null, as jsonDoc does.
 */
function itemsText(batch: unknown[], inner: string): string {
  let wrapped: unknown = batch;
  const w = inner.length / 2 - 1;
  for (let j = 0; j < w; j++) wrapped = [wrapped];
  const text = JSON.stringify(wrapped, null, 2);
  const cut = (w + 1) * (w + 2);
  return text.slice(cut, text.length - cut);
}

/**
 * Whether `v` is or holds (in a plain object's values or an array's items,
 * at any depth) a JsonStream, a JsonText or an array of more than `big` items: what
 * jsonValue() writes in pieces rather than with JSON.stringify.
 */
function holdsStream(v: unknown, big: number): boolean {
  if (v instanceof JsonStream || v instanceof JsonText) return true;
  if (v === null || typeof v !== 'object' || 'toJSON' in v) return false;
  if (Array.isArray(v)) return v.length > big || v.some((x) => holdsStream(x, big));
  for (const x of Object.values(v)) if (holdsStream(x, big)) return true;
  return false;
}
