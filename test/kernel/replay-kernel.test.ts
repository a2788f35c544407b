/**
 * `nfvm replay` against the running kernel (Linux 6.18): the node of
 * ../shared/docs/kernel-oracle.md (eth0 10.0.0.1/24 + 192.168.50.1/32,
 * eth1 10.1.0.1/24, forwarding on, default route via 10.1.0.2, rp_filter 0,
 * IPv6 off, permanent neighbours, fixed MACs) between a sender and a
 * receiver namespace. For each seeded case: a generated ruleset
 * (test/helpers/engine-gen.ts: filter, mangle or raw with user chains,
 * jumps, gotos, returns and the stateless matches) is loaded with
 * iptables-legacy-restore, the node is captured with captureSnapshot, a
 * pcap of generated frames (local, forwarded, hairpin, broadcast,
 * multicast, martian sources and destinations, TTL 1, fragments, frames
 * for another host) is injected with tcpreplay on the sender's veth, and
 * every counter of `iptables-legacy-save -c` is compared with what replay
 * gives on the snapshot, with both engines, OUTPUT and POSTROUTING included
 * (the node's own answers: resets, ICMP errors, redirects, echo replies).
 * Each case runs in new namespaces, so the kernel's per-peer ICMP limits
 * and redirect backoff, and its conntrack table, start empty as nfvm's do.
 *
 * Left out of the rulesets: jumps from OUTPUT and POSTROUTING to user
 * chains; `statistic --mode random` (the kernel's randomness). The conntrack-based extensions (state, conntrack, connmark,
 * CONNMARK) run on the node's conntrack. The sender and receiver stacks
 * are silenced with an OUTPUT DROP policy, and every on-link address the
 * frames name has a permanent neighbour entry (a failed ARP resolution
 * makes the node send ICMP host-unreachable seconds later, into a later
 * case).
 *
 * Root with iproute2, iptables-legacy and tcpreplay; skips with a message
 * otherwise. NFVM_PROPERTY_SCALE scales the number of cases (base 80, about two minutes),
 * FC_SEED replays a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelSkip, netnsDel, run, flattenCounters, nsSnapshotRunner, replayCapture, replayTopology } from '../helpers/kernel.js';
import { engineRuleset } from '../helpers/engine-gen.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { runs, scaled } from '../helpers/runs.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('replay against the kernel', TOOLS);

const CASES = runs(80);
const SEED = Number(process.env.FC_SEED ?? 20261204);
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { s: `nfvm-rs-${id}`, n: `nfvm-rn-${id}`, r: `nfvm-rr-${id}` };
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02', eth1: '02:00:00:00:01:01', receiver: '02:00:00:00:01:02' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-replay-kern-'));


// ---------------------------------------------------------------------------
// Generated frames: spec lines for packets arriving on eth0 from the sender.

// Not a subnet broadcast source (10.0.0.255): the node's own replies to it
// (a TCP RST, an ICMP error) go out as broadcasts and loop back into
// PREROUTING and INPUT on eth0 (ip_mc_output), which no model of inbound
// traffic sees.
const SRC = ['10.0.0.2', '10.0.0.2', '10.0.0.3', '198.51.100.7', '10.1.0.5', '10.0.0.1', '192.168.50.1', '127.0.0.5', '224.1.1.1', '255.255.255.255', '0.0.0.0'];
const DST = [
  '10.0.0.1', '10.0.0.1', '192.168.50.1', '10.1.0.1', // local
  '10.1.0.2', '8.8.8.8', '203.0.113.9', '10.1.0.7', '10.0.0.2', // forwarded (10.0.0.2: back out of eth0)
  '10.0.0.255', '255.255.255.255', '10.1.0.255', // broadcast
  '224.0.0.1', '224.0.0.251', // multicast
  '127.0.0.1', '0.0.0.0', '10.0.0.0', // martian
];
const PORTS = [0, 22, 53, 80, 443, 1024, 8080, 65535];

const frameSpec = fc.record({
  proto: fc.constantFrom('tcp', 'tcp', 'udp', 'udp', 'icmp', 'ip proto 47'),
  src: fc.constantFrom(...SRC),
  dst: fc.constantFrom(...DST),
  sport: fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 })),
  dport: fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 })),
  flags: fc.constantFrom('syn', 'syn,ack', 'ack', 'rst', 'fin,ack', 'flags 0x3f', 'flags 0'),
  icmp: fc.constantFrom('echo-request', 'echo-reply', 'port-unreachable', 'time-exceeded', 'type 13'),
  ttl: fc.constantFrom(64, 64, 64, 1, 2, 255),
  tos: fc.constantFrom(0, 0, 0x10, 0xb8, 0x02),
  frag: fc.constantFrom('', '', '', '', '', 'mf', 'frag offset 8', 'frag offset 8 mf', 'df'),
  len: fc.constantFrom(0, 0, 10, 100),
  mac: fc.constantFrom('own', 'own', 'own', 'own', 'own', 'own', 'broadcast', 'other', 'multicast'),
});

type FrameGen = typeof frameSpec extends fc.Arbitrary<infer T> ? T : never;

/** `ipid` differs per frame and case: no two fragments ever reassemble (reassembly is not modelled). */
function specLine(f: FrameGen, ipid: number): string {
  // A non-first fragment has no transport header to describe.
  const l4 = !f.frag.includes('offset');
  const ports = l4 && (f.proto === 'tcp' || f.proto === 'udp');
  let s = `${f.proto} ${f.src}${ports ? `:${f.sport}` : ''} > ${f.dst}${ports ? `:${f.dport}` : ''}`;
  if (l4 && f.proto === 'tcp') s += ` ${f.flags}`;
  if (l4 && f.proto === 'icmp') s += ` ${f.icmp}`;
  s += ` ttl ${f.ttl} tos ${f.tos} len ${f.len} ipid ${ipid}`;
  if (f.frag) s += ` ${f.frag}`;
  const dmac = f.mac === 'own' ? MAC.eth0 : f.mac === 'broadcast' ? 'ff:ff:ff:ff:ff:ff' : f.mac === 'multicast' ? '01:00:5e:00:00:01' : '02:00:00:00:00:99';
  return `${s} iif eth0 src-mac ${MAC.sender} dst-mac ${dmac}`;
}

