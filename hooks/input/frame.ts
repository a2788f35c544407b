/**
 * What the capture readers (pcap.ts, pcapng.ts) yield, the errors they throw,
 * and the Linux cooked-capture headers (SLL, SLL2).
 *
 * Error format. A capture has no lines, so errors are located by byte offset:
 *
 *   trace.pcapng:@1048: truncated Enhanced Packet Block (block length 132, 96 bytes left)
 *
 * `FILE:@OFFSET: reason`, OFFSET in decimal from the start of the file, at the
 * start of the record or block that is wrong (the file header for header
 * problems). CaptureError is an NfvmError (kind 'syntax' for structure,
 * 'value' for unsupported values), so the CLI maps it to exit code 2; it also
 * carries `offset`.
 *
 * SLL (LINKTYPE_LINUX_SLL, 113), 16 bytes, all big-endian:
 *   pkttype u16 | ARPHRD u16 | addrlen u16 | addr[8] | protocol u16
 * SLL2 (LINKTYPE_LINUX_SLL2, 276), 20 bytes:
 *   protocol u16 | reserved u16 | ifindex u32 | ARPHRD u16 | pkttype u8 | addrlen u8 | addr[8]
 * (libpcap pcap/sll.h; the kernel's struct sockaddr_ll fields.)
 */
import { NfvmError, type ErrorKind } from '../../core/errors.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export const SLL_HDR_LEN = 16;
export const SLL2_HDR_LEN = 20;

/** The link types nfvm reads, by number. */
export const LINKTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [LINKTYPE_ETHERNET, 'EN10MB'],
  [LINKTYPE_RAW, 'RAW'],
  [LINKTYPE_LINUX_SLL, 'LINUX_SLL'],
  [LINKTYPE_IPV4, 'IPV4'],
  [LINKTYPE_IPV6, 'IPV6'],
  [LINKTYPE_LINUX_SLL2, 'LINUX_SLL2'],
]);

/** A few link types people meet that nfvm does not read, named in the error. */
const OTHER_LINKTYPES: ReadonlyMap<number, string> = new Map([
  [0, 'NULL (BSD loopback)'],
  [12, 'RAW (OpenBSD value 12; use 101)'],
  [14, 'RAW (BSD value 14; use 101)'],
  [105, 'IEEE802_11'],
  [108, 'LOOP'],
  [127, 'IEEE802_11_RADIOTAP'],
  [147, 'USER0'],
  [192, 'PPI'],
  [220, 'USB_LINUX_MMAPPED'],
  [239, 'NFLOG'],
  [249, 'NETLINK'],
  [253, 'NETANALYZER'],
]);

/** One captured frame. Every field is always set; -1 (or '') means "not in this capture". */
export interface Frame {
  /** The captured bytes: a view into the input buffer, not a copy. */
  data: Uint8Array;
  /** Length on the wire (may exceed data.length when the snaplen cut it). */
  origLen: number;
  /** Timestamp: seconds since the epoch and nanoseconds within the second (0..999999999). */
  tsSec: number;
  tsNsec: number;
  /** LINKTYPE_* of the frame. */
  linktype: number;
  /** pcapng interface id within its section (0 for pcap). */
  ifId: number;
  /** pcapng if_name option, '' when absent (and for pcap). */
  ifName: string;
  /** pcapng section number, counting from 0 (0 for pcap). */
  section: number;
  /** Byte offset of the record (pcap) or block (pcapng) in the file. */
  offset: number;
  /** pcapng epb_flags (direction in bits 0-1: 1 inbound, 2 outbound), 0 when absent. */
  flags: number;
  /** The first pcapng opt_comment of the packet, '' when absent. */
  comment: string;
  /** SLL/SLL2: sll_pkttype (PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4); else -1. */
  pkttype: number;
  /** SLL/SLL2: the protocol (ethertype, 0x0800, 0x86dd, ...); else -1. */
  protocol: number;
  /** SLL2: the interface index; else -1. */
  sllIfindex: number;
  /** SLL/SLL2: ARPHRD_* of the device (1 ether, 772 loopback, 65534 none); else -1. */
  hatype: number;
}

