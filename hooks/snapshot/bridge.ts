/**
 * The bridge level of a snapshot: the bridges and their ports as
 * `ip -j -d link show` describes them (linkinfo info_data of a `bridge`,
 * info_slave_data of its ports: net/bridge/br_netlink.c), the forwarding
 * database (`bridge -j fdb show`, bridge-fdb.json), the VLANs of the ports
 * (`bridge -j vlan show`, bridge-vlan.json) and the ebtables ruleset
 * (`ebtables-save -c`, ebtables-save.txt).
 *
 * Every problem is an NfvmError naming the file, line and column.
 */
import { parseMac } from '../../core/addr.js';
import type { EbtRuleset } from '../../core/ebt-ast.js';
import { parseEbtRestore } from '../../compiler/ebt/restore.js';
import { int, isObject, JsonPath, objects, parseJson, str, strList, type JsonObject, type JsonValue } from './json.js';
import type { Link } from './node.js';
import type { Backend } from '../../core/netfilter.js';

/** BR_STATE_* (include/uapi/linux/if_bridge.h) by the names ip prints. */
export const BR_PORT_STATES = ['disabled', 'listening', 'learning', 'forwarding', 'blocking'] as const;
export type BridgePortState = (typeof BR_PORT_STATES)[number];

export interface BridgeDevice {
  name: string;
  /** 6 bytes: the bridge's own address. */
  mac: Uint8Array;
  vlanFiltering: boolean;
  /** 0 off, 1 kernel STP, 2 user STP. */
  stpState: number;
  /** FDB ageing time in centiseconds as ip prints it (BR_DEFAULT_AGEING_TIME 300 s = 30000). */
  ageingTime: number;
  /** The bridge's own nf_call_iptables/ip6tables/arptables options (br_netfilter also reads the sysctls). */
  nfCallIptables: boolean;
  nfCallIp6tables: boolean;
  nfCallArptables: boolean;
  /** Port names, in ifindex order. */
  ports: string[];
}

export interface BridgePort {
  name: string;
  bridge: string;
  mac: Uint8Array;
  state: BridgePortState;
  hairpin: boolean;
  learning: boolean;
  /** Unknown unicast flooding (BR_FLOOD). */
  flood: boolean;
  mcastFlood: boolean;
  bcastFlood: boolean;
  isolated: boolean;
}

export interface FdbEntry {
  mac: Uint8Array;
  /** The port (or the bridge itself) the address is on. */
  dev: string;
  /** The bridge, for an entry of the bridge's FDB; '' for the device's own (`self`) list. */
  master: string;
  vlan: number | undefined;
  /** `permanent` (local), `static`, or '' for a learned entry. */
  state: string;
  flags: string[];
}

export interface VlanEntry {
  dev: string;
  vid: number;
  pvid: boolean;
  untagged: boolean;
}

/** A neighbour entry with a link-layer address (`ip -j neigh show`). */
export interface NeighEntry {
  /** The address as ip prints it. */
  dst: string;
  dev: string;
  mac: Uint8Array;
  state: string[];
}

/** NUD_VALID: the neighbour states with a usable link-layer address (ip prints them in capitals). */
export const NUD_VALID: ReadonlySet<string> = new Set(['PERMANENT', 'NOARP', 'REACHABLE', 'PROBE', 'STALE', 'DELAY']);

/** A row of `ip -j neigh show`, with or without a link-layer address (FAILED and INCOMPLETE entries have none). */
export interface NeighRow {
  dst: string;
  dev: string;
  mac: Uint8Array | undefined;
  state: string[];
}

export interface BridgeLevel {
  bridges: Map<string, BridgeDevice>;
  ports: Map<string, BridgePort>;
  fdb: FdbEntry[];
  vlans: VlanEntry[];
  /** ip-neigh.json: the neighbours with a link-layer address (the bridge's own output looks its destination up there). */
  neigh: NeighEntry[];
  /** ip-neigh.json whole, entries without a link-layer address too; undefined when the snapshot has none. */
  neighTable?: NeighRow[] | undefined;
  /** ebtables-save.txt, parsed (counters kept); the backend from its header (ebtables-nft-save: nft; the legacy script: legacy). */
  ebtables: { file: string; ruleset: EbtRuleset; backend: Backend } | undefined;
}

function bool(p: JsonPath, v: JsonValue | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  // older iproute2 printed some flags as 0/1
  if (v === 0 || v === 1) return v === 1;
  throw p.error('expected true or false');
}

