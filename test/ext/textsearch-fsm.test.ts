/**
 * lib/ts_fsm.c as ext/textsearch.ts runs it, on hand-made token patterns:
 * strict and TS_FSM_HEAD_IGNORE modes, every recurrence, the end-of-data
 * rule, the naive restart after a mismatch, token_lookup_tbl's classes
 * (where they differ from lib/ctype.c) and xt_string's window check with
 * fsm's pattern length (4 bytes a token). Expected results follow fsm_find
 * step by step.
 */
import { describe, expect, it } from 'vitest';
import { fsmInit, fsmValid, skbFindText } from '../../ext/textsearch.js';

// include/linux/textsearch_fsm.h
const SPECIFIC = 0, WILDCARD = 1, DIGIT = 2, XDIGIT = 3, PRINT = 4, ASCII = 7, CNTRL = 8, LOWER = 10;
const SINGLE = 0, PERHAPS = 1, ANY = 2, MULTI = 3, HEAD_IGNORE = 4;

type Tok = [type: number, recur: number, value?: string | number];
const pattern = (toks: readonly Tok[]) =>
  Uint8Array.from(toks.flatMap(([t, r, v]) => [t & 0xff, t >> 8, r, typeof v === 'string' ? v.charCodeAt(0) : (v ?? 0)]));
const bytes = (s: string | readonly number[]) => (typeof s === 'string' ? Uint8Array.from(Buffer.from(s, 'latin1')) : Uint8Array.from(s));
const find = (toks: readonly Tok[], text: string | readonly number[]) => {
  const d = bytes(text);
  return fsmInit(pattern(toks)).find(d, 0, d.length, 0, d.length);
};

