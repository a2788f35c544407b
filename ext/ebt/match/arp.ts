/**
 * arp match: iptables `extensions/libebt_arp.c`, kernel
 * `net/bridge/netfilter/ebt_arp.c`: fields of an ARP/RARP header; the rule
 * needs `-p ARP` or `-p RARP`.
 */
import { fail } from '../../../core/errors.js';
import type { MacMask } from '../../../core/ebt-ast.js';
import type { EbtModule, EbtParam } from '../types.js';
import { ebtHeader } from '../ref.js';
import { hostMaskBytes } from '../../hostmask.js';
import {
  ethertypeByName, formatIpMask, formatMacMask, macMaskOption, parseIpMask,
  wholeNumber,
} from '../values.js';

const ETH_P_ARP = 0x0806;
const ETH_P_RARP = 0x8035;

/** opcodes[] of libebt_arp.c: opcode n is entry n-1. */
const OPCODES = [
  'Request', 'Reply', 'Request_Reverse', 'Reply_Reverse', 'DRARP_Request', 'DRARP_Reply', 'DRARP_Error',
  'InARP_Request', 'ARP_NAK',
];

interface Field<T> {
  v: T;
  inv: boolean;
}

interface ArpData {
  opcode?: Field<number>;
  htype?: Field<number>;
  ptype?: Field<number>;
  ipSrc?: Field<{ addr: Uint8Array; mask: Uint8Array }>;
  ipDst?: Field<{ addr: Uint8Array; mask: Uint8Array }>;
  macSrc?: Field<MacMask>;
  macDst?: Field<MacMask>;
  gratuitous?: Field<true>;
}

export const arp: EbtModule<ArpData> = {
  kind: 'match',
  name: 'arp',
  options: [
    { name: 'arp-opcode', arg: 1, invert: true },
    { name: 'arp-op', arg: 1, invert: true },
    { name: 'arp-htype', arg: 1, invert: true },
    { name: 'arp-ptype', arg: 1, invert: true },
    { name: 'arp-ip-src', arg: 1, invert: true },
    { name: 'arp-ip-dst', arg: 1, invert: true },
    { name: 'arp-mac-src', arg: 1, invert: true },
    { name: 'arp-mac-dst', arg: 1, invert: true },
    { name: 'arp-gratuitous', arg: 0, invert: true },
  ],
  init: () => ({}),
  parse(d, opt, arg, inv) {
    const a = arg!;
    switch (opt) {
      case 'arp-opcode':
      case 'arp-op': {
        let v = wholeNumber(a, 10);
        if (v === undefined) {
          const i = OPCODES.findIndex((n) => n.toLowerCase() === a.toLowerCase());
          if (i < 0) fail('Problem with specified ARP opcode');
          v = i + 1;
        }
        if (v > 0xffff) fail('Problem with specified ARP opcode');
        d.opcode = { v, inv };
        return;
      }
      case 'arp-htype': {
        let v = wholeNumber(a, 10);
        if (v === undefined) {
          if (a.toLowerCase() !== 'ethernet') fail('Problem with specified ARP hardware type');
          v = 1;
        }
        if (v > 0xffff) fail('Problem with specified ARP hardware type');
        d.htype = { v, inv };
        return;
      }
      case 'arp-ptype': {
        const v = wholeNumber(a, 16) ?? ethertypeByName(a);
        if (v === undefined || v > 0xffff) fail('Problem with specified ARP protocol type');
        d.ptype = { v, inv };
        return;
      }
      case 'arp-ip-src':
        d.ipSrc = { v: parseIpMask('ip', a), inv };
        return;
      case 'arp-ip-dst':
        d.ipDst = { v: parseIpMask('ip', a), inv };
        return;
      case 'arp-mac-src':
        d.macSrc = { v: macMaskOption(a, 'ARP source'), inv };
        return;
      case 'arp-mac-dst':
        d.macDst = { v: macMaskOption(a, 'ARP destination'), inv };
        return;
      default:
        d.gratuitous = { v: true, inv };
    }
  },
  final(_d, _seen, ctx) {
    const r = ctx.rule;
    if (r.anyProto || r.is8023 || (r.ethproto !== ETH_P_ARP && r.ethproto !== ETH_P_RARP) || r.invProto) {
      fail('For (R)ARP filtering the protocol must be specified as ARP or RARP', 'check');
    }
  },
  save(d) {
    const f = <T>(x: Field<T> | undefined, opt: string, text: (v: T) => string) =>
      x ? `${x.inv ? ' !' : ''} --${opt}${text(x.v) === '' ? '' : ' ' + text(x.v)}` : '';
    return (
      f(d.opcode, 'arp-op', (v) => (v >= 1 && v <= OPCODES.length ? OPCODES[v - 1]! : String(v))) +
      f(d.htype, 'arp-htype', String) +
      f(d.ptype, 'arp-ptype', (v) => `0x${v.toString(16)}`) +
      f(d.ipSrc, 'arp-ip-src', (v) => formatIpMask('ip', v)) +
      f(d.ipDst, 'arp-ip-dst', (v) => formatIpMask('ip', v)) +
      f(d.macSrc, 'arp-mac-src', formatMacMask) +
      f(d.macDst, 'arp-mac-dst', formatMacMask) +
      f(d.gratuitous, 'arp-gratuitous', () => '')
    );
  },
  lower: { rev: 0 },
  reference: {
    mt: (d) => {
      const ipSrc = d.ipSrc ? hostMaskBytes(d.ipSrc.v) : undefined;
      const ipDst = d.ipDst ? hostMaskBytes(d.ipDst.v) : undefined;
      return (p) => ebtArpMt(d, ipSrc, ipDst, p);
    },
  },
};

