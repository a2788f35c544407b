/**
 * The two bridge engines agree: for generated ebtables rulesets (user chains
 * with their own policies, jumps, RETURN/CONTINUE, protocols incl. LENGTH
 * and 802.1Q, interfaces and bridge names with `+` and `!`, masked MACs,
 * the matches, watchers and targets) and generated frames (VLAN-tagged with
 * 802.1Q or 802.1ad, 802.3/LLC, IPv4, IPv6, ARP, truncated), the VM (the
 * execution tier, the interpreter, and the slow interpreter with tracing
 * on) and the reference evaluator under ebtables-nft's meaning give the same
 * verdicts, frames, marks, pkt_types, broute flags (the broute table's DROP
 * is `meta broute set 1` and accept there), counters and traces.
 * Seeded (test/setup.ts): a failure prints the shrunk case, replayable with FC_SEED.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseEbtRestore } from '../../compiler/ebt/restore.js';
import type { EbtRuleset, EbtTableName } from '../../core/ebt-ast.js';
import { ebtReferenceTable } from '../../engine/reference/ebtables.js';
import { ebtVmTable } from '../../engine/ebt-vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import { XtState } from '../../ext/xtstate.js';
import { F_BR_BROUTE, M_FLAGS, M_MARK, M_PKTTYPE } from '../../vm/layout.js';
import { Packet, decodeBridgeFrame, setBridgePort, setDevice } from '../../vm/packet.js';
import { runs } from '../helpers/runs.js';

const BR_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x0c]);
const macOf = (n: string) => (n === 'br0' ? BR_MAC : n === 'eth0' ? new Uint8Array([2, 0, 0, 0, 1, 0]) : undefined);

const MACS = ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0c', 'ff:ff:ff:ff:ff:ff', '01:80:c2:00:00:00', '01:00:5e:00:00:01'];
const maybeNot = (s: string) => fc.tuple(fc.boolean(), fc.constant(s)).map(([n, v]) => (n ? `! ${v}` : v));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const macArb = fc.oneof(
  fc.constantFrom(...MACS),
  fc.tuple(fc.constantFrom(...MACS), fc.constantFrom('ff:ff:ff:00:00:00', 'ff:ff:ff:ff:ff:f0', '01:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff')).map(([a, m]) => `${a}/${m}`),
  fc.constantFrom('Unicast', 'Multicast', 'Broadcast', 'BGA'),
);
const ifArb = fc.constantFrom('eth0', 'eth1', 'eth+', 'veth0', '+');
const brArb = fc.constantFrom('br0', 'br+', 'br1');

/** The rule's protocol and the module options that need it. */
const protoPart = fc.oneof(
  fc.constant(''),
  fc.tuple(fc.boolean(), fc.constantFrom('ARP', 'IPv6', '0x88a8', 'LENGTH')).map(([n, p]) => `-p ${n ? '! ' : ''}${p}`),
  fc.record({
    src: opt(maybeNot('10.0.0.0/8')),
    dst: opt(maybeNot('10.0.0.3')),
    proto: opt(fc.constantFrom('udp', 'tcp', 'icmp')),
    port: opt(maybeNot('50:60')),
    tos: opt(maybeNot('0x10')),
  }).map((o) => {
    let s = '-p IPv4';
    if (o.src) s += ` --ip-src ${o.src}`;
    if (o.dst) s += ` --ip-dst ${o.dst}`;
    if (o.tos) s += ` --ip-tos ${o.tos}`;
    if (o.proto) {
      s += ` --ip-proto ${o.proto}`;
      if (o.port && o.proto !== 'icmp') s += ` --ip-dport ${o.port}`;
      if (o.proto === 'icmp' && o.port) s += ' --ip-icmp-type echo-request';
    }
    return s;
  }),
  fc.record({ proto: opt(fc.constantFrom('udp', 'tcp')), sport: opt(maybeNot('53')), dst: opt(maybeNot('fe80::/64')) }).map((o) => {
    let s = '-p IPv6';
    if (o.dst) s += ` --ip6-dst ${o.dst}`;
    if (o.proto) s += ` --ip6-proto ${o.proto}${o.sport ? ` --ip6-sport ${o.sport}` : ''}`;
    return s;
  }),
  fc.record({ op: opt(maybeNot('Request')), ipdst: opt(maybeNot('10.0.0.1')), grat: fc.boolean(), macsrc: opt(maybeNot('02:00:00:00:00:0a')) }).map((o) => {
    let s = '-p ARP';
    if (o.op) s += ` --arp-op ${o.op}`;
    if (o.ipdst) s += ` --arp-ip-dst ${o.ipdst}`;
    if (o.macsrc) s += ` --arp-mac-src ${o.macsrc}`;
    if (o.grat) s += ' --arp-gratuitous';
    return s;
  }),
  fc.record({ id: opt(maybeNot('10')), prio: opt(maybeNot('3')), encap: opt(maybeNot('IPv4')) }).map((o) => {
    let s = '-p 802_1Q';
    if (o.id) s += ` --vlan-id ${o.id}`;
    if (o.prio) s += ` --vlan-prio ${o.prio}`;
    if (o.encap) s += ` --vlan-encap ${o.encap}`;
    return s;
  }),
  fc.record({ sap: opt(maybeNot('0x42')), type: opt(maybeNot('0x0800')) }).map((o) => {
    let s = '-p LENGTH';
    if (o.sap) s += ` --802_3-sap ${o.sap}`;
    if (o.type) s += ` --802_3-type ${o.type}`;
    return s;
  }),
);

