/**
 * The OS fingerprints of the osf match: what `nfnl_osf -f pf.os` (iptables
 * utils/nfnl_osf.c, osf_load_line and xt_osf_parse_opt) loads into the
 * kernel's lists (net/netfilter/nfnetlink_osf.c nf_osf_fingers, one list
 * per don't-fragment bit, in file order, an exact duplicate added once),
 * and nf_osf_match() / nf_osf_match_one() over them (Linux 6.18).
 *
 * The kernel offers no way to read the loaded fingerprints back, so a
 * snapshot carries the pf.os file the node loaded, as the user gives it.
 *
 * A pf.os line: `window:ttl:df:size:options:genre:version:subtype:description`
 * (exactly eight colons, else nfnl_osf stops with "Wrong input line"); a
 * field starts after the blanks that follow its colon. The window is a
 * number (OSF_WSS_PLAIN, 0 or `*` = any), `Snn` (a multiple of the MSS),
 * `Tnn` (of the MTU, MSS + 40) or `%nn` (a modulo); the options are
 * comma-separated letters, of which the kernel compares only each
 * option's kind and length: N (NOP), S (SACK permitted), T (timestamps),
 * W (window scale), M (MSS), E (end of list); anything else is skipped. A
 * genre's leading `@` or `*` is dropped; genre, version and subtype keep
 * at most 31 bytes.
 */
import { NfvmError } from '../core/errors.js';

/** OSF_WSS_* */
export const OSF_WSS_PLAIN = 0;
export const OSF_WSS_MSS = 1;
export const OSF_WSS_MTU = 2;
export const OSF_WSS_MODULO = 3;
const OSF_WSS_MAX = 4;

/** NF_OSF_TTL_* (the --ttl levels) */
export const NF_OSF_TTL_TRUE = 0;
export const NF_OSF_TTL_LESS = 1;
export const NF_OSF_TTL_NOCHECK = 2;

/** MAX_IPOPTLEN: the most option bytes (and options) a fingerprint holds. */
const MAX_IPOPTLEN = 40;
/** MAXGENRELEN, with its NUL. */
const MAXGENRELEN = 32;
const OSFOPT_MSS = 2;

/** IANA_opts[] of nfnl_osf.c for the letters it knows: the option kind and the length the kernel consumes. */
const OPTION: Readonly<Record<string, readonly [kind: number, length: number]>> = {
  E: [0, 1], // OSFOPT_EOL
  N: [1, 1], // OSFOPT_NOP
  M: [2, 4], // OSFOPT_MSS
  W: [3, 3], // OSFOPT_WSO
  S: [4, 2], // OSFOPT_SACKP
  T: [8, 10], // OSFOPT_TS
};

export interface OsfFinger {
  wssWc: number;
  wssVal: number;
  ttl: number;
  df: number;
  ss: number;
  /** The options' kinds and lengths, in order. */
  kinds: readonly number[];
  lengths: readonly number[];
  /** The sum of the lengths. */
  optsize: number;
  genre: string;
  version: string;
  subtype: string;
  /** The pf.os line it came from. */
  line: number;
}

/** The loaded fingerprints: nf_osf_fingers[0] (df clear) and [1] (df set). */
export class OsfFingers {
  readonly lists: [OsfFinger[], OsfFinger[]] = [[], []];
  constructor(readonly file: string) {}
  get size(): number {
    return this.lists[0].length + this.lists[1].length;
  }
}

