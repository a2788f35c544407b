/**
 * The sockets of a node: `ss -H -tuwane --inet-sockopt` output (ss.txt in
 * a snapshot; `ss -H -ltun`, listeners only, reads too), one socket a
 * line, as iproute2's ss prints it:
 *
 *   tcp   LISTEN 0      4096         0.0.0.0:22         0.0.0.0:*
 *   udp   UNCONN 0      0      127.0.0.53%lo:53         0.0.0.0:*
 *   tcp   LISTEN 0      511                *:80               *:*
 *   tcp   LISTEN 0      128             [::]:22            [::]:*
 *   udp   UNCONN 0      0     [fe80::1]%eth0:546           [::]:*
 *   raw   UNCONN 0      0            0.0.0.0:112        0.0.0.0:*
 *
 * Netid, State, Recv-Q, Send-Q, Local Address:Port, Peer Address:Port, and
 * (with -p) the process. The local address is how ss.c inet_addr_print()
 * writes it: an IPv4 address; an IPv6 address in brackets; `*` for an IPv6
 * wildcard socket that also takes IPv4 (IPV6_V6ONLY off), `[::]` for one
 * that does not; a device the socket is bound to (SO_BINDTODEVICE) after
 * `%`; the port number (-n). TCP sockets listen (LISTEN) or belong to a
 * connection (ESTAB, SYN-SENT, SYN-RECV, FIN-WAIT-1, FIN-WAIT-2,
 * TIME-WAIT, CLOSE-WAIT, LAST-ACK, CLOSING: in the established hash with
 * their peer); a TCP socket neither bound nor listening (UNCONN) is in no
 * table. UDP sockets are unconnected (UNCONN) or connected (ESTAB, to one
 * peer: they take nothing from others and are not listeners). After the
 * columns, -e adds `fwmark:0x..` (sk_mark) among other words, and a line
 * of its own below the socket, `inet-sockopt: ( ... transparent ... )`,
 * says IP_TRANSPARENT (--inet-sockopt), and `cgroup:/PATH` the socket's
 * cgroup v2 (-e prints it; --cgroup again at the end of the line). A raw
 * socket (-w) prints its protocol where the port stands, and `*` for an
 * unbound IPv6 raw socket. A line of another shape is an error at its line
 * and column.
 */
import { NfvmError } from '../../core/errors.js';
import { addrEqual, parseAddr, type IpAddr } from '../route/addr.js';
import { CGROUP_ROOT, cgroupId } from '../../vm/cgroup.js';

export interface ListenSocket {
  readonly proto: 'tcp' | 'udp';
  /** The socket's family: 4 (AF_INET) or 6 (AF_INET6). */
  readonly family: 4 | 6;
  /** The bound address; undefined for a wildcard (0.0.0.0, [::], *). */
  readonly addr: IpAddr | undefined;
  /** An AF_INET6 socket that takes IPv4 too (`*`, or a bound ::ffff:a.b.c.d address). */
  readonly v4mapped: boolean;
  readonly port: number;
  /** SO_BINDTODEVICE, '' when unbound. */
  readonly dev: string;
  /** The ss state (LISTEN, UNCONN, ESTAB, TIME-WAIT, ...). */
  readonly state: string;
  /** The peer of a connection or a connected UDP socket; undefined for a listener or an unconnected socket. */
  readonly peer: { readonly addr: IpAddr; readonly port: number } | undefined;
  /** sk_mark (`fwmark:`), 0 when ss printed none. */
  readonly mark: number;
  /** IP_TRANSPARENT (`transparent` in the inet-sockopt line). */
  readonly transparent: boolean;
  /** sock_cgroup_ptr(): the cgroup v2 number (vm/cgroup.ts cgroupId) of `cgroup:PATH`; the root when ss printed none. */
  readonly cgroup: number;
  /** `tcp 0.0.0.0:22` as ss printed it. */
  readonly text: string;
  /** Where the local address stands in ss.txt. */
  readonly line: number;
  readonly col: number;
}

