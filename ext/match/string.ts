/**
 * string match: iptables extensions/libxt_string.c (revision 1), kernel
 * net/netfilter/xt_string.c (with lib/textsearch.c and ts_bm/ts_kmp/ts_fsm).
 *
 * Data mirrors `struct xt_string_info`: search window [from, to] in the
 * packet, algorithm name, pattern bytes (at most 128), inversion and
 * ignore-case flags. `--hex-string` takes text with `|41 42|` hex blocks and
 * `\x` escapes. iptables-save prints `--string "..."` (escaping `"` and `\`)
 * when every byte is printable ASCII and the last is not `\`, else the whole
 * pattern as one hex block `--hex-string "|4142|"`.
 *
 * Kernel checks: from <= to, a non-empty pattern, an algorithm the kernel
 * has (bm, kmp, fsm); fsm takes the pattern as 4-byte tokens (type <= 13,
 * recurrence <= 4, head-ignore only on a first token that is not the last)
 * and refuses ignore-case. All three run as the kernel runs them
 * (ext/textsearch.ts): fsm's tokens are the automaton of lib/ts_fsm.c.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { bmInit, fsmInit, fsmValid, kmpInit, skbFindText } from '../textsearch.js';

interface StringData {
  /** Offsets of the search window (from 0, to 65535 by default). */
  from: number;
  to: number;
  /** Textsearch algorithm name (cut to 15 bytes). */
  algo: string;
  /** The pattern bytes. */
  pattern: Uint8Array;
  invert: boolean;
  /** XT_STRING_FLAG_IGNORECASE */
  icase: boolean;
}

const XT_STRING_MAX_PATTERN_SIZE = 128;
const XT_STRING_MAX_ALGO_NAME_SIZE = 16;

const TABLE: readonly XtOptEntry[] = [
  { name: 'from', id: 0 },
  { name: 'to', id: 1 },
  { name: 'algo', id: 2, mand: true },
  { name: 'string', id: 4, excl: 1 << 5 },
  { name: 'hex-string', id: 5, excl: 1 << 4 },
  { name: 'icase', id: 3 },
];

const isXDigit = (c: number | undefined) => c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));

/** libxt_string parse_hex_string(). */
function parseHexString(text: string): Uint8Array {
  const s = Buffer.from(text, 'utf8');
  const slen = s.length;
  const out: number[] = [];
  const PIPE = 0x7c;
  const BSL = 0x5c;
  const SP = 0x20;
  if (slen === 0) fail('STRING must contain at least one char');
  let i = 0;
  let hex = false;
  let literal = false;
  while (i < slen) {
    if (out.length >= XT_STRING_MAX_PATTERN_SIZE) fail(`STRING too long "${text}"`);
    if (s[i] === BSL && !hex) {
      literal = true;
    } else if (s[i] === BSL) {
      fail('Cannot include literals in hex data');
    } else if (s[i] === PIPE) {
      if (hex) hex = false;
      else {
        hex = true;
        while (s[i + 1] === SP) i++;
      }
      if (i + 1 >= slen) break;
      i++;
    }
    if (literal) {
      if (i + 1 >= slen) fail('Bad literal placement at end of string');
      out.push(s[i + 1]!);
      i += 2;
      literal = false;
    } else if (hex) {
      if (i + 1 >= slen) fail('Odd number of hex digits');
      if (i + 2 >= slen) fail('Invalid hex block');
      if (!isXDigit(s[i])) fail(`Invalid hex char '${String.fromCharCode(s[i]!)}'`);
      if (!isXDigit(s[i + 1])) fail(`Invalid hex char '${String.fromCharCode(s[i + 1]!)}'`);
      out.push(parseInt(String.fromCharCode(s[i]!, s[i + 1]!), 16));
      i += s[i + 2] === SP ? 3 : 2;
    } else {
      out.push(s[i]!);
      i++;
    }
  }
  return Uint8Array.from(out);
}