const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/** strtoul(s, NULL, 10), kept to 32 bits: blanks, a sign, the digits; 0 without any. */
function strtoul(s: string): number {
  let i = 0;
  while (isSpace(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') neg = s[i++] === '-';
  let v = 0;
  for (; i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57; i++) v = (v * 10 + (s.charCodeAt(i) - 48)) % 0x100000000;
  return neg ? (0x100000000 - v) % 0x100000000 : v;
}

/** snprintf(buf, MAXGENRELEN, "%s", s): at most 31 bytes (cut on a byte boundary, as C does). */
function cstr(s: string): string {
  const b = Buffer.from(s, 'utf8');
  return b.length < MAXGENRELEN ? s : b.subarray(0, MAXGENRELEN - 1).toString('latin1');
}

/** xt_osf_parse_opt(): the option letters of `obuf` (the options field with a comma appended). */
function parseOptions(obuf: string, line: number, file: string): { kinds: number[]; lengths: number[] } {
  const kinds: number[] = [];
  const lengths: number[] = [];
  let i = 0;
  while (i < obuf.length) {
    const known = OPTION[obuf[i]!];
    // the next comma, then the blanks after it (xt_osf_strchr)
    let c = obuf.indexOf(',', i);
    if (c >= 0) {
      while (isSpace(obuf[c + 1])) c++;
      i = c + 1;
    } else i++;
    if (known) {
      if (kinds.length >= MAX_IPOPTLEN) throw new NfvmError('value', `more than ${MAX_IPOPTLEN} TCP options in a fingerprint`, file, { line, col: 1 }, undefined);
      kinds.push(known[0]);
      lengths.push(known[1]);
    }
  }
  return { kinds, lengths };
}

/** The fingerprints of a pf.os file, as nfnl_osf loads them into an empty kernel list. */
export function parsePfOs(text: string, file: string): OsfFingers {
  const out = new OsfFingers(file);
  const seen = new Set<string>();
  const lines = text.split('\n');
  // fgets() reads the last line without a newline too
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw === '' || raw[0] === '#' || raw[0] === '\r') return;
    if (raw.length >= 1023) throw new NfvmError('syntax', 'line longer than nfnl_osf reads (1023 characters)', file, { line, col: 1024 }, undefined);
    // nfnl_osf drops the line's last character (its newline; on a last line without one, a real character)
    const buf = raw.slice(0, idx === lines.length - 1 && !text.endsWith('\n') ? raw.length - 1 : raw.length);
    if (buf.length === 0) return;
    const colons = buf.split(':').length - 1;
    if (colons !== 8) throw new NfvmError('syntax', `wrong input line: ${colons} colons, nfnl_osf needs 8 (window:ttl:df:size:options:genre:version:subtype:description)`, file, { line, col: 1 }, buf.slice(0, 40));
    const fields: string[] = [];
    let at = 0;
    for (let k = 0; k < 8; k++) {
      let c = buf.indexOf(':', at);
      fields.push(buf.slice(at, c));
      while (isSpace(buf[c + 1])) c++;
      at = c + 1;
    }
    const [w, ttl, df, ss, opts, genre, version, subtype] = fields as [string, string, string, string, string, string, string, string];
    let wssWc = OSF_WSS_PLAIN;
    let wssVal = 0;
    if (w[0] === 'S' || w[0] === 'T') {
      wssWc = w[0] === 'S' ? OSF_WSS_MSS : OSF_WSS_MTU;
      wssVal = w[1] === '%' ? strtoul(w.slice(2)) : w[1] === '*' ? 0 : strtoul(w.slice(1));
    } else if (w[0] === '%') {
      wssWc = OSF_WSS_MODULO;
      wssVal = strtoul(w.slice(1));
    } else if (w.length && w.charCodeAt(0) >= 48 && w.charCodeAt(0) <= 57) wssVal = strtoul(w);
    // snprintf(obuf, 128, "%s,", options)
    const { kinds, lengths } = parseOptions(`${opts},`.slice(0, 127), line, file);
    const f: OsfFinger = {
      wssWc, wssVal, ttl: strtoul(ttl) & 0xff, df: strtoul(df) & 0xff, ss: strtoul(ss) & 0xffff, kinds, lengths,
      optsize: lengths.reduce((a, b) => a + b, 0),
      genre: cstr(genre[0] === '@' || genre[0] === '*' ? genre.slice(1) : genre), version: cstr(version), subtype: cstr(subtype), line,
    };
    // nfnl_osf_add_callback(): a fingerprint equal to a loaded one is not added again
    const key = JSON.stringify([f.wssWc, f.wssVal, f.ttl, f.df, f.ss, f.kinds, f.genre, f.version, f.subtype]);
    if (seen.has(key)) return;
    seen.add(key);
    out.lists[f.df ? 1 : 0].push(f);
  });
  return out;
}

