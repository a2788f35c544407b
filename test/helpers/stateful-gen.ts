/**
 * Generated stateful rulesets for the node of test/helpers/flows.ts: raw
 * NOTRACK, CT zones and the FTP and TFTP helpers, mangle MARK and CONNMARK in all their forms with
 * mark/connmark/conntrack matches, nat DNAT (to an address, a range, a
 * port range), NETMAP, REDIRECT of UDP to the node's bound port, SNAT and
 * MASQUERADE (with --random-fully at times), filter chains on conntrack
 * states and every conntrack option, statistic nth, policies. The rules
 * keep the node silent towards the wire (no REJECT, no DNAT to the node's
 * TCP ports, zones only where both directions meet them), so a kernel
 * comparison can count every chain.
 */
import fc from 'fast-check';

export interface StatefulGen {
  text: string;
  /** Destinations worth sending flows to (the services and servers its rules name). */
  destinations: string[];
}

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const neg = fc.boolean().map((b) => (b ? '! ' : ''));
const MARKS = ['0x1', '0x2', '0x10', '0x11', '0x100', '0xff'];
const MASKS = ['0xff', '0xf', '0xf0', '0xffff', '0xffffffff'];
const PORTS = [22, 53, 80, 123, 161, 443];

/** What the rules of one family name: the node's networks and peers, the ICMP protocol, and its NAT, raw and REJECT rules. */
interface Profile {
  clientNets: string[];
  serverAddrs: string[];
  /** Further destinations of -d (the DNAT service, the NETMAP network). */
  otherDsts: string[];
  /** Further addresses of the conntrack tuple options. */
  ctAddrs: string[];
  /** The clients' network, for `--ctorigsrc` with a state. */
  clientLan: string;
  icmp: string;
  raw: string[];
  dnat: string[];
  snat: string[];
  reject: string[];
  dsts: string[];
}

const V4: Profile = {
  clientNets: ['10.0.0.0/29', '10.0.0.128/25', '10.0.0.2', '10.0.0.3', '203.0.113.0/24'],
  serverAddrs: ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'],
  otherDsts: ['10.1.0.200', '10.9.0.0/24'],
  ctAddrs: ['10.1.0.100/27', '10.0.0.1'],
  clientLan: '10.0.0.0/24',
  icmp: 'icmp',
  raw: [
    '-A PREROUTING -p udp -m udp --dport 123 -j NOTRACK', '-A PREROUTING -p udp -m udp --sport 123 -j CT --notrack',
    '-A PREROUTING -p tcp -m tcp --dport 22 -j CT --zone 5', '-A PREROUTING -p tcp -m tcp --sport 22 -j CT --zone 5',
    '-A PREROUTING -p udp -m udp --dport 53 -j CT --zone-orig 7',
    '-A PREROUTING -p icmp -j NOTRACK',
    '-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp',
    '-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp',
  ],
  dnat: [
    '-A PREROUTING -d 10.1.0.200/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.0.3:8080',
    '-A PREROUTING -d 10.1.0.200/32 -p tcp -j DNAT --to-destination 10.1.0.3-10.1.0.5:8000-8010',
    '-A PREROUTING -d 10.1.0.200/32 -p udp -j DNAT --to-destination 10.1.0.4',
    '-A PREROUTING -d 10.1.0.200/32 -j DNAT --to-destination 10.1.0.2',
    '-A PREROUTING -d 10.9.0.0/24 -j NETMAP --to 10.1.0.0/24',
    '-A PREROUTING -d 10.0.0.1/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353',
    '-A PREROUTING -d 10.1.0.200/32 -m mark --mark 0x1/0x1 -j DNAT --to-destination 10.1.0.5',
  ],
  snat: [
    '-A POSTROUTING -s 10.0.0.128/25 -o eth1 -j SNAT --to-source 10.1.0.100-10.1.0.120',
    '-A POSTROUTING -o eth1 -p udp -j SNAT --to-source 10.1.0.110',
    '-A POSTROUTING -s 10.0.0.0/24 -o eth1 -j MASQUERADE',
    '-A POSTROUTING -o eth1 -j MASQUERADE --random-fully',
    '-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/24 -j MASQUERADE',
    '-A POSTROUTING -m mark --mark 0x10/0x10 -j MASQUERADE',
    '-A POSTROUTING -o eth1 -p tcp -j SNAT --to-source 10.1.0.115:20000-20010',
  ],
  reject: [
    '-A FORWARD -p tcp -m tcp --tcp-flags PSH PSH -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset',
    '-A FORWARD -p tcp -m tcp --dport 8080 -j REJECT --reject-with tcp-reset',
    '-A FORWARD -p udp -m udp --dport 5300 -j REJECT',
    '-A FORWARD -p icmp -m conntrack --ctstate NEW -j REJECT --reject-with icmp-host-prohibited',
    '-A FORWARD -p tcp -m mark --mark 0x4/0x4 -j REJECT --reject-with icmp-admin-prohibited',
  ],
  dsts: ['10.1.0.2', '10.1.0.3', '10.1.0.200', '10.9.0.5', '8.8.8.8', '198.51.100.7'],
};

