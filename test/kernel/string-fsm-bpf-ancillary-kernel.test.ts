/**
 * `-m string --algo fsm` and `-m bpf` programs loading ancillary data
 * (SKF_AD_*) against the kernel (Linux 6.18), under both backends
 * (x_tables, and nft_compat as iptables-nft loads them).
 *
 * fsm: seeded ts_fsm token patterns (`--hex-string`, 4 bytes a token: u16
 * type little-endian, recur, value; every type and recurrence, a leading
 * TS_FSM_HEAD_IGNORE, --from/--to windows, `!`) as count-only raw
 * PREROUTING rules, and UDP frames whose payloads are drawn from bytes of
 * every token class; every rule's counters of `iptables-*-save -c` must
 * equal what the node model gives on the namespace's snapshot, with both
 * engines. Patterns fsm_init refuses (bad lengths, types, recurrences, a
 * misplaced HEAD_IGNORE, --icase) must be refused by the kernel and by
 * nfvm's check alike.
 *
 * bpf: hand-written and seeded generated classic programs
 * (test/helpers/bpf-gen.ts bpfAncProgram) loading SKF_AD_PROTOCOL,
 * PKTTYPE, IFINDEX, HATYPE, MARK (set by an earlier rule), CPU (the frames
 * sent from CPU 0), ALU_XOR_X, the VLAN fields and the netlink attribute
 * searches NLATTR and NLATTR_NEST over UDP payloads laid out as attributes
 * (some with lengths that lie), to the node's MAC, broadcast and multicast;
 * and PAY_OFFSET, the flow dissector's payload offset, over frames of every
 * shape it walks (POFF_FRAMES).
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
import { type CounterTally, kernelSkip, netnsDel, preroutingCounters, run, senderNodeTopology } from '../helpers/kernel.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { NfvmError } from '../../core/errors.js';
import { checkTable } from '../../compiler/check.js';
import { runs, scaled } from '../helpers/runs.js';
import { bpfAncProgram } from '../helpers/bpf-gen.js';

const TOOLS = ['ip', 'taskset', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('string --algo fsm and bpf ancillary loads against the kernel', TOOLS);
const SEED = Number(process.env.FC_SEED ?? 20261205);
const CASES = runs(4);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2], bcast: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] };
const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** Payload bytes: letters of both cases (hex digits and not), digits, punctuation, blanks, controls, DEL, 128-255 of each class. */
const BYTES = [0x61, 0x62, 0x67, 0x41, 0x46, 0x5a, 0x30, 0x39, 0x2e, 0x2f, 0x20, 0x09, 0x00, 0x7f, 0x85, 0xa0, 0xa9, 0xc9, 0xd7, 0xdf, 0xe9, 0xf7];
const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** One struct ts_fsm_token: type (0..13), recur (0..3, or 4 as a first token), value. */
const TOKEN = fc.record({ type: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 13 })), recur: fc.integer({ min: 0, max: 3 }), value: pick(BYTES) });
const FSM_RULE = fc.record({
  head: fc.option(fc.record({ type: pick([1, 4, 7, 8, 9, 12, 13]), value: pick(BYTES) }), { freq: 2 }),
  tokens: fc.array(TOKEN, { minLength: 1, maxLength: 4 }),
  from: pick([0, 0, 28, 28, 29, 30]),
  to: pick([65535, 65535, 32, 40]),
  inv: fc.boolean(),
}).map(({ head, tokens, from, to, inv }) => {
  const all = [...(head ? [{ ...head, recur: 4 }] : []), ...tokens];
  const hex = all.map((t) => `${hex2(t.type)}00${hex2(t.recur)}${hex2(t.value)}`).join('');
  return `-m string ${inv ? '! ' : ''}--hex-string "|${hex}|" --algo fsm${from ? ` --from ${from}` : ''}${to !== 65535 ? ` --to ${to}` : ''}`;
});

