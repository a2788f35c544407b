/**
 * The realm match against the kernel (Linux 6.18), both backends: a node
 * namespace with routes carrying realms (`realm N`, `realms S/D`, on a
 * nexthop of a multipath route), a reverse route with a realm (the source
 * realm fib_validate_source() gives) and a policy rule with realms (the
 * first packet through a nexthop, from the rule's sources, makes the route
 * the nexthop caches, rule realms included, for the packets after it);
 * generated frames from several sources to forwarded, local and unroutable
 * destinations; mangle FORWARD, INPUT and POSTROUTING rules test the
 * tclassid with masks and inversion. Every rule's counters of
 * `iptables-*-save -c` must equal the node model's on the namespace's
 * snapshot, both engines.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('realm against the kernel', TOOLS);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-realm-'));

function csum(b: number[]): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A UDP frame from `src` to `dst`. */
function frame(src: number[], dst: number[], port: number): Uint8Array {
  const l4 = [port >> 8, port & 255, 0, 53, 0, 8, 0, 0];
  const len = 20 + l4.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, 1, 0, 0, 64, 17, 0, 0, ...src, ...dst];
  const c = csum(ip);
  ip[10] = c >> 8;
  ip[11] = c & 255;
  return Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...ip, ...l4]);
}

const SOURCES = [[172, 16, 3, 3], [10, 0, 0, 2], [192, 168, 1, 1], [10, 9, 9, 9]];
const DESTS = [[10, 8, 1, 1], [10, 7, 1, 1], [10, 6, 0, 1], [10, 5, 0, 9], [10, 0, 0, 1], [10, 5, 0, 1]];
const TESTS = ['--realm 5', '--realm 4', '--realm 0x30004', '--realm 0x90000/0xffff0000', '! --realm 0', '--realm 0x6/0xffff', '--realm 0x20000/0xffff0000', '--realm 7', '--realm 0'];
const SETUP = `sysctl -qw net.ipv4.ip_forward=1
ip link add eth1 type veth peer name eth1p
ip link set eth1 up
ip link set eth1p up
ip addr add 10.5.0.1/24 dev eth1
ip neigh replace 10.5.0.2 lladdr 02:00:00:00:00:09 dev eth1 nud permanent
ip neigh replace 10.5.0.3 lladdr 02:00:00:00:00:0a dev eth1 nud permanent
ip route add 10.8.0.0/16 via 10.5.0.2 realm 5
ip route add 10.7.0.0/16 via 10.5.0.2 realms 3/4
ip route add 10.6.0.0/16 nexthop via 10.5.0.2 realm 7 nexthop via 10.5.0.3 realm 7
ip route add 192.168.0.0/16 via 10.0.0.2 realm 9
ip rule add from 172.16.0.0/12 to 10.8.0.0/15 realms 2/6 table main pref 100`;

describe.skipIf(SKIP)('realm against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('routes, reverse routes and rules with realms: every rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const frames: Uint8Array[] = [];
    for (const [i, s] of SOURCES.entries()) for (const [j, d] of DESTS.entries()) frames.push(frame(s, d, 1000 + i * 10 + j));
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    const chains = ['FORWARD', 'INPUT', 'POSTROUTING'];
    const text = ['*mangle', ...['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].map((c) => `:${c} ACCEPT [0:0]`),
      ...chains.flatMap((c) => TESTS.map((t) => `-A ${c} -m realm ${t}`)), 'COMMIT', ''].join('\n');
    const diffs: string[] = [];
    let compared = 0;
    let nonzero = 0;
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-ks-r${backend[0]}-${id}`, n: `nfvm-kn-r${backend[0]}-${id}` };
      const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
      try {
        senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
        nsSh(ns.n, SETUP);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], text);
        expect(load.stderr, text).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `# Generated by iptables-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n${text}`);
        const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
        if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        await new Promise((r) => setTimeout(r, 300));
        const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c', '-t', 'mangle']);
        const kernel = flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true }));
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters()!);
          for (const [key, kc] of kernel as Map<string, KernelCounter>) {
            if (!/^mangle (FORWARD|INPUT|POSTROUTING) #/.test(key)) continue;
            compared++;
            if (kc.packets > 0n) nonzero++;
            const mc = mine.get(key);
            if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) diffs.push(`${backend} ${engine} ${key} (${TESTS[(Number(key.split('#')[1]) - 1) % TESTS.length]}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
          }
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    console.log(`realm against the kernel: ${compared - diffs.length}/${compared} rule counters agree (${nonzero} nonzero)`);
    expect(diffs).toEqual([]);
    expect(nonzero).toBeGreaterThan(8);
  }, 300_000);
});
