/**
 * Generators for the engine-equivalence properties: rulesets that use every
 * match and target whose semantics need nothing beyond the packet and its
 * metadata (issue 3's list), with user chains, jumps, gotos, returns and
 * negations; and packets drawn from the same small value pools so that
 * rules match often: addresses, ports, interfaces, marks, ct states, TTLs,
 * TOS bytes, fragments, truncated headers, IPv4 options, Ethernet or raw.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import type { Ruleset } from '../../core/ast.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../vm/packet.js';
import { joinMatches } from '../../fuzz/gen.js';
import { M_CT_DIR, M_CT_MARK, M_CT_STATE, M_HOOK, M_MARK, M_NFPROTO, M_PKTTYPE } from '../../vm/layout.js';

export const ADDRS4 = ['10.0.0.1', '10.0.0.2', '10.1.2.3', '192.168.1.10', '203.0.113.50', '127.0.0.1', '224.0.0.1', '255.255.255.255', '10.0.0.255'];
export const LOCAL4 = ['10.0.0.1', '192.168.1.10', '127.0.0.1'];
export const BCAST4 = ['10.0.0.255', '255.255.255.255'];
export const IFACES = ['eth0', 'eth1', 'cni0', 'lo', 'veth12'];
export const PORTS = [0, 22, 53, 80, 443, 1024, 8080, 65535];
export const MARKS = [0, 1, 0x4000, 0xff, 0x4001];
export const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '52:54:00:12:34:56'];
/** NF_CT_STATE_* bits: INVALID 1, ESTABLISHED 2, RELATED 4, NEW 8, UNTRACKED 64. */
export const CTSTATES = [1, 2, 4, 8, 64];

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const neg = fc.boolean().map((b) => (b ? '! ' : ''));
const port = pick(PORTS);
const portRange = fc.oneof(port.map(String), fc.tuple(port, port).map(([a, b]) => `${Math.min(a, b)}:${Math.max(a, b)}`));
// multiport ranges need lo < hi ("invalid portrange specified")
const mportRange = fc.oneof(port.map(String), fc.tuple(port, port).filter(([a, b]) => a !== b).map(([a, b]) => `${Math.min(a, b)}:${Math.max(a, b)}`));
const addr = fc.oneof(pick(ADDRS4), fc.tuple(pick(ADDRS4), fc.constantFrom(8, 16, 24, 31, 32, 0)).map(([a, l]) => `${a}/${l}`));

export type Hookish = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

