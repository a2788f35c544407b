/**
 * The frames a capture saw leave the node (pcapng outbound, SLL/SLL2
 * PACKET_OUTGOING) against the packets the model emitted (forwarded
 * packets, the answers of its stack: NodeModel.recordEmitted): for each
 * outgoing frame, the packet the model sent out of the same device with
 * the same flow (addresses, protocol, ports or ICMP type, code and
 * identifier or quoted flow), the oldest not yet matched, and whether the
 * two are identical from the IP header on, or which field differs first.
 *
 * Fields the kernel fills in its own way (Answer.kernelFields: the IP ID
 * of a packet sent without DF, with the header checksum that covers it;
 * the automatic IPv6 flow label; a TCP checksum left to the device, which
 * a capture on the node sees as the pseudo-header sum) are set apart: a
 * frame that differs only there is "identical but for fields the kernel
 * fills itself".
 */
import type { Emitted } from './path/fate.js';
import { inetChecksum, pseudoHeaderSum } from './input/spec.js';

export type OutgoingVerdict = 'identical' | 'kernel-fields' | 'differs' | 'not-emitted';

export interface OutgoingMatch {
  /** Frame number in the capture, from 1. */
  frame: number;
  iface: string;
  verdict: OutgoingVerdict;
  /** What the model's packet was (forwarded, tcp-reset, icmp-port-unreachable, ...), '' when none. */
  kind: string;
  /** The first field that differs ('differs'), or the fields the kernel fills itself that differ ('kernel-fields'). */
  fields: string[];
}

/** Pending emitted packets kept per device at most (the oldest go first). */
const MAX_PENDING = 65536;

/** The flow of an IP packet, for pairing a captured frame with an emitted packet. */
export function flowKey(p: Uint8Array): string {
  if (p.length < 1) return '';
  const v = p[0]! >> 4;
  const hex = (from: number, to: number) => Buffer.from(p.subarray(from, Math.min(to, p.length))).toString('hex');
  if (v === 4) {
    if (p.length < 20) return `4 short ${hex(0, 20)}`;
    const ihl = (p[0]! & 0x0f) * 4;
    const proto = p[9]!;
    const frag = ((p[6]! << 8) | p[7]!) & 0x1fff;
    return `4 ${proto} ${hex(12, 20)} ${frag ? `frag ${hex(4, 6)}` : l4Key(p, ihl, proto, false)}`;
  }
  if (v === 6) {
    if (p.length < 40) return `6 short ${hex(0, 40)}`;
    return `6 ${p[6]} ${hex(8, 40)} ${l4Key(p, 40, p[6]!, true)}`;
  }
  return `? ${hex(0, 20)}`;
}

function l4Key(p: Uint8Array, th: number, proto: number, v6: boolean): string {
  const hex = (from: number, to: number) => Buffer.from(p.subarray(from, Math.min(to, p.length))).toString('hex');
  if (proto === 6 || proto === 17 || proto === 132) return hex(th, th + 4);
  const icmp = v6 ? proto === 58 : proto === 1;
  if (!icmp) return '';
  const type = p[th] ?? 0;
  const echo = v6 ? type === 128 || type === 129 : type === 0 || type === 8;
  // An echo: its identifier and sequence; an error: the quoted packet's addresses and ports.
  if (echo) return `${hex(th, th + 2)} ${hex(th + 4, th + 8)}`;
  const q = th + 8;
  if (v6) return `${hex(th, th + 2)} ${hex(q + 8, q + 40)} ${hex(q + 40, q + 44)}`;
  const qihl = ((p[q] ?? 0) & 0x0f) * 4;
  return `${hex(th, th + 2)} ${hex(q + 9, q + 10)} ${hex(q + 12, q + 20)} ${hex(q + qihl, q + qihl + 4)}`;
}