// ---------------------------------------------------------------------------
// Rulesets: the generated table plus the two others empty, without what the
// comparison cannot cover (see the header).

// Also what the installed iptables 1.8.9 cannot print back (so the snapshot
// cannot carry it): `! -i +`, `! -o +` and an inverted full port range.
const UNCOMPARABLE = /--mode random| ! -[io] \+(?= |$)|! --[a-z]*ports? 0:65535/;

function prepare(text: string, table: string): string {
  const lines = text.split('\n').filter((l) => !UNCOMPARABLE.test(l));
  const users = new Set(lines.filter((l) => /^:\S+ - /.test(l)).map((l) => l.slice(1).split(' ')[0]!));
  const kept = lines.filter((l) => {
    const m = /^-A (OUTPUT|POSTROUTING) .*-[jg] (\S+)$/.exec(l);
    return !(m && users.has(m[2]!));
  });
  const empty: Record<string, string> = {
    raw: '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
    mangle: '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
    filter: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
  };
  return ['raw', 'mangle', 'filter'].map((t) => (t === table ? kept.join('\n') + '\n' : empty[t])).join('');
}

/** Every chain, OUTPUT and POSTROUTING too: each case runs in new namespaces, so the node's ICMP limits start as nfvm's do. */
const flatten = (rs: Parameters<typeof flattenCounters>[0]) => flattenCounters(rs, true);

interface Tally { cases: number; counters: number; agree: number; nonzero: number; refused: number; failures: string[] }

