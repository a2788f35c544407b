/**
 * A JSON reader that knows where things are: syntax errors carry line:col,
 * and every member's position is kept so that shape errors can point at the
 * offending key. Objects are null-prototype (no prototype pollution), nesting
 * is bounded (MAX_DEPTH), and the scanner is iterative over strings/numbers.
 */
import { NfvmError, type SourcePos } from '../../core/errors.js';

export const MAX_DEPTH = 64;

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Positions of members: object/array → key (or index) → position of the key (or element). */
export type JsonPositions = WeakMap<object, Map<string | number, SourcePos>>;

export interface JsonDoc {
  readonly value: JsonValue;
  readonly file: string;
  readonly positions: JsonPositions;
}

export function parseJson(text: string, file: string): JsonDoc {
  const positions: JsonPositions = new WeakMap();
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (at = i): SourcePos => ({ line, col: at - lineStart + 1 });
  const err = (reason: string, at = i): never => {
    const tok = at < text.length ? text[at] : undefined;
    throw new NfvmError('syntax', reason, file, pos(at), tok);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 10) { i++; line++; lineStart = i; }
      else if (c === 32 || c === 9 || c === 13) i++;
      else return;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) err('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 34) { i++; return out; }
      if (c < 0x20) err('control character in string');
      if (c === 92) {
        const e = text[i + 1];
        const map: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e === 'u') {
          const h = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) err('bad \\u escape');
          out += String.fromCharCode(parseInt(h, 16));
          i += 6;
        } else if (e !== undefined && Object.hasOwn(map, e)) {
          out += map[e];
          i += 2;
        } else err('bad escape');
      } else {
        out += text[i];
        i++;
      }
    }
  };
  const num = (): number => {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = i;
    const r = m.exec(text);
    if (!r) return err('unexpected character');
    i += r[0].length;
    return Number(r[0]);
  };
  const lit = (word: string, v: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) { i += word.length; return v; }
    return err('unexpected character');
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) err(`nesting deeper than ${MAX_DEPTH}`);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: JsonObject = Object.create(null) as JsonObject;
      const pm = new Map<string | number, SourcePos>();
      positions.set(o, pm);
      ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws();
        if (text[i] !== '"') err('expected a string key');
        const kp = pos();
        const k = str();
        ws();
        if (text[i] !== ':') err('expected ":"');
        i++;
        o[k] = value(depth + 1);
        pm.set(k, kp);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return o; }
        err('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const a: JsonValue[] = [];
      const pm = new Map<string | number, SourcePos>();
      positions.set(a, pm);
      ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        ws();
        pm.set(a.length, pos());
        a.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return a; }
        err('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    if (c === 't') return lit('true', true);
    if (c === 'f') return lit('false', false);
    if (c === 'n') return lit('null', null);
    if (c === undefined) return err('unexpected end of input');
    return num();
  };
  const v = value(0);
  ws();
  if (i < text.length) err('trailing characters after the JSON value');
  return { value: v, file, positions };
}

/** A cursor into a JsonDoc for shape checks that report the offending key and its position. */
export class JsonPath {
  constructor(
    readonly doc: JsonDoc,
    readonly path: string,
    readonly pos: SourcePos | undefined,
  ) {}

  fail(reason: string): never {
    throw this.error(reason);
  }

  error(reason: string): NfvmError {
    return new NfvmError('value', `${this.path || '(top level)'}: ${reason}`, this.doc.file, this.pos, this.path.split('.').pop());
  }

  child(container: object, key: string | number): JsonPath {
    const p = this.doc.positions.get(container)?.get(key);
    const path = typeof key === 'number' ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key;
    return new JsonPath(this.doc, path, p ?? this.pos);
  }
}

export function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------
// Shape helpers: each takes the path of the value for its error message.

/** The objects of a JSON array, each with its index (an error at any other value). */
export function* objects(root: JsonPath, items: JsonValue[]): Generator<[number, JsonObject]> {
  for (let i = 0; i < items.length; i++) {
    const o = items[i];
    if (!isObject(o)) throw root.child(items, i).error('expected an object');
    yield [i, o];
  }
}

/** A string value, or an error at its key. */
export function str(p: JsonPath, v: JsonValue | undefined): string {
  if (typeof v !== 'string') throw p.error(v === undefined ? 'missing' : 'expected a string');
  return v;
}

/** An integer value in [min, max], or an error at its key. */
export function int(p: JsonPath, v: JsonValue | undefined, min = 0, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw p.error(v === undefined ? 'missing' : 'expected an integer');
  if (v < min || v > max) throw p.error(`out of range (${min}..${max})`);
  return v;
}

/** "0x4000" / "16384" / 16384 → number. */
export function u32(p: JsonPath, v: JsonValue | undefined): number {
  if (typeof v === 'number') return int(p, v);
  const s = str(p, v);
  if (!/^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(s)) throw p.error(`expected a number, got "${s}"`);
  const n = Number(s);
  if (n > 0xffffffff) throw p.error('out of range');
  return n;
}

/** An optional array of strings (empty when absent). */
export function strList(p: JsonPath, o: JsonObject, key: string): string[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw p.child(o, key).error('expected an array of strings');
  return v.map((x, i) => str(p.child(o, key).child(v, i), x));
}
