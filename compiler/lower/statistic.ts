/**
 * statistic (xt_statistic).
 *  - nth: the rule's counter starts at (n-1) - p (libxt_statistic stores
 *    u.nth.count = every - packet, every already n-1) and steps modulo n;
 *    the packet matches when the new value is 0 (XOR invert): the k-th
 *    packet matches when k ≡ p+1 (mod n). An incrementing numgen (nft
 *    `numgen inc mod n`, first value 0) gives k-1 mod n, so the match is
 *    `numgen == p mod n`. n is the union word + 1, as the kernel reads it.
 *  - random: one draw per evaluation, `(draw & 0x7fffffff) < probability`
 *    XOR invert, as nft `meta random`: load, mask, hton, cmp lt (gte when
 *    inverted). The draw is the VM's seeded generator (same sequence as
 *    vm/random.ts for the same seed).
 */
import {
  NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_NEQ, NFT_META_PRANDOM, NFT_NG_INCREMENTAL,
} from '../../vm/layout.js';
import { emitBitwise, emitByteorder, emitCmp, emitMetaGet, emitNumgen } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { StatisticData } from '../../ext/match/statistic.js';
import { be, le32, type LowerCtx } from './ctx.js';

export function lowerStatistic(c: LowerCtx, m: MatchNode): void {
  const d = m.data as StatisticData;
  c.withReg(4, (r) => {
    if (d.mode === 'nth') {
      const n = Math.min(0xffffffff, (d.unionWord >>> 0) + 1);
      emitNumgen(c.b, r, NFT_NG_INCREMENTAL, n);
      emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(d.packet % n));
      return;
    }
    emitMetaGet(c.b, r, NFT_META_PRANDOM);
    emitBitwise(c.b, r, r, le32(0x7fffffff), [0, 0, 0, 0]);
    emitByteorder(c.b, NFT_BYTEORDER_HTON, r, r, 4, 4);
    emitCmp(c.b, d.invert ? NFT_CMP_GTE : NFT_CMP_LT, r, be(d.probability >>> 0, 4));
  });
}
