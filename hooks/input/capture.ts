/**
 * Reading a capture without knowing its format, and handing its frames to
 * the VM.
 *
 *   for (const f of readCaptureFile('trace.pcapng')) {
 *     loadFrame(pkt, f);            // bytes + decodePacket() + SLL pkttype
 *     ...
 *   }
 *
 * The whole file is read into one buffer (readFileSync) and every frame is a
 * view into it, so a file of a few hundred MB costs its size once and no copy
 * per frame. Errors are CaptureError (an NfvmError): `FILE:@OFFSET: reason`.
 */
import { readFileSync } from 'node:fs';
import {
  M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_END, M_NFPROTO, M_NHOFF, M_PKTTYPE, M_PROTOCOL, M_THOFF, F_L4PROTO,
} from '../../vm/layout.js';
import { NFPROTO_UNSPEC } from '../../core/netfilter.js';
import { decodePacket, type Packet } from '../../vm/packet.js';
import {
  CaptureError, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
  SLL2_HDR_LEN, SLL_HDR_LEN, type Frame,
} from './frame.js';
import { readPcap, readPcapHeader } from './pcap.js';
import { readPcapng } from './pcapng.js';

export * from './frame.js';
export { readPcap, readPcapHeader, writePcap, PCAP_MAGIC_NS, PCAP_MAGIC_US, type OutFrame, type PcapHeader, type PcapWriteOptions } from './pcap.js';
export { readPcapng, writePcapng, type PcapngInterface, type PcapngWriteOptions } from './pcapng.js';

export type CaptureFormat = 'pcap' | 'pcapng';

/** The format of a capture from its first four bytes, or undefined. */
export function sniffCapture(buf: Uint8Array): CaptureFormat | undefined {
  if (buf.length < 4) return undefined;
  const m = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  if (m === 0x0a0d0d0a) return 'pcapng';
  if (m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1 || m === 0xa1b2cd34 || m === 0x34cdb2a1) return 'pcap';
  return undefined;
}

/** Yields the frames of a pcap or pcapng capture held in `buf`. */
export function readCapture(buf: Uint8Array, file = '<capture>'): Generator<Frame, void, undefined> {
  const fmt = sniffCapture(buf);
  if (fmt === 'pcapng') return readPcapng(buf, file);
  if (fmt === 'pcap') return readPcap(buf, file);
  const shown = buf.length >= 4 ? `magic 0x${[...buf.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join('')}` : `${buf.length} bytes`;
  throw new CaptureError('syntax', `not a pcap or pcapng file (${shown})`, file, 0);
}

/** The bytes of capture file `path` (`-` for stdin) and the name errors give it; a file that cannot be read is an 'io' NfvmError. */
export function readCaptureBytes(path: string): { buf: Uint8Array; name: string } {
  const name = path === '-' ? '<stdin>' : path;
  try {
    return { buf: readFileSync(path === '-' ? 0 : path), name };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? (e as Error).message})`;
    throw new CaptureError('io', reason, name, 0);
  }
}

/** Reads `path` (`-` for stdin) and yields its frames; a file that cannot be read is an 'io' NfvmError. */
export function readCaptureFile(path: string): Generator<Frame, void, undefined> {
  const { buf, name } = readCaptureBytes(path);
  return readCapture(buf, name);
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

/**
 * Whether a frame of the capture in `buf` can be outgoing at all: a pcapng
 * capture (epb_flags), or a pcap capture of link type LINUX_SLL / LINUX_SLL2
 * (sll_pkttype). A classic pcap of Ethernet or raw IP frames cannot say.
 */
export function mayHaveOutgoing(buf: Uint8Array, file: string): boolean {
  const fmt = sniffCapture(buf);
  if (fmt !== 'pcap') return fmt === 'pcapng';
  if (buf.length < 24) return false;
  const lt = readPcapHeader(buf, file).linktype;
  return lt === LINKTYPE_LINUX_SLL || lt === LINKTYPE_LINUX_SLL2;
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
 */
export function loadFrame(pkt: Packet, f: Frame): boolean {
  const v = networkView(f);
  if (v.data.length > pkt.data.length) {
    pkt.len = 0;
    return false;
  }
  pkt.data.set(v.data);
  pkt.len = v.data.length;
  const m = pkt.meta;
  if (v.linktype < 0) {
    decodePacket(pkt, LINKTYPE_IPV4);
    m[M_FLAGS] = m[M_FLAGS]! & ~F_L4PROTO;
    m[M_L4PROTO] = 0;
    m[M_THOFF] = 0;
    m[M_FRAGOFF] = 0;
    m[M_NFPROTO] = NFPROTO_UNSPEC;
    m[M_PROTOCOL] = v.protocol < 0 ? 0 : v.protocol;
    m[M_NHOFF] = 0;
    m[M_LEN] = pkt.len;
    m[M_END] = pkt.len;
  } else decodePacket(pkt, v.linktype);
  if (v.pkttype >= 0) m[M_PKTTYPE] = v.pkttype;
  return true;
}
