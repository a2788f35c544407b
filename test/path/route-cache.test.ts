/**
 * The memo of IPv4 input routes (hooks/path/route-cache.ts) answers as
 * ip_route_input_slow() does: the same packets through one Ipv4Route on an
 * untraced, reused context (the memo) and through another on a traced one
 * (the full path every time) give the same route, drop, errno and tclassid,
 * on nodes with and without policy rules of their own (which select on
 * mark, input device, source, protocol and port), rp_filter strict and
 * loose, accept_local, src_valid_mark and send_redirects; and the same for
 * IPv6 (Ipv6Route), strict (link-local, multicast) destinations included.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildNode } from '../../hooks/snapshot/read.js';
import { Ipv4Route } from '../../hooks/path/ipv4-route.js';
import { Ipv6Route } from '../../hooks/path/ipv6-route.js';
import { newPathCtx, resetPathCtx, type InputRoute } from '../../hooks/path/ctx.js';
import type { Link, Node } from '../../hooks/snapshot/node.js';
import { M_MARK, M_RTCLASSID } from '../../vm/layout.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { runs } from '../helpers/runs.js';

const link = (ifindex: number, ifname: string, extra: object = {}) => ({ ifindex, ifname, flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether', ...extra });
const LINKS = [
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
  link(2, 'eth0', { addr_info: [{ family: 'inet', local: '192.168.1.10', prefixlen: 24, broadcast: '192.168.1.255' }] }),
  link(3, 'eth1', { mtu: 9000, addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 24, broadcast: '10.0.0.255' }] }),
];
const ROUTES = [
  { dst: '192.168.1.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.10', flags: [] },
  { dst: '10.0.0.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.1', flags: [] },
  { type: 'local', dst: '192.168.1.10', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '192.168.1.10', flags: [] },
  { type: 'broadcast', dst: '192.168.1.255', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.10', flags: [] },
  { type: 'local', dst: '10.0.0.1', dev: 'eth1', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '10.0.0.1', flags: [] },
  { type: 'broadcast', dst: '10.0.0.255', dev: 'eth1', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.1', flags: [] },
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] },
  { dst: 'default', gateway: '192.168.1.1', dev: 'eth0', flags: [] },
  { dst: '172.16.0.0/12', gateway: '10.0.0.254', dev: 'eth1', flags: [] },
  { type: 'unreachable', dst: '198.51.100.0/24', flags: [] },
  { dst: 'default', gateway: '10.0.0.253', dev: 'eth1', table: '100', flags: [] },
  { dst: '203.0.113.0/24', dev: 'eth1', table: '100', scope: 'link', flags: [] },
];
const DEFAULT_RULES = [{ priority: 0, src: 'all', table: 'local' }, { priority: 32766, src: 'all', table: 'main' }, { priority: 32767, src: 'all', table: 'default' }];
const CUSTOM_RULES = [
  DEFAULT_RULES[0],
  { priority: 100, src: 'all', fwmark: '0x4000', fwmask: '0x4000', table: '100' },
  { priority: 200, src: 'all', iif: 'eth1', ipproto: 'tcp', dport: 443, table: '100' },
  { priority: 300, src: '192.168.1.0', srclen: 24, ipproto: 'udp', sport: 53, action: 'prohibit' },
  { priority: 400, src: 'all', tos: '0x10', table: '100' },
  DEFAULT_RULES[1], DEFAULT_RULES[2],
];
const SYSCTL = [
  'net.ipv4.conf.all.forwarding = 1', 'net.ipv4.conf.eth0.forwarding = 1', 'net.ipv4.conf.eth1.forwarding = 1',
  'net.ipv4.conf.eth0.rp_filter = 1', 'net.ipv4.conf.eth1.rp_filter = 2', 'net.ipv4.conf.eth1.accept_local = 1',
  'net.ipv4.conf.all.src_valid_mark = 1', 'net.ipv4.conf.all.send_redirects = 1', '',
].join('\n');

function nodeOf(rules: object[], sysctl: string): Node {
  return buildNode('', new Map([
    ['ip-addr.json', JSON.stringify(LINKS)], ['ip-route.json', JSON.stringify(ROUTES)], ['ip-rule.json', JSON.stringify(rules)], ['sysctl.txt', sysctl],
  ]));
}

const ADDRS = ['192.168.1.10', '192.168.1.20', '192.168.1.255', '10.0.0.1', '10.0.0.7', '10.0.0.255', '172.16.5.5', '8.8.8.8', '198.51.100.9', '203.0.113.4', '127.0.0.1', '224.0.0.1', '239.1.1.1', '0.0.0.0', '255.255.255.255'];

interface Case { src: string; dst: string; proto: 'tcp' | 'udp' | 'icmp'; sport: number; dport: number; tos: number; mark: number; iif: 'eth0' | 'eth1' | 'lo' }
/**
 * Packets from a few address pairs and devices, each with its own mark, TOS,
 * protocol and ports: packets that share what the memo always keys on and
 * differ in what it keys on only with policy rules of the node's own.
 */
