/**
 * nf_conncount (net/netfilter/nf_conncount.c, Linux 6.18 with its stable
 * fixes: the sk_buff API, -EEXIST for a confirmed connection, the GC once
 * per jiffy unless CONNCOUNT_GC_MAX_COLLECT connections came since): per
 * rule, a list of connection tuples for each key (the masked address and
 * the zone id xt_connlimit builds), counted by looking every saved tuple up
 * in the conntrack table.
 *
 *  - a packet whose conntrack is confirmed and ASSURED, or seen as
 *    IP_CT_ESTABLISHED, adds nothing (-EEXIST): its list is garbage
 *    collected instead (at most once a jiffy) and its length is the count;
 *  - otherwise the saved tuples are checked (skipped when the list was
 *    collected in this jiffy and fewer than 64 were added since, unless
 *    the conntrack is confirmed): a tuple whose conntrack is gone is
 *    dropped (find_or_evict: added on this CPU or two jiffies ago), one
 *    whose TCP conntrack is in TIME_WAIT or CLOSE is dropped
 *    (already_closed), and finding the packet's own tuple ends the walk;
 *    then the packet's tuple is appended;
 *  - a packet that gives no tuple (nf_ct_get_tuplepr fails) counts 0.
 *
 * The kernel keeps the keys in 256 rb-trees (slot by a random jhash); a
 * new key's insertion also collects the lists it passes on its way down,
 * which depends on the random slot and the tree's shape. The model keeps
 * one list per key and collects a list only when its own key is counted
 * (the lists passed on the way are collected there too at their next
 * count, unless that comes in the same jiffy). An emptied list stays, as
 * the kernel's node does until a tree walk or the gc worker frees it.
 */
import { IPS_ASSURED, IPS_CONFIRMED, IP_CT_ESTABLISHED } from '../core/netfilter.js';
import { CT_TUPLE_WORDS, nfCtInfo, type NfCtTable } from '../vm/ct-env.js';
import { M_CT_ID } from '../vm/layout.js';
import type { Packet } from '../vm/packet.js';
import type { XtSaveable } from './xtstate.js';

/** CONNCOUNT_GC_MAX_COLLECT */
const GC_MAX_COLLECT = 64;
/** MAX_KEYLEN: u32 words of a key. */
export const CONNCOUNT_MAX_KEYLEN = 5;

/** struct nf_conncount_tuple */
interface ConnTuple {
  readonly t: Int32Array;
  /** zone id | dir << 16 */
  readonly zone: number;
  readonly cpu: number;
  readonly jiffies32: number;
}

/** struct nf_conncount_list with its key (struct nf_conncount_rb). */
interface ConnList {
  readonly key: Int32Array;
  conns: ConnTuple[];
  lastGc: number;
  lastGcCount: number;
}

const ENOENT = -2;
const EEXIST = -17;
const EAGAIN = -11;

/** nf_ct_zone_id(zone, nf_conncount_zone_dir(zone)) for a zone id | dir << 16. */
function zoneIdOf(zone: number): number {
  const dir = zone >>> 16;
  // nf_conncount_zone_dir: ORIGINAL when the zone covers it, else REPLY; nf_ct_zone_id gives the id only for a covered direction
  return dir & 1 || dir & 2 ? zone & 0xffff : 0;
}

