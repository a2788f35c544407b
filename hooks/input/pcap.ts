/**
 * Classic pcap (libpcap savefile format; draft-ietf-opsawg-pcap), read and
 * written.
 *
 * File header, 24 bytes in the writer's byte order:
 *   magic u32 | version_major u16 | version_minor u16 | thiszone i32 | sigfigs u32 | snaplen u32 | network u32
 * magic 0xA1B2C3D4 = microsecond timestamps, 0xA1B23C4D = nanosecond; read
 * byte-swapped it means the other byte order. `network` carries the link type
 * in its low 16 bits (the upper bits hold FCS information).
 * Record header, 16 bytes: ts_sec u32 | ts_usec_or_nsec u32 | incl_len u32 | orig_len u32, then the data.
 *
 * As libpcap (sf-pcap.c) does, a record whose incl_len exceeds
 * max(snaplen, 262144) is rejected as damaged rather than read.
 */
import {
  CaptureError, StreamFrame, checkLinktype, cookedHeader, type Frame,
} from './frame.js';
import { BufferSource, MAX_RECORD, type ByteSource } from './source.js';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** Alexey Kuznetzov's modified format (extra fields per record): recognised to name it. */
const PCAP_MAGIC_KUZNETZOV = 0xa1b2cd34;
/** libpcap's MAXIMUM_SNAPLEN. */
const MAXIMUM_SNAPLEN = 262144;

export interface PcapHeader {
  littleEndian: boolean;
  nanosecond: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  linktype: number;
  /** The upper 16 bits of the network field (FCS length and flags). */
  linkFlags: number;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** Reads the 24-byte file header; throws CaptureError when it is not a pcap header nfvm reads. */
export function readPcapHeader(buf: Uint8Array, file: string): PcapHeader {
  if (buf.length < 24) throw new CaptureError('syntax', `truncated pcap file header (${buf.length} of 24 bytes)`, file, 0);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const raw = dv.getUint32(0, false);
  let le: boolean;
  if (raw === PCAP_MAGIC_US || raw === PCAP_MAGIC_NS) le = false;
  else if (swap32(raw) === PCAP_MAGIC_US || swap32(raw) === PCAP_MAGIC_NS) le = true;
  else if (raw === PCAP_MAGIC_KUZNETZOV || swap32(raw) === PCAP_MAGIC_KUZNETZOV) {
    throw new CaptureError('value', 'unsupported modified (Kuznetzov) pcap format', file, 0);
  } else throw new CaptureError('syntax', `not a pcap file (magic 0x${raw.toString(16).padStart(8, '0')})`, file, 0);
  const ns = (le ? swap32(raw) : raw) === PCAP_MAGIC_NS;
  const versionMajor = dv.getUint16(4, le);
  const versionMinor = dv.getUint16(6, le);
  if (versionMajor !== 2) throw new CaptureError('value', `unsupported pcap version ${versionMajor}.${versionMinor}`, file, 0);
  const snaplen = dv.getUint32(16, le);
  const network = dv.getUint32(20, le);
  const linktype = network & 0xffff;
  checkLinktype(linktype, file, 0);
  return { littleEndian: le, nanosecond: ns, versionMajor, versionMinor, snaplen, linktype, linkFlags: network >>> 16 };
}

/**
 * Reads a classic pcap file record by record from a ByteSource (a file in
 * chunks, or a buffer): next() fills the one StreamFrame and returns it, or
 * undefined at the end. Throws CaptureError (`file:@offset: reason`) on a
 * damaged or truncated record.
 */
export class PcapReader {
  readonly frame = new StreamFrame();
  readonly header: PcapHeader;
  private off = 24;
  private readonly maxCap: number;
  private readonly div: number;
  private readonly mul: number;

  constructor(
    private readonly src: ByteSource,
    private readonly file: string,
  ) {
    const have = src.ensure(0, 24);
    this.header = readPcapHeader(src.buf.subarray(0, Math.min(have, 24)), file);
    this.maxCap = Math.max(this.header.snaplen, MAXIMUM_SNAPLEN);
    this.div = this.header.nanosecond ? 1e9 : 1e6;
    this.mul = this.header.nanosecond ? 1 : 1000;
  }

