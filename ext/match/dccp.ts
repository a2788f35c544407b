/**
 * dccp match: iptables `extensions/libxt_dccp.c`, kernel
 * `net/netfilter/xt_dccp.c` (`.proto = IPPROTO_DCCP`, both families).
 *
 * `--source-port`/`--sport` and `--destination-port`/`--dport` take a port
 * or range (XTTYPE_PORTRC), `--dccp-types` a comma list of packet type
 * names, `--dccp-option` an option number 1-255; all invertible.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parsePortRangeX } from '../hostmask.js';
import { xtOptUse, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import { be16, byteOr0, headerPointer, l4Header, type MatchFn, type XtActionParam } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

interface DccpData {
  /** Source port range, when `--sport` was given (XT_DCCP_SRC_PORTS). */
  spts: [number, number] | undefined;
  invSpts: boolean;
  /** Destination port range, when given (XT_DCCP_DEST_PORTS). */
  dpts: [number, number] | undefined;
  invDpts: boolean;
  /** Bit mask (1 << DCCP_PKT_*) of the packet types, when given (XT_DCCP_TYPE). */
  typemask: number | undefined;
  invTypes: boolean;
  /** DCCP option number, when given (XT_DCCP_OPTION). */
  option: number | undefined;
  invOption: boolean;
  xflags: number;
}

/** dccp_pkt_types[], indexed by DCCP_PKT_* (linux/dccp.h). */
const DCCP_PKT_TYPES = ['REQUEST', 'RESPONSE', 'DATA', 'ACK', 'DATAACK', 'CLOSEREQ', 'CLOSE', 'RESET', 'SYNC', 'SYNCACK', 'INVALID'] as const;

const TABLE: readonly XtOptEntry[] = [
  { name: 'source-port', id: 0 },
  { name: 'sport', id: 0 },
  { name: 'destination-port', id: 1 },
  { name: 'dport', id: 1 },
  { name: 'dccp-types', id: 2 },
  { name: 'dccp-option', id: 3 },
];

function parsePorts(s: string, opt: string): [number, number] {
  const r = parsePortRangeX(s, 'dccp', opt);
  // iptables 1.8.13 refuses a reversed range
  if (r[0] > r[1]) fail(`dccp: range ${r[0]}:${r[1]} for option "--${opt}" is reversed (min > max).`);
  return r;
}

function parseTypes(s: string): number {
  let mask = 0;
  for (const tok of s.split(',')) {
    if (tok === '') continue; // strtok
    const i = DCCP_PKT_TYPES.findIndex((n) => n.toLowerCase() === tok.toLowerCase());
    if (i < 0) fail(`Unknown DCCP type \`${tok}'`);
    mask |= 1 << i;
  }
  return mask;
}

function savePorts(name: string, r: [number, number] | undefined, inv: boolean): string {
  if (!r) return '';
  return `${inv ? ' !' : ''} --${name} ${r[0] === r[1] ? r[0] : `${r[0]}:${r[1]}`}`;
}

export const dccp: MatchModule<DccpData> = {
  kind: 'match',
  name: 'dccp',
  proto: 33,
  options: TABLE.map((o) => ({ name: o.name, arg: 1 as const, invert: true })),
  init: () => ({ spts: undefined, invSpts: false, dpts: undefined, invDpts: false, typemask: undefined, invTypes: false, option: undefined, invOption: false, xflags: 0 }),
  parse(d, opt, arg, invert) {
    d.xflags = xtOptUse('dccp', TABLE, d.xflags, opt);
    switch (opt) {
      case 'source-port':
      case 'sport':
        d.spts = parsePorts(arg!, opt);
        if (invert) d.invSpts = true;
        return;
      case 'destination-port':
      case 'dport':
        d.dpts = parsePorts(arg!, opt);
        if (invert) d.invDpts = true;
        return;
      case 'dccp-types':
        d.typemask = parseTypes(arg!);
        if (invert) d.invTypes = true;
        return;
      case 'dccp-option':
        d.option = parseUintOpt(arg!, 1, 255, 'dccp', 'dccp-option');
        if (invert) d.invOption = true;
        return;
    }
  },
  save(d) {
    let s = savePorts('sport', d.spts, d.invSpts) + savePorts('dport', d.dpts, d.invDpts);
    if (d.typemask !== undefined) {
      const names = DCCP_PKT_TYPES.filter((_, i) => d.typemask! & (1 << i));
      s += `${d.invTypes ? ' !' : ''} --dccp-types ${names.join(',')}`;
    }
    if (d.option !== undefined) s += `${d.invOption ? ' !' : ''} --dccp-option ${d.option}`;
    return s;
  },
  ...compatMatchFaces(dccpMt),
};


// --- reference semantics (xt_dccp.c dccp_mt, kernel 6.18) -------------------------------
/** __dccp_hdr_len(): the generic header (12, +4 with X), then the type's own part (include/linux/dccp.h dccp_packet_hdr_len). */
function dccpHdrLen(b8: number): number {
  const type = (b8 >> 1) & 0xf;
  const ext = b8 & 1 ? 4 : 0;
  let own: number;
  if (type === 2) own = 0; // DATA
  else if (type === 4 || type === 3 || type === 8 || type === 9 || type === 6 || type === 5) own = 8; // dccp_hdr_ack_bits
  else if (type === 0) own = 4; // REQUEST: dccp_hdr_request
  else own = 12; // RESPONSE: dccp_hdr_response; others: dccp_hdr_reset
  return 12 + ext + own;
}

/** dccp_find_option(): a data offset below the header length or options cut short hotdrop. */
function dccpFindOption(par: XtActionParam, option: number, th: number): boolean {
  const d = par.d;
  const hl = dccpHdrLen(d[th + 8]!);
  const doff4 = d[th + 4]! * 4;
  if (doff4 < hl) {
    par.hotdrop = true;
    return false;
  }
  const optlen = doff4 - hl;
  if (!optlen) return false;
  const op = headerPointer(par, par.thoff + hl, optlen);
  if (op < 0) {
    par.hotdrop = true;
    return false;
  }
  for (let i = 0; i < optlen; ) {
    if (d[op + i] === option) return true;
    if (d[op + i]! < 2) i++;
    else i += byteOr0(par, op + i + 1) || 1;
  }
  return false;
}

/** dccp_mt(): never a later fragment; the 12-byte header (else hotdrop); ports, type, option, each XOR its inversion. */
function dccpMt(info: DccpData): MatchFn {
  return (par) => {
    const th = l4Header(par, 12);
    if (th < 0) return false;
    const d = par.d;
    const sport = be16(d, th);
    const dport = be16(d, th + 2);
    if (info.spts && (sport >= info.spts[0] && sport <= info.spts[1]) === info.invSpts) return false;
    if (info.dpts && (dport >= info.dpts[0] && dport <= info.dpts[1]) === info.invDpts) return false;
    if (info.typemask !== undefined && ((info.typemask & (1 << ((d[th + 8]! >> 1) & 0xf))) !== 0) === info.invTypes) return false;
    if (info.option !== undefined && dccpFindOption(par, info.option, th) === info.invOption) return false;
    return true;
  };
}
