/**
 * Reading a capture without knowing its format, and handing its frames to
 * the VM.
 *
 *   const cap = openCapture('trace.pcapng');   // or '-': stdin
 *   for (let f = cap.next(); f; f = cap.next()) {
 *     loadFrame(pkt, f);            // bytes + decodePacket() + SLL pkttype
 *     ...
 *   }
 *   cap.close();
 *
 * The file is read in chunks into one window (source.ts) and the one frame
 * the reader refills points into it, so a capture of any size costs a
 * window's memory and nothing per frame. Errors are CaptureError (an
 * NfvmError): `FILE:@OFFSET: reason`.
 */
import {
  M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_END, M_NFPROTO, M_NHOFF, M_PKTTYPE, M_PROTOCOL, M_THOFF, F_L4PROTO,
} from '../../vm/layout.js';
import { NFPROTO_UNSPEC } from '../../core/netfilter.js';
import { copyFrame, decodePacket, type Packet } from '../../vm/packet.js';
import {
  CaptureError, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
  SLL2_HDR_LEN, SLL_HDR_LEN, StreamFrame, type Frame,
} from './frame.js';
import { PcapReader } from './pcap.js';
import { PcapngReader } from './pcapng.js';
import { BufferSource, FileSource, type ByteSource } from './source.js';

export * from './frame.js';
export { PcapReader, readPcap, readPcapHeader, writePcap, PCAP_MAGIC_NS, PCAP_MAGIC_US, type OutFrame, type PcapHeader, type PcapWriteOptions } from './pcap.js';
export { PcapngReader, readPcapng, writePcapng, type PcapngInterface, type PcapngWriteOptions } from './pcapng.js';

export type CaptureFormat = 'pcap' | 'pcapng';

/** The format of a capture from its first four bytes, or undefined. */
export function sniffCapture(buf: Uint8Array): CaptureFormat | undefined {
  if (buf.length < 4) return undefined;
  const m = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  if (m === 0x0a0d0d0a) return 'pcapng';
  if (m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1 || m === 0xa1b2cd34 || m === 0x34cdb2a1) return 'pcap';
  return undefined;
}

/** A capture read record by record: next() refills one frame (valid until the next call), undefined at the end. */
export interface CaptureReader {
  readonly format: CaptureFormat;
  /** The file's size, -1 when unknown (a pipe). */
  readonly size: number;
  /**
   * Whether its frames can say they left the capturing host (isOutgoing()):
   * pcapng (epb_flags), LINUX_SLL and LINUX_SLL2 (the packet type).
   */
  readonly directional: boolean;
  next(): StreamFrame | undefined;
  close(): void;
}

/** The reader of the capture in `src`, by its magic. */
function openSource(src: ByteSource, file: string): CaptureReader {
  const have = src.ensure(0, 4);
  const head = src.buf.subarray(0, Math.min(have, 4));
  const fmt = sniffCapture(head);
  if (fmt === undefined) {
    src.close();
    const shown = head.length >= 4 ? `magic 0x${[...head].map((b) => b.toString(16).padStart(2, '0')).join('')}` : `${head.length} bytes`;
    throw new CaptureError('syntax', `not a pcap or pcapng file (${shown})`, file, 0);
  }
  let r: PcapReader | PcapngReader;
  try {
    r = fmt === 'pcapng' ? new PcapngReader(src, file) : new PcapReader(src, file);
  } catch (e) {
    src.close();
    throw e;
  }
  const directional = r instanceof PcapngReader || r.header.linktype === LINKTYPE_LINUX_SLL || r.header.linktype === LINKTYPE_LINUX_SLL2;
  return { format: fmt, size: src.size, directional, next: () => r.next(), close: () => src.close() };
}

/**
 * Opens the capture at `path` (`-`: stdin) for reading in chunks: memory
 * stays one window of the file whatever its size, and a pipe is read once.
 * A file that cannot be read is an 'io' CaptureError; a damaged one a
 * 'syntax' or 'value' CaptureError when the reader reaches the damage.
 */
export function openCapture(path: string): CaptureReader {
  const name = path === '-' ? '<stdin>' : path;
  return openSource(FileSource.open(path), name);
}

/** Yields the frames of a pcap or pcapng capture held in `buf` (data: views into `buf`). */
export function readCapture(buf: Uint8Array, file = '<capture>'): Generator<Frame, void, undefined> {
  return views(openSource(new BufferSource(buf), file));
}

function* views(r: CaptureReader): Generator<Frame, void, undefined> {
  for (let f = r.next(); f; f = r.next()) yield f.copy(false);
}

/**
 * Reads `path` (`-` for stdin) in chunks and yields its frames, each with
 * its own copy of the bytes (openCapture() reuses one frame); a file that
 * cannot be read is an 'io' NfvmError.
 */
export function readCaptureFile(path: string): Generator<Frame, void, undefined> {
  return copies(openCapture(path));
}

function* copies(r: CaptureReader): Generator<Frame, void, undefined> {
  try {
    for (let f = r.next(); f; f = r.next()) yield f.copy(true);
  } finally {
    r.close();
  }
}