const IPV4_FIELDS: ReadonlyArray<[number, number, string]> = [
  [0, 1, 'ip.version/ihl'], [1, 2, 'ip.tos'], [2, 4, 'ip.tot_len'], [4, 6, 'ip.id'], [6, 8, 'ip.frag_off'], [8, 9, 'ip.ttl'],
  [9, 10, 'ip.protocol'], [10, 12, 'ip.check'], [12, 16, 'ip.saddr'], [16, 20, 'ip.daddr'],
];
const IPV6_FIELDS: ReadonlyArray<[number, number, string]> = [
  [4, 6, 'ip6.payload_len'], [6, 7, 'ip6.nexthdr'], [7, 8, 'ip6.hop_limit'], [8, 24, 'ip6.saddr'], [24, 40, 'ip6.daddr'],
];
const TCP_FIELDS: ReadonlyArray<[number, number, string]> = [
  [0, 2, 'tcp.source'], [2, 4, 'tcp.dest'], [4, 8, 'tcp.seq'], [8, 12, 'tcp.ack_seq'], [12, 13, 'tcp.doff'], [13, 14, 'tcp.flags'],
  [14, 16, 'tcp.window'], [16, 18, 'tcp.check'], [18, 20, 'tcp.urg_ptr'],
];
const UDP_FIELDS: ReadonlyArray<[number, number, string]> = [[0, 2, 'udp.source'], [2, 4, 'udp.dest'], [4, 6, 'udp.len'], [6, 8, 'udp.check']];
const ICMP_FIELDS: ReadonlyArray<[number, number, string]> = [[0, 1, 'type'], [1, 2, 'code'], [2, 4, 'checksum'], [4, 8, 'rest of header']];

/**
 * ~tcp_v4_check(len, saddr, daddr, 0) / ~tcp_v6_check(): the pseudo-header
 * sum a CHECKSUM_PARTIAL TCP packet carries for the device to complete
 * (nf_send_reset, tcp_v6_send_response). NAT keeps it so: it adds an address
 * change to it and leaves a port change to the device (inet_proto_csum_replace*).
 */
function partialSum(p: Uint8Array, th: number): number {
  const v6 = p[0]! >> 4 === 6;
  const pseudo = v6 ? pseudoHeaderSum(p.subarray(8, 24), p.subarray(24, 40), 6, p.length - th) : pseudoHeaderSum(p.subarray(12, 16), p.subarray(16, 20), 6, p.length - th);
  return ~inetChecksum(p, 0, 0, pseudo) & 0xffff;
}

function differs(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return true;
  return false;
}

/**
 * The fields in which packet `got` (captured) differs from `want` (the
 * model's), in header order; `random` names the randomised fields of
 * `want`, which go to `kernelDiffs` instead.
 */
export function compareIp(got: Uint8Array, want: Uint8Array, kernelFields: readonly string[]): { diffs: string[]; kernelDiffs: string[] } {
  const diffs: string[] = [];
  const kernelDiffs: string[] = [];
  const put = (name: string, rnd: boolean) => (rnd ? kernelDiffs : diffs).push(name);
  const v = want[0]! >> 4;
  if (got.length !== want.length) diffs.push(`length (${got.length} bytes, nfvm ${want.length})`);
  const n = Math.min(got.length, want.length);
  let th: number;
  let proto: number;
  if (v === 4 && n >= 20) {
    const randomId = kernelFields.includes('ip.id');
    for (const [f, t, name] of IPV4_FIELDS) {
      if (!differs(got, want, f, t)) continue;
      // The header checksum covers the ID: a random ID makes it differ too.
      put(name, randomId && (name === 'ip.id' || (name === 'ip.check' && differs(got, want, 4, 6))));
    }
    th = (want[0]! & 0x0f) * 4;
    if (th > 20 && differs(got, want, 20, Math.min(th, n))) diffs.push('ip.options');
    proto = want[9]!;
  } else if (v === 6 && n >= 40) {
    const tc = (x: Uint8Array) => ((x[0]! & 0x0f) << 4) | (x[1]! >> 4);
    const fl = (x: Uint8Array) => ((x[1]! & 0x0f) << 16) | (x[2]! << 8) | x[3]!;
    if (got[0]! >> 4 !== 6) diffs.push('ip6.version');
    if (tc(got) !== tc(want)) diffs.push('ip6.tclass');
    if (fl(got) !== fl(want)) put('ip6.flowlabel', kernelFields.includes('ip6.flowlabel'));
    for (const [f, t, name] of IPV6_FIELDS) if (differs(got, want, f, t)) diffs.push(name);
    th = 40;
    proto = want[6]!;
  } else {
    if (differs(got, want, 0, n)) diffs.push('ip header');
    return { diffs, kernelDiffs };
  }
  const l4 = proto === 6 ? TCP_FIELDS : proto === 17 ? UDP_FIELDS : proto === 1 ? ICMP_FIELDS.map(([f, t, x]): [number, number, string] => [f, t, `icmp.${x}`])
    : proto === 58 ? ICMP_FIELDS.map(([f, t, x]): [number, number, string] => [f, t, `icmp6.${x}`]) : [];
  // an ICMP timestamp reply's receive and transmit times: the kernel's clock (the checksum covers them)
  const times = proto === 1 && kernelFields.includes('icmp.timestamps') && th + 20 <= n && differs(got, want, th + 12, th + 20);
  if (times) kernelDiffs.push('icmp.timestamps');
  let end = th;
  for (const [f, t, name] of l4) {
    end = th + t;
    if (th + t > n || !differs(got, want, th + f, th + t)) continue;
    if (times && name === 'icmp.checksum') {
      kernelDiffs.push(name);
      continue;
    }
    // CHECKSUM_PARTIAL: what the capture shows is the folded pseudo-header sum the kernel stored.
    if (name === 'tcp.check' && kernelFields.includes('tcp.check') && ((got[th + 16]! << 8) | got[th + 17]!) === partialSum(want, th)) {
      put('tcp.check', true);
      continue;
    }
    diffs.push(name);
  }
  for (let i = end; i < n; i++) {
    if (times && i >= th + 12 && i < th + 20) continue;
    if (got[i] !== want[i]) {
      const what = proto === 1 || proto === 58 ? 'quoted packet' : 'payload';
      diffs.push(`${what} byte ${i - end}`);
      break;
    }
  }
  return { diffs, kernelDiffs };
}

