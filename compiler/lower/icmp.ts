/**
 * icmp / icmp6 (ip_tables.c icmp_match, ip6_tables.c icmp6_match):
 * `(type == t && code_min <= code <= code_max) XOR invert`. Type and code
 * are adjacent bytes, so the conjunction is one 2-byte range over
 * type‖code (nft would write `icmp type t icmp code a-b`); a full code range
 * compares the type byte alone. IPv4 type 0xff ("any") matches every ICMP
 * header: nothing to compare (and `! any` never matches: a BREAK verdict).
 */
import { NFT_BREAK, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ } from '../../vm/layout.js';
import { emitCmp, emitPayload, emitRange, emitVerdict, emitXtL4 } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { IcmpData } from '../../ext/match/icmp.js';
import type { LowerCtx } from './ctx.js';

export function lowerIcmp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as IcmpData;
  if (c.legacy) emitXtL4(c.b, 8);
  if (!c.v6 && d.type === 0xff && d.codeMin === 0 && d.codeMax === 0xff) {
    if (d.invert) emitVerdict(c.b, NFT_BREAK);
    return;
  }
  const op = d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (d.codeMin === 0 && d.codeMax === 0xff) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, TH, 0, 1);
      emitCmp(c.b, op, r, [d.type]);
    });
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, TH, 0, 2);
    if (d.codeMin === d.codeMax) emitCmp(c.b, op, r, [d.type, d.codeMin]);
    else if (d.codeMin > d.codeMax) emitVerdict(c.b, d.invert ? 0 : NFT_BREAK);
    else emitRange(c.b, d.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, [d.type, d.codeMin], [d.type, d.codeMax]);
  });
}