/** The sockets of a snapshot; undefined sockets: the snapshot has no ss.txt. */
export interface SocketTable {
  readonly file: string;
  /** The listeners: TCP LISTEN, unconnected UDP. */
  readonly sockets: readonly ListenSocket[];
  /** The sockets with a peer: TCP connections in any state but LISTEN (the established hash), connected UDP sockets. */
  readonly connected: readonly ListenSocket[];
  /** Both lists by protocol and local port (portKey), each in table order: what the lookups walk, as the kernel's hashes by port. */
  readonly byPort: ReadonlyMap<number, OnPort>;
  /** The raw sockets (`raw` lines, ss -w), in table order. */
  readonly raw: readonly RawSocket[];
}

/** A raw socket (SOCK_RAW): the protocol it takes (ss prints it as the local port), its bound address, device and peer. */
export interface RawSocket {
  readonly family: 4 | 6;
  /** inet_num: the IP protocol. */
  readonly protocol: number;
  /** inet_rcv_saddr; undefined when unbound. */
  readonly addr: IpAddr | undefined;
  /** inet_daddr of a connected socket; undefined otherwise. */
  readonly peer: IpAddr | undefined;
  /** SO_BINDTODEVICE, '' when unbound. */
  readonly dev: string;
  /** `raw 0.0.0.0:253` as ss printed it. */
  readonly text: string;
  readonly line: number;
  readonly col: number;
}

/** raw_v4_match() / raw_v6_match(): the first raw socket of `family` that takes protocol `protocol` from `saddr` to `daddr` arriving on `dev`. */
export function rawSocketFor(t: SocketTable, family: 4 | 6, protocol: number, saddr: ArrayLike<number>, daddr: ArrayLike<number>, dev: string): RawSocket | undefined {
  const same = (a: IpAddr, b: ArrayLike<number>) => (family === 4 ? a.w[0] === b[0] : addrEqual(a.w, b));
  for (const r of t.raw) {
    if (r.family !== family || r.protocol !== protocol) continue;
    if (r.peer && !same(r.peer, saddr)) continue;
    if (r.addr && !same(r.addr, daddr)) continue;
    if (r.dev !== '' && r.dev !== dev) continue;
    return r;
  }
  return undefined;
}

/** The sockets of one protocol and local port. */
export interface OnPort {
  readonly listen: readonly ListenSocket[];
  readonly conn: readonly ListenSocket[];
}

const NOTHING_ON_PORT: OnPort = { listen: [], conn: [] };

/** The key of a protocol and port in SocketTable.byPort. */
function portKey(proto: 'tcp' | 'udp', port: number): number {
  return proto === 'udp' ? 0x10000 | port : port;
}

/** The sockets of `proto` on local port `port`. */
export function onPort(t: SocketTable, proto: 'tcp' | 'udp', port: number): OnPort {
  return t.byPort.get(portKey(proto, port)) ?? NOTHING_ON_PORT;
}

/** Socket number `i` of the table: the listeners first, then the sockets with a peer (what M_SK_INDEX holds). */
export function socketAt(t: SocketTable, i: number): ListenSocket | undefined {
  return i < t.sockets.length ? t.sockets[i] : t.connected[i - t.sockets.length];
}

