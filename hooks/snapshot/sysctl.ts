/**
 * sysctl values of a node: `sysctl -a` lines over the defaults of a fresh
 * namespace, with typed getters that combine per-device and `all` values the
 * way the kernel's IN_DEV_* macros do (include/linux/inetdevice.h, 6.18):
 *   IN_DEV_MAXCONF  rp_filter, arp_ignore              max(all, dev)
 *   IN_DEV_ORCONF   accept_local, route_localnet,      all || dev
 *                   src_valid_mark, log_martians
 *   IN_DEV_CONF_GET forwarding                          dev only
 * A device's own value defaults to conf.default's (devinet copies it when the
 * device appears). Writing net.ipv4.ip_forward sets conf.all, conf.default
 * and every device (inet_forward_change), so a file that gives only
 * ip_forward is read that way.
 */
import { NfvmError, type SourcePos } from '../../core/errors.js';
import FRESH_NETNS_SYSCTL from './fresh-netns.sysctl' with { type: 'text' };

export interface SysctlEntry {
  readonly value: string;
  readonly pos: SourcePos;
}

/** Parses `key = value` lines (`#`/`;` comments and blank lines allowed). */
export function parseSysctl(text: string, file: string): Map<string, SysctlEntry> {
  const out = new Map<string, SysctlEntry>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!.replace(/\r$/, '');
    const t = raw.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const col = raw.indexOf(t) + 1;
    const eq = t.indexOf('=');
    if (eq < 0) throw new NfvmError('syntax', 'expected "key = value"', file, { line: n + 1, col }, t);
    const key = t.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.\/:@+-]*$/.test(key)) throw new NfvmError('syntax', `bad sysctl key "${key}"`, file, { line: n + 1, col }, key);
    out.set(normaliseKey(key), { value: t.slice(eq + 1).trim(), pos: { line: n + 1, col } });
  }
  return out;
}

/** sysctl prints a '.' inside an interface name as '/' (net.ipv4.conf.eth0/100.rp_filter). */
function normaliseKey(key: string): string {
  const m = /^(net\.ipv[46]\.(?:conf|neigh)\.)([^.]+(?:\.[^.]+)*?)\.([a-z0-9_]+)$/.exec(key);
  if (!m) return key;
  return m[1]! + m[2]!.replaceAll('/', '.') + '.' + m[3]!;
}

let freshCache: Map<string, string> | undefined;
function fresh(): Map<string, string> {
  if (freshCache) return freshCache;
  const m = new Map<string, string>();
  for (const [k, e] of parseSysctl(FRESH_NETNS_SYSCTL, '<fresh namespace>')) m.set(k, e.value);
  return (freshCache = m);
}

/** The keys nfvm reads as numbers: the per-device conf of both families, ip_forward, br_netfilter's and conntrack's knobs. */
const READ_AS_NUMBER = /^net\.ipv[46]\.conf\.|^net\.ipv4\.ip_forward$|^net\.bridge\.|^net\.netfilter\.nf_conntrack_/;
const INTEGER = /^-?\d+$/;

/**
 * Refuses a value that is not a number where nfvm reads one: a key of
 * READ_AS_NUMBER whose value in a fresh namespace is an integer (a device's
 * conf key is compared with conf.default's).
 */
export function checkSysctlNumbers(entries: ReadonlyMap<string, SysctlEntry>, file: string): void {
  for (const [k, e] of entries) {
    if (!READ_AS_NUMBER.test(k) || INTEGER.test(e.value)) continue;
    const dev = sysctlDevice(k);
    const f = fresh().get(k) ?? (dev === undefined ? undefined : fresh().get(k.replace(`.${dev}.`, '.default.')));
    if (f !== undefined && INTEGER.test(f)) throw new NfvmError('value', `${k}: expected a number, not "${e.value}"`, file, e.pos, e.value);
  }
}

