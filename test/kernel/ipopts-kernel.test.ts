/**
 * IPv4 options on the receive path (hooks/answer/ip-options.ts) against
 * the kernel (Linux 6.18), iptables legacy and nft: frames from the sender
 * (10.0.0.2) to the node (10.0.0.1, a UDP port nobody listens on: the node
 * answers port unreachable) and through it (10.9.0.8, routed back out of
 * eth0), each with options: padding, record route and timestamps with and
 * without room (the node's address written in, overflow counts, the
 * prespecified slots of the node and of another host), router alert,
 * CIPSO, an unknown option, loose and strict source routes
 * (accept_source_route off for all), and the malformed ones ip_options_compile
 * answers with a parameter problem (lengths, pointers, duplicates, an
 * overflow at 15, CIPSO without a DOI). Rules count each frame (by its IP
 * ID) in PREROUTING, INPUT and FORWARD, read the bytes the node wrote into
 * the record route slot and the pointers it moved, and count the node's
 * answers in OUTPUT and POSTROUTING by type and by the parameter
 * problem's pointer, and the header checksums of forwarded packets as
 * ip_forward_options leaves them in POSTROUTING; every counter is compared
 * with `nfvm replay` (both engines).
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkip, nsSh, replayCountersAgainstKernel, senderForwardingTopology } from '../helpers/kernel.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('IPv4 options against the kernel', TOOLS);
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-ipopts-'));
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const mac = (m: string) => m.split(':').map((x) => parseInt(x, 16));
const NODE = [10, 0, 0, 1];
const OTHER = [10, 9, 0, 8];

/** A UDP frame from 10.0.0.2 to `dst` with IP ID `ipid` and the options `opts` (padded with END to a multiple of 4); `frag` makes it a fragment of another datagram's UDP bytes. */
function frame(ipid: number, dst: number[], opts: number[], frag?: { body: number[]; offset: number; mf: boolean }): Uint8Array {
  const o = [...opts];
  while (o.length % 4) o.push(0);
  const hl = 20 + o.length;
  const udp = frag?.body ?? [0x13, 0x88, 0, 9, 0, 12, 0, 0, 1, 2, 3, 4];
  const len = hl + udp.length;
  const fo = frag ? (frag.offset >> 3) | (frag.mf ? 0x2000 : 0) : 0;
  const h = [0x40 | (hl >> 2), 0, len >> 8, len & 255, ipid >> 8, ipid & 255, fo >> 8, fo & 255, 64, 17, 0, 0, 10, 0, 0, 2, ...dst, ...o];
  let sum = 0;
  for (let i = 0; i < hl; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  h[10] = c >> 8;
  h[11] = c & 255;
  return Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 8, 0, ...h, ...udp]);
}

const RR = (len: number, ptr: number) => [7, len, ptr, ...Array<number>(len - 3).fill(0)];
const TS = (len: number, ptr: number, flags: number, body: number[] = []) => [68, len, ptr, flags, ...body, ...Array<number>(Math.max(0, len - 4 - body.length)).fill(0)];
/** Each case: options, and whether it goes to the node (else through it). */
const CASES: [number[], boolean][] = [
  [[1, 1, 1, 1], true],
  [[1, 1, 1, 1], false],
  [RR(7, 4), false],
  [RR(11, 4), true],
  [RR(11, 8), false],
  [RR(7, 8), false], // full: nothing written
  [RR(7, 3), false], // pointer < 4
  [[7, 1, 4, 0], false], // length < 2
  [[7, 30, 4, 0], false], // longer than the header
  [[...RR(7, 4), 1, ...RR(7, 4)], true], // two record routes
  [RR(7, 6), false], // pointer + 3 past the option
  [TS(12, 5, 0), false],
  [TS(12, 5, 1), true],
  [TS(8, 5, 1), false], // address and time do not fit
  [TS(8, 9, 0x10), false], // full: the overflow count goes up
  [TS(8, 9, 0xf0), false], // overflow at 15
  [TS(12, 5, 3, [...NODE]), true], // a slot for the node's address
  [TS(12, 5, 3, [10, 0, 0, 2]), true], // a slot for another host's
  [TS(12, 5, 2), false], // an unknown flag
  [TS(8, 4, 0), false], // pointer < 5
  [[148, 4, 0, 0], false],
  [[148, 2], false], // router alert of length 2
  [[134, 10, 0, 0, 0, 1, 1, 4, 0, 0], true], // CIPSO with a DOI the node does not know
  [[134, 6, 0, 0, 0, 1], false], // CIPSO shorter than 8
  [[0x99, 4, 0, 0], true], // an unknown option
  [[0, 7, 7, 7], false], // END, then garbage (overwritten with END)
  [[131, 7, 4, ...OTHER], false], // loose source route: accept_source_route off
  [[137, 7, 4, ...OTHER], true], // strict source route
  [[131, 2], false], // source route of length 2
];
/** Behind an unreachable route of the node (ip_error answers host unreachable). */
const NOROUTE = [10, 8, 0, 1];
/** A UDP datagram of 24 bytes to the node's closed port, in two fragments: record route in the first, none in the second. */
const UDP24 = [0x13, 0x88, 0, 9, 0, 24, 0, 0, ...Array.from({ length: 16 }, (_, i) => i)];
const FRAMES = [
  // first, while the ICMP rate limit towards the sender still lets answers through:
  // an unreachable route: the options are checked before ip_error answers (a bad option, then a good one echoed in the unreachable)
  frame(CASES.length + 1, NOROUTE, RR(7, 3)),
  frame(CASES.length + 2, NOROUTE, RR(11, 4)),
  // reassembled for the node: the port unreachable echoes the first fragment's options
  frame(CASES.length + 3, NODE, RR(11, 4), { body: UDP24.slice(0, 16), offset: 0, mf: true }),
  frame(CASES.length + 3, NODE, [], { body: UDP24.slice(16), offset: 16, mf: false }),
  ...CASES.map(([o, local], i) => frame(i + 1, local ? NODE : OTHER, o)),
];

