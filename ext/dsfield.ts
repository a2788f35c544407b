/**
 * The DS field (TOS / traffic class byte) that tos, dscp and ecn test, as
 * include/net/dsfield.h reads it: ipv4_get_dsfield() is the TOS byte,
 * ipv6_get_dsfield() the traffic class spread over the first two header
 * bytes. getDsfield() is the reference's read, dsTest() the VM lowering of
 * a masked compare.
 */
import type { XtActionParam } from './xt.js';
import { NFT_CMP_EQ, NFT_CMP_NEQ, NFT_PAYLOAD_NETWORK_HEADER as NH } from '../vm/layout.js';
import { emitBitwise, emitCmp, emitPayload } from '../vm/expr/index.js';
import { be, type LowerCtx } from './lower.js';

export function getDsfield(par: XtActionParam, family: 'ip' | 'ip6'): number {
  const d = par.d;
  const nh = par.nh;
  return family === 'ip' ? d[nh + 1]! : (((d[nh]! << 8) | d[nh + 1]!) >> 4) & 0xff;
}

/** `(dsfield & mask) == value XOR invert` over the DS field (8 bits). */
export function dsTest(c: LowerCtx, mask: number, value: number, invert: boolean): void {
  const op = invert ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (!c.v6) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, NH, 1, 1);
      emitBitwise(c.b, r, r, [mask], [0]);
      emitCmp(c.b, op, r, [value & mask]);
    });
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, NH, 0, 2);
    emitBitwise(c.b, r, r, be(mask << 4, 2), [0, 0]);
    emitCmp(c.b, op, r, be((value & mask) << 4, 2));
  });
}
