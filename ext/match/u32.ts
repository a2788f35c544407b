/**
 * u32 match: iptables extensions/libxt_u32.c, kernel net/netfilter/xt_u32.c.
 *
 * Data mirrors `struct xt_u32`: up to 10 tests joined by `&&`; each test
 * reads a 32-bit word at a location computed from up to 10 numbers joined
 * by the operators `&` (mask), `<<`, `>>` and `@` (move forward by the
 * value read so far), and compares it with up to 10 values or `min:max`
 * ranges. Numbers take any C base. iptables-save prints every number in
 * hex, without blanks, inside double quotes:
 * `--u32 "0x0>>0x16&0x3c@0x4>>0x10=0x50"`.
 *
 * The kernel check only bounds the counts, which iptables already enforces.
 * Both engines run u32_match_it (iptables-nft loads the match as is: nft_compat).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { cIsSpace, strtoulPrefix } from '../numbers.js';
import { be32, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

type U32Op = '&' | '<<' | '>>' | '@';

interface U32Test {
  /** location[0] is a plain number; every further one is applied with its operator. */
  location: { op: U32Op; number: number }[];
  /** Inclusive ranges the word must fall in (any of them). */
  value: { min: number; max: number }[];
}

interface U32Data {
  tests: U32Test[];
  invert: boolean;
}

const XT_U32_MAXSIZE = 10;

/** libxt_u32 u32_parse(): the test expression grammar with its error positions. */
function parseU32(arg: string): U32Test[] {
  const tests: U32Test[] = [];
  let ct: U32Test = { location: [], value: [] };
  let state = 0;
  let i = 0;
  const number = (): number => {
    const p = strtoulPrefix(arg.slice(i), 0n, 0xffffffffn);
    if (!p) fail(`u32: at char ${i}: not a number or out of range`);
    i = arg.length - p.rest.length;
    return Number(p.value);
  };
  for (;;) {
    while (cIsSpace(arg[i])) i++;
    if (i >= arg.length) {
      if (state === 0) fail('u32: abrupt end of input after location specifier');
      if (ct.value.length === 0) fail('u32: test ended with no value specified');
      tests.push(ct);
      if (tests.length > XT_U32_MAXSIZE) fail(`u32: at char ${i}: too many "&&"s`);
      return tests;
    }
    if (state === 0) {
      if (arg[i] === '=') {
        if (ct.location.length === 0) fail(`u32: at char ${i}: location spec missing`);
        i++;
        state = 1;
        continue;
      }
      let op: U32Op = '&';
      if (ct.location.length !== 0) {
        const c = arg[i];
        if (c === '&') op = '&';
        else if (c === '<') {
          if (arg[++i] !== '<') fail(`u32: at char ${i}: a second '<' was expected`);
          op = '<<';
        } else if (c === '>') {
          if (arg[++i] !== '>') fail(`u32: at char ${i}: a second '>' was expected`);
          op = '>>';
        } else if (c === '@') op = '@';
        else fail(`u32: at char ${i}: operator expected`);
        i++;
      }
      ct.location.push({ op, number: number() });
      if (ct.location.length > XT_U32_MAXSIZE) fail(`u32: at char ${i}: too many operators`);
    } else if (arg[i] === '&') {
      if (arg[++i] !== '&') fail(`u32: at char ${i}: a second '&' was expected`);
      if (ct.value.length === 0) fail(`u32: at char ${i}: value spec missing`);
      tests.push(ct);
      ct = { location: [], value: [] };
      if (tests.length > XT_U32_MAXSIZE) fail(`u32: at char ${i}: too many "&&"s`);
      i++;
      state = 0;
    } else {
      if (ct.value.length > 0) {
        if (arg[i] !== ',') fail(`u32: at char ${i}: expected "," or "&&"`);
        i++;
      }
      const min = number();
      while (cIsSpace(arg[i])) i++;
      let max = min;
      if (arg[i] === ':') {
        i++;
        max = number();
      }
      ct.value.push({ min, max });
      if (ct.value.length > XT_U32_MAXSIZE) fail(`u32: at char ${i}: too many ","s`);
    }
  }
}

const hx = (n: number) => '0x' + n.toString(16);

export const u32: MatchModule<U32Data> = {
  kind: 'match',
  name: 'u32',
  options: [{ name: 'u32', arg: 1, invert: true }],
  init: () => ({ tests: [], invert: false }),
  parse(d, _opt, arg, invert) {
    d.invert = invert;
    d.tests = parseU32(arg!);
  },
  final(_d, seen) {
    if (!seen.has('u32')) fail('u32: option "--u32" must be specified', 'option');
  },
  save(d) {
    const t = d.tests
      .map((ct) => ct.location.map((l, k) => (k === 0 ? '' : l.op) + hx(l.number)).join('') + '=' + ct.value.map((v) => (v.min === v.max ? hx(v.min) : `${hx(v.min)}:${hx(v.max)}`)).join(','))
      .join('&&');
    return `${d.invert ? ' !' : ''} --u32 "${t}"`;
  },
  ...compatMatchFaces(u32Mt),
};

// --- reference semantics (xt_u32.c, kernel 6.18) ----------------------------------------
/**
 * u32_match_it(): every test's location is read within skb->len (the L3
 * length), `@` moves the base forward by the value so far (unsigned
 * overflow fails the test); the word must fall in one of the ranges. Shift
 * counts are taken modulo 32, as the x86 shift instructions take them.
 */
function u32MatchIt(tests: readonly U32Test[], d: Uint8Array, nh: number, len: number): boolean {
  for (const ct of tests) {
    let at = 0;
    let pos = ct.location[0]!.number;
    if (len < 4 || pos > len - 4) return false;
    let val = be32(d, nh + pos);
    for (let i = 1; i < ct.location.length; i++) {
      const { op, number } = ct.location[i]!;
      if (op === '&') val = (val & number) >>> 0;
      else if (op === '<<') val = (val << (number & 31)) >>> 0;
      else if (op === '>>') val = val >>> (number & 31);
      else {
        if (at + val > 0xffffffff) return false;
        at += val;
        pos = number;
        if (at + 4 > 0xffffffff || len < at + 4 || pos > len - at - 4) return false;
        val = be32(d, nh + at + pos);
      }
    }
    if (!ct.value.some((v) => v.min <= val && val <= v.max)) return false;
  }
  return true;
}

function u32Mt(data: U32Data): MatchFn {
  return (par) => u32MatchIt(data.tests, par.d, par.nh, par.end - par.nh) !== data.invert;
}

