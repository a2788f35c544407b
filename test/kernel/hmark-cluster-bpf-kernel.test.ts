/**
 * HMARK, cluster and bpf against the kernel (Linux 6.18), under both backends
 * (x_tables, and nft_compat as iptables-nft loads them): seeded rulesets of
 * mangle PREROUTING HMARK rules (packet tuples with prefixes, port and SPI
 * masks and values, and --hmark-tuple ct) each followed by count-only
 * `-m mark` rules for every bucket, and cluster rules (seeds, node masks,
 * inverted) followed by a `-m pkttype` rule that sees the PACKET_MULTICAST
 * to PACKET_HOST rewrite, are loaded into a node namespace; generated IPv4
 * frames (test/helpers/header-gen.ts, from varied sources to varied
 * destinations, some to a multicast link address, and ICMP errors quoting a
 * UDP or TCP header) are injected with tcpreplay; every rule's counters of
 * `iptables-*-save -c` must equal what the node model gives on the node's
 * snapshot, with both engines. The same for the bpf match: seeded
 * generated classic programs (test/helpers/bpf-gen.ts: absolute and
 * indexed loads, SKF_NET_OFF and SKF_LL_OFF loads, loads past the end,
 * every ALU operation, division by a zero X, forward jumps) as count-only
 * raw PREROUTING rules over the same kind of frames.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI). NFVM_PROPERTY_SCALE scales the number
 * of rulesets (base 4), FC_SEED replays a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { type CounterTally, kernelSkip, preroutingCounters, senderNodeTopology } from '../helpers/kernel.js';
import { hdrPacket } from '../helpers/header-gen.js';
import { bpfProgram } from '../helpers/bpf-gen.js';
import { runs, scaled } from '../helpers/runs.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('HMARK, cluster and bpf against the kernel', TOOLS);
const SEED = Number(process.env.FC_SEED ?? 20261204);
const CASES = runs(4);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2], mcast: [1, 0, 0x5e, 0, 0, 9] };

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** An HMARK rule and the count-only rules of its buckets. */
const HMARK = fc.record({
  tuple: pick(['src,dst,sport,dport,proto', 'src,dst', 'sport,dport', 'src,spi,proto', 'ct', 'ct,src,dst', 'dst,dport,proto']),
  extra: pick(['', ' --hmark-src-prefix 16', ' --hmark-dst-prefix 8 --hmark-sport-mask 0xff00', ' --hmark-dport 0x5 --hmark-proto-mask 0x0f', ' --hmark-spi 0x10002']),
  rnd: pick(['0x0', '0x1', '0xdeadbeef', '0x7fffffff']),
  mod: pick([2, 3, 5]),
  offset: pick([0, 1000]),
}).filter(({ tuple, extra }) => !(tuple.includes('spi') && /port-mask/.test(extra)) && !(tuple.includes('dport') && /dport-mask|sport-mask/.test(extra)) && !(tuple.includes('src') && /src-prefix/.test(extra)) &&
  !(tuple.includes('dst') && /dst-prefix/.test(extra)) && !(tuple.includes('proto') && /proto-mask/.test(extra)) && !(tuple.includes('sport') && /sport-mask/.test(extra)) && !(tuple.includes('spi') && /hmark-spi /.test(extra)))
  .map(({ tuple, extra, rnd, mod, offset }) => [
    `-j HMARK --hmark-tuple ${tuple}${extra} --hmark-rnd ${rnd} --hmark-mod ${mod}${offset ? ` --hmark-offset ${offset}` : ''}`,
    ...Array.from({ length: mod }, (_, k) => `-m mark --mark ${offset + k}`),
  ]);

const CLUSTER = fc.record({ total: fc.integer({ min: 1, max: 8 }), node: fc.integer({ min: 1, max: 8 }), inv: fc.boolean(), seed: pick(['0x0', '0xdeadbeef', '0x12345']) })
  .map(({ total, node, inv, seed }) => `-m cluster --cluster-total-nodes ${total} ${inv ? '! ' : ''}--cluster-local-node ${Math.min(node, total)} --cluster-hash-seed ${seed}`);