export class OutgoingMatcher {
  private readonly pending = new Map<string, { e: Emitted; key: string }[]>();
  /** Emitted packets dropped from the pending lists (over MAX_PENDING on a device). */
  overflow = 0;

  /** Records packets the model emitted. */
  add(emitted: readonly Emitted[]): void {
    for (const e of emitted) {
      let l = this.pending.get(e.dev);
      if (!l) this.pending.set(e.dev, (l = []));
      l.push({ e, key: flowKey(e.packet) });
      if (l.length > MAX_PENDING) {
        l.shift();
        this.overflow++;
      }
    }
  }

  /** Pairs the outgoing frame `frame` (its IP bytes, leaving `iface`) with an emitted packet. */
  match(frame: number, iface: string, got: Uint8Array): OutgoingMatch {
    const l = this.pending.get(iface);
    const key = flowKey(got);
    const i = l ? l.findIndex((x) => x.key === key) : -1;
    if (!l || i < 0) return { frame, iface, verdict: 'not-emitted', kind: '', fields: [] };
    const e = l.splice(i, 1)[0]!.e;
    const { diffs, kernelDiffs } = compareIp(got, e.packet, e.kernelFields);
    if (diffs.length) return { frame, iface, verdict: 'differs', kind: e.kind, fields: diffs.slice(0, 1) };
    if (kernelDiffs.length) return { frame, iface, verdict: 'kernel-fields', kind: e.kind, fields: kernelDiffs };
    return { frame, iface, verdict: 'identical', kind: e.kind, fields: [] };
  }

  /** Emitted packets no outgoing frame was paired with. */
  unmatched(): number {
    let n = 0;
    for (const l of this.pending.values()) n += l.length;
    return n;
  }

  /** The emitted packets no outgoing frame was paired with: device, kind and flow, for a report. */
  unmatchedList(): string[] {
    return [...this.pending].flatMap(([dev, l]) => l.map((x) => `${dev} ${x.e.kind} ${x.key}`));
  }
}

/** Bytes of emitted packets kept per device before its first outgoing frame (OutgoingLookback). */
export const LOOKBACK_BYTES = 8 << 20;

/**
 * The emitted packets of one device, oldest first, in one byte ring: at
 * most MAX_PENDING packets and LOOKBACK_BYTES bytes, the oldest going
 * first; nothing allocated per packet.
 */
