/**
 * stp match: iptables `extensions/libebt_stp.c`, kernel
 * `net/bridge/netfilter/ebt_stp.c`: fields of a spanning tree BPDU
 * (type and flags, and the configuration BPDU's priorities, addresses,
 * cost, port and timers as ranges).
 */
import { fail } from '../../../core/errors.js';
import type { MacMask } from '../../../core/ebt-ast.js';
import type { EbtModule, EbtParam } from '../types.js';
import { ebtHeader } from '../ref.js';
import { formatMacMask, formatRange, macMaskOption, parseNumRange, wholeNumber } from '../values.js';

/** The options in EBT_STP_* bit order (the order ebtables prints them in); the maximum of a range. */
const FIELDS: ReadonlyArray<readonly [name: string, kind: 'type' | 'flags' | 'range' | 'mac', max: number]> = [
  ['stp-type', 'type', 0xff],
  ['stp-flags', 'flags', 0xff],
  ['stp-root-prio', 'range', 0xffff],
  ['stp-root-addr', 'mac', 0],
  ['stp-root-cost', 'range', 0xffffffff],
  ['stp-sender-prio', 'range', 0xffff],
  ['stp-sender-addr', 'mac', 0],
  ['stp-port', 'range', 0xffff],
  ['stp-msg-age', 'range', 0xffff],
  ['stp-max-age', 'range', 0xffff],
  ['stp-hello-time', 'range', 0xffff],
  ['stp-forward-delay', 'range', 0xffff],
];

type StpValue = number | [number, number] | MacMask;
type StpData = Map<string, { v: StpValue; inv: boolean }>;

const TYPE_NAMES: ReadonlyArray<readonly [string, number]> = [['config', 0], ['tcn', 0x80]];
const FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [['topology-change', 1], ['topology-change-ack', 0x80]];

export const stp: EbtModule<StpData> = {
  kind: 'match',
  name: 'stp',
  options: FIELDS.map(([name]) => ({ name, arg: 1, invert: true })),
  init: () => new Map(),
  parse(d, opt, arg, inv) {
    const [, kind, max] = FIELDS.find(([n]) => n === opt)!;
    const a = arg!;
    let v: StpValue;
    if (kind === 'type' || kind === 'flags') {
      const names = kind === 'type' ? TYPE_NAMES : FLAG_NAMES;
      const n = wholeNumber(a, 0) ?? names.find(([nm]) => nm.toLowerCase() === a.toLowerCase())?.[1];
      if (n === undefined || n > 0xff) fail(`Bad --${opt} argument`);
      v = n;
    } else if (kind === 'mac') {
      v = macMaskOption(a, `--${opt}`);
    } else {
      const r = parseNumRange(a, max, 10);
      if (!r) fail(`Bad --${opt} range`);
      v = r;
    }
    d.set(opt, { v, inv });
  },
  save(d) {
    let s = '';
    for (const [name, kind] of FIELDS) {
      const f = d.get(name);
      if (!f) continue;
      let text: string;
      if (kind === 'type' || kind === 'flags') {
        const n = f.v as number;
        text = (kind === 'type' ? TYPE_NAMES : FLAG_NAMES).find(([, v]) => v === n)?.[0] ?? String(n);
      } else if (kind === 'mac') {
        text = formatMacMask(f.v as MacMask);
      } else {
        text = formatRange(f.v as [number, number]);
      }
      s += `${f.inv ? ' !' : ''} --${name} ${text}`;
    }
    return s;
  },
  lower: { rev: 0 },
  reference: { mt: (d) => (p) => ebtStpMt(d, p) },
};

/** The configuration BPDU fields after the 6-byte header: [option, offset, width] (struct stp_config_pdu). */
const CONFIG: ReadonlyArray<readonly [string, number, 2 | 4 | 6]> = [
  ['stp-root-prio', 1, 2],
  ['stp-root-addr', 3, 6],
  ['stp-root-cost', 9, 4],
  ['stp-sender-prio', 13, 2],
  ['stp-sender-addr', 15, 6],
  ['stp-port', 21, 2],
  ['stp-msg-age', 23, 2],
  ['stp-max-age', 25, 2],
  ['stp-hello-time', 27, 2],
  ['stp-forward-delay', 29, 2],
];
const STP_CONFIG_PDU_LEN = 35 - 4;
/** dsap, ssap, ctrl, protocol id, version and type as ebt_stp_mt() requires them (the type compared too). */
const STP_HEADER = [0x42, 0x42, 0x03, 0x00, 0x00, 0x00];

/** ebt_stp_mt() and ebt_filter_config() (net/bridge/netfilter/ebt_stp.c): the BPDU at skb->data. */
function ebtStpMt(d: StpData, p: EbtParam): boolean {
  const sp = ebtHeader(p, 0, 6);
  if (sp < 0) return false;
  const dd = p.d;
  for (let i = 0; i < 6; i++) if (dd[sp + i] !== STP_HEADER[i]) return false;
  const type = d.get('stp-type');
  if (type && (type.v !== dd[sp + 5]) !== type.inv) return false;
  let config = false;
  for (const [name] of FIELDS) if (name !== 'stp-type' && d.has(name)) config = true;
  if (dd[sp + 5] !== 0 || !config) return true;
  const st = ebtHeader(p, 6, STP_CONFIG_PDU_LEN);
  if (st < 0) return false;
  const flags = d.get('stp-flags');
  if (flags && (flags.v !== dd[st]) !== flags.inv) return false;
  for (const [name, off, width] of CONFIG) {
    const f = d.get(name);
    if (!f) continue;
    const at = st + off;
    let out: boolean;
    if (width === 6) {
      const mm = f.v as MacMask;
      out = false;
      for (let i = 0; i < 6; i++) if (((dd[at + i]! ^ mm.addr[i]!) & mm.mask[i]!) !== 0) out = true;
    } else {
      const v = width === 2 ? (dd[at]! << 8) | dd[at + 1]! : ((dd[at]! << 24) | (dd[at + 1]! << 16) | (dd[at + 2]! << 8) | dd[at + 3]!) >>> 0;
      const r = f.v as [number, number];
      out = v < r[0] || v > r[1];
    }
    if (out !== f.inv) return false;
  }
  return true;
}
