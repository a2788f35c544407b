/**
 * A node for rulesets that come without a snapshot (nfvm diff of two
 * files, the snapshot arbitrary of fuzz/arbitraries.ts), as snapshot
 * files: lo and the interfaces the rulesets name (eth0 and eth1 at least),
 * each with an address of 10.255.N.1/24 and fd00:255:N::1/64, a default
 * route of each family by the first, a route out of IF for each
 * `-d PREFIX -o IF` of the rules, the host addresses of the chains only
 * INPUT reaches (inputAddresses), forwarding on.
 */
import type { Family, Ruleset } from '../core/ast.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { constantsOf } from './constants.js';
import { formatIPv4, formatIPv6, maskToCidr } from '../core/addr.js';

export function genericNodeFiles(rulesets: readonly string[], family: Family = 'ip'): { files: Map<string, string>; ifaces: string[] } {
  return genericNodeOf(rulesets.map((t) => parseRestore(t, { family })));
}

/** genericNodeFiles() of rulesets already parsed. */
export function genericNodeOf(rss: readonly Ruleset[]): { files: Map<string, string>; ifaces: string[] } {
  const names = ['eth0', 'eth1', ...constantsOf(rss).ifaces.filter((n) => n !== 'lo' && /^[a-zA-Z0-9_.-]{1,15}$/.test(n))];
  const ifaces = [...new Set(names)].slice(0, 32);
  const link = (i: number, name: string, mac: string, extra: object[]) => ({ ifindex: i, ifname: name, flags: name === 'lo' ? ['LOOPBACK', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: name === 'lo' ? 65536 : 1500, link_type: name === 'lo' ? 'loopback' : 'ether', address: mac, addr_info: extra });
  const addrs: { ifname: string; addr_info: object[] }[] = [link(1, 'lo', '00:00:00:00:00:00', [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' }])];
  const routes: object[] = [{ type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] }];
  const routes6: object[] = [{ type: 'local', dst: '::1', dev: 'lo', table: 'local', protocol: 'kernel', metric: 0, flags: [] }];
  ifaces.forEach((name, i) => {
    const n = i + 2;
    const mac = `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
    addrs.push(link(n, name, mac, [
      { family: 'inet', local: `10.255.${i}.1`, prefixlen: 24, broadcast: `10.255.${i}.255`, scope: 'global', label: name },
      { family: 'inet6', local: `fd00:255:${i.toString(16)}::1`, prefixlen: 64, scope: 'global' },
    ]));
    routes6.push({ dst: `fd00:255:${i.toString(16)}::/64`, dev: name, protocol: 'kernel', metric: 256, flags: [] });
    routes6.push({ type: 'local', dst: `fd00:255:${i.toString(16)}::1`, dev: name, table: 'local', protocol: 'kernel', metric: 0, flags: [] });
    routes.push({ dst: `10.255.${i}.0/24`, dev: name, protocol: 'kernel', scope: 'link', prefsrc: `10.255.${i}.1`, flags: [] });
    routes.push({ type: 'local', dst: `10.255.${i}.1`, dev: name, table: 'local', protocol: 'kernel', scope: 'host', prefsrc: `10.255.${i}.1`, flags: [] });
  });
  // a destination a rule sends out of an interface (`-d PREFIX -o IF`) is routed out of it, so that packets can meet the rule
  const seen = new Set<string>();
  for (const rs of rss) {
    for (const t of rs.tables.values()) {
      for (const c of t.chains.values()) {
        for (const r of c.rules) {
          if (seen.size >= 256) break;
          if (!r.dst || r.invDst || !r.oif || r.invOif) continue;
          const dev = r.oif.endsWith('+') ? `${r.oif.slice(0, -1)}0` : r.oif;
          const plen = maskToCidr(r.dst.mask);
          if (!ifaces.includes(dev) || plen <= 0) continue;
          const v6 = r.dst.addr.length === 16;
          const dst = `${v6 ? formatIPv6(r.dst.addr) : formatIPv4(r.dst.addr)}/${plen}`;
          if (seen.has(dst)) continue;
          seen.add(dst);
          (v6 ? routes6 : routes).push({ dst, dev, protocol: 'static', ...(v6 ? { metric: 1024 } : {}), flags: [] });
        }
      }
    }
  }
  // A host address the INPUT chains accept or refuse by (`-d ADDR/32` in a
  // chain only INPUT reaches) is one of the node's own: without it, no packet
  // to that address would meet those rules.
  for (const { addr, dev } of inputAddresses(rss, ifaces)) {
    const v6 = addr.length === 16;
    const link = addrs.find((l) => l.ifname === dev)!;
    const local = v6 ? formatIPv6(addr) : formatIPv4(addr);
    link.addr_info.push(v6 ? { family: 'inet6', local, prefixlen: 128, scope: 'global' } : { family: 'inet', local, prefixlen: 32, scope: 'global', label: dev });
    if (v6) routes6.push({ type: 'local', dst: local, dev, table: 'local', protocol: 'kernel', metric: 0, flags: [] });
    else routes.push({ type: 'local', dst: local, dev, table: 'local', protocol: 'kernel', scope: 'host', prefsrc: local, flags: [] });
  }
  routes.unshift({ dst: 'default', gateway: '10.255.0.254', dev: ifaces[0], flags: [] });
  routes6.unshift({ dst: 'default', gateway: 'fd00:255:0::fe', dev: ifaces[0], metric: 1024, flags: [] });
  const files = new Map([
    ['ip-addr.json', `${JSON.stringify(addrs)}\n`],
    ['ip-route.json', `${JSON.stringify(routes)}\n`],
    ['ip6-route.json', `${JSON.stringify(routes6)}\n`],
    ['sysctl.txt', 'net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n'],
  ]);
  return { files, ifaces };
}


/**
 * The host addresses (`-d A/32`, `-d A/128`, not inverted) of the rules in
 * chains reached from INPUT and from no other builtin chain, but for those
 * the FORWARD chains also name; each on the interface its rule names
 * (`-i IF`), else the first. At most 64.
 */
function inputAddresses(rss: readonly Ruleset[], ifaces: readonly string[]): { addr: Uint8Array; dev: string }[] {
  const input = new Map<string, { addr: Uint8Array; dev: string }>();
  const forward = new Set<string>();
  for (const rs of rss) {
    for (const t of rs.tables.values()) {
      // the builtin chains each user chain is reached from
      const from = new Map<string, Set<string>>();
      const walk = (chain: string, hook: string, depth: number) => {
        const c = t.chains.get(chain);
        if (!c || depth > 64) return;
        let seen = from.get(chain);
        if (!seen) from.set(chain, (seen = new Set()));
        if (seen.has(hook)) return;
        seen.add(hook);
        for (const r of c.rules) if (r.target.kind === 'jump' || r.target.kind === 'goto') walk(r.target.chain, hook, depth + 1);
      };
      for (const hook of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) walk(hook, hook, 0);
      for (const [chain, hooks] of from) {
        const c = t.chains.get(chain)!;
        for (const r of c.rules) {
          if (!r.dst || r.invDst || maskToCidr(r.dst.mask) !== r.dst.addr.length * 8) continue;
          const key = r.dst.addr.join('.');
          if (hooks.has('FORWARD')) forward.add(key);
          if (hooks.size !== 1 || !hooks.has('INPUT') || input.has(key) || input.size >= 64) continue;
          if (r.dst.addr.length === 4 && (r.dst.addr[0] === 127 || r.dst.addr[0]! >= 224 || r.dst.addr[0] === 0)) continue;
          if (r.dst.addr.length === 16 && (r.dst.addr[0] === 0xff || r.dst.addr.every((b, i) => b === (i === 15 ? 1 : 0)))) continue;
          const dev = r.iif && !r.invIif && ifaces.includes(r.iif) ? r.iif : ifaces[0]!;
          input.set(key, { addr: r.dst.addr, dev });
        }
      }
    }
  }
  return [...input].filter(([k]) => !forward.has(k)).map(([, v]) => v);
}
