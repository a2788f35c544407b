/**
 * pcapng (draft-ietf-opsawg-pcapng), read and written.
 *
 * Block: type u32 | total_len u32 | body | total_len u32, total_len a multiple of 4.
 * Option: code u16 | len u16 | value padded to 4; code 0 ends the list.
 *   SHB 0x0A0D0D0A  byte-order magic 0x1A2B3C4D | major u16 | minor u16 | section_length i64
 *                   (the byte order is per section; a new SHB starts a new interface table)
 *   IDB 0x00000001  linktype u16 | reserved u16 | snaplen u32; if_name (2), if_tsresol (9), if_tsoffset (14)
 *   EPB 0x00000006  if_id u32 | ts_hi u32 | ts_lo u32 | caplen u32 | origlen u32 | data; epb_flags (2)
 *   SPB 0x00000003  origlen u32 | data (interface 0, no timestamp; caplen = min(origlen, snaplen, room))
 *   OPB 0x00000002  if_id u16 | drops u16 | ts_hi | ts_lo | caplen | origlen | data (obsolete packet block)
 * Every other block type (NRB, ISB, DSB, custom, unknown) is skipped.
 */
import {
  CaptureError, StreamFrame, checkLinktype, cookedHeader, TimestampSplitter, type Frame,
} from './frame.js';
import { BufferSource, MAX_RECORD, type ByteSource } from './source.js';
import type { OutFrame } from './pcap.js';

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_OPB = 0x00000002;
export const BT_SPB = 0x00000003;
export const BT_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
const EPB_FLAGS = 2;

const BLOCK_NAMES: ReadonlyMap<number, string> = new Map([
  [BT_SHB, 'Section Header Block'],
  [BT_IDB, 'Interface Description Block'],
  [BT_OPB, 'Packet Block'],
  [BT_SPB, 'Simple Packet Block'],
  [BT_EPB, 'Enhanced Packet Block'],
]);

function blockName(t: number): string {
  return BLOCK_NAMES.get(t) ?? `block of type 0x${t.toString(16).padStart(8, '0')}`;
}

interface Iface {
  linktype: number;
  snaplen: number;
  name: string;
  /** if_tsresol exponent and base. */
  tsK: number;
  tsPow2: boolean;
  /** if_tsoffset, seconds. */
  tsOffset: number;
  /** The split of this interface's timestamps (made once its options are read). */
  ts?: TimestampSplitter;
}

const utf8 = new TextDecoder('utf-8');

function optString(buf: Uint8Array, at: number, len: number): string {
  let end = at + len;
  while (end > at && buf[end - 1] === 0) end--;
  return utf8.decode(buf.subarray(at, end));
}

/**
 * Walks the options in [start, end) (window positions; the block at
 * `blockAt`, file offset `blockOff`): calls `each(code, valueAt, valueLength)`.
 * Throws when an option runs past the end of its block.
 */
function readOptions(
  dv: DataView, start: number, end: number, le: boolean, file: string, blockOff: number, blockAt: number,
  each: (code: number, at: number, len: number) => void,
): void {
  let p = start;
  while (p < end) {
    if (end - p < 4) throw new CaptureError('syntax', `truncated option header in ${blockName(dv.getUint32(blockAt, le))}`, file, blockOff);
    const code = dv.getUint16(p, le);
    const len = dv.getUint16(p + 2, le);
    if (code === OPT_ENDOFOPT) return;
    const padded = (len + 3) & ~3;
    if (padded > end - p - 4) throw new CaptureError('syntax', `option ${code} of ${len} bytes runs past the end of its block`, file, blockOff);
    each(code, p + 4, len);
    p += 4 + padded;
  }
}

/**
 * Reads a pcapng file block by block from a ByteSource (a file in chunks,
 * or a buffer): next() fills the one StreamFrame with the next packet and
 * returns it, or undefined at the end. Throws CaptureError
 * (`file:@offset: reason`, offset of the block) on a damaged or truncated
 * block.
 */
export class PcapngReader {
  readonly frame = new StreamFrame();
  private off = 0;
  private le = true;
  private section = -1;
  private ifaces: Iface[] = [];

  constructor(
    private readonly src: ByteSource,
    private readonly file: string,
  ) {}

