/**
 * Reading a node snapshot: a directory of files named after the commands that
 * produced them (see capture.ts). Unknown files are ignored; a missing file
 * means "as on a fresh host": lo up with 127.0.0.1/8 and ::1/128, the routes
 * the kernel derives from the addresses (route/derive.ts), the default rules
 * (0 local, 32766 main, 32767 default; IPv6 without 32767), and a fresh
 * namespace's sysctls.
 *
 *   iptables-save.txt, ip6tables-save.txt   rulesets (kept as text, with the backend)
 *   ip-link.json   ip -j -d link show       ip-addr.json   ip -j addr show
 *   ip-route.json  ip -j route show table all (both families)
 *   ip6-route.json ip -j -6 route show table all
 *   ip-rule.json   ip -j rule show          ip6-rule.json  ip -j -6 rule show
 *   sysctl.txt     sysctl -a
 *   ipset-save.txt ipset save              the node's ipsets (compiler/ipset.ts); without it
 *                                          the node has none
 *   ss.txt         ss -H -tuwane ...       the sockets (ss.ts; --inet-sockopt; raw ones too); without it every
 *                                          TCP and UDP port is taken as closed
 *   ebtables-save.txt  ebtables-save -c    the bridge tables (bridge.ts)
 *   bridge-fdb.json    bridge -j fdb show  the forwarding database
 *   bridge-vlan.json   bridge -j vlan show the ports' VLANs
 *   pf.os          the OS fingerprints loaded with `nfnl_osf -f` (the osf
 *                  match; the kernel cannot list them, so the user adds it)
 *   cgroup2.txt    the cgroup v2 tree's directories, one `/PATH` a line
 *                  (cgroup.ts): `-m cgroup --path` must name one of them
 *   xfrm-policy.txt, xfrm-state.txt   ip -s xfrm policy show, ip xfrm state show (`-m policy`; a node
 *                                     without states has its policies checked: hooks/route/xfrm.ts)
 *   xfrm-default.txt                  ip xfrm policy getdefault
 *   nfacct.txt     nfacct list             the extended accounting objects (`-m nfacct`)
 *   nfct-timeout.txt  nfct list timeout    the cttimeout policies (`-j CT --timeout`)
 *   protocols.txt  the IP protocols the kernel has handlers for (protocols.ts; derived by
 *                  `nfvm snapshot` from the kernel configuration and /proc/modules); without
 *                  it every protocol is taken as handled (no protocol unreachable)
 *   (the bridges and their ports come from ip-link.json's linkinfo)
 *
 * Every problem is an NfvmError naming the file, the line and column (JSON
 * syntax, or the offending key for a value of the wrong shape) and the reason.
 */
import { isAscii } from 'node:buffer';
import { XfrmPolicies, parseXfrmDefaults, parseXfrmPolicies } from '../route/xfrm.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NfvmError } from '../../core/errors.js';
import { parseAddr, parsePrefix, maskAddr, type Family, type IpAddr } from '../route/addr.js';
import { deriveRoutes4, deriveRoutes6 } from '../route/derive.js';
import { Fib, defaultRule, defaultRules } from '../route/fib.js';
import {
  FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_NOP, FR_ACT_PROHIBIT, FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, RTN_NAMES,
  RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, SCOPE_NAMES, type FibRule, type Nexthop,
  type Route,
} from '../route/types.js';
import { int, isObject, JsonPath, objects, parseJson, str, strList, u32, type JsonObject, type JsonValue } from './json.js';
import { Node, type Address, type Link, type RulesetText } from './node.js';
import { type Backend } from '../../core/netfilter.js';
import { checkSocketDevices, parseSs } from './ss.js';
import { parseProtocols } from './protocols.js';
import { parseCgroupTree } from './cgroup.js';
import { parseIpsetSave } from '../../compiler/ipset.js';
import { buildServices, parseIpvsadmSave, type IpvsConfig } from '../ipvs/index.js';
import { checkSysctlNumbers, parseSysctl, Sysctls, sysctlDevice } from './sysctl.js';
import { ebtablesBackend, neighWithAddr, parseBridgeLinks, parseNeighTable, parseEbtablesSave, parseFdb, parseVlans, type BridgeLevel } from './bridge.js';

