/**
 * Policy routing and address types against the kernel's rules
 * (net/core/fib_rules.c, net/ipv4/fib_trie.c, fib_frontend.c on 6.18).
 */
import { describe, expect, it } from 'vitest';
import { buildNode } from '../../hooks/snapshot/read.js';
import fc from 'fast-check';
import { addrType, deriveRoutes4, fibLookup, isLocalAddress, formatAddr, parseAddr, EACCES, EHOSTUNREACH, EINVAL, ENETUNREACH, EAGAIN, FIB_PROPS_ERROR, FibTable, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, type FibResult, type Route } from '../../hooks/route/index.js';
import { runs } from '../helpers/runs.js';
import { NodeXtFib } from '../../hooks/xt-fib.js';

const link = (ifindex: number, ifname: string, extra: object = {}) => ({ ifindex, ifname, flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether', ...extra });
const LINKS = [
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
  link(2, 'eth0', { addr_info: [{ family: 'inet', local: '192.168.1.10', prefixlen: 24, broadcast: '192.168.1.255' }] }),
  link(3, 'eth1', { group: 7, addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 24 }, { family: 'inet', local: '10.0.0.9', prefixlen: 24 }] }),
];

function node(rules: object[] | undefined, routes: object[] | undefined, links: object[] = LINKS) {
  const files = new Map<string, string>([['ip-addr.json', JSON.stringify(links)]]);
  if (rules) files.set('ip-rule.json', JSON.stringify(rules));
  if (routes) files.set('ip-route.json', JSON.stringify(routes));
  return buildNode('', files);
}
const DEFAULT_RULES = [{ priority: 0, src: 'all', table: 'local' }, { priority: 32766, src: 'all', table: 'main' }, { priority: 32767, src: 'all', table: 'default' }];
const CONNECTED = [
  { dst: '192.168.1.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.10', flags: [] },
  { dst: '10.0.0.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.1', flags: [] },
  { type: 'local', dst: '192.168.1.10', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '192.168.1.10', flags: [] },
  { type: 'broadcast', dst: '192.168.1.255', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.10', flags: [] },
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] },
];
const gw = (r: FibResult) => (r.ok ? `${r.type} ${r.gateway ? formatAddr(r.gateway) : '-'} ${r.dev} t${r.table} p${r.rule?.pref}` : `${r.error} ${r.errno} p${r.rule?.pref ?? '-'}`);

