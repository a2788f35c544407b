/**
 * stp match: iptables `extensions/libebt_stp.c`, kernel
 * `net/bridge/netfilter/ebt_stp.c`: fields of a spanning tree BPDU
 * (type and flags, and the configuration BPDU's priorities, addresses,
 * cost, port and timers as ranges).
 */
import { fail } from '../../../core/errors.js';
import type { MacMask } from '../../../core/ebt-ast.js';
import type { EbtModule } from '../types.js';
import { BRIDGE_LOWER_REFUSAL, BRIDGE_REFERENCE_REFUSAL, formatMacMask, formatRange, macMaskOption, parseNumRange, wholeNumber } from '../values.js';

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
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};