export const SNAPSHOT_FILES = [
  'iptables-save.txt', 'ip6tables-save.txt', 'ip-link.json', 'ip-addr.json', 'ip-route.json', 'ip6-route.json', 'ip-rule.json',
  'ip6-rule.json', 'sysctl.txt', 'ss.txt', 'ipset-save.txt', 'ebtables-save.txt', 'bridge-fdb.json', 'bridge-vlan.json', 'ip-neigh.json',
  'pf.os', 'ipvsadm-save.txt', 'cgroup2.txt', 'xfrm-policy.txt', 'xfrm-state.txt', 'xfrm-default.txt', 'nfacct.txt', 'nfct-timeout.txt',
  'protocols.txt',
] as const;

/** Files larger than this are refused (a snapshot is text of a few MB at most). */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

/**
 * Reads a snapshot directory; `replace` gives texts that stand for some of
 * its files (the same node with another ruleset: `nfvm diff --snapshot`).
 */
export function readSnapshot(dir: string, replace?: ReadonlyMap<string, string>): Node {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NfvmError('io', code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : `cannot read (${code})`, dir, undefined, undefined);
  }
  const files = new Map<string, string>();
  for (const n of names) {
    if (!(SNAPSHOT_FILES as readonly string[]).includes(n) || replace?.has(n)) continue;
    const p = join(dir, n);
    try {
      if (statSync(p).size > MAX_FILE_BYTES) throw new NfvmError('io', 'file too large', p, undefined, undefined);
      const b = readFileSync(p);
      // ASCII (nearly every snapshot file) is its own Latin-1: a copy instead of a UTF-8 decode (a second on a 140 MB iptables-save)
      files.set(n, b.toString(isAscii(b) ? 'latin1' : 'utf8'));
    } catch (e) {
      if (e instanceof NfvmError) throw e;
      throw new NfvmError('io', `cannot read (${(e as NodeJS.ErrnoException).code})`, p, undefined, undefined);
    }
  }
  for (const [n, t] of replace ?? []) files.set(n, t);
  return buildNode(dir, files, names.filter((n) => !(SNAPSHOT_FILES as readonly string[]).includes(n)).sort());
}

