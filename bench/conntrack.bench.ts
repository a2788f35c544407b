/**
 * Conntrack and NAT micro-benchmark (diagnosis, not a target check): ns per
 * packet of nf_conntrack_in + confirm + release on established connections,
 * and of the stateful path with NAT (conntrack, the NAT hook at PRE_ROUTING
 * and POST_ROUTING rewriting every packet of an SNATed connection, confirm,
 * release). Frames are replayed from one capture buffer into one reused
 * Packet (copy + decodePacket, reported as the baseline), connections in a
 * fixed shuffled order, both directions, batches of 1000 per measurement.
 * Run on an esbuild bundle, never under vitest:
 *
 *   npx esbuild bench/conntrack.bench.ts --bundle --platform=node --format=esm \
 *     --external:tinybench --outfile=dist/conntrack.bench.mjs && node dist/conntrack.bench.mjs
 */
import { Bench } from 'tinybench';
import { NfConntrack } from '../hooks/conntrack/core.js';
import { nfConntrackSysctl } from '../hooks/conntrack/sysctl.js';
import { NfNat, NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, nfNatRangeFrom } from '../hooks/nat/core.js';
import { nfNatFn } from '../hooks/nat/proto.js';
import { inetChecksum } from '../hooks/input/spec.js';
import { LINKTYPE_RAW, Packet, decodePacket } from '../vm/packet.js';
import { NF_ACCEPT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from '../core/netfilter.js';

const FLOWS = Number(process.env.FLOWS ?? 10_000);

/** A raw IPv4 packet with a transport header of `l4` bytes (checksums filled in). */
function ipv4(src: number, dst: number, proto: number, l4: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + l4.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[8] = 64;
  p[9] = proto;
  dv.setUint32(12, src);
  dv.setUint32(16, dst);
  dv.setUint16(10, inetChecksum(p, 0, 20));
  p.set(l4, 20);
  const pseudo = (~inetChecksum(p, 12, 20) & 0xffff) + proto + l4.length;
  dv.setUint16(20 + (proto === 6 ? 16 : 6), inetChecksum(p, 20, p.length, pseudo));
  return p;
}

function udp(sport: number, dport: number): Uint8Array {
  const u = new Uint8Array(8 + 32);
  const dv = new DataView(u.buffer);
  dv.setUint16(0, sport);
  dv.setUint16(2, dport);
  dv.setUint16(4, u.length);
  return u;
}

function tcp(sport: number, dport: number, flags: number, seq: number, ack: number): Uint8Array {
  const t = new Uint8Array(20);
  const dv = new DataView(t.buffer);
  dv.setUint16(0, sport);
  dv.setUint16(2, dport);
  dv.setUint32(4, seq);
  dv.setUint32(8, ack);
  t[12] = 5 << 4;
  t[13] = flags;
  dv.setUint16(14, 65535);
  return t;
}


/** A capture: the frames of FLOWS connections (both directions) back to back in a fixed shuffled order. */
interface Capture { bytes: Uint8Array; off: Int32Array; n: number }

const client = (i: number) => (0x0a000000 + 2 + (i >>> 8)) >>> 0; // 10.0.x.y
const server = (i: number) => (0x0a640000 + (i % 200)) >>> 0; // 10.100.0.x

function capture(frames: Uint8Array[]): Capture {
  const n = frames.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = 12345;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    const j = (s >>> 1) % (i + 1);
    const t = order[i]!; order[i] = order[j]!; order[j] = t;
  }
  const off = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) off[k + 1] = off[k]! + frames[order[k]!]!.length;
  const bytes = new Uint8Array(off[n]!);
  for (let k = 0; k < n; k++) bytes.set(frames[order[k]!]!, off[k]);
  return { bytes, off, n };
}

const udpPort = (i: number) => 10000 + (i & 0xff) * 200 + (i % 200);

function udpCapture(): Capture {
  const f: Uint8Array[] = [];
  for (let i = 0; i < FLOWS; i++) {
    f.push(ipv4(client(i), server(i), 17, udp(udpPort(i), 53)));
    f.push(ipv4(server(i), client(i), 17, udp(53, udpPort(i))));
  }
  return capture(f);
}