/** The device a conf/neigh key names, or undefined for other keys and all/default. */
export function sysctlDevice(key: string): string | undefined {
  const m = /^net\.ipv[46]\.(?:conf|neigh)\.(.+)\.[a-z0-9_]+$/.exec(key);
  if (!m || m[1] === 'all' || m[1] === 'default') return undefined;
  return m[1];
}

export class Sysctls {
  private readonly given = new Map<string, string>();
  private readonly where = new Map<string, SourcePos>();

  /** `file`: where the entries were read (for errors about a value). */
  constructor(entries: ReadonlyMap<string, SysctlEntry> = new Map(), readonly file = 'sysctl.txt') {
    for (const [k, e] of entries) {
      this.given.set(k, e.value);
      this.where.set(k, e.pos);
    }
    const fwd = this.given.get('net.ipv4.ip_forward');
    const allFwd = this.given.get('net.ipv4.conf.all.forwarding');
    if (fwd !== undefined && allFwd === undefined) {
      this.given.set('net.ipv4.conf.all.forwarding', fwd);
      if (!this.given.has('net.ipv4.conf.default.forwarding')) this.given.set('net.ipv4.conf.default.forwarding', fwd);
    } else if (fwd === undefined && allFwd !== undefined) this.given.set('net.ipv4.ip_forward', allFwd);
  }

  /** The raw value: the file's, else a fresh namespace's; undefined when neither has the key. */
  get(key: string): string | undefined {
    return this.given.get(key) ?? fresh().get(key);
  }

  /** Where the snapshot gave the key (line, column), undefined when it did not. */
  pos(key: string): SourcePos | undefined {
    return this.where.get(key);
  }

  /** Whether the snapshot itself gave the key. */
  has(key: string): boolean {
    return this.given.has(key);
  }

  /** The first number of the value (NaN when absent or not numeric). */
  num(key: string): number {
    const v = this.get(key);
    if (v === undefined) return NaN;
    const m = /^-?\d+/.exec(v);
    return m ? Number(m[0]) : NaN;
  }

  /** Every key the snapshot gave. */
  keys(): IterableIterator<string> {
    return this.given.keys();
  }

  /**
   * The conf values read so far, by family, name and device ('\0all' for
   * conf.all): worked out once (the sysctls are fixed once read; the packet
   * path asks for some on every packet).
   */
  private readonly confMemo: [Map<string, Map<string, number>>, Map<string, Map<string, number>>] = [new Map(), new Map()];

  private memoConf(family: 4 | 6, dev: string, name: string): number {
    const byName = this.confMemo[family === 4 ? 0 : 1];
    let byDev = byName.get(name);
    if (byDev === undefined) byName.set(name, (byDev = new Map()));
    let v = byDev.get(dev);
    if (v === undefined) {
      v = dev === ALL ? intOf(this.get(`net.ipv${family}.conf.all.${name}`) ?? '0') : this.readDevConf(family, dev, name);
      byDev.set(dev, v);
    }
    return v;
  }

  /** conf.<dev>.<name> of a family: the device's own value, else conf.default's. */
  devConf(family: 4 | 6, dev: string, name: string): number {
    return this.memoConf(family, dev, name);
  }

  private readDevConf(family: 4 | 6, dev: string, name: string): number {
    const p = `net.ipv${family}.conf.`;
    const own = this.given.get(`${p}${dev}.${name}`);
    if (own !== undefined) return intOf(own);
    if (!this.given.has(`${p}default.${name}`)) {
      const f = fresh().get(`${p}${dev}.${name}`);
      if (f !== undefined) return intOf(f);
    }
    return intOf(this.get(`${p}default.${name}`) ?? '0');
  }

  allConf(family: 4 | 6, name: string): number {
    return this.memoConf(family, ALL, name);
  }

  /** net.ipv4.ip_forward. */
  ipForward(): boolean {
    return this.num('net.ipv4.ip_forward') > 0;
  }

  /** IN_DEV_FORWARD(dev): the device's forwarding flag (what ip_route_input checks for forwarding). */
  forwarding(dev: string): boolean {
    return this.devConf(4, dev, 'forwarding') > 0;
  }