function csum(b: number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A UDP frame 10.0.0.2:4000 > 10.0.0.1:5000 carrying `payload` (UDP checksum 0). */
function udpFrame(payload: readonly number[], dstMac = MAC.node): Uint8Array {
  const len = 28 + payload.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, 0x0f, 0xa0, 0x13, 0x88, (len - 20) >> 8, (len - 20) & 255, 0, 0, ...payload];
  const c = csum(ip, 0, 20);
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  return Uint8Array.from([...dstMac, ...MAC.sender, 8, 0, ...ip]);
}

const FSM_CASE = fc.record({
  rules: fc.array(FSM_RULE, { minLength: 10, maxLength: 16 }),
  frames: fc.array(fc.array(pick(BYTES), { minLength: 0, maxLength: 12 }), { minLength: 30, maxLength: 40 }),
});

/** A netlink attribute (u16 length and type in host order, little-endian), its body padded to 4; some lengths lie. */
const NLA = fc.record({ body: fc.array(pick([0, 3, 4, 7, 8, 0x5a]), { maxLength: 9 }), type: pick([1, 2, 3, 7, 0x8002, 0x4003]), lie: fc.option(pick([0, 2, 3, 5, 200]), { freq: 6 }) })
  .map(({ body, type, lie }) => {
    const len = lie ?? body.length + 4;
    const pad = (4 - (body.length % 4)) % 4;
    return [len & 255, len >> 8, type & 255, type >> 8, ...body, ...Array<number>(pad).fill(0)];
  });
const BPF_FRAME = fc.record({ attrs: fc.array(NLA, { maxLength: 4 }), mac: pick([MAC.node, MAC.node, MAC.bcast, [1, 0, 0x5e, 0, 0, 9]]) })
  .map(({ attrs, mac }) => udpFrame(attrs.flat(), mac));
const SKF_AD = (n: number) => 0xfffff000 + n;
/** Hand-written programs, one per ancillary field, and the rule that sets the mark one of them reads. */
const BPF_HAND = [
  `-m bpf --bytecode "4,32 0 0 ${SKF_AD(0)},21 0 1 2048,6 0 0 1,6 0 0 0"`,
  `-m bpf --bytecode "2,48 0 0 ${SKF_AD(4)},22 0 0 0"`,
  `-m bpf --bytecode "4,48 0 0 ${SKF_AD(4)},21 0 1 1,6 0 0 1,6 0 0 0"`,
  `-m bpf --bytecode "2,32 0 0 ${SKF_AD(8)},22 0 0 0"`,
  `-m bpf --bytecode "4,40 0 0 ${SKF_AD(28)},21 0 1 1,6 0 0 1,6 0 0 0"`,
  '-m pkttype --pkt-type broadcast -j MARK --set-mark 0x2a',
  `-m bpf --bytecode "4,32 0 0 ${SKF_AD(20)},21 0 1 42,6 0 0 1,6 0 0 0"`,
  `-m bpf --bytecode "4,32 0 0 ${SKF_AD(36)},21 0 1 0,6 0 0 1,6 0 0 0"`,
  `-m bpf --bytecode "6,1 0 0 5,0 0 0 3,32 0 0 ${SKF_AD(40)},21 0 1 6,6 0 0 1,6 0 0 0"`,
  `-m bpf --bytecode "3,0 0 0 9,48 0 0 ${SKF_AD(44)},22 0 0 0"`,
  `-m bpf --bytecode "3,0 0 0 9,32 0 0 ${SKF_AD(48)},22 0 0 0"`,
  `-m bpf --bytecode "3,0 0 0 9,40 0 0 ${SKF_AD(60)},22 0 0 0"`,
  ...[1, 2, 3, 7].flatMap((t) => [`-m bpf --bytecode "4,0 0 0 28,1 0 0 ${t},32 0 0 ${SKF_AD(12)},22 0 0 0"`, `-m bpf --bytecode "4,0 0 0 28,1 0 0 ${t},32 0 0 ${SKF_AD(16)},22 0 0 0"`]),
  `-m bpf --bytecode "4,0 0 0 36,1 0 0 3,32 0 0 ${SKF_AD(16)},22 0 0 0"`,
  // the offset found, exactly
  ...[[3, 12, 28], [3, 12, 36], [7, 12, 32], [7, 12, 40], [3, 16, 32], [7, 16, 32], [4, 16, 36]].map(([t, ad, at]) =>
    `-m bpf --bytecode "6,0 0 0 28,1 0 0 ${t},32 0 0 ${SKF_AD(ad!)},21 0 1 ${at},6 0 0 1,6 0 0 0"`),
];
/**
 * SKF_AD_PAY_OFFSET (skb_get_poff, ext/flowdissect.ts): IPv4 packets from
 * 10.0.1.i, one shape each, with their IP payload as bytes: transports and
 * their header lengths, fragments, options, and the tunnels the dissector
 * walks into (IPIP, IPv6 with extension headers, GRE versions 0 and 1 with
 * every optional field, Ethernet, VLAN, PPPoE, MPLS, ARP and PTP inside),
 * truncated inner headers and a nesting past MAX_FLOW_DISSECT_HDRS. The
 * rules read the offset bit by bit per source, so every frame's offset is
 * compared, not only their sum.
 */