describe.skipIf(SKIP)('replay against the kernel', () => {
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it(`${CASES} generated rulesets and captures: every counter agrees`, async () => {
    const cases = fc.sample(fc.tuple(engineRuleset, fc.array(frameSpec, { minLength: 8, maxLength: 24 })), { numRuns: CASES, seed: SEED });
    const tally: Record<EngineKind, Tally> = {
      vm: { cases: 0, counters: 0, agree: 0, nonzero: 0, refused: 0, failures: [] },
      interp: { cases: 0, counters: 0, agree: 0, nonzero: 0, refused: 0, failures: [] },
      reference: { cases: 0, counters: 0, agree: 0, nonzero: 0, refused: 0, failures: [] },
    };
    let loaded = 0;
    let frames = 0;
    for (let k = 0; k < cases.length; k++) {
      const [gen, specs] = cases[k]!;
      const rules = prepare(gen.text, gen.table);
      // new namespaces for each case: the kernel's inet_peer state (ICMP limits, redirect backoff) and conntrack start empty
      for (const ns of Object.values(NS)) netnsDel(ns);
      replayTopology(NS, MAC);
      const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], rules);
      if (restore.code !== 0) continue; // the generator may produce what iptables refuses; not this test's subject
      loaded++;
      const snap = join(tmp, `snap-${k}`);
      captureSnapshot(snap, nsSnapshotRunner(NS.n));
      const lines = specs.map((f, i) => specLine(f, ((k * 64 + i) % 65535) + 1));
      const pcap = join(tmp, `case-${k}.pcap`);
      writeFileSync(pcap, writePcap(lines.map((l) => ({ data: encodeSpec(parseSpec(l)).data })), { linktype: LINKTYPE_ETHERNET }));
      frames += lines.length;
      const send = await run('ip', ['netns', 'exec', NS.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
      const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
      const kernel = flatten(parseRestore(save.stdout, { counters: true }));

      for (const engine of ['vm', 'interp', 'reference'] as const) {
        const t = tally[engine];
        let model;
        try {
          model = buildNodeModel(readSnapshot(snap), { engine });
        } catch (e) {
          t.refused++;
          if (t.refused <= 3) console.warn(`[${engine}] refused: ${(e as Error).message}`);
          continue;
        }
        t.cases++;
        replayCapture(model, pcap, 'eth0');
        const mine = flatten(model.rulesetWithCounters()!);
        const diffs: string[] = [];
        for (const [key, kc] of kernel) {
          const mc = mine.get(key);
          t.counters++;
          if (kc.packets !== 0n) t.nonzero++;
          if (mc && mc.packets === kc.packets && mc.bytes === kc.bytes) t.agree++;
          else diffs.push(`  ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
        }
        if (diffs.length) t.failures.push(`case ${k} (${engine}):\n${diffs.join('\n')}\n--- rules:\n${rules}--- frames:\n${lines.join('\n')}`);
      }
      rmSync(snap, { recursive: true, force: true });
    }
    for (const engine of ['vm', 'interp', 'reference'] as const) if (tally[engine].failures.length) console.log(`[${engine}] differing: ${tally[engine].failures.map((f) => f.split(' (')[0]).join(', ')}`);
    for (const engine of ['vm', 'interp', 'reference'] as const) {
      const t = tally[engine];
      console.log(`replay against the kernel [${engine}]: ${t.cases} cases (${loaded} loaded, ${frames} frames), ` +
        `${t.agree}/${t.counters} counters agree (${t.nonzero} non-zero in the kernel), ${t.failures.length} cases differ, ${t.refused} refused by nfvm`);
    }
    expect(loaded).toBeGreaterThan(CASES / 2);
    expect(tally.reference.failures.slice(0, 2).join('\n\n')).toBe('');
    expect(tally.vm.failures.slice(0, 2).join('\n\n')).toBe('');
    expect(tally.interp.failures.slice(0, 2).join('\n\n')).toBe('');
  }, scaled(300_000));
});