/** Builds a node from file texts keyed by file name (missing ones take the defaults). */
export function buildNode(dir: string, files: ReadonlyMap<string, string>, ignored: readonly string[] = []): Node {
  const path = (n: string) => (dir ? join(dir, n) : n);
  const json = (n: string) => {
    const t = files.get(n);
    if (t === undefined) return undefined;
    const doc = parseJson(t, path(n));
    const root = new JsonPath(doc, '', { line: 1, col: 1 });
    if (!Array.isArray(doc.value)) throw root.error('expected a JSON array');
    return { doc, root, items: doc.value as JsonValue[] };
  };

  // Links and addresses.
  const linkDoc = json('ip-link.json');
  const addrDoc = json('ip-addr.json');
  const links = new Map<string, Link>();
  const byIndex = new Map<number, string>();
  const addLink = (p: JsonPath, o: JsonObject) => {
    const l = parseLink(p, o);
    if (links.has(l.name)) throw p.child(o, 'ifname').error(`duplicate interface "${l.name}"`);
    if (byIndex.has(l.ifindex)) throw p.child(o, 'ifindex').error(`duplicate ifindex ${l.ifindex}`);
    links.set(l.name, l);
    byIndex.set(l.ifindex, l.name);
  };
  const addresses: Address[] = [];
  if (linkDoc) for (const [i, o] of objects(linkDoc.root, linkDoc.items)) addLink(linkDoc.root.child(linkDoc.items, i), o);
  if (addrDoc) {
    for (const [i, o] of objects(addrDoc.root, addrDoc.items)) {
      const p = addrDoc.root.child(addrDoc.items, i);
      if (linkDoc) {
        const name = str(p.child(o, 'ifname'), o.ifname);
        const l = links.get(name);
        if (!l) throw p.child(o, 'ifname').error(`unknown interface "${name}" (not in ip-link.json)`);
        if (o.ifindex !== undefined && int(p.child(o, 'ifindex'), o.ifindex) !== l.ifindex) throw p.child(o, 'ifindex').error(`ifindex differs from ip-link.json (${l.ifindex})`);
      } else addLink(p, o);
      addresses.push(...parseAddrInfo(p, o, links));
    }
  }
  if (!linkDoc && !addrDoc) {
    links.set('lo', {
      ifindex: 1, name: 'lo', mac: '00:00:00:00:00:00', linkType: 'loopback', kind: '', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], up: true,
      lowerUp: true, loopback: true, mtu: 65536, master: '', slaveKind: '', group: 0, peer: '',
    });
    const lo = (s: string, plen: number): Address => ({
      family: s.includes(':') ? 6 : 4, dev: 'lo', ifindex: 1, local: parseAddr(s)!, prefixlen: plen, broadcast: undefined, scope: 'host',
      secondary: false, noprefixroute: false, tentative: false, deprecated: false, metric: 0, label: s.includes(':') ? '' : 'lo',
    });
    addresses.push(lo('127.0.0.1', 8), lo('::1', 128));
  }
  for (const l of links.values()) {
    if (l.master && !links.has(l.master)) throw new NfvmError('value', `interface "${l.name}": unknown master "${l.master}"`, path(linkDoc ? 'ip-link.json' : 'ip-addr.json'), undefined, l.master);
  }

  // Routes.
  const fib4 = new Fib(4);
  const fib6 = new Fib(6);
  const routeDoc = json('ip-route.json');
  const route6Doc = json('ip6-route.json');
  for (const [d, fam] of [[routeDoc, undefined], [route6Doc, 6]] as const) {
    if (!d) continue;
    for (const [i, o] of objects(d.root, d.items)) {
      const r = parseRoute(d.root.child(d.items, i), o, fam, links);
      (r.family === 4 ? fib4 : fib6).addRoute(r);
    }
  }
  const derive = { links: new Map([...links].map(([n, l]) => [n, { name: n, up: l.up, loopback: l.loopback }])), addrs: addresses };
  if (!routeDoc) for (const r of deriveRoutes4(derive.links, derive.addrs)) fib4.addRoute(r);
  if (!routeDoc && !route6Doc) for (const r of deriveRoutes6(derive.links, derive.addrs)) fib6.addRoute(r);
  // The kernel always has the local and main tables.
  for (const f of [fib4, fib6]) {
    f.table(RT_TABLE_LOCAL);
    f.table(RT_TABLE_MAIN);
  }

  // Rules.
  for (const [name, fib, fam] of [['ip-rule.json', fib4, 4], ['ip6-rule.json', fib6, 6]] as const) {
    const d = json(name);
    if (!d) {
      fib.setRules(defaultRules(fam));
      continue;
    }
    const rules: FibRule[] = [];
    for (const [i, o] of objects(d.root, d.items)) rules.push(parseRule(d.root.child(d.items, i), o, fam));
    fib.setRules(rules);
  }

  // Sysctls.
  const sysText = files.get('sysctl.txt');
  const sysEntries = sysText === undefined ? new Map() : parseSysctl(sysText, path('sysctl.txt'));
  checkSysctlNumbers(sysEntries, path('sysctl.txt'));
  for (const [k, e] of sysEntries) {
    const dev = sysctlDevice(k);
    if (dev !== undefined && !links.has(dev)) throw new NfvmError('value', `unknown interface "${dev}" in ${k}`, path('sysctl.txt'), e.pos, dev);
  }

  const rs = (n: string): RulesetText | undefined => {
    const t = files.get(n);
    return t === undefined ? undefined : { file: path(n), text: t, backend: backendOf(t) };
  };
  const ssText = files.get('ss.txt');
  const sockets = ssText === undefined ? undefined : parseSs(ssText, path('ss.txt'));
  if (sockets) checkSocketDevices(sockets, (n) => links.has(n));
  // The bridge level.
  const bl = linkDoc ? parseBridgeLinks(linkDoc.root, linkDoc.items, links) : { bridges: new Map(), ports: new Map() };
  const fdbText = files.get('bridge-fdb.json');
  const vlanText = files.get('bridge-vlan.json');
  const ebtText = files.get('ebtables-save.txt');
  const neighText = files.get('ip-neigh.json');
  const neighTable = neighText === undefined ? undefined : parseNeighTable(neighText, path('ip-neigh.json'), links);
  const bridge: BridgeLevel = {
    ...bl,
    fdb: fdbText === undefined ? [] : parseFdb(fdbText, path('bridge-fdb.json'), links),
    vlans: vlanText === undefined ? [] : parseVlans(vlanText, path('bridge-vlan.json'), links),
    neigh: neighTable === undefined ? [] : neighWithAddr(neighTable),
    neighTable,
    ebtables: ebtText === undefined ? undefined : { file: path('ebtables-save.txt'), ruleset: parseEbtablesSave(ebtText, path('ebtables-save.txt')), backend: ebtablesBackend(ebtText) },
  };
  const node = new Node(dir, links, addresses, fib4, fib6, new Sysctls(sysEntries, path('sysctl.txt')), rs('iptables-save.txt'), rs('ip6tables-save.txt'), ignored, sockets, ipsetsOf(files.get('ipset-save.txt'), path('ipset-save.txt')), bridge);
  node.ipvs = ipvsOf(files.get('ipvsadm-save.txt'), path('ipvsadm-save.txt'));
  const osf = files.get('pf.os');
  if (osf !== undefined) node.osf = { file: path('pf.os'), text: osf };
  const cg = files.get('cgroup2.txt');
  if (cg !== undefined) node.cgroups = parseCgroupTree(cg, path('cgroup2.txt'));
  const xp = files.get('xfrm-policy.txt');
  const xs = files.get('xfrm-state.txt');
  if (xs !== undefined) node.xfrmNoStates = xs.trim() === '';
  // `ip xfrm policy show` starts each policy with its selector line, unindented
  if (xp !== undefined) node.xfrmPolicies = xp.split('\n').filter((l) => l !== '' && !/^\s/.test(l)).length;
  // Without states no packet is transformed: the policies' checks are what the node does with them.
  if (xp !== undefined && node.xfrmNoStates === true) {
    const db = new XfrmPolicies(parseXfrmPolicies(xp, path('xfrm-policy.txt')));
    const xd = files.get('xfrm-default.txt');
    if (xd !== undefined) parseXfrmDefaults(xd, path('xfrm-default.txt'), db);
    if (db.policies.length || db.defaultBlock.some((b) => b)) node.xfrm = db;
  }
  const acct = files.get('nfacct.txt');
  if (acct !== undefined) node.nfacct = { file: path('nfacct.txt'), text: acct };
  const ctt = files.get('nfct-timeout.txt');
  if (ctt !== undefined) node.ctTimeouts = { file: path('nfct-timeout.txt'), text: ctt };
  const protocols = files.get('protocols.txt');
  if (protocols !== undefined) node.protocols = parseProtocols(protocols, path('protocols.txt'));
  return node;
}