const ip4 = (proto: number, payload: readonly number[], o: { frag?: number; opts?: number[]; src?: number } = {}): number[] => {
  const opts = o.opts ?? [];
  const hl = 20 + opts.length;
  const len = hl + payload.length;
  const h = [0x40 | (hl >> 2), 0, len >> 8, len & 255, 0, 7, (o.frag ?? 0) >> 8, (o.frag ?? 0) & 255, 64, proto, 0, 0, 10, 0, 1, o.src ?? 0, 10, 0, 0, 1, ...opts];
  const c = csum(h, 0, hl);
  h[10] = c >> 8;
  h[11] = c & 255;
  return [...h, ...payload];
};
const ip6 = (next: number, payload: readonly number[]): number[] =>
  [0x60, 0, 0, 0, payload.length >> 8, payload.length & 255, next, 64, 0x20, 1, 0xd, 0xb8, ...Array<number>(11).fill(0), 1, 0x20, 1, 0xd, 0xb8, ...Array<number>(11).fill(0), 2, ...payload];
const tcpH = (doff: number, body = 6) => [0x0f, 0xa0, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, doff << 4, 0x18, 0xff, 0xff, 0, 0, 0, 0, ...Array<number>(Math.max(0, doff * 4 - 20) + body).fill(0x41)];
const udpH = (body = 6) => [0x0f, 0xa0, 0, 53, 0, 8 + body, 0, 0, ...Array<number>(body).fill(0x42)];
const gre = (flags: number, proto: number, inner: readonly number[], extra = 0) => [flags >> 8, flags & 255, proto >> 8, proto & 255, ...Array<number>(extra).fill(0), ...inner];
const ethIn = (type: number, inner: readonly number[]) => [2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, type >> 8, type & 255, ...inner];
let nested = ip4(17, udpH());
for (let i = 0; i < 16; i++) nested = ip4(4, nested);
const POFF_SHAPES: number[][] = [
  tcpH(5), tcpH(8), tcpH(2), tcpH(15, 0), tcpH(5).slice(0, 10), tcpH(5).slice(0, 13), udpH(), udpH(0).slice(0, 4),
  [8, 0, 0, 0, 0, 1, 0, 1, 9, 9], [0x11, 0, 0, 0, 0, 0, 0, 0], Array<number>(16).fill(0), Array<number>(16).fill(0), Array<number>(20).fill(0),
];
const POFF_PROTOS = [6, 6, 6, 6, 6, 6, 17, 17, 1, 2, 132, 33, 99];
const POFF_FRAMES: number[][] = [
  ...POFF_SHAPES.map((p, i) => ip4(POFF_PROTOS[i]!, p)),
  ip4(17, udpH(), { opts: [1, 1, 1, 1] }),
  ip4(17, udpH(), { frag: 0x2000 }),
  ip4(17, udpH(), { frag: 0x0001 }),
  ip4(6, tcpH(7), { frag: 0x2000 }),
  ip4(4, ip4(17, udpH())),
  ip4(4, ip4(17, udpH()).slice(0, 10)),
  ip4(4, [0x4f, ...ip4(17, udpH()).slice(1)]),
  ip4(41, ip6(6, tcpH(5))),
  ip4(41, ip6(0, [60, 0, 1, 4, 0, 0, 0, 0, 17, 1, 1, 4, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, ...udpH()])),
  ip4(41, ip6(44, [17, 0, 0, 1, 0, 0, 0, 9, ...udpH()])),
  ip4(41, ip6(44, [17, 0, 0, 0x10, 0, 0, 0, 9, ...udpH()])),
  ip4(41, ip6(43, [6, 0, 0, 0])),
  ip4(47, gre(0, 0x0800, ip4(17, udpH()))),
  ip4(47, gre(0xb000, 0x0800, ip4(6, tcpH(6)), 12)),
  ip4(47, gre(0x2000, 0x0800, [], 2)),
  ip4(47, gre(0, 0x6558, ethIn(0x0800, ip4(6, tcpH(5))))),
  ip4(47, gre(0, 0x6558, ethIn(0x8100, [0, 5, 0x86, 0xdd, ...ip6(17, udpH())]))),
  ip4(47, gre(0, 0x6558, ethIn(0x8864, [0x11, 0, 0, 1, 0, 30, 0, 0x21, ...ip4(17, udpH())]))),
  ip4(47, gre(0, 0x6558, ethIn(0x88f7, Array<number>(44).fill(0)))),
  ip4(47, gre(0, 0x6558, ethIn(0x0806, Array<number>(28).fill(0)))),
  ip4(47, gre(0x4000, 0x0800, ip4(17, udpH()), 4)),
  ip4(47, gre(0x0002, 0x0800, ip4(17, udpH()))),
  ip4(47, gre(0x3001, 0x880b, [0, 20, 0, 1, 0, 0, 0, 5, 0xff, 0x03, 0, 0x21, ...ip4(17, udpH())])),
  ip4(47, gre(0x3081, 0x880b, [0, 20, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4, 0xff, 0x03, 0, 0x57, ...ip6(58, [128, 0, 0, 0, 0, 1, 0, 1])])),
  ip4(47, gre(0x1001, 0x880b, ip4(17, udpH()), 4)),
  ip4(47, gre(0, 0x1234, Array<number>(20).fill(0))),
  ip4(47, gre(0, 0x8847, [0, 1, 0x11, 64, ...ip4(17, udpH())])),
  ip4(137, [0, 1, 0x11, 64, ...ip4(17, udpH())]),
  ip4(47, gre(0, 0x0806, Array<number>(28).fill(0))),
  ip4(47, gre(0, 0x88ca, Array<number>(8).fill(0))),
  nested,
];
const POFF_BITS = 10;
const POFF_RULES = POFF_FRAMES.flatMap((_, i) => [...Array(POFF_BITS).keys()].map((b) =>
  `-s 10.0.1.${i}/32 -m bpf --bytecode "4,32 0 0 ${SKF_AD(52)},69 0 1 ${1 << b},6 0 0 1,6 0 0 0"`));
