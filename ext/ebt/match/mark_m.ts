/**
 * mark_m match: iptables `extensions/libebt_mark_m.c`, kernel
 * `net/bridge/netfilter/ebt_mark_m.c`: `--mark value[/mask]` compares
 * skb->mark & mask with value; `--mark /mask` matches any bit of mask.
 */
import { fail } from '../../../core/errors.js';
import { cStrtoul } from '../../numbers.js';
import type { EbtModule } from '../types.js';
import { M_MARK } from '../../../vm/layout.js';

const EBT_MARK_AND = 1;
const EBT_MARK_OR = 2;

interface MarkMData {
  mark: number;
  mask: number;
  invert: boolean;
  bitmask: number;
}

/** strtoul(s, &end, 0) as an unsigned long truncated to the u32 the kernel struct holds. */
function ul(s: string): { v: number; end: number } {
  const r = cStrtoul(s, 0);
  return { v: Number(r.value & 0xffffffffn), end: r.end };
}

export const mark_m: EbtModule<MarkMData> = {
  kind: 'match',
  name: 'mark_m',
  options: [{ name: 'mark', arg: 1, invert: true }],
  init: () => ({ mark: 0, mask: 0, invert: false, bitmask: 0 }),
  parse(d, _opt, arg, invert) {
    const s = arg!;
    const a = ul(s);
    d.bitmask = EBT_MARK_AND;
    d.mark = a.v;
    let end = a.end;
    if (s[end] === '/') {
      if (end === 0) d.bitmask = EBT_MARK_OR;
      const b = ul(s.slice(end + 1));
      d.mask = b.v;
      end = end + 1 + b.end;
    } else {
      d.mask = 0xffffffff;
    }
    if (end !== s.length || end === 0) fail(`Bad mark value '${s}'`);
    d.invert = invert;
  },
  save(d) {
    const hex = (v: number) => `0x${v.toString(16)}`;
    const val = d.bitmask === EBT_MARK_OR ? `/${hex(d.mask)}` : d.mask !== 0xffffffff ? `${hex(d.mark)}/${hex(d.mask)}` : hex(d.mark);
    return `${d.invert ? ' !' : ''} --mark ${val}`;
  },
  lower: { rev: 0 },
  // ebt_mark_mt()
  reference: {
    mt: (d) => (p) => {
      const mark = p.meta[M_MARK]!;
      if (d.bitmask & EBT_MARK_OR) return ((mark & d.mask) !== 0) !== d.invert;
      return ((mark & d.mask) >>> 0 === d.mark >>> 0) !== d.invert;
    },
  },
};
