/**
 * Generated rulesets and packets for differential testing of nfvm's
 * engines: one-table IPv4 rulesets (filter, mangle, raw or nat) with
 * builtin chains, user chains (acyclic jumps and gotos), negations, and
 * the matches and targets whose meaning needs nothing beyond the packet
 * and its metadata; packets from the same small value pools, so that the
 * rules match often. Every ruleset is one iptables-restore accepts (the
 * hook restrictions of -i/-o, mac, REJECT and the NAT targets are kept).
 *
 * Written against Rand (fuzz/rand.ts): the CLI draws from a seeded
 * xorshift32, fuzz/arbitraries.ts from fast-check.
 */
import type { TableName } from '../core/ast.js';
import { TABLE_CHAINS } from '../core/ast.js';
import { chance, pick, type Rand } from './rand.js';
import { DEFAULT_PACKET, type FuzzPacket } from './packet.js';

export const GEN_ADDRS = ['10.0.0.1', '10.0.0.2', '10.1.2.3', '192.168.1.10', '203.0.113.50', '127.0.0.1', '224.0.0.1', '255.255.255.255', '10.0.0.255'];
export const GEN_LOCAL = ['10.0.0.1', '192.168.1.10', '127.0.0.1'];
export const GEN_BROADCAST = ['10.0.0.255', '255.255.255.255'];
export const GEN_IFACES = ['eth0', 'eth1', 'cni0', 'lo', 'veth12'];
export const GEN_PORTS = [0, 22, 53, 80, 443, 1024, 8080, 65535];
export const GEN_MARKS = [0, 1, 0x4000, 0xff, 0x4001];

export interface GenRuleset {
  table: TableName;
  /** iptables-restore text. */
  text: string;
  /** The table's builtin chains. */
  chains: readonly string[];
}

const neg = (r: Rand) => (chance(r, 0.25) ? '! ' : '');

function ip2n(a: string): number {
  return a.split('.').reduce((s, x) => s * 256 + Number(x), 0);
}

function portRange(r: Rand, multi = false): string {
  const a = pick(r, GEN_PORTS);
  if (chance(r, 0.6)) return String(a);
  const b = pick(r, GEN_PORTS);
  if (multi && a === b) return String(a);
  return `${Math.min(a, b)}:${Math.max(a, b)}`;
}

function addr(r: Rand): string {
  const a = pick(r, GEN_ADDRS);
  return chance(r, 0.5) ? a : `${a}/${pick(r, [8, 16, 24, 31, 32, 0])}`;
}

/** Up to `max` distinct option words among `opts` (one draw each). */
function someOf(r: Rand, max: number, opts: readonly (() => string)[]): string[] {
  const out = new Map<string, string>();
  const n = r.int(0, max);
  for (let i = 0; i < n; i++) {
    const s = pick(r, opts)();
    const key = /--[a-z-]+/.exec(s)![0];
    if (!out.has(key)) out.set(key, s);
  }
  return [...out.values()];
}