/**
 * The IPv6 node of test/kernel/stateful6-kernel.test.ts (clients 2001:db8::/64 and 2001:db8:cc::/48 on
 * eth0, servers 2001:db8:1::/64 on eth1). Every destination is reached by eth1: a flow that left by the
 * interface it came in on would make the node send a redirect, which IPv6 has no sysctl to turn off.
 */
const V6: Profile = {
  clientNets: ['2001:db8::/125', '2001:db8::80/121', '2001:db8::2', '2001:db8::3', '2001:db8:cc::/48'],
  serverAddrs: ['2001:db8:1::2', '2001:db8:1::3', '2001:db8:1::4', '2001:db8:1::5'],
  otherDsts: ['2001:db8:1::c8', '2001:db8:9::/64'],
  ctAddrs: ['2001:db8:1::60/123', '2001:db8::1'],
  clientLan: '2001:db8::/64',
  icmp: 'ipv6-icmp',
  raw: V4.raw.map((r) => r.replace('-p icmp', '-p ipv6-icmp')),
  dnat: [
    '-A PREROUTING -d 2001:db8:1::c8/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8:1::3]:8080',
    '-A PREROUTING -d 2001:db8:1::c8/128 -p tcp -j DNAT --to-destination [2001:db8:1::3-2001:db8:1::5]:8000-8010',
    '-A PREROUTING -d 2001:db8:1::c8/128 -p udp -j DNAT --to-destination 2001:db8:1::4',
    '-A PREROUTING -d 2001:db8:1::c8/128 -j DNAT --to-destination 2001:db8:1::2',
    '-A PREROUTING -d 2001:db8:9::/64 -j NETMAP --to 2001:db8:1::/64',
    '-A PREROUTING -d 2001:db8::1/128 -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353',
    '-A PREROUTING -d 2001:db8:1::c8/128 -m mark --mark 0x1/0x1 -j DNAT --to-destination 2001:db8:1::5',
  ],
  snat: [
    '-A POSTROUTING -s 2001:db8::80/121 -o eth1 -j SNAT --to-source 2001:db8:1::64-2001:db8:1::78',
    '-A POSTROUTING -o eth1 -p udp -j SNAT --to-source 2001:db8:1::6e',
    '-A POSTROUTING -s 2001:db8::/64 -o eth1 -j MASQUERADE',
    '-A POSTROUTING -o eth1 -j MASQUERADE --random-fully',
    '-A POSTROUTING -s 2001:db8::/64 -d 2001:db8:1::/64 -j MASQUERADE',
    '-A POSTROUTING -m mark --mark 0x10/0x10 -j MASQUERADE',
    '-A POSTROUTING -o eth1 -p tcp -j SNAT --to-source [2001:db8:1::73]:20000-20010',
  ],
  reject: [
    '-A FORWARD -p tcp -m tcp --tcp-flags PSH PSH -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset',
    '-A FORWARD -p tcp -m tcp --dport 8080 -j REJECT --reject-with tcp-reset',
    '-A FORWARD -p udp -m udp --dport 5300 -j REJECT',
    '-A FORWARD -p ipv6-icmp -m conntrack --ctstate NEW -j REJECT --reject-with icmp6-adm-prohibited',
    '-A FORWARD -p tcp -m mark --mark 0x4/0x4 -j REJECT --reject-with icmp6-addr-unreachable',
  ],
  dsts: ['2001:db8:1::2', '2001:db8:1::3', '2001:db8:1::c8', '2001:db8:9::5', '2001:db8:77::7', '2001:db8:1::4'],
};