/** `[!] --among-src|--among-dst` with MACs of the frames, some as MAC=IP pairs with the frames' addresses. */
const amongArb = fc
  .record({
    dir: fc.constantFrom('src', 'dst'),
    inv: fc.boolean(),
    items: fc.array(fc.tuple(fc.constantFrom(...MACS.slice(0, 3), '02:00:00:00:01:00', 'ff:ff:ff:ff:ff:ff'), fc.constantFrom('', '', '=10.0.0.2', '=10.0.0.3', '=192.168.0.1')), { minLength: 1, maxLength: 4 }),
  })
  .map((o) => `${o.inv ? '! ' : ''}--among-${o.dir} ${o.items.map(([m, ip]) => m + ip).join(',')}`);

function ruleArb(chain: string, users: readonly string[], nat: boolean): fc.Arbitrary<string> {
  const targets: fc.Arbitrary<string>[] = [
    fc.constantFrom('', '-j ACCEPT', '-j DROP', '-j RETURN', '-j CONTINUE'),
    fc.tuple(fc.constantFrom('--mark-set', '--mark-or', '--mark-and', '--mark-xor'), fc.constantFrom('0x1', '0xff00', '0x7'), fc.constantFrom('ACCEPT', 'DROP', 'CONTINUE', 'RETURN'))
      .map(([op, v, t]) => `-j mark ${op} ${v} --mark-target ${t}`),
  ];
  if (users.length) targets.push(fc.constantFrom(...users).map((u) => `-j ${u}`));
  if (nat && (chain === 'PREROUTING' || chain === 'BROUTING' || chain.startsWith('U'))) {
    targets.push(fc.constantFrom('ACCEPT', 'CONTINUE', 'DROP').map((t) => `-j dnat --to-dst 02:00:00:00:00:0c --dnat-target ${t}`));
  }
  if (nat && (chain === 'PREROUTING' || chain === 'BROUTING')) targets.push(fc.constant('-j redirect --redirect-target CONTINUE'));
  if (nat && chain === 'POSTROUTING') targets.push(fc.constantFrom('', ' --snat-arp').map((a) => `-j snat --to-src 02:00:00:00:00:0e${a} --snat-target CONTINUE`));
  const user = chain.startsWith('U');
  const inOk = user || ['INPUT', 'FORWARD', 'PREROUTING', 'BROUTING'].includes(chain);
  const outOk = user || ['OUTPUT', 'FORWARD', 'POSTROUTING'].includes(chain);
  return fc
    .record({
      proto: protoPart,
      // -i/--logical-in only where there is an input port, -o/--logical-out where there is an output port
      iif: inOk ? opt(ifArb.chain(maybeNot)) : fc.constant(undefined),
      oif: outOk ? opt(ifArb.chain(maybeNot)) : fc.constant(undefined),
      lin: inOk ? opt(brArb.chain(maybeNot)) : fc.constant(undefined),
      lout: outOk ? opt(brArb.chain(maybeNot)) : fc.constant(undefined),
      src: opt(macArb.chain(maybeNot)),
      dst: opt(macArb.chain(maybeNot)),
      pkttype: opt(fc.constantFrom('host', 'broadcast', 'multicast', 'otherhost').chain(maybeNot)),
      mark: opt(fc.constantFrom('0x1', '0x7/0xff', '/0x100').chain(maybeNot)),
      limit: opt(fc.constantFrom('--limit 2/sec --limit-burst 2', '--limit 10/min')),
      watch: opt(fc.constantFrom('--log-prefix "p"', '--nflog-group 2')),
      among: opt(fc.array(amongArb, { minLength: 1, maxLength: 2 })),
      target: fc.oneof(...targets),
    })
    .map((r) => {
      const p = [`-A ${chain}`, r.proto];
      if (r.iif) p.push(`-i ${r.iif}`);
      if (r.oif) p.push(`-o ${r.oif}`);
      if (r.lin) p.push(`--logical-in ${r.lin}`);
      if (r.lout) p.push(`--logical-out ${r.lout}`);
      if (r.src) p.push(`-s ${r.src}`);
      if (r.dst) p.push(`-d ${r.dst}`);
      if (r.pkttype) p.push(`--pkttype-type ${r.pkttype}`);
      if (r.mark) p.push(`--mark ${r.mark}`);
      if (r.limit) p.push(r.limit);
      // one list per direction
      const dirs = new Set<string>();
      for (const a of r.among ?? []) {
        const dir = a.includes('--among-src') ? 'src' : 'dst';
        if (!dirs.has(dir)) p.push(a);
        dirs.add(dir);
      }
      if (r.watch) p.push(r.watch);
      p.push(r.target);
      return p.filter((x) => x !== '').join(' ');
    });
}

