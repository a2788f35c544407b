/**
 * The IPVS connection table (Linux 6.18 net/netfilter/ipvs/ip_vs_conn.c,
 * the TCP/UDP state machines of ip_vs_proto_tcp.c / ip_vs_proto_udp.c, the
 * persistence templates of ip_vs_core.c ip_vs_sched_persist, the new-
 * connection checks of ip_vs_core.c ip_vs_in_hook), on virtual time:
 * every call takes `now` in jiffies (hooks/conntrack jiffiesAt).
 *
 * A connection is keyed as ip_vs_conn_hashkey_param keys it: (protocol,
 * caddr, cport, vaddr, vport) for packets from the client
 * (ip_vs_conn_in_get), and (protocol, daddr, dport, caddr, cport) for replies
 * of the real server (ip_vs_conn_out_get). Its timer is refreshed on every
 * packet (ip_vs_conn_put: mod_timer(jiffies + cp->timeout)), a template's
 * only when a new connection takes it (ip_vs_sched_persist). The timers run
 * as the kernel's do, whether or not a packet looks the connection up: the
 * node runs the due ones (expireDue) at each packet's time, so the dests'
 * connection counts the schedulers read, and the conntrack entries
 * ip_vs_conn_expire drops, are those of that time.
 */
import { IpvsDest, totalConns, IP_VS_DEST_F_AVAILABLE, IP_VS_DEST_F_OVERLOAD } from './dest.js';
import type { IpvsService } from './service.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IP_VS_CONN_F_FWD_MASK, IP_VS_CONN_F_MASQ, IP_VS_SVC_F_PERSISTENT, addrPort } from './save.js';
import type { SchedPacket } from './sched/index.js';
import { forceU32, jhash2, jhash3wordsMasked } from '../../vm/jhash.js';
import { heapCheck } from '../../core/heap.js';

/** include/uapi/linux/ip_vs.h connection flags beyond the forwarding method. */
export const IP_VS_CONN_F_HASHED = 0x0040;
export const IP_VS_CONN_F_NOOUTPUT = 0x0080;
export const IP_VS_CONN_F_INACTIVE = 0x0100;
export const IP_VS_CONN_F_TEMPLATE = 0x1000;
export const IP_VS_CONN_F_NFCT = 0x10000;

/** include/net/ip_vs.h enum ip_vs_ctpl_state: a template's state (in cp->state). */
export const IP_VS_CTPL_S_NONE = 0, IP_VS_CTPL_S_ASSURED = 1;

/** include/uapi/linux/ip_vs.h enum IP_VS_TCP_S_*. */
export const IP_VS_TCP_S_NONE = 0, IP_VS_TCP_S_ESTABLISHED = 1, IP_VS_TCP_S_SYN_SENT = 2, IP_VS_TCP_S_SYN_RECV = 3,
  IP_VS_TCP_S_FIN_WAIT = 4, IP_VS_TCP_S_TIME_WAIT = 5, IP_VS_TCP_S_CLOSE = 6, IP_VS_TCP_S_CLOSE_WAIT = 7,
  IP_VS_TCP_S_LAST_ACK = 8, IP_VS_TCP_S_LISTEN = 9, IP_VS_TCP_S_SYNACK = 10;
export const TCP_STATE_NAMES = ['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK'];

/** ip_vs_proto_tcp.c tcp_timeouts[] in seconds (times HZ in the kernel). */
export const TCP_TIMEOUTS = [2, 15 * 60, 2 * 60, 60, 2 * 60, 2 * 60, 10, 60, 30, 2 * 60, 120];
/** ip_vs_proto_udp.c udp_timeouts[IP_VS_UDP_S_NORMAL]. */
export const UDP_TIMEOUT = 5 * 60;
/** FTPPORT (include/net/ip_vs.h): the FTP control port, whose persistent templates take every port. */
export const FTPPORT = 21;

/** ip_vs_conn_new(): cp->timeout = 3*HZ until the first state transition. */
const NEW_CONN_TIMEOUT = 3;
/** ip_vs_conn_expire(), expire_later: a template that still controls connections waits 60 s more. */
const EXPIRE_LATER = 60;

/** Directions of ip_vs_proto_tcp.c tcp_state_off[]: IP_VS_DIR_INPUT / OUTPUT / INPUT_ONLY -> row offset. */
export const IP_VS_DIR_INPUT = 0, IP_VS_DIR_OUTPUT = 1;
const TCP_DIR_INPUT = 0, TCP_DIR_OUTPUT = 4, TCP_DIR_INPUT_ONLY = 8;

