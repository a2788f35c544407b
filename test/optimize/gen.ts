/**
 * Generators for the optimizer's properties: IPv4 and IPv6 filter rulesets
 * whose chains hold long runs of classifiable rules (addresses with prefix
 * and non-contiguous masks, inverted or not; -p with and without `!`; tcp
 * and udp ports, ranges, inversions, flags; -i/-o names and prefixes;
 * comments; pure matches such as mark, length, conntrack), broken now and
 * then by a rule the classifier does not model,
 * with jumps, gotos and returns into user chains that have runs of their
 * own; and packets drawn from the same value pools (first and later
 * fragments, truncated layer-4 headers, every interface).
 */
import fc from 'fast-check';
import { LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../vm/packet.js';
import { M_HOOK, M_MARK, M_NFPROTO } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_FORWARD } from '../../core/netfilter.js';
import { Op, OP_INFO, Rec } from '../../vm/opcodes.js';
import type { Program } from '../../vm/program.js';

export type Fam = 'ip' | 'ip6';

export const ADDRS: Record<Fam, string[]> = {
  ip: ['10.0.0.1', '10.0.0.2', '10.1.2.3', '10.1.255.3', '192.168.1.10', '203.0.113.50', '0.0.0.0', '255.255.255.255', '128.0.0.1'],
  ip6: ['2001:db8::1', '2001:db8::2', '2001:db8:0:1::5', '2001:db8:ffff::1', 'fe80::1', '::1', '::', 'ffff:ffff::ffff', '8000::1'],
};
const PLENS: Record<Fam, number[]> = { ip: [0, 1, 7, 8, 16, 23, 24, 31, 32], ip6: [0, 1, 16, 32, 33, 48, 64, 96, 120, 128] };
const ODD_MASKS: Record<Fam, string[]> = {
  ip: ['255.0.255.0', '255.255.0.255', '0.0.0.255', '240.0.0.15'],
  ip6: ['ffff:0:ffff::', 'ffff:ffff::ffff', '0:0:0:0:ffff::', 'ffff:ffff:ffff:ffff:ffff:ffff:0:ff00'],
};
export const IFACES = ['eth0', 'eth1', 'eth10', 'cni0', 'lo', 'veth12', 'veth99', 'e'];
const IFPATS = [...IFACES, 'eth+', 'veth+', 'e+', 've+', 'eth1+', '+'];
export const PORTS = [0, 1, 22, 53, 80, 443, 1024, 8080, 65534, 65535];
const FLAGS = ['SYN,ACK SYN', 'FIN,SYN,RST,ACK SYN', 'ALL NONE', 'SYN,RST RST', 'ACK ACK', 'ALL ALL'];

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const neg = fc.boolean().map((b) => (b ? '! ' : ''));

const addr = (f: Fam) =>
  fc.oneof(
    pick(ADDRS[f]),
    fc.tuple(pick(ADDRS[f]), pick(PLENS[f])).map(([a, l]) => `${a}/${l}`),
    fc.tuple(pick(ADDRS[f]), pick(ODD_MASKS[f])).map(([a, m]) => `${a}/${m}`),
  );
const port = fc.oneof(pick(PORTS), fc.integer({ min: 0, max: 65535 }));
const ports = fc.oneof(port.map(String), fc.tuple(port, port).map(([a, b]) => `${Math.min(a, b)}:${Math.max(a, b)}`), port.map((p) => `:${p}`), port.map((p) => `${p}:`));

/** The tests of one classifiable rule. */
function simpleRule(f: Fam) {
  const icmp = f === 'ip' ? 'icmp' : 'icmpv6';
  const l4 = fc.oneof(
    { weight: 2, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.tuple(neg, pick(['tcp', 'udp', icmp, '47'])).map(([n, p]) => `${n}-p ${p}`) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.option(fc.tuple(neg, ports)), fc.option(fc.tuple(neg, ports)), fc.option(fc.tuple(neg, pick(FLAGS))), fc.boolean())
        .map(([s, d, fl, syn]) => `-p tcp -m tcp${s ? ` ${s[0]}--sport ${s[1]}` : ''}${d ? ` ${d[0]}--dport ${d[1]}` : ''}${fl ? ` ${fl[0]}--tcp-flags ${fl[1]}` : syn ? ' --syn' : ''}`),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.option(fc.tuple(neg, ports)), fc.option(fc.tuple(neg, ports)))
        .map(([s, d]) => `-p udp -m udp${s ? ` ${s[0]}--sport ${s[1]}` : ''}${d ? ` ${d[0]}--dport ${d[1]}` : ''}`),
    },
  );
  return fc
    .tuple(
      fc.option(fc.tuple(neg, addr(f)), { freq: 2 }),
      fc.option(fc.tuple(neg, addr(f)), { freq: 2 }),
      fc.option(fc.tuple(neg, pick(IFPATS)), { freq: 3 }),
      fc.option(fc.tuple(neg, pick(IFPATS)), { freq: 3 }),
      l4,
      fc.option(pick(['x', 'kube svc']), { freq: 4 }),
      fc.option(fc.tuple(pick(PURE[f]), fc.boolean()), { freq: 3 }),
    )
    .map(([s, d, i, o, p, c, pure]) =>
      [
        s ? `${s[0]}-s ${s[1]}` : '',
        d ? `${d[0]}-d ${d[1]}` : '',
        i && !(i[0] && i[1] === '+') ? `${i[0]}-i ${i[1]}` : '',
        o && !(o[0] && o[1] === '+') ? `${o[0]}-o ${o[1]}` : '',
        // a pure match before or after the layer-4 match (it is a test of every packet to the classifier)
        pure && pure[1] ? pure[0] : '',
        p,
        pure && !pure[1] ? pure[0] : '',
        c ? `-m comment --comment "${c}"` : '',
      ].filter(Boolean).join(' '),
    );
}

