/**
 * A node for rulesets that come without a snapshot (nfvm diff of two
 * files, the snapshot arbitrary of fuzz/arbitraries.ts), as snapshot
 * files: lo and the interfaces the rulesets name (eth0 and eth1 at least),
 * each with an address of 10.255.N.1/24, a default route by the first,
 * forwarding on.
 */
import type { Ruleset } from '../core/ast.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { constantsOf } from './constants.js';

export function genericNodeFiles(rulesets: readonly string[]): { files: Map<string, string>; ifaces: string[] } {
  return genericNodeOf(rulesets.map((t) => parseRestore(t)));
}

/** genericNodeFiles() of rulesets already parsed. */
export function genericNodeOf(rss: readonly Ruleset[]): { files: Map<string, string>; ifaces: string[] } {
  const names = ['eth0', 'eth1', ...constantsOf(rss).ifaces.filter((n) => n !== 'lo' && /^[a-zA-Z0-9_.-]{1,15}$/.test(n))];
  const ifaces = [...new Set(names)].slice(0, 32);
  const link = (i: number, name: string, mac: string, extra: object[]) => ({ ifindex: i, ifname: name, flags: name === 'lo' ? ['LOOPBACK', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: name === 'lo' ? 65536 : 1500, link_type: name === 'lo' ? 'loopback' : 'ether', address: mac, addr_info: extra });
  const addrs = [link(1, 'lo', '00:00:00:00:00:00', [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' }])];
  const routes: object[] = [{ type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] }];
  ifaces.forEach((name, i) => {
    const n = i + 2;
    const mac = `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
    addrs.push(link(n, name, mac, [{ family: 'inet', local: `10.255.${i}.1`, prefixlen: 24, broadcast: `10.255.${i}.255`, scope: 'global', label: name }]));
    routes.push({ dst: `10.255.${i}.0/24`, dev: name, protocol: 'kernel', scope: 'link', prefsrc: `10.255.${i}.1`, flags: [] });
    routes.push({ type: 'local', dst: `10.255.${i}.1`, dev: name, table: 'local', protocol: 'kernel', scope: 'host', prefsrc: `10.255.${i}.1`, flags: [] });
  });
  routes.unshift({ dst: 'default', gateway: '10.255.0.254', dev: ifaces[0], flags: [] });
  const files = new Map([
    ['ip-addr.json', `${JSON.stringify(addrs)}\n`],
    ['ip-route.json', `${JSON.stringify(routes)}\n`],
    ['sysctl.txt', 'net.ipv4.ip_forward = 1\n'],
  ]);
  return { files, ifaces };
}