function tupleEqual(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < CT_TUPLE_WORDS; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The conncount state of one rule (struct nf_conncount_data). */
export class NfConncountData implements XtSaveable {
  private readonly lists = new Map<number, ConnList[]>();
  /** The packet's tuple (get_ct_or_tuple_from_skb's). */
  private readonly tuple = new Int32Array(CT_TUPLE_WORDS);
  private zone = 0;
  private ctinfo = 0;

  constructor(private readonly keylen: number) {}

  save(): () => void {
    const copy = new Map([...this.lists].map(([h, ls]) => [h, ls.map((l) => ({ ...l, conns: [...l.conns] }))] as const));
    return () => {
      this.lists.clear();
      for (const [h, ls] of copy) this.lists.set(h, ls.map((l) => ({ ...l, conns: [...l.conns] })));
    };
  }

  private hash(key: Int32Array): number {
    let h = 0x9e3779b9;
    for (let i = 0; i < this.keylen; i++) h = Math.imul(h ^ key[i]!, 0x85ebca6b) ^ (h >>> 13);
    return h | 0;
  }

  private find(key: Int32Array, h: number): ConnList | undefined {
    const ls = this.lists.get(h);
    if (!ls) return undefined;
    outer: for (const l of ls) {
      for (let i = 0; i < this.keylen; i++) if (l.key[i] !== key[i]) continue outer;
      return l;
    }
    return undefined;
  }

  /** get_ct_or_tuple_from_skb(): the conntrack (>= 0) or -1, this.tuple/zone/ctinfo set; -2 without a tuple. */
  private ctOrTuple(ct: NfCtTable, pkt: Packet): number {
    const m = pkt.meta;
    const id = m[M_CT_ID]!;
    this.ctinfo = nfCtInfo(m);
    this.zone = ct.packetZone(pkt);
    if (id >= 0) {
      for (let w = 0; w < CT_TUPLE_WORDS; w++) this.tuple[w] = ct.tupleWord(id, 0, w);
      return id;
    }
    return ct.lookupPacket(pkt, this.tuple, 0, this.zone);
  }

  /** find_or_evict(): the conntrack of a saved tuple, or ENOENT (dropped) / EAGAIN (may be about to be confirmed). */
  private findOrEvict(ct: NfCtTable, c: ConnTuple, jiffies: number, cpu: number): number {
    const found = ct.findTuple(c.t, 0, c.zone);
    if (found >= 0) return found;
    const age = (jiffies - c.jiffies32) >>> 0;
    return c.cpu === cpu || age >= 2 ? ENOENT : EAGAIN;
  }

  /** __nf_conncount_add(): 0, EEXIST (a confirmed connection: nothing added) or ENOENT (no tuple). */
  private add(ct: NfCtTable, pkt: Packet, list: ConnList, jiffies: number, cpu: number): number {
    const found = this.ctOrTuple(ct, pkt);
    if (found === -2) return ENOENT;
    const tuple = this.tuple;
    const zone = this.zone;
    let scan = true;
    if (found >= 0 && ct.status(found) & IPS_CONFIRMED) {
      if (ct.status(found) & IPS_ASSURED || this.ctinfo === IP_CT_ESTABLISHED) return EEXIST;
    } else if (jiffies === list.lastGc && list.conns.length - list.lastGcCount < GC_MAX_COLLECT) {
      scan = false;
    }
    if (scan) {
      let collect = 0;
      const conns = list.conns;
      let w = 0;
      let r = 0;
      let exists = false;
      for (; r < conns.length; r++) {
        const c = conns[r]!;
        if (collect > GC_MAX_COLLECT) break;
        const f = this.findOrEvict(ct, c, jiffies, cpu);
        if (f === ENOENT) {
          collect++;
          continue;
        }
        if (f === EAGAIN) {
          conns[w++] = c;
          if (tupleEqual(c.t, tuple) && zoneIdOf(c.zone) === zoneIdOf(zone)) {
            exists = true;
            r++;
            break;
          }
          continue;
        }
        if (tupleEqual(c.t, tuple) && zoneIdOf(c.zone) === zoneIdOf(zone)) {
          conns[w++] = c;
          exists = true;
          r++;
          break;
        }
        if (ct.tcpClosed(f)) {
          collect++;
          continue;
        }
        conns[w++] = c;
      }
      for (; r < conns.length; r++) conns[w++] = conns[r]!;
      conns.length = w;
      if (exists) return 0;
      list.lastGc = jiffies;
      list.lastGcCount = conns.length;
    }
    list.conns.push({ t: tuple.slice(), zone, cpu, jiffies32: jiffies });
    return 0;
  }

  /** nf_conncount_gc_list(): drops gone and closed connections, at most once a jiffy. */
  private gcList(ct: NfCtTable, list: ConnList, jiffies: number, cpu: number): void {
    if (jiffies === list.lastGc) return;
    const conns = list.conns;
    let collected = 0;
    let w = 0;
    let r = 0;
    for (; r < conns.length; r++) {
      const c = conns[r]!;
      const f = this.findOrEvict(ct, c, jiffies, cpu);
      if (f < 0) {
        if (f === ENOENT) collected++;
        else conns[w++] = c;
        continue;
      }
      if (ct.tcpClosed(f)) {
        collected++;
        continue;
      }
      conns[w++] = c;
      if (collected > GC_MAX_COLLECT) {
        r++;
        break;
      }
    }
    for (; r < conns.length; r++) conns[w++] = conns[r]!;
    conns.length = w;
    list.lastGc = jiffies;
    list.lastGcCount = w;
  }

  /**
   * nf_conncount_count_skb(): the connections of `key` (keylen words) with
   * the packet's own added; 0 when the packet gives no tuple (the caller
   * hotdrops). `jiffies` is the clock as a u32, `cpu` the processing CPU.
   */
  count(ct: NfCtTable, pkt: Packet, key: Int32Array, jiffies: number, cpu: number): number {
    const h = this.hash(key);
    const list = this.find(key, h);
    if (list && list.conns.length > 0) {
      // count_tree(): same key -> be counted
      const ret = this.add(ct, pkt, list, jiffies, cpu);
      if (ret === ENOENT) return 0;
      if (ret === EEXIST) this.gcList(ct, list, jiffies, cpu);
      return list.conns.length;
    }
    if (list) {
      // insert_tree() meets the emptied node: nf_conncount_add_skb without the -EEXIST collection
      const ret = this.add(ct, pkt, list, jiffies, cpu);
      return ret === ENOENT ? 0 : list.conns.length;
    }
    // insert_tree(): a new node with the packet's tuple (nf_conncount_list_init: last_gc = jiffies)
    if (this.ctOrTuple(ct, pkt) === -2) return 0;
    const l: ConnList = { key: key.slice(0, this.keylen), conns: [{ t: this.tuple.slice(), zone: this.zone, cpu, jiffies32: jiffies }], lastGc: jiffies, lastGcCount: 0 };
    const ls = this.lists.get(h);
    if (ls) ls.push(l);
    else this.lists.set(h, [l]);
    return 1;
  }
}
