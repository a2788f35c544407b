/**
 * multiport (xt_multiport.c ports_match_v1): the port is in the list (ports
 * and ranges) XOR invert. Lowered as nft writes `th dport { 22, 80-88 }`:
 * a 2-byte load and a lookup in an anonymous interval set (inverted:
 * NFT_LOOKUP_F_INV). `--ports` (source OR destination) has no nft
 * expression: both ports are loaded and an `xt_match ports` tests either.
 */
import { NFT_PAYLOAD_TRANSPORT_HEADER as TH } from '../../vm/layout.js';
import { emitLookup, emitPayload, emitXtL4, emitXtMatchPorts } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { MultiportData } from '../../ext/match/multiport.js';
import { be, type LowerCtx } from './ctx.js';

export function lowerMultiport(c: LowerCtx, m: MatchNode): void {
  const d = m.data as MultiportData;
  if (c.legacy) emitXtL4(c.b, 4);
  const set = c.anonSet(2, true);
  for (const p of d.ports) set.addRange(be(p.lo, 2), be(p.hi, 2));
  if (d.flags === 'either') {
    // source OR destination port: both loaded, one xt_match tests either against the set
    c.withReg(2, (r1) =>
      c.withReg(2, (r2) => {
        emitPayload(c.b, r1, TH, 0, 2);
        emitPayload(c.b, r2, TH, 2, 2);
        emitXtMatchPorts(c.b, r1, r2, set.name, d.invert);
      }),
    );
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, TH, d.flags === 'source' ? 0 : 2, 2);
    emitLookup(c.b, r, set.name, d.invert);
  });
}