/** The generated stateful rulesets of one family. */
function statefulRulesOf(P: Profile): fc.Arbitrary<StatefulGen> {
  const { clientNets: CLIENT_NETS, serverAddrs: SERVER_ADDRS } = P;
  const proto = fc.oneof(
    fc.constant(''),
    pick(['tcp', 'udp']).chain((p) => fc.tuple(fc.constant(p), neg, pick(PORTS)).map(([pp, n, port]) => `-p ${pp} -m ${pp} ${n}--dport ${port}`)),
    fc.constant(`-p ${P.icmp}`),
  );
  const addrMatch = fc.oneof(
    fc.tuple(neg, pick(CLIENT_NETS)).map(([n, a]) => `${n}-s ${a}`),
    fc.tuple(neg, pick([...SERVER_ADDRS, ...P.otherDsts])).map(([n, a]) => `${n}-d ${a}`),
  );
  const ctMatch = fc.oneof(
    fc.tuple(neg, fc.subarray(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT'], { minLength: 1 })).map(([n, s]) => `-m conntrack ${n}--ctstate ${s.join(',')}`),
    fc.tuple(neg, fc.subarray(['EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'], { minLength: 1 })).map(([n, s]) => `-m conntrack ${n}--ctstatus ${s.join(',')}`),
    pick(['ORIGINAL', 'REPLY']).map((d) => `-m conntrack --ctdir ${d}`),
    fc.tuple(neg, pick(['tcp', 'udp', P.icmp])).map(([n, p]) => `-m conntrack ${n}--ctproto ${p}`),
    fc.tuple(neg, pick(['--ctorigsrc', '--ctorigdst', '--ctreplsrc', '--ctrepldst']), pick([...CLIENT_NETS, ...SERVER_ADDRS, ...P.ctAddrs])).map(([n, o, a]) => `-m conntrack ${n}${o} ${a}`),
    fc.tuple(neg, pick(['--ctorigsrcport', '--ctorigdstport', '--ctreplsrcport', '--ctrepldstport']), pick(['80', '53', '8080', '40000:50000', '1024:65535'])).map(([n, o, p]) => `-m conntrack ${n}${o} ${p}`),
    fc.tuple(neg, pick(['0:100', '100:500', '20:40', '400000:500000'])).map(([n, r]) => `-m conntrack ${n}--ctexpire ${r}`),
    fc.tuple(neg, fc.subarray(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'], { minLength: 1 })).map(([n, s]) => `-m state ${n}--state ${s.join(',')}`),
    fc.tuple(fc.subarray(['NEW', 'INVALID', 'UNTRACKED'], { minLength: 1 }), pick(['--ctdir ORIGINAL', `--ctorigsrc ${P.clientLan}`, '--ctstatus ASSURED'])).map(([s, o]) => `-m conntrack --ctstate ${s.join(',')} ${o}`),
  );
  const markMatch = fc.oneof(
    fc.tuple(neg, pick(MARKS), pick(MASKS)).map(([n, v, m]) => `-m mark ${n}--mark ${v}/${m}`),
    fc.tuple(neg, pick(MARKS), pick(MASKS)).map(([n, v, m]) => `-m connmark ${n}--mark ${v}/${m}`),
  );
  const matches = fc.array(fc.oneof({ weight: 2, arbitrary: proto }, addrMatch, ctMatch, markMatch,
    fc.tuple(neg, pick([2, 3, 4])).chain(([n, e]) => fc.integer({ min: 0, max: e - 1 }).map((p) => `-m statistic --mode nth ${n}--every ${e} --packet ${p}`))), { maxLength: 3 })
    .map((ms) => {
      // at most one protocol match and one address match of each kind
      const out: string[] = [];
      const seen = new Set<string>();
      for (const m of ms) {
        const k = m.startsWith('-p') ? 'p' : /-s /.test(m) ? 's' : /-d /.test(m) ? 'd' : m;
        if (seen.has(k)) continue;
        // mark and connmark both have --mark: a second instance of one after the other is loaded takes
        // no options of its own (iptables merges a clone's options only once), so its --mark goes to the
        // other, which refuses a second one; iptables-restore refuses the rule
        const mod = /^-m (mark|connmark) /.exec(m)?.[1];
        if (mod && seen.has('-m mark') && seen.has('-m connmark')) continue;
        if (mod) seen.add(`-m ${mod}`);
        seen.add(k);
        out.push(m);
      }
      return out.join(' ');
    });

  const markTarget = fc.oneof(
    fc.tuple(pick(MARKS), pick(MASKS)).map(([v, m]) => `-j MARK --set-xmark ${v}/${m}`),
    pick(MARKS).map((v) => `-j MARK --or-mark ${v}`),
    pick(MASKS).map((v) => `-j MARK --and-mark ${v}`),
    fc.tuple(pick(MARKS), pick(MASKS)).map(([v, m]) => `-j CONNMARK --set-xmark ${v}/${m}`),
    fc.tuple(pick(['--save-mark', '--restore-mark']), fc.option(fc.tuple(pick(MASKS), pick(MASKS)), { nil: undefined }), fc.option(fc.tuple(pick(['--left-shift-mark', '--right-shift-mark']), pick([1, 4, 8])), { nil: undefined }))
      .map(([op, masks, shift]) => `-j CONNMARK ${op}${masks ? ` --nfmask ${masks[0]} --ctmask ${masks[1]}` : ''}${shift ? ` ${shift[0]} ${shift[1]}` : ''}`),
    fc.constant('-j RETURN'),
    fc.constant(''),
  );

  const rules = (chain: string, target: fc.Arbitrary<string>, max: number) =>
    fc.array(fc.tuple(matches, target), { maxLength: max }).map((rs) => rs.map(([m, t]) => `-A ${chain} ${m} ${t}`.replace(/ +/g, ' ').trimEnd()));

  const raw = fc.array(pick(P.raw), { maxLength: 3 }).map((rs) => [...new Set(rs)]);
  const dnat = pick(P.dnat);
  const snat = pick(P.snat);
  /** REJECTs of the node's own answers: ICMP errors through OUTPUT, resets that also close the original's conntrack. */
  const reject = fc.array(pick(P.reject), { maxLength: 2 }).map((rs) => [...new Set(rs)]);

  return fc.record({
    raw,
    reject,
    mangle: fc.tuple(rules('PREROUTING', markTarget, 4), rules('FORWARD', markTarget, 2), rules('POSTROUTING', markTarget, 2)),
    nat: fc.tuple(fc.array(dnat, { maxLength: 3 }), fc.array(snat, { maxLength: 3 })),
    filter: fc.tuple(rules('FORWARD', pick(['-j ACCEPT', '-j DROP', '-j RETURN', '', '', '-j MARK --set-xmark 0x4/0x4']), 6), rules('INPUT', pick(['', '-j ACCEPT']), 2)),
    policy: pick(['ACCEPT', 'ACCEPT', 'DROP']),
    dsts: fc.subarray(P.dsts, { minLength: 2, maxLength: 3 }),
  }).map((g) => {
    const text = [
      '*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...g.raw, 'COMMIT',
      '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
      ...g.mangle.flat(), 'COMMIT',
      '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
      ...new Set(g.nat[0]), ...new Set(g.nat[1]), 'COMMIT',
      '*filter', ':INPUT ACCEPT [0:0]', `:FORWARD ${g.policy} [0:0]`, ':OUTPUT ACCEPT [0:0]',
      ...g.reject, ...(g.policy === 'DROP' ? ['-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'] : []), ...g.filter[0], ...g.filter[1], 'COMMIT', '',
    ].join('\n');
    return { text, destinations: g.dsts };
  });
}

export const statefulRules = statefulRulesOf(V4);
/** The same over IPv6 (ip6tables-restore text). */
export const statefulRules6 = statefulRulesOf(V6);