// sNO (0) and sSA (10) appear only as column indexes.
const sES = 1, sSS = 2, sSR = 3, sFW = 4, sTW = 5, sCL = 6, sCW = 7, sLA = 8, sLI = 9;
/** ip_vs_proto_tcp.c tcp_states[] (rows: INPUT, OUTPUT, INPUT-ONLY x syn, fin, ack, rst). */
const TCP_STATES: readonly (readonly number[])[] = [
  /* INPUT        NONE, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
  /* syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /* fin */ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /* rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
  /* OUTPUT */
  /* syn */ [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
  /* fin */ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
  /* rst */ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
  /* INPUT-ONLY */
  /* syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /* fin */ [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /* rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

/** ip_vs_proto_tcp.c tcp_state_active_table[]: the states that count a connection in its dest's activeconns. */
const TCP_STATE_ACTIVE: readonly boolean[] = [false, true, true, true, false, false, false, false, false, false, true];

/** TCP header flag bits as the packet carries them. */
export const TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_ACK = 0x10;

/** tcp_state_idx(): rst, then syn, then fin, then ack; -1 for none. */
function tcpStateIdx(th: number): number {
  if (th & TH_RST) return 3;
  if (th & TH_SYN) return 0;
  if (th & TH_FIN) return 1;
  if (th & TH_ACK) return 2;
  return -1;
}

/** The net.ipv4.vs.* sysctls that change the path (ip_vs_ctl.c defaults). */
export interface IpvsSysctl {
  conntrack: number; // 0
  expire_nodest_conn: number; // 0
  conn_reuse_mode: number; // 1
  expire_quiescent_template: number; // 0
  /** A tunnelled packet too big for the route is fragmented anyway when 0 (ensure_mtu_is_adequate). */
  pmtu_disc: number; // 1
}
export const IPVS_SYSCTL_DEFAULTS: IpvsSysctl = { conntrack: 0, expire_nodest_conn: 0, conn_reuse_mode: 1, expire_quiescent_template: 0, pmtu_disc: 1 };

export class IpvsConn {
  state = IP_VS_TCP_S_NONE;
  /** cp->timeout in jiffies; the timer runs out at `expires`. */
  timeout: number;
  expires: number;
  /** cp->n_control: connections this template controls. */
  nControl = 0;
  inpkts = 0;
  /** The connection's slot in the table's hash (-1: not hashed). */
  slot = -1;
  /** Order of creation: `ipvsadm -L -c` lists in it here (the kernel in hash-bucket order, which its random seed makes vary from boot to boot). */
  seq = 0;
  /** In the table's timer heap, at deadline `timerAt` (the earliest of its entries there). */
  armed = false;
  timerAt = 0;
  constructor(
    readonly protocol: number,
    readonly caddr: Uint8Array, public cport: number,
    readonly vaddr: Uint8Array, public vport: number,
    readonly daddr: Uint8Array, public dport: number,
    public flags: number,
    public dest: IpvsDest | null,
    readonly svc: IpvsService,
    /** cp->control: the persistence template this connection belongs to. */
    readonly control: IpvsConn | null,
    now: number, hz: number,
  ) {
    this.timeout = NEW_CONN_TIMEOUT * hz;
    this.expires = now + this.timeout;
  }
  get template(): boolean {
    return (this.flags & IP_VS_CONN_F_TEMPLATE) !== 0;
  }
}

/** Bits of a key's K.TPL word: a template; a connection whose replies come from its virtual address (not masquerade). */
const TPL_TEMPLATE = 1, TPL_NOT_MASQ = 2;

/** Key words of a hashed connection (ConnHash.keys): what the lookups compare. */
const enum K {
  PROTO = 0,
  AF = 1,
  TPL = 2,
  CPORT = 3,
  VPORT = 4,
  DPORT = 5,
  CADDR = 6,
  VADDR = 10,
  DADDR = 14,
  WORDS = 18,
}

/** ip_vs_conn_rnd: a fixed value, so that runs repeat. */
const IP_VS_CONN_RND = 0x5eed1b5;

/** The address bytes (4 or 16) as big-endian int32 words into `out` at `at` (an IPv4 address fills one word, zeroes the rest). */
export function addrWords(a: Uint8Array, out: Int32Array, at: number): void {
  for (let i = 0; i < 4; i++) {
    const o = i * 4;
    out[at + i] = o < a.length ? (a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]! : 0;
  }
}

/**
 * ip_vs_conn_tab as typed arrays: chained buckets (heads, next) over
 * connection slots whose key words (K) the lookups compare, the objects
 * beside them. A connection hashes by ip_vs_conn_hashkey(): jhash_3words
 * of the client address (jhash of its 16 bytes for IPv6), the client port
 * and the protocol; the kernel's ipvs pointer term is one namespace here.
 * ip_vs_conn_in_get() hashes (caddr, cport) of the request,
 * ip_vs_conn_out_get() the reply's destination (the inverse param: the
 * client again), so both walk the same bucket. The kernel's table has a
 * fixed 2^12 buckets (ip_vs_conn_tab_bits); this one doubles when the
 * connections outnumber its buckets, so a chain stays short at any size.
 */
class ConnHash {
  private heads = new Int32Array(256).fill(-1);
  private mask = 255;
  private next = new Int32Array(256);
  keys = new Int32Array(256 * K.WORDS);
  objs: (IpvsConn | null)[] = new Array<IpvsConn | null>(256).fill(null);
  private free = -1;
  private used = 0;
  count = 0;
  private readonly h6 = new Int32Array(4);

  /** ip_vs_conn_hashkey(). */
  private hash(af: number, proto: number, w: Int32Array, at: number, port: number): number {
    const p = ((port & 255) << 8) | (port >>> 8);
    let a: number;
    if (af === 6) {
      const t = this.h6;
      for (let i = 0; i < 4; i++) t[i] = forceU32(w[at + i]!);
      a = jhash2(t, 4, IP_VS_CONN_RND);
    } else a = forceU32(w[at]!);
    return jhash3wordsMasked(a, p, proto, IP_VS_CONN_RND, this.mask);
  }

  insert(cp: IpvsConn): void {
    // a connection is an object of its own: a capture of millions of flows within their timeouts grows the heap
    heapCheck('the IPVS connection table', '<node>');
    if (this.free < 0 && this.used === this.objs.length) this.growSlots();
    let s: number;
    if (this.free >= 0) {
      s = this.free;
      this.free = this.next[s]!;
    } else s = this.used++;
    const k = this.keys;
    const b = s * K.WORDS;
    k[b + K.PROTO] = cp.protocol;
    k[b + K.AF] = cp.caddr.length === 4 ? 4 : 6;
    k[b + K.TPL] = (cp.template ? TPL_TEMPLATE : 0) | ((cp.flags & IP_VS_CONN_F_FWD_MASK) !== IP_VS_CONN_F_MASQ ? TPL_NOT_MASQ : 0);
    k[b + K.CPORT] = cp.cport;
    k[b + K.VPORT] = cp.vport;
    k[b + K.DPORT] = cp.dport;
    addrWords(cp.caddr, k, b + K.CADDR);
    addrWords(cp.vaddr, k, b + K.VADDR);
    addrWords(cp.daddr, k, b + K.DADDR);
    this.objs[s] = cp;
    cp.slot = s;
    this.count++;
    if (this.count > this.heads.length) this.rehash(this.heads.length * 2);
    else this.link(s);
  }

  private link(s: number): void {
    const b = s * K.WORDS;
    const k = this.keys;
    const h = this.hash(k[b + K.AF]!, k[b + K.PROTO]!, k, b + K.CADDR, k[b + K.CPORT]!);
    this.next[s] = this.heads[h]!;
    this.heads[h] = s;
  }

  remove(cp: IpvsConn): void {
    const s = cp.slot;
    if (s < 0) return;
    const b = s * K.WORDS;
    const k = this.keys;
    const h = this.hash(k[b + K.AF]!, k[b + K.PROTO]!, k, b + K.CADDR, k[b + K.CPORT]!);
    let i = this.heads[h]!;
    let prev = -1;
    while (i >= 0 && i !== s) {
      prev = i;
      i = this.next[i]!;
    }
    if (i === s) {
      if (prev < 0) this.heads[h] = this.next[s]!;
      else this.next[prev] = this.next[s]!;
    }
    this.objs[s] = null;
    this.next[s] = this.free;
    this.free = s;
    cp.slot = -1;
    this.count--;
  }

  private rehash(n: number): void {
    this.heads = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    for (let s = 0; s < this.used; s++) if (this.objs[s]) this.link(s);
  }

  private growSlots(): void {
    const n = this.objs.length * 2;
    const next = new Int32Array(n);
    next.set(this.next);
    this.next = next;
    const keys = new Int32Array(n * K.WORDS);
    keys.set(this.keys);
    this.keys = keys;
    const objs = new Array<IpvsConn | null>(n).fill(null);
    for (let i = 0; i < this.used; i++) objs[i] = this.objs[i]!;
    this.objs = objs;
  }

  /**
   * __ip_vs_conn_in_get() (a connection) or ip_vs_ct_in_get() (`template`:
   * a persistence template): protocol, family, client address and port,
   * virtual address and port. A connection lookup never finds a template
   * (its client port 0 is not a connection's: the IP_VS_CONN_F_NO_CPORT test).
   */
  findIn(af: number, proto: number, cw: Int32Array, cat: number, cport: number, vw: Int32Array, vat: number, vport: number, template: boolean): IpvsConn | null {
    const k = this.keys;
    const tpl = template ? TPL_TEMPLATE : 0;
    for (let s = this.heads[this.hash(af, proto, cw, cat, cport)]!; s >= 0; s = this.next[s]!) {
      const b = s * K.WORDS;
      if (k[b + K.CPORT] === cport && k[b + K.VPORT] === vport && k[b + K.PROTO] === proto && k[b + K.AF] === af && (k[b + K.TPL]! & TPL_TEMPLATE) === tpl
        && k[b + K.CADDR] === cw[cat] && k[b + K.VADDR] === vw[vat]
        && (af === 4 || (sameWords(k, b + K.CADDR, cw, cat) && sameWords(k, b + K.VADDR, vw, vat)))) return this.objs[s]!;
    }
    return null;
  }

  /**
   * ip_vs_conn_out_get(): a packet from sw:sport to the client caddr:cport;
   * its source is the real server (daddr:dport) of a masqueraded
   * connection, the virtual address and port (vaddr:vport) of a direct
   * routing or tunnel one, whose real server answers as the service
   * (templates carry no replies).
   */
  findOut(af: number, proto: number, sw: Int32Array, sat: number, sport: number, cw: Int32Array, cat: number, cport: number): IpvsConn | null {
    const k = this.keys;
    for (let s = this.heads[this.hash(af, proto, cw, cat, cport)]!; s >= 0; s = this.next[s]!) {
      const b = s * K.WORDS;
      const tpl = k[b + K.TPL]!;
      if (tpl & TPL_TEMPLATE) continue;
      const a = tpl & TPL_NOT_MASQ ? b + K.VADDR : b + K.DADDR;
      const p = tpl & TPL_NOT_MASQ ? k[b + K.VPORT] : k[b + K.DPORT];
      if (k[b + K.CPORT] === cport && p === sport && k[b + K.PROTO] === proto && k[b + K.AF] === af
        && k[b + K.CADDR] === cw[cat] && k[a] === sw[sat]
        && (af === 4 || (sameWords(k, b + K.CADDR, cw, cat) && sameWords(k, a, sw, sat)))) return this.objs[s]!;
    }
    return null;
  }
}

function sameWords(a: Int32Array, ai: number, b: Int32Array, bi: number): boolean {
  return a[ai] === b[bi] && a[ai + 1] === b[bi + 1] && a[ai + 2] === b[bi + 2] && a[ai + 3] === b[bi + 3];
}

/**
 * The connections' timers: a binary heap of (deadline, connection) in typed
 * arrays, the connection named by its table slot and creation number (no
 * object references: a heap of hundreds of thousands of young connections
 * would be rescanned at every scavenge). A connection sits in it at its
 * earliest deadline (cp.timerAt); a timer pushed later (the usual refresh)
 * stays where it is and is put back at its new deadline when the old one
 * comes up; a timer brought earlier is pushed again, and the later entry is
 * stale when it comes up.
 */
class ConnTimers {
  private at = new Int32Array(1024);
  private slots = new Int32Array(1024);
  private seqs = new Int32Array(1024);
  private n = 0;

  /** mod_timer(&cp->timer, deadline) as far as the heap needs it. */
  arm(cp: IpvsConn, deadline: number): void {
    const d = deadline | 0;
    if (cp.armed && ((d - cp.timerAt) | 0) >= 0) return;
    cp.armed = true;
    cp.timerAt = d;
    if (this.n === this.at.length) this.grow();
    const at = this.at;
    const slots = this.slots;
    const seqs = this.seqs;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (((at[p]! - d) | 0) <= 0) break;
      at[i] = at[p]!;
      slots[i] = slots[p]!;
      seqs[i] = seqs[p]!;
      i = p;
    }
    at[i] = d;
    slots[i] = cp.slot;
    seqs[i] = cp.seq;
  }

  /** The connection (of the table's `objs`) whose entry is due at `now`, taken out of the heap; undefined when none is. */
  popDue(now: number, objs: readonly (IpvsConn | null)[]): IpvsConn | undefined {
    const at = this.at;
    const slots = this.slots;
    const seqs = this.seqs;
    while (this.n > 0 && ((at[0]! - now) | 0) <= 0) {
      const key = at[0]!;
      const slot = slots[0]!;
      const seq = seqs[0]!;
      const n = --this.n;
      if (n > 0) {
        const lastAt = at[n]!;
        const lastSlot = slots[n]!;
        const lastSeq = seqs[n]!;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= n) break;
          const r = l + 1;
          const c = r < n && ((at[r]! - at[l]!) | 0) < 0 ? r : l;
          if (((at[c]! - lastAt) | 0) >= 0) break;
          at[i] = at[c]!;
          slots[i] = slots[c]!;
          seqs[i] = seqs[c]!;
          i = c;
        }
        at[i] = lastAt;
        slots[i] = lastSlot;
        seqs[i] = lastSeq;
      }
      const cp = objs[slot];
      // a stale entry: the connection left the table, sits at an earlier deadline, or left the heap
      if (!cp || cp.seq !== seq || !cp.armed || cp.timerAt !== key) continue;
      cp.armed = false;
      return cp;
    }
    return undefined;
  }

  private grow(): void {
    const cap = this.at.length * 2;
    for (const k of ['at', 'slots', 'seqs'] as const) {
      const a = new Int32Array(cap);
      a.set(this[k]);
      this[k] = a;
    }
  }
}