const casesArb: fc.Arbitrary<Case[]> = fc
  .array(fc.record({ src: fc.constantFrom(...ADDRS), dst: fc.constantFrom(...ADDRS), iif: fc.constantFrom('eth0' as const, 'eth1' as const, 'lo' as const) }), { minLength: 1, maxLength: 4 })
  .chain((bases) => fc.array(fc.record({
    base: fc.constantFrom(...bases), proto: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const),
    sport: fc.constantFrom(53, 40000), dport: fc.constantFrom(443, 80), tos: fc.constantFrom(0, 0x10, 0x1c), mark: fc.constantFrom(0, 0x4000, 7),
  }).map(({ base, ...c }) => ({ ...base, ...c })), { minLength: 1, maxLength: 40 }));

/** What a route decision is, for comparison: the kind and its fields, the drop's reason, detail and errno, and M_RTCLASSID. */
function describeRoute(r: InputRoute, tclassid: number): string {
  if (r.kind === 'drop') return `drop ${r.fate.kind} ${'reason' in r.fate ? r.fate.reason : ''} ${'detail' in r.fate ? r.fate.detail : ''} errno ${r.errno ?? '-'} t${tclassid}`;
  if (r.kind === 'local') return `local ${r.cast} t${tclassid}`;
  return `forward ${r.dev} gw ${r.gateway ?? '-'} mtu ${r.mtu} redirect ${r.redirect ?? '-'} t${tclassid}`;
}

function routeOf(route: Ipv4Route | Ipv6Route, node: Node, c: Case, traced: boolean, reused: boolean): string {
  const bytes = ipPacket(c.src, c.dst, c.proto === 'icmp' ? { proto: 'icmp', type: 8 } : { proto: c.proto, sport: c.sport, dport: c.dport });
  if (c.src.includes(':')) {
    bytes[0] = 0x60 | (c.tos >>> 4);
    bytes[1] = ((c.tos & 0x0f) << 4) | (bytes[1]! & 0x0f);
  } else bytes[1] = c.tos;
  const pkt = packet(bytes);
  pkt.meta[M_MARK] = c.mark;
  pkt.meta[M_RTCLASSID] = -1;
  const ctx = reused ? resetPathCtx(newPathCtx(true), !traced, undefined, undefined) : newPathCtx(!traced);
  const r = route.routeInput(pkt, node.links.get(c.iif) as Link, ctx);
  return describeRoute(r, pkt.meta[M_RTCLASSID]!);
}

/**
 * Per pair of cases that differ in one input: the full path answers them
 * differently, and a memoising route (a fresh one from `make`) gives the
 * full path's answers, each case twice, in turn.
 */
function expectKeyed(make: () => Ipv4Route | Ipv6Route, node: Node, base: Case, pairs: [Partial<Case>, Partial<Case>][]): void {
  for (const [a, b] of pairs) {
    const ca = { ...base, ...a }, cb = { ...base, ...b };
    const full = make();
    const want = [routeOf(full, node, ca, true, true), routeOf(full, node, cb, true, true)];
    expect(want[0]).not.toBe(want[1]);
    const memo = make();
    expect([routeOf(memo, node, ca, false, true), routeOf(memo, node, cb, false, true), routeOf(memo, node, ca, false, true), routeOf(memo, node, cb, false, true)]).toEqual([...want, ...want]);
  }
}