/** Pure matches (MatchModule.pure) whose outcome differs between the generated packets. */
const PURE: Record<Fam, string[]> = {
  ip: ['-m mark --mark 0x1/0xff', '-m mark ! --mark 0x4000/0x4000', '-m length --length 0:40', '-m length ! --length 21:28', '-m iprange --src-range 10.0.0.1-10.1.2.3',
    '-m iprange ! --dst-range 0.0.0.0-127.255.255.255', '-m conntrack --ctstate INVALID', '-m conntrack ! --ctstate NEW,INVALID', '-m state --state NEW', '-m ttl --ttl-gt 3'],
  ip6: ['-m mark --mark 0x1/0xff', '-m mark ! --mark 0x4000/0x4000', '-m length --length 0:60', '-m length ! --length 41:48', '-m iprange --src-range 2001:db8::1-2001:db8:0:1::5',
    '-m conntrack --ctstate INVALID', '-m conntrack ! --ctstate NEW,INVALID', '-m hl --hl-lt 65'],
};

/** A rule the classifier does not model: it ends a run. */
function otherRule(f: Fam) {
  return fc.constantFrom(
    '-m mark --mark 0x1/0xff',
    '-p tcp -m multiport --dports 22,80,443',
    '-m statistic --mode nth --every 2 --packet 0',
    '-m length --length 0:100',
    ...(f === 'ip' ? ['-f', '! -f -p tcp'] : []),
    '! -i +',
  );
}

const TARGETS = ['-j ACCEPT', '-j DROP', '-j RETURN', '', '', '-j MARK --set-xmark 0x1/0xff', '-j MARK --or-mark 0x4000', '-j LOG --log-prefix "x: "', '-j NFQUEUE --queue-num 40', '-j REJECT'];

export interface OptRuleset {
  family: Fam;
  text: string;
}

/** A filter table: FORWARD with a long body, user chains U1 (from FORWARD) and U2 (from both). */
export const optRuleset: fc.Arbitrary<OptRuleset> = fc.constantFrom<Fam>('ip', 'ip6').chain((f) => {
  const rule = (jumps: string[]) =>
    fc.tuple(
      fc.oneof({ weight: 14, arbitrary: simpleRule(f) }, { weight: 1, arbitrary: otherRule(f) }),
      fc.oneof({ weight: 6, arbitrary: pick(TARGETS.map((t) => (f === 'ip6' && t === '-j REJECT' ? '-j DROP' : t))) }, { weight: 1, arbitrary: jumps.length ? pick(jumps) : fc.constant('-j ACCEPT') }),
    ).map(([m, t]) => `${m} ${t}`.trim());
  return fc
    .tuple(
      fc.array(rule(['-j U1', '-g U1', '-j U2', '-g U2']), { minLength: 16, maxLength: 80 }),
      fc.array(rule(['-j U2', '-g U2']), { minLength: 0, maxLength: 40 }),
      fc.array(rule([]), { minLength: 0, maxLength: 24 }),
      fc.constantFrom('ACCEPT', 'DROP'),
    )
    .map(([fw, u1, u2, policy]) => {
      const lines = ['*filter', ':INPUT ACCEPT [0:0]', `:FORWARD ${policy} [0:0]`, ':OUTPUT ACCEPT [0:0]', ':U1 - [0:0]', ':U2 - [0:0]'];
      for (const [c, rs] of [['FORWARD', fw], ['U1', u1], ['U2', u2]] as const) for (const r of rs) lines.push(`-A ${c} ${r}`.trimEnd());
      lines.push('COMMIT', '');
      return { family: f, text: lines.join('\n') };
    });
});

