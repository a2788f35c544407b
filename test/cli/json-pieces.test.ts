/**
 * jsonPieces (cli/json.ts): the --json text of jsonDoc written in pieces,
 * byte for byte the same for any document, arrays written an item at a
 * time, and a document longer than a string can be written at all.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsonStream, JsonText, jsonDoc, jsonPieces } from '../../cli/json.js';
import { runs } from '../helpers/runs.js';

/**
 * Arrays inside `v` turned into JsonStreams where `pick` says so (what replay does with its conntrack table),
 * and strings into JsonTexts of pieces cut at code point boundaries (its listing).
 */
function streamed(v: unknown, pick: () => boolean): unknown {
  if (Array.isArray(v)) {
    const items = v.map((x) => streamed(x, pick));
    return pick() ? new JsonStream(() => items) : items;
  }
  if (typeof v === 'string' && pick()) {
    const points = [...v];
    const pieces: string[] = [];
    for (let i = 0; i < points.length; ) {
      const n = pick() ? 1 : 3;
      pieces.push(points.slice(i, i + n).join(''));
      i += n;
    }
    return new JsonText(() => pieces);
  }
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, streamed(x, pick)]));
  return v;
}

describe('jsonPieces', () => {
  it('writes what JSON.stringify(doc, null, 2) writes, for any document, streams, texts in pieces and small thresholds included', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.integer({ min: 0, max: 3 }), fc.infiniteStream(fc.boolean()), (doc, big, picks) => {
        const it = picks[Symbol.iterator]();
        const s = streamed(doc, () => it.next().value === true) as object;
        expect([...jsonPieces(s, big)].join('')).toBe(jsonDoc(doc));
      }),
      { numRuns: runs(500) },
    );
  });

  it('leaves out what JSON.stringify leaves out of an object and writes it as null in an array', () => {
    const gone = { toJSON: () => undefined };
    const doc = { a: undefined, b: [undefined, () => 1, gone, 2, 3], c: { d: undefined, e: [1, 2, 3], g: gone }, f: () => 1, g: gone, h: [] };
    expect([...jsonPieces(doc, 1)].join('')).toBe(jsonDoc(doc));
  });

  it('writes a document longer than a string can be, in pieces of about 64 KiB', () => {
    const item = 'x'.repeat(2000);
    const n = 300_000; // about 610 million characters: JSON.stringify of the whole throws
    const doc = { schema: 1, entries: new JsonStream(function* () {
      for (let i = 0; i < n; i++) yield { i, item };
    }) };
    let chars = 0;
    let pieces = 0;
    let longest = 0;
    let tail = '';
    for (const p of jsonPieces(doc)) {
      chars += p.length;
      pieces++;
      longest = Math.max(longest, p.length);
      tail = (tail + p).slice(-2100);
    }
    expect(chars).toBeGreaterThan(2 ** 29);
    expect(longest).toBeLessThan(1 << 17);
    expect(pieces).toBeGreaterThan(1000);
    expect(tail).toMatch(/"i": 299999,\n {6}"item": "x{2000}"\n {4}}\n {2}]\n}\n$/);
  }, 60_000);
});