describe('the input route memo', () => {
  for (const [name, rules, sysctl] of [
    ['default rules, rp_filter off', DEFAULT_RULES, 'net.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.eth0.forwarding = 1\nnet.ipv4.conf.eth1.forwarding = 1\n'],
    ['rules of its own, rp_filter strict and loose, accept_local, src_valid_mark', CUSTOM_RULES, SYSCTL],
  ] as const) {
    it(`answers as the full path does: ${name}`, () => {
      fc.assert(fc.property(casesArb, fc.boolean(), (cases, reused) => {
        const node = nodeOf([...rules], sysctl);
        const memo = new Ipv4Route(node);
        const full = new Ipv4Route(node);
        // each case twice: the second meets the memo filled by the first
        for (const c of [...cases, ...cases]) expect(routeOf(memo, node, c, false, reused)).toBe(routeOf(full, node, c, true, reused));
      }), { numRuns: runs(150) });
    });
  }

  it('keys on each input that changes the answer', () => {
    const node = nodeOf([...CUSTOM_RULES], SYSCTL);
    const base: Case = { src: '8.8.8.8', dst: '172.16.5.5', proto: 'tcp', sport: 40000, dport: 80, tos: 0, mark: 0, iif: 'eth1' };
    // each pair differs in one input only, and the full path answers the two differently
    const pairs: [Partial<Case>, Partial<Case>][] = [
      [{ dport: 80 }, { dport: 443 }], [{ proto: 'tcp', dport: 443 }, { proto: 'udp', dport: 443 }], [{ mark: 0 }, { mark: 0x4000 }],
      [{ tos: 0 }, { tos: 0x10 }], [{ iif: 'eth1', dport: 443 }, { iif: 'eth0', dport: 443 }], [{ dst: '172.16.5.5' }, { dst: '203.0.113.4' }],
      [{ iif: 'eth0', src: '8.8.8.8' }, { iif: 'eth0', src: '10.0.0.7' }],
    ];
    expectKeyed(() => new Ipv4Route(node), node, base, pairs);
  });

  it('is emptied when a routing table changes, and keeps its answers otherwise', () => {
    const node = nodeOf(DEFAULT_RULES, 'net.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.eth0.forwarding = 1\nnet.ipv4.conf.eth1.forwarding = 1\n');
    const route = new Ipv4Route(node);
    const c: Case = { src: '192.168.1.20', dst: '8.8.8.8', proto: 'tcp', sport: 40000, dport: 443, tos: 0, mark: 0, iif: 'eth0' };
    expect(routeOf(route, node, c, false, true)).toBe('forward eth0 gw 192.168.1.1 mtu 1500 redirect 3232235777 t0');
    // an answer comes from the memo: a link's MTU (which a snapshot never changes, so the memo does not watch it) is not read again
    const eth0 = node.links.get('eth0') as { mtu: number };
    eth0.mtu = 1400;
    expect(routeOf(route, node, c, false, true)).toBe('forward eth0 gw 192.168.1.1 mtu 1500 redirect 3232235777 t0');
    expect(routeOf(route, node, c, true, true)).toBe('forward eth0 gw 192.168.1.1 mtu 1400 redirect 3232235777 t0');
    // a route added to a table empties it
    node.fib4.addRoute({ ...node.fib4.table(254).routes().find((r) => r.plen === 12)!, dst: { family: 4, w: Uint32Array.of(0x08080800) }, plen: 24 });
    expect(routeOf(route, node, c, false, true)).toBe('forward eth1 gw 10.0.0.254 mtu 9000 redirect -1 t0');
  });
});

