/**
 * The packet as the VM sees it: the frame bytes in a reused Uint8Array and a
 * fixed-layout metadata record (layout.ts M_*), which stands for the kernel's
 * struct sk_buff fields, struct nf_hook_state and struct nft_pktinfo.
 *
 * decodePacket() computes what the kernel computes before the chain runs:
 *   include/net/netfilter/nf_tables_ipv4.h  __nft_set_pktinfo_ipv4_validate()
 *   include/net/netfilter/nf_tables_ipv6.h  __nft_set_pktinfo_ipv6_validate()
 *   net/ipv6/exthdrs_core.c                 ipv6_find_hdr() (target -1, IP6_FH_F_AUTH)
 * A header that fails validation leaves F_L4PROTO clear (nft_set_pktinfo_unspec),
 * so transport loads and `meta l4proto` BREAK.
 */
import {
  F_L4PROTO, F_MAC_HEADER, F_NFTRACE, F_XT_AH, IFNAMSIZ, META_WORDS, M_XT_FRAGOFF, M_XT_L4PROTO, M_XT_THOFF, M_CT_DIR, M_CT_ID, M_END, M_FLAGS, M_FRAGOFF, M_HOOK, M_IIF,
  M_IIFGROUP, M_IIFNAME, M_IIFTYPE, M_L4PROTO, M_LEN, M_MACOFF, M_NFPROTO, M_NHOFF, M_OIF, M_OIFGROUP, M_OIFNAME,
  M_OIFTYPE, M_PKTTYPE, M_PROTOCOL, M_SKGID, M_SKUID, M_THOFF, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST,
  M_BRIINAME, M_BRIONAME, M_VLAN_PROTO, M_VLAN_TCI, PACKET_OTHERHOST, M_SK, M_SK_GROUPS, M_SK_NGROUPS, SK_FILE, SK_MAX_GROUPS, M_SK_CGROUP, M_SK_CLASSID,
} from './layout.js';
import { NFPROTO_BRIDGE, NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC } from '../core/netfilter.js';

/** pcap link types decodePacket() understands. */
export const LINKTYPE_ETHERNET = 1;
/** Raw IP: the version nibble selects IPv4 or IPv6. */
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const ETH_P_ARP = 0x0806;
/** eth_type_trans()'s skb->protocol for a length field: raw 802.3 (IPX over 0xFFFF) or 802.2 LLC. */
export const ETH_P_802_3 = 0x0001;
export const ETH_P_802_2 = 0x0004;
/** Type/length values below this are 802.3 lengths (eth_proto_is_802_3()). */
export const ETH_P_802_3_MIN = 0x0600;
export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;

/** IPv6 next-header values that are extension headers (ipv6_ext_hdr()). */
const NEXTHDR_HOP = 0;
export const NEXTHDR_ROUTING = 43;
export const NEXTHDR_FRAGMENT = 44;
export const NEXTHDR_AUTH = 51;
export const NEXTHDR_NONE = 59;
const NEXTHDR_DEST = 60;

export function ipv6ExtHdr(nexthdr: number): boolean {
  return (
    nexthdr === NEXTHDR_HOP || nexthdr === NEXTHDR_ROUTING || nexthdr === NEXTHDR_FRAGMENT ||
    nexthdr === NEXTHDR_AUTH || nexthdr === NEXTHDR_NONE || nexthdr === NEXTHDR_DEST
  );
}

export class Packet {
  /** Frame bytes (link header first when there is one); reused between packets. */
  readonly data: Uint8Array;
  /** `data` as words (copyFrame's word copy). */
  readonly data32: Int32Array;
  /** Frame length in bytes. */
  len = 0;
  /** Metadata record buffer, viewed as words and as bytes (for the interface names). */
  readonly metaBuf: ArrayBuffer;
  readonly meta: Int32Array;
  readonly metaBytes: Uint8Array;

  constructor(capacity = 65536 + 64) {
    this.data = new Uint8Array((capacity + 3) & ~3);
    this.data32 = new Int32Array(this.data.buffer);
    this.metaBuf = new ArrayBuffer(META_WORDS * 4);
    this.meta = new Int32Array(this.metaBuf);
    this.metaBytes = new Uint8Array(this.metaBuf);
    resetMeta(this);
  }

