/**
 * among match: iptables `extensions/libebt_among.c` (ebtables-nft: an
 * anonymous set of `ether_addr` or `ether_addr . ipv4_addr` elements),
 * kernel `net/bridge/netfilter/ebt_among.c`: the source or destination MAC
 * (and, for `MAC=IP` pairs, the IPv4/ARP address) is one of a list.
 */
import { fail } from '../../../core/errors.js';
import { etherAton, etherNtoa, formatIPv4, parseIPv4 } from '../../../core/addr.js';
import type { EbtModule, EbtParseContext } from '../types.js';
import { BRIDGE_LOWER_REFUSAL, BRIDGE_REFERENCE_REFUSAL } from '../values.js';

/** One list element: 6 MAC bytes and, for a pair, 4 IPv4 bytes. */
interface AmongPair {
  mac: Uint8Array;
  ip: Uint8Array | undefined;
}

interface AmongList {
  pairs: AmongPair[];
  invert: boolean;
}

interface AmongData {
  dst: AmongList | undefined;
  src: AmongList | undefined;
}

/** Upper bound on the elements of one list (the input is untrusted). */
const MAX_PAIRS = 65536;

/** parse_nft_among_pair(): `mac[=ip]`, comma separated; set semantics (sorted, duplicates once). */
function parseList(text: string): AmongPair[] {
  const out = new Map<string, AmongPair>();
  for (const item of text.trim().split(',')) {
    const eq = item.indexOf('=');
    const macText = eq < 0 ? item : item.slice(0, eq);
    let ip: Uint8Array | undefined;
    if (eq >= 0) {
      ip = parseIPv4(item.slice(eq + 1));
      if (!ip) fail(`Invalid IP address '${item.slice(eq + 1)}'`);
    }
    const mac = etherAton(macText);
    if (!mac) fail(`Invalid MAC address '${macText}'`);
    const key = Buffer.concat([mac, ip ?? new Uint8Array(4)]).toString('hex');
    out.set(key, { mac, ip });
    if (out.size > MAX_PAIRS) fail('too many among elements');
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}

function listFrom(opt: string, arg: string, ctx: EbtParseContext): string {
  if (!opt.endsWith('-file')) return arg;
  if (!ctx.readFile) fail(`--${opt}: no file may be read here`);
  return ctx.readFile(arg);
}

const formatList = (l: AmongList): string =>
  l.pairs.map((p) => etherNtoa(p.mac) + (p.ip ? `=${formatIPv4(p.ip)}` : '')).join(',');

export const among: EbtModule<AmongData> = {
  kind: 'match',
  name: 'among',
  options: [
    { name: 'among-dst', arg: 1, invert: true },
    { name: 'among-src', arg: 1, invert: true },
    { name: 'among-dst-file', arg: 1, invert: true },
    { name: 'among-src-file', arg: 1, invert: true },
  ],
  init: () => ({ dst: undefined, src: undefined }),
  parse(d, opt, arg, invert, ctx) {
    const dst = opt.startsWith('among-dst');
    if ((dst ? d.dst : d.src) !== undefined) fail(`--among-${dst ? 'dst' : 'src'} may be given once`, 'option');
    const list = { pairs: parseList(listFrom(opt, arg!, ctx)), invert };
    if (dst) d.dst = list;
    else d.src = list;
  },
  save(d) {
    let s = '';
    if (d.dst) s += `${d.dst.invert ? ' !' : ''} --among-dst ${formatList(d.dst)}`;
    if (d.src) s += `${d.src.invert ? ' !' : ''} --among-src ${formatList(d.src)}`;
    return s;
  },
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};