/** nf_osf_ttl() */
function ttlOk(check: number, ttl: number, fTtl: number): boolean {
  if (check === NF_OSF_TTL_TRUE) return ttl === fTtl;
  if (check === NF_OSF_TTL_NOCHECK) return true;
  // NF_OSF_TTL_LESS: a packet TTL above the fingerprint's passes only when equal to it (the loop over the device's addresses), i.e. never
  return ttl <= fTtl;
}

const SMART_MSS_1 = 1460;
const SMART_MSS_2 = 1448;

/**
 * nf_osf_match() for an IPv4 TCP packet: its header at d[nh], its TCP
 * header at d[th], the packet's data up to `end`. `genre` undefined (the
 * rule logs: NF_OSF_LOG) compares every fingerprint. Only a SYN can match;
 * its total length, TTL, options (kind and length, in order) and window
 * must fit one fingerprint of the list of its don't-fragment bit.
 */
export function nfOsfMatch(fingers: OsfFingers, genre: string | undefined, ttlCheck: number, d: Uint8Array, nh: number, th: number, end: number): boolean {
  // nf_osf_hdr_ctx_init()
  if (th + 20 > end) return false;
  if ((d[th + 13]! & 0x02) === 0) return false;
  const totlen = (d[nh + 2]! << 8) | d[nh + 3]!;
  const df = (d[nh + 6]! & 0x40) !== 0 ? 1 : 0;
  const window = (d[th + 14]! << 8) | d[th + 15]!;
  const doff = (d[th + 12]! >> 4) * 4;
  const optsize = doff > 20 ? doff - 20 : 0;
  // skb_header_pointer() of the options: NULL when they are not all there
  const optp = optsize > 0 && th + 20 + optsize <= end ? th + 20 : -1;
  const ttl = d[nh + 8]!;
  for (const f of fingers.lists[df]) {
    if (genre !== undefined && f.genre !== genre) continue;
    if (matchOne(f, ttlCheck, ttl, totlen, window, d, optp, optsize)) return true;
  }
  return false;
}

const FMATCH_WRONG = 0;
const FMATCH_OK = 1;
const FMATCH_OPT_WRONG = 2;

/** nf_osf_match_one() */
function matchOne(f: OsfFinger, ttlCheck: number, ttl: number, totlen: number, window: number, d: Uint8Array, optp: number, optsize: number): boolean {
  if (totlen !== f.ss || !ttlOk(ttlCheck, ttl, f.ttl)) return false;
  if (f.wssWc >= OSF_WSS_MAX) return false;
  if (f.optsize > MAX_IPOPTLEN || optsize > MAX_IPOPTLEN || optsize !== f.optsize) return false;
  // options of the right size that could not be read (a truncated packet): the kernel would read through NULL; no match here
  if (f.kinds.length > 0 && optp < 0) return false;
  let fmatch = FMATCH_WRONG;
  let mss = 0;
  let p = optp;
  for (let i = 0; i < f.kinds.length; i++) {
    if (f.kinds[i] === d[p]) {
      fmatch = FMATCH_OK;
      if (d[p] === OSFOPT_MSS) mss = (d[p + 2]! << 8) | d[p + 3]!;
      p += f.lengths[i]!;
    } else fmatch = FMATCH_OPT_WRONG;
    if (fmatch !== FMATCH_OK) break;
  }
  if (fmatch === FMATCH_OPT_WRONG) return false;
  // the window: u32 products, compared with the u16 window
  const v = f.wssVal;
  const times = (n: number) => Math.imul(v, n) >>> 0;
  switch (f.wssWc) {
    case OSF_WSS_PLAIN:
      return v === 0 || window === v;
    case OSF_WSS_MSS:
      return window === times(mss) || window === times(SMART_MSS_1) || window === times(SMART_MSS_2);
    case OSF_WSS_MTU:
      return window === times(mss + 40) || window === times(SMART_MSS_1 + 40) || window === times(SMART_MSS_2 + 40);
    default:
      // OSF_WSS_MODULO (a modulo 0 would trap the kernel: nfnl_osf never writes one for a real window field)
      return v !== 0 && window % v === 0;
  }
}