  /** Copies `bytes` into the frame buffer. */
  setFrame(bytes: ArrayLike<number>): this {
    if (bytes.length > this.data.length) throw new RangeError(`frame of ${bytes.length} bytes exceeds the buffer`);
    this.data.set(bytes);
    this.len = bytes.length;
    return this;
  }

  clone(): Packet {
    const p = new Packet(this.data.length);
    p.data.set(this.data);
    p.len = this.len;
    p.meta.set(this.meta);
    return p;
  }
}

/** The array copyFrame() reads words from (the reader's window, which changes once per chunk) and its buffer's words. */
let srcBytes: Uint8Array | null = null;
let srcWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
/** The array of the call before when it was not srcBytes: a second frame from it makes it srcBytes. */
let lastBytes: Uint8Array | null = null;

/**
 * Copies `len` bytes of `bytes` from `at` to the start of the packet's frame
 * buffer (the caller has checked that they fit). A frame that starts on a
 * word boundary of a buffer frames keep coming from is copied a word at a
 * time: up to 3 bytes past its end are copied too, from the same buffer,
 * into the frame buffer past pkt.len, which nothing reads. A frame of an
 * array of its own is copied bytewise: asking a small array for its buffer
 * makes V8 move it out of the heap, a microsecond a frame.
 */
export function copyFrame(pkt: Packet, bytes: Uint8Array, at: number, len: number): void {
  if (bytes !== srcBytes) {
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      if (len <= 256) {
        const d = pkt.data;
        for (let i = 0; i < len; i++) d[i] = bytes[at + i]!;
      } else pkt.data.set(bytes.subarray(at, at + len));
      return;
    }
    const buf = bytes.buffer;
    srcBytes = bytes;
    srcWords = new Int32Array(buf, 0, buf.byteLength >>> 2);
  }
  const from = bytes.byteOffset + at;
  const words = (len + 3) >>> 2;
  const s = srcWords;
  if ((from & 3) === 0 && len <= 1024 && (from >>> 2) + words <= s.length) {
    const d = pkt.data32;
    const w0 = from >>> 2;
    for (let i = 0; i < words; i++) d[i] = s[w0 + i]!;
  } else if (len <= 256) {
    const d = pkt.data;
    for (let i = 0; i < len; i++) d[i] = bytes[at + i]!;
  } else pkt.data.set(bytes.subarray(at, at + len));
}

/**
 * Sets skb->sk: SK_NONE, SK_KERNEL (a socket without a file) or SK_FILE with
 * the file's fsuid, fsgid and supplementary groups (at most SK_MAX_GROUPS).
 * `meta skuid`/`skgid` read the ids only with a file (nft_meta_get_eval_skugid).
 * `cgroup` (vm/cgroup.ts cgroupId, the root by default) and `classid` are the
 * socket's sk_cgrp_data: the node's own answers leave on sockets made at boot,
 * in the root cgroup with class id 0.
 */
export function setSocket(pkt: Packet, kind: number, uid = 0, gid = 0, groups: readonly number[] = [], cgroup = 0, classid = 0): void {
  const m = pkt.meta;
  if (groups.length > SK_MAX_GROUPS) throw new RangeError(`a socket carries at most ${SK_MAX_GROUPS} supplementary groups`);
  m[M_SK] = kind;
  m[M_SK_CGROUP] = cgroup | 0;
  m[M_SK_CLASSID] = classid | 0;
  m[M_SKUID] = kind === SK_FILE ? uid | 0 : -1;
  m[M_SKGID] = kind === SK_FILE ? gid | 0 : -1;
  const n = kind === SK_FILE ? groups.length : 0;
  m[M_SK_NGROUPS] = n;
  for (let i = 0; i < SK_MAX_GROUPS; i++) m[M_SK_GROUPS + i] = i < n ? groups[i]! | 0 : 0;
}

/** Resets the whole metadata record to "no devices, no socket, no conntrack". */
export function resetMeta(pkt: Packet): void {
  const m = pkt.meta;
  m.fill(0);
  m[M_HOOK] = -1;
  m[M_SKUID] = -1;
  m[M_SKGID] = -1;
  m[M_CT_DIR] = -1;
  m[M_CT_ID] = -1;
}