  next(): StreamFrame | undefined {
    const src = this.src;
    const file = this.file;
    for (;;) {
      const off = this.off;
      let left = src.ensure(off, 12);
      if (left === 0) return undefined;
      if (left < 12) throw new CaptureError('syntax', `truncated block header (${left} of 12 bytes)`, file, off);
      let p = off - src.base;
      let le = this.le;
      let type = src.dv.getUint32(p, le);
      if (type === BT_SHB) {
        // The byte-order magic decides how to read everything else, this block's length included.
        left = src.ensure(off, 28);
        p = off - src.base;
        if (left < 28) throw new CaptureError('syntax', `truncated Section Header Block (${left} of at least 28 bytes)`, file, off);
        const bom = src.dv.getUint32(p + 8, false);
        if (bom === BYTE_ORDER_MAGIC) le = false;
        else if (bom === 0x4d3c2b1a) le = true;
        else throw new CaptureError('syntax', `bad byte-order magic 0x${bom.toString(16).padStart(8, '0')} in Section Header Block`, file, off);
        this.le = le;
      } else if (this.section < 0) {
        throw new CaptureError('syntax', 'not a pcapng file (no Section Header Block at the start)', file, off);
      }
      type = src.dv.getUint32(p, le);
      const len = src.dv.getUint32(p + 4, le);
      if (len < 12 || len % 4 !== 0) throw new CaptureError('syntax', `${blockName(type)} has an invalid length ${len}`, file, off);
      if (len > MAX_RECORD) {
        if (src.size >= 0 && len > src.size - off) throw new CaptureError('syntax', `truncated ${blockName(type)} (block length ${len}, ${src.size - off} bytes left)`, file, off);
        throw new CaptureError('syntax', `${blockName(type)} length ${len} exceeds the ${MAX_RECORD} bytes nfvm reads (damaged file?)`, file, off);
      }
      left = src.ensure(off, len);
      if (len > left) throw new CaptureError('syntax', `truncated ${blockName(type)} (block length ${len}, ${left} bytes left)`, file, off);
      p = off - src.base;
      const buf = src.buf;
      const dv = src.dv;
      const trailer = dv.getUint32(p + len - 4, le);
      if (trailer !== len) throw new CaptureError('syntax', `${blockName(type)} length mismatch (${len} at the start, ${trailer} at the end)`, file, off);
      this.off = off + len;
      const body = p + 8;
      const end = p + len - 4;
      const blen = end - body;
      switch (type) {
        case BT_SHB: {
          if (blen < 16) throw new CaptureError('syntax', `Section Header Block too short (${len} bytes)`, file, off);
          const major = dv.getUint16(body + 4, le);
          const minor = dv.getUint16(body + 6, le);
          if (major !== 1) throw new CaptureError('value', `unsupported pcapng version ${major}.${minor}`, file, off);
          this.section++;
          this.ifaces = [];
          break;
        }
        case BT_IDB: {
          if (blen < 8) throw new CaptureError('syntax', `Interface Description Block too short (${len} bytes)`, file, off);
          const linktype = dv.getUint16(body, le);
          checkLinktype(linktype, file, off);
          const ifc: Iface = { linktype, snaplen: dv.getUint32(body + 4, le), name: '', tsK: 6, tsPow2: false, tsOffset: 0 };
          readOptions(dv, body + 8, end, le, file, off, p, (code, at, vlen) => {
            if (code === IF_NAME) ifc.name = optString(buf, at, vlen);
            else if (code === IF_TSRESOL && vlen >= 1) {
              const v = buf[at]!;
              ifc.tsPow2 = (v & 0x80) !== 0;
              ifc.tsK = v & 0x7f;
            } else if (code === IF_TSOFFSET && vlen >= 8) ifc.tsOffset = Number(dv.getBigInt64(at, le));
          });
          this.ifaces.push(ifc);
          break;
        }
        case BT_EPB:
        case BT_OPB: {
          if (blen < 20) throw new CaptureError('syntax', `${blockName(type)} too short (${len} bytes)`, file, off);
          const ifId = type === BT_EPB ? dv.getUint32(body, le) : dv.getUint16(body, le);
          const ifc = this.ifaces[ifId];
          if (!ifc) throw new CaptureError('syntax', `${blockName(type)} for interface ${ifId}, but section ${this.section} defines ${this.ifaces.length}`, file, off);
          const caplen = dv.getUint32(body + 12, le);
          if (caplen > blen - 20) throw new CaptureError('syntax', `${blockName(type)} captured length ${caplen} exceeds the block (${blen - 20} bytes)`, file, off);
          const f = this.frame;
          f.reset(buf, body + 20, caplen, ifc.linktype, off);
          f.origLen = dv.getUint32(body + 16, le);
          (ifc.ts ??= new TimestampSplitter(ifc.tsK, ifc.tsPow2, ifc.tsOffset)).set(f, dv.getUint32(body + 4, le), dv.getUint32(body + 8, le));
          f.ifId = ifId;
          f.ifName = ifc.name;
          f.section = this.section;
          this.packetOptions(f, body + 20 + ((caplen + 3) & ~3), end, off, p);
          cookedHeader(f, buf, body + 20, caplen, file);
          return f;
        }
        case BT_SPB: {
          if (blen < 4) throw new CaptureError('syntax', `Simple Packet Block too short (${len} bytes)`, file, off);
          const ifc = this.ifaces[0];
          if (!ifc) throw new CaptureError('syntax', `Simple Packet Block, but section ${this.section} defines no interface`, file, off);
          const origLen = dv.getUint32(body, le);
          let caplen = Math.min(origLen, blen - 4);
          if (ifc.snaplen !== 0) caplen = Math.min(caplen, ifc.snaplen);
          const f = this.frame;
          f.reset(buf, body + 4, caplen, ifc.linktype, off);
          f.origLen = origLen;
          f.ifName = ifc.name;
          f.section = this.section;
          cookedHeader(f, buf, body + 4, caplen, file);
          return f;
        }
        default:
          break; // NRB, ISB, DSB, custom and unknown blocks carry nothing nfvm needs
      }
    }
  }

