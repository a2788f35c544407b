/**
 * MARK target: libxt_MARK.c (revision 2), kernel xt_mark.c `mark_tg()`:
 * `skb->mark = (skb->mark & ~mask) ^ mark`. Every form is stored as the
 * xmark pair and saved as `--set-xmark mark/mask`:
 *   --set-xmark v/m → (v, m)      --set-mark v/m → (v, m | v)
 *   --and-mark v    → (0, ~v)     --or-mark v    → (v, v)
 *   --xor-mark v    → (v, 0)
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { hex } from '../save.js';
import { parseMarkMask, parseUintOpt } from '../numbers.js';
import { NFT_META_MARK, M_MARK } from '../../vm/layout.js';
import { emitBitwise, emitImmediate, emitMetaGet, emitMetaSet } from '../../vm/expr/index.js';
import { le32, type LowerCtx } from '../lower.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

interface MarkTargetData {
  mark: number;
  mask: number;
  given: boolean;
}

const OPTS = ['set-xmark', 'set-mark', 'and-mark', 'or-mark', 'xor-mark'];

export const MARK: TargetModule<MarkTargetData> = {
  kind: 'target',
  name: 'MARK',
  options: OPTS.map((name) => ({ name, arg: 1 as const })),
  init: () => ({ mark: 0, mask: 0, given: false }),
  parse(d, opt, arg) {
    if (d.given) fail('MARK: --set-xmark/--set-mark/--and-mark/--or-mark/--xor-mark are mutually exclusive', 'option');
    d.given = true;
    switch (opt) {
      case 'set-xmark': {
        const [v, m] = parseMarkMask(arg!, 'MARK', opt);
        d.mark = v;
        d.mask = m;
        return;
      }
      case 'set-mark': {
        const [v, m] = parseMarkMask(arg!, 'MARK', opt);
        d.mark = v;
        d.mask = (m | v) >>> 0;
        return;
      }
      case 'and-mark':
        d.mark = 0;
        d.mask = ~parseUintOpt(arg!, 0, 0xffffffff, 'MARK', opt) >>> 0;
        return;
      case 'or-mark':
        d.mark = d.mask = parseUintOpt(arg!, 0, 0xffffffff, 'MARK', opt);
        return;
      case 'xor-mark':
        d.mark = parseUintOpt(arg!, 0, 0xffffffff, 'MARK', opt);
        d.mask = 0;
        return;
    }
  },
  final(d) {
    if (!d.given) fail('MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required', 'option');
  },
  save: (d) => ` --set-xmark ${hex(d.mark)}/${hex(d.mask)}`,
  lower: (c, t) => lowerMarkSet(c, t.data),
  reference: markTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/** MARK (xt_MARK: mark = (mark & ~mask) ^ value): meta load mark, bitwise, meta set mark (an immediate when the mask is all ones). */
function lowerMarkSet(c: LowerCtx, d: MarkTargetData): void {
  c.withReg(4, (r) => {
    if (d.mask >>> 0 === 0xffffffff) emitImmediate(c.b, r, le32(d.mark));
    else {
      emitMetaGet(c.b, r, NFT_META_MARK);
      emitBitwise(c.b, r, r, le32(~d.mask), le32(d.mark));
    }
    emitMetaSet(c.b, NFT_META_MARK, r);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * MARK target: net/netfilter/xt_mark.c mark_tg() (revision 2, kernel 6.18):
 * skb->mark = (skb->mark & ~mask) ^ mark; continue.
 */
function markTg(info: MarkTargetData): TargetFn {
  return (par) => {
    par.meta[M_MARK] = (par.meta[M_MARK]! & ~info.mask) ^ info.mark;
    return XT_CONTINUE;
  };
}