/** Sets the input (`dir` 'in') or output device: ifindex (0 = none), name, type and group. */
export function setDevice(pkt: Packet, dir: 'in' | 'out', ifindex: number, name = '', type = 1, group = 0): void {
  const m = pkt.meta;
  const into = dir === 'in';
  const at = into ? M_IIFNAME : M_OIFNAME;
  m[into ? M_IIF : M_OIF] = ifindex;
  m[into ? M_IIFTYPE : M_OIFTYPE] = ifindex ? type : 0;
  m[into ? M_IIFGROUP : M_OIFGROUP] = ifindex ? group : 0;
  const w = ifindex ? nameWords(name) : NO_NAME;
  m[at] = w[0]!;
  m[at + 1] = w[1]!;
  m[at + 2] = w[2]!;
  m[at + 3] = w[3]!;
}

/** A device as setDevice() writes it: ifindex, type, group and the name's words (devWords(), made once per device). */
export interface DevWords {
  readonly ifindex: number;
  readonly type: number;
  readonly group: number;
  readonly name: Int32Array;
}

/** The record setDeviceWords() writes for a device (ifindex 0: none). */
export function devWords(ifindex: number, name = '', type = 1, group = 0): DevWords {
  return ifindex ? { ifindex, type, group, name: nameWords(name) } : { ifindex: 0, type: 0, group: 0, name: NO_NAME };
}

/** setDevice() from a devWords() record: the input device (`into`) or the output device. */
export function setDeviceWords(pkt: Packet, into: boolean, d: DevWords): void {
  const m = pkt.meta;
  const w = d.name;
  const at = into ? M_IIFNAME : M_OIFNAME;
  m[into ? M_IIF : M_OIF] = d.ifindex;
  m[into ? M_IIFTYPE : M_OIFTYPE] = d.type;
  m[into ? M_IIFGROUP : M_OIFGROUP] = d.group;
  m[at] = w[0]!;
  m[at + 1] = w[1]!;
  m[at + 2] = w[2]!;
  m[at + 3] = w[3]!;
}

/** Writes interface name `name` ('' for none) as the 4 metadata words at `at` (M_PHYSINNAME, M_PHYSOUTNAME, M_BRIINAME, ...). */
export function setNameWords(pkt: Packet, at: number, name: string): void {
  const m = pkt.meta;
  const w = name ? nameWords(name) : NO_NAME;
  m[at] = w[0]!;
  m[at + 1] = w[1]!;
  m[at + 2] = w[2]!;
  m[at + 3] = w[3]!;
}