  /** The options of a packet block in [start, end) (window positions): epb_flags and the first opt_comment. */
  private packetOptions(f: StreamFrame, start: number, end: number, blockOff: number, blockAt: number): void {
    const buf = this.src.buf;
    const dv = this.src.dv;
    const le = this.le;
    let p = start;
    while (p < end) {
      if (end - p < 4) throw new CaptureError('syntax', `truncated option header in ${blockName(dv.getUint32(blockAt, le))}`, this.file, blockOff);
      const code = dv.getUint16(p, le);
      const len = dv.getUint16(p + 2, le);
      if (code === OPT_ENDOFOPT) return;
      const padded = (len + 3) & ~3;
      if (padded > end - p - 4) throw new CaptureError('syntax', `option ${code} of ${len} bytes runs past the end of its block`, this.file, blockOff);
      if (code === EPB_FLAGS && len >= 4) f.flags = dv.getUint32(p + 4, le);
      else if (code === OPT_COMMENT && f.comment === '') f.comment = optString(buf, p + 4, len);
      p += 4 + padded;
    }
  }
}

/**
 * Yields the frames of a pcapng file held in `buf` (data are views into
 * `buf`). Throws CaptureError (`file:@offset: reason`, offset of the block)
 * on a damaged or truncated block.
 */
export function* readPcapng(buf: Uint8Array, file = '<pcapng>'): Generator<Frame, void, undefined> {
  const r = new PcapngReader(new BufferSource(buf), file);
  for (let f = r.next(); f; f = r.next()) yield f.copy(false);
}

export interface PcapngInterface {
  linktype: number;
  name?: string;
  /** Default 262144. */
  snaplen?: number;
  /** if_tsresol byte: 6 (µs, the default), 9 (ns), or 0x80 | k for 2^-k. */
  tsresol?: number;
}

export interface PcapngWriteOptions {
  interfaces: PcapngInterface[];
  /** Default false (little-endian). */
  bigEndian?: boolean;
  /** The packet block to write: 'epb' (default), 'spb' (interface 0 only; no timestamp) or 'opb'. */
  packetBlock?: 'epb' | 'spb' | 'opb';
  /** An SHB opt_comment. */
  comment?: string;
}

const utf8enc = new TextEncoder();

class BlockWriter {
  parts: Uint8Array[] = [];
  size = 0;
  constructor(readonly le: boolean) {}