export class IpvsConnTable {
  private readonly tab = new ConnHash();
  private readonly timers = new ConnTimers();
  /**
   * ip_vs_conn_drop_conntrack(): what ip_vs_conn_expire does with the
   * conntrack of a connection that keeps one (IP_VS_CONN_F_NFCT); the node
   * sets it.
   */
  dropConntrack: ((cp: IpvsConn) => void) | undefined;
  private seq = 0;
  /** Scratch words for the lookups by address bytes. */
  private readonly aw = new Int32Array(8);
  readonly sysctl: IpvsSysctl;

  constructor(sysctl: Partial<IpvsSysctl> = {}, readonly hz = 250) {
    this.sysctl = { ...IPVS_SYSCTL_DEFAULTS, ...sysctl };
  }

  /** Every entry (templates included) in the order they were made, for `ipvsadm -L -c`. */
  entries(): IpvsConn[] {
    const out: IpvsConn[] = [];
    for (const cp of this.tab.objs) if (cp) out.push(cp);
    return out.sort((a, b) => a.seq - b.seq);
  }

  get size(): number {
    return this.tab.count;
  }

  /** ip_vs_conn_in_get(): a live connection from the client side. */
  inGet(protocol: number, caddr: Uint8Array, cport: number, vaddr: Uint8Array, vport: number, now: number, template = false): IpvsConn | undefined {
    addrWords(caddr, this.aw, 0);
    addrWords(vaddr, this.aw, 4);
    return this.inGetW(caddr.length === 4 ? 4 : 6, protocol, this.aw, 0, cport, this.aw, 4, vport, now, template) ?? undefined;
  }