/** sll_pkttype PACKET_OUTGOING: a frame the capturing host sent. */
export const SLL_PACKET_OUTGOING = 4;
/** pcapng epb_flags direction (bits 0-1): 2 = outbound. */
export const EPB_DIRECTION_OUTBOUND = 2;

/**
 * Whether the capture saw `f` leave the host that captured it (pcapng
 * epb_flags direction outbound, SLL/SLL2 packet type PACKET_OUTGOING): sent
 * by the node, not input to its receive path.
 */
export function isOutgoing(f: Frame): boolean {
  return (f.flags & 3) === EPB_DIRECTION_OUTBOUND || f.pkttype === SLL_PACKET_OUTGOING;
}

/** What decodePacket() takes for one frame. */
export interface NetworkView {
  /** The bytes to decode: the whole frame for Ethernet and raw IP, the network layer for SLL/SLL2. */
  data: Uint8Array;
  /** The link type to pass to decodePacket(): ETHERNET, RAW, IPV4 or IPV6; -1 for an SLL frame that is not IP. */
  linktype: number;
  /** skb->protocol (the SLL protocol, or -1 when decodePacket() works it out). */
  protocol: number;
  /** sll_pkttype for SLL/SLL2, -1 otherwise (decodePacket() derives it from the MAC). */
  pkttype: number;
  /** SLL2 ifindex, -1 otherwise. */
  ifindex: number;
}

/**
 * The part of `f` that decodePacket() reads and the cooked-header metadata.
 * An SLL/SLL2 frame becomes its network-layer bytes, decoded as IPV4 or IPV6
 * by its protocol field (linktype -1 for other protocols: ARP and the like).
 */
export function networkView(f: Frame): NetworkView {
  const lt = f.linktype;
  if (lt === LINKTYPE_LINUX_SLL || lt === LINKTYPE_LINUX_SLL2) {
    const hl = lt === LINKTYPE_LINUX_SLL ? SLL_HDR_LEN : SLL2_HDR_LEN;
    const p = f.protocol;
    return {
      data: f.data.subarray(hl),
      linktype: p === 0x0800 ? LINKTYPE_IPV4 : p === 0x86dd ? LINKTYPE_IPV6 : -1,
      protocol: p,
      pkttype: f.pkttype,
      ifindex: f.sllIfindex,
    };
  }
  return { data: f.data, linktype: lt === LINKTYPE_ETHERNET || lt === LINKTYPE_RAW || lt === LINKTYPE_IPV4 || lt === LINKTYPE_IPV6 ? lt : -1, protocol: -1, pkttype: -1, ifindex: -1 };
}

/**
 * Copies frame `f` into `pkt` and decodes it: decodePacket() on the network
 * view, then the SLL pkttype; a non-IP cooked frame gets skb->protocol and no
 * network-layer information. Device, mark and conntrack fields are left alone.
 * Returns false (and leaves `pkt` empty) when the frame does not fit the buffer.
 * A StreamFrame is copied from the reader's window, without a view or a
 * NetworkView per frame.
 */
export function loadFrame(pkt: Packet, f: Frame): boolean {
  let bytes: Uint8Array;
  let at: number;
  let len: number;
  if (f instanceof StreamFrame) {
    bytes = f.bytes;
    at = f.at;
    len = f.caplen;
  } else {
    bytes = f.data;
    at = 0;
    len = bytes.length;
  }
  const lt = f.linktype;
  let linktype: number;
  let protocol = -1;
  let pkttype = -1;
  if (lt === LINKTYPE_LINUX_SLL || lt === LINKTYPE_LINUX_SLL2) {
    const hl = lt === LINKTYPE_LINUX_SLL ? SLL_HDR_LEN : SLL2_HDR_LEN;
    at += hl;
    len -= hl;
    protocol = f.protocol;
    pkttype = f.pkttype;
    linktype = protocol === 0x0800 ? LINKTYPE_IPV4 : protocol === 0x86dd ? LINKTYPE_IPV6 : -1;
  } else linktype = lt === LINKTYPE_ETHERNET || lt === LINKTYPE_RAW || lt === LINKTYPE_IPV4 || lt === LINKTYPE_IPV6 ? lt : -1;
  const d = pkt.data;
  if (len > d.length) {
    pkt.len = 0;
    return false;
  }
  copyFrame(pkt, bytes, at, len);
  pkt.len = len;
  const m = pkt.meta;
  if (linktype < 0) {
    decodePacket(pkt, LINKTYPE_IPV4);
    m[M_FLAGS] = m[M_FLAGS]! & ~F_L4PROTO;
    m[M_L4PROTO] = 0;
    m[M_THOFF] = 0;
    m[M_FRAGOFF] = 0;
    m[M_NFPROTO] = NFPROTO_UNSPEC;
    m[M_PROTOCOL] = protocol < 0 ? 0 : protocol;
    m[M_NHOFF] = 0;
    m[M_LEN] = pkt.len;
    m[M_END] = pkt.len;
  } else decodePacket(pkt, linktype);
  if (pkttype >= 0) m[M_PKTTYPE] = pkttype;
  return true;
}