const LINKS6 = [
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', addr_info: [{ family: 'inet6', local: '::1', prefixlen: 128, scope: 'host' }] },
  link(2, 'eth0', { addr_info: [{ family: 'inet6', local: '2001:db8:1::10', prefixlen: 64 }, { family: 'inet6', local: 'fe80::10', prefixlen: 64, scope: 'link' }] }),
  link(3, 'eth1', { mtu: 9000, addr_info: [{ family: 'inet6', local: '2001:db8:2::1', prefixlen: 64 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] }),
];
const ROUTES6 = [
  { dst: '2001:db8:1::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
  { dst: '2001:db8:2::/64', dev: 'eth1', protocol: 'kernel', metric: 256, flags: [] },
  { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
  { dst: 'fe80::/64', dev: 'eth1', protocol: 'kernel', metric: 256, flags: [] },
  { type: 'local', dst: '::1', table: 'local', dev: 'lo', protocol: 'kernel', metric: 0, flags: [] },
  { type: 'local', dst: '2001:db8:1::10', table: 'local', dev: 'eth0', protocol: 'kernel', metric: 0, flags: [] },
  { type: 'local', dst: 'fe80::10', table: 'local', dev: 'eth0', protocol: 'kernel', metric: 0, flags: [] },
  { type: 'local', dst: '2001:db8:2::1', table: 'local', dev: 'eth1', protocol: 'kernel', metric: 0, flags: [] },
  { type: 'local', dst: 'fe80::1', table: 'local', dev: 'eth1', protocol: 'kernel', metric: 0, flags: [] },
  { type: 'multicast', dst: 'ff00::/8', table: 'local', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
  { type: 'multicast', dst: 'ff00::/8', table: 'local', dev: 'eth1', protocol: 'kernel', metric: 256, flags: [] },
  { dst: 'default', gateway: 'fe80::1:1', dev: 'eth0', metric: 1024, flags: [] },
  { dst: '2001:db8:99::/48', gateway: 'fe80::2:2', dev: 'eth1', metric: 1024, flags: [] },
  { type: 'unreachable', dst: '2001:db8:dead::/48', dev: 'lo', metric: 1024, flags: [] },
  { dst: 'default', gateway: 'fe80::3:3', dev: 'eth1', table: '100', metric: 1024, flags: [] },
];
const RULES6 = [
  { priority: 0, src: 'all', table: 'local' },
  { priority: 100, src: 'all', fwmark: '0x4000', fwmask: '0x4000', table: '100' },
  { priority: 200, src: 'all', iif: 'eth1', ipproto: 'tcp', dport: 443, table: '100' },
  { priority: 300, src: '2001:db8:1::', srclen: 64, tos: '0x10', table: '100' },
  { priority: 32766, src: 'all', table: 'main' },
];
const ADDRS6 = ['2001:db8:1::10', '2001:db8:1::20', '2001:db8:2::1', '2001:db8:2::7', '2001:db8:99::5', '2001:db8:dead::1', '2001:4860::8888', 'fe80::10', 'fe80::99', '::1', 'ff02::1', 'ff05::2'];

function node6(rules: object[]): Node {
  return buildNode('', new Map([['ip-addr.json', JSON.stringify(LINKS6)], ['ip6-route.json', JSON.stringify(ROUTES6)], ['ip6-rule.json', JSON.stringify(rules)]]));
}

describe('the input route memo (IPv6)', () => {
  const cases6: fc.Arbitrary<Case[]> = fc
    .array(fc.record({ src: fc.constantFrom(...ADDRS6), dst: fc.constantFrom(...ADDRS6) }), { minLength: 1, maxLength: 4 })
    .chain((bases) => fc.array(fc.record({
      base: fc.constantFrom(...bases), proto: fc.constantFrom('tcp' as const, 'udp' as const), iif: fc.constantFrom('eth0' as const, 'eth1' as const, 'lo' as const),
      sport: fc.constantFrom(53, 40000), dport: fc.constantFrom(443, 80), tos: fc.constantFrom(0, 0x10, 0x1c), mark: fc.constantFrom(0, 0x4000, 7),
    }).map(({ base, ...c }) => ({ ...base, ...c })), { minLength: 1, maxLength: 40 }));
  for (const [name, rules] of [['default rules', [RULES6[0], RULES6[4]]], ['rules of its own', RULES6]] as const) {
    it(`answers as the full path does: ${name}`, () => {
      fc.assert(fc.property(cases6, fc.boolean(), (cases, reused) => {
        const node = node6([...rules]);
        const memo = new Ipv6Route(node);
        const full = new Ipv6Route(node);
        for (const c of [...cases, ...cases]) expect(routeOf(memo, node, c, false, reused)).toBe(routeOf(full, node, c, true, reused));
      }), { numRuns: runs(150) });
    });
  }

  it('keys on each input that changes the answer', () => {
    const node = node6([...RULES6]);
    const base: Case = { src: '2001:db8:1::20', dst: '2001:4860::8888', proto: 'tcp', sport: 40000, dport: 80, tos: 0, mark: 0, iif: 'eth1' };
    const pairs: [Partial<Case>, Partial<Case>][] = [
      [{ dport: 80 }, { dport: 443 }], [{ dport: 443 }, { dport: 443, proto: 'udp' }], [{ mark: 0 }, { mark: 0x4000 }], [{ tos: 0 }, { tos: 0x10 }],
      [{ iif: 'eth1', dport: 443 }, { iif: 'eth0', dport: 443 }], [{ dst: '2001:4860::8888' }, { dst: '2001:db8:99::5' }], [{ tos: 0x10 }, { tos: 0x10, src: '2001:db8:2::7' }],
      [{ dst: '2001:db8:1::10' }, { dst: '2001:db8:1::20' }],
    ];
    expectKeyed(() => new Ipv6Route(node), node, base, pairs);
  });
});