/** One match (possibly several options) for a chain reachable from `hooks`. */
function oneMatch(r: Rand, hooks: readonly string[]): string {
  const inOk = !hooks.some((h) => h === 'OUTPUT' || h === 'POSTROUTING');
  const outOk = !hooks.some((h) => h === 'PREROUTING' || h === 'INPUT');
  switch (r.int(0, 21)) {
    case 0: case 1: return `${neg(r)}-s ${addr(r)}`;
    case 2: case 3: return `${neg(r)}-d ${addr(r)}`;
    case 4: return inOk ? `${neg(r)}-i ${pick(r, [...GEN_IFACES, 'eth+', 've+', '+'])}` : '';
    case 5: return outOk ? `${neg(r)}-o ${pick(r, [...GEN_IFACES, 'eth+', '+'])}` : '';
    case 6: return `${neg(r)}-f`;
    case 7: {
      const p = pick(r, ['tcp', 'udp', 'icmp', '47', 'all']);
      return `${p === 'all' ? '' : neg(r)}-p ${p}`;
    }
    case 8: case 9: case 10: {
      const p = pick(r, ['tcp', 'tcp', 'udp', 'icmp']);
      if (p === 'icmp') return `-p icmp -m icmp ${neg(r)}--icmp-type ${pick(r, ['any', 'echo-request', '8', '3/4', '0', '11/0'])}`;
      const opts = [() => `${neg(r)}--sport ${portRange(r)}`, () => `${neg(r)}--dport ${portRange(r)}`];
      if (p === 'tcp') {
        opts.push(() => `${neg(r)}--tcp-flags ${pick(r, ['SYN,ACK SYN', 'FIN,SYN,RST,ACK SYN', 'ALL NONE', 'SYN,RST RST', 'ACK ACK'])}`);
        opts.push(() => `${neg(r)}--tcp-option ${pick(r, [2, 4, 8])}`);
      }
      return `-p ${p} -m ${p} ${someOf(r, 3, opts).join(' ')}`;
    }
    case 11: {
      const ports = new Set<string>();
      for (let i = r.int(1, 4); i > 0; i--) ports.add(portRange(r, true));
      return `-p ${pick(r, ['tcp', 'udp'])} -m multiport ${neg(r)}${pick(r, ['--dports', '--sports', '--ports'])} ${[...ports].join(',')}`;
    }
    case 12: case 13: {
      const m = chance(r, 0.5) ? `/${pick(r, [0xff, 0x4000, 0xffff0000])}` : '';
      return `-m mark ${neg(r)}--mark ${pick(r, GEN_MARKS)}${m}`;
    }
    case 14: {
      const [lo, hi] = [pick(r, GEN_ADDRS), pick(r, GEN_ADDRS)].sort((x, y) => ip2n(x) - ip2n(y));
      return `-m iprange ${neg(r)}${pick(r, ['--src-range', '--dst-range'])} ${lo}-${hi}`;
    }
    case 15: {
      const a = r.int(0, 120);
      return `-m length ${neg(r)}--length ${a}:${a + r.int(0, 1500)}`;
    }
    case 16: return `-m ttl ${pick(r, ['--ttl-eq', '--ttl-lt', '--ttl-gt'])} ${pick(r, [1, 63, 64, 65, 255])}`;
    case 17: return pick(r, [`-m tos ${neg(r)}--tos ${pick(r, ['0x10/0x3f', '0x00/0xff', 'Minimize-Delay', '0x08'])}`, `-m dscp ${neg(r)}--dscp ${pick(r, [0, 10, 46, 63])}`]);
    case 18: {
      const n = chance(r, 0.25) ? '! ' : '';
      return `-m addrtype ${n}${pick(r, ['--src-type', '--dst-type'])} ${pick(r, ['LOCAL', 'BROADCAST', 'UNICAST', 'MULTICAST', 'LOCAL,BROADCAST'])}`;
    }
    case 19: return pick(r, [
      inOk ? `-m mac ${neg(r)}--mac-source ${pick(r, ['02:00:00:00:00:01', '52:54:00:12:34:56'])}` : '',
      `-m pkttype ${neg(r)}--pkt-type ${pick(r, ['unicast', 'broadcast', 'multicast'])}`,
      `-m comment --comment "${pick(r, ['x', 'kube svc'])}"`,
    ]);
    case 20: {
      const e = r.int(1, 4);
      return chance(r, 0.5) ? `-m statistic --mode nth ${neg(r)}--every ${e} --packet ${r.int(0, e - 1)}` : `-m statistic --mode random ${neg(r)}--probability ${pick(r, ['0.5', '0.25', '0.1'])}`;
    }
    default: {
      const states = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'].filter(() => chance(r, 0.4));
      if (states.length === 0) states.push('NEW');
      return pick(r, [`-m conntrack ${neg(r)}--ctstate ${states.join(',')}`, `-m state ${neg(r)}--state ${states.join(',')}`, `-m connmark ${neg(r)}--mark ${pick(r, GEN_MARKS)}/0xffff`]);
    }
  }
}

/**
 * Matches joined into one rule as iptables takes them: at most one of each
 * of -s -d -i -o -p -f (the first kept), one protocol (a later match's own
 * `-p` dropped when it agrees, the match dropped when it does not).
 */
export function joinMatches(ms: readonly string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  let proto = '';
  // A module given again is a new instance, and the options after it go to the
  // latest module that has them (xtables_find_match, command_default): a repeat
  // is left out when a module between would take its options (iptables refuses
  // `-m connmark --mark 1 -m mark --mark 2 -m connmark --mark 3`).
  const mods: { name: string; opts: string[] }[] = [];
  const moduleOf = (m: string): { name: string; opts: string[] } => ({ name: /-m (\S+)/.exec(m)?.[1] ?? '', opts: [...(m.match(/--[\w-]+/g) ?? [])] });
  for (const m of ms) {
    if (!m) continue;
    const mod = moduleOf(m);
    if (mod.name) {
      const last = mods.map((x) => x.name).lastIndexOf(mod.name);
      if (last >= 0 && mods.slice(last + 1).some((x) => x.opts.some((o) => mod.opts.includes(o)))) continue;
    }
    const base = /^(?:! )?(-[sdiopf])\b/.exec(m)?.[1];
    const p = /-p (\w+)/.exec(m)?.[1];
    if (base && seen.has(base)) continue;
    if (p !== undefined) {
      if (proto && proto !== p) continue;
      if (proto && base === '-p') continue;
      if (!base && proto) {
        out.push(m.replace(/^-p \w+ /, ''));
        continue;
      }
      proto = p;
      seen.add('-p');
    }
    if (base) seen.add(base);
    if (mod.name) mods.push(mod);
    out.push(m);
  }
  return out.join(' ');
}