  next(): StreamFrame | undefined {
    const src = this.src;
    const file = this.file;
    const off = this.off;
    let left = src.ensure(off, 16);
    if (left === 0) return undefined;
    if (left < 16) throw new CaptureError('syntax', `truncated packet record header (${left} of 16 bytes)`, file, off);
    const le = this.header.littleEndian;
    let p = off - src.base;
    let dv = src.dv;
    const sec = dv.getUint32(p, le);
    const frac = dv.getUint32(p + 4, le);
    const incl = dv.getUint32(p + 8, le);
    const orig = dv.getUint32(p + 12, le);
    if (incl > this.maxCap) throw new CaptureError('syntax', `packet record captured length ${incl} exceeds the maximum ${this.maxCap} (damaged file?)`, file, off);
    if (incl > MAX_RECORD) {
      // A snaplen beyond what nfvm buffers: truncated when the file ends first, damaged otherwise.
      if (src.size >= 0 && incl > src.size - off - 16) throw new CaptureError('syntax', `truncated packet record (captured length ${incl}, ${src.size - off - 16} bytes left)`, file, off);
      throw new CaptureError('syntax', `packet record captured length ${incl} exceeds the ${MAX_RECORD} bytes nfvm reads (damaged file?)`, file, off);
    }
    left = src.ensure(off, 16 + incl);
    if (incl > left - 16) throw new CaptureError('syntax', `truncated packet record (captured length ${incl}, ${left - 16} bytes left)`, file, off);
    p = off - src.base;
    dv = src.dv;
    const f = this.frame;
    f.reset(src.buf, p + 16, incl, this.header.linktype, off);
    f.origLen = orig;
    // Writers are not trusted to keep the fraction below one second.
    const carry = Math.floor(frac / this.div);
    f.tsSec = sec + carry;
    f.tsNsec = (frac - carry * this.div) * this.mul;
    cookedHeader(f, src.buf, p + 16, incl, file);
    this.off = off + 16 + incl;
    return f;
  }
}

/**
 * Yields the frames of a classic pcap file held in `buf`. Each frame's data
 * is a view into `buf`. Throws CaptureError (`file:@offset: reason`) on a
 * damaged or truncated record.
 */
export function* readPcap(buf: Uint8Array, file = '<pcap>'): Generator<Frame, void, undefined> {
  const r = new PcapReader(new BufferSource(buf), file);
  for (let f = r.next(); f; f = r.next()) yield f.copy(false);
}

/** A frame to write: only `data` is required. */
export interface OutFrame {
  data: Uint8Array;
  /** Default data.length. */
  origLen?: number;
  tsSec?: number;
  tsNsec?: number;
  /** pcapng: the interface (index into `interfaces`); default 0. */
  ifId?: number;
  /** pcapng: epb_flags; written when non-zero. */
  flags?: number;
  /** pcapng: opt_comment. */
  comment?: string;
}

export interface PcapWriteOptions {
  linktype: number;
  /** Nanosecond magic; default false (microseconds, as tcpdump writes). */
  nanosecond?: boolean;
  /** Default false: little-endian, as on x86. */
  bigEndian?: boolean;
  /** Default 262144. */
  snaplen?: number;
}

/** Serialises `frames` as a classic pcap file. */
export function writePcap(frames: Iterable<OutFrame>, o: PcapWriteOptions): Uint8Array {
  const list = [...frames];
  let size = 24;
  for (const f of list) size += 16 + f.data.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  const le = !o.bigEndian;
  dv.setUint32(0, o.nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, o.snaplen ?? MAXIMUM_SNAPLEN, le);
  dv.setUint32(20, o.linktype, le);
  let off = 24;
  for (const f of list) {
    const ns = f.tsNsec ?? 0;
    dv.setUint32(off, f.tsSec ?? 0, le);
    dv.setUint32(off + 4, o.nanosecond ? ns : Math.floor(ns / 1000), le);
    dv.setUint32(off + 8, f.data.length, le);
    dv.setUint32(off + 12, f.origLen ?? f.data.length, le);
    out.set(f.data, off + 16);
    off += 16 + f.data.length;
  }
  return out;
}
