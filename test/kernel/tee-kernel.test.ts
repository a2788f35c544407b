/**
 * TEE against the kernel (Linux 6.18), both backends: a node namespace
 * with TEE rules at PREROUTING, INPUT (one with an `--oif` no device has:
 * not bound; one bound to the sender's side, where the gateway is taken to
 * be on link), FORWARD and OUTPUT, a gateway namespace behind its eth1;
 * generated UDP frames injected with tcpreplay. Compared, for both
 * engines:
 *  - every rule counter of the node (`iptables-*-save -c`): the copies
 *    cross raw/mangle/filter OUTPUT and POSTROUTING untracked (the nat
 *    table and MASQUERADE never see them), the OUTPUT TEE copies no copy
 *    (nf_skb_duplicated);
 *  - the gateway's counters of what arrived on its side: copies with DF
 *    and the TTL one less (PREROUTING, INPUT) or as forwarded (FORWARD),
 *    the original source kept, against the packets the node model sent
 *    out of eth1, classified by the same tests.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, kernelSkip, type KernelCounter, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, run, senderNodeTopology, saveHeader } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, readCaptureFile, loadFrame, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { Packet, resetMeta } from '../../vm/packet.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('TEE against the kernel', TOOLS);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-tee-'));

function csum(b: number[]): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A UDP frame from the sender (10.0.0.2) to `dst`, port `dport`, TTL `ttl`, no DF. */
function frame(dst: number[], dport: number, ttl: number, sport: number): Uint8Array {
  const l4 = [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 12, 0, 0, 1, 2, 3, 4];
  const len = 20 + l4.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, sport & 255, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 2, ...dst];
  const c = csum(ip);
  ip[10] = c >> 8;
  ip[11] = c & 255;
  return Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...ip, ...l4]);
}