/** The IPVS services (`ipvsadm-save -n`); checked at load: every scheduler named is one nfvm runs. */
function ipvsOf(text: string | undefined, file: string): IpvsConfig | undefined {
  if (text === undefined) return undefined;
  const cfg = parseIpvsadmSave(text, file);
  buildServices(cfg);
  return cfg;
}

/** The node's ipsets from `ipset save` text (located errors: compiler/ipset.ts). */
function ipsetsOf(text: string | undefined, file: string): { file: string; text: string } | undefined {
  if (text === undefined) return undefined;
  parseIpsetSave(text, file);
  return { file, text };
}

/** The backend an iptables-save header names (undefined without a header). */
export function backendOf(text: string): Backend | undefined {
  const m = /^# Generated by (ip6?tables(?:-(legacy|nft))?-save) v([\d.]+)(?: \((legacy|nf_tables)\))?/m.exec(text.slice(0, 4096));
  if (!m) return undefined;
  if (m[2] === 'nft' || m[4] === 'nf_tables') return 'nft';
  // iptables-nft-save always says so; iptables-legacy-save prints "(legacy)" or, as 1.8.9 does,
  // nothing; iptables before 1.8 had only the legacy backend.
  return 'legacy';
}

// ---------------------------------------------------------------------------
// Shape helpers: each takes the path of the value for its error message.