function mac(p: JsonPath, v: JsonValue | undefined): Uint8Array {
  const s = str(p, v);
  const m = parseMac(s);
  if (!m) throw p.error(`bad MAC address "${s}"`);
  return m;
}

function linkinfo(p: JsonPath, o: JsonObject): { li: JsonObject; lp: JsonPath } | undefined {
  const li = o.linkinfo;
  if (li === undefined || !isObject(li)) return undefined;
  return { li, lp: p.child(o, 'linkinfo') };
}

function dataOf(lp: JsonPath, li: JsonObject, key: string): { d: JsonObject; dp: JsonPath } {
  const d = li[key];
  if (d === undefined) return { d: Object.create(null) as JsonObject, dp: lp.child(li, key) };
  if (!isObject(d)) throw lp.child(li, key).error('expected an object');
  return { d, dp: lp.child(li, key) };
}

/** The bridges and bridge ports of `ip -j -d link show`. */
export function parseBridgeLinks(root: JsonPath, items: JsonValue[], links: ReadonlyMap<string, Link>): { bridges: Map<string, BridgeDevice>; ports: Map<string, BridgePort> } {
  const bridges = new Map<string, BridgeDevice>();
  const ports = new Map<string, BridgePort>();
  for (const [i, o] of objects(root, items)) {
    const p = root.child(items, i);
    const info = linkinfo(p, o);
    if (!info) continue;
    const name = str(p.child(o, 'ifname'), o.ifname);
    const addr = o.address === undefined ? new Uint8Array(6) : mac(p.child(o, 'address'), o.address);
    if (info.li.info_kind === 'bridge') {
      const { d, dp } = dataOf(info.lp, info.li, 'info_data');
      bridges.set(name, {
        name,
        mac: addr,
        vlanFiltering: d.vlan_filtering === undefined ? false : int(dp.child(d, 'vlan_filtering'), d.vlan_filtering, 0, 1) === 1,
        stpState: d.stp_state === undefined ? 0 : int(dp.child(d, 'stp_state'), d.stp_state, 0, 2),
        ageingTime: d.ageing_time === undefined ? 30000 : int(dp.child(d, 'ageing_time'), d.ageing_time),
        nfCallIptables: d.nf_call_iptables === undefined ? false : int(dp.child(d, 'nf_call_iptables'), d.nf_call_iptables, 0, 1) === 1,
        nfCallIp6tables: d.nf_call_ip6tables === undefined ? false : int(dp.child(d, 'nf_call_ip6tables'), d.nf_call_ip6tables, 0, 1) === 1,
        nfCallArptables: d.nf_call_arptables === undefined ? false : int(dp.child(d, 'nf_call_arptables'), d.nf_call_arptables, 0, 1) === 1,
        ports: [],
      });
    }
    if (info.li.info_slave_kind === 'bridge') {
      const { d, dp } = dataOf(info.lp, info.li, 'info_slave_data');
      const master = str(p.child(o, 'master'), o.master);
      const state = d.state === undefined ? 'forwarding' : str(dp.child(d, 'state'), d.state);
      if (!(BR_PORT_STATES as readonly string[]).includes(state)) throw dp.child(d, 'state').error(`unknown port state "${state}"`);
      ports.set(name, {
        name,
        bridge: master,
        mac: addr,
        state: state as BridgePortState,
        hairpin: bool(dp.child(d, 'hairpin'), d.hairpin, false),
        learning: bool(dp.child(d, 'learning'), d.learning, true),
        flood: bool(dp.child(d, 'flood'), d.flood, true),
        mcastFlood: bool(dp.child(d, 'mcast_flood'), d.mcast_flood, true),
        bcastFlood: bool(dp.child(d, 'bcast_flood'), d.bcast_flood, true),
        isolated: bool(dp.child(d, 'isolated'), d.isolated, false),
      });
    }
  }
  for (const port of ports.values()) {
    const b = bridges.get(port.bridge);
    if (!b) throw root.error(`bridge port "${port.name}": master "${port.bridge}" is not a bridge in ip-link.json`);
    b.ports.push(port.name);
  }
  for (const b of bridges.values()) b.ports.sort((x, y) => links.get(x)!.ifindex - links.get(y)!.ifindex);
  return { bridges, ports };
}