/** A rule's matches (up to four). */
function ruleMatches(r: Rand, hooks: readonly string[]): string {
  const ms: string[] = [];
  for (let n = r.int(0, 4); n > 0; n--) ms.push(oneMatch(r, hooks));
  return joinMatches(ms);
}

const TARGETS_ANY = ['-j ACCEPT', '-j DROP', '-j RETURN', '', '-j MARK --set-xmark 0x1/0xff', '-j MARK --or-mark 0x4000', '-j MARK --set-mark 0x7',
  '-j CONNMARK --set-xmark 0x10/0xff', '-j CONNMARK --save-mark', '-j CONNMARK --restore-mark', '-j LOG --log-prefix "in: "',
  '-j NFLOG --nflog-group 3', '-j NFQUEUE --queue-num 5', '-j NFQUEUE --queue-num 2 --queue-bypass'];

function natTargets(hook: string): string[] {
  if (hook === 'PREROUTING' || hook === 'OUTPUT') return ['-j DNAT --to-destination 10.0.0.2', '-j DNAT --to-destination 10.1.2.3-10.1.2.9', '-j REDIRECT'];
  const snat = ['-j SNAT --to-source 192.168.1.10', '-j SNAT --to-source 203.0.113.50 --random'];
  return hook === 'POSTROUTING' ? [...snat, '-j MASQUERADE'] : snat;
}

/** A one-table IPv4 ruleset of one of `tables` (default: filter twice as often as mangle, raw or nat). */
export function genRuleset(r: Rand, tables: readonly TableName[] = ['filter', 'filter', 'mangle', 'raw', 'nat']): GenRuleset {
  const table = pick(r, tables);
  const builtins = TABLE_CHAINS[table];
  const users = ['U1', 'U2', '__proto__'].slice(0, r.int(0, 3));
  const all = [...builtins, ...users];
  const lines = [`*${table}`];
  for (const [i, c] of all.entries()) lines.push(`:${c} ${i < builtins.length ? (table === 'nat' || chance(r, 0.5) ? 'ACCEPT' : 'DROP') : '-'} [0:0]`);
  for (const [i, c] of all.entries()) {
    const hooks = i < builtins.length ? [builtins[i]!] : builtins;
    const targets = table === 'nat' ? TARGETS_ANY.filter((t) => t !== '-j DROP') : [...TARGETS_ANY];
    if (table === 'filter') targets.push('-j REJECT', '-j REJECT --reject-with icmp-host-prohibited');
    if (table === 'raw') targets.push('-j TRACE', '-j NOTRACK', '-j CT --zone 3', '-j CT --notrack');
    if (table === 'nat' && i < builtins.length) targets.push(...natTargets(builtins[i]!), ...natTargets(builtins[i]!));
    for (let j = Math.max(i + 1, builtins.length); j < all.length; j++) targets.push(`-j ${all[j]}`, `-g ${all[j]}`, `-j ${all[j]}`);
    for (let n = r.int(0, 5); n > 0; n--) lines.push(`-A ${c} ${ruleMatches(r, hooks)} ${pick(r, targets)}`.replace(/ +/g, ' ').trimEnd());
  }
  lines.push('COMMIT', '');
  return { table, text: lines.join('\n'), chains: builtins };
}

/** A packet from the generator's pools, for builtin chain `chain`. */
export function genPacket(r: Rand, chain: string): FuzzPacket & { chain: string } {
  const hook = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].indexOf(chain);
  const a = () => (chance(r, 0.7) ? ip2n(pick(r, GEN_ADDRS)) : r.int(0, 0xffffffff));
  const port = () => (chance(r, 0.7) ? pick(r, GEN_PORTS) : r.int(0, 65535));
  return {
    ...DEFAULT_PACKET, chain,
    proto: pick(r, [6, 6, 17, 17, 1, 47]), src: a(), dst: a(), sport: port(), dport: port(),
    flags: chance(r, 0.8) ? pick(r, [0x02, 0x12, 0x10, 0x04, 0x01, 0x00, 0x3f]) : r.int(0, 255),
    icmpType: pick(r, [0, 3, 8, 11]), icmpCode: pick(r, [0, 1, 4]), ttl: pick(r, [1, 63, 64, 65, 255]),
    tos: pick(r, [0, 0x10, 0x08, 0xb8, 0x02, 0x03, 0x28]), frag: chance(r, 0.1), len: r.int(0, 64),
    iif: hook <= 2 ? pick(r, GEN_IFACES) : '', oif: hook >= 2 ? pick(r, GEN_IFACES) : '',
    mark: pick(r, GEN_MARKS), ct: pick(r, ['new', 'new', 'established', 'related', 'invalid', 'untracked'] as const),
  };
}