const BUILTINS: Record<EbtTableName, string[]> = { filter: ['INPUT', 'FORWARD', 'OUTPUT'], nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'], broute: ['BROUTING'] };

/** A table: builtin policies, up to three user chains (jumps only forward: no loops), rules. */
const rulesetArb = fc.constantFrom<EbtTableName>('filter', 'nat', 'broute').chain((table) =>
  fc.integer({ min: 0, max: 3 }).chain((nUser) => {
    const users = Array.from({ length: nUser }, (_, i) => `U${i}`);
    const chains = [...BUILTINS[table], ...users];
    return fc
      .record({
        policies: fc.array(fc.constantFrom('ACCEPT', 'DROP'), { minLength: BUILTINS[table].length, maxLength: BUILTINS[table].length }),
        userPolicies: fc.array(fc.constantFrom('RETURN', 'ACCEPT', 'DROP'), { minLength: nUser, maxLength: nUser }),
        rules: fc.tuple(...chains.map((c, ci) => fc.array(ruleArb(c, users.filter((_, ui) => !c.startsWith('U') || ui > ci - BUILTINS[table].length), table !== 'filter'), { maxLength: 5 }))),
      })
      .map(({ policies, userPolicies, rules }) => {
        const head = [`*${table}`, ...BUILTINS[table].map((c, i) => `:${c} ${policies[i]}`), ...users.map((u, i) => `:${u} ${userPolicies[i]}`)];
        return { table, text: [...head, ...rules.flat()].join('\n') + '\n' };
      });
  }),
);

interface Frame {
  bytes: number[];
  iif: string;
  oif: string;
  brIn: string;
  brOut: string;
  pkttype: number | undefined;
  mark: number;
  chain: number;
  dtNs: number;
}

const hexMac = (s: string) => s.split(':').map((h) => parseInt(h, 16));
const frameArb: fc.Arbitrary<Frame> = fc
  .record({
    dst: fc.constantFrom(...MACS.map(hexMac)),
    src: fc.constantFrom(...MACS.slice(0, 3).map(hexMac), [2, 0, 0, 0, 1, 0]),
    tag: fc.option(fc.record({ tpid: fc.constantFrom(0x8100, 0x88a8), id: fc.constantFrom(0, 10, 11), prio: fc.integer({ min: 0, max: 7 }) }), { nil: undefined }),
    body: fc.oneof(
      fc.record({ p: fc.constantFrom(1, 6, 17), dst: fc.constantFrom([10, 0, 0, 3], [192, 168, 0, 1]), dport: fc.constantFrom(53, 55, 80), tos: fc.constantFrom(0, 0x10), frag: fc.boolean() })
        .map((o) => {
          const l4 = o.p === 1 ? [8, 0, 0, 0, 0, 1, 0, 1] : [0x30, 0x39, o.dport >> 8, o.dport & 0xff, 0, 12, 0, 0, ...(o.p === 6 ? new Array(12).fill(0) : [])];
          const len = 20 + l4.length;
          return [0x08, 0x00, 0x45, o.tos, len >> 8, len & 0xff, 0, 0, o.frag ? 0x20 : 0x40, o.frag ? 1 : 0, 64, o.p, 0, 0, 10, 0, 0, 2, ...o.dst, ...l4];
        }),
      fc.record({ op: fc.constantFrom(1, 2), tip: fc.constantFrom([10, 0, 0, 1], [10, 0, 0, 2]) }).map((o) => [
        0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, o.op, 2, 0, 0, 0, 0, 0x0a, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, ...o.tip,
      ]),
      fc.record({ nh: fc.constantFrom(17, 6, 0), dst0: fc.constantFrom(0xfe, 0x20) }).map((o) => {
        const l4 = o.nh === 0 ? [17, 0, 0, 0, 0, 0, 0, 0, 0, 53, 0, 53, 0, 8, 0, 0] : [0, 53, 0, 53, 0, 8, 0, 0];
        return [0x86, 0xdd, 0x60, 0, 0, 0, 0, l4.length, o.nh, 64, ...new Array(16).fill(1), o.dst0, 0x80, ...new Array(14).fill(0), ...l4];
      }),
      fc.record({ sap: fc.constantFrom(0x42, 0xaa, 0x06), ctrl: fc.constantFrom(3, 0) }).map((o) => [0, 38, o.sap, o.sap, o.ctrl, 0, 0, 0, 0x08, 0x00, ...new Array(30).fill(0)]),
      fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 2, maxLength: 24 }),
    ),
    cut: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    iif: fc.constantFrom('eth0', 'eth1', 'veth0', ''),
    oif: fc.constantFrom('eth0', 'eth1', ''),
    brIn: fc.constantFrom('br0', 'br1', ''),
    brOut: fc.constantFrom('br0', ''),
    pkttype: fc.option(fc.constantFrom(0, 3), { nil: undefined }),
    mark: fc.constantFrom(0, 1, 7, 0x100),
    chain: fc.integer({ min: 0, max: 2 }),
    dtNs: fc.constantFrom(0, 1e6, 3e8),
  })
  .map((o) => {
    const tag = o.tag ? [o.tag.tpid >> 8, o.tag.tpid & 0xff, (o.tag.prio << 5) | (o.tag.id >> 8), o.tag.id & 0xff] : [];
    let bytes = [...o.dst, ...o.src, ...tag, ...o.body];
    if (o.cut !== undefined && o.cut < bytes.length - 14) bytes = bytes.slice(0, 14 + o.cut);
    return { bytes, iif: o.iif, oif: o.oif, brIn: o.iif ? o.brIn : '', brOut: o.oif ? o.brOut : '', pkttype: o.pkttype, mark: o.mark, chain: o.chain, dtNs: o.dtNs };
  });