export class CaptureError extends NfvmError {
  override name = 'NfvmError';
  constructor(
    kind: ErrorKind,
    reason: string,
    file: string,
    /** Byte offset in the file of the record or block at fault. */
    readonly offset: number,
    token?: string,
  ) {
    super(kind, reason, file, undefined, token);
    this.message = `${file}:@${offset}: ${reason}`;
  }
}

export function linktypeName(lt: number): string {
  const n = LINKTYPE_NAMES.get(lt) ?? OTHER_LINKTYPES.get(lt);
  return n ? `${lt} (LINKTYPE_${n})` : String(lt);
}

/** Throws unless nfvm reads link type `lt`. */
export function checkLinktype(lt: number, file: string, offset: number): void {
  if (!LINKTYPE_NAMES.has(lt)) {
    const known = [...LINKTYPE_NAMES].map(([n, s]) => `${s} ${n}`).join(', ');
    throw new CaptureError('value', `unsupported link type ${linktypeName(lt)}; nfvm reads ${known}`, file, offset, String(lt));
  }
}

/** A frame with every optional field absent. */
export function newFrame(data: Uint8Array, linktype: number, offset: number): Frame {
  return {
    data, origLen: data.length, tsSec: 0, tsNsec: 0, linktype, ifId: 0, ifName: '', section: 0, offset,
    flags: 0, comment: '', pkttype: -1, protocol: -1, sllIfindex: -1, hatype: -1,
  };
}

/** Fills the SLL/SLL2 fields of `f` from its cooked header; throws when the header is cut short. */
export function readCookedHeader(f: Frame, file: string): void {
  cookedHeader(f, f.data, 0, f.data.length, file);
}