function addrOf(p: JsonPath, v: JsonValue | undefined, family?: Family): IpAddr {
  const s = str(p, v);
  const a = parseAddr(s);
  if (!a) throw p.error(`bad address "${s}"`);
  if (family && a.family !== family) throw p.error(`"${s}" is not an IPv${family} address`);
  return a;
}

function parseLink(p: JsonPath, o: JsonObject): Link {
  const name = str(p.child(o, 'ifname'), o.ifname);
  if (name === '' || name.length > 15 || /[\s/:]/.test(name)) throw p.child(o, 'ifname').error(`bad interface name "${name}"`);
  const flags = strList(p, o, 'flags');
  const li = o.linkinfo;
  if (li !== undefined && !isObject(li)) throw p.child(o, 'linkinfo').error('expected an object');
  const kind = li?.info_kind === undefined ? '' : str(p.child(o, 'linkinfo').child(li, 'info_kind'), li.info_kind);
  const slaveKind = li?.info_slave_kind === undefined ? '' : str(p.child(o, 'linkinfo').child(li, 'info_slave_kind'), li.info_slave_kind);
  let group = 0;
  if (o.group !== undefined) {
    const g = o.group;
    if (g === 'default') group = 0;
    else if (typeof g === 'number') group = int(p.child(o, 'group'), g);
    else if (typeof g === 'string' && /^\d+$/.test(g)) group = Number(g);
    else p.child(o, 'group').fail('expected "default" or a number');
  }
  return {
    ifindex: int(p.child(o, 'ifindex'), o.ifindex, 1, 0x7fffffff),
    name,
    mac: o.address === undefined ? '' : str(p.child(o, 'address'), o.address),
    linkType: o.link_type === undefined ? '' : str(p.child(o, 'link_type'), o.link_type),
    kind,
    flags,
    up: flags.includes('UP'),
    lowerUp: flags.includes('LOWER_UP'),
    loopback: flags.includes('LOOPBACK'),
    mtu: o.mtu === undefined ? 1500 : int(p.child(o, 'mtu'), o.mtu),
    master: o.master === undefined ? '' : str(p.child(o, 'master'), o.master),
    slaveKind,
    group,
    peer: typeof o.link === 'string' ? o.link : '',
  };
}

function parseAddrInfo(p: JsonPath, o: JsonObject, links: Map<string, Link>): Address[] {
  const dev = o.ifname as string;
  const link = links.get(dev)!;
  const ai = o.addr_info;
  if (ai === undefined) return [];
  const ap = p.child(o, 'addr_info');
  if (!Array.isArray(ai)) throw ap.error('expected an array');
  const out: Address[] = [];
  /** The subnets of the primary IPv4 addresses so far, as `prefixlen/masked word` (one lookup per address, not a scan). */
  const primaries = new Set<string>();
  for (let i = 0; i < ai.length; i++) {
    const e = ai[i];
    const q = ap.child(ai, i);
    if (!isObject(e)) throw q.error('expected an object');
    const fam = str(q.child(e, 'family'), e.family);
    if (fam !== 'inet' && fam !== 'inet6') continue; // e.g. AF_PACKET entries on some versions
    const family: Family = fam === 'inet' ? 4 : 6;
    const local = addrOf(q.child(e, 'local'), e.local, family);
    const prefixlen = int(q.child(e, 'prefixlen'), e.prefixlen, 0, family === 4 ? 32 : 128);
    let secondary = e.secondary === true;
    if (family === 4 && !secondary) {
      // inet_insert_ifa(): an address inside a primary's subnet becomes secondary.
      const net = `${prefixlen}/${maskAddr(local, prefixlen).w[0]}`;
      secondary = primaries.has(net);
      if (!secondary) primaries.add(net);
    }
    out.push({
      family, dev, ifindex: link.ifindex, local, prefixlen,
      broadcast: e.broadcast === undefined ? undefined : addrOf(q.child(e, 'broadcast'), e.broadcast, 4),
      scope: e.scope === undefined ? 'global' : typeof e.scope === 'number' ? String(e.scope) : str(q.child(e, 'scope'), e.scope),
      secondary,
      noprefixroute: e.noprefixroute === true,
      tentative: e.tentative === true,
      deprecated: e.deprecated === true,
      metric: e.metric === undefined ? 0 : int(q.child(e, 'metric'), e.metric),
      label: typeof e.label === 'string' ? e.label : '',
    });
  }
  return out;
}

