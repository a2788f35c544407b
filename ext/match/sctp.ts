/**
 * sctp match: iptables `extensions/libxt_sctp.c` (old-style parser with
 * its own "Only one" checks), kernel `net/netfilter/xt_sctp.c`
 * (`.proto = IPPROTO_SCTP`, both families).
 *
 * `--source-port`/`--sport`, `--destination-port`/`--dport` take a port
 * or `lo:hi` range; `--chunk-types (all|any|only) LIST` takes the match
 * mode and `ALL`, `NONE` or a comma list of chunk names, each with optional
 * `:flags` (upper case = flag set, lower case = flag clear).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { be16, headerPointer, l4Header, type MatchFn, type XtActionParam } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

/** XT_NUM_SCTP_FLAGS: chunk types that may carry flag tests. */
const NUM_SCTP_FLAGS = 4;

/**
 * One `struct xt_sctp_flag_info`. As libxt_sctp does, `chunktype` holds the
 * index of the chunk in the name table (equal to the chunk type for
 * DATA..SHUTDOWN_COMPLETE, the only chunks with flags besides I_DATA).
 */
interface SctpFlagInfo {
  chunktype: number;
  flag: number;
  flagMask: number;
}

interface SctpData {
  /** Source port range, when given (XT_SCTP_SRC_PORTS). */
  spts: [number, number] | undefined;
  invSpts: boolean;
  /** Destination port range, when given (XT_SCTP_DEST_PORTS). */
  dpts: [number, number] | undefined;
  invDpts: boolean;
  /** `--chunk-types`, when given (XT_SCTP_CHUNK_TYPES). */
  chunks: { match: 'any' | 'all' | 'only'; map: boolean[]; flags: SctpFlagInfo[] } | undefined;
  invChunks: boolean;
}

/** sctp_chunk_names[] (iptables 1.8.13): name, chunk type, valid flag letters (bit 7 first). */
const CHUNK_NAMES: ReadonlyArray<readonly [string, number, string]> = [
  ['DATA', 0, '----IUBE'],
  ['INIT', 1, '--------'],
  ['INIT_ACK', 2, '--------'],
  ['SACK', 3, '--------'],
  ['HEARTBEAT', 4, '--------'],
  ['HEARTBEAT_ACK', 5, '--------'],
  ['ABORT', 6, '-------T'],
  ['SHUTDOWN', 7, '--------'],
  ['SHUTDOWN_ACK', 8, '--------'],
  ['ERROR', 9, '--------'],
  ['COOKIE_ECHO', 10, '--------'],
  ['COOKIE_ACK', 11, '--------'],
  ['ECN_ECNE', 12, '--------'],
  ['ECN_CWR', 13, '--------'],
  ['SHUTDOWN_COMPLETE', 14, '-------T'],
  ['ASCONF', 193, '--------'],
  ['ASCONF_ACK', 128, '--------'],
  ['FORWARD_TSN', 192, '--------'],
  ['I_DATA', 64, '----IUBE'],
  ['RE_CONFIG', 130, '--------'],
  ['PAD', 132, '--------'],
  ['I_FORWARD_TSN', 194, '--------'],
];

/**
 * xtables_parse_port(port, "sctp"): a number (any C base) or a service
 * name getservbyname() knows for sctp; a stock /etc/services (netbase)
 * lists only `amqp` for sctp, so `http` is refused.
 */
function parsePort(s: string): number {
  const v = strtoulWhole(s, 0n, 65535n);
  if (v !== undefined) return Number(v);
  if (s === 'amqp') return 5672;
  return fail(`invalid port/service \`${s}' specified`);
}

/** parse_sctp_ports() */
function parsePorts(s: string): [number, number] {
  const c = s.indexOf(':');
  if (c < 0) {
    const p = parsePort(s);
    return [p, p];
  }
  const a = s.slice(0, c);
  const b = s.slice(c + 1);
  const lo = a ? parsePort(a) : 0;
  const hi = b ? parsePort(b) : 0xffff;
  if (lo > hi) fail('invalid portrange (min > max)');
  return [lo, hi];
}

function saveFlag(flags: SctpFlagInfo[], idx: number, bit: number, set: boolean): void {
  let f = flags.find((x) => x.chunktype === idx);
  if (!f) {
    if (flags.length === NUM_SCTP_FLAGS) {
      fail(
        'Number of chunk types with flags exceeds currently allowed limit.Increasing this limit involves changing IPT_NUM_SCTP_FLAGS and' +
          'recompiling both the kernel space and user space modules',
      );
    }
    f = { chunktype: idx, flag: 0, flagMask: 0 };
    flags.push(f);
  }
  f.flagMask |= 1 << bit;
  if (set) f.flag |= 1 << bit;
}

/** parse_sctp_chunks() / parse_sctp_chunk() */
function parseChunks(mode: string, list: string): NonNullable<SctpData['chunks']> {
  const m = mode.toLowerCase();
  if (m !== 'any' && m !== 'all' && m !== 'only') fail('Match type has to be one of "ALL", "ANY" or "ONLY"');
  const map: boolean[] = new Array(256).fill(false);
  const flags: SctpFlagInfo[] = [];
  const res = { match: m as 'any' | 'all' | 'only', map, flags };
  if (list.toLowerCase() === 'all') {
    map.fill(true);
    return res;
  }
  if (list.toLowerCase() === 'none') return res;
  for (const tok of list.split(',')) {
    if (tok === '') continue; // strtok
    const c = tok.indexOf(':');
    const name = c >= 0 ? tok.slice(0, c) : tok;
    const idx = CHUNK_NAMES.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (idx < 0) fail(`Unknown sctp chunk \`${name}'`);
    const [, type, valid] = CHUNK_NAMES[idx]!;
    map[type] = true;
    if (c < 0) continue;
    for (const ch of tok.slice(c + 1)) {
      const p = valid.indexOf(ch.toUpperCase());
      if (p < 0) fail(`Invalid flags for chunk type ${idx}`);
      saveFlag(flags, idx, 7 - p, ch !== ch.toLowerCase());
    }
  }
  return res;
}

