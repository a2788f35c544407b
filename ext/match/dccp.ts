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
  lower: 'needs the DCCP header: ports, packet type, options (xt_dccp)',
  reference: 'needs the DCCP header: ports, packet type, options (xt_dccp)',
};

