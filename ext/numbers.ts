/**
 * Numbers in extension options, as the C library and libxtables read them
 * (each a port of the function named in its comment, so that the accepted
 * spellings are iptables' own): glibc strtoumax/strtoul/strtoll/atoi, and
 * the value forms built on them: ranges, value/mask pairs, marks, TOS.
 */
import { fail } from '../core/errors.js';

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * `strtoumax(s, &end, base)` as glibc does it: leading blanks, an optional
 * `+`, `0x` for hex and a leading `0` for octal when base is 0. Returns the
 * value and the index where parsing stopped (`end === start` when nothing
 * was read). Values are bigint so u64 options stay exact; `overflow` is set
 * above 2^64-1 (ERANGE).
 */
export function strtoumax(s: string, base = 0, start = 0): { value: bigint; end: number; overflow: boolean } {
  let i = start;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n')) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') {
    neg = s[i] === '-';
    i++;
  }
  let b = base;
  if ((b === 0 || b === 16) && s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && hexDigit(s.charCodeAt(i + 2)) >= 0) {
    i += 2;
    b = 16;
  } else if (b === 0) {
    b = s[i] === '0' ? 8 : 10;
  }
  const digitsStart = i;
  let v = 0n;
  const B = BigInt(b);
  while (i < s.length) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0 || d >= b) break;
    v = v * B + BigInt(d);
    i++;
  }
  if (i === digitsStart) return { value: 0n, end: start, overflow: false };
  const overflow = v > 0xffffffffffffffffn;
  if (neg) v = (-v) & 0xffffffffffffffffn;
  return { value: v, end: i, overflow };
}

/**
 * `xtables_strtoul_base()`: a whole-string unsigned number in [min, max]
 * (max 0 means no upper bound beyond u64); a leading `-` is refused.
 * Returns undefined when the text is not such a number.
 */
export function strtoulWhole(s: string, min: bigint, max: bigint, base = 0): bigint | undefined {
  let p = 0;
  while (p < s.length && (s[p] === ' ' || s[p] === '\t')) p++;
  if (s[p] === '-') return undefined;
  const r = strtoumax(s, base);
  if (r.end === 0 && r.value === 0n && !/^\s*\+?0/.test(s)) return undefined;
  if (r.end !== s.length || r.overflow) return undefined;
  if (r.value < min || (max !== 0n && r.value > max)) return undefined;
  return r.value;
}

/**
 * strtoulWhole() for a range within the safe integers (max 0: no bound), as a number: the
 * common spelling (1 to 15 decimal digits, no leading zero, nothing else)
 * is read without BigInt; every other spelling takes strtoulWhole()'s path,
 * so the accepted forms are the same.
 */
export function strtoulWholeNum(s: string, min: number, max: number): number | undefined {
  const n = s.length;
  if (n > 0 && n <= 15) {
    let v = 0;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9 || (c === 0 && i === 0 && n > 1)) break;
      v = v * 10 + c;
    }
    if (i === n) return v < min || (max !== 0 && v > max) ? undefined : v;
    // strtoumax reads nothing from a word that starts with another character (a name: `tcp`, `ssh`)
    const c0 = s.charCodeAt(0);
    if (!((c0 >= 48 && c0 <= 57) || c0 === 32 || c0 === 9 || c0 === 10 || c0 === 43 || c0 === 45)) return undefined;
  }
  const r = strtoulWhole(s, BigInt(min), BigInt(max));
  return r === undefined ? undefined : Number(r);
}

/**
 * `xtables_strtoui` with end pointer: parses a number prefix and returns
 * it with the rest, or undefined when no number starts the text.
 */
export function strtoulPrefix(s: string, min: bigint, max: bigint, base = 0): { value: bigint; rest: string } | undefined {
  let p = 0;
  while (p < s.length && (s[p] === ' ' || s[p] === '\t')) p++;
  if (s[p] === '-') return undefined;
  const r = strtoumax(s, base);
  if (r.end === 0) return undefined;
  if (r.overflow || r.value < min || (max !== 0n && r.value > max)) return undefined;
  return { value: r.value, rest: s.slice(r.end) };
}

/** C `isspace()` in the C locale. */
export function cIsSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/**
 * glibc `strtoll(s, &end, 10)` (what `atoi`/`atoll` call): leading blanks,
 * a sign, decimal digits; clamped to the i64 range on overflow. `end` is
 * 0 when no digits were read.
 */