  /** ip_vs_conn_in_get() over address words (addrWords), as the packet path calls it. */
  inGetW(af: number, protocol: number, cw: Int32Array, cat: number, cport: number, vw: Int32Array, vat: number, vport: number, now: number, template = false): IpvsConn | null {
    return this.live(this.tab.findIn(af, protocol, cw, cat, cport, vw, vat, vport, template), now);
  }

  /** ip_vs_conn_out_get(): a live connection from the real server's side (masquerade replies). */
  outGet(protocol: number, daddr: Uint8Array, dport: number, caddr: Uint8Array, cport: number, now: number): IpvsConn | undefined {
    addrWords(daddr, this.aw, 0);
    addrWords(caddr, this.aw, 4);
    return this.outGetW(daddr.length === 4 ? 4 : 6, protocol, this.aw, 0, dport, this.aw, 4, cport, now) ?? undefined;
  }

  /** ip_vs_conn_out_get() over address words. */
  outGetW(af: number, protocol: number, dw: Int32Array, dat: number, dport: number, cw: Int32Array, cat: number, cport: number, now: number): IpvsConn | null {
    return this.live(this.tab.findOut(af, protocol, dw, dat, dport, cw, cat, cport), now);
  }

  private live(cp: IpvsConn | null, now: number): IpvsConn | null {
    if (!cp) return null;
    // The timer has run out (a template still in control is re-armed instead, from its deadline).
    if (((cp.expires - now) | 0) <= 0 && this.expire(cp, cp.expires)) return null;
    return cp;
  }