/** TCP states of sockets in the established hash (ss's names). */
const TCP_CONN = ['ESTAB', 'SYN-SENT', 'SYN-RECV', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSING'];
const STATES: Readonly<Record<string, readonly string[]>> = { tcp: ['LISTEN', 'UNCONN', ...TCP_CONN], udp: ['UNCONN', 'ESTAB'] };

interface Field {
  text: string;
  col: number;
}

function fields(line: string): Field[] {
  const out: Field[] = [];
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push({ text: m[0], col: m.index + 1 });
  return out;
}

/** Parses the text of ss.txt; throws an NfvmError at the line and column of what is wrong. */
export function parseSs(text: string, file: string): SocketTable {
  const sockets: ListenSocket[] = [];
  const connected: ListenSocket[] = [];
  const raws: RawSocket[] = [];
  let last: { transparent: boolean } | undefined;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!.replace(/\r$/, '');
    const f = fields(raw);
    if (f.length === 0) continue;
    const line = n + 1;
    const err = (x: Field, reason: string) => new NfvmError('syntax', reason, file, { line, col: x.col }, x.text);
    // A line of its own under a socket (ss -e -i --inet-sockopt ...): indented.
    if (/^\s/.test(raw)) {
      if (f[0]!.text === 'inet-sockopt:') {
        if (!last) throw err(f[0]!, 'an inet-sockopt line before any socket');
        last.transparent = f.some((x) => x.text === 'transparent' || x.text === 'transparent)');
      }
      continue;
    }
    // A header line (ss without -H).
    if (f[0]!.text === 'Netid' || f[0]!.text === 'State') continue;
    const netid = f[0]!;
    if (netid.text !== 'tcp' && netid.text !== 'udp' && netid.text !== 'raw') {
      if (/^[A-Z][A-Z0-9-]*$/.test(netid.text)) throw err(netid, `expected a Netid column (tcp, udp or raw) first, not the state "${netid.text}": capture with \`ss -H -tuwane --inet-sockopt\``);
      throw err(netid, `unknown Netid "${netid.text}" (ss.txt holds \`ss -H -tuwane --inet-sockopt\`: tcp, udp and raw sockets)`);
    }
    if (f.length < 6) throw err(f[f.length - 1]!, `expected 6 columns (Netid State Recv-Q Send-Q Local:Port Peer:Port), found ${f.length}`);
    if (netid.text === 'raw') {
      raws.push(rawSocket(f, line, err));
      last = { transparent: false };
      continue;
    }
    const proto = netid.text;
    const state = f[1]!;
    if (!STATES[proto]!.includes(state.text)) throw err(state, `unexpected state "${state.text}" for ${proto} (expected ${STATES[proto]!.join(' or ')})`);
    for (const q of [f[2]!, f[3]!]) if (!/^\d+$/.test(q.text)) throw err(q, `expected a queue length, not "${q.text}"`);
    if (!/:(\d+|\*)$/.test(f[5]!.text)) throw err(f[5]!, `expected a peer ADDRESS:PORT, not "${f[5]!.text}"`);
    let mark = 0;
    let cgroup = CGROUP_ROOT;
    for (const x of f.slice(6)) {
      const m = /^fwmark:(0x[0-9a-f]+|\d+)$/i.exec(x.text);
      if (m) mark = Number(m[1]) >>> 0;
      if (x.text.startsWith('cgroup:')) cgroup = socketCgroup(x.text.slice(7));
    }
    const st = state.text;
    // A TCP socket neither bound nor listening is in no lookup table.
    if (proto === 'tcp' && st === 'UNCONN') {
      last = { transparent: false };
      continue;
    }
    const listener = st === 'LISTEN' || st === 'UNCONN';
    const peer = listener ? undefined : peerAddress(f[5]!, err);
    const s: ListenSocket & { transparent: boolean } = { ...localAddress(f[4]!, proto, line, err), state: st, peer, mark, transparent: false, cgroup };
    last = s;
    // A connected UDP socket receives from its peer only: not a listener.
    (listener ? sockets : connected).push(s);
  }
  const byPort = new Map<number, { listen: ListenSocket[]; conn: ListenSocket[] }>();
  const slot = (x: ListenSocket) => {
    const k = portKey(x.proto, x.port);
    let e = byPort.get(k);
    if (!e) byPort.set(k, (e = { listen: [], conn: [] }));
    return e;
  };
  for (const x of sockets) slot(x).listen.push(x);
  for (const x of connected) slot(x).conn.push(x);
  return { file, sockets, connected, byPort, raw: raws };
}

/** A `raw` line: UNCONN or ESTAB (connected), the protocol in the local port column, the peer's port `*` or 0. */
function rawSocket(f: Field[], line: number, err: (x: Field, reason: string) => NfvmError): RawSocket {
  const state = f[1]!;
  if (state.text !== 'UNCONN' && state.text !== 'ESTAB') throw err(state, `unexpected state "${state.text}" for raw (expected UNCONN or ESTAB)`);
  for (const q of [f[2]!, f[3]!]) if (!/^\d+$/.test(q.text)) throw err(q, `expected a queue length, not "${q.text}"`);
  const local = localAddress(f[4]!, 'udp', line, err);
  if (local.port > 255) throw err(f[4]!, `a raw socket's protocol is 0-255, not ${local.port}`);
  // a raw socket's `*` is the IPv6 wildcard (it takes no IPv4)
  const family = local.family;
  const p = f[5]!;
  let peer: IpAddr | undefined;
  if (state.text === 'ESTAB') {
    const colon = p.text.lastIndexOf(':');
    let host = colon > 0 ? p.text.slice(0, colon) : '';
    const pct = host.lastIndexOf('%');
    if (pct >= 0 && pct > host.lastIndexOf(']')) host = host.slice(0, pct);
    const bracket = host.startsWith('[') && host.endsWith(']');
    const a = parseAddr(bracket ? host.slice(1, -1) : host);
    if (!a || a.family !== family) throw err(p, `expected the peer's ADDRESS:*, not "${p.text}"`);
    peer = a;
  }
  return { family, protocol: local.port, addr: local.addr, peer, dev: local.dev, text: `raw ${f[4]!.text}`, line, col: f[4]!.col };
}

