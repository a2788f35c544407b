/**
 * Protocol and service names as iptables takes and prints them: the
 * built-in protocol table of libxtables, the /etc/protocols and
 * /etc/services names a stock system resolves, ports and port ranges.
 */
import { fail } from '../core/errors.js';
import { strtoulWholeNum } from './numbers.js';

/**
 * `xtables_chain_protos[]` (libxtables/xtables.c, 1.8.13): the names
 * iptables knows without /etc/protocols; iptables-save prints these names
 * and the number for every other protocol.
 */
const CHAIN_PROTOS: ReadonlyArray<readonly [string, number]> = [
  ['tcp', 6],
  ['sctp', 132],
  ['udp', 17],
  ['udplite', 136],
  ['icmp', 1],
  ['ipv6-icmp', 58],
  ['icmpv6', 58],
  ['esp', 50],
  ['ah', 51],
  // iptables 1.8.8 "libxtables: Boost rule dump times" put mobility-header first;
  // 1.8.11 "libxtables: Add dccp and ipcomp to xtables_chain_protos"
  ['mobility-header', 135],
  ['ipv6-mh', 135],
  ['mh', 135],
  ['dccp', 33],
  ['ipcomp', 108],
  ['all', 0],
];

/**
 * Further protocol names accepted on input, as a stock /etc/protocols
 * (netbase) spells them; iptables resolves them with getprotobyname().
 */
const ETC_PROTOCOLS: ReadonlyArray<readonly [string, number]> = [
  ['ip', 0], ['hopopt', 0], ['igmp', 2], ['ggp', 3], ['ipencap', 4], ['st', 5], ['egp', 8], ['igp', 9],
  ['pup', 12], ['hmp', 20], ['xns-idp', 22], ['rdp', 27], ['iso-tp4', 29], ['dccp', 33], ['xtp', 36],
  ['ddp', 37], ['idpr-cmtp', 38], ['ipv6', 41], ['ipv6-route', 43], ['ipv6-frag', 44], ['idrp', 45],
  ['rsvp', 46], ['gre', 47], ['skip', 57], ['ipv6-nonxt', 59], ['ipv6-opts', 60], ['rspf', 73],
  ['vmtp', 81], ['eigrp', 88], ['ospf', 89], ['ax.25', 93], ['ipip', 94], ['etherip', 97], ['encap', 98],
  ['pim', 103], ['ipcomp', 108], ['vrrp', 112], ['l2tp', 115], ['isis', 124], ['fc', 133],
  ['manet', 138], ['hip', 139], ['shim6', 140], ['wesp', 141], ['rohc', 142], ['ethernet', 143],
  ['mptcp', 262],
];

/** Protocol name (case-insensitive, as iptables lowercases it) or number → number. */
export function parseProtocol(s: string): number {
  const lower = s.toLowerCase();
  const n = strtoulWholeNum(lower, 0, 255);
  if (n !== undefined) return n;
  for (const [name, num] of CHAIN_PROTOS) if (name === lower) return num;
  for (const [name, num] of ETC_PROTOCOLS) if (name === lower && num <= 255) return num;
  return fail(`unknown protocol "${s}" specified`);
}

/** `proto_to_name(proto, nolookup=1)`: the built-in name or undefined. */
export function protoName(p: number): string | undefined {
  for (const [name, num] of CHAIN_PROTOS) if (num === p) return name;
  return undefined;
}

/** getprotobynumber(): the /etc/protocols name ipset prints (`gre`, `ipv6-icmp`), or undefined. */
export function etcProtoName(p: number): string | undefined {
  if (p === 58) return 'ipv6-icmp';
  for (const [name, num] of ETC_PROTOCOLS) if (num === p) return name;
  return protoName(p);
}

/**
 * A protocol as iptables-save (1.8.13) prints `-p`: `proto_to_name(proto, true)`
 * (iptables 1.8.11 "iptables-save: Avoid /etc/protocols lookups"): the
 * xtables_chain_protos name (33 saves as `dccp`, 108 as `ipcomp`), else the
 * number (47 saves as `47`, where 1.8.9 printed the /etc/protocols `gre`).
 */
export function protoSaveName(p: number): string {
  return protoName(p) ?? String(p);
}

/**
 * Well-known service names accepted where iptables calls getservbyname().
 * iptables-save always prints numbers, so these matter only on input.
 */
const SERVICES: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  tcpmux: 1, echo: 7, discard: 9, systat: 11, daytime: 13, netstat: 15, qotd: 17, chargen: 19,
  'ftp-data': 20, ftp: 21, ssh: 22, telnet: 23, smtp: 25, time: 37, whois: 43, tacacs: 49,
  domain: 53, bootps: 67, bootpc: 68, tftp: 69, gopher: 70, finger: 79, http: 80, www: 80,
  kerberos: 88, pop3: 110, sunrpc: 111, auth: 113, ident: 113, nntp: 119, ntp: 123,
  'netbios-ns': 137, 'netbios-dgm': 138, 'netbios-ssn': 139, imap2: 143, imap: 143, snmp: 161,
  'snmp-trap': 162, bgp: 179, irc: 194, ldap: 389, https: 443, 'microsoft-ds': 445, isakmp: 500,
  syslog: 514, printer: 515, submission: 587, ldaps: 636, rsync: 873, imaps: 993, pop3s: 995,
  socks: 1080, openvpn: 1194, 'ms-sql-s': 1433, l2tp: 1701, pptp: 1723, radius: 1812,
  'radius-acct': 1813, nfs: 2049, mysql: 3306, 'ms-wbt-server': 3389, 'ipsec-nat-t': 4500,
  sip: 5060, postgresql: 5432, x11: 6000, 'http-alt': 8080, webcache: 8080,
});

/** `xtables_parse_port()`: a service name or a number 0..65535. */
export function parsePort(s: string): number {
  const named = SERVICES[s];
  if (named !== undefined) return named;
  const v = strtoulWholeNum(s, 0, 65535);
  if (v === undefined) fail(`invalid port/service \`${s}' specified`);
  return v;
}

/**
 * `a`, `a:b`, `:b`, `a:` and `:` as tcp/udp/conntrack port ranges take them
 * (parse_tcp_ports): an empty bound is 0 or 65535.
 */
export function parsePortRange(s: string): [number, number] {
  const i = s.indexOf(':');
  if (i < 0) {
    const p = parsePort(s);
    return [p, p];
  }
  const a = s.slice(0, i);
  const b = s.slice(i + 1);
  const lo = a.length ? parsePort(a) : 0;
  const hi = b.length ? parsePort(b) : 0xffff;
  if (lo > hi) fail('invalid portrange (min > max)');
  return [lo, hi];
}

/**
 * `xtables_service_to_port(name, NULL)` / getservbyname(): a service name
 * only (no numbers), or undefined when the name is unknown.
 */
export function serviceToPort(name: string): number | undefined {
  return SERVICES[name];
}

/**
 * getprotobynumber() on a stock /etc/protocols: the official name of a
 * protocol number (`ip` for 0, `ipv6-icmp` for 58), or undefined. What
 * ebtables prints for `--ip-proto` and `--ip6-proto`.
 */
export function protoNumberName(p: number): string | undefined {
  for (const [name, num] of ETC_PROTOCOLS) if (num === p) return name;
  for (const [name, num] of CHAIN_PROTOS) if (num === p && name !== 'all') return name;
  return undefined;
}
