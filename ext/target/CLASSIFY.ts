/**
 * CLASSIFY target: iptables `extensions/libxt_CLASSIFY.c`, kernel
 * `net/netfilter/xt_CLASSIFY.c` (`.hooks` = OUTPUT, FORWARD, POSTROUTING;
 * any table since Linux 2.6.28): set skb->priority to a tc class handle
 * `MAJOR:MINOR` (both hexadecimal).
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { M_PRIORITY } from '../../vm/layout.js';

interface ClassifyData {
  /** TC_H_MAKE(major << 16, minor) */
  priority: number;
}

/** One `%x` conversion of sscanf(): blanks, a sign, an optional 0x, hex digits (mod 2^32). */
function scanHex(s: string, p: number): { value: number; end: number } | undefined {
  while (p < s.length && /\s/.test(s[p]!)) p++;
  let neg = false;
  if (s[p] === '+' || s[p] === '-') {
    neg = s[p] === '-';
    p++;
  }
  // glibc takes `0x` as the prefix even with no digit after it (the `0` is the number)
  let start = p;
  if (s[p] === '0' && (s[p + 1] === 'x' || s[p + 1] === 'X')) {
    p += 2;
    start = p - 1;
  }
  let v = 0n;
  while (p < s.length && /[0-9a-fA-F]/.test(s[p]!)) v = v * 16n + BigInt(parseInt(s[p++]!, 16));
  if (p === start) return undefined;
  if (v > 0xffffffffffffffffn) v = 0xffffffffffffffffn;
  if (neg) v = -v & 0xffffffffffffffffn;
  return { value: Number(v & 0xffffffffn), end: p };
}

/** `CLASSIFY_string_to_priority()`: sscanf("%x:%x"); text after the minor is ignored. */
function parseClass(s: string): number | undefined {
  const a = scanHex(s, 0);
  if (!a || s[a.end] !== ':') return undefined;
  const b = scanHex(s, a.end + 1);
  if (!b) return undefined;
  return (((a.value << 16) & 0xffff0000) | (b.value & 0xffff)) >>> 0;
}

export const CLASSIFY: TargetModule<ClassifyData> = {
  kind: 'target',
  name: 'CLASSIFY',
  hooks: (1 << Hook.LOCAL_OUT) | (1 << Hook.FORWARD) | (1 << Hook.POST_ROUTING),
  options: [{ name: 'set-class', arg: 1 }],
  init: () => ({ priority: 0 }),
  parse(d, _opt, arg) {
    const p = parseClass(arg!);
    if (p === undefined) fail(`Bad class value "${arg}"`);
    d.priority = p;
  },
  final(_d, seen) {
    if (!seen.has('set-class')) fail('CLASSIFY: option "--set-class" must be specified', 'option');
  },
  save: (d) => ` --set-class ${(d.priority >>> 16).toString(16).padStart(4, '0')}:${(d.priority & 0xffff).toString(16).padStart(4, '0')}`,
  ...compatTargetFaces(classifyTg),
};


// --- reference semantics (xt_CLASSIFY.c classify_tg, kernel 6.18) -----------------------
/** classify_tg(): skb->priority becomes the class (what the queueing disciplines read). */
function classifyTg(info: ClassifyData): TargetFn {
  return (par) => {
    par.meta[M_PRIORITY] = info.priority | 0;
    return XT_CONTINUE;
  };
}