const CHAINS = (table: string) => ({
  raw: ['PREROUTING', 'OUTPUT'], nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
}[table] ?? ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']).map((c) => `:${c} ACCEPT [0:0]`);

const RULES = [
  '*raw', ...CHAINS('raw'),
  '-A OUTPUT -d 10.0.0.1',
  '-A OUTPUT -d 10.9.0.0/16',
  'COMMIT',
  '*mangle', ...CHAINS('mangle'),
  '-A PREROUTING -p udp --dport 53 -j TEE --gateway 10.5.0.2',
  '-A INPUT -p udp --dport 54 -j TEE --gateway 10.5.0.2 --oif nosuch0',
  '-A INPUT -p udp --dport 56 -j TEE --gateway 10.5.0.2 --oif eth0',
  '-A FORWARD -p udp --dport 55 -j TEE --gateway 10.5.0.2',
  '-A OUTPUT -m conntrack --ctstate UNTRACKED',
  '-A OUTPUT -j TEE --gateway 10.5.0.2',
  '-A POSTROUTING -o eth1 -m conntrack --ctstate UNTRACKED',
  '-A POSTROUTING -o eth1 -m conntrack --ctstate NEW',
  '-A POSTROUTING -o eth1',
  '-A POSTROUTING -o eth0 -m conntrack --ctstate UNTRACKED',
  'COMMIT',
  '*nat', ...CHAINS('nat'),
  '-A OUTPUT',
  '-A POSTROUTING -o eth1 -j MASQUERADE',
  'COMMIT',
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  // no port unreachable answers (they would cross OUTPUT too, under ICMP rate limits)
  '-A INPUT -p udp -j DROP',
  '-A FORWARD -o eth1',
  '-A OUTPUT -o eth1',
  'COMMIT', '',
].join('\n');

/** What the gateway counts in raw PREROUTING, and the same test over an IPv4 packet the node sent out of eth1. */
const GW: { rule: string; test: (ip: Uint8Array) => boolean }[] = [
  { rule: '-s 10.0.0.2 -d 10.0.0.1 -p udp --dport 53 -m ttl --ttl-eq 63 -m u32 --u32 "4&0x4000=0x4000"', test: (p) => src(p) === '10.0.0.2' && dst(p) === '10.0.0.1' && dport(p) === 53 && p[8] === 63 && df(p) },
  { rule: '-s 10.0.0.2 -d 10.0.0.1 -p udp --dport 53 -m ttl --ttl-eq 0 -m u32 --u32 "4&0x4000=0x4000"', test: (p) => src(p) === '10.0.0.2' && dst(p) === '10.0.0.1' && dport(p) === 53 && p[8] === 0 && df(p) },
  { rule: '-s 10.0.0.2 -d 10.0.0.1 -p udp --dport 54 -m ttl --ttl-eq 63 -m u32 --u32 "4&0x4000=0x4000"', test: (p) => src(p) === '10.0.0.2' && dst(p) === '10.0.0.1' && dport(p) === 54 && p[8] === 63 && df(p) },
  { rule: '-s 10.0.0.2 -d 10.0.0.1 -p udp --dport 56', test: (p) => src(p) === '10.0.0.2' && dst(p) === '10.0.0.1' && dport(p) === 56 },
  { rule: '-s 10.0.0.2 -d 10.9.0.0/16 -p udp --dport 55 -m ttl --ttl-eq 63 -m u32 --u32 "4&0x4000=0x4000"', test: (p) => src(p) === '10.0.0.2' && dst(p).startsWith('10.9.') && dport(p) === 55 && p[8] === 63 && df(p) },
  { rule: '-s 10.5.0.1 -d 10.9.0.0/16 -p udp --dport 55 -m ttl --ttl-eq 63 -m u32 --u32 "4&0x4000=0"', test: (p) => src(p) === '10.5.0.1' && dst(p).startsWith('10.9.') && dport(p) === 55 && p[8] === 63 && !df(p) },
  { rule: '', test: () => true },
];
const src = (p: Uint8Array) => `${p[12]}.${p[13]}.${p[14]}.${p[15]}`;
const dst = (p: Uint8Array) => `${p[16]}.${p[17]}.${p[18]}.${p[19]}`;
const dport = (p: Uint8Array) => (p[22]! << 8) | p[23]!;
const df = (p: Uint8Array) => (p[6]! & 0x40) !== 0;

const SETUP = (gwNs: string) => `sysctl -qw net.ipv4.ip_forward=1
ip link add eth1 address 02:00:00:00:01:01 type veth peer name eth1p netns ${gwNs}
sysctl -qw net.ipv6.conf.eth1.disable_ipv6=1
ip link set eth1 up
ip addr add 10.5.0.1/24 dev eth1
ip neigh replace 10.5.0.2 lladdr 02:00:00:00:01:02 dev eth1 nud permanent
ip neigh replace 10.5.0.3 lladdr 02:00:00:00:01:02 dev eth1 nud permanent
ip route add 10.9.0.0/16 via 10.5.0.3`;

const GW_SETUP = `sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip link set eth1p address 02:00:00:00:01:02
sysctl -qw net.ipv6.conf.eth1p.disable_ipv6=1 net.ipv4.conf.eth1p.rp_filter=0
ip addr add 10.5.0.2/24 dev eth1p
ip link set eth1p up
iptables-legacy -P OUTPUT DROP
${GW.map((g) => `iptables-legacy -t raw -A PREROUTING -i eth1p ${g.rule}`).join('\n')}`;

describe.skipIf(SKIP)('TEE against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('copies at PREROUTING, INPUT, FORWARD: the node\'s counters and what reached the gateway (both engines, both backends)', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) frames.push(frame([10, 0, 0, 1], 53, 64, 2000 + i));
    frames.push(frame([10, 0, 0, 1], 53, 1, 2100));
    for (let i = 0; i < 3; i++) frames.push(frame([10, 0, 0, 1], 54, 64, 3000 + i));
    for (let i = 0; i < 5; i++) frames.push(frame([10, 9, 0, 1 + i], 55, 64, 4000 + i));
    for (let i = 0; i < 2; i++) frames.push(frame([10, 0, 0, 1], 56, 64, 6000 + i));
    frames.push(frame([10, 0, 0, 1], 99, 64, 5000));
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    let compared = 0;
    let nonzero = 0;
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-ts-${backend[0]}-${id}`, n: `nfvm-tn-${backend[0]}-${id}`, g: `nfvm-tg-${backend[0]}-${id}` };
      try {
        senderNodeTopology(ns, { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02' });
        const r = netnsAdd(ns.g);
        if (r.status !== 0) throw new Error(`ip netns add ${ns.g}: ${r.stderr}`);
        nsSh(ns.g, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
        nsSh(ns.n, SETUP(ns.g));
        nsSh(ns.g, GW_SETUP);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${RULES}`);
        await new Promise((res) => setTimeout(res, 300));
        const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
        if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        await new Promise((res) => setTimeout(res, 500));
        const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c']);
        // every chain, OUTPUT and POSTROUTING too: the node sends nothing but the copies (IPv6 off, UDP dropped before it could answer)
        const kernel = flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true }), true) as Map<string, KernelCounter>;
        const gwSave = await run('ip', ['netns', 'exec', ns.g, 'iptables-legacy-save', '-c', '-t', 'raw']);
        const gw = [...(flattenCounters(parseRestore(gwSave.stdout, { counters: true })) as Map<string, KernelCounter>)]
          .filter(([k]) => k.startsWith('raw PREROUTING #')).map(([, c]) => c.packets);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          model.recordEmitted = true;
          const mineGw = GW.map(() => 0n);
          const pkt = new Packet();
          let clones = 0;
          for (const f of readCaptureFile(pcap)) {
            resetMeta(pkt);
            loadFrame(pkt, f);
            model.captureCt(pkt);
            const res = model.receive(pkt, 'eth0');
            clones += res.answers.filter((a) => a.clone && a.fate.kind === 'sent').length;
            for (const e of res.emitted ?? []) {
              if (e.dev !== 'eth1') continue;
              GW.forEach((g, i) => {
                if (g.test(e.packet)) mineGw[i]! += 1n;
              });
            }
          }
          expect(clones, `${backend} ${engine}`).toBe(4 + 1 + 3 + 5 + 2);
          GW.forEach((g, i) => {
            if (gw[i] !== mineGw[i]) diffs.push(`${backend} ${engine} gateway raw PREROUTING ${g.rule || '(all)'}: kernel ${gw[i]} nfvm ${mineGw[i]}`);
          });
          const mine = flattenCounters(model.rulesetWithCounters()!, true);
          for (const [key, kc] of kernel) {
            compared++;
            if (kc.packets > 0n) nonzero++;
            const mc = mine.get(key);
            if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) diffs.push(`${backend} ${engine} ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
          }
        }
        expect(gw, `${backend}: the gateway's counters`).toEqual([4n, 1n, 3n, 0n, 5n, 5n, 18n]);
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
        netnsDel(ns.g);
      }
    }
    console.log(`TEE against the kernel: ${compared - diffs.length}/${compared} node rule counters and the gateway's agree (${nonzero} nonzero)`);
    expect(diffs).toEqual([]);
    expect(nonzero).toBeGreaterThan(20);
  }, 300_000);
});