const SOURCES = [[10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 7, 9], [192, 168, 1, 20], [172, 16, 5, 5]];
const DESTS = [[10, 0, 0, 1], [10, 0, 0, 77], [10, 200, 1, 1], [198, 51, 100, 7]];

const FRAME = fc.record({ bytes: hdrPacket('ip', [0]).map((p) => p.bytes), src: pick(SOURCES), dst: pick(DESTS), mcast: fc.boolean(), err: fc.option(pick([3, 11, 5, 8]), { freq: 5 }) });

function csum(b: number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ipv4Header(ip: number[]): number[] {
  ip[10] = 0;
  ip[11] = 0;
  const c = csum(ip, 0, (ip[0]! & 15) * 4);
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  return ip;
}

/**
 * The generated IPv4 packet as an Ethernet frame from the sender, with the
 * addresses chosen and a valid header checksum; as an ICMP error of type
 * `err` quoting it when `err` is set.
 */
function toFrame(f: { bytes: readonly number[]; src: number[]; dst: number[]; mcast: boolean; err: number | null }): Uint8Array {
  let ip = (f.bytes[0]! >> 4 === 4 ? f.bytes : f.bytes.slice(14)).slice();
  ip.splice(12, 8, ...f.src, ...f.dst);
  ip = ipv4Header(ip);
  if (f.err !== null) {
    const quoted = ip.slice(0, 28);
    const icmp = [f.err, 0, 0, 0, 0, 0, 0, 0, ...quoted];
    const c = csum(icmp, 0, icmp.length);
    icmp[2] = c >> 8;
    icmp[3] = c & 0xff;
    const len = 20 + icmp.length;
    ip = ipv4Header([0x45, 0, len >> 8, len & 255, 0, 9, 0, 0, 64, 1, 0, 0, ...f.dst, ...f.src, ...icmp]);
  }
  return Uint8Array.from([...(f.mcast ? MAC.mcast : MAC.node), ...MAC.sender, 8, 0, ...ip]);
}

const BPF_CASE = fc.record({
  progs: fc.array(bpfProgram, { minLength: 8, maxLength: 14 }),
  frames: fc.array(FRAME, { minLength: 30, maxLength: 40 }),
});

const CASE = fc.record({
  hmark: fc.array(HMARK, { minLength: 1, maxLength: 3 }),
  cluster: fc.array(CLUSTER, { minLength: 1, maxLength: 3 }),
  frames: fc.array(FRAME, { minLength: 30, maxLength: 40 }),
});

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-hmark-'));

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-ks-${tag}-${id}`, n: `nfvm-kn-${tag}-${id}` };
  const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
  senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
  return ns;
}

describe.skipIf(SKIP)('HMARK, cluster and bpf against the kernel', () => {
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('HMARK and cluster: every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    for (const [ci, c] of fc.sample(CASE, { numRuns: CASES, seed: SEED }).entries()) {
      const rules = [...c.hmark.flat(), ...c.cluster.flatMap((r) => [r, '-m pkttype --pkt-type host', '-m pkttype --pkt-type multicast'])];
      await preroutingCounters({ tag: `h${ci}`, table: 'mangle', rules, frames: c.frames.map(toFrame), tmp, pair, t });
    }
    console.log(`HMARK and cluster against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(0);
  }, scaled(600_000));

  it('bpf --bytecode: every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    for (const [ci, c] of fc.sample(BPF_CASE, { numRuns: CASES, seed: SEED }).entries()) {
      await preroutingCounters({ tag: `b${ci}`, table: 'raw', rules: c.progs.map((p) => `-m bpf --bytecode "${p}"`), frames: c.frames.map(toFrame), tmp, pair, t });
    }
    console.log(`bpf against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(0);
  }, scaled(600_000));
});