describe('fibLookup: policy rules', () => {
  const routes = [
    ...CONNECTED,
    { dst: 'default', gateway: '192.168.1.1', dev: 'eth0', flags: [] },
    { dst: 'default', gateway: '10.0.0.254', dev: 'eth1', table: '100', flags: [] },
    { type: 'throw', dst: '172.16.0.0/12', table: '100', flags: [] },
    { dst: '8.8.8.0/24', gateway: '10.0.0.253', dev: 'eth1', table: '200', flags: [] },
    { type: 'unreachable', dst: '198.51.100.0/24', flags: [] },
    { type: 'prohibit', dst: '198.51.101.0/24', flags: [] },
    { type: 'blackhole', dst: '198.51.102.0/24', flags: [] },
  ];
  const rules = [
    DEFAULT_RULES[0],
    { priority: 100, src: 'all', fwmark: '0x4000', fwmask: '0x4000', table: '100' },
    { priority: 150, src: 'all', fwmark: '0x7', table: '100' },
    { priority: 200, src: '10.0.0.0', srclen: 24, goto: 300 },
    { priority: 250, src: 'all', table: '200' },
    { priority: 300, src: 'all', iif: 'eth1', ipproto: 'tcp', dport: 443, table: '100' },
    { priority: 400, src: 'all', dst: '203.0.113.7', action: 'prohibit' },
    { priority: 401, src: 'all', dst: '203.0.113.8', action: 'unreachable' },
    { priority: 402, src: 'all', dst: '203.0.113.9', action: 'blackhole' },
    { priority: 403, src: 'all', nop: null },
    { priority: 500, not: null, src: '192.168.0.0', srclen: 16, table: 'main', suppress_prefixlen: 0 },
    DEFAULT_RULES[1], DEFAULT_RULES[2],
  ];
  const n = node(rules, routes);

  it('rule order: local first, then marks, then main', () => {
    expect(gw(fibLookup(n, { daddr: '192.168.1.10' }))).toBe('local - eth0 t255 p0');
    expect(gw(fibLookup(n, { daddr: '1.1.1.1' }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '1.1.1.1', mark: 0x4000 }))).toBe('unicast 10.0.0.254 eth1 t100 p100');
  });

  it('fwmark with mask: ((mark ^ fwmark) & mask) == 0; without mask the mark must be exact', () => {
    expect(gw(fibLookup(n, { daddr: '1.1.1.1', mark: 0xc001 }))).toBe('unicast 10.0.0.254 eth1 t100 p100');
    expect(gw(fibLookup(n, { daddr: '1.1.1.1', mark: 0x8000 }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '1.1.1.1', mark: 0x7 }))).toBe('unicast 10.0.0.254 eth1 t100 p150');
    expect(gw(fibLookup(n, { daddr: '1.1.1.1', mark: 0xf }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
  });

  it('throw in a table falls through to the next rule', () => {
    expect(gw(fibLookup(n, { daddr: '172.16.1.1', mark: 0x4000 }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
  });

  it('a table without a matching route falls through; a matching one answers', () => {
    expect(gw(fibLookup(n, { daddr: '8.8.8.8' }))).toBe('unicast 10.0.0.253 eth1 t200 p250');
  });

  it('goto skips the rules in between (and tests its target)', () => {
    // from 10.0.0.0/24 jumps over 250 (table 200) to 300, which needs iif eth1 + tcp/443.
    expect(gw(fibLookup(n, { daddr: '8.8.8.8', saddr: '10.0.0.5' }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '8.8.8.8', saddr: '10.0.0.5', iif: 'eth1', proto: 6, dport: 443 }))).toBe('unicast 10.0.0.254 eth1 t100 p300');
    expect(gw(fibLookup(n, { daddr: '8.8.8.8', saddr: '10.0.0.5', iif: 'eth1', proto: 6, dport: 80 }))).toBe('unicast 192.168.1.1 eth0 t254 p32766');
  });

  it('rule actions unreachable / prohibit / blackhole; nop continues', () => {
    expect(gw(fibLookup(n, { daddr: '203.0.113.7' }))).toBe(`prohibit ${EACCES} p400`);
    expect(gw(fibLookup(n, { daddr: '203.0.113.8' }))).toBe(`unreachable ${ENETUNREACH} p401`);
    expect(gw(fibLookup(n, { daddr: '203.0.113.9' }))).toBe(`blackhole ${EINVAL} p402`);
  });

  it('route types unreachable / prohibit / blackhole answer with their errors', () => {
    // From 192.168.1.10 rule 500 (`not from 192.168/16`) does not match, so main at 32766 answers;
    // without a source it matches, and suppress_prefixlength does not apply to errors.
    const s = '192.168.1.10';
    expect(gw(fibLookup(n, { daddr: '198.51.100.1', saddr: s }))).toBe(`unreachable ${EHOSTUNREACH} p32766`);
    expect(gw(fibLookup(n, { daddr: '198.51.101.1', saddr: s }))).toBe(`prohibit ${EACCES} p32766`);
    expect(gw(fibLookup(n, { daddr: '198.51.102.1', saddr: s }))).toBe(`blackhole ${EINVAL} p32766`);
    expect(gw(fibLookup(n, { daddr: '198.51.100.1' }))).toBe(`unreachable ${EHOSTUNREACH} p500`);
  });

  it('suppress_prefixlength 0 ignores the default route; `not` inverts the selector', () => {
    // Rule 500 (not from 192.168/16, main, suppress /0): a source outside 192.168/16 reaching 1.1.1.1
    // finds only the default route there, suppressed; main at 32766 then answers.
    const r = fibLookup(n, { daddr: '1.1.1.1', saddr: '10.9.9.9' });
    expect(gw(r)).toBe('unicast 192.168.1.1 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '10.0.0.7', saddr: '10.9.9.9' }))).toBe('unicast - eth1 t254 p500');
  });

  it('no rule answers: ENETUNREACH', () => {
    const bare = node([DEFAULT_RULES[0]], CONNECTED);
    expect(gw(fibLookup(bare, { daddr: '1.1.1.1' }))).toBe(`noroute ${ENETUNREACH} p-`);
  });

  it('a rule naming a missing interface never matches (detached), `not` makes it match everything', () => {
    const m = node([DEFAULT_RULES[0], { priority: 10, src: 'all', iif: 'ghost0', table: '100' }, { priority: 11, not: null, src: 'all', iif: 'ghost1', action: 'prohibit' }, ...DEFAULT_RULES.slice(1)], routes);
    expect(gw(fibLookup(m, { daddr: '1.1.1.1' }))).toBe(`prohibit ${EACCES} p11`);
  });
});

describe('fibLookup: the local and main tables without custom rules (fib_lookup\'s one trie)', () => {
  const routes = [
    ...CONNECTED,
    { type: 'local', dst: '172.20.0.0/16', dev: 'lo', table: 'local', scope: 'host', flags: [] },
    { dst: '172.20.5.0/24', gateway: '10.0.0.254', dev: 'eth1', flags: [] },
    { dst: '172.20.7.0/24', gateway: '10.0.0.254', dev: 'eth1', flags: [] },
    { type: 'local', dst: '172.20.7.0/24', dev: 'lo', table: 'local', scope: 'host', metric: 10, flags: [] },
    { type: 'unreachable', dst: '198.51.100.0/24', flags: [] },
    { dst: '198.51.100.0/24', gateway: '10.0.0.253', dev: 'eth1', table: 'default', flags: [] },
    { type: 'throw', dst: '198.51.101.0/24', flags: [] },
    { dst: '198.51.101.0/24', gateway: '10.0.0.253', dev: 'eth1', table: 'default', flags: [] },
  ];

  it('the longest prefix of either table wins, a local route before a main one of its prefix; then the default table', () => {
    const n = node(DEFAULT_RULES, routes);
    expect(gw(fibLookup(n, { daddr: '172.20.5.9' }))).toBe('unicast 10.0.0.254 eth1 t254 p32766');
    // a local route found in the shared trie is the main table's answer (res->table; `ip route get` says no "table local")
    expect(gw(fibLookup(n, { daddr: '172.20.6.9' }))).toBe('local - lo t254 p0');
    // the local route first though its metric is higher: a leaf's aliases go by table id before priority
    expect(gw(fibLookup(n, { daddr: '172.20.7.9' }))).toBe('local - lo t254 p0');
    expect(gw(fibLookup(n, { daddr: '198.51.100.1' }))).toBe(`unreachable ${EHOSTUNREACH} p32766`);
    expect(gw(fibLookup(n, { daddr: '198.51.101.1' }))).toBe('unicast 10.0.0.253 eth1 t253 p32767');
    // inet_addr_type looks the local table up in the shared trie: the main route is found
    expect(addrType(n, '172.20.5.9')).toBe('unicast');
    expect(addrType(n, '172.20.6.9')).toBe('local');
  });

  it('address types without a device come from the FIB when the program\'s sets of host addresses would not tell them (NodeXtFib.localRanges)', () => {
    const v4 = (a: string) => a.split('.').reduce((x, b) => x * 256 + Number(b), 0);
    const plain = new NodeXtFib(node(DEFAULT_RULES, CONNECTED));
    expect(plain.localRanges).toBe(false);
    const mainLocal = new NodeXtFib(node(DEFAULT_RULES, [...CONNECTED, { type: 'local', dst: '10.80.0.0/16', dev: 'lo', scope: 'host', flags: [] }]));
    expect(mainLocal.localRanges).toBe(true);
    expect(mainLocal.inetDevAddrType(v4('10.80.1.1'), 0)).toBe(RTN_LOCAL);
    // with a custom rule the main table is not looked up for the local one
    const ruled = new NodeXtFib(node([DEFAULT_RULES[0], { priority: 100, src: '10.99.0.0', srclen: 16, table: 'main' }, ...DEFAULT_RULES.slice(1)], [...CONNECTED, { type: 'local', dst: '10.80.0.0/16', dev: 'lo', scope: 'host', flags: [] }]));
    expect(ruled.localRanges).toBe(false);
    expect(new NodeXtFib(node(DEFAULT_RULES, [...CONNECTED, { dst: '127.1.0.0/16', dev: 'eth0', flags: [] }])).localRanges).toBe(true);
    expect(new NodeXtFib(node(DEFAULT_RULES, [...CONNECTED, { type: 'unreachable', dst: '10.81.0.0/16', flags: [] }])).localRanges).toBe(false);
    const anyIp = new NodeXtFib(node(DEFAULT_RULES, routes));
    expect(anyIp.localRanges).toBe(true);
    expect(anyIp.inetDevAddrType(v4('172.20.6.9'), 0)).toBe(RTN_LOCAL);
    expect(anyIp.inetDevAddrType(v4('172.20.5.9'), 0)).toBe(RTN_UNICAST);
  });

  it('with a custom rule the rules are walked: the local table answers first', () => {
    const n = node([DEFAULT_RULES[0], { priority: 100, src: '10.99.0.0', srclen: 16, table: 'main' }, ...DEFAULT_RULES.slice(1)], routes);
    expect(gw(fibLookup(n, { daddr: '172.20.5.9' }))).toBe('local - lo t255 p0');
    expect(addrType(n, '172.20.5.9')).toBe('local');
    expect(gw(fibLookup(n, { daddr: '198.51.100.1' }))).toBe(`unreachable ${EHOSTUNREACH} p32766`);
  });
});

describe('fibLookup: one table', () => {
  it('longest prefix wins; among equal prefixes the lowest metric; TOS routes only for that TOS', () => {
    const n = node(DEFAULT_RULES, [
      ...CONNECTED,
      { dst: '10.9.0.0/16', gateway: '192.168.1.2', dev: 'eth0', metric: 50, flags: [] },
      { dst: '10.9.0.0/16', gateway: '192.168.1.3', dev: 'eth0', metric: 10, flags: [] },
      { dst: '10.9.1.0/24', gateway: '10.0.0.2', dev: 'eth1', metric: 100, flags: [] },
      { dst: '10.9.2.0/24', tos: '0x10', gateway: '10.0.0.3', dev: 'eth1', flags: [] },
    ]);
    expect(gw(fibLookup(n, { daddr: '10.9.5.5' }))).toBe('unicast 192.168.1.3 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '10.9.1.5' }))).toBe('unicast 10.0.0.2 eth1 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '10.9.2.5' }))).toBe('unicast 192.168.1.3 eth0 t254 p32766');
    expect(gw(fibLookup(n, { daddr: '10.9.2.5', tos: 0x10 }))).toBe('unicast 10.0.0.3 eth1 t254 p32766');
    // An output-device restriction skips routes through other devices and backtracks.
    expect(gw(fibLookup(n, { daddr: '10.9.1.5', oif: 'eth0' }))).toBe('unicast 192.168.1.3 eth0 t254 p32766');
  });

  it('multipath: fib_lookup gives the first live nexthop (a forwarded packet then takes the one its hash picks: route/multipath.ts)', () => {
    const n = node(DEFAULT_RULES, [...CONNECTED, { dst: '10.15.0.0/16', flags: [], nexthops: [{ gateway: '192.168.1.2', dev: 'eth0', weight: 1, flags: ['dead'] }, { gateway: '10.0.0.3', dev: 'eth1', weight: 2, flags: [] }] }]);
    expect(gw(fibLookup(n, { daddr: '10.15.1.1' }))).toBe('unicast 10.0.0.3 eth1 t254 p32766');
  });
});

describe('derived routes and address types', () => {
  const n = node(undefined, undefined);
  it('derives the local table and main as fib_add_ifaddr does (6.18)', () => {
    const dump = (t: number) => n.fib4.tables.get(t)!.routes().map((r) => `${['', 'unicast', 'local', 'broadcast'][r.type]} ${formatAddr(r.dst)}/${r.plen} ${r.nexthops[0]!.dev} src ${r.prefsrc ? formatAddr(r.prefsrc) : '-'}`).sort();
    expect(dump(255)).toEqual([
      'broadcast 10.0.0.255/32 eth1 src 10.0.0.1',
      'broadcast 127.255.255.255/32 lo src 127.0.0.1',
      'broadcast 192.168.1.255/32 eth0 src 192.168.1.10',
      'local 10.0.0.1/32 eth1 src 10.0.0.1',
      'local 10.0.0.9/32 eth1 src 10.0.0.1',
      'local 127.0.0.0/8 lo src 127.0.0.1',
      'local 127.0.0.1/32 lo src 127.0.0.1',
      'local 192.168.1.10/32 eth0 src 192.168.1.10',
    ]);
    expect(dump(254)).toEqual(['unicast 10.0.0.0/24 eth1 src 10.0.0.1', 'unicast 192.168.1.0/24 eth0 src 192.168.1.10']);
  });

  it('addrType from the local table (inet_dev_addr_type)', () => {
    expect(addrType(n, '192.168.1.10')).toBe('local');
    expect(addrType(n, '10.0.0.9')).toBe('local');
    expect(addrType(n, '127.3.4.5')).toBe('local');
    expect(addrType(n, '192.168.1.255')).toBe('broadcast');
    expect(addrType(n, '192.168.1.0')).toBe('unicast'); // no network-address broadcast on 6.18
    expect(addrType(n, '0.1.2.3')).toBe('broadcast');
    expect(addrType(n, '255.255.255.255')).toBe('broadcast');
    expect(addrType(n, '224.0.0.1')).toBe('multicast');
    expect(addrType(n, '8.8.8.8')).toBe('unicast');
    // With a device: only when the local route's device is that device.
    expect(addrType(n, '192.168.1.10', 'eth0')).toBe('local');
    expect(addrType(n, '192.168.1.10', 'eth1')).toBe('unicast');
    expect(isLocalAddress(n, '10.0.0.1')).toBe(true);
    expect(isLocalAddress(n, '10.0.0.2')).toBe(false);
    expect(addrType(n, '::1')).toBe('unicast'); // no IPv6 address given
  });

  it('one broadcast route when an address\'s broadcast is its network\'s (fib_table_insert refuses the second, a perfect match)', () => {
    const links = new Map([['eth0', { name: 'eth0', up: true, loopback: false }]]);
    const ifa = (local: string, brd: string | undefined) => ({
      dev: 'eth0', local: parseAddr(local)!, prefixlen: 24, broadcast: brd === undefined ? undefined : parseAddr(brd), secondary: false, noprefixroute: false, tentative: false, metric: 0,
    });
    const brds = (brd: string | undefined) => deriveRoutes4(links, [ifa('192.168.1.10', brd)]).filter((r) => r.type === RTN_BROADCAST).map((r) => formatAddr(r.dst));
    // ip addr add 192.168.1.10/24 brd + (or brd 192.168.1.255), without brd, and brd 192.168.1.128: `ip route show table local`
    expect(brds('192.168.1.255')).toEqual(['192.168.1.255']);
    expect(brds(undefined)).toEqual(['192.168.1.255']);
    expect(brds('192.168.1.128')).toEqual(['192.168.1.128', '192.168.1.255']);
  });

  it('a down device keeps only its local address route', () => {
    const m = node(undefined, undefined, [LINKS[0]!, link(2, 'eth0', { flags: ['BROADCAST', 'MULTICAST'], addr_info: [{ family: 'inet', local: '192.168.1.10', prefixlen: 24 }] })]);
    expect(m.fib4.tables.get(254)!.size).toBe(0);
    expect(addrType(m, '192.168.1.10')).toBe('local');
    expect(addrType(m, '192.168.1.255')).toBe('unicast');
  });
});

describe('FibTable: the IPv4 index by prefix length', () => {
  it('chooses the route and nexthop the trie walk chooses (IPv6 tables walk the trie) for random tables and lookups', () => {
    // The same routes as IPv4 (index) and as IPv6 with the address in the first word (trie): the same choice, the one
    // fib_table_lookup() makes.
    const route = (family: 4 | 6, table: number, r: { a: number; plen: number; type: number; tos: number; metric: number; scope: number; nhs: [number, boolean][] }): Route => {
      const w = family === 4 ? Uint32Array.of(r.a) : Uint32Array.of(r.a, 0, 0, 0);
      const mask = r.plen === 0 ? 0 : (-1 << (32 - r.plen)) >>> 0;
      w[0] = (r.a & mask) >>> 0;
      return {
        family, table, type: r.type, dst: { family, w }, plen: r.plen, tos: r.tos, metric: r.metric, scope: r.scope, protocol: 'static', prefsrc: undefined,
        nexthops: r.nhs.map(([dev, dead]) => ({ gateway: undefined, dev: `eth${dev}`, weight: 1, flags: dead ? ['dead'] : [] })),
      };
    };
    // Addresses from a few /8s and /16s, so that prefixes nest and collide.
    const addr = fc.tuple(fc.constantFrom(10, 172, 192, 0, 255), fc.constantFrom(0, 1, 168), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }))
      .map(([a, b, c, d]) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0);
    const arbRoute = fc.record({
      a: addr, plen: fc.oneof(fc.constantFrom(0, 8, 16, 22, 24, 30, 31, 32), fc.integer({ min: 0, max: 32 })),
      type: fc.constantFrom(RTN_UNICAST, RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, 6, 7, 8, 9),
      tos: fc.constantFrom(0, 0, 0x10, 0x08), metric: fc.integer({ min: 0, max: 3 }), scope: fc.constantFrom(0, 253, 254),
      nhs: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.boolean()), { minLength: 0, maxLength: 3 }),
    });
    const arbLookup = fc.record({ d: addr, tos: fc.constantFrom(0, 0x10, 0x08, 0x1c), oif: fc.constantFrom('', 'eth0', 'eth1'), scope: fc.constantFrom(0, 253, 254) });
    fc.assert(
      fc.property(fc.array(arbRoute, { maxLength: 40 }), fc.array(arbLookup, { minLength: 1, maxLength: 30 }), (routes, lookups) => {
        const t4 = new FibTable(254, 4);
        const t6 = new FibTable(254, 6);
        const in4: Route[] = [];
        const in6: Route[] = [];
        for (const r of routes) {
          const a = route(4, 254, r);
          const b = route(6, 254, r);
          expect(t4.insert(a)).toBe(t6.insert(b));
          in4.push(a);
          in6.push(b);
        }
        // fib_table_lookup() spelled out over every route: the longest prefix of d with a usable route (or a reject route) answers.
        const all = t4.routes();
        // IPv6: a lookup bound to a device passes reject routes by (their nexthop is lo: rt6_score_route())
        const expected = (l: { d: number; tos: number; oif: string; scope: number }, family: 4 | 6): [number, Route | null, number] => {
          for (let plen = 32; plen >= 0; plen--) {
            const mask = plen === 0 ? 0 : (-1 << (32 - plen)) >>> 0;
            for (const r of all) {
              if (r.plen !== plen || ((l.d & mask) >>> 0) !== r.dst.w[0]) continue;
              if (r.tos !== 0 && r.tos !== (l.tos & 0x1c)) continue;
              if (r.scope < l.scope) continue;
              const err = FIB_PROPS_ERROR[r.type] ?? 0;
              if (err && family === 6 && l.oif !== '') continue;
              if (err) return [-err, r, -1];
              const h = r.nexthops.findIndex((nh) => !nh.flags.includes('dead') && (l.oif === '' || nh.dev === l.oif));
              if (h >= 0) return [0, r, h];
            }
          }
          return [-EAGAIN, null, -1];
        };
        // Twice each: the second answer may come from the table's cache of recent lookups.
        for (const l of [...lookups, ...lookups]) {
          const [xe, xr, xh] = expected(l, 4);
          const e4 = t4.lookup(Uint32Array.of(l.d), l.tos, l.oif, l.scope);
          expect([e4, t4.resRoute, e4 === 0 ? t4.resNh : -1]).toEqual([xe, xr, xh]);
          const [ye, yr, yh] = expected(l, 6);
          const e6 = t6.lookup(Uint32Array.of(l.d, 0, 0, 0), l.tos, l.oif, l.scope);
          expect([e6, t6.resRoute ? in6.indexOf(t6.resRoute) : -1, e6 === 0 ? t6.resNh : -1]).toEqual([ye, yr ? in4.indexOf(yr) : -1, yh]);
        }
      }),
      { numRuns: runs(300) },
    );
  });

  it('answers from its cache as the walk does when thousands of destinations share its sets', () => {
    // /24s, /16s and a default, some with a TOS, over 6,000 destinations looked up in random order: about three a set of
    // the cache, so entries are replaced and looked up again all the time
    const mk = (a: number, plen: number, dev: string, tos = 0): Route => ({
      family: 4, table: 254, type: RTN_UNICAST, dst: { family: 4, w: Uint32Array.of(plen === 0 ? 0 : (a & ((-1 << (32 - plen)) >>> 0)) >>> 0) }, plen, tos,
      metric: 0, scope: 0, protocol: 'static', prefsrc: undefined, nexthops: [{ gateway: undefined, dev, weight: 1, flags: [] }],
    });
    const cached = new FibTable(254, 4);
    const routes = [mk(0, 0, 'eth0'), mk(0x0a000000, 8, 'eth1'), mk(0x0a010000, 16, 'eth2'), mk(0x0a010200, 24, 'eth3'), mk(0x0a010200, 24, 'eth4', 0x10)];
    for (let i = 0; i < 64; i++) routes.push(mk((0x0a020000 + (i << 8)) >>> 0, 24, `eth${5 + (i % 3)}`));
    for (const r of routes) cached.insert(r);
    let x = 12345;
    const rnd = (n: number): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const dests = Array.from({ length: 6000 }, (_, i) => (i % 3 === 0 ? 0x0a020000 + rnd(1 << 14) : i % 3 === 1 ? 0x0a010000 + rnd(1 << 16) : rnd(2 ** 24) << 8) >>> 0);
    for (let k = 0; k < runs(10_000); k++) {
      const d = dests[rnd(dests.length)]!;
      const tos = rnd(4) === 0 ? 0x10 : 0;
      // the answer of a table that has never cached anything
      const fresh = new FibTable(254, 6);
      for (const r of routes) fresh.insert({ ...r, family: 6, dst: { family: 6, w: Uint32Array.of(r.dst.w[0]!, 0, 0, 0) } });
      const want = fresh.lookup(Uint32Array.of(d, 0, 0, 0), tos, '', 0);
      const got = cached.lookup(Uint32Array.of(d), tos, '', 0);
      expect([got, routes.indexOf(cached.resRoute!), cached.resNh], `${d.toString(16)} tos ${tos}`).toEqual([want, fresh.resRoute ? routes.findIndex((r) => r.dst.w[0] === fresh.resRoute!.dst.w[0] && r.plen === fresh.resRoute!.plen && r.tos === fresh.resRoute!.tos) : -1, fresh.resNh]);
    }
  });
});
