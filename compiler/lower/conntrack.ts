/**
 * conntrack / state (xt_conntrack v3) on the packet's ct metadata, as nft's
 * `ct state`, `ct status`, `ct direction`:
 *  - --ctstate: `ct load state`, & the state bits (x_tables UNTRACKED 1<<8
 *    is nft's 1<<6), cmp neq 0 (inverted: eq 0). `state` is defined without
 *    a conntrack (INVALID), as in the match;
 *  - --ctstatus: `ct load status` & bits, cmp neq|eq 0 (BREAKs without ct);
 *  - --ctdir: `ct load direction`, cmp eq 0|1.
 * The SNAT/DNAT pseudo-states load x_tables' state word (ct key xt_state,
 * vm/expr/ct.ts); the tuple/expiry options need the conntrack model and are
 * refused.
 */
import { NFT_CMP_EQ, NFT_CMP_NEQ } from '../../vm/layout.js';
import {
  NFT_CT_DIRECTION, NFT_CT_STATE, NFT_CT_STATUS, NFT_CT_XT_STATE, NF_CT_STATE_UNTRACKED_BIT, emitBitwise, emitCmp, emitCtGet,
} from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { CT_STATE, type ConntrackData } from '../../ext/match/conntrack.js';
import { le32, type LowerCtx } from './ctx.js';

function bitsTest(c: LowerCtx, key: number, mask: number, invert: boolean): void {
  c.withReg(4, (r) => {
    emitCtGet(c.b, r, key);
    emitBitwise(c.b, r, r, le32(mask), [0, 0, 0, 0]);
    emitCmp(c.b, invert ? NFT_CMP_EQ : NFT_CMP_NEQ, r, [0, 0, 0, 0]);
  });
}

export function lowerConntrack(c: LowerCtx, m: MatchNode): void {
  const d = m.data as ConntrackData;
  for (const k of ['proto', 'origsrc', 'origdst', 'replsrc', 'repldst', 'origsrcport', 'origdstport', 'replsrcport', 'repldstport', 'expire'] as const) {
    if (d[k]) c.refuseMatch(m, `--ct${k} needs the conntrack model, semantics not modelled yet`);
  }
  if (d.state) {
    const s = d.state.mask;
    if (s & (CT_STATE.SNAT | CT_STATE.DNAT)) {
      // the virtual NAT states come from the status bits: test x_tables' state word
      bitsTest(c, NFT_CT_XT_STATE, s, d.state.invert);
    } else {
      const bits = (s & 0x0f) | (s & CT_STATE.UNTRACKED ? NF_CT_STATE_UNTRACKED_BIT : 0);
      bitsTest(c, NFT_CT_STATE, bits, d.state.invert);
    }
  }
  if (d.status) bitsTest(c, NFT_CT_STATUS, d.status.mask, d.status.invert);
  if (d.dir) {
    c.withReg(1, (r) => {
      emitCtGet(c.b, r, NFT_CT_DIRECTION);
      emitCmp(c.b, NFT_CMP_EQ, r, [d.dir === 'ORIGINAL' ? 0 : 1]);
    });
  }
}