function savePorts(name: string, r: [number, number] | undefined, inv: boolean): string {
  if (!r) return '';
  return `${inv ? ' !' : ''} --${name} ${r[0] === r[1] ? r[0] : `${r[0]}:${r[1]}`}`;
}

/** print_chunks(numeric = 0) */
function printChunks(c: NonNullable<SctpData['chunks']>): string {
  let s = ` ${c.match}`;
  if (c.map.every((b) => !b)) return s + ' NONE';
  if (c.map.every((b) => b)) return s + ' ALL';
  const parts: string[] = [];
  for (let i = 0; i < 256; i++) {
    if (!c.map[i]) continue;
    let p = CHUNK_NAMES.filter(([, t]) => t === i)
      .map(([n]) => n)
      .join('');
    for (const f of c.flags) {
      if (f.chunktype !== i || !f.flagMask) continue;
      const valid = CHUNK_NAMES[i]![2];
      p += ':';
      for (let b = 7; b >= 0; b--) {
        if (!(f.flagMask & (1 << b))) continue;
        const letter = valid[7 - b]!;
        p += f.flag & (1 << b) ? letter : letter.toLowerCase();
      }
    }
    parts.push(p);
  }
  return s + ' ' + parts.join(',');
}

export const sctp: MatchModule<SctpData> = {
  kind: 'match',
  name: 'sctp',
  proto: 132,
  options: [
    { name: 'source-port', arg: 1, invert: true, multi: true },
    { name: 'sport', arg: 1, invert: true, multi: true },
    { name: 'destination-port', arg: 1, invert: true, multi: true },
    { name: 'dport', arg: 1, invert: true, multi: true },
    { name: 'chunk-types', arg: 1, invert: true, multi: true, extra: 1 },
  ],
  init: () => ({ spts: undefined, invSpts: false, dpts: undefined, invDpts: false, chunks: undefined, invChunks: false }),
  parse(d, opt, arg, invert, _ctx, extra) {
    switch (opt) {
      case 'source-port':
      case 'sport':
        if (d.spts) fail("Only one `--source-port' allowed", 'option');
        d.spts = parsePorts(arg!);
        if (invert) d.invSpts = true;
        return;
      case 'destination-port':
      case 'dport':
        if (d.dpts) fail("Only one `--destination-port' allowed", 'option');
        d.dpts = parsePorts(arg!);
        if (invert) d.invDpts = true;
        return;
      case 'chunk-types':
        if (d.chunks) fail("Only one `--chunk-types' allowed", 'option');
        d.chunks = parseChunks(arg!, extra[0]!);
        if (invert) d.invChunks = true;
        return;
    }
  },
  save(d) {
    let s = savePorts('sport', d.spts, d.invSpts) + savePorts('dport', d.dpts, d.invDpts);
    if (d.chunks) s += `${d.invChunks ? ' !' : ''} --chunk-types${printChunks(d.chunks)}`;
    return s;
  },
  ...compatMatchFaces(sctpMt),
};


// --- reference semantics (xt_sctp.c sctp_mt, kernel 6.18) -------------------------------
/** match_flags(): the first flag rule for the chunk type decides; none: true. */
function matchFlags(flags: readonly SctpFlagInfo[], type: number, chunkFlags: number): boolean {
  for (const f of flags) if (f.chunktype === type) return (chunkFlags & f.flagMask) === f.flag;
  return true;
}

/**
 * match_packet(): walks the chunks after the 12-byte common header (a chunk
 * header cut short or of length 0 hotdrops), each padded to 4 bytes, while
 * the offset is inside the packet: any, all or only of the listed types (with
 * their flag rules).
 */
function matchPacket(par: XtActionParam, offset: number, ch: NonNullable<SctpData['chunks']>): boolean {
  const d = par.d;
  const skbLen = par.end - par.nh;
  const left = ch.match === 'all' ? ch.map.slice() : null;
  do {
    const sch = headerPointer(par, offset, 4);
    const len = sch < 0 ? 0 : be16(d, sch + 2);
    if (sch < 0 || len === 0) {
      par.hotdrop = true;
      return false;
    }
    const type = d[sch]!;
    offset += (len + 3) & ~3;
    if (ch.map[type]) {
      const ok = matchFlags(ch.flags, type, d[sch + 1]!);
      if (ch.match === 'any' && ok) return true;
      if (ch.match === 'all' && ok) left![type] = false;
      if (ch.match === 'only' && !ok) return false;
    } else if (ch.match === 'only') return false;
  } while (offset < skbLen);
  if (ch.match === 'all') return !left!.some((b) => b);
  return ch.match === 'only';
}

/** sctp_mt(): never a later fragment; the 12-byte common header (else hotdrop); ports, then the chunk test. */
function sctpMt(info: SctpData): MatchFn {
  return (par) => {
    const sh = l4Header(par, 12);
    if (sh < 0) return false;
    const sport = be16(par.d, sh);
    const dport = be16(par.d, sh + 2);
    if (info.spts && (sport >= info.spts[0] && sport <= info.spts[1]) === info.invSpts) return false;
    if (info.dpts && (dport >= info.dpts[0] && dport <= info.dpts[1]) === info.invDpts) return false;
    if (info.chunks && matchPacket(par, par.thoff + 12, info.chunks) === info.invChunks) return false;
    return true;
  };
}