  /**
   * ip_vs_conn_expire(): the timer ran out. A template still controlling
   * connections is re-armed for 60 s (expire_later: cp->timeout = 60*HZ,
   * which the next connection it takes refreshes it by); otherwise
   * unlinked, the controller told, the conntrack dropped (IP_VS_CONN_F_NFCT)
   * and the dest counters dropped (ip_vs_unbind_dest).
   */
  expire(cp: IpvsConn, now: number): boolean {
    if (cp.nControl > 0) {
      cp.timeout = EXPIRE_LATER * this.hz;
      this.setExpires(cp, now + cp.timeout);
      return false;
    }
    this.tab.remove(cp);
    if (cp.control) cp.control.nControl--;
    if (cp.flags & IP_VS_CONN_F_NFCT) this.dropConntrack?.(cp);
    const d = cp.dest;
    if (d) {
      if (cp.template) d.persistconns--;
      else if (cp.flags & IP_VS_CONN_F_INACTIVE) d.inactconns--;
      else d.activeconns--;
      // ip_vs_unbind_dest: the overload flag falls with the l_threshold (or 3/4 of u_threshold).
      if (d.lThreshold !== 0) {
        if (totalConns(d) < d.lThreshold) d.flags &= ~IP_VS_DEST_F_OVERLOAD;
      } else if (d.uThreshold !== 0) {
        if (totalConns(d) * 4 < d.uThreshold * 3) d.flags &= ~IP_VS_DEST_F_OVERLOAD;
      } else d.flags &= ~IP_VS_DEST_F_OVERLOAD;
    }
    return true;
  }

