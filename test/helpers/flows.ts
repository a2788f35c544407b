/**
 * Two-sided conversations through a node model, for the stateful tests.
 *
 * The node sits between clients on eth0 (10.0.0.0/24, and the remote
 * networks 203.0.113.0/24 and 198.51.100.0/24 behind 10.0.0.2) and servers
 * on eth1 (10.1.0.0/24, the default route via 10.1.0.2). A Conversation
 * sends Ethernet frames in on either side at increasing times through a
 * NodeModel (the "network": what the node forwards is what the other side
 * sees, NAT included), so a server answers the addresses and ports the node
 * gave the packet, as it would on a real wire. The frames are what a
 * capture of the node's two interfaces records, in order, as a pcapng with
 * an Interface Description Block per interface (eth0, eth1).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LINKTYPE_ETHERNET, Packet, decodePacket, resetMeta } from '../../vm/packet.js';
import { M_LEN, M_NHOFF } from '../../vm/layout.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { writePcapng } from '../../hooks/input/capture.js';
import type { Fate } from '../../hooks/path/fate.js';
import { ACK, FIN, PSH, RST, SYN, ipPacket } from './ctpkt.js';

/** The MACs of the wire: the clients' side (c0), the node's eth0 and eth1, the servers' side (s0). */
export const MAC = { c0: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02', eth1: '02:00:00:00:01:01', s0: '02:00:00:00:01:02' };

export type Side = 'c' | 's';

export interface FlowFrame {
  /** Seconds from the start of the conversation. */
  t: number;
  side: Side;
  /** The Ethernet frame. */
  data: Uint8Array;
}

const macBytes = (m: string) => m.split(':').map((x) => parseInt(x, 16));

/** An IP packet as the frame a side sends to the node. */
export function ether(side: Side, ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  f.set(macBytes(side === 'c' ? MAC.eth0 : MAC.eth1), 0);
  f.set(macBytes(side === 'c' ? MAC.c0 : MAC.s0), 6);
  if (ip[0]! >> 4 === 6) {
    f[12] = 0x86;
    f[13] = 0xdd;
  } else f[12] = 0x08;
  f.set(ip, 14);
  return f;
}

/**
 * What the node did with a frame: the IP packet it forwarded and the side it
 * left on, or nothing. `remapped`: the node moved the source port or ICMP id
 * (a NAT clash or --random-fully: the kernel's choice is a random draw, so
 * the peer does not answer such a packet).
 */
export interface Sent {
  fate: Fate;
  out: { side: Side; ip: Uint8Array; remapped: boolean } | undefined;
}

/** An IPv6 packet (else IPv4); the ones here carry no extension headers. */
const isV6 = (ip: Uint8Array): boolean => ip[0]! >> 4 === 6;
/** The transport header's offset and protocol of an IPv4 or IPv6 packet. */
const transport = (ip: Uint8Array): [number, number] => (isV6(ip) ? [40, ip[6]!] : [(ip[0]! & 15) * 4, ip[9]!]);

/** The source port (TCP/UDP/SCTP) or ICMP/ICMPv6 query id of a packet, -1 for others. */
function sourceKey(ip: Uint8Array): number {
  const [th, p] = transport(ip);
  if (p === 6 || p === 17 || p === 132) return (ip[th]! << 8) | ip[th + 1]!;
  if (p === 1 && (ip[th] === 8 || ip[th] === 0)) return (ip[th + 4]! << 8) | ip[th + 5]!;
  if (p === 58 && (ip[th] === 128 || ip[th] === 129)) return (ip[th + 4]! << 8) | ip[th + 5]!;
  return -1;
}

export class Conversation {
  readonly frames: FlowFrame[] = [];
  t = 1;
  private readonly pkt = new Packet(4096);
  constructor(readonly model: NodeModel) {}

  /** Sends an IP packet from a side `gap` seconds after the previous one. */
  send(side: Side, ip: Uint8Array, gap = 0.02): Sent {
    this.t += gap;
    const data = ether(side, ip);
    this.frames.push({ t: this.t, side, data });
    const pkt = this.pkt;
    resetMeta(pkt);
    pkt.setFrame(data);
    decodePacket(pkt, LINKTYPE_ETHERNET);
    this.model.captureCt(pkt);
    const r = this.model.receive(pkt, side === 'c' ? 'eth0' : 'eth1', { now: Math.round(this.t * 1e9) });
    const f = r.fate;
    if (f.kind !== 'forwarded') return { fate: f, out: undefined };
    const nh = pkt.meta[M_NHOFF]!;
    const out = pkt.data.slice(nh, nh + pkt.meta[M_LEN]!);
    return { fate: f, out: { side: f.dev === 'eth0' ? 'c' : 's', ip: out, remapped: sourceKey(out) !== sourceKey(ip) } };
  }

  /**
   * The frames as a pcapng: interface 0 eth0, 1 eth1 (each frame on the
   * interface it came in on), at their times in the conversation or at
   * `times` (one per frame: when the kernel received them).
   */
  pcapng(times?: readonly { tsSec: number; tsNsec: number }[]): Uint8Array {
    return writePcapng(this.frames.map((f, i) => ({
      data: f.data, ...(times?.[i] ?? { tsSec: Math.floor(f.t), tsNsec: Math.round((f.t % 1) * 1e6) * 1000 }), ifId: f.side === 'c' ? 0 : 1,
    })), { interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0', tsresol: 9 }, { linktype: LINKTYPE_ETHERNET, name: 'eth1', tsresol: 9 }] });
  }
}

const u16 = (d: Uint8Array, at: number) => (d[at]! << 8) | d[at + 1]!;
const addr4 = (d: Uint8Array, at: number) => `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`;
/** An IPv6 address written out in full (eight groups). */
const addr6 = (d: Uint8Array, at: number) => Array.from({ length: 8 }, (_, i) => u16(d, at + 2 * i).toString(16)).join(':');
/** The packet's source and destination addresses as text. */
const srcOf = (ip: Uint8Array) => (isV6(ip) ? addr6(ip, 8) : addr4(ip, 12));
const dstOf = (ip: Uint8Array) => (isV6(ip) ? addr6(ip, 24) : addr4(ip, 16));

/** The sequence number after a TCP segment (its data, SYN and FIN). */
function nextSeq(ip: Uint8Array): number {
  const [th] = transport(ip);
  const seq = ((ip[th + 4]! << 24) | (ip[th + 5]! << 16) | (ip[th + 6]! << 8) | ip[th + 7]!) >>> 0;
  const len = ip.length - th - (ip[th + 12]! >> 4) * 4;
  return (seq + len + (ip[th + 13]! & (SYN | FIN) ? 1 : 0)) >>> 0;
}

/** The endpoints of a forwarded packet as the receiving side sees them. */
function endpoints(ip: Uint8Array): { src: string; dst: string; sport: number; dport: number } {
  const [th] = transport(ip);
  return { src: srcOf(ip), dst: dstOf(ip), sport: u16(ip, th), dport: u16(ip, th + 2) };
}

/**
 * A TCP connection: the client sends from its side to (dst, dport); the
 * peer answers what the node delivered to it, from the side it left on.
 * When the node remapped the client's source port (Sent.remapped), or
 * dropped the first packet, the peer stays silent.
 */
export class Tcp {
  cseq: number;
  sseq: number;
  private peer?: { side: Side; a: string; p: number; ca: string; cp: number };
  private silent = false;
  /**
   * How far on the node moved each direction's sequence numbers (a NAT
   * helper resizing a command): each end acknowledges what it received,
   * not what the other sent.
   */
  private cShift = 0;
  private sShift = 0;
  /** What the node did with the client's last segment, and with the peer's. */
  last: Sent | undefined;
  slast: Sent | undefined;
  constructor(readonly c: Conversation, readonly side: Side, readonly ca: string, readonly cp: number, readonly da: string, readonly dp: number, isn = 1000) {
    this.cseq = isn;
    this.sseq = (isn * 7 + 5000) >>> 0;
  }
  private client(flags: number, payload: number | Uint8Array = 0, seq = this.cseq): Sent {
    const ack = (this.sseq + this.sShift) >>> 0;
    const s = this.c.send(this.side, ipPacket(this.ca, this.da, { proto: 'tcp', sport: this.cp, dport: this.dp, flags, seq, ack: flags & ACK ? ack : 0, payload }));
    if (s.out && !this.peer) {
      const e = endpoints(s.out.ip);
      this.peer = { side: s.out.side, a: e.dst, p: e.dport, ca: e.src, cp: e.sport };
      if (s.out.remapped) this.silent = true;
    }
    const len = typeof payload === 'number' ? payload : payload.length;
    if (seq === this.cseq) {
      this.cseq = (this.cseq + len + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
      if (s.out) this.cShift = (nextSeq(s.out.ip) - this.cseq) | 0;
    }
    this.last = s;
    return s;
  }
  private server(flags: number, payload: number | Uint8Array = 0): void {
    const v = this.peer;
    if (!v || this.silent) return;
    const ack = (this.cseq + this.cShift) >>> 0;
    const s = this.c.send(v.side, ipPacket(v.a, v.ca, { proto: 'tcp', sport: v.p, dport: v.cp, flags, seq: this.sseq, ack: flags & ACK ? ack : 0, payload }));
    const len = typeof payload === 'number' ? payload : payload.length;
    this.sseq = (this.sseq + len + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
    if (s.out) this.sShift = (nextSeq(s.out.ip) - this.sseq) | 0;
    this.slast = s;
  }
  syn() { this.client(SYN); return this; }
  synack() { this.server(SYN | ACK); return this; }
  ack() { this.client(ACK); return this; }
  data(n = 100) { this.client(ACK | PSH, n); return this; }
  sdata(n = 100) { this.server(ACK | PSH, n); return this; }
  sack() { this.server(ACK); return this; }
  fin() { this.client(FIN | ACK); return this; }
  sfin() { this.server(FIN | ACK); return this; }
  srst() { this.server(RST | ACK); return this; }
  rst() { this.client(RST | ACK); return this; }
  handshake() { return this.syn().synack().ack(); }
  /** The client sends `text` (an FTP command: the line with its CRLF); the next sequence number moves on even when the node drops it. */
  line(text: string) { this.client(ACK | PSH, new TextEncoder().encode(text)); return this; }
  /** The peer sends `text`. */
  sline(text: string) { this.server(ACK | PSH, new TextEncoder().encode(text)); return this; }
  /** A segment far outside the window (INVALID). */
  wild() { this.client(ACK, 10, (this.cseq + 50_000_000) >>> 0); return this; }
}

/** UDP from a side; the peer answers `answers` times (the same ports, swapped). Returns what the node forwarded first. */
export function udp(c: Conversation, side: Side, ca: string, cp: number, da: string, dp: number, answers = 1, size = 20): Sent {
  const s = c.send(side, ipPacket(ca, da, { proto: 'udp', sport: cp, dport: dp, payload: size }));
  if (s.out && !s.out.remapped) {
    const e = endpoints(s.out.ip);
    for (let i = 0; i < answers; i++) c.send(s.out.side, ipPacket(e.dst, e.src, { proto: 'udp', sport: e.dport, dport: e.sport, payload: size * 2 }));
  }
  return s;
}

/** An ICMP (ICMPv6 for IPv6 addresses) echo from a side, answered by its peer when `answered`. */
export function ping(c: Conversation, side: Side, ca: string, da: string, id: number, answered = true): Sent {
  const v6 = ca.includes(':');
  const proto = v6 ? 'icmpv6' : 'icmp';
  const s = c.send(side, ipPacket(ca, da, { proto, type: v6 ? 128 : 8, id }));
  if (s.out && answered && !s.out.remapped) c.send(s.out.side, ipPacket(dstOf(s.out.ip), srcOf(s.out.ip), { proto, type: v6 ? 129 : 0, id }));
  return s;
}

/**
 * The peer of a forwarded packet answers with an ICMP error (type/code) quoting it (not a remapped one);
 * for IPv6 an ICMPv6 error (default: port unreachable) quoting the whole packet.
 */
export function icmpError(c: Conversation, sent: Sent, type?: number, code?: number, from?: string): void {
  if (!sent.out || sent.out.remapped) return;
  const ip = sent.out.ip;
  const v6 = isV6(ip);
  c.send(sent.out.side, ipPacket(from ?? dstOf(ip), srcOf(ip), v6
    ? { proto: 'icmpv6', type: type ?? 1, code: code ?? 4, inner: ip.slice(0, Math.min(ip.length, 1232)) }
    : { proto: 'icmp', type: type ?? 3, code: code ?? 3, inner: ip.slice(0, 28) }));
}

/** The TCP payload of a forwarded segment as text. */
function payloadText(ip: Uint8Array): string {
  const [th] = transport(ip);
  return new TextDecoder('latin1').decode(ip.subarray(th + (ip[th + 12]! >> 4) * 4));
}

/**
 * An FTP session from `client` to `server` port 21: a login, an active
 * transfer (PORT, EPRT for IPv6) and a passive one (PASV, EPSV for IPv6).
 * Each data connection goes where the command or reply, as the other end
 * received it, says (a NAT helper may have rewritten it).
 */
export function ftpFlows(c: Conversation, client: string, server: string, base: number): void {
  const v6 = client.includes(':');
  const a = new Tcp(c, 'c', client, base, server, 21).handshake().sline('220 ready\r\n').ack();
  a.line('USER anonymous\r\n').sline('331 Password required\r\n').ack();
  const port = base + 1;
  a.line(v6 ? `EPRT |2|${client}|${port}|\r\n` : `PORT ${client.replace(/\./g, ',')},${port >> 8},${port & 255}\r\n`);
  const cmd = a.last?.out ? payloadText(a.last.out.ip) : '';
  a.sline('200 ok\r\n').ack();
  const active = /PORT (\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(cmd) ?? /EPRT \|\d\|([^|]+)\|(\d+)\|/.exec(cmd);
  if (active && a.last?.out) {
    const to = active.length === 7 ? active.slice(1, 5).join('.') : active[1]!;
    const p = active.length === 7 ? (Number(active[5]) << 8) | Number(active[6]) : Number(active[2]);
    new Tcp(c, 's', endpoints(a.last.out.ip).dst, 20, to, p).handshake().data(120).fin().sack().sfin().ack();
  }
  a.line(v6 ? 'EPSV\r\n' : 'PASV\r\n');
  const sport = base + 2;
  a.sline(v6 ? `229 Entering Extended Passive Mode (|||${sport}|)\r\n` : `227 Entering Passive Mode (${(a.last?.out ? endpoints(a.last.out.ip).dst : server).replace(/\./g, ',')},${sport >> 8},${sport & 255}).\r\n`);
  const reply = a.slast?.out ? payloadText(a.slast.out.ip) : '';
  a.ack();
  const passive = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply) ?? /\(\|\|\|(\d+)\|\)/.exec(reply);
  if (passive) {
    const to = passive.length === 7 ? passive.slice(1, 5).join('.') : server;
    const p = passive.length === 7 ? (Number(passive[5]) << 8) | Number(passive[6]) : Number(passive[1]);
    new Tcp(c, 'c', client, base + 3, to, p).handshake().sdata(150).ack().fin().sack().sfin().ack();
  }
  a.line('QUIT\r\n').sline('221 Goodbye\r\n').ack().fin().sack().sfin().ack();
}

/**
 * A TFTP read from `client` to `server` port 69: the request, then the
 * server's transfer from a port of its own (`dataPort`) to where the
 * request came from as the server saw it, each block acknowledged by the
 * client to where the block came from as it saw it; two blocks, the last
 * short. Nothing follows a request the node did not forward.
 */
export function tftpFlows(c: Conversation, client: string, server: string, cport: number, dataPort = 50000): void {
  const rrq = Uint8Array.from([0, 1, ...new TextEncoder().encode('boot.img'), 0, ...new TextEncoder().encode('octet'), 0]);
  const s = c.send('c', ipPacket(client, server, { proto: 'udp', sport: cport, dport: 69, payload: rrq }));
  if (!s.out || s.out.remapped) return;
  const e = endpoints(s.out.ip);
  for (let block = 1; block <= 2; block++) {
    const data = new Uint8Array(4 + (block === 1 ? 512 : 100));
    data[1] = 3;
    data[3] = block;
    const d = c.send(s.out.side, ipPacket(e.dst, e.src, { proto: 'udp', sport: dataPort, dport: e.sport, payload: data }));
    if (!d.out) return;
    const back = endpoints(d.out.ip);
    c.send('c', ipPacket(client, back.src, { proto: 'udp', sport: cport, dport: back.sport, payload: Uint8Array.from([0, 4, 0, block]) }));
  }
}

/** The clients on eth0 the conversations use (the kernel test gives each a neighbour entry). */
export const CLIENTS = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.9', '10.0.0.130', '10.0.0.131'];

/** A mixed conversation from `clients`: TCP to completion, reset, half-open and out of window; UDP both ways; echo; errors. */
export function mixedFlows(c: Conversation, dsts: readonly string[], base = 41000, clients: readonly string[] = CLIENTS): void {
  let p = base;
  for (const [i, d] of dsts.entries()) {
    const cl = clients[i % clients.length]!;
    new Tcp(c, 'c', cl, p++, d, 80).handshake().data().sdata(300).ack().fin().sack().sfin().ack();
    new Tcp(c, 'c', cl, p++, d, 443).handshake().data(20).srst();
    new Tcp(c, 'c', cl, p++, d, 22).syn();
    new Tcp(c, 'c', cl, p++, d, 80).handshake().wild().data(10).sack();
    udp(c, 'c', cl, p++, d, 53, 2);
    udp(c, 'c', cl, p++, d, 123, 0);
    ping(c, 'c', cl, d, p++);
    icmpError(c, udp(c, 'c', cl, p++, d, 161, 0));
  }
  // The same 5-tuple again after its connection closed.
  new Tcp(c, 'c', clients[0]!, base, dsts[0]!, 80, 9000).handshake().data().fin().sack().sfin().ack();
}

/**
 * The node of the stateful tests as snapshot files: test/path/fixtures/node
 * (eth0 10.0.0.1/24 + 192.168.50.1/32, eth1 10.1.0.1/24, default via
 * 10.1.0.2) with routes to 203.0.113.0/24 and 198.51.100.0/24 via 10.0.0.2,
 * forwarding on, and the given ruleset.
 */
export function statefulNodeFiles(rules: string, sysctl = ''): Map<string, string> {
  const dir = join(import.meta.dirname, '../path/fixtures/node');
  const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
  const routes = JSON.parse(files.get('ip-route.json')!) as object[];
  routes.push({ dst: '203.0.113.0/24', gateway: '10.0.0.2', dev: 'eth0', flags: [] }, { dst: '198.51.100.0/24', gateway: '10.0.0.2', dev: 'eth0', flags: [] });
  files.set('ip-route.json', JSON.stringify(routes));
  files.set('iptables-save.txt', rules);
  files.set('sysctl.txt', `net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.default.rp_filter = 0\n${sysctl}`);
  return files;
}

/** A model of that node. */
export function statefulModel(rules: string, engine: EngineKind = 'vm', sysctl = '', seed = 1): NodeModel {
  return buildNodeModel(buildNode('', statefulNodeFiles(rules, sysctl)), { engine, seed });
}
