/**
 * DNPT against the kernel (Linux 6.18, ip6t_NPT), under both backends: a
 * mangle PREROUTING DNPT rule with seeded prefixes (/16 to /64) is followed
 * by count-only `-d ADDR` rules, one for each address the frames' destinations
 * translate to in nfvm's model (and a catch-all), so a kernel that wrote any
 * other address counts elsewhere. IPv6 UDP frames to addresses inside the
 * source prefix (host parts with 0xffff words, the case the kernel drops)
 * are injected with tcpreplay; every PREROUTING rule's counters of
 * `ip6tables-*-save -c` must equal what the node model gives, both engines.
 * The kernel answers a dropped address with an ICMPv6 parameter problem:
 * a mangle OUTPUT rule counts those, compared too.
 *
 * Root with iproute2, both ip6tables backends and tcpreplay; skips with a
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
import { flattenCounters, kernelSkip, nsSh, nsSnapshotRunner, replayCapture, run } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { formatIPv6, prefixMask } from '../../core/addr.js';
import { M_HOOK, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { runs, scaled } from '../helpers/runs.js';

const TOOLS = ['ip', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('DNPT against the kernel', TOOLS);
const SEED = Number(process.env.FC_SEED ?? 20261204);
const CASES = runs(4);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };

const word16 = fc.oneof(fc.constantFrom(0, 1, 0xffff, 0xfffe), fc.integer({ min: 0, max: 0xffff }));
const words = fc.array(word16, { minLength: 8, maxLength: 8 });
const bytesOf = (w: readonly number[]) => Uint8Array.from(w.flatMap((x) => [x >> 8, x & 0xff]));

function masked(b: Uint8Array, len: number): Uint8Array {
  const m = prefixMask(len, 16);
  return b.map((x, i) => x & m[i]!);
}

const CASE = fc.record({
  src: words, dst: words, slen: fc.constantFrom(16, 32, 48, 56, 64), dlen: fc.constantFrom(16, 32, 48, 56, 64),
  hosts: fc.array(fc.tuple(words, fc.boolean()), { minLength: 12, maxLength: 20 }),
});

function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-npt-'));
const created: string[] = [];

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-ps-${tag}-${id}`, n: `nfvm-pn-${tag}-${id}` };
  for (const x of [ns.s, ns.n]) {
    const r = spawnSync('ip', ['netns', 'add', x], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${x}: ${r.stderr}`);
    created.push(x);
    nsSh(x, 'ip link set lo up');
  }
  nsSh(ns.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${ns.n}
ip -6 addr add fd00::2/64 dev veth0 nodad
ip link set veth0 up
ip6tables-legacy -P OUTPUT DROP`);
  nsSh(ns.n, `ip link set eth0 address ${MAC.node}
ip -6 addr add fd00::1/64 dev eth0 nodad
ip link set eth0 up`);
  for (let i = 0; i < 50; i++) {
    if (/LOWER_UP/.test(spawnSync('ip', ['-n', ns.n, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' }).stdout)) break;
    spawnSync('sleep', ['0.1']);
  }
  return ns;
}

describe.skipIf(SKIP)('DNPT against the kernel', () => {
  afterAll(() => {
    for (const ns of created) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every PREROUTING rule\'s counters, kernel and nfvm (both engines, both backends)', async () => {
    const cases = fc.sample(CASE, { numRuns: CASES, seed: SEED });
    const diffs: string[] = [];
    let compared = 0;
    let nonzero = 0;
    let dropped = 0;
    /** Dropped frames the node answers: ip6t_npt_map_pfx has put the new prefix in before it fails, and under ff00::/8 the destination is multicast, which icmp6_send answers with no parameter problem. */
    let answerable = 0;
    let paramProbs = 0;
    for (const [ci, c] of cases.entries()) {
      const srcPfx = masked(bytesOf(c.src), c.slen);
      const dstPfx = masked(bytesOf(c.dst), c.dlen);
      const len = Math.max(c.slen, c.dlen);
      const dnpt = `-j DNPT --src-pfx ${formatIPv6(srcPfx)}/${c.slen} --dst-pfx ${formatIPv6(dstPfx)}/${c.dlen}`;
      // destinations inside the source prefix; some with every host word 0xffff
      const dests = c.hosts.map(([h, ones]) => {
        const b = bytesOf(h);
        if (ones) b.fill(0xff, 8);
        const m = prefixMask(len, 16);
        return formatIPv6(b.map((x, i) => (x & ~m[i]!) | (srcPfx[i]! & m[i]!)));
      });
      // what the model translates them to: the rules that count them
      const alone = referenceTable(parseRestore(`*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING ${dnpt}\nCOMMIT\n`, { family: 'ip6' }), 'mangle', {});
      const expected = new Set<string>();
      for (const d of dests) {
        const p = packet(ipPacket('fd00::2', d, { proto: 'udp', sport: 4000, dport: 53, payload: 4 }));
        p.meta[M_NFPROTO] = 10;
        p.meta[M_HOOK] = 0;
        if (alone.run('PREROUTING', p) === NF_DROP) {
          dropped++;
          if (p.data[p.meta[M_NHOFF]! + 24] !== 0xff) answerable++;
          continue;
        }
        expected.add(formatIPv6(p.data.subarray(p.meta[M_NHOFF]! + 24, p.meta[M_NHOFF]! + 40)));
      }
      const rules = [dnpt, ...[...expected].map((a) => `-d ${a}/128`), `-d ${formatIPv6(dstPfx)}/${c.dlen}`, '-d ::/0'];
      const text = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ...rules.map((r) => `-A PREROUTING ${r}`), '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type parameter-problem', 'COMMIT', ''].join('\n');
      const frames = dests.map((d) => Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 0x86, 0xdd, ...ipPacket('fd00::2', d, { proto: 'udp', sport: 4000, dport: 53, payload: 4 })]));
      const pcap = join(tmp, `frames-${ci}.pcap`);
      writeFileSync(pcap, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
      for (const backend of ['legacy', 'nft'] as const) {
        const ns = pair(`${ci}${backend[0]}`);
        const load = await run('ip', ['netns', 'exec', ns.n, `ip6tables-${backend}-restore`], text);
        expect(load.stderr, text).toBe('');
        const snap = join(tmp, `snap-${ci}-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'ip6tables-save.txt'), `# Generated by ip6tables-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n${text}`);
        const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
        if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        await new Promise((r) => setTimeout(r, 300));
        const save = await run('ip', ['netns', 'exec', ns.n, `ip6tables-${backend}-save`, '-c', '-t', 'mangle']);
        const kernel = flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true, family: 'ip6' }), true);
        spawnSync('ip', ['netns', 'del', ns.s]);
        spawnSync('ip', ['netns', 'del', ns.n]);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters('ip6')!, true);
          for (const [key, kc] of kernel) {
            if (!key.startsWith('mangle PREROUTING #') && !key.startsWith('mangle OUTPUT #')) continue;
            compared++;
            if (engine === 'vm' && kc.packets > 0n) nonzero++;
            if (engine === 'vm' && key.startsWith('mangle OUTPUT #')) paramProbs += Number(kc.packets);
            const mc = mine.get(key);
            if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) {
              diffs.push(`case ${ci} ${backend} ${engine} ${key} (${key.startsWith('mangle OUTPUT') ? 'parameter problems' : rules[Number(key.split('#')[1]) - 1]}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
            }
          }
        }
      }
    }
    console.log(`DNPT against the kernel: ${compared - diffs.length}/${compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${nonzero} kernel counters nonzero, ${dropped} frames to addresses the kernel drops, ${answerable} of them answered, ${paramProbs} parameter problems sent)`);
    expect(diffs).toEqual([]);
    expect(nonzero).toBeGreaterThan(0);
    // each answerable dropped frame answered in each backend's namespace (under the ICMPv6 rate limit's burst)
    if (answerable > 0) expect(paramProbs).toBeGreaterThan(0);
  }, scaled(600_000));
});