function tableId(p: JsonPath, v: JsonValue | undefined): number {
  if (v === undefined) return RT_TABLE_MAIN;
  if (typeof v === 'number') return int(p, v, 1);
  const s = str(p, v);
  if (s === 'local') return RT_TABLE_LOCAL;
  if (s === 'main') return RT_TABLE_MAIN;
  if (s === 'default') return RT_TABLE_DEFAULT;
  if (/^\d{1,10}$/.test(s) && Number(s) >= 1 && Number(s) <= 0xffffffff) return Number(s);
  return p.fail(`unknown table "${s}" (names other than local/main/default need the node's rt_tables; give the number)`);
}

function devOf(p: JsonPath, v: JsonValue | undefined, links: Map<string, Link>): string {
  const d = str(p, v);
  if (!links.has(d)) throw p.error(`unknown interface "${d}"`);
  return d;
}

function gatewayOf(p: JsonPath, o: JsonObject, family: Family | undefined): IpAddr | undefined {
  if (o.gateway !== undefined) return addrOf(p.child(o, 'gateway'), o.gateway, family);
  if (o.via !== undefined) {
    const v = o.via;
    if (!isObject(v)) throw p.child(o, 'via').error('expected an object');
    return addrOf(p.child(o, 'via').child(v, 'host'), v.host);
  }
  return undefined;
}

/** A realm as iproute2 prints it (rtnl_rtrealm_n2a): a number, or a name of /etc/iproute2/rt_realms as installed. */
function realmOf(p: JsonPath, v: JsonValue | undefined): number {
  if (v === 'cosmos') return 0;
  const t = typeof v === 'number' ? String(v) : str(p, v);
  if (!/^\d+$/.test(t) || Number(t) > 0xffff) throw p.error(`bad realm "${t}"`);
  return Number(t);
}

/** A nexthop's `flow` object ({from, to}: RTA_FLOW) as nh_tclassid, FROM << 16 | TO. */
function flowOf(p: JsonPath, o: JsonObject): number {
  if (o.flow === undefined) return 0;
  const f = o.flow;
  const q = p.child(o, 'flow');
  if (!isObject(f)) throw q.error('expected an object');
  const from = f.from === undefined ? 0 : realmOf(q.child(f, 'from'), f.from);
  const to = f.to === undefined ? 0 : realmOf(q.child(f, 'to'), f.to);
  return ((from << 16) | to) >>> 0;
}