/** The interface name in the 4 metadata words at `at` (what setNameWords wrote; '' for none). Allocates: not for per-packet paths. */
export function nameAt(pkt: Packet, at: number): string {
  const b = new Uint8Array(pkt.meta.buffer, pkt.meta.byteOffset + at * 4, IFNAMSIZ);
  let s = '';
  for (let i = 0; i < IFNAMSIZ && b[i] !== 0; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/**
 * Sets the bridge of the input (`dir` 'in') or output port: the name of
 * br_port_get_rcu(dev)->br->dev that ebtables' --logical-in/--logical-out and
 * nft `meta ibrname`/`obrname` read; '' when the device is no bridge port.
 */
export function setBridgePort(pkt: Packet, dir: 'in' | 'out', bridge: string): void {
  setNameWords(pkt, dir === 'in' ? M_BRIINAME : M_BRIONAME, bridge);
}

const NO_NAME = new Int32Array(IFNAMSIZ / 4);
const nameCache = new Map<string, Int32Array>();
/** The last names asked for: a packet path meets the same two or three devices over and over. */
const recentNames: string[] = ['', '', '', ''];
const recentWords: Int32Array[] = [NO_NAME, NO_NAME, NO_NAME, NO_NAME];
let recentNext = 0;

/** An interface name as the 16 NUL-padded bytes of struct net_device.name, as the metadata's 4 words (cached: names are few). */
function nameWords(name: string): Int32Array {
  for (let i = 0; i < 4; i++) if (recentNames[i] === name) return recentWords[i]!;
  let w = nameCache.get(name);
  if (!w) {
    if (name.length >= IFNAMSIZ) throw new RangeError(`interface name "${name}" is too long`);
    const b = new Uint8Array(IFNAMSIZ);
    for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i) & 0xff;
    // The words as the metadata record's Int32Array sees those bytes (the platform's byte order).
    w = new Int32Array(b.buffer);
    if (nameCache.size < 4096) nameCache.set(name, w);
  }
  recentNames[recentNext] = name;
  recentWords[recentNext] = w;
  recentNext = (recentNext + 1) & 3;
  return w;
}

/**
 * Fills the packet metadata from the frame bytes: link/network/transport
 * offsets, skb->protocol, the L3 length, nfproto and, when the network header
 * validates, l4proto / thoff / fragoff with F_L4PROTO. Leaves device, mark,
 * socket, conntrack and hook fields alone. Never throws; allocates nothing.
 */
export function decodePacket(pkt: Packet, linktype: number): void {
  const d = pkt.data;
  const m = pkt.meta;
  const n = pkt.len;
  m[M_FLAGS] &= F_NFTRACE;
  m[M_L4PROTO] = 0;
  m[M_FRAGOFF] = 0;
  m[M_THOFF] = 0;
  m[M_MACOFF] = 0;
  m[M_PKTTYPE] = PACKET_HOST;
  let nh = 0;
  let proto = 0;
  if (linktype === LINKTYPE_ETHERNET) {
    if (n < ETH_HLEN) {
      // Not even a MAC header: nothing above it is known.
      noMacHeader(m, n);
      m[M_NFPROTO] = NFPROTO_UNSPEC;
      return;
    }
    m[M_FLAGS] |= F_MAC_HEADER;
    m[M_PKTTYPE] = ethPktType(d, undefined);
    nh = ETH_HLEN;
    proto = (d[12]! << 8) | d[13]!;
    // 802.1Q / 802.1ad tags are read inline, up to two (QinQ): the kernel
    // untags into skb->vlan_* and rebuilds the bytes for link-layer loads,
    // which amounts to reading the frame as it came off the wire.
    for (let tags = 0; tags < 2 && (proto === ETH_P_8021Q || proto === ETH_P_8021AD) && nh + VLAN_HLEN <= n; tags++) {
      proto = (d[nh + 2]! << 8) | d[nh + 3]!;
      nh += VLAN_HLEN;
    }
  } else if (linktype === LINKTYPE_IPV4) proto = ETH_P_IP;
  else if (linktype === LINKTYPE_IPV6) proto = ETH_P_IPV6;
  else if (n > 0) {
    const v = d[0]! >> 4;
    proto = v === 4 ? ETH_P_IP : v === 6 ? ETH_P_IPV6 : 0;
  }
  m[M_PROTOCOL] = proto;
  m[M_NHOFF] = nh;
  m[M_NFPROTO] = proto === ETH_P_IP ? NFPROTO_IPV4 : proto === ETH_P_IPV6 ? NFPROTO_IPV6 : NFPROTO_UNSPEC;
  let len = n - nh;
  if (proto === ETH_P_IP) len = decodeIPv4(pkt, nh, len);
  else if (proto === ETH_P_IPV6) len = decodeIPv6(pkt, nh, len);
  m[M_LEN] = len;
  m[M_END] = nh + len;
}

/**
 * The network and transport metadata decoded again from the bytes at
 * M_NHOFF (M_PROTOCOL the family): a datagram reassembled in place.
 */
export function decodeNetwork(pkt: Packet): void {
  const m = pkt.meta;
  m[M_FLAGS] &= ~F_L4PROTO;
  m[M_L4PROTO] = 0;
  m[M_FRAGOFF] = 0;
  m[M_THOFF] = 0;
  const nh = m[M_NHOFF]!;
  let len = pkt.len - nh;
  if (m[M_PROTOCOL] === ETH_P_IP) len = decodeIPv4(pkt, nh, len);
  else if (m[M_PROTOCOL] === ETH_P_IPV6) len = decodeIPv6(pkt, nh, len);
  m[M_LEN] = len;
  m[M_END] = nh + len;
}

/** __nft_set_pktinfo_ipv4_validate(); returns skb->len (trimmed to tot_len as ip_rcv does). */
function decodeIPv4(pkt: Packet, nh: number, avail: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  if (avail < 20) return avail;
  const ihl = d[nh]! & 0x0f;
  if (ihl < 5 || d[nh]! >> 4 !== 4) return avail;
  const totLen = (d[nh + 2]! << 8) | d[nh + 3]!;
  const thoff = ihl * 4;
  if (avail < totLen) return avail;
  if (totLen < thoff) return avail;
  m[M_FLAGS] |= F_L4PROTO;
  m[M_L4PROTO] = d[nh + 9]!;
  m[M_THOFF] = nh + thoff;
  m[M_FRAGOFF] = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff;
  return totLen;
}

/** __nft_set_pktinfo_ipv6_validate() + ipv6_find_hdr(target -1, IP6_FH_F_AUTH). */
function decodeIPv6(pkt: Packet, nh: number, avail: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  if (avail < 40) return avail;
  if (d[nh]! >> 4 !== 6) return avail;
  const pktLen = (d[nh + 4]! << 8) | d[nh + 5]!;
  if (pktLen + 40 > avail) return avail;
  const len = pktLen + 40;
  const end = nh + len;
  let start = nh + 40;
  let nexthdr = d[nh + 6]!;
  let fragoff = 0;
  m[M_FLAGS] &= ~F_XT_AH;
  for (;;) {
    if (!ipv6ExtHdr(nexthdr) || nexthdr === NEXTHDR_NONE) break;
    if (start + 2 > end) return len; // -EBADMSG
    if (nexthdr === NEXTHDR_ROUTING && start + 4 > end) return len; // struct ipv6_rt_hdr: -EBADMSG
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      if (start + 4 > end) return len;
      const fo = ((d[start + 2]! << 8) | d[start + 3]!) & ~0x7;
      if (fo !== 0) {
        const next = d[start]!;
        // Non-first fragment: the protocol is the fragment header's next
        // header; *offset is left alone, so thoff stays 0 (the network header).
        if (!ipv6ExtHdr(next) || next === NEXTHDR_NONE) {
          m[M_FLAGS] |= F_L4PROTO;
          m[M_L4PROTO] = next;
          m[M_THOFF] = nh;
          m[M_FRAGOFF] = fo;
          return len;
        }
        return len; // -ENOENT
      }
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) {
      xtViewPastAh(d, m, nh, start, end);
      break; // IP6_FH_F_AUTH with target < 0: stop at AH, the protocol is AH
    } else hdrlen = (d[start + 1]! + 1) << 3;
    nexthdr = d[start]!;
    start += hdrlen;
  }
  if (start - nh > 0xffff) return len;
  m[M_FLAGS] |= F_L4PROTO;
  m[M_L4PROTO] = nexthdr;
  m[M_THOFF] = start;
  m[M_FRAGOFF] = fragoff;
  return len;
}

