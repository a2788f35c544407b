/**
 * tcp and udp matches: libxt_tcp.c / libxt_udp.c, kernel xt_tcpudp.c.
 *
 * Data mirrors `struct xt_tcp` / `struct xt_udp`: port ranges (spts, dpts,
 * inclusive), TCP flags mask/comparison, TCP option kind and the inversion
 * flags. Kernel `.proto` is IPPROTO_TCP/UDP, so the rule needs `-p tcp|udp`.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parsePortRange, strtoulWhole } from '../util.js';

export interface PortsData {
  spts: [number, number];
  dpts: [number, number];
  invSpt: boolean;
  invDpt: boolean;
}

export interface TcpData extends PortsData {
  /** TCP option kind (0 = no option match). */
  option: number;
  invOption: boolean;
  flgMask: number;
  flgCmp: number;
  invFlags: boolean;
  /** Which options were given (TCP_SRC_PORTS etc. of libxt_tcp). */
  given: number;
}

export type UdpData = PortsData & { given: number };

/** libxt_tcp tcp_flag_names[], in the order print_tcpf walks them. */
export const TCP_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
  ['ALL', 0x3f],
  ['NONE', 0],
];

export function parseTcpFlags(s: string): number {
  let r = 0;
  for (const part of s.split(',')) {
    if (part === '') continue; // strtok skips empty fields
    const f = TCP_FLAG_NAMES.find(([n]) => n.toLowerCase() === part.toLowerCase());
    if (!f) fail(`Unknown TCP flag \`${part}'`);
    r |= f[1];
  }
  return r;
}

export function printTcpFlags(flags: number): string {
  const names: string[] = [];
  let f = flags;
  while (f) {
    const e = TCP_FLAG_NAMES.find(([, v]) => v & f)!;
    names.push(e[0]);
    f &= ~e[1];
  }
  return names.length ? names.join(',') : 'NONE';
}

const SRC = 1;
const DST = 2;
const FLAGS = 4;
const OPTION = 8;

function savePorts(name: string, r: [number, number], inv: boolean): string {
  // 1.8.13 also prints an inverted full range (`! --sport 0:65535`)
  if (r[0] === 0 && r[1] === 0xffff && !inv) return '';
  return `${inv ? ' !' : ''} --${name} ${r[0] === r[1] ? r[0] : `${r[0]}:${r[1]}`}`;
}

export const tcp: MatchModule<TcpData> = {
  kind: 'match',
  name: 'tcp',
  proto: 6,
  options: [
    { name: 'source-port', arg: 1, invert: true, multi: true },
    { name: 'sport', arg: 1, invert: true, multi: true },
    { name: 'destination-port', arg: 1, invert: true, multi: true },
    { name: 'dport', arg: 1, invert: true, multi: true },
    { name: 'syn', arg: 0, invert: true, multi: true },
    { name: 'tcp-flags', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'tcp-option', arg: 1, invert: true, multi: true },
  ],
  init: () => ({ spts: [0, 0xffff], dpts: [0, 0xffff], invSpt: false, invDpt: false, option: 0, invOption: false, flgMask: 0, flgCmp: 0, invFlags: false, given: 0 }),
  parse(d, opt, arg, invert, _ctx, extra) {
    switch (opt) {
      case 'source-port':
      case 'sport':
        if (d.given & SRC) fail("Only one `--source-port' allowed", 'option');
        d.spts = parsePortRange(arg!);
        d.invSpt = invert;
        d.given |= SRC;
        return;
      case 'destination-port':
      case 'dport':
        if (d.given & DST) fail("Only one `--destination-port' allowed", 'option');
        d.dpts = parsePortRange(arg!);
        d.invDpt = invert;
        d.given |= DST;
        return;
      case 'syn':
      case 'tcp-flags':
        if (d.given & FLAGS) fail("Only one of `--syn' or `--tcp-flags'  allowed", 'option');
        if (opt === 'syn') {
          d.flgMask = parseTcpFlags('SYN,RST,ACK,FIN');
          d.flgCmp = parseTcpFlags('SYN');
        } else {
          d.flgMask = parseTcpFlags(arg!);
          d.flgCmp = parseTcpFlags(extra[0]!);
        }
        d.invFlags = invert;
        d.given |= FLAGS;
        return;
      case 'tcp-option': {
        if (d.given & OPTION) fail("Only one `--tcp-option' allowed", 'option');
        const v = strtoulWhole(arg!, 1n, 255n);
        if (v === undefined) fail(`Bad TCP option "${arg}"`);
        d.option = Number(v);
        d.invOption = invert;
        d.given |= OPTION;
        return;
      }
    }
  },
  save(d) {
    let s = savePorts('sport', d.spts, d.invSpt) + savePorts('dport', d.dpts, d.invDpt);
    if (d.option || d.invOption) s += `${d.invOption ? ' !' : ''} --tcp-option ${d.option}`;
    if (d.flgMask || d.invFlags) s += `${d.invFlags ? ' !' : ''} --tcp-flags ${printTcpFlags(d.flgMask)} ${printTcpFlags(d.flgCmp)}`;
    return s;
  },
};

export const udp: MatchModule<UdpData> = {
  kind: 'match',
  name: 'udp',
  proto: 17,
  options: [
    { name: 'source-port', arg: 1, invert: true, multi: true },
    { name: 'sport', arg: 1, invert: true, multi: true },
    { name: 'destination-port', arg: 1, invert: true, multi: true },
    { name: 'dport', arg: 1, invert: true, multi: true },
  ],
  init: () => ({ spts: [0, 0xffff], dpts: [0, 0xffff], invSpt: false, invDpt: false, given: 0 }),
  parse(d, opt, arg, invert) {
    if (opt === 'source-port' || opt === 'sport') {
      if (d.given & SRC) fail("Only one `--source-port' allowed", 'option');
      d.spts = parsePortRange(arg!);
      d.invSpt = invert;
      d.given |= SRC;
    } else {
      if (d.given & DST) fail("Only one `--destination-port' allowed", 'option');
      d.dpts = parsePortRange(arg!);
      d.invDpt = invert;
      d.given |= DST;
    }
  },
  save: (d) => savePorts('sport', d.spts, d.invSpt) + savePorts('dport', d.dpts, d.invDpt),
};