function parseRoute(p: JsonPath, o: JsonObject, fileFamily: Family | undefined, links: Map<string, Link>): Route {
  const typeName = o.type === undefined ? 'unicast' : str(p.child(o, 'type'), o.type);
  const type = RTN_NAMES.indexOf(typeName);
  if (type <= 0) throw p.child(o, 'type').error(`unknown route type "${typeName}"`);
  const dstText = str(p.child(o, 'dst'), o.dst);
  // The family: from dst, else from the gateway/prefsrc, else IPv6 routes carry "pref", else the file's.
  let family: Family | undefined = fileFamily;
  if (dstText !== 'default') family = dstText.includes(':') ? 6 : 4;
  else if (typeof o.gateway === 'string') family = o.gateway.includes(':') ? 6 : 4;
  else if (typeof o.prefsrc === 'string') family = o.prefsrc.includes(':') ? 6 : 4;
  else family ??= o.pref !== undefined ? 6 : 4;
  if (fileFamily && family !== fileFamily) throw p.child(o, 'dst').error(`not an IPv${fileFamily} route`);
  const pr = parsePrefix(dstText, family);
  if (!pr) throw p.child(o, 'dst').error(`bad destination "${dstText}"`);
  // iproute2 prints the scope only when it is not universe.
  let scope = RT_SCOPE_UNIVERSE;
  if (o.scope !== undefined) {
    const sv = o.scope;
    if (typeof sv === 'number') scope = int(p.child(o, 'scope'), sv, 0, 255);
    else {
      const s = SCOPE_NAMES.get(str(p.child(o, 'scope'), sv));
      if (s === undefined) throw p.child(o, 'scope').error(`unknown scope "${String(sv)}"`);
      scope = s;
    }
  }
  const nexthops: Nexthop[] = [];
  if (o.nexthops !== undefined) {
    const nv = o.nexthops;
    const np = p.child(o, 'nexthops');
    if (!Array.isArray(nv) || nv.length === 0) throw np.error('expected a non-empty array');
    for (let i = 0; i < nv.length; i++) {
      const n = nv[i];
      const q = np.child(nv, i);
      if (!isObject(n)) throw q.error('expected an object');
      nexthops.push({
        gateway: gatewayOf(q, n, family),
        dev: n.dev === undefined ? '' : devOf(q.child(n, 'dev'), n.dev, links),
        weight: n.weight === undefined ? 1 : int(q.child(n, 'weight'), n.weight, 1, 256),
        flags: strList(q, n, 'flags'),
        realm: flowOf(q, n),
      });
    }
  } else if (o.dev !== undefined || o.gateway !== undefined || o.via !== undefined) {
    nexthops.push({
      gateway: gatewayOf(p, o, family),
      dev: o.dev === undefined ? '' : devOf(p.child(o, 'dev'), o.dev, links),
      weight: 1,
      flags: strList(p, o, 'flags'),
      realm: flowOf(p, o),
    });
  }
  return {
    family,
    table: tableId(p.child(o, 'table'), o.table),
    type,
    dst: maskAddr(pr.addr, pr.plen),
    plen: pr.plen,
    tos: o.tos === undefined ? 0 : u32(p.child(o, 'tos'), o.tos) & 0xff,
    metric: o.metric === undefined ? 0 : int(p.child(o, 'metric'), o.metric),
    scope,
    protocol: o.protocol === undefined ? 'boot' : typeof o.protocol === 'number' ? String(o.protocol) : str(p.child(o, 'protocol'), o.protocol),
    prefsrc: o.prefsrc === undefined ? undefined : addrOf(p.child(o, 'prefsrc'), o.prefsrc, family),
    nexthops,
  };
}

const PROTO_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['ip', 0], ['icmp', 1], ['igmp', 2], ['tcp', 6], ['udp', 17], ['gre', 47], ['esp', 50], ['ah', 51], ['ipv6-icmp', 58], ['icmpv6', 58],
  ['sctp', 132], ['udplite', 136], ['dccp', 33], ['ipv6', 41], ['ipip', 4], ['ospf', 89], ['pim', 103], ['vrrp', 112], ['l2tp', 115], ['mptcp', 262],
]);

function portRange(p: JsonPath, o: JsonObject, key: 'sport' | 'dport'): [number, number] {
  if (o[key] !== undefined) {
    const v = int(p.child(o, key), o[key], 0, 65535);
    return [v, v];
  }
  if (o[`${key}_start`] !== undefined || o[`${key}_end`] !== undefined) {
    const a = int(p.child(o, `${key}_start`), o[`${key}_start`], 0, 65535);
    const b = int(p.child(o, `${key}_end`), o[`${key}_end`], a, 65535);
    return [a, b];
  }
  return [0, 0];
}