/** readCookedHeader() of a frame whose bytes are d[at, at + len). */
export function cookedHeader(f: Frame, d: Uint8Array, at: number, len: number, file: string): void {
  if (f.linktype === LINKTYPE_LINUX_SLL) {
    if (len < SLL_HDR_LEN) throw new CaptureError('syntax', `LINUX_SLL frame of ${len} bytes is shorter than its 16-byte header`, file, f.offset);
    f.pkttype = (d[at]! << 8) | d[at + 1]!;
    f.hatype = (d[at + 2]! << 8) | d[at + 3]!;
    f.protocol = (d[at + 14]! << 8) | d[at + 15]!;
  } else if (f.linktype === LINKTYPE_LINUX_SLL2) {
    if (len < SLL2_HDR_LEN) throw new CaptureError('syntax', `LINUX_SLL2 frame of ${len} bytes is shorter than its 20-byte header`, file, f.offset);
    f.protocol = (d[at]! << 8) | d[at + 1]!;
    f.sllIfindex = ((d[at + 4]! << 24) | (d[at + 5]! << 16) | (d[at + 6]! << 8) | d[at + 7]!) >>> 0;
    f.hatype = (d[at + 8]! << 8) | d[at + 9]!;
    f.pkttype = d[at + 10]!;
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * The one frame a streaming reader (PcapReader, PcapngReader) fills again
 * for every record: its bytes are bytes[at, at + caplen) of the reader's
 * window, valid until the next record is read; `data` makes a view of them
 * when asked. copy() gives a frame of its own.
 */
export class StreamFrame implements Frame {
  bytes: Uint8Array = NO_BYTES;
  at = 0;
  caplen = 0;
  origLen = 0;
  tsSec = 0;
  tsNsec = 0;
  linktype = 0;
  ifId = 0;
  ifName = '';
  section = 0;
  offset = 0;
  flags = 0;
  comment = '';
  pkttype = -1;
  protocol = -1;
  sllIfindex = -1;
  hatype = -1;

  get data(): Uint8Array {
    return this.bytes.subarray(this.at, this.at + this.caplen);
  }

  /** Starts a record: its bytes and link type, every optional field absent. */
  reset(bytes: Uint8Array, at: number, caplen: number, linktype: number, offset: number): void {
    this.bytes = bytes;
    this.at = at;
    this.caplen = caplen;
    this.origLen = caplen;
    this.tsSec = 0;
    this.tsNsec = 0;
    this.linktype = linktype;
    this.ifId = 0;
    this.ifName = '';
    this.section = 0;
    this.offset = offset;
    this.flags = 0;
    this.comment = '';
    this.pkttype = -1;
    this.protocol = -1;
    this.sllIfindex = -1;
    this.hatype = -1;
  }

  /** A plain frame with the same fields; its data a copy when `copyData`, else a view of the window. */
  copy(copyData: boolean): Frame {
    const d = this.data;
    return {
      data: copyData ? d.slice() : d, origLen: this.origLen, tsSec: this.tsSec, tsNsec: this.tsNsec, linktype: this.linktype, ifId: this.ifId,
      ifName: this.ifName, section: this.section, offset: this.offset, flags: this.flags, comment: this.comment, pkttype: this.pkttype,
      protocol: this.protocol, sllIfindex: this.sllIfindex, hatype: this.hatype,
    };
  }
}

export interface CookedOptions {
  /** sll_pkttype; default 0 (PACKET_HOST). */
  pkttype?: number;
  /** ARPHRD_*; default 1 (ARPHRD_ETHER). */
  hatype?: number;
  /** Link-layer source address, up to 8 bytes; default 02:00:00:00:00:01. */
  addr?: ArrayLike<number>;
  /** Ethertype of the payload; default from the IP version nibble. */
  protocol?: number;
  /** SLL2 interface index; default 1. */
  ifindex?: number;
}

function cookedProto(payload: Uint8Array, o: CookedOptions): number {
  if (o.protocol !== undefined) return o.protocol;
  const v = payload.length ? payload[0]! >> 4 : 0;
  return v === 6 ? 0x86dd : 0x0800;
}

/** A LINUX_SLL frame: the 16-byte header followed by `payload` (a network-layer packet). */
export function sllFrame(payload: Uint8Array, o: CookedOptions = {}): Uint8Array {
  const addr = o.addr ?? [2, 0, 0, 0, 0, 1];
  const out = new Uint8Array(SLL_HDR_LEN + payload.length);
  const pt = o.pkttype ?? 0;
  const ha = o.hatype ?? 1;
  const proto = cookedProto(payload, o);
  out[0] = pt >> 8; out[1] = pt;
  out[2] = ha >> 8; out[3] = ha;
  out[4] = 0; out[5] = Math.min(addr.length, 8);
  for (let i = 0; i < addr.length && i < 8; i++) out[6 + i] = addr[i]!;
  out[14] = proto >> 8; out[15] = proto;
  out.set(payload, SLL_HDR_LEN);
  return out;
}

/** A LINUX_SLL2 frame: the 20-byte header followed by `payload`. */
export function sll2Frame(payload: Uint8Array, o: CookedOptions = {}): Uint8Array {
  const addr = o.addr ?? [2, 0, 0, 0, 0, 1];
  const out = new Uint8Array(SLL2_HDR_LEN + payload.length);
  const proto = cookedProto(payload, o);
  const ifx = o.ifindex ?? 1;
  const ha = o.hatype ?? 1;
  out[0] = proto >> 8; out[1] = proto;
  out[4] = ifx >>> 24; out[5] = ifx >>> 16; out[6] = ifx >>> 8; out[7] = ifx;
  out[8] = ha >> 8; out[9] = ha;
  out[10] = o.pkttype ?? 0;
  out[11] = Math.min(addr.length, 8);
  for (let i = 0; i < addr.length && i < 8; i++) out[12 + i] = addr[i]!;
  out.set(payload, SLL2_HDR_LEN);
  return out;
}

/**
 * Splits a 64-bit count of units of 10^-k s (or 2^-k s when `pow2`) into
 * seconds and nanoseconds (rounded to the nearest). Exact: for 10^-k units
 * with k up to 9 (micro- and nanosecond captures) a long division of the
 * count's 16-bit limbs by 10^k in doubles, while the seconds fit one; BigInt
 * for the rest (finer or power-of-two resolutions, seconds past 2^53).
 */
export function splitTimestamp(hi: number, lo: number, k: number, pow2: boolean): [number, number] {
  const f = { tsSec: 0, tsNsec: 0 };
  setTimestamp(f, hi, lo, k, pow2, 0);
  return [f.tsSec, f.tsNsec];
}

/** splitTimestamp() into f.tsSec (plus `offset` seconds) and f.tsNsec, without an array per frame. */
export function setTimestamp(f: { tsSec: number; tsNsec: number }, hi: number, lo: number, k: number, pow2: boolean, offset: number): void {
  if (limbSplits(hi, k, pow2)) {
    divLimbs(hi, lo, POW10[k]!);
    f.tsSec = divQ + offset;
    f.tsNsec = divR * POW10[9 - k]!;
    return;
  }
  const units = (BigInt(hi) << 32n) | BigInt(lo);
  const res = pow2 ? 1n << BigInt(k) : 10n ** BigInt(k);
  let sec = units / res;
  // Rounded to the nearest nanosecond, so that a 2^-k writer's rounding round-trips.
  let ns = (frac2(units % res) + res) / (2n * res);
  if (ns === 1_000_000_000n) {
    sec += 1n;
    ns = 0n;
  }
  f.tsSec = Number(sec) + offset;
  f.tsNsec = Number(ns);
}

/** Whether the count (hi, lo) of 10^-k s units splits in doubles: k up to 9 and the seconds below 2^53. */
function limbSplits(hi: number, k: number, pow2: boolean): boolean {
  return !pow2 && k <= 9 && hi < 0x200000 * POW10[k]!;
}

/** The quotient and remainder divLimbs() made. */
let divQ = 0;
let divR = 0;

/** (hi, lo) / d limb by limb, high limb first (d at most 10^9): each partial dividend is below 2^46, the quotient below 2^53. */
function divLimbs(hi: number, lo: number, d: number): void {
  let r = 0;
  let q = 0;
  for (let s = 48; s >= 0; s -= 16) {
    const limb = (s >= 32 ? hi >>> (s - 32) : lo >>> s) & 0xffff;
    const cur = r * 0x10000 + limb;
    const ql = Math.floor(cur / d);
    r = cur - ql * d;
    q = q * 0x10000 + ql;
  }
  divQ = q;
  divR = r;
}

/**
 * setTimestamp() for the frames of one capture interface, whose counts
 * mostly share their high word: hi * 2^32 / 10^k is divided once per high
 * word, each frame then adds its low word to the remainder (below 2^53)
 * and divides that. The same results as setTimestamp().
 */
export class TimestampSplitter {
  private hi = -1;
  private hiSec = 0;
  private hiRem = 0;

  constructor(
    readonly k: number,
    readonly pow2: boolean,
    readonly offset: number,
  ) {}

  set(f: { tsSec: number; tsNsec: number }, hi: number, lo: number): void {
    const k = this.k;
    if (!limbSplits(hi, k, this.pow2)) {
      setTimestamp(f, hi, lo, k, this.pow2, this.offset);
      return;
    }
    const d = POW10[k]!;
    if (hi !== this.hi) {
      divLimbs(hi, 0, d);
      this.hi = hi;
      this.hiSec = divQ;
      this.hiRem = divR;
    }
    // exact: cur < 10^k + 2^32, so the quotient is below 1 + 2^32 / 10^k and its double is within
    // 2^-20 / 10^k of it, nearer than the 10^-k to the next integer that floor() could cross
    const cur = this.hiRem + lo;
    const q = Math.floor(cur / d);
    f.tsSec = this.hiSec + q + this.offset;
    f.tsNsec = (cur - q * d) * POW10[9 - k]!;
  }
}

/** 10^0 .. 10^9. */
const POW10: readonly number[] = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

function frac2(frac: bigint): bigint {
  return frac * 2_000_000_000n;
}