  /** Runs every connection timer due at `now`, in deadline order. */
  expireDue(now: number): void {
    const objs = this.tab.objs;
    for (let cp = this.timers.popDue(now, objs); cp; cp = this.timers.popDue(now, objs)) {
      if (cp.slot < 0) continue;
      // pushed back since it was armed: back in at its deadline (run in its turn if that is due too)
      if (((cp.expires - cp.timerAt) | 0) > 0) this.timers.arm(cp, cp.expires);
      else this.expire(cp, cp.expires); // as it ran then: a template re-armed from its deadline
    }
  }

  /** cp's timer set to run out at `deadline` (mod_timer). */
  setExpires(cp: IpvsConn, deadline: number): void {
    cp.expires = deadline;
    this.timers.arm(cp, deadline);
  }

  /**
   * ip_vs_conn_new() + ip_vs_bind_dest(): the dest's conn_flags (forwarding
   * method; IP_VS_CONN_F_INACTIVE, and IP_VS_CONN_F_NOOUTPUT for a method
   * other than masquerade, set by __ip_vs_update_dest) go on the
   * connection; a normal connection counts as inactive until the protocol
   * makes it active (tcp_state_active), a template as persistent.
   */
  private newConn(svc: IpvsService, vaddr: Uint8Array, vport: number, caddr: Uint8Array, cport: number,
    dest: IpvsDest, dport: number, flags: number, control: IpvsConn | null, protocol: number, now: number): IpvsConn {
    const fwd = dest.fwd & IP_VS_CONN_F_FWD_MASK;
    const f = flags | fwd | IP_VS_CONN_F_INACTIVE | (fwd !== IP_VS_CONN_F_MASQ ? IP_VS_CONN_F_NOOUTPUT : 0) | (this.sysctl.conntrack ? IP_VS_CONN_F_NFCT : 0);
    const cp = new IpvsConn(protocol, caddr, cport, vaddr, vport, dest.addr, dport, f, dest, svc, control, now, this.hz);
    cp.seq = this.seq++;
    this.tab.insert(cp);
    this.timers.arm(cp, cp.expires);
    if (flags & IP_VS_CONN_F_TEMPLATE) dest.persistconns++;
    else dest.inactconns++;
    if (dest.uThreshold !== 0 && totalConns(dest) >= dest.uThreshold) dest.flags |= IP_VS_DEST_F_OVERLOAD;
    if (control) control.nControl++;
    dest.conns += flags & IP_VS_CONN_F_TEMPLATE ? 0 : 1;
    if (!(flags & IP_VS_CONN_F_TEMPLATE)) svc.conns++;
    return cp;
  }

  /**
   * ip_vs_schedule(): a new connection to `svc` for the packet, or null
   * (no destination: the kernel then answers ICMP port unreachable or drops,
   * ip_vs_leave). Persistent services go through ip_vs_sched_persist().
   */
  schedule(svc: IpvsService, p: SchedPacket, now: number): IpvsConn | null {
    const c = svc.conf;
    if (c.flags & IP_VS_SVC_F_PERSISTENT) return this.schedPersist(svc, p, now);
    const dest = svc.schedule(p, now);
    if (!dest) return null;
    // ip_vs_schedule: cp dport = dest->port ? dest->port : vport.
    return this.newConn(svc, p.daddr, p.dport, p.saddr, p.sport, dest, dest.port || p.dport, 0, null, p.protocol, now);
  }