/** A rule's matches for a chain reachable from `hooks` in `table`, as iptables text. */
function ruleMatches(hooks: readonly Hookish[]) {
  const inOk = !hooks.some((h) => h === 'OUTPUT' || h === 'POSTROUTING');
  const outOk = !hooks.some((h) => h === 'PREROUTING' || h === 'INPUT');
  const macOk = !hooks.some((h) => h === 'OUTPUT' || h === 'POSTROUTING');
  const l4 = fc.oneof(
    fc.record({ p: fc.constant('tcp'), m: fc.array(fc.oneof(
      portRange.chain((r) => neg.map((n) => `${n}--sport ${r}`)),
      portRange.chain((r) => neg.map((n) => `${n}--dport ${r}`)),
      fc.tuple(neg, pick(['SYN,ACK SYN', 'FIN,SYN,RST,ACK SYN', 'ALL NONE', 'SYN,RST RST', 'ACK ACK'])).map(([n, f]) => `${n}--tcp-flags ${f}`),
      neg.map((n) => `${n}--tcp-option ${[2, 4, 8][n.length % 3]}`),
    ), { maxLength: 3 }).map((ms) => dedupeOpts(ms)) }),
    fc.record({ p: fc.constant('udp'), m: fc.array(fc.oneof(
      portRange.chain((r) => neg.map((n) => `${n}--sport ${r}`)),
      portRange.chain((r) => neg.map((n) => `${n}--dport ${r}`)),
    ), { maxLength: 2 }).map((ms) => dedupeOpts(ms)) }),
    fc.record({ p: fc.constant('icmp'), m: fc.tuple(neg, pick(['any', 'echo-request', '8', '3/4', '0', '11/0'])).map(([n, t]) => [`${n}--icmp-type ${t}`]) }),
  );
  const one = fc.oneof(
    { weight: 3, arbitrary: addr.chain((a) => neg.map((n) => `${n}-s ${a}`)) },
    { weight: 3, arbitrary: addr.chain((a) => neg.map((n) => `${n}-d ${a}`)) },
    { weight: 2, arbitrary: inOk ? fc.tuple(neg, pick([...IFACES, 'eth+', 've+', '+'])).map(([n, i]) => `${n}-i ${i}`) : fc.constant('') },
    { weight: 2, arbitrary: outOk ? fc.tuple(neg, pick([...IFACES, 'eth+', '+'])).map(([n, i]) => `${n}-o ${i}`) : fc.constant('') },
    { weight: 1, arbitrary: neg.map((n) => `${n}-f`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(['tcp', 'udp', 'icmp', '47', 'all'])).filter(([n, p]) => !(n && p === 'all')).map(([n, p]) => `${n}-p ${p}`) },
    { weight: 5, arbitrary: l4.map(({ p, m }) => `-p ${p} -m ${p} ${m.join(' ')}`) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('tcp', 'udp'), fc.constantFrom('--dports', '--sports', '--ports'), fc.uniqueArray(mportRange, { minLength: 1, maxLength: 4 }), neg).map(([p, o, ps, n]) => `-p ${p} -m multiport ${n}${o} ${ps.join(',')}`) },
    { weight: 3, arbitrary: fc.tuple(neg, pick(MARKS), fc.option(pick([0xff, 0x4000, 0xffff0000]))).map(([n, v, m]) => `-m mark ${n}--mark ${v}${m === null ? '' : '/' + m}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(ADDRS4), pick(ADDRS4), fc.constantFrom('--src-range', '--dst-range')).map(([n, a, b, o]) => {
      const [lo, hi] = [a, b].sort((x, y) => ip2n(x) - ip2n(y));
      return `-m iprange ${n}${o} ${lo}-${hi}`;
    }) },
    { weight: 1, arbitrary: fc.tuple(neg, fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 1500 })).map(([n, a, b]) => `-m length ${n}--length ${a}:${a + b}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('--ttl-eq', '--ttl-lt', '--ttl-gt'), pick([1, 63, 64, 65, 255])).map(([o, v]) => `-m ttl ${o} ${v}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(['0x10/0x3f', '0x00/0xff', 'Minimize-Delay', '0x08'])).map(([n, t]) => `-m tos ${n}--tos ${t}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick([0, 10, 46, 63])).map(([n, d]) => `-m dscp ${n}--dscp ${d}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick([0, 1, 2, 3])).map(([n, e]) => `-m ecn ${n}--ecn-ip-ect ${e}`) },
    { weight: 2, arbitrary: fc.tuple(neg, pick(['LOCAL', 'BROADCAST', 'UNICAST', 'MULTICAST', 'LOCAL,BROADCAST']), fc.constantFrom('--src-type', '--dst-type'), fc.constantFrom('', ...(inOk ? [' --limit-iface-in'] : []), ...(outOk ? [' --limit-iface-out'] : [])))
      .map(([n, t, o, l]) => `-m addrtype ${o} ${n ? '! ' : ''}${t}${l}`.replace(`${o} ! `, `! ${o} `)) },
    { weight: 1, arbitrary: macOk ? fc.tuple(neg, pick(MACS)).map(([n, m]) => `-m mac ${n}--mac-source ${m}`) : fc.constant('') },
    { weight: 1, arbitrary: fc.tuple(neg, pick(['unicast', 'broadcast', 'multicast'])).map(([n, t]) => `-m pkttype ${n}--pkt-type ${t}`) },
    { weight: 1, arbitrary: pick(['x', 'kube svc', 'it\'s']).map((c) => `-m comment --comment "${c.replace(/'/g, "\\'")}"`) },
    { weight: 1, arbitrary: fc.tuple(neg, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 })).map(([n, e, p]) => `-m statistic --mode nth ${n}--every ${e} --packet ${p % e}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(['0.5', '0.25', '0.90000000000', '0.1'])).map(([n, p]) => `-m statistic --mode random ${n}--probability ${p}`) },
    { weight: 3, arbitrary: fc.tuple(neg, fc.subarray(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'], { minLength: 1 }), fc.boolean()).map(([n, s, st]) => (st ? `-m state ${n}--state ${s.join(',')}` : `-m conntrack ${n}--ctstate ${s.join(',')}`)) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(MARKS)).map(([n, v]) => `-m connmark ${n}--mark ${v}/0xffff`) },
    { weight: 1, arbitrary: pick(['--ctstate NEW,INVALID --ctdir ORIGINAL', '! --ctstatus ASSURED', '--ctstate UNTRACKED,ESTABLISHED --ctstatus SEEN_REPLY', '--ctproto tcp', '! --ctorigsrc 10.0.0.0/8', '--ctexpire 0:10']).map((o) => `-m conntrack ${o}`) },
    { weight: 1, arbitrary: fc.tuple(neg, pick(['ftp', 'sip', ''])).map(([n, h]) => `-m helper ${n}--helper "${h}"`) },
  );
  // at most one -s/-d/-i/-o/-p/-f each, one protocol (-f with a layer-4 match never matches under legacy but loads; fine)
  return fc.array(one, { maxLength: 4 }).map(joinMatches);
}

function dedupeOpts(ms: string[]): string[] {
  const seen = new Set<string>();
  return ms.filter((m) => {
    const k = /--[a-z-]+/.exec(m)![0];
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function ip2n(a: string): number {
  return a.split('.').reduce((s, x) => s * 256 + Number(x), 0);
}

const TARGETS_ANY = ['-j ACCEPT', '-j DROP', '-j RETURN', '', '-j MARK --set-xmark 0x1/0xff', '-j MARK --or-mark 0x4000', '-j MARK --set-mark 0x7',
  '-j CONNMARK --set-xmark 0x10/0xff', '-j CONNMARK --save-mark', '-j CONNMARK --restore-mark', '-j LOG --log-prefix "in: "',
  '-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf0', '-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff00 --right-shift-mark 8',
  '-j CONNMARK --set-xmark 0x3/0xf --left-shift-mark 4',
  '-j NFLOG --nflog-group 3', '-j NFQUEUE --queue-num 5', '-j NFQUEUE --queue-num 2 --queue-bypass', '-j NFQUEUE --queue-num 40000', '-j NFQUEUE --queue-num 65535 --queue-bypass', '-j QUEUE'];

export interface GenRuleset {
  table: 'filter' | 'mangle' | 'raw' | 'nat';
  text: string;
  /** Builtin chains of the table. */
  chains: Hookish[];
}

const TABLE_CHAINS: Record<GenRuleset['table'], Hookish[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

/** The NAT targets a builtin nat chain takes (xt_nat.c hooks: DNAT/REDIRECT before routing or locally out, SNAT after or locally in). */
function natTargets(hook: Hookish): string[] {
  const dnat = ['-j DNAT --to-destination 10.0.0.2', '-j DNAT --to-destination 10.1.2.3-10.1.2.9', '-j REDIRECT'];
  const snat = ['-j SNAT --to-source 192.168.1.10', '-j SNAT --to-source 203.0.113.50 --random'];
  if (hook === 'PREROUTING' || hook === 'OUTPUT') return dnat;
  return hook === 'POSTROUTING' ? [...snat, '-j MASQUERADE'] : snat;
}

/** A one-table IPv4 ruleset of one of `tables`: builtin chains with policies, 0-3 user chains (acyclic jumps/gotos). */
function rulesetOf(tables: readonly GenRuleset['table'][]): fc.Arbitrary<GenRuleset> {
  return fc
  .tuple(fc.constantFrom(...tables), fc.integer({ min: 0, max: 3 }))
  .chain(([table, nUser]) => {
    const builtins = TABLE_CHAINS[table];
    const users = ['U1', 'U2', '__proto__'].slice(0, nUser);
    const targetsFor = (i: number, hooks: readonly Hookish[]) => {
      // iptables-restore refuses DROP in nat ("not intended for filtering")
      const base = table === 'nat' ? TARGETS_ANY.filter((t) => t !== '-j DROP') : [...TARGETS_ANY];
      if (table === 'filter' && hooks.every((h) => h === 'INPUT' || h === 'FORWARD' || h === 'OUTPUT')) base.push('-j REJECT', '-j REJECT --reject-with icmp-host-prohibited');
      if (table === 'raw') base.push('-j TRACE', '-j NOTRACK', '-j CT --zone 3', '-j CT --notrack');
      // header rewriting targets: a later rule of the same run must read the rewritten header
      if (table === 'mangle') base.push('-j TTL --ttl-dec 1', '-j TTL --ttl-set 64', '-j TOS --set-tos 0x10', '-j DSCP --set-dscp 8', '-j ECN --ecn-ip-ect 1');
      if (table === 'nat' && i < builtins.length) base.push(...natTargets(builtins[i]!), ...natTargets(builtins[i]!));
      const jumps: string[] = [];
      for (let j = Math.max(i + 1, builtins.length); j < builtins.length + users.length; j++) {
        const u = users[j - builtins.length]!;
        jumps.push(`-j ${u}`, `-g ${u}`);
      }
      return fc.constantFrom(...base, ...jumps, ...jumps);
    };
    // user chains may be reached from every builtin chain: restrict their matches as for all hooks
    const all = [...builtins, ...users];
    const rulesOf = (i: number) => {
      const hooks = i < builtins.length ? [builtins[i]!] : builtins;
      return fc.array(fc.tuple(ruleMatches(hooks), targetsFor(i, hooks)), { maxLength: 5 });
    };
    const policy = table === 'nat' ? fc.constant('ACCEPT') : fc.constantFrom('ACCEPT', 'DROP');
    return fc.tuple(fc.constant(table), fc.constant(all), fc.constant(builtins), fc.tuple(...all.map((_, i) => rulesOf(i))), fc.array(policy, { minLength: builtins.length, maxLength: builtins.length }));
  })
  .map(([table, all, builtins, rules, policies]) => {
    const lines = [`*${table}`];
    all.forEach((c, i) => lines.push(`:${c} ${i < builtins.length ? policies[i] : '-'} [0:0]`));
    all.forEach((c, i) => {
      for (const [m, t] of rules[i]!) lines.push(`-A ${c} ${m} ${t}`.replace(/ +/g, ' ').trimEnd());
    });
    lines.push('COMMIT', '');
    return { table, text: lines.join('\n'), chains: builtins };
  });
}

/** filter (twice as often), mangle or raw. */
export const engineRuleset: fc.Arbitrary<GenRuleset> = rulesetOf(['filter', 'filter', 'mangle', 'raw']);
/** nat, with SNAT, DNAT, MASQUERADE and REDIRECT in the builtin chains whose hooks take them. */
export const engineNatRuleset: fc.Arbitrary<GenRuleset> = rulesetOf(['nat']);

export interface GenPacket {
  /** The chain (hook) the packet is run through. */
  chain: Hookish;
  ethernet: boolean;
  srcMac: string;
  src: string;
  dst: string;
  proto: number;
  ttl: number;
  tos: number;
  fragoff: number;
  mf: boolean;
  ipOptions: boolean;
  sport: number;
  dport: number;
  tcpFlags: number;
  /** TCP options present (MSS, SACK-permitted, timestamp). */
  tcpOptions: boolean;
  icmpType: number;
  icmpCode: number;
  /** Bytes of the L4 header kept (undefined: all). */
  truncate: number | undefined;
  payload: number;
  iif: string;
  oif: string;
  mark: number;
  ctstate: number;
  ctmark: number;
  pkttype: number;
}

export const enginePacket = (chains: readonly Hookish[]): fc.Arbitrary<GenPacket> =>
  fc.record({
    chain: fc.constantFrom(...chains),
    ethernet: fc.boolean(),
    srcMac: pick(MACS),
    src: fc.oneof(pick(ADDRS4), fc.ipV4()),
    dst: fc.oneof(pick(ADDRS4), fc.ipV4()),
    proto: fc.constantFrom(6, 6, 17, 17, 1, 47),
    ttl: pick([1, 63, 64, 65, 255]),
    tos: pick([0, 0x10, 0x08, 0xb8, 0x02, 0x03, 0x28]),
    fragoff: fc.constantFrom(0, 0, 0, 0, 1, 185),
    mf: fc.boolean(),
    ipOptions: fc.boolean().map((b) => b && false),
    sport: fc.oneof(pick(PORTS), fc.integer({ min: 0, max: 65535 })),
    dport: fc.oneof(pick(PORTS), fc.integer({ min: 0, max: 65535 })),
    tcpFlags: fc.oneof(pick([0x02, 0x12, 0x10, 0x04, 0x01, 0x00, 0x3f]), fc.integer({ min: 0, max: 255 })),
    tcpOptions: fc.boolean(),
    icmpType: pick([0, 3, 8, 11]),
    icmpCode: pick([0, 1, 4]),
    truncate: fc.option(fc.integer({ min: 0, max: 19 }), { freq: 8 }).map((v) => v ?? undefined),
    payload: fc.integer({ min: 0, max: 64 }),
    iif: pick(IFACES),
    oif: pick(IFACES),
    mark: pick(MARKS),
    ctstate: pick(CTSTATES),
    ctmark: pick(MARKS),
    pkttype: fc.constantFrom(0, 0, 1, 2),
  });

function be16(v: number): number[] {
  return [(v >> 8) & 255, v & 255];
}

function csum(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** The frame bytes of a generated packet (Ethernet or raw IPv4). */
export function packetFrame(p: GenPacket): Uint8Array {
  let l4: number[];
  if (p.proto === 6) {
    const opts = p.tcpOptions ? [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0] : [];
    const doff = 5 + opts.length / 4;
    l4 = [...be16(p.sport), ...be16(p.dport), 0, 0, 0, 1, 0, 0, 0, 0, doff << 4, p.tcpFlags, 0xfa, 0xf0, 0, 0, 0, 0, ...opts];
  } else if (p.proto === 17) {
    l4 = [...be16(p.sport), ...be16(p.dport), ...be16(8 + p.payload), 0, 0];
  } else if (p.proto === 1) {
    l4 = [p.icmpType, p.icmpCode, 0, 0, 0, 1, 0, 1];
  } else {
    l4 = [0, 0, 0x08, 0x00];
  }
  if (p.truncate !== undefined) l4 = l4.slice(0, p.truncate);
  const body = [...l4, ...new Array<number>(p.truncate !== undefined ? 0 : p.payload).fill(0x61)];
  const ip = new Uint8Array(20 + body.length);
  ip[0] = 0x45;
  ip[1] = p.tos;
  ip.set(be16(ip.length), 2);
  ip.set([0, 1], 4);
  ip.set(be16((p.mf ? 0x2000 : 0) | p.fragoff), 6);
  ip[8] = p.ttl;
  ip[9] = p.proto;
  ip.set(p.src.split('.').map(Number), 12);
  ip.set(p.dst.split('.').map(Number), 16);
  ip.set(be16(csum(ip, 0, 20)), 10);
  ip.set(body, 20);
  if (!p.ethernet) return ip;
  const eth = new Uint8Array(14 + ip.length);
  eth.set([0x02, 0, 0, 0, 0, 0xaa], 0);
  eth.set(p.srcMac.split(':').map((x) => parseInt(x, 16)), 6);
  eth.set([0x08, 0x00], 12);
  eth.set(ip, 14);
  return eth;
}

const HOOK: Record<Hookish, number> = { PREROUTING: 0, INPUT: 1, FORWARD: 2, OUTPUT: 3, POSTROUTING: 4 };

/** A generated packet as the engines take it: decoded, with its hook, devices, mark, ct state and mark, packet type. */
export function genPacketOf(g: GenPacket): Packet {
  const p = new Packet(2048);
  p.setFrame(packetFrame(g));
  decodePacket(p, g.ethernet ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
  const hook = HOOK[g.chain];
  p.meta[M_NFPROTO] = 2;
  p.meta[M_HOOK] = hook;
  if (hook <= 2) setDevice(p, 'in', 2 + (g.iif.length % 3), g.iif);
  if (hook >= 2) setDevice(p, 'out', 5 + (g.oif.length % 3), g.oif);
  p.meta[M_MARK] = g.mark;
  p.meta[M_CT_STATE] = g.ctstate;
  p.meta[M_CT_MARK] = g.ctmark;
  p.meta[M_CT_DIR] = g.ctstate === 1 || g.ctstate === 64 ? -1 : 0;
  p.meta[M_PKTTYPE] = g.pkttype;
  return p;
}

/** A filter table on every engine: the x_tables evaluator and the VM's two tiers, each on both backends (all must agree). */
export function filterEngines(rs: Ruleset): TableEngine[] {
  const out: TableEngine[] = [];
  for (const backend of ['legacy', 'nft'] as const) {
    out.push(referenceTable(rs, 'filter', { backend }));
    for (const tier of ['jit', 'interp'] as const) out.push(vmTable(rs, 'filter', { backend, tier }));
  }
  return out;
}

/**
 * A mangle OUTPUT chain of `matches[i] -j ...` (a MARK of bit i, every third
 * rule DROP) on the x_tables evaluator and the VM's two tiers, each backend:
 * every packet `packets` makes gets the same verdict, and the counters agree.
 */
export function expectOutputAgreement(matches: readonly string[], packets: readonly (() => Packet)[]): void {
  const rules = matches.map((m, i) => `-A OUTPUT ${m} -j ${i % 3 === 2 ? 'DROP' : `MARK --set-xmark 0x${(1 << i).toString(16)}/0x${(1 << i).toString(16)}`}`);
  const rs = parseRestore(`*mangle\n:OUTPUT ACCEPT [0:0]\n${rules.join('\n')}\nCOMMIT\n`, { family: 'ip' });
  for (const backend of ['legacy', 'nft'] as const) {
    const ref = referenceTable(rs, 'mangle', { backend });
    const vms = (['jit', 'interp'] as const).map((tier) => vmTable(rs, 'mangle', { backend, tier }));
    for (const make of packets) {
      const want = ref.run('OUTPUT', make());
      for (const vm of vms) expect(vm.run('OUTPUT', make())).toBe(want);
    }
    const counts = ref.counters();
    for (const vm of vms) expect(vm.counters()).toEqual(counts);
  }
}