  /** Appends a block; `body` is the body without the framing. */
  block(type: number, body: Uint8Array): void {
    const len = 12 + ((body.length + 3) & ~3);
    const b = new Uint8Array(len);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, type, this.le);
    dv.setUint32(4, len, this.le);
    b.set(body, 8);
    dv.setUint32(len - 4, len, this.le);
    this.parts.push(b);
    this.size += len;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Encodes an option list (with opt_endofopt when non-empty). */
function options(le: boolean, opts: [code: number, value: Uint8Array][]): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0);
  let size = 4;
  for (const [, v] of opts) size += 4 + ((v.length + 3) & ~3);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let p = 0;
  for (const [code, v] of opts) {
    dv.setUint16(p, code, le);
    dv.setUint16(p + 2, v.length, le);
    out.set(v, p + 4);
    p += 4 + ((v.length + 3) & ~3);
  }
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function tsUnits(sec: number, nsec: number, resol: number): bigint {
  const k = BigInt(resol & 0x7f);
  const total = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  // Rounded to the nearest unit.
  const scaled = resol & 0x80 ? total << k : total * 10n ** k;
  return (scaled * 2n + 1_000_000_000n) / 2_000_000_000n;
}

/**
 * Serialises one pcapng section (SHB, one IDB per interface, then a packet
 * block per frame). Several sections are written by concatenating the results.
 */
export function writePcapng(frames: Iterable<OutFrame>, o: PcapngWriteOptions): Uint8Array {
  const le = !o.bigEndian;
  const w = new BlockWriter(le);
  const shb = new Uint8Array(16);
  const sdv = new DataView(shb.buffer);
  sdv.setUint32(0, BYTE_ORDER_MAGIC, le);
  sdv.setUint16(4, 1, le);
  sdv.setUint16(6, 0, le);
  sdv.setBigInt64(8, -1n, le);
  w.block(BT_SHB, cat(shb, options(le, o.comment ? [[OPT_COMMENT, utf8enc.encode(o.comment)]] : [])));
  for (const ifc of o.interfaces) {
    const h = new Uint8Array(8);
    const dv = new DataView(h.buffer);
    dv.setUint16(0, ifc.linktype, le);
    dv.setUint32(4, ifc.snaplen ?? 262144, le);
    const opts: [number, Uint8Array][] = [];
    if (ifc.name) opts.push([IF_NAME, utf8enc.encode(ifc.name)]);
    if (ifc.tsresol !== undefined && ifc.tsresol !== 6) opts.push([IF_TSRESOL, Uint8Array.of(ifc.tsresol)]);
    w.block(BT_IDB, cat(h, options(le, opts)));
  }
  const kind = o.packetBlock ?? 'epb';
  for (const f of frames) {
    const ifId = f.ifId ?? 0;
    const ifc = o.interfaces[ifId];
    if (!ifc) throw new RangeError(`frame for interface ${ifId}, but only ${o.interfaces.length} interfaces`);
    const data = f.data;
    const pad = new Uint8Array((4 - (data.length & 3)) & 3);
    if (kind === 'spb') {
      if (ifId !== 0) throw new RangeError('a Simple Packet Block can only carry interface 0');
      const h = new Uint8Array(4);
      new DataView(h.buffer).setUint32(0, f.origLen ?? data.length, le);
      w.block(BT_SPB, cat(h, data));
      continue;
    }
    const h = new Uint8Array(20);
    const dv = new DataView(h.buffer);
    if (kind === 'opb') dv.setUint16(0, ifId, le);
    else dv.setUint32(0, ifId, le);
    const units = tsUnits(f.tsSec ?? 0, f.tsNsec ?? 0, ifc.tsresol ?? 6);
    dv.setUint32(4, Number((units >> 32n) & 0xffffffffn), le);
    dv.setUint32(8, Number(units & 0xffffffffn), le);
    dv.setUint32(12, data.length, le);
    dv.setUint32(16, f.origLen ?? data.length, le);
    const opts: [number, Uint8Array][] = [];
    if (f.flags) {
      const v = new Uint8Array(4);
      new DataView(v.buffer).setUint32(0, f.flags, le);
      opts.push([EPB_FLAGS, v]);
    }
    if (f.comment) opts.push([OPT_COMMENT, utf8enc.encode(f.comment)]);
    w.block(kind === 'opb' ? BT_OPB : BT_EPB, cat(h, data, pad, options(le, opts)));
  }
  return w.finish();
}