/**
 * ipv6_find_hdr(target -1) without IP6_FH_F_AUTH, from the AH header at
 * `start` on, as ip6_packet_match() calls it: into M_XT_L4PROTO,
 * M_XT_THOFF and M_XT_FRAGOFF, with F_XT_AH. Nothing is set where that
 * walk fails (ip6_packet_match then finds no protocol: M_XT_L4PROTO -1).
 */
function xtViewPastAh(d: Uint8Array, m: Int32Array, nh: number, start: number, end: number): void {
  let nexthdr = NEXTHDR_AUTH;
  m[M_FLAGS] |= F_XT_AH;
  m[M_XT_L4PROTO] = -1;
  m[M_XT_THOFF] = start;
  m[M_XT_FRAGOFF] = 0;
  for (let n = 0; n < 64; n++) {
    if (!ipv6ExtHdr(nexthdr) || nexthdr === NEXTHDR_NONE) break;
    if (start + 2 > end) return;
    if (nexthdr === NEXTHDR_ROUTING && start + 4 > end) return;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      if (start + 4 > end) return;
      const fo = ((d[start + 2]! << 8) | d[start + 3]!) & ~0x7;
      if (fo !== 0) {
        const next = d[start]!;
        if (ipv6ExtHdr(next) && next !== NEXTHDR_NONE) return;
        m[M_XT_L4PROTO] = next;
        m[M_XT_THOFF] = nh;
        m[M_XT_FRAGOFF] = fo;
        return;
      }
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) hdrlen = (d[start + 1]! + 2) << 2;
    else hdrlen = (d[start + 1]! + 1) << 3;
    nexthdr = d[start]!;
    start += hdrlen;
  }
  m[M_XT_L4PROTO] = nexthdr;
  m[M_XT_THOFF] = start;
}

