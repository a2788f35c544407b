/**
 * tcp match: net/netfilter/xt_tcpudp.c tcp_mt(), tcp_find_option() (kernel 6.18).
 */
import type { TcpData } from '../../../ext/match/tcpudp.js';
import { be16, headerPointer, type MatchFn, type XtActionParam } from '../../../ext/xt.js';

/** sizeof(struct tcphdr) */
const TCPHDR_LEN = 20;

export function portMatch(min: number, max: number, port: number, invert: boolean): boolean {
  return (port >= min && port <= max) !== invert;
}

function findOption(par: XtActionParam, option: number, optlen: number, invert: boolean): boolean {
  if (optlen === 0) return invert;
  const op = headerPointer(par, par.thoff + TCPHDR_LEN, optlen);
  if (op < 0) {
    par.hotdrop = true;
    return false;
  }
  const d = par.d;
  for (let i = 0; i < optlen; ) {
    if (d[op + i] === option) return !invert;
    if (d[op + i]! < 2) i++;
    else {
      // op[i+1] may lie one byte past the options: the kernel reads the
      // packet byte there (or its stack copy); past the packet we take 0.
      const len = op + i + 1 < par.end ? d[op + i + 1]! : 0;
      i += len || 1;
    }
  }
  return invert;
}

export function tcp(info: TcpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) {
      // "Don't allow a fragment of TCP 8 bytes in": offset 1 overlaps the flags.
      if (par.fragoff === 1) par.hotdrop = true;
      return false;
    }
    const th = headerPointer(par, par.thoff, TCPHDR_LEN);
    if (th < 0) {
      par.hotdrop = true;
      return false;
    }
    const d = par.d;
    if (!portMatch(info.spts[0], info.spts[1], be16(d, th), info.invSpt)) return false;
    if (!portMatch(info.dpts[0], info.dpts[1], be16(d, th + 2), info.invDpt)) return false;
    if (((d[th + 13]! & info.flgMask) === info.flgCmp) === info.invFlags) return false;
    if (info.option) {
      const doff = d[th + 12]! >> 4;
      if (doff * 4 < TCPHDR_LEN) {
        par.hotdrop = true;
        return false;
      }
      if (!findOption(par, info.option, doff * 4 - TCPHDR_LEN, info.invOption)) return false;
    }
    return true;
  };
}
