/**
 * The header and payload matches and the packet-rewriting targets against
 * the kernel (Linux 6.18), under both backends (x_tables, and nft_compat as
 * iptables-nft loads them): seeded rulesets of count-only raw PREROUTING
 * rules using u32, string (bm/kmp, windows, --icase), sctp, dccp, esp, ah,
 * ipcomp and tcpmss, and mangle PREROUTING rules that rewrite the packet
 * (TTL, TOS, DSCP, ECN, TCPMSS --set-mss, TCPOPTSTRIP) each followed by
 * count-only rules that read what they wrote (ttl, tos, dscp, ecn, length,
 * tcpmss, tcp --tcp-option), are loaded into a node namespace with
 * iptables-{legacy,nft}-restore; generated IPv4 frames (test/helpers/
 * header-gen.ts: SCTP chunks, DCCP, ESP, AH, IPComp, TCP options, payloads
 * holding the searched strings, headers cut short, later fragments) are
 * injected with tcpreplay; every rule's counters of `iptables-*-save -c`
 * must equal what the node model gives on the node's snapshot, with both
 * engines.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI). NFVM_PROPERTY_SCALE scales the
 * number of rulesets (base 6), FC_SEED replays a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { flattenCounters, kernelSkip, type KernelCounter, nsSh, nsSnapshotRunner, replayCapture, run, saveHeader } from '../helpers/kernel.js';
import { hdrPacket } from '../helpers/header-gen.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { runs, scaled } from '../helpers/runs.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('header matches and rewriting targets against the kernel', TOOLS);
const SEED = Number(process.env.FC_SEED ?? 20261205);
const CASES = runs(6);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const neg = fc.boolean().map((b) => (b ? '! ' : ''));

/** Count-only raw PREROUTING rules. */
const MATCH = fc.oneof(
  fc.tuple(neg, pick(['0>>22&0x3C@12>>26&0x3C@0=0x50000000:0x5fffffff', '6&0xFF=6,17', '0&0xFFFF=0x30:0x40', '4&0x3FFF=0', '0>>22&0x3C@0>>16=80', '20=0x47455420', '0>>22&0x3C@8=0:0x1000', '0@0=0:4294967295'])).map(([n, t]) => `-m u32 ${n}--u32 "${t}"`),
  fc.tuple(neg, pick(['GET /', 'abc', 'aaab', 'ab', 'ABC']), pick(['bm', 'kmp']), pick(['', ' --from 20', ' --to 40', ' --from 28 --to 60', ' --to 30']), fc.boolean())
    .map(([n, w, a, win, ic]) => `-m string ${n}--string "${w}" --algo ${a}${win}${ic ? ' --icase' : ''}`),
  fc.tuple(neg, pick(['any DATA', 'all INIT,INIT_ACK', 'only DATA:Be', 'any ABORT:T,SHUTDOWN_COMPLETE', 'all ALL', 'only NONE'])).map(([n, c]) => `-p sctp -m sctp ${n}--chunk-types ${c}`),
  fc.tuple(neg, pick(['--sport 0:1024', '--dport 80', '--dport 1024:65535'])).map(([n, o]) => `-p sctp -m sctp ${n}${o}`),
  fc.tuple(neg, pick(['--dccp-types REQUEST,DATA', '--dccp-types RESET,SYNC', '--dccp-option 32', '--dccp-option 1', '--sport 0:1024'])).map(([n, o]) => `-p dccp -m dccp ${n}${o}`),
  fc.tuple(neg, pick(['0:255', '256:4294967295', '1'])).map(([n, s]) => `-p esp -m esp ${n}--espspi ${s}`),
  fc.tuple(neg, pick(['0:255', '256:4294967295'])).map(([n, s]) => `-p ah -m ah ${n}--ahspi ${s}`),
  fc.tuple(neg, pick(['0:255', '256:65535'])).map(([n, s]) => `-p ipcomp -m ipcomp ${n}--ipcompspi ${s}`),
  fc.tuple(neg, pick(['0:600', '1400:1460', '9000'])).map(([n, s]) => `-p tcp -m tcpmss ${n}--mss ${s}`),
);

