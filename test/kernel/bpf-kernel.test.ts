/**
 * The bpf match (--bytecode) against the kernel (Linux 6.18, xt_bpf), under
 * both backends: seeded generated classic programs (test/helpers/bpf-gen.ts:
 * absolute and indexed loads, SKF_NET_OFF and SKF_LL_OFF loads, loads past
 * the end, every ALU operation, division by a zero X, forward jumps) as
 * count-only raw PREROUTING rules loaded into a node namespace; generated
 * IPv4 frames (test/helpers/header-gen.ts, varied addresses, ICMP errors,
 * some to a multicast link address) are injected with tcpreplay; every
 * rule's counters of `iptables-*-save -c` must equal what the node model
 * gives, both engines.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI). NFVM_PROPERTY_SCALE scales the number
 * of rulesets (base 4), FC_SEED replays a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { flattenCounters, kernelSkip, type KernelCounter, nsSh, nsSnapshotRunner, replayCapture, run } from '../helpers/kernel.js';
import { hdrPacket } from '../helpers/header-gen.js';
import { bpfProgram } from '../helpers/bpf-gen.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { runs } from '../helpers/runs.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('bpf against the kernel', TOOLS);
const SEED = Number(process.env.FC_SEED ?? 20261204);
const CASES = runs(4);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2], mcast: [1, 0, 0x5e, 0, 0, 9] };

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

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

const CASE = fc.record({
  progs: fc.array(bpfProgram, { minLength: 8, maxLength: 14 }),
  frames: fc.array(FRAME, { minLength: 30, maxLength: 40 }),
});

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bpf-'));
const created: string[] = [];

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-bs-${tag}-${id}`, n: `nfvm-bn-${tag}-${id}` };
  for (const x of [ns.s, ns.n]) {
    const r = spawnSync('ip', ['netns', 'add', x], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${x}: ${r.stderr}`);
    created.push(x);
    nsSh(x, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  }
  const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
  nsSh(ns.s, `ip link add veth0 address ${mac(MAC.sender)} type veth peer name eth0 netns ${ns.n}
ip addr add 10.0.0.2/24 dev veth0
ip link set veth0 up
iptables-legacy -P OUTPUT DROP`);
  nsSh(ns.n, `ip link set eth0 address ${mac(MAC.node)}
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
ip addr add 10.0.0.1/24 dev eth0
ip link set eth0 up
ip neigh replace 10.0.0.2 lladdr ${mac(MAC.sender)} dev eth0 nud permanent`);
  for (let i = 0; i < 50; i++) {
    if (/LOWER_UP/.test(spawnSync('ip', ['-n', ns.n, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' }).stdout)) break;
    spawnSync('sleep', ['0.1']);
  }
  return ns;
}

describe.skipIf(SKIP)('bpf against the kernel', () => {
  afterAll(() => {
    for (const ns of created) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const cases = fc.sample(CASE, { numRuns: CASES, seed: SEED });
    const diffs: string[] = [];
    let compared = 0;
    let nonzero = 0;
    for (const [ci, c] of cases.entries()) {
      const rules = c.progs.map((p) => `-m bpf --bytecode "${p}"`);
      const text = ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...rules.map((r) => `-A PREROUTING ${r}`), 'COMMIT', ''].join('\n');
      const pcap = join(tmp, `frames-${ci}.pcap`);
      writeFileSync(pcap, writePcap(c.frames.map((f) => ({ data: toFrame(f) })), { linktype: LINKTYPE_ETHERNET }));
      for (const backend of ['legacy', 'nft'] as const) {
        const ns = pair(`${ci}${backend[0]}`);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], text);
        expect(load.stderr, text).toBe('');
        const snap = join(tmp, `snap-${ci}-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `# Generated by iptables-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n${text}`);
        const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
        if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        await new Promise((r) => setTimeout(r, 300));
        const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c', '-t', 'raw']);
        const kernel = flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true }));
        spawnSync('ip', ['netns', 'del', ns.s]);
        spawnSync('ip', ['netns', 'del', ns.n]);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters()!);
          for (const [key, kc] of kernel as Map<string, KernelCounter>) {
            if (!key.startsWith('raw PREROUTING #')) continue;
            compared++;
            if (engine === 'vm' && kc.packets > 0n) nonzero++;
            const mc = mine.get(key);
            if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) {
              diffs.push(`case ${ci} ${backend} ${engine} ${key} (${rules[Number(key.split('#')[1]) - 1]}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
            }
          }
        }
      }
    }
    console.log(`bpf against the kernel: ${compared - diffs.length}/${compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${nonzero} kernel counters nonzero)`);
    expect(diffs).toEqual([]);
    expect(nonzero).toBeGreaterThan(0);
  }, 600_000);
});