describe('ts_fsm fsm_find', () => {
  it('strict mode: the tokens match from the first byte to the end of the data', () => {
    const a: Tok[] = [[SPECIFIC, SINGLE, 'a']];
    expect(find(a, 'a')).toBe(0);
    expect(find(a, 'ab')).toBe(-1);
    expect(find(a, 'ba')).toBe(-1);
    expect(find(a, '')).toBe(-1);
  });

  it('TS_FSM_HEAD_IGNORE skips bytes of its class, and a byte outside it ends the search', () => {
    expect(find([[WILDCARD, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']], 'xxa')).toBe(2);
    expect(find([[WILDCARD, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']], 'xxab')).toBe(-1);
    expect(find([[DIGIT, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']], '12a')).toBe(2);
    expect(find([[DIGIT, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']], '1xa')).toBe(-1);
  });

  it('a mismatch starts over at the byte after the mismatching one, not after the match start', () => {
    const ab: Tok[] = [[WILDCARD, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a'], [SPECIFIC, SINGLE, 'b']];
    expect(find(ab, 'xab')).toBe(1);
    expect(find(ab, 'aab')).toBe(-1); // restarted at 2, past the 'a' of 'ab'
    expect(find(ab, 'aaab')).toBe(2); // restarted at 2, where the 'a' of 'ab' is
    expect(find(ab, 'acab')).toBe(2);
  });

  it('recurrences: PERHAPS, ANY and MULTI, a last ANY or MULTI found at once', () => {
    expect(find([[SPECIFIC, MULTI, 'a']], 'aaab')).toBe(0);
    expect(find([[SPECIFIC, MULTI, 'a']], 'baa')).toBe(-1);
    expect(find([[SPECIFIC, ANY, 'a'], [SPECIFIC, SINGLE, 'b']], 'aab')).toBe(0);
    expect(find([[SPECIFIC, ANY, 'a'], [SPECIFIC, SINGLE, 'b']], 'b')).toBe(0);
    expect(find([[SPECIFIC, ANY, 'a'], [SPECIFIC, SINGLE, 'b']], 'acb')).toBe(-1);
    expect(find([[SPECIFIC, MULTI, 'a'], [SPECIFIC, SINGLE, 'b']], 'b')).toBe(-1);
    expect(find([[SPECIFIC, PERHAPS, 'a'], [SPECIFIC, SINGLE, 'b']], 'b')).toBe(0);
    expect(find([[SPECIFIC, PERHAPS, 'a'], [SPECIFIC, SINGLE, 'b']], 'ab')).toBe(0);
    expect(find([[SPECIFIC, PERHAPS, 'a'], [SPECIFIC, SINGLE, 'b']], 'aab')).toBe(-1);
    expect(find([[SPECIFIC, SINGLE, 'a'], [WILDCARD, ANY]], 'axyz')).toBe(0);
    expect(find([[SPECIFIC, SINGLE, 'a'], [WILDCARD, ANY]], 'a')).toBe(0);
    // an ANY at the end of the data passes to the next token, which finds no data
    expect(find([[SPECIFIC, SINGLE, 'a'], [SPECIFIC, ANY, 'a'], [SPECIFIC, SINGLE, 'b']], 'aa')).toBe(-1);
    expect(find([[SPECIFIC, SINGLE, 'a'], [SPECIFIC, ANY, 'a'], [SPECIFIC, PERHAPS, 'b']], 'a')).toBe(0);
  });

  it('token_lookup_tbl classes, not lib/ctype.c', () => {
    expect(find([[CNTRL, SINGLE]], [0x7f])).toBe(0);
    expect(find([[CNTRL, SINGLE]], [0x85])).toBe(-1);
    expect(find([[ASCII, SINGLE]], [0xe9])).toBe(-1);
    expect(find([[ASCII, SINGLE]], [0x00])).toBe(0);
    expect(find([[LOWER, SINGLE]], [0xdf])).toBe(0);
    expect(find([[PRINT, SINGLE]], [0xa0])).toBe(0);
    expect(find([[PRINT, SINGLE]], [0x09])).toBe(-1);
    expect(find([[XDIGIT, SINGLE]], 'g')).toBe(-1);
    expect(find([[XDIGIT, SINGLE]], 'F')).toBe(0);
    expect(find([[WILDCARD, SINGLE]], [0xff])).toBe(0);
  });

  it('xt_string window: the match ends by --to counting 4 bytes a token', () => {
    const ts = fsmInit(pattern([[WILDCARD, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']]));
    const d = bytes('xa');
    // found at 1; 1 + 8 (two tokens) must not pass to - from
    expect(skbFindText(ts, d, 0, d.length, 0, 8)).toBe(false);
    expect(skbFindText(ts, d, 0, d.length, 0, 9)).toBe(true);
    expect(skbFindText(ts, d, 0, d.length, 1, 9)).toBe(true);
    expect(skbFindText(ts, d, 0, d.length, 1, 8)).toBe(false);
    expect(skbFindText(ts, d, 0, d.length, 2, 65535)).toBe(false);
  });

  it('an end test after the end of the data gets the packet again from the network header (skb_seq_read), until --to', () => {
    const ts = fsmInit(pattern([[5 /* ALPHA */, SINGLE], [SPECIFIC, PERHAPS, 'Z']]));
    const d = bytes('/Zb');
    // from 2: 'b', then PERHAPS meets the end (0), and the final end test gets '/Zb' again: not the end, no match
    expect(ts.find(d, 0, d.length, 2, 65535)).toBe(-1);
    // with --to at the end of the packet the second read answers 0 too: found
    expect(ts.find(d, 0, d.length, 2, 3)).toBe(0);
    // an ANY meeting the end passes to the next token, which reads the packet's first byte
    const any = fsmInit(pattern([[SPECIFIC, SINGLE, 'b'], [SPECIFIC, ANY, 'x'], [SPECIFIC, SINGLE, '/']]));
    expect(any.find(d, 0, d.length, 2, 65535)).toBe(-1);
    // tokens after an optional one at the end match the packet's first bytes: 'b', (end), then '/Zb'
    const again = fsmInit(pattern([[SPECIFIC, SINGLE, 'b'], [SPECIFIC, PERHAPS, 'x'], [SPECIFIC, SINGLE, '/'], [SPECIFIC, SINGLE, 'Z'], [SPECIFIC, SINGLE, 'b']]));
    expect(again.find(d, 0, d.length, 2, 65535)).toBe(0);
    expect(again.find(d, 0, d.length, 2, 3)).toBe(-1);
  });

  it('fsm_init refuses what the kernel refuses', () => {
    expect(fsmValid(pattern([[SPECIFIC, SINGLE, 'a']]), false)).toBe(true);
    expect(fsmValid(pattern([[SPECIFIC, SINGLE, 'a']]), true)).toBe(false);
    expect(fsmValid(pattern([[13, SINGLE]]), false)).toBe(true);
    expect(fsmValid(pattern([[14, SINGLE]]), false)).toBe(false);
    expect(fsmValid(pattern([[0x101, SINGLE]]), false)).toBe(false);
    expect(fsmValid(pattern([[SPECIFIC, 5]]), false)).toBe(false);
    expect(fsmValid(pattern([[WILDCARD, HEAD_IGNORE]]), false)).toBe(false);
    expect(fsmValid(pattern([[WILDCARD, HEAD_IGNORE], [SPECIFIC, SINGLE, 'a']]), false)).toBe(true);
    expect(fsmValid(pattern([[SPECIFIC, SINGLE, 'a'], [WILDCARD, HEAD_IGNORE]]), false)).toBe(false);
    expect(fsmValid(Uint8Array.from([0, 0, 0, 0x61, 0x62]), false)).toBe(false);
    expect(fsmValid(new Uint8Array(0), false)).toBe(false);
  });
});