  /** IN_DEV_RPFILTER: max(all, dev); 0 off, 1 strict, 2 loose. */
  rpFilter(dev: string): number {
    return Math.max(this.allConf(4, 'rp_filter'), this.devConf(4, dev, 'rp_filter'));
  }

  acceptLocal(dev: string): boolean {
    return this.orConf(dev, 'accept_local');
  }

  routeLocalnet(dev: string): boolean {
    return this.orConf(dev, 'route_localnet');
  }

  srcValidMark(dev: string): boolean {
    return this.orConf(dev, 'src_valid_mark');
  }

  logMartians(dev: string): boolean {
    return this.orConf(dev, 'log_martians');
  }

  /** net.ipv6.conf.<dev|all>.forwarding. */
  ipv6Forwarding(dev = 'all'): boolean {
    return (dev === 'all' ? this.allConf(6, 'forwarding') : this.devConf(6, dev, 'forwarding')) > 0;
  }

  /**
   * idev->cnf.disable_ipv6 of a device: its own value, `all`'s when only
   * that is given. Worked out once per device (the sysctls are fixed once
   * read; the packet path asks for every IPv6 packet).
   */
  ipv6Disabled(dev = 'all'): boolean {
    let off = this.disabled6.get(dev);
    if (off === undefined) {
      off = dev === 'all' || (!this.given.has(`net.ipv6.conf.${dev}.disable_ipv6`) && this.given.has('net.ipv6.conf.all.disable_ipv6'))
        ? this.allConf(6, 'disable_ipv6') > 0
        : this.devConf(6, dev, 'disable_ipv6') > 0;
      this.disabled6.set(dev, off);
    }
    return off;
  }

  private readonly disabled6 = new Map<string, boolean>();

  /** net.bridge.bridge-nf-call-iptables (1 in a fresh namespace with br_netfilter). */
  bridgeNfCallIptables(): boolean {
    return this.num('net.bridge.bridge-nf-call-iptables') > 0;
  }

  bridgeNfCallIp6tables(): boolean {
    return this.num('net.bridge.bridge-nf-call-ip6tables') > 0;
  }

  /** net.netfilter.nf_conntrack_tcp_loose. */
  conntrackTcpLoose(): boolean {
    return this.num('net.netfilter.nf_conntrack_tcp_loose') > 0;
  }

  conntrackChecksum(): boolean {
    return this.num('net.netfilter.nf_conntrack_checksum') > 0;
  }

  /**
   * IN_DEV_ORCONF(dev, NOPOLICY): no xfrm policy check for packets received
   * on dev (loopback's default is 1). IPv6 (net.ipv6.conf.all / DEV
   * .disable_policy, loopback's default 0): ip6_forward's check of the input
   * device, and the local routes' DST_NOPOLICY (addrconf_f6i_alloc).
   */
  disablePolicy(dev: string, family: 4 | 6 = 4): boolean {
    return this.orConf(dev, 'disable_policy', family);
  }

  /** IN_DEV_ORCONF(dev, NOXFRM): routes out of dev get DST_NOXFRM, no xfrm lookup (loopback's default is 1). */
  disableXfrm(dev: string): boolean {
    return this.orConf(dev, 'disable_xfrm');
  }

  /** net.core.xfrm_larval_drop (default 1): a packet whose IPsec state does not exist yet is dropped rather than queued. */
  xfrmLarvalDrop(): boolean {
    const v = this.num('net.core.xfrm_larval_drop');
    return Number.isNaN(v) || v !== 0;
  }

  private orConf(dev: string, name: string, family: 4 | 6 = 4): boolean {
    return this.allConf(family, name) > 0 || this.devConf(family, dev, name) > 0;
  }
}

/** conf.all's key in the memo (no device is named with a NUL). */
const ALL = '\0all';

function intOf(v: string): number {
  const m = /^-?\d+/.exec(v);
  return m ? Number(m[0]) : 0;
}
