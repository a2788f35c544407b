/**
 * tcp and udp (xt_tcpudp), as iptables-nft's add_nft_tcp / add_nft_udp /
 * add_nft_tcpudp lower them: the flags first (1 byte at transport+13,
 * bitwise mask, cmp), then the ports: a single sport and a single dport
 * with equal inversion as ONE 4-byte compare, otherwise each side as cmp
 * (single port), cmp lte/gt (a range from 0) or range eq/neq.
 *
 * `--tcp-option` is x_tables' option walk (xt_match tcpopt, vm/expr/xtmatch.ts).
 *
 * backend 'legacy' puts the x_tables guard (xt_l4) first and never merges an
 * inverted pair: "(sport, dport) != (a, b)" would match when only one
 * differs, the kernel's tcp match needs both to.
 */
import {
  NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ,
} from '../../vm/layout.js';
import { emitBitwise, emitCmp, emitPayload, emitRange, emitXtL4, emitXtMatchTcpOpt } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { PortsData, TcpData, UdpData } from '../../ext/match/tcpudp.js';
import { be, type LowerCtx } from './ctx.js';

function range16(c: LowerCtx, r: number, lo: number, hi: number, inv: boolean): void {
  if (lo === hi) emitCmp(c.b, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, r, be(lo, 2));
  else if (lo === 0) emitCmp(c.b, inv ? NFT_CMP_GT : NFT_CMP_LTE, r, be(hi, 2));
  else emitRange(c.b, inv ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(lo, 2), be(hi, 2));
}

export function lowerPorts(c: LowerCtx, d: PortsData): void {
  const [s0, s1] = d.spts;
  const [d0, d1] = d.dpts;
  if (s0 && s0 === s1 && d0 && d0 === d1 && d.invSpt === d.invDpt && !(c.legacy && d.invSpt)) {
    c.withReg(4, (r) => {
      emitPayload(c.b, r, TH, 0, 4);
      emitCmp(c.b, d.invSpt ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [...be(s0, 2), ...be(d0, 2)]);
    });
    return;
  }
  // x_tables' port_match() inverts even the full range (never matches); nft emits nothing for it
  if (s0 || s1 < 0xffff || (c.legacy && d.invSpt)) {
    c.withReg(2, (r) => {
      emitPayload(c.b, r, TH, 0, 2);
      range16(c, r, s0, s1, d.invSpt);
    });
  }
  if (d0 || d1 < 0xffff || (c.legacy && d.invDpt)) {
    c.withReg(2, (r) => {
      emitPayload(c.b, r, TH, 2, 2);
      range16(c, r, d0, d1, d.invDpt);
    });
  }
}

export function lowerTcp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TcpData;
  if (c.legacy) emitXtL4(c.b, 20, true);
  if (d.flgMask || d.invFlags) {
    c.withReg(1, (r) => {
      emitPayload(c.b, r, TH, 13, 1);
      emitBitwise(c.b, r, r, [d.flgMask], [0]);
      emitCmp(c.b, d.invFlags ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [d.flgCmp]);
    });
  }
  lowerPorts(c, d);
  // nf_tables' exthdr walks options differently; iptables-nft itself falls back to the xt match
  if (d.option) emitXtMatchTcpOpt(c.b, d.option, d.invOption);
}

export function lowerUdp(c: LowerCtx, m: MatchNode): void {
  if (c.legacy) emitXtL4(c.b, 8);
  lowerPorts(c, m.data as UdpData);
}