/** `bridge -j fdb show`. */
export function parseFdb(text: string, file: string, links: ReadonlyMap<string, Link>): FdbEntry[] {
  const doc = parseJson(text, file);
  const root = new JsonPath(doc, '', { line: 1, col: 1 });
  if (!Array.isArray(doc.value)) throw root.error('expected a JSON array');
  const items = doc.value;
  const out: FdbEntry[] = [];
  for (const [i, o] of objects(root, items)) {
    const p = root.child(items, i);
    const dev = str(p.child(o, 'ifname'), o.ifname);
    if (!links.has(dev)) throw p.child(o, 'ifname').error(`unknown interface "${dev}"`);
    const master = o.master === undefined ? '' : str(p.child(o, 'master'), o.master);
    if (master && !links.has(master)) throw p.child(o, 'master').error(`unknown interface "${master}"`);
    out.push({
      mac: mac(p.child(o, 'mac'), o.mac),
      dev,
      master,
      vlan: o.vlan === undefined ? undefined : int(p.child(o, 'vlan'), o.vlan, 0, 4095),
      state: o.state === undefined ? '' : str(p.child(o, 'state'), o.state),
      flags: strList(p, o, 'flags'),
    });
  }
  return out;
}

/** `ip -j neigh show`: every entry, its lladdr when it has one (FAILED and INCOMPLETE ones have none). */
export function parseNeighTable(text: string, file: string, links: ReadonlyMap<string, Link>): NeighRow[] {
  const doc = parseJson(text, file);
  const root = new JsonPath(doc, '', { line: 1, col: 1 });
  if (!Array.isArray(doc.value)) throw root.error('expected a JSON array');
  const items = doc.value;
  const out: NeighRow[] = [];
  for (const [i, o] of objects(root, items)) {
    const p = root.child(items, i);
    const dev = str(p.child(o, 'dev'), o.dev);
    if (!links.has(dev)) throw p.child(o, 'dev').error(`unknown interface "${dev}"`);
    const lladdr = o.lladdr === undefined ? undefined : mac(p.child(o, 'lladdr'), o.lladdr);
    out.push({ dst: str(p.child(o, 'dst'), o.dst), dev, mac: lladdr, state: strList(p, o, 'state') });
  }
  return out;
}

/** The entries of a neighbour table that have a link-layer address. */
export function neighWithAddr(rows: readonly NeighRow[]): NeighEntry[] {
  const out: NeighEntry[] = [];
  for (const r of rows) if (r.mac) out.push({ dst: r.dst, dev: r.dev, mac: r.mac, state: r.state });
  return out;
}

/** `bridge -j vlan show`: per device its VLANs with the PVID and Egress Untagged flags. */
export function parseVlans(text: string, file: string, links: ReadonlyMap<string, Link>): VlanEntry[] {
  const doc = parseJson(text, file);
  const root = new JsonPath(doc, '', { line: 1, col: 1 });
  if (!Array.isArray(doc.value)) throw root.error('expected a JSON array');
  const items = doc.value;
  const out: VlanEntry[] = [];
  for (const [i, o] of objects(root, items)) {
    const p = root.child(items, i);
    const dev = str(p.child(o, 'ifname'), o.ifname);
    if (!links.has(dev)) throw p.child(o, 'ifname').error(`unknown interface "${dev}"`);
    const vl = o.vlans;
    if (!Array.isArray(vl)) throw p.child(o, 'vlans').error('expected an array');
    for (const [j, v] of objects(p.child(o, 'vlans'), vl)) {
      const vp = p.child(o, 'vlans').child(vl, j);
      const flags = strList(vp, v, 'flags');
      const vid = int(vp.child(v, 'vlan'), v.vlan, 1, 4094);
      const end = v.vlanEnd === undefined ? vid : int(vp.child(v, 'vlanEnd'), v.vlanEnd, vid, 4094);
      for (let id = vid; id <= end; id++) out.push({ dev, vid: id, pvid: flags.includes('PVID'), untagged: flags.includes('Egress Untagged') });
    }
  }
  return out;
}

/** The backend an ebtables-save text names in its header: `# Generated by ebtables-nft-save` (or no header) is nf_tables. */
export function ebtablesBackend(text: string): Backend {
  const m = /^# Generated by (\S+)/m.exec(text);
  return m && !m[1]!.includes('nft') && /legacy|^ebtables-save$/.test(m[1]!) ? 'legacy' : 'nft';
}

/** ebtables-save.txt: the bridge tables with their counters (`--among-*-file` cannot be read from a snapshot). */
export function parseEbtablesSave(text: string, file: string): EbtRuleset {
  return parseEbtRestore(text, { file });
}
