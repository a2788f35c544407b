/**
 * multiport (xt_multiport.c ports_match_v1): the port is in the list (ports
 * and ranges) XOR invert. Lowered as nft writes `th dport { 22, 80-88 }`:
 * a 2-byte load and a lookup in an anonymous interval set (inverted:
 * NFT_LOOKUP_F_INV). `--ports` (source OR destination) has no nft
 * expression and is refused for now.
 */
import { NFT_PAYLOAD_TRANSPORT_HEADER as TH } from '../../vm/layout.js';
import { emitLookup, emitPayload, emitXtL4 } from '../../vm/expr/index.js';
import type { MatchNode } from '../ast.js';
import type { MultiportData } from '../ext/match/multiport.js';
import { be, type LowerCtx } from './ctx.js';

export function lowerMultiport(c: LowerCtx, m: MatchNode): void {
  const d = m.data as MultiportData;
  if (d.flags === 'either') c.refuseMatch(m, '--ports (source or destination) not lowered yet');
  if (c.legacy) emitXtL4(c.b, 4);
  const set = c.anonSet(2, true);
  for (const p of d.ports) set.addRange(be(p.lo, 2), be(p.hi, 2));
  c.withReg(2, (r) => {
    emitPayload(c.b, r, TH, d.flags === 'source' ? 0 : 2, 2);
    emitLookup(c.b, r, set.name, d.invert);
  });
}