  /**
   * ip_vs_sched_persist(): the template (protocol, caddr & netmask, 0,
   * vaddr or fwmark, vport) picks the dest while it lives
   * (ip_vs_check_template: the dest must still be available, and with
   * expire_quiescent_template of weight > 0); a new template lives
   * svc->timeout seconds and is refreshed by each connection it controls.
   */
  private schedPersist(svc: IpvsService, p: SchedPacket, now: number): IpvsConn | null {
    const c = svc.conf;
    const snet = new Uint8Array(p.saddr.length);
    for (let i = 0; i < snet.length; i++) snet[i] = p.saddr[i]! & c.netmask[i]!;
    // A fwmark service keys its templates by the mark, in the vaddr slot, protocol IPPROTO_IP.
    const tProto = c.fwmark ? 0 : p.protocol;
    const tVaddr = c.fwmark ? Uint8Array.of(c.fwmark >>> 24, (c.fwmark >>> 16) & 255, (c.fwmark >>> 8) & 255, c.fwmark & 255) : p.daddr;
    // Port-zero services (-t VIP:0) make templates for every port: vport 0.
    // ... and an FTP service (port 21) with vport 0 too, so that its data connections share the template.
    const tVport = c.fwmark || c.port === 0 || c.port === FTPPORT ? 0 : p.dport;
    let ct = this.inGet(tProto, snet, 0, tVaddr, tVport, now, true);
    if (ct && !this.checkTemplate(ct)) ct = undefined;
    let dest: IpvsDest | null;
    if (ct) dest = ct.dest;
    else {
      dest = svc.schedule(p, now);
      if (!dest) return null;
      ct = this.newConn(svc, tVaddr, tVport, snet, 0, dest, tVport ? dest.port : 0, IP_VS_CONN_F_TEMPLATE, null, tProto, now);
      ct.timeout = c.timeout * this.hz;
    }
    // ip_vs_conn_put(ct): the template's timer restarts from now (the only refresh it gets)
    this.setExpires(ct, now + ct.timeout);
    // The real server's port for the service's own port; any other (a fwmark or port-zero service) goes on as it is.
    const dport = p.dport === c.port && dest!.port ? dest!.port : p.dport;
    const cp = this.newConn(svc, p.daddr, p.dport, p.saddr, p.sport, dest!, dport, 0, ct, p.protocol, now);
    return cp;
  }

  /** ip_vs_check_template(). */
  private checkTemplate(ct: IpvsConn): boolean {
    const d = ct.dest;
    if (!d || !(d.flags & IP_VS_DEST_F_AVAILABLE) || (this.sysctl.expire_quiescent_template && d.weight === 0)) {
      // The kernel makes the template's key unusable (ip_vs_conn_unhash, dport and
      // vport 0xffff, cport 0, ip_vs_conn_rehash) and leaves its timer as it is.
      if (ct.vport !== 0xffff) {
        const slot = ct.slot;
        this.tab.remove(ct);
        ct.dport = ct.vport = 0xffff;
        ct.cport = 0;
        this.tab.insert(ct);
        // the timer heap names it by its slot (the one just freed, taken again)
        if (ct.slot !== slot) {
          ct.armed = false;
          this.timers.arm(ct, ct.expires);
        }
      }
      return false;
    }
    return true;
  }

  /**
   * ip_vs_in_hook()'s check of a TCP SYN (is_new_conn) that finds a
   * connection: with expire_nodest_conn and a quiesced dest, or with
   * conn_reuse_mode and a connection in TIME_WAIT or CLOSE (or FIN_WAIT
   * without output, mode bit 2) not under a template
   * (is_new_conn_expected), the old connection is expired and the SYN
   * scheduled anew. `confirmedCt`: the packet has a confirmed conntrack
   * (ip_vs_conn_uses_old_conntrack: nf_ct_is_confirmed; a SYN that reopened
   * a closed conntrack has a new, unconfirmed one). Returns the connection
   * to use: `cp`, null (schedule a new one) or 'drop' (the old conntrack
   * entry would keep the stale NAT: NF_DROP, the client retransmits).
   */
  reuseCheck(cp: IpvsConn, now: number, confirmedCt: boolean): IpvsConn | null | 'drop' {
    const s = this.sysctl;
    let resched = false;
    let oldCt = false;
    if (s.expire_nodest_conn && cp.dest && cp.dest.weight === 0) {
      resched = true;
      oldCt = confirmedCt;
    } else if (s.conn_reuse_mode && newConnExpected(cp, s.conn_reuse_mode)) {
      oldCt = confirmedCt;
      resched = cp.nControl === 0 ? true : !oldCt;
    }
    if (!resched) return cp;
    if (!oldCt) cp.flags &= ~IP_VS_CONN_F_NFCT;
    // ip_vs_conn_expire_now()
    if (cp.nControl === 0) this.expire(cp, now);
    return oldCt ? 'drop' : null;
  }