/** The pattern as iptables-save prints it (with the option name). */
function savePattern(p: Uint8Array): string {
  const printable = p.every((c) => c >= 0x20 && c <= 0x7e) && (p.length === 0 || p[p.length - 1] !== 0x5c);
  if (!printable) return ` --hex-string "|${Buffer.from(p).toString('hex')}|"`;
  let s = '';
  for (const c of p) s += (c === 0x22 || c === 0x5c ? '\\' : '') + String.fromCharCode(c);
  return ` --string "${s}"`;
}

export const string: MatchModule<StringData> = {
  kind: 'match',
  name: 'string',
  options: [
    { name: 'from', arg: 1 },
    { name: 'to', arg: 1 },
    { name: 'algo', arg: 1 },
    { name: 'string', arg: 1, invert: true },
    { name: 'hex-string', arg: 1, invert: true },
    { name: 'icase', arg: 0 },
  ],
  init: () => ({ from: 0, to: 0xffff, algo: '', pattern: new Uint8Array(0), invert: false, icase: false }),
  parse(d, opt, arg, invert) {
    const a = arg ?? '';
    switch (opt) {
      case 'from':
        d.from = parseUintOpt(a, 0, 0xffff, 'string', opt);
        return;
      case 'to':
        d.to = parseUintOpt(a, 0, 0xffff, 'string', opt);
        return;
      case 'algo': {
        const b = Buffer.from(a, 'utf8');
        d.algo = b.length >= XT_STRING_MAX_ALGO_NAME_SIZE ? b.subarray(0, XT_STRING_MAX_ALGO_NAME_SIZE - 1).toString('utf8') : a;
        return;
      }
      case 'string': {
        const b = Buffer.from(a, 'utf8');
        if (b.length > XT_STRING_MAX_PATTERN_SIZE) fail(`STRING too long "${a}"`);
        d.pattern = Uint8Array.from(b);
        if (invert) d.invert = true;
        return;
      }
      case 'hex-string':
        d.pattern = parseHexString(a);
        if (invert) d.invert = true;
        return;
      case 'icase':
        d.icase = true;
        return;
    }
  },
  final(_d, seen) {
    if (!seen.has('string') && !seen.has('hex-string')) fail("STRING match: You must specify `--string' or `--hex-string'", 'option');
    xtOptFcheck('string', TABLE, xtOptFlags(TABLE, seen));
  },
  save(d) {
    let s = (d.invert ? ' !' : '') + savePattern(d.pattern) + ` --algo ${d.algo}`;
    if (d.from !== 0) s += ` --from ${d.from}`;
    if (d.to !== 0xffff) s += ` --to ${d.to}`;
    if (d.icase) s += ' --icase';
    return s;
  },
  check(d) {
    if (d.from > d.to) return `xt_string: --from ${d.from} is beyond --to ${d.to} (EINVAL)`;
    if (d.pattern.length === 0) return 'xt_string: empty pattern (textsearch: EINVAL)';
    if (d.algo !== 'bm' && d.algo !== 'kmp' && d.algo !== 'fsm') return `xt_string: unknown algorithm "${d.algo}" (no ts_${d.algo}: ENOENT)`;
    if (d.algo === 'fsm' && !fsmValid(d.pattern, d.icase)) return 'xt_string: ts_fsm refuses the pattern (it must be 4-byte tokens, no --icase) (EINVAL)';
    return undefined;
  },
  ...compatMatchFaces(stringMt, 1),
};

// --- reference semantics (xt_string.c string_mt, kernel 6.18) ---------------------------
/** string_mt(): skb_find_text over the L3 data from --from to --to, XOR the inversion. */
function stringMt(info: StringData): MatchFn {
  const ts = info.algo === 'fsm' ? fsmInit(info.pattern) : (info.algo === 'kmp' ? kmpInit : bmInit)(info.pattern, info.icase);
  return (par) => skbFindText(ts, par.d, par.nh, par.end, info.from, info.to) !== info.invert;
}