/** The peer ADDRESS:PORT of a connection: an IPv4 address or an [IPv6] one (IPv4-mapped for a dual-stack socket's IPv4 peer). */
function peerAddress(x: Field, err: (x: Field, reason: string) => NfvmError): { addr: IpAddr; port: number } {
  const t = x.text;
  const colon = t.lastIndexOf(':');
  const portText = t.slice(colon + 1);
  if (colon <= 0 || !/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw err(x, `expected the peer's ADDRESS:PORT, not "${t}"`);
  let host = t.slice(0, colon);
  const pct = host.lastIndexOf('%');
  if (pct >= 0 && pct > host.lastIndexOf(']')) host = host.slice(0, pct);
  const bracket = host.startsWith('[') && host.endsWith(']');
  const a = parseAddr(bracket ? host.slice(1, -1) : host);
  if (!a || (bracket ? a.family !== 6 : a.family !== 4)) throw err(x, `bad peer address "${host}"`);
  return { addr: a, port: Number(portText) };
}

/** Refuses a socket bound to a device the snapshot does not have. */
export function checkSocketDevices(t: SocketTable, hasLink: (name: string) => boolean): void {
  for (const s of [...t.sockets, ...t.raw]) {
    if (s.dev !== '' && !hasLink(s.dev)) throw new NfvmError('value', `unknown interface "${s.dev}" (the socket ${s.text} is bound to it)`, t.file, { line: s.line, col: s.col }, s.dev);
  }
}

type Local = Omit<ListenSocket, 'state' | 'peer' | 'mark' | 'transparent' | 'cgroup'>;

/**
 * The cgroup of ss's `cgroup:PATH` (-e, --cgroup: the INET_DIAG_CGROUP_ID
 * resolved under the cgroup2 mount). `unreachable:ID` is a cgroup ss could
 * not name (another cgroup namespace, no cgroup2 mount): a cgroup below the
 * root that no rule path names.
 */
function socketCgroup(path: string): number {
  return path.startsWith('/') ? cgroupId(path) : cgroupId(`/\0${path}`);
}

function localAddress(x: Field, proto: 'tcp' | 'udp', line: number, err: (x: Field, reason: string) => NfvmError): Local {
  const t = x.text;
  const colon = t.lastIndexOf(':');
  const portText = colon < 0 ? '' : t.slice(colon + 1);
  if (colon <= 0 || !/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw err(x, `expected a local ADDRESS:PORT with a port number (ss -n), not "${t}"`);
  }
  let host = t.slice(0, colon);
  let dev = '';
  const pct = host.lastIndexOf('%');
  if (pct >= 0 && pct > host.lastIndexOf(']')) {
    dev = host.slice(pct + 1);
    host = host.slice(0, pct);
    if (!/^[^\s/%:]{1,15}$/.test(dev)) throw err(x, `bad interface name "${dev}" after %`);
  }
  const port = Number(portText);
  const text = `${proto} ${t}`;
  const col = x.col;
  if (host === '*') return { proto, family: 6, addr: undefined, v4mapped: true, port, dev, text, line, col };
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) throw err(x, `unterminated [IPv6 address] in "${t}"`);
    const a = parseAddr(host.slice(1, -1));
    if (!a || a.family !== 6) throw err(x, `bad IPv6 address "${host.slice(1, -1)}"`);
    const w = a.w;
    const any = (w[0]! | w[1]! | w[2]! | w[3]!) === 0;
    const mapped = w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
    return { proto, family: 6, addr: any ? undefined : a, v4mapped: mapped, port, dev, text, line, col };
  }
  const a = parseAddr(host);
  if (!a || a.family !== 4 || host.includes(':')) throw err(x, `bad address "${host}" (IPv4, [IPv6] or *)`);
  return { proto, family: 4, addr: a.w[0] === 0 ? undefined : a, v4mapped: false, port, dev, text, line, col };
}