function parseRule(p: JsonPath, o: JsonObject, family: Family): FibRule {
  const pref = int(p.child(o, 'priority'), o.priority);
  const max = family === 4 ? 32 : 128;
  const side = (key: 'src' | 'dst'): [IpAddr | undefined, number] => {
    const v = o[key];
    if (v === undefined || v === 'all') return [undefined, 0];
    const a = addrOf(p.child(o, key), v, family);
    const len = o[`${key}len`] === undefined ? max : int(p.child(o, `${key}len`), o[`${key}len`], 0, max);
    return [maskAddr(a, len), len];
  };
  const [src, srcLen] = side('src');
  const [dst, dstLen] = side('dst');
  let action: number;
  let table = 0;
  let gotoTarget = 0;
  if (o.goto !== undefined) {
    action = FR_ACT_GOTO;
    gotoTarget = int(p.child(o, 'goto'), o.goto);
    if (gotoTarget <= pref) throw p.child(o, 'goto').error('backward goto (the kernel refuses a target not after the rule)');
  } else if (o.nop !== undefined) action = FR_ACT_NOP;
  else if (o.action !== undefined) {
    const a = str(p.child(o, 'action'), o.action);
    const m = new Map([['unreachable', FR_ACT_UNREACHABLE], ['prohibit', FR_ACT_PROHIBIT], ['blackhole', FR_ACT_BLACKHOLE]]).get(a);
    if (m === undefined) throw p.child(o, 'action').error(`unknown rule action "${a}"`);
    action = m;
  } else if (o.table !== undefined) {
    action = FR_ACT_TO_TBL;
    table = tableId(p.child(o, 'table'), o.table);
  } else return p.fail('rule without table, goto, nop or action');
  let mark = 0;
  let markMask = 0;
  if (o.fwmark !== undefined) {
    mark = u32(p.child(o, 'fwmark'), o.fwmark);
    markMask = o.fwmask === undefined ? 0xffffffff : u32(p.child(o, 'fwmask'), o.fwmask);
  } else if (o.fwmask !== undefined) markMask = u32(p.child(o, 'fwmask'), o.fwmask);
  let ipProto = 0;
  if (o.ipproto !== undefined) {
    const v = o.ipproto;
    if (typeof v === 'number') ipProto = int(p.child(o, 'ipproto'), v, 0, 255);
    else {
      const s = str(p.child(o, 'ipproto'), v);
      const n = /^\d+$/.test(s) ? Number(s) : /^ipproto-(\d+)$/.exec(s) ? Number(s.slice(8)) : PROTO_NUMBERS.get(s);
      if (n === undefined || n > 255) throw p.child(o, 'ipproto').error(`unknown protocol "${s}"`);
      ipProto = n;
    }
  }
  const base = defaultRule(family, pref, table);
  return {
    ...base,
    action, gotoTarget,
    invert: o.not !== undefined,
    src, srcLen, dst, dstLen,
    iif: o.iif === undefined ? '' : str(p.child(o, 'iif'), o.iif),
    oif: o.oif === undefined ? '' : str(p.child(o, 'oif'), o.oif),
    mark, markMask,
    tos: o.tos === undefined ? 0 : u32(p.child(o, 'tos'), o.tos) & 0xff,
    dscp: o.dscp === undefined ? -1 : u32(p.child(o, 'dscp'), o.dscp) & 0x3f,
    ipProto,
    sport: portRange(p, o, 'sport'),
    dport: portRange(p, o, 'dport'),
    uid: o.uid_start === undefined ? undefined : [int(p.child(o, 'uid_start'), o.uid_start), int(p.child(o, 'uid_end'), o.uid_end)],
    suppressPrefixlen: o.suppress_prefixlen === undefined ? -1 : int(p.child(o, 'suppress_prefixlen'), o.suppress_prefixlen, 0, max),
    suppressIfgroup: o.suppress_ifgroup === undefined ? -1 : int(p.child(o, 'suppress_ifgroup'), o.suppress_ifgroup),
    unmatchable: o.l3mdev !== undefined || (o.tun_id !== undefined && o.tun_id !== 0),
    realms: (((o.flow_from === undefined ? 0 : realmOf(p.child(o, 'flow_from'), o.flow_from)) << 16) |
      (o.flow_to === undefined ? 0 : realmOf(p.child(o, 'flow_to'), o.flow_to))) >>> 0,
  };
}