export interface OptPacket {
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  tcpFlags: number;
  /** IPv4: the 13-bit offset field; IPv6: the fragment offset in 8-byte units, -1 = no fragment header. */
  frag: number;
  /** Bytes of the layer-4 header kept (undefined: all). */
  truncate: number | undefined;
  iif: string;
  oif: string;
  mark: number;
}

export const optPacket = (f: Fam): fc.Arbitrary<OptPacket> =>
  fc.record({
    src: fc.oneof(pick(ADDRS[f]), f === 'ip' ? fc.ipV4() : fc.ipV6()),
    dst: fc.oneof(pick(ADDRS[f]), f === 'ip' ? fc.ipV4() : fc.ipV6()),
    proto: fc.constantFrom(6, 6, 6, 17, 17, f === 'ip' ? 1 : 58, 47),
    sport: port,
    dport: port,
    tcpFlags: fc.oneof(pick([0x02, 0x12, 0x10, 0x04, 0x01, 0x00, 0x3f, 0xff]), fc.integer({ min: 0, max: 255 })),
    frag: f === 'ip' ? fc.constantFrom(0, 0, 0, 0, 0, 1, 185) : fc.constantFrom(-1, -1, -1, -1, 0, 1, 185),
    truncate: fc.option(fc.integer({ min: 0, max: 19 }), { freq: 6 }).map((v) => v ?? undefined),
    iif: pick([...IFACES, '', 'eth100']),
    oif: pick([...IFACES, '', 'cni']),
    mark: fc.constantFrom(0, 1, 0x4000),
  });

function be16(v: number): number[] {
  return [(v >> 8) & 255, v & 255];
}

function v6bytes(a: string): number[] {
  const [l, r] = a.split('::') as [string, string | undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((x) => parseInt(x, 16)) : []);
  const left = parse(l);
  const right = parse(r);
  const words = r === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return words.flatMap((w) => be16(w));
}

/** Raw IP bytes of a packet (checksums are not checked by anything here). */
export function optFrame(f: Fam, p: OptPacket): Uint8Array {
  let l4: number[];
  if (p.proto === 6) l4 = [...be16(p.sport), ...be16(p.dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, p.tcpFlags, 0xfa, 0xf0, 0, 0, 0, 0];
  else if (p.proto === 17) l4 = [...be16(p.sport), ...be16(p.dport), 0, 8, 0, 0];
  else if (p.proto === 1 || p.proto === 58) l4 = [8, 0, 0, 0, 0, 1, 0, 1];
  else l4 = [0, 0, 0x08, 0x00];
  if (p.truncate !== undefined) l4 = l4.slice(0, p.truncate);
  if (f === 'ip') {
    const ip = new Uint8Array(20 + l4.length);
    ip[0] = 0x45;
    ip.set(be16(ip.length), 2);
    ip.set(be16(p.frag), 6);
    ip[8] = 64;
    ip[9] = p.proto;
    ip.set(p.src.split('.').map(Number), 12);
    ip.set(p.dst.split('.').map(Number), 16);
    ip.set(l4, 20);
    return ip;
  }
  const fh = p.frag >= 0 ? [p.proto, 0, ...be16(p.frag << 3), 0, 0, 0, 1] : [];
  const ip = new Uint8Array(40 + fh.length + l4.length);
  ip[0] = 0x60;
  ip.set(be16(fh.length + l4.length), 4);
  ip[6] = p.frag >= 0 ? 44 : p.proto;
  ip[7] = 64;
  ip.set(v6bytes(p.src), 8);
  ip.set(v6bytes(p.dst), 24);
  ip.set([...fh, ...l4], 40);
  return ip;
}

/** The packet at FORWARD, decoded, with its devices and mark. */
export function optPacketOf(f: Fam, g: OptPacket): Packet {
  const pkt = new Packet(256);
  pkt.setFrame(optFrame(f, g));
  decodePacket(pkt, LINKTYPE_RAW);
  pkt.meta[M_NFPROTO] = f === 'ip' ? NFPROTO_IPV4 : NFPROTO_IPV6;
  pkt.meta[M_HOOK] = NF_INET_FORWARD;
  if (g.iif) setDevice(pkt, 'in', 2, g.iif);
  if (g.oif) setDevice(pkt, 'out', 3, g.oif);
  pkt.meta[M_MARK] = g.mark;
  return pkt;
}
/** Classify records in a program. */
export function classifiers(prog: Program): number {
  let n = 0;
  const code = prog.code;
  for (let pc = 0; pc < code.length; ) {
    const w = code[pc]!;
    if ((w & Rec.OP_MASK) !== Op.RULE) {
      pc++;
      continue;
    }
    const next = pc + (w >>> 8);
    for (let e = pc + Rec.RULE_WORDS; e < next; e += OP_INFO[code[e]! & Rec.OP_MASK]!.size) if ((code[e]! & Rec.OP_MASK) === Op.CLASSIFY) n++;
    pc = next;
  }
  return n;
}