export function cStrtoll(s: string): { value: bigint; end: number } {
  let i = 0;
  while (cIsSpace(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') neg = s[i++] === '-';
  const d0 = i;
  let v = 0n;
  while (i < s.length && s[i]! >= '0' && s[i]! <= '9') {
    if (v <= 0x7fffffffffffffffn) v = v * 10n + BigInt(s.charCodeAt(i) - 48);
    i++;
  }
  if (i === d0) return { value: 0n, end: 0 };
  if (neg) v = v > 0x8000000000000000n ? -0x8000000000000000n : -v;
  else if (v > 0x7fffffffffffffffn) v = 0x7fffffffffffffffn;
  return { value: v, end: i };
}

/** glibc `atoi()`: `(int)strtol(s, NULL, 10)` on LP64, as an i32. */
export function cAtoi(s: string): number {
  return Number(BigInt.asIntN(32, cStrtoll(s).value));
}

/**
 * glibc `strtoul(s, &end, base)` on LP64: like strtoumax, but a `-` negates
 * modulo 2^64 and overflow clamps to ULONG_MAX. `end` is the index where
 * parsing stopped (0 when nothing was read).
 */
export function cStrtoul(s: string, base = 10): { value: bigint; end: number } {
  const r = strtoumax(s, base);
  if (r.end === 0) return { value: 0n, end: 0 };
  return { value: r.overflow ? 0xffffffffffffffffn : r.value, end: r.end };
}

/** XTTYPE_UINT32 etc.: a whole number in [min, max] with the x6 error message. */
export function parseUintOpt(s: string, min: number, max: number, ext: string, opt: string): number {
  const v = strtoulWholeNum(s, min, max);
  if (v === undefined) fail(`${ext}: bad value for option "--${opt}" near "${s}", or out of range (${min}-${max}).`);
  return v;
}

/**
 * XTTYPE_UINT8RC/UINT16RC/UINT32RC/UINT64RC (xtopt_parse_mint): `a`, `a:b`,
 * `:b`, `a:` and `:` with an empty first bound 0 and an empty second bound
 * the type's maximum; every bound in any C base. iptables 1.8.13 also
 * refuses a range whose lower bound exceeds the upper one.
 */
export function parseUintRangeOpt(s: string, lmax: bigint, ext: string, opt: string, maxiter = 2): bigint[] {
  const vals: bigint[] = [];
  let p = 0;
  for (;;) {
    if (vals.length === maxiter) fail(`${ext}: Too many components for option "--${opt}" (max: ${maxiter})`);
    let end: number;
    let v: bigint;
    if (p >= s.length || s[p] === ':') {
      end = p;
      v = vals.length === 1 ? lmax : 0n;
    } else {
      const rest = s.slice(p);
      const r = strtoulPrefix(rest, 0n, lmax);
      if (!r) fail(`${ext}: bad value for option "--${opt}" near "${rest}", or out of range (0-${lmax}).`);
      v = r.value;
      end = s.length - r.rest.length;
      if (end < s.length && s[end] !== ':') fail(`${ext}: Argument to "--${opt}" has unexpected characters near "${s.slice(end)}".`);
    }
    vals.push(v);
    if (end >= s.length) break;
    p = end + 1;
  }
  if (vals.length === 2 && vals[0]! > vals[1]!) fail(`${ext}: range ${vals[0]}:${vals[1]} for option "--${opt}" is reversed (min > max).`);
  return vals;
}

/**
 * `xtables_parse_mark_mask()` (XTTYPE_MARKMASK32): `value[/mask]`, each a
 * u32 in any C base; the mask defaults to 0xffffffff. Returns uint32 values.
 */
export function parseMarkMask(s: string, ext: string, opt: string): [number, number] {
  const bad = (): never => fail(`${ext}: bad integer value for option "--${opt}", or out of range.`);
  const a = strtoulPrefix(s, 0n, 0xffffffffn);
  if (!a) return bad();
  let mask = 0xffffffff;
  let rest = a.rest;
  if (rest.startsWith('/')) {
    const b = strtoulPrefix(rest.slice(1), 0n, 0xffffffffn);
    if (!b) return bad();
    mask = Number(b.value);
    rest = b.rest;
  }
  if (rest !== '') return bad();
  return [Number(a.value), mask];
}

/**
 * `xtables_parse_val_mask()`: `value[/mask]` (u32, any C base, mask
 * default 0xffffffff) or, when `names` is given (an iproute2 map file such
 * as /etc/iproute2/group), a name from it.
 */
export function parseValMask(s: string, ext: string, opt: string, names?: ReadonlyMap<string, number>): [number, number] {
  const byName = (): [number, number] => {
    const v = names!.get(s);
    if (v === undefined) fail(`${ext}: could not map name ${s} to an integer value for option "--${opt}".`);
    return [v, 0xffffffff];
  };
  const badVal = (): never => fail(`${ext}: bad integer value for option "--${opt}", or out of range.`);
  const a = strtoulPrefix(s, 0n, 0xffffffffn);
  if (!a) return names ? byName() : badVal();
  if (a.rest === '') return [Number(a.value), 0xffffffff];
  if (!a.rest.startsWith('/')) {
    if (names) return byName();
    fail(`${ext}: trailing garbage after value for option "--${opt}".`);
  }
  const b = strtoulPrefix(a.rest.slice(1), 0n, 0xffffffffn);
  if (!b) return badVal();
  if (b.rest !== '') fail(`${ext}: trailing garbage after value for option "--${opt}".`);
  return [Number(a.value), Number(b.value)];
}

/** `tos_symbol_names[]` (xtoptions.c): the RFC 1349 names XTTYPE_TOSMASK accepts. */
const TOS_SYMBOLS: ReadonlyArray<readonly [string, number]> = [
  ['Minimize-Delay', 0x10],
  ['Maximize-Throughput', 0x08],
  ['Maximize-Reliability', 0x04],
  ['Minimize-Cost', 0x02],
  ['Normal-Service', 0x00],
];

/**
 * XTTYPE_TOSMASK (xtopt_parse_tosmask): `value[/mask]` numbers (mask
 * default 0xff) or a symbolic name (case-insensitive), whose mask is the
 * option's `.max` (`symMask`: 0x3f for tos revision 1 and TOS revision 1).
 */
export function parseTosMask(s: string, symMask: number): { value: number; mask: number } {
  const a = strtoulPrefix(s, 0n, 0xffn);
  if (a) {
    let mask = 0xff;
    let rest = a.rest;
    if (rest.startsWith('/')) {
      const b = strtoulPrefix(rest.slice(1), 0n, 0xffn);
      if (!b) fail(`Illegal value: "${s}"`);
      mask = Number(b.value);
      rest = b.rest;
    }
    if (rest !== '') fail(`Illegal value: "${s}"`);
    return { value: Number(a.value), mask };
  }
  for (const [name, v] of TOS_SYMBOLS) if (name.toLowerCase() === s.toLowerCase()) return { value: v, mask: symMask };
  return fail(`Symbolic name "${s}" is unknown`);
}
