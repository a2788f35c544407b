/**
 * The FTP conntrack helper: commands and replies on a control connection
 * (`-j CT --helper ftp`) that announce a data connection make an
 * expectation for it (hooks/conntrack/expect.ts), so the data connection's
 * first packet is RELATED.
 *
 * Mirrors net/netfilter/nf_conntrack_ftp.c (Linux 6.18): help() on a packet
 * of an established control connection with payload, which must start just
 * after a newline the helper saw in that direction (find_nl_seq; the first
 * two such sequence numbers per direction are remembered, update_nl_seq);
 * the patterns "PORT" and "EPRT" from the client, "227 " and "229 " from the
 * server, matched without case (find_pattern: a payload that is a prefix of
 * a pattern, or one whose numbers do not parse, is dropped); try_rfc959,
 * try_rfc1123, try_eprt, try_epsv_response; the announced address must be
 * the sender's (the `loose` parameter is 0) or nothing is expected; the
 * expectation is from the other side's address to the announced address
 * and port, any source port, for 5 minutes, one per control connection
 * (ftp_exp_policy). On a control connection under NAT the caller hands
 * the announcement to the NAT helper (hooks/nat/ftp.ts: nf_nat_ftp), which
 * rewrites it and registers the expectation itself.
 */
import { IP_CT_DIR_ORIGINAL, NFPROTO_IPV4, NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { parseIPv6 } from '../../core/addr.js';
import { T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS, IPPROTO_TCP, after, before, word } from './tuple.js';
import type { ExpectPolicy } from './expect.js';

/** ftp_exp_policy */
export const FTP_EXP_POLICY: ExpectPolicy = { maxExpected: 1, timeout: 5 * 60 };

/** NUM_SEQ_TO_REMEMBER */
const NUM_SEQ = 2;

/** struct nf_ct_ftp_master: per direction, the sequence numbers just after a newline. */
export class FtpMaster {
  readonly seqAftNl = new Int32Array(4);
  readonly num = new Uint8Array(2);
}

/** enum nf_ct_ftp_type */
export const enum FtpType {
  PORT,
  PASV,
  EPRT,
  EPSV,
}

/** What help() found: an expectation to add (its tuple), or none; and the verdict. */
export interface FtpResult {
  verdict: number;
  /** The expected tuple (source port 0), when the packet announced a data connection. */
  expect?: Int32Array;
  /** The announcement: its kind, and where its numbers are in the TCP data (for nf_nat_ftp). */
  type?: FtpType;
  matchoff?: number;
  matchlen?: number;
  /** nf_ct_helper_log()'s text when the packet is dropped. */
  log?: string;
}

const enum Get {
  RFC959,
  RFC1123,
  EPRT,
  EPSV,
}

interface Search {
  pattern: string;
  /** 0: none. */
  skip: number;
  term: number;
  get: Get;
  type: FtpType;
}

const SEARCH: readonly (readonly Search[])[] = [
  [
    { pattern: 'PORT', skip: 0x20, term: 0x0d, get: Get.RFC959, type: FtpType.PORT },
    { pattern: 'EPRT', skip: 0x20, term: 0x0d, get: Get.EPRT, type: FtpType.EPRT },
  ],
  [
    { pattern: '227 ', skip: 0, term: 0, get: Get.RFC1123, type: FtpType.PASV },
    { pattern: '229 ', skip: 0x28, term: 0x29, get: Get.EPSV, type: FtpType.EPSV },
  ],
];

/** Where find_pattern() found the numbers: their offset in the data and their length. */
const match = { off: 0, len: 0 };

/** The command's address (host-order words, union nf_inet_addr) and port. */
class Cmd {
  readonly u3 = new Int32Array(4);
  port = 0;
  constructor(public l3num: number) {}
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** try_number(): `size` numbers separated by `sep`, ended by `term` (any non-digit when term is 0); the length read, 0 when they do not parse. */
function tryNumber(d: Uint8Array, at: number, dlen: number, out: number[], size: number, sep: number, term: number): number {
  out.fill(0, 0, size);
  let i = 0;
  for (let len = 0; len < dlen && i < size; len++) {
    const c = d[at + len]!;
    if (isDigit(c)) out[i] = (out[i]! * 10 + c - 0x30) >>> 0;
    else if (c === sep) i++;
    else {
      if ((c === term || !term) && i === size - 1) return len;
      return 0;
    }
  }
  return 0;
}

const nums = [0, 0, 0, 0, 0, 0];

function tryRfc959(d: Uint8Array, at: number, dlen: number, cmd: Cmd, term: number): number {
  const length = tryNumber(d, at, dlen, nums, 6, 0x2c, term);
  if (length === 0) return 0;
  // cmd->u3.ip: the first word of the union (an IPv6 conntrack's other words stay its source's)
  cmd.u3[0] = ((nums[0]! << 24) | (nums[1]! << 16) | (nums[2]! << 8) | nums[3]!) | 0;
  cmd.port = ((nums[4]! << 8) | nums[5]!) & 0xffff;
  return length;
}

/** try_rfc1123(): the numbers from the first digit on; `off` moves to it. */
function tryRfc1123(d: Uint8Array, at: number, dlen: number, cmd: Cmd, off: { v: number }): number {
  let i = 0;
  while (i < dlen && !isDigit(d[at + i]!)) i++;
  if (i === dlen) return 0;
  off.v += i;
  return tryRfc959(d, at + i, dlen - i, cmd, 0);
}

/** get_port(): a number up to `delim` (not 0); the offset after the delimiter, 0 otherwise. */
function getPort(d: Uint8Array, at: number, start: number, dlen: number, delim: number, cmd: Cmd): number {
  let p = 0;
  for (let i = start; i < dlen; i++) {
    const c = d[at + i]!;
    if (c === delim) {
      if (p === 0) break;
      cmd.port = p;
      return i + 1;
    } else if (isDigit(c)) p = (p * 10 + c - 0x30) & 0xffff;
    else break;
  }
  return 0;
}

function tryEprt(d: Uint8Array, at: number, dlen: number, cmd: Cmd): number {
  if (dlen <= 3) return 0;
  const delim = d[at]!;
  if (isDigit(delim) || delim < 33 || delim > 126 || d[at + 2] !== delim) return 0;
  const v = d[at + 1]!;
  if ((cmd.l3num === NFPROTO_IPV4 && v !== 0x31) || (cmd.l3num !== NFPROTO_IPV4 && v !== 0x32)) return 0;
  let length: number;
  if (v === 0x31) {
    length = tryNumber(d, at + 3, dlen - 3, nums, 4, 0x2e, delim);
    if (length !== 0) cmd.u3[0] = ((nums[0]! << 24) | (nums[1]! << 16) | (nums[2]! << 8) | nums[3]!) | 0;
  } else length = ipv6Addr(d, at + 3, dlen - 3, cmd, delim);
  if (length === 0) return 0;
  return getPort(d, at, 3 + length + 1, dlen, delim, cmd);
}

/** get_ipv6_addr(): in6_pton() up to `delim`; the address's length, 0 when it does not parse. */
function ipv6Addr(d: Uint8Array, at: number, dlen: number, cmd: Cmd, delim: number): number {
  let end = 0;
  while (end < dlen && d[at + end] !== delim) end++;
  if (end === dlen || end === 0) return 0;
  let s = '';
  for (let i = 0; i < end; i++) s += String.fromCharCode(d[at + i]!);
  const b = parseIPv6(s);
  if (!b) return 0;
  for (let w = 0; w < 4; w++) cmd.u3[w] = (b[4 * w]! << 24) | (b[4 * w + 1]! << 16) | (b[4 * w + 2]! << 8) | b[4 * w + 3]!;
  return end;
}

function tryEpsv(d: Uint8Array, at: number, dlen: number, cmd: Cmd): number {
  if (dlen <= 3) return 0;
  const delim = d[at]!;
  if (isDigit(delim) || delim < 33 || delim > 126 || d[at + 1] !== delim || d[at + 2] !== delim) return 0;
  return getPort(d, at, 3, dlen, delim, cmd);
}

/** find_pattern(): 1 a match, 0 none, -1 a partial one (or numbers that do not parse). */
function findPattern(d: Uint8Array, at: number, dlen: number, s: Search, cmd: Cmd): number {
  const plen = s.pattern.length;
  if (dlen <= plen) {
    for (let k = 0; k < dlen; k++) if (lower(d[at + k]!) !== lower(s.pattern.charCodeAt(k))) return 0;
    return -1;
  }
  for (let k = 0; k < plen; k++) if (lower(d[at + k]!) !== lower(s.pattern.charCodeAt(k))) return 0;
  let i = plen;
  if (s.skip) {
    for (i = plen; d[at + i] !== s.skip; i++) if (i === dlen - 1) return -1;
    i++;
  }
  const off = { v: i };
  let n: number;
  switch (s.get) {
    case Get.RFC959: n = tryRfc959(d, at + i, dlen - i, cmd, s.term); break;
    case Get.RFC1123: n = tryRfc1123(d, at + i, dlen - i, cmd, off); break;
    case Get.EPRT: n = tryEprt(d, at + i, dlen - i, cmd); break;
    default: n = tryEpsv(d, at + i, dlen - i, cmd);
  }
  match.off = off.v;
  match.len = n;
  return n ? 1 : -1;
}

function findNlSeq(seq: number, info: FtpMaster, dir: number): boolean {
  for (let i = 0; i < info.num[dir]!; i++) if (info.seqAftNl[dir * NUM_SEQ + i] === seq) return true;
  return false;
}

function updateNlSeq(nlSeq: number, info: FtpMaster, dir: number): void {
  const s = info.seqAftNl;
  const at = dir * NUM_SEQ;
  for (let i = 0; i < info.num[dir]!; i++) if (s[at + i] === nlSeq) return;
  if (info.num[dir]! < NUM_SEQ) {
    s[at + info.num[dir]!] = nlSeq;
    info.num[dir]!++;
  } else {
    const oldest = before(s[at]!, s[at + 1]!) ? 0 : 1;
    if (after(nlSeq, s[at + oldest]!)) s[at + oldest] = nlSeq;
  }
}

/**
 * help() for one packet of control connection `e` in direction `dir`
 * (established only: the caller checks the ctinfo). `tuples` holds the
 * conntrack's tuples (direction d at (2e + d) * TUPLE_WORDS).
 */
export function ftpHelp(d: Uint8Array, thoff: number, end: number, info: FtpMaster, tuples: Int32Array, e: number, dir: number, l3num: number): FtpResult {
  const dataoff = thoff + (d[thoff + 12]! >> 4) * 4;
  if (dataoff >= end) return { verdict: NF_ACCEPT };
  const datalen = end - dataoff;
  const endsInNl = d[end - 1] === 0x0a;
  const th = word(d, thoff + 4);
  const seq = (th + datalen) | 0;
  const r: FtpResult = { verdict: NF_ACCEPT };
  if (findNlSeq(th, info, dir)) {
    const own = (2 * e + dir) * TUPLE_WORDS;
    const other = (2 * e + (dir ^ 1)) * TUPLE_WORDS;
    const cmd = new Cmd(l3num);
    for (let w = 0; w < 4; w++) cmd.u3[w] = tuples[own + T_SRC + w]!;
    let found = 0;
    let which: Search | undefined;
    for (const s of SEARCH[dir === IP_CT_DIR_ORIGINAL ? 0 : 1]!) {
      found = findPattern(d, dataoff, datalen, s, cmd);
      which = s;
      if (found) break;
    }
    if (found === -1) return { verdict: NF_DROP, log: `partial matching of \`${which!.pattern}'` };
    if (found === 1) {
      let differs = false;
      for (let w = 0; w < 4; w++) if (cmd.u3[w] !== tuples[own + T_SRC + w]) differs = true;
      // not the sender's address (loose = 0): nothing is expected
      if (!differs) {
        const t = new Int32Array(TUPLE_WORDS);
        for (let w = 0; w < 4; w++) {
          t[T_SRC + w] = tuples[other + T_SRC + w]!;
          t[T_DST + w] = tuples[other + T_DST + w]!;
        }
        t[T_PORTS] = cmd.port & 0xffff;
        t[T_PROTO] = (l3num << 8) | IPPROTO_TCP;
        r.expect = t;
        r.type = which!.type;
        r.matchoff = match.off;
        r.matchlen = match.len;
      }
    }
  }
  if (endsInNl) updateNlSeq(seq, info, dir);
  return r;
}