function toPacket(f: Frame): Packet {
  const p = new Packet(256).setFrame(f.bytes);
  setDevice(p, 'in', f.iif ? 2 : 0, f.iif);
  setDevice(p, 'out', f.oif ? 3 : 0, f.oif);
  setBridgePort(p, 'in', f.brIn);
  setBridgePort(p, 'out', f.brOut);
  decodeBridgeFrame(p);
  if (f.pkttype !== undefined && p.meta[M_PKTTYPE] === 0) p.meta[M_PKTTYPE] = f.pkttype;
  p.meta[M_MARK] = f.mark;
  return p;
}

function observe(make: (xt: XtState) => TableEngine, table: EbtTableName, frames: Frame[], trace: boolean): unknown {
  const xt = new XtState();
  const e = make(xt);
  e.setTrace(trace);
  let now = 1e9;
  const out: unknown[] = [];
  for (const f of frames) {
    now += f.dtNs;
    xt.setNow(now);
    const p = toPacket(f);
    const chains = BUILTINS[table];
    const v = e.run(chains[f.chain % chains.length]!, p);
    // the broute table's DROP under ebtables-nft: meta broute set 1 (F_BR_BROUTE) and accept
    out.push([v, [...p.data.subarray(0, p.len)].join(','), p.meta[M_MARK], p.meta[M_PKTTYPE], p.meta[M_FLAGS]! & F_BR_BROUTE, trace ? e.takeTrace() : []]);
  }
  return { out, counters: [...e.counters()] };
}

describe('bridge engines: VM ≡ reference (ebtables-nft semantics)', () => {
  it('agree on generated rulesets and frames', () => {
    fc.assert(
      fc.property(rulesetArb, fc.array(frameArb, { minLength: 1, maxLength: 12 }), ({ table, text }, frames) => {
        let rs: EbtRuleset;
        try {
          rs = parseEbtRestore(text);
        } catch {
          fc.pre(false);
          return;
        }
        const t = table as EbtTableName;
        const ref = observe((xt) => ebtReferenceTable(rs, t, { macOf, xt, backend: 'nft' }), t, frames, false);
        expect(observe((xt) => ebtVmTable(rs, t, { macOf, xt }), t, frames, false)).toEqual(ref);
        expect(observe((xt) => ebtVmTable(rs, t, { macOf, xt, tier: 'interp' }), t, frames, false)).toEqual(ref);
        const refTrace = observe((xt) => ebtReferenceTable(rs, t, { macOf, xt, backend: 'nft' }), t, frames, true);
        expect(observe((xt) => ebtVmTable(rs, t, { macOf, xt }), t, frames, true)).toEqual(refTrace);
      }),
      { numRuns: runs(300) },
    );
  });
});