/** A frame shorter than a MAC header: no network header, no length. */
function noMacHeader(m: Int32Array, n: number): void {
  m[M_PROTOCOL] = 0;
  m[M_NHOFF] = n;
  m[M_LEN] = 0;
  m[M_END] = n;
}

/**
 * eth_type_trans()'s pkt_type from the destination: broadcast, multicast,
 * otherwise PACKET_OTHERHOST when it is not `devMac` (the receiving
 * device's address), PACKET_HOST when it is or no address is given.
 */
function ethPktType(d: Uint8Array, devMac: Uint8Array | undefined): number {
  if (d[0] === 0xff && d[1] === 0xff && d[2] === 0xff && d[3] === 0xff && d[4] === 0xff && d[5] === 0xff) return PACKET_BROADCAST;
  if (d[0]! & 1) return PACKET_MULTICAST;
  if (devMac && !(d[0] === devMac[0] && d[1] === devMac[1] && d[2] === devMac[2] && d[3] === devMac[3] && d[4] === devMac[4] && d[5] === devMac[5])) {
    return PACKET_OTHERHOST;
  }
  return PACKET_HOST;
}

/**
 * Fills the metadata of an Ethernet frame as the bridge hooks see it
 * (net/core/dev.c __netif_receive_skb_core(), net/ethernet/eth.c
 * eth_type_trans(), net/bridge/netfilter/nf_tables_bridge.c):
 *  - an outer 802.1Q/802.1ad tag is taken out of the data into
 *    skb->vlan_tci/vlan_proto (skb_vlan_untag()): M_VLAN_PROTO/M_VLAN_TCI;
 *    the bytes stay in the frame as on the wire (nft link-layer loads rebuild
 *    them, nft_payload_copy_vlan()), and the network header (skb->data)
 *    follows the tag, so eth_hdr(skb)->h_proto is the 2 bytes before it;
 *  - skb->len (M_LEN) is everything after that: a bridge never trims to the
 *    IP total length;
 *  - skb->protocol: the type field, or ETH_P_802_3/ETH_P_802_2 for a length;
 *  - pkt_type from the destination: broadcast, multicast, otherwise
 *    PACKET_HOST when it is `devMac` (the receiving device's address) or no
 *    address is given, PACKET_OTHERHOST when it is not;
 *  - an IPv4/IPv6 payload is validated as nft_do_chain_bridge() does
 *    (F_L4PROTO, thoff, fragoff) without changing M_LEN.
 * Leaves devices, bridge names, mark and hook alone. Never throws.
 */
export function decodeBridgeFrame(pkt: Packet, devMac?: Uint8Array): void {
  const d = pkt.data;
  const m = pkt.meta;
  const n = pkt.len;
  m[M_FLAGS] &= F_NFTRACE;
  m[M_NFPROTO] = NFPROTO_BRIDGE;
  m[M_L4PROTO] = 0;
  m[M_FRAGOFF] = 0;
  m[M_THOFF] = 0;
  m[M_MACOFF] = 0;
  m[M_VLAN_PROTO] = 0;
  m[M_VLAN_TCI] = 0;
  if (n < ETH_HLEN) {
    m[M_PKTTYPE] = PACKET_HOST;
    noMacHeader(m, n);
    return;
  }
  m[M_FLAGS] |= F_MAC_HEADER;
  m[M_PKTTYPE] = ethPktType(d, devMac);
  let nh = ETH_HLEN;
  let type = (d[12]! << 8) | d[13]!;
  if ((type === ETH_P_8021Q || type === ETH_P_8021AD) && n >= ETH_HLEN + VLAN_HLEN) {
    m[M_VLAN_PROTO] = type;
    m[M_VLAN_TCI] = (d[14]! << 8) | d[15]!;
    type = (d[16]! << 8) | d[17]!;
    nh += VLAN_HLEN;
  }
  let proto = type;
  if (type < ETH_P_802_3_MIN) proto = nh + 2 <= n && d[nh] === 0xff && d[nh + 1] === 0xff ? ETH_P_802_3 : ETH_P_802_2;
  m[M_PROTOCOL] = proto;
  m[M_NHOFF] = nh;
  m[M_LEN] = n - nh;
  m[M_END] = n;
  if (type === ETH_P_IP) decodeIPv4(pkt, nh, n - nh);
  else if (type === ETH_P_IPV6) decodeIPv6(pkt, nh, n - nh);
}
