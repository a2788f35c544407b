/**
 * Matches on single IP header fields, lowered as nft expresses the same test:
 *  - iprange (xt_iprange): a range over the 4/16-byte address;
 *  - length (xt_length): `meta load len`, byteorder hton, range over the
 *    big-endian u32 (the L3 length: tot_len / payload_len + 40);
 *  - ttl / hl (ipt_ttl, ip6t_hl): 1 byte at network+8 / +7, cmp eq/neq/lt/gt;
 *  - tos (xt_tos), dscp (xt_dscp), ecn (xt_ecn): the DS field (IPv4 byte 1;
 *    IPv6 bits 4..11 of the first 2 bytes), a bitwise, a cmp. ecn's CWR/ECE
 *    tests read the TCP flags byte;
 *  - mac (xt_mac): 6 bytes at link+6, BREAKs without a MAC header;
 *  - pkttype (xt_pkttype): `meta load pkttype` (loopback remapped as the
 *    match does), cmp.
 */
import {
  NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LT, NFT_CMP_NEQ, NFT_META_LEN, NFT_META_PKTTYPE,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER as NH, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ,
} from '../../vm/layout.js';
import { emitBitwise, emitByteorder, emitCmp, emitMetaGet, emitPayload, emitRange } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { IprangeData } from '../../ext/match/iprange.js';
import type { LengthData } from '../../ext/match/length.js';
import type { TtlData } from '../../ext/match/ttl.js';
import type { TosMatchData } from '../../ext/match/tos.js';
import type { DscpData } from '../../ext/match/dscp.js';
import type { EcnData } from '../../ext/match/ecn.js';
import type { MacData } from '../../ext/match/mac.js';
import type { PkttypeData } from '../../ext/match/pkttype.js';
import { be, type LowerCtx } from './ctx.js';

export function lowerIprange(c: LowerCtx, m: MatchNode): void {
  const d = m.data as IprangeData;
  const len = c.v6 ? 16 : 4;
  for (const [side, off] of [[d.src, c.v6 ? 8 : 12], [d.dst, c.v6 ? 24 : 16]] as const) {
    if (!side) continue;
    c.withReg(len, (r) => {
      emitPayload(c.b, r, NH, off, len);
      emitRange(c.b, side.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, side.min, side.max);
    });
  }
}

export function lowerLength(c: LowerCtx, m: MatchNode): void {
  const d = m.data as LengthData;
  c.withReg(4, (r) => {
    emitMetaGet(c.b, r, NFT_META_LEN);
    emitByteorder(c.b, NFT_BYTEORDER_HTON, r, r, 4, 4);
    if (d.min === d.max) emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, be(d.min, 4));
    else emitRange(c.b, d.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(d.min, 4), be(d.max, 4));
  });
}

export function lowerTtl(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TtlData;
  const op = { eq: NFT_CMP_EQ, ne: NFT_CMP_NEQ, lt: NFT_CMP_LT, gt: NFT_CMP_GT }[d.mode];
  c.withReg(1, (r) => {
    emitPayload(c.b, r, NH, c.v6 ? 7 : 8, 1);
    emitCmp(c.b, op, r, [d.value]);
  });
}

/** `(dsfield & mask) == value XOR invert` over the DS field (8 bits). */
function dsTest(c: LowerCtx, mask: number, value: number, invert: boolean): void {
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

export function lowerTos(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TosMatchData;
  dsTest(c, d.mask, d.value, d.invert);
}

export function lowerDscp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as DscpData;
  dsTest(c, 0xfc, d.dscp << 2, d.invert);
}

export function lowerEcn(c: LowerCtx, m: MatchNode): void {
  const d = m.data as EcnData;
  if (d.ip) dsTest(c, 0x03, d.ect, d.invIp);
  for (const [on, inv, bit] of [[d.ece, d.invEce, 0x40], [d.cwr, d.invCwr, 0x80]] as const) {
    if (!on) continue;
    c.withReg(1, (r) => {
      emitPayload(c.b, r, TH, 13, 1);
      emitBitwise(c.b, r, r, [bit], [0]);
      emitCmp(c.b, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [bit]);
    });
  }
}

export function lowerMac(c: LowerCtx, m: MatchNode): void {
  const d = m.data as MacData;
  c.withReg(6, (r) => {
    emitPayload(c.b, r, NFT_PAYLOAD_LL_HEADER, 6, 6);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, d.srcaddr);
  });
}

export function lowerPkttype(c: LowerCtx, m: MatchNode): void {
  const d = m.data as PkttypeData;
  c.withReg(1, (r) => {
    emitMetaGet(c.b, r, NFT_META_PKTTYPE);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [d.pkttype]);
  });
}