/** mangle PREROUTING: a rewriting rule, then rules reading what it wrote. */
const REWRITE = fc.oneof(
  pick(['-j TTL --ttl-set 7', '-j TTL --ttl-dec 1', '-j TTL --ttl-inc 200']).map((t) => [t, '-m ttl --ttl-eq 7', '-m ttl --ttl-lt 2', '-m ttl --ttl-gt 200']),
  pick(['-j TOS --set-tos 0x10', '-j TOS --and-tos 0x0f', '-j TOS --or-tos 0x81', '-j TOS --xor-tos 0xff']).map((t) => [t, '-m tos --tos 0x10', '-m tos --tos 0x01/0x01', '-m tos --tos 0x00/0xf0']),
  pick(['-j DSCP --set-dscp 46', '-j DSCP --set-dscp 0']).map((t) => [t, '-m dscp --dscp 46', '-m ecn --ecn-ip-ect 3']),
  pick(['-j ECN --ecn-ip-ect 2', '-p tcp -j ECN --ecn-tcp-remove']).map((t) => [t, '-m ecn --ecn-ip-ect 2', '-p tcp -m ecn --ecn-tcp-ece']),
  pick([536, 1000, 1400]).map((m) => [`-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss ${m}`, `-p tcp -m tcpmss --mss ${m}`, '-m length --length 44', '-p tcp -m tcpmss --mss 0:535']),
  pick(['sack-permitted', 'mss', 'timestamp,sack-permitted']).map((o) => [`-p tcp -j TCPOPTSTRIP --strip-options ${o}`, '-p tcp -m tcp --tcp-option 4', '-p tcp -m tcp --tcp-option 2', '-p tcp -m tcpmss --mss 0:65535']),
);

const CASE = fc.record({
  matches: fc.array(MATCH, { minLength: 6, maxLength: 12 }),
  rewrite: REWRITE,
  frames: fc.array(hdrPacket('ip', [0]).map((p) => p.bytes), { minLength: 30, maxLength: 40 }),
});

function csum(b: number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** The generated IPv4 packet as an Ethernet frame from the sender to the node, with a valid header checksum (ip_rcv checks it). */
function toFrame(bytes: readonly number[]): Uint8Array {
  const ip = (bytes[0]! >> 4 === 4 ? bytes : bytes.slice(14)).slice();
  ip.splice(12, 8, 10, 0, 0, 2, 10, 0, 0, 1);
  ip[10] = 0;
  ip[11] = 0;
  const c = csum(ip, 0, 20);
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  return Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...ip]);
}

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-headers-'));
const created: string[] = [];

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-hs-${tag}-${id}`, n: `nfvm-hn-${tag}-${id}` };
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

describe.skipIf(SKIP)('header matches and rewriting targets against the kernel', () => {
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
      const text = [
        '*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...c.matches.map((m) => `-A PREROUTING ${m}`), 'COMMIT',
        '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
        ...c.rewrite.map((r) => `-A PREROUTING ${r}`), 'COMMIT', '',
      ].join('\n');
      const pcap = join(tmp, `frames-${ci}.pcap`);
      writeFileSync(pcap, writePcap(c.frames.map((b) => ({ data: toFrame(b) })), { linktype: LINKTYPE_ETHERNET }));
      for (const backend of ['legacy', 'nft'] as const) {
        const ns = pair(`${ci}${backend[0]}`);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], text);
        expect(load.stderr, text).toBe('');
        const snap = join(tmp, `snap-${ci}-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${text}`);
        const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
        if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        await new Promise((r) => setTimeout(r, 300));
        const kernel = new Map<string, KernelCounter>();
        for (const t of ['raw', 'mangle']) {
          const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c', '-t', t]);
          for (const [k, v] of flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true }))) kernel.set(k, v);
        }
        spawnSync('ip', ['netns', 'del', ns.s]);
        spawnSync('ip', ['netns', 'del', ns.n]);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters()!);
          for (const [key, kc] of kernel) {
            if (!key.startsWith('raw PREROUTING #') && !key.startsWith('mangle PREROUTING #')) continue;
            compared++;
            if (engine === 'vm' && kc.packets > 0n) nonzero++;
            const mc = mine.get(key);
            if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) {
              const [table] = key.split(' ');
              const rule = (table === 'raw' ? c.matches : c.rewrite)[Number(key.split('#')[1]) - 1];
              diffs.push(`case ${ci} ${backend} ${engine} ${key} (${rule}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
            }
          }
        }
      }
    }
    console.log(`header matches and targets against the kernel: ${compared - diffs.length}/${compared} rule counters agree (${CASES} rulesets x 2 backends x 2 engines, ${nonzero} kernel counters nonzero)`);
    expect(diffs).toEqual([]);
    expect(nonzero).toBeGreaterThan(0);
  }, scaled(600_000));
});