const poffFrame = (p: number[], i: number): Uint8Array => {
  const b = Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...p]);
  // the source is the frame's number: set it and fix the checksum
  b[14 + 15] = i;
  b[14 + 10] = 0;
  b[14 + 11] = 0;
  const hl = (b[14]! & 15) * 4;
  const c = csum([...b.subarray(14, 14 + hl)], 0, hl);
  b[14 + 10] = c >> 8;
  b[14 + 11] = c & 255;
  return b;
};

const BPF_CASE = fc.record({ progs: fc.array(bpfAncProgram, { minLength: 10, maxLength: 16 }), frames: fc.array(BPF_FRAME, { minLength: 30, maxLength: 40 }) });

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-ext11-'));

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-ext11-s${tag}-${id}`, n: `nfvm-ext11-n${tag}-${id}` };
  const mac = (m: number[]) => m.map(hex2).join(':');
  senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
  return ns;
}

/** nfvm's load of one raw PREROUTING rule: undefined when it loads, else the check's refusal. */
function nfvmRefusal(rule: string): string | undefined {
  try {
    const rs = parseRestore(`*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING ${rule}\nCOMMIT\n`);
    checkTable(rs, rs.tables.get('raw')!, 'rules');
    return undefined;
  } catch (e) {
    if (e instanceof NfvmError) return e.message;
    throw e;
  }
}

/** Token patterns fsm_init may refuse: types past TS_FSM_TYPE_MAX (or with a high byte), recurrences past TS_FSM_RECUR_MAX, HEAD_IGNORE anywhere, stray bytes, --icase. */
const FSM_ANY_RULE = fc.record({
  tokens: fc.array(fc.record({ type: pick([0, 1, 5, 13, 0, 1, 5, 13, 14, 15, 0x100, 0x10d]), recur: pick([0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 5, 0xff]), value: pick(BYTES) }), { minLength: 1, maxLength: 3 }),
  stray: pick(['', '', '', '41', '4142', '414243']),
  icase: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
}).map(({ tokens, stray, icase }) => {
  const hex = tokens.map((t) => `${hex2(t.type & 255)}${hex2(t.type >> 8)}${hex2(t.recur)}${hex2(t.value)}`).join('') + stray;
  return `-m string --hex-string "|${hex}|" --algo fsm${icase ? ' --icase' : ''}`;
});
describe.skipIf(SKIP)('string --algo fsm and bpf ancillary loads against the kernel', () => {
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('string --algo fsm: every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    for (const [ci, c] of fc.sample(FSM_CASE, { numRuns: CASES, seed: SEED }).entries()) {
      await preroutingCounters({ tag: `f${ci}`, table: 'raw', rules: c.rules, frames: c.frames.map((p) => udpFrame(p)), tmp, pair, t });
    }
    console.log(`string --algo fsm against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(0);
  }, scaled(600_000));

  it('string --algo fsm: the patterns fsm_init refuses, the kernel and nfvm alike (both backends)', async () => {
    const rules = fc.sample(FSM_ANY_RULE, { numRuns: runs(60), seed: SEED });
    let loaded = 0;
    const diffs: string[] = [];
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = pair(`r${backend[0]}`);
      try {
        for (const rule of rules) {
          const r = await run('ip', ['netns', 'exec', ns.n, 'sh', '-c', `iptables-${backend} -t raw -A PREROUTING ${rule} && iptables-${backend} -t raw -F PREROUTING`]);
          const why = nfvmRefusal(rule);
          if (r.code === 0) loaded++;
          if ((r.code === 0) !== (why === undefined)) diffs.push(`${backend} ${rule}: kernel ${r.code === 0 ? 'loads' : `refuses (${r.stderr.trim()})`}, nfvm ${why ?? 'loads'}`);
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    console.log(`string --algo fsm refusals: ${2 * rules.length - diffs.length}/${2 * rules.length} load decisions agree with the kernel (${loaded} loaded)`);
    expect(diffs).toEqual([]);
    expect(loaded).toBeGreaterThan(0);
    expect(loaded).toBeLessThan(2 * rules.length);
  }, scaled(600_000));

  it('bpf ancillary loads: every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    for (const [ci, c] of fc.sample(BPF_CASE, { numRuns: CASES, seed: SEED }).entries()) {
      await preroutingCounters({ tag: `b${ci}`, table: 'raw', rules: [...BPF_HAND, ...c.progs.map((p) => `-m bpf --bytecode "${p}"`)], frames: c.frames, tmp, pair, t });
    }
    console.log(`bpf ancillary loads against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(0);
  }, scaled(600_000));

  it('bpf SKF_AD_PAY_OFFSET: the payload offset of every frame, bit by bit, kernel and nfvm (both engines, both backends)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    await preroutingCounters({ tag: 'poff', table: 'raw', rules: POFF_RULES, frames: POFF_FRAMES.map(poffFrame), tmp, pair, t });
    console.log(`bpf SKF_AD_PAY_OFFSET against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${POFF_FRAMES.length} frames x ${POFF_BITS} bits x 2 backends x 2 engines, ${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(POFF_FRAMES.length);
  }, scaled(600_000));
});