/** Established TCP: the handshakes run first; the capture is ACKs both ways (the same segments: the window checks pass). */
function tcpCapture(ct: NfConntrack): Capture {
  const f: Uint8Array[] = [];
  const SYN = 2, ACK = 16;
  const p = new Packet(2048);
  const run = (b: Uint8Array) => { p.setFrame(b); decodePacket(p, LINKTYPE_RAW); ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, 1e9); ct.nfConfirm(p, 1e9); ct.nfResetCt(p); };
  for (let i = 0; i < FLOWS; i++) {
    const c = client(i), s = server(i), sp = 20000 + (i % 40000), dp = 80;
    run(ipv4(c, s, 6, tcp(sp, dp, SYN, 1000, 0)));
    run(ipv4(s, c, 6, tcp(dp, sp, SYN | ACK, 5000, 1001)));
    run(ipv4(c, s, 6, tcp(sp, dp, ACK, 1001, 5001)));
    f.push(ipv4(c, s, 6, tcp(sp, dp, ACK, 1001, 5001)));
    f.push(ipv4(s, c, 6, tcp(dp, sp, ACK, 5001, 1001)));
  }
  return capture(f);
}

const BATCH = 1000;

/** Replays BATCH frames of the capture into one reused Packet (as `nfvm replay` does), running `path` on each. */
function replay(cap: Capture, path: ((p: Packet) => void) | undefined): () => void {
  const p = new Packet(2048);
  let k = 0;
  return () => {
    const d = p.data, b = cap.bytes, off = cap.off;
    for (let i = 0; i < BATCH; i++) {
      const a = off[k]!, e = off[k + 1]!;
      if (++k === cap.n) k = 0;
      for (let j = a; j < e; j++) d[j - a] = b[j]!;
      p.len = e - a;
      decodePacket(p, LINKTYPE_RAW);
      if (path) path(p);
    }
  };
}

function conntrackPath(ct: NfConntrack): (p: Packet) => void {
  return (p) => {
    if (ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, 2e9) === NF_ACCEPT) ct.nfConfirm(p, 2e9);
    ct.nfResetCt(p);
  };
}

/** SNAT on every connection (the first pass binds them): conntrack, the NAT hook at PRE_ROUTING and POST_ROUTING rewriting the packet, confirm, release. */
function natPath(ct: NfConntrack): (p: Packet) => void {
  const nat = new NfNat(ct);
  const r = nfNatRangeFrom({ flags: NF_NAT_RANGE_MAP_IPS, minAddr: Uint8Array.of(192, 0, 2, 1), maxAddr: Uint8Array.of(192, 0, 2, 1) });
  const lookup = (p: Packet) => nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
  return (p) => {
    if (ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, 2e9) === NF_ACCEPT &&
      nfNatFn(nat, p, NF_INET_PRE_ROUTING, 0) === NF_ACCEPT &&
      nfNatFn(nat, p, NF_INET_POST_ROUTING, 3, lookup) === NF_ACCEPT) ct.nfConfirm(p, 2e9);
    ct.nfResetCt(p);
  };
}

const table = (sys: Record<string, string> = {}) => new NfConntrack(nfConntrackSysctl(sys));
const bench = new Bench({ name: 'conntrack', time: 2000, warmupTime: 500 });
const udpCap = udpCapture();
bench.add('baseline: copy + decodePacket', replay(udpCap, undefined));
bench.add(`UDP, ${FLOWS} flows both ways: nf_conntrack_in (checksum verified) + confirm + release`, replay(udpCap, conntrackPath(table())));
{
  const ct = table();
  bench.add(`TCP established, ${FLOWS} flows both ways: window tracking, checksum verified`, replay(tcpCapture(ct), conntrackPath(ct)));
}
{
  const ct = table({ 'net.netfilter.nf_conntrack_checksum': '0' });
  bench.add(`TCP established, ${FLOWS} flows, nf_conntrack_checksum=0: lookup + window update`, replay(tcpCapture(ct), conntrackPath(ct)));
}
{
  const ct = table();
  bench.add(`UDP, ${FLOWS} SNATed flows both ways: conntrack + NAT rewrite at PRE/POST_ROUTING + confirm`, replay(udpCap, natPath(ct)));
}
await bench.run();
const per = (t: (typeof bench.tasks)[number]) => {
  const r = t.result;
  return r && r.state === 'completed' ? (r.latency.mean * 1e6) / BATCH : NaN;
};
const base = per(bench.tasks[0]!);
console.table(bench.tasks.map((t, i) => ({
  task: t.name,
  'ns/packet': +per(t).toFixed(0),
  'ns/packet over the baseline': i === 0 ? 0 : +(per(t) - base).toFixed(0),
  'Mpps': +(1000 / per(t)).toFixed(2),
})));
