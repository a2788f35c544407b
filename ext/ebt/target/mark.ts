/**
 * mark target: iptables `extensions/libebt_mark.c`, kernel
 * `net/bridge/netfilter/ebt_mark.c`: sets, ORs, ANDs or XORs skb->mark,
 * then returns `--mark-target` (default ACCEPT).
 */
import { fail } from '../../../core/errors.js';
import type { EbtVerdict } from '../../../core/ebt-ast.js';
import { cStrtoul } from '../../numbers.js';
import type { EbtModule } from '../types.js';
import { parseVerdict } from '../values.js';
import { M_MARK } from '../../../vm/layout.js';
import { ebtVerdict } from '../types.js';

type MarkOp = 'set' | 'or' | 'and' | 'xor';

interface EbtMarkData {
  op: MarkOp | undefined;
  mark: number;
  target: EbtVerdict;
}

const OPS: Readonly<Record<string, MarkOp>> = Object.assign(Object.create(null), {
  'mark-set': 'set', 'set-mark': 'set', 'mark-or': 'or', 'mark-and': 'and', 'mark-xor': 'xor',
});

export const mark: EbtModule<EbtMarkData> = {
  kind: 'target',
  name: 'mark',
  options: [
    { name: 'set-mark', arg: 1 },
    { name: 'mark-set', arg: 1 },
    { name: 'mark-or', arg: 1 },
    { name: 'mark-and', arg: 1 },
    { name: 'mark-xor', arg: 1 },
    { name: 'mark-target', arg: 1 },
  ],
  init: () => ({ op: undefined, mark: 0, target: 'ACCEPT' }),
  parse(d, opt, arg) {
    if (opt === 'mark-target') {
      d.target = parseVerdict(arg!, opt);
      return;
    }
    const op = OPS[opt]!;
    if (d.op) fail(`--${opt} cannot be used together with specific --mark option`, 'option');
    const r = cStrtoul(arg!, 0);
    if (r.end === 0 || r.end !== arg!.length) fail(`Bad MARK value '${arg}'`);
    d.op = op;
    d.mark = Number(r.value & 0xffffffffn);
  },
  final(d) {
    if (!d.op) fail('You must specify some option', 'option');
  },
  save: (d) => `--mark-${d.op} 0x${d.mark.toString(16)} --mark-target ${d.target}`,
  verdictOf: (d) => d.target,
  lower: { rev: 0 },
  // ebt_mark_tg()
  reference: {
    tg: (d) => {
      const v = ebtVerdict(d.target);
      return (p) => {
        const m = p.meta;
        if (d.op === 'set') m[M_MARK] = d.mark | 0;
        else if (d.op === 'or') m[M_MARK] = m[M_MARK]! | d.mark;
        else if (d.op === 'and') m[M_MARK] = m[M_MARK]! & d.mark;
        else m[M_MARK] = m[M_MARK]! ^ d.mark;
        return v;
      };
    },
  },
};