class Lookback {
  private readonly buf = new Uint8Array(LOOKBACK_BYTES);
  private readonly start = new Int32Array(MAX_PENDING);
  private readonly len = new Int32Array(MAX_PENDING);
  private readonly kind: string[] = new Array<string>(MAX_PENDING).fill('');
  private readonly fields: (readonly string[])[] = new Array<readonly string[]>(MAX_PENDING).fill([]);
  private head = 0;
  private count = 0;
  /** Packets let go (the oldest, over MAX_PENDING packets or LOOKBACK_BYTES bytes). */
  dropped = 0;

  push(kind: string, bytes: Uint8Array, from: number, to: number, kernelFields: readonly string[]): void {
    const n = to - from;
    if (n > this.buf.length) {
      this.dropped++;
      return;
    }
    if (this.count === MAX_PENDING) this.drop();
    let pos = 0;
    if (this.count) {
      const last = (this.head + this.count - 1) % MAX_PENDING;
      pos = this.start[last]! + this.len[last]!;
      if (pos + n > this.buf.length) pos = 0;
    }
    while (this.count) {
      const s = this.start[this.head]!;
      if (s + this.len[this.head]! <= pos || s >= pos + n) break;
      this.drop();
    }
    const i = (this.head + this.count) % MAX_PENDING;
    this.start[i] = pos;
    this.len[i] = n;
    this.kind[i] = kind;
    this.fields[i] = kernelFields;
    const buf = this.buf;
    if (n <= 256) for (let k = 0; k < n; k++) buf[pos + k] = bytes[from + k]!;
    else buf.set(bytes.subarray(from, to), pos);
    this.count++;
  }

  private drop(): void {
    this.head = (this.head + 1) % MAX_PENDING;
    this.count--;
    this.dropped++;
  }

  /** The packets kept, oldest first, as Emitted of `dev`. */
  entries(dev: string): Emitted[] {
    const out: Emitted[] = [];
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % MAX_PENDING;
      out.push({ dev, kind: this.kind[i]!, packet: this.buf.slice(this.start[i]!, this.start[i]! + this.len[i]!), kernelFields: this.fields[i]! });
    }
    return out;
  }
}

/**
 * OutgoingMatcher for a capture read once (a pipe cannot be read twice):
 * the devices the capture saw frames leave by are not known in advance, so
 * what the model sends out of a device is kept in a lookback ring
 * (MAX_PENDING packets, LOOKBACK_BYTES bytes) until the first outgoing
 * frame on that device, then handed to the matcher as a first pass over the
 * capture would have recorded it: the same pairs and counts, unless more
 * than LOOKBACK_BYTES of packets were waiting on the device. Devices no
 * outgoing frame was seen on are not counted. The model's emitSink.
 */
export class OutgoingLookback {
  readonly matcher = new OutgoingMatcher();
  private readonly rings = new Map<string, Lookback>();
  private readonly active = new Set<string>();

  emitted(dev: string, kind: string, bytes: Uint8Array, from: number, to: number, kernelFields: readonly string[]): void {
    if (this.active.has(dev)) {
      this.matcher.add([{ dev, kind, packet: bytes.slice(from, to), kernelFields }]);
      return;
    }
    let r = this.rings.get(dev);
    if (!r) this.rings.set(dev, (r = new Lookback()));
    r.push(kind, bytes, from, to, kernelFields);
  }

  /** The capture saw a frame leave by `iface`: what the node sent out of it is paired from now on (and was, as far back as the lookback holds). */
  activate(iface: string): void {
    if (this.active.has(iface)) return;
    this.active.add(iface);
    const r = this.rings.get(iface);
    if (r) {
      this.matcher.overflow += r.dropped;
      this.matcher.add(r.entries(iface));
      this.rings.delete(iface);
    }
  }

  /** Pairs the outgoing frame `frame` (its IP bytes, leaving `iface`) with an emitted packet. */
  match(frame: number, iface: string, got: Uint8Array): OutgoingMatch {
    this.activate(iface);
    return this.matcher.match(frame, iface, got);
  }

  /** Whether an outgoing frame was seen. */
  get seen(): boolean {
    return this.active.size > 0;
  }

  /** Packets sent out of a device the capture saw outgoing frames on, with no frame to pair. */
  notCaptured(): number {
    return this.matcher.unmatched() + this.matcher.overflow;
  }
}