/**
 * The header checksum of forwarded case `i` as it leaves (ip_forward_options: the record route slot
 * holds 10.0.0.1, the node's address towards both ends; END bytes after an END; TTL 63), for the
 * POSTROUTING rules that read it.
 */
function forwardedChecksum(i: number): number {
  const [opts] = CASES[i - 1]!;
  const f = frame(i, OTHER, opts);
  const h = [...f.subarray(14, 14 + (f[14]! & 15) * 4)];
  h[8] = 63;
  const o = 20;
  if (h[o] === 7 && h[o + 2]! <= h[o + 1]!) {
    h.splice(o + h[o + 2]! - 1, 4, ...NODE);
    h[o + 2] = h[o + 2]! + 4;
  }
  if (h[o] === 0) for (let k = o; k < h.length; k++) h[k] = 0;
  h[10] = 0;
  h[11] = 0;
  let sum = 0;
  for (let k = 0; k < h.length; k += 2) sum += (h[k]! << 8) | h[k + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
const CHECKSUMS = [3, 5, 26].map((i) => `-A POSTROUTING -m u32 --u32 "4>>16=${i} && 8&0xFFFF=${forwardedChecksum(i)}"`);

const byId = (chain: string) => [...CASES.keys(), CASES.length, CASES.length + 1, CASES.length + 2].map((i) => `-A ${chain} -m u32 --u32 "4>>16=${i + 1}"`);
const ANSWERS = (chain: string) => [
  `-A ${chain} -p icmp -m icmp --icmp-type 12`, `-A ${chain} -p icmp -m icmp --icmp-type 3/3`, `-A ${chain} -p icmp -m icmp --icmp-type 3/1`,
  ...[20, 21, 22, 23, 24, 26, 27, 29, 30].map((p) => `-A ${chain} -p icmp -m icmp --icmp-type 12 -m u32 --u32 "0>>22&0x3C@4>>24=${p}"`),
  `-A ${chain} -p icmp`,
];
const RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...byId('PREROUTING'), ...ANSWERS('POSTROUTING'), ...CHECKSUMS, 'COMMIT',
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...byId('INPUT'), ...byId('FORWARD'),
  // the record route slot (options at byte 20: type, length, pointer, then the slot) and the pointers
  '-A FORWARD -m u32 --u32 "20&0xFFFFFF00=0x07070800 && 23=0x0a000001"', '-A FORWARD -m u32 --u32 "20&0xFFFFFF00=0x070b0c00 && 27=0x0a000001"',
  '-A INPUT -m u32 --u32 "20&0xFFFFFF00=0x070b0800 && 23=0x0a000001"', '-A INPUT -m u32 --u32 "20&0xFFFFFF00=0x440c0d01 && 24=0x0a000001"',
  '-A FORWARD -m u32 --u32 "20=0x44080920"', '-A INPUT -m u32 --u32 "20=0x440c0d03"', '-A INPUT -m u32 --u32 "20=0x440c0503"',
  '-A FORWARD -m u32 --u32 "20=0x00000000"',
  ...ANSWERS('OUTPUT'), 'COMMIT', ''].join('\n');

describe.skipIf(SKIP)('IPv4 options against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the node checks and writes the options as the kernel does (every counter, both backends and engines)', async () => {
    const pcap = join(tmp, 'opts.pcap');
    writeFileSync(pcap, writePcap(FRAMES.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const diffs: string[] = [];
    await replayCountersAgainstKernel({
      tag: 'io', family: 'ip', rules: RULES, pcap, tmp, tally, diffs,
      topology: (ns) => {
        senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        nsSh(ns.n, 'ip route add unreachable 10.8.0.0/16');
      },
    });
    console.log(`IPv4 options against the kernel: ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel)`);
    expect(diffs).toEqual([]);
  }, 120_000);
});