function maskedDiffers(dd: Uint8Array, at: number, am: MacMask): boolean {
  for (let i = 0; i < am.addr.length; i++) if (((dd[at + i]! ^ am.addr[i]!) & am.mask[i]!) !== 0) return true;
  return false;
}

/** ebt_arp_mt() (net/bridge/netfilter/ebt_arp.c): the ARP header at skb->data; `ipSrc`, `ipDst`: d's addresses as bytes (hostMaskBytes). */
function ebtArpMt(d: ArpData, ipSrc: MacMask | undefined, ipDst: MacMask | undefined, p: EbtParam): boolean {
  const ah = ebtHeader(p, 0, 8);
  if (ah < 0) return false;
  const dd = p.d;
  const hrd = (dd[ah]! << 8) | dd[ah + 1]!;
  const pro = (dd[ah + 2]! << 8) | dd[ah + 3]!;
  const hln = dd[ah + 4]!;
  const pln = dd[ah + 5]!;
  const op = (dd[ah + 6]! << 8) | dd[ah + 7]!;
  if (d.opcode && (d.opcode.v !== op) !== d.opcode.inv) return false;
  if (d.htype && (d.htype.v !== hrd) !== d.htype.inv) return false;
  if (d.ptype && (d.ptype.v !== pro) !== d.ptype.inv) return false;
  if (d.ipSrc || d.ipDst || d.gratuitous) {
    if (pln !== 4 || pro !== 0x0800) return false;
    const sap = ebtHeader(p, 8 + hln, 4);
    if (sap < 0) return false;
    const dap = ebtHeader(p, 8 + 2 * hln + 4, 4);
    if (dap < 0) return false;
    if (d.ipSrc && maskedDiffers(dd, sap, ipSrc!) !== d.ipSrc.inv) return false;
    if (d.ipDst && maskedDiffers(dd, dap, ipDst!) !== d.ipDst.inv) return false;
    if (d.gratuitous) {
      const differ = dd[sap] !== dd[dap] || dd[sap + 1] !== dd[dap + 1] || dd[sap + 2] !== dd[dap + 2] || dd[sap + 3] !== dd[dap + 3];
      if (differ !== d.gratuitous.inv) return false;
    }
  }
  if (d.macSrc || d.macDst) {
    if (hln !== 6 || hrd !== 1) return false;
    if (d.macSrc) {
      const mp = ebtHeader(p, 8, 6);
      if (mp < 0 || maskedDiffers(dd, mp, d.macSrc.v) !== d.macSrc.inv) return false;
    }
    if (d.macDst) {
      const mp = ebtHeader(p, 8 + hln + pln, 6);
      if (mp < 0 || maskedDiffers(dd, mp, d.macDst.v) !== d.macDst.inv) return false;
    }
  }
  return true;
}
