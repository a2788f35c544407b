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

/**
 * `(dsfield & mask) == value XOR invert` over the DS field (8 bits). The
 * value is compared whole, as tos_mt() does: a value with bits outside the
 * mask never matches.
 */
export function dsTest(c: LowerCtx, mask: number, value: number, invert: boolean): void {
  const op = invert ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (!c.v6) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, NH, 1, 1);
      emitBitwise(c.b, r, r, [mask], [0]);
      emitCmp(c.b, op, r, [value]);
    });
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, NH, 0, 2);
    emitBitwise(c.b, r, r, be(mask << 4, 2), [0, 0]);
    emitCmp(c.b, op, r, be(value << 4, 2));
  });
}

/**
 * csum_replace2() (include/net/checksum.h): the incremental update of a
 * 16-bit one's-complement checksum at `at` when the 16-bit word `old`
 * becomes `nw` (RFC 1624, with csum16_add's end-around carry).
 */
export function csumReplace2(d: Uint8Array, at: number, old: number, nw: number): void {
  const add = (a: number, b: number) => {
    const r = (a + b) & 0xffff;
    return (r + (r < b ? 1 : 0)) & 0xffff;
  };
  let x = ~((d[at]! << 8) | d[at + 1]!) & 0xffff;
  x = add(x, ~old & 0xffff);
  x = add(x, nw & 0xffff);
  const c = ~x & 0xffff;
  d[at] = c >> 8;
  d[at + 1] = c & 0xff;
}

/** ipv4_change_dsfield() (include/net/dsfield.h): the TOS byte becomes (tos & mask) | value, with its own checksum fix-up. */
export function ipv4ChangeDsfield(d: Uint8Array, nh: number, mask: number, value: number): void {
  let check = (d[nh + 10]! << 8) | d[nh + 11]!;
  const ds = ((d[nh + 1]! & mask) | value) & 0xff;
  check += d[nh + 1]!;
  if ((check + 1) >> 16) check = (check + 1) & 0xffff;
  check -= ds;
  check += check >> 16;
  check &= 0xffff;
  d[nh + 10] = check >> 8;
  d[nh + 11] = check & 0xff;
  d[nh + 1] = ds;
}

/** ipv6_change_dsfield(): the traffic class becomes (tc & mask) | value. */
export function ipv6ChangeDsfield(d: Uint8Array, nh: number, mask: number, value: number): void {
  const p = (d[nh]! << 8) | d[nh + 1]!;
  const v = ((p & (((mask << 4) | 0xf00f) & 0xffff)) | ((value << 4) & 0xffff)) & 0xffff;
  d[nh] = v >> 8;
  d[nh + 1] = v & 0xff;
}

/**
 * inet_proto_csum_replace4() (net/core/utils.c) for a packet whose checksum
 * is complete (not CHECKSUM_PARTIAL): the 16-bit checksum at `at` when the
 * 32-bit value `from` becomes `to` (csum_sub / csum_add / csum_fold).
 * inet_proto_csum_replace2 is the same with 16-bit values.
 */
export function inetProtoCsumReplace4(d: Uint8Array, at: number, from: number, to: number): void {
  const add = (a: number, b: number) => {
    const r = (a + b) >>> 0;
    return (r + (r < b >>> 0 ? 1 : 0)) >>> 0;
  };
  const sum = (d[at]! << 8) | d[at + 1]!;
  let c = (~sum) >>> 0;
  c = add(c, ~from >>> 0);
  c = add(c, to >>> 0);
  let f = (c & 0xffff) + (c >>> 16);
  f = (f & 0xffff) + (f >>> 16);
  const r = ~f & 0xffff;
  d[at] = r >> 8;
  d[at + 1] = r & 0xff;
}