  /**
   * tcp_state_transition() / udp_state_transition(): the state, the
   * active/inactive counters and the timeout after a packet of `dir`
   * (IP_VS_DIR_INPUT from the client, IP_VS_DIR_OUTPUT from the real server).
   */
  stateTransition(cp: IpvsConn, dir: number, tcpFlags: number, now: number): void {
    cp.inpkts += dir === IP_VS_DIR_INPUT ? 1 : 0;
    if (cp.protocol === IPPROTO_TCP) {
      let off = dir === IP_VS_DIR_OUTPUT ? TCP_DIR_OUTPUT : TCP_DIR_INPUT;
      if (cp.flags & IP_VS_CONN_F_NOOUTPUT) {
        if (off === TCP_DIR_OUTPUT) cp.flags &= ~IP_VS_CONN_F_NOOUTPUT;
        else off = TCP_DIR_INPUT_ONLY;
      }
      const idx = tcpStateIdx(tcpFlags);
      const ns = idx < 0 ? IP_VS_TCP_S_CLOSE : TCP_STATES[off + idx]![cp.state]!;
      if (ns !== cp.state) {
        const d = cp.dest;
        if (d && !(cp.flags & IP_VS_CONN_F_INACTIVE) && !TCP_STATE_ACTIVE[ns]) {
          d.activeconns--; d.inactconns++; cp.flags |= IP_VS_CONN_F_INACTIVE;
        } else if (d && cp.flags & IP_VS_CONN_F_INACTIVE && TCP_STATE_ACTIVE[ns]) {
          d.activeconns++; d.inactconns--; cp.flags &= ~IP_VS_CONN_F_INACTIVE;
        }
        if (ns === IP_VS_TCP_S_ESTABLISHED) assureTemplate(cp);
      }
      cp.state = ns;
      cp.timeout = TCP_TIMEOUTS[ns]! * this.hz;
    } else if (cp.protocol === IPPROTO_UDP) {
      cp.timeout = UDP_TIMEOUT * this.hz;
      if (dir === IP_VS_DIR_OUTPUT) assureTemplate(cp);
    }
    // ip_vs_conn_put(): the connection's timer restarts from now (not its template's).
    this.setExpires(cp, now + cp.timeout);
  }

  /**
   * One line of `ipvsadm -L -n -c`: ip_vs_conn_seq_show() writes the
   * protocol (ip_vs_proto_name: a fwmark template's IPPROTO_IP is "IP"),
   * the addresses, the state (ip_vs_state_name: "NONE" for a template) and
   * the seconds left; ipvsadm.c print_conn() prints them as
   * "%-3s %-6s %-11s %-18s %-18s %s" with the expiry as "%02d:%02d".
   */
  static format(cp: IpvsConn, now: number, hz: number): string {
    const fam = cp.caddr.length === 4 ? 4 : 6;
    const left = Math.max(0, Math.floor(((cp.expires - now) | 0) / hz));
    const mmss = `${String(Math.floor(left / 60)).padStart(2, '0')}:${String(left % 60).padStart(2, '0')}`;
    // ip_vs_state_name(): a template's state from ip_vs_ctpl_state_name_table
    const state = cp.template ? (cp.state === IP_VS_CTPL_S_ASSURED ? 'ASSURED' : 'NONE') : cp.protocol === IPPROTO_TCP ? TCP_STATE_NAMES[cp.state]! : cp.protocol === IPPROTO_UDP ? 'UDP' : 'NONE';
    return `${ipvsProtoName(cp.protocol).padEnd(3)} ${mmss.padEnd(6)} ${state.padEnd(11)} ${addrPort(fam, cp.caddr, cp.cport).padEnd(18)} ${addrPort(fam, cp.vaddr, cp.vport).padEnd(18)} ${addrPort(fam, cp.daddr, cp.dport)}`;
  }
}

/** ip_vs_proto_name() (ip_vs_proto.c). */
export function ipvsProtoName(p: number): string {
  switch (p) {
    case 0: return 'IP';
    case IPPROTO_UDP: return 'UDP';
    case IPPROTO_TCP: return 'TCP';
    case IPPROTO_SCTP: return 'SCTP';
    case 1: return 'ICMP';
    case 58: return 'ICMPv6';
    default: return `IP_${p}`;
  }
}

/** ip_vs_control_assure_ct(): the template of a connection that was answered becomes ASSURED. */
function assureTemplate(cp: IpvsConn): void {
  const ct = cp.control;
  if (ct && ct.template) ct.state = IP_VS_CTPL_S_ASSURED;
}

/** is_new_conn_expected() (ip_vs_core.c): TCP in TIME_WAIT or CLOSE, or (mode bit 2) FIN_WAIT without output. */
function newConnExpected(cp: IpvsConn, mode: number): boolean {
  if (cp.control) return false;
  if (cp.protocol === IPPROTO_TCP) {
    return cp.state === IP_VS_TCP_S_TIME_WAIT || cp.state === IP_VS_TCP_S_CLOSE
      || ((mode & 2) !== 0 && cp.state === IP_VS_TCP_S_FIN_WAIT && (cp.flags & IP_VS_CONN_F_NOOUTPUT) !== 0);
  }
  return false;
}

