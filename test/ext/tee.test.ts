/**
 * TEE (ext/target/TEE.ts, hooks/dup.ts):
 *  - the engines agree: for generated mangle tables mixing TEE with marks,
 *    jumps and verdicts, and generated packets, the VM (execution tier and
 *    interpreter) and the x_tables evaluator call nf_dup with the same
 *    hook, gateway, oif and packet, and give the same verdicts, marks and
 *    counters, both backends;
 *  - the node sends the copy as nf_dup_ipv4 / nf_dup_ipv6 do: DF set and
 *    the TTL one less at PREROUTING (a valid header checksum), the hop
 *    limit one less for IPv6, untracked (not NATed, ctstate UNTRACKED in
 *    OUTPUT), to the gateway as next hop, through OUTPUT and POSTROUTING
 *    where a TEE copies nothing more (nf_skb_duplicated); no route to the
 *    gateway frees it; `--oif` binds the route when the device exists;
 *    replay counts the copies.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { EngineOptions, TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { M_MARK, M_NHOFF, M_END } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import type { XtDup } from '../../ext/xt.js';
import { enginePacket, genPacketOf, type Hookish } from '../helpers/engine-gen.js';
import { runs } from '../helpers/runs.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { encodeSpec, parseSpec, inetChecksum } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { cmdReplay } from '../../cli/replay.js';
import { outputText } from '../../cli/io.js';
import { specInput } from '../../cli/model.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An XtDup that writes down each call. */
function recorder(out: string[]): XtDup {
  return {
    dup(pkt: Packet, hook: number, gw: Uint8Array, oif: string, what: string) {
      out.push(`${hook} ${hex(gw)} ${oif} ${what} mark=${pkt.meta[M_MARK]! >>> 0} ${hex(pkt.data.subarray(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!))}`);
    },
  };
}

const CHAINS: Hookish[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
const MATCHES = ['', '-p udp', '-p tcp --dport 22', '-s 10.0.0.0/8', '! -d 192.168.0.0/16', '-m mark --mark 0x1/0x1', '-p udp -m udp --sport 53'];
const TARGETS = ['-j TEE --gateway 10.5.0.2', '-j TEE --gateway 10.5.0.3 --oif eth1', '-j MARK --set-xmark 0x1/0x1', '-j MARK --set-mark 0x7', '-j ACCEPT', '-j DROP', '-j RETURN', '', '-j U1', '-g U1'];
const UTARGETS = ['-j TEE --gateway 10.6.0.1', '-j MARK --or-mark 0x100', '-j RETURN', '-j ACCEPT', ''];

const table = fc.tuple(
  fc.array(fc.tuple(fc.constantFrom(...CHAINS), fc.constantFrom(...MATCHES), fc.constantFrom(...TARGETS)), { maxLength: 10 }),
  fc.array(fc.tuple(fc.constantFrom(...MATCHES), fc.constantFrom(...UTARGETS)), { maxLength: 4 }),
).map(([rules, urules]) => [
  '*mangle', ...CHAINS.map((c) => `:${c} ACCEPT [0:0]`), ':U1 - [0:0]',
  ...rules.map(([c, m, t]) => `-A ${c} ${m} ${t}`.replace(/ +/g, ' ').trimEnd()),
  ...urules.map(([m, t]) => `-A U1 ${m} ${t}`.replace(/ +/g, ' ').trimEnd()),
  'COMMIT', '',
].join('\n'));

function observe(make: (o: EngineOptions) => TableEngine, packets: ReturnType<typeof genPacketOf>[], chains: Hookish[]): string {
  const calls: string[] = [];
  const engine = make({ seed: 3, dup: recorder(calls) });
  const out: string[] = [];
  packets.forEach((p, i) => {
    const v = engine.run(chains[i]!, p);
    out.push(`${v} ${p.meta[M_MARK]! >>> 0}`);
  });
  return JSON.stringify({ out, calls, counters: [...engine.counters()] });
}

describe('TEE in both engines', () => {
  it('the VM (tier and interpreter) and the x_tables evaluator make the same copies, verdicts, marks and counters', () => {
    fc.assert(
      fc.property(table, fc.array(enginePacket(CHAINS), { minLength: 1, maxLength: 10 }), fc.constantFrom<Backend>('legacy', 'nft'), (text, gens, backend) => {
        const rs = parseRestore(text);
        const chains = gens.map((g) => g.chain);
        const ref = observe((o) => referenceTable(rs, 'mangle', { ...o, backend }), gens.map(genPacketOf), chains);
        const jit = observe((o) => vmTable(rs, 'mangle', { ...o, backend, tier: 'jit' }), gens.map(genPacketOf), chains);
        const interp = observe((o) => vmTable(rs, 'mangle', { ...o, backend, tier: 'interp' }), gens.map(genPacketOf), chains);
        expect(jit).toBe(ref);
        expect(interp).toBe(ref);
      }),
      { numRuns: runs(150) },
    );
  });
});

const FIX4 = join(import.meta.dirname, '../path/fixtures/node');
const FIX6 = join(import.meta.dirname, '../path/fixtures/node6');
const files = (dir: string) => new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));

function model(dir: string, over: Record<string, string>, engine: EngineKind): NodeModel {
  const f = files(dir);
  for (const [k, v] of Object.entries(over)) f.set(k, v);
  return buildNodeModel(buildNode('', f), { engine });
}

function go(m: NodeModel, spec: string): PathResult {
  m.setTrace(true);
  m.recordEmitted = true;
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  return iif === '' ? m.send(pkt, s.oif) : m.receive(pkt, iif);
}

const traces = (steps: PathResult['steps']) => steps.flatMap((s) => (s.kind === 'trace' ? [`${s.table}:${s.chain}:${s.type}:${s.num}`] : []));
const notes = (steps: PathResult['steps']) => steps.flatMap((s) => (s.kind === 'trace' ? [] : [s.text]));

const RULES4 = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j TEE --gateway 10.1.0.7
-A PREROUTING -p udp --dport 54 -j TEE --gateway 172.31.0.1 --oif eth0
-A PREROUTING -p udp --dport 55 -j TEE --gateway 10.1.0.7 --oif nosuch0
-A FORWARD -p udp --dport 56 -j TEE --gateway 10.0.0.200
-A OUTPUT -m conntrack --ctstate UNTRACKED
-A OUTPUT -j TEE --gateway 10.1.0.9
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`;

describe.each(['vm', 'reference'] as const)('the copy TEE sends (%s engine)', (engine) => {
  it('IPv4 at PREROUTING: DF, TTL - 1, a valid header checksum, untracked through OUTPUT and POSTROUTING, out to the gateway; the OUTPUT TEE copies no copy', () => {
    const m = model(FIX4, { 'iptables-save.txt': RULES4 }, engine);
    const r = go(m, 'udp 10.0.0.2:4000 > 10.0.0.1:53 ttl 20 iif eth0');
    // the port unreachable (nothing listens on 53) crosses the OUTPUT TEE, which copies it
    expect(r.answers.map((a) => [a.kind, a.depth, !!a.clone, fateText(a.fate)])).toEqual([
      ['tee-clone', 1, true, 'sent out eth1 via 10.1.0.7'], ['icmp-port-unreachable', 1, false, 'sent out eth0 to 10.0.0.2'], ['tee-clone', 2, true, 'sent out eth1 via 10.1.0.9'],
    ]);
    const c = r.answers[0]!;
    expect(c.packet[6]! & 0x40).toBe(0x40);
    expect(c.packet[8]).toBe(19);
    expect(inetChecksum(c.packet, 0, 20)).toBe(0);
    // mangle OUTPUT: the UNTRACKED rule and the TEE, which copies nothing (nf_skb_duplicated)
    expect(traces(c.steps)).toEqual(['mangle:OUTPUT:rule:1', 'mangle:OUTPUT:rule:2', 'mangle:OUTPUT:policy:3', 'filter:OUTPUT:policy:1', 'mangle:POSTROUTING:policy:1']);
    expect(notes(c.steps)[0]).toBe('nf_dup_ipv4: a copy of the packet at PREROUTING (TEE --gateway 10.1.0.7): untracked, TTL 19, DF set');
    // the copy is not MASQUERADEd out eth1 (untracked: the NAT core leaves it alone), the source stays
    expect(c.packet.subarray(12, 16)).toEqual(Uint8Array.of(10, 0, 0, 2));
    expect(r.emitted!.map((e) => [e.dev, e.kind])).toEqual([['eth1', 'tee-clone'], ['eth1', 'tee-clone'], ['eth0', 'icmp-port-unreachable']]);
    expect(fateText(r.fate)).toBe('delivered locally to 10.0.0.1 on eth0');
    const counters = m.rulesetWithCounters()!.tables.get('mangle')!.chains.get('OUTPUT')!.rules.map((x) => x.counters!.packets);
    expect(counters).toEqual([2n, 3n]);
  });

  it('a forwarded packet is copied after ip_forward\'s TTL decrement, to an on-link gateway; the original is MASQUERADEd, the copy is not', () => {
    const m = model(FIX4, { 'iptables-save.txt': RULES4 }, engine);
    const r = go(m, 'udp 10.0.0.2:4000 > 8.8.8.8:56 ttl 20 iif eth0');
    expect(fateText(r.fate)).toContain('forwarded out eth1 via 10.1.0.2');
    const c = r.answers[0]!;
    expect(fateText(c.fate)).toBe('sent out eth0 via 10.0.0.200');
    expect(c.packet[8]).toBe(19);
    expect(c.packet.subarray(12, 16)).toEqual(Uint8Array.of(10, 0, 0, 2));
    expect(r.emitted!.map((e) => [e.dev, e.kind, e.packet.subarray(12, 16).join('.')])).toEqual([['eth0', 'tee-clone', '10.0.0.2'], ['eth1', 'forwarded', '10.1.0.1']]);
  });

  it('--oif: a device the node has binds the route (on link without a route through it); a name no device has binds nothing', () => {
    const m = model(FIX4, { 'iptables-save.txt': RULES4 }, engine);
    const bound = go(m, 'udp 10.0.0.2:4000 > 10.0.0.1:54 iif eth0').answers[0]!;
    expect(fateText(bound.fate)).toBe('sent out eth0 via 172.31.0.1');
    expect(notes(bound.steps)).toContain('nf_dup_ipv4_route: no route to the gateway 172.31.0.1 through eth0: assumed on link, out eth0');
    const unbound = go(m, 'udp 10.0.0.2:4000 > 10.0.0.1:55 iif eth0').answers[0]!;
    expect(fateText(unbound.fate)).toBe('sent out eth1 via 10.1.0.7');
  });

  it('IPv6: the hop limit one less at PREROUTING, no DF to set; no route to the gateway frees the copy', () => {
    const rules6 = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j TEE --gateway 2001:db8:1::7
-A PREROUTING -p udp --dport 54 -j TEE --gateway 2001:db8:1::7 --oif eth0
-A OUTPUT -j TEE --gateway 2001:db8:1::8
COMMIT
`;
    const m = model(FIX6, { 'ip6tables-save.txt': rules6 }, engine);
    const r = go(m, 'udp [2001:db8::2]:4000 > [2001:db8::1]:53 hl 30 iif eth0');
    const c = r.answers[0]!;
    expect([c.kind, fateText(c.fate)]).toEqual(['tee-clone', 'sent out eth1 via 2001:db8:1::7']);
    expect(c.packet[7]).toBe(29);
    expect(traces(c.steps)).toEqual(['mangle:OUTPUT:rule:1', 'mangle:OUTPUT:policy:2', 'mangle:POSTROUTING:policy:1']);
    const none = go(m, 'udp [2001:db8::2]:4000 > [2001:db8::1]:54 iif eth0').answers[0]!;
    expect(fateText(none.fate)).toBe('dropped: nf_dup_ipv6_route: no route to the gateway 2001:db8:1::7 through eth0 (noroute): the copy is freed');
  });
});

describe('nfvm replay', () => {
  it('counts the copies TEE sent, apart from the answers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-tee-'));
    try {
      for (const [f, text] of files(FIX4)) writeFileSync(join(dir, f), f === 'iptables-save.txt' ? RULES4 : text);
      const specs = ['udp 10.0.0.2:4000 > 10.0.0.1:53 iif eth0', 'udp 10.0.0.2:4001 > 8.8.8.8:56 iif eth0', 'udp 10.0.0.2:4002 > 8.8.8.8:57 iif eth0'];
      const pcap = join(dir, 'c.pcap');
      writeFileSync(pcap, writePcap(specs.map((x) => ({ data: encodeSpec(parseSpec(x)).data })), { linktype: LINKTYPE_ETHERNET }));
      const doc = JSON.parse(outputText(cmdReplay([dir, '--pcap', pcap, '--iface', 'eth0', '--json'])));
      // 53: a copy at PREROUTING, the port unreachable and its copy at OUTPUT; 56: a copy at FORWARD
      expect(doc.summary.clones).toEqual({ sent: 3, notSent: 0 });
      expect(doc.summary.answers).toEqual({ sent: 1, byKind: { 'icmp-port-unreachable': 1 }, notSent: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
