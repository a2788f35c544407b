/**
 * Conntrack expectations: the connections a helper announces on behalf of
 * its master (an FTP data connection), so that their first packet is
 * RELATED and the new conntrack knows its master.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_conntrack_expect.c  nf_ct_expect_init, nf_ct_expect_related_report
 *                                         (__nf_ct_expect_check: expect_matches, expect_clash,
 *                                         evict_oldest_expect, the table's limit), nf_ct_find_expectation,
 *                                         nf_ct_remove_expectations, the expectation's timer
 *   net/netfilter/nf_conntrack_core.c    init_conntrack (the expected conntrack: IPS_EXPECTED, its
 *                                         master, the master's mark)
 *
 * An expectation holds a tuple and a mask over it. The helpers modelled
 * (FTP) expect a TCP connection from one address to another address and
 * port, any source port: the mask is the whole tuple but the source port,
 * so an expectation is its tuple words with the source port 0. The zone is
 * the master's. Expectations are few (one per FTP control connection at a
 * time): a list, searched whole.
 */
import { T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS } from './tuple.js';

/** NF_CT_EXPECT_CLASS_DEFAULT */
export const NF_CT_EXPECT_CLASS_DEFAULT = 0;

/** What a helper's policy allows (struct nf_conntrack_expect_policy). */
export interface ExpectPolicy {
  maxExpected: number;
  /** Seconds. */
  timeout: number;
}

export interface Expectation {
  /** The tuple (source port 0: masked out). */
  readonly tuple: Int32Array;
  /** The master conntrack. */
  readonly master: number;
  /** The master's zone id (nf_ct_zone_equal_any compares ids). */
  readonly zoneId: number;
  readonly cls: number;
  /** Expiry, in the table's jiffies (a wrapping s32). */
  timeout: number;
  /** exp->dir, exp->saved_proto and exp->expectfn = nf_nat_follow_master, set by the NAT helper. */
  dir: number;
  savedPort: number;
  follow: boolean;
}

/**
 * nf_ct_expect_init() of the helpers modelled: an expectation of `tuple`
 * (source port 0) by master `e` in zone `zoneId`, default class; the NAT
 * helper sets dir, savedPort and follow.
 */
export function nfCtExpectInit(tuple: Int32Array, e: number, zoneId: number): Expectation {
  return { tuple, master: e, zoneId, cls: NF_CT_EXPECT_CLASS_DEFAULT, timeout: 0, dir: 0, savedPort: 0, follow: false };
}

/** -EBUSY, -EMFILE, -EALREADY: nf_ct_expect_related()'s failures. */
export const EBUSY = 16;
export const EMFILE = 24;
export const EALREADY = 114;

/** The expectation table of one network namespace. */
export class NfCtExpectTable {
  /** Newest first per master (hlist_add_head on the master's list): the list in insertion order, newest last. */
  readonly list: Expectation[] = [];
  /** nf_ct_expect_max: nf_ct_expect_hsize * 4 (nf_conntrack_expect_init). */
  readonly max: number;

  constructor(buckets: number) {
    this.max = Math.max(1, Math.floor(buckets / 256)) * 4;
  }

  get size(): number {
    return this.list.length;
  }

  /** The expectations left at `jiffies` (their timers fire: nf_ct_expectation_timed_out). */
  expire(jiffies: number): void {
    const l = this.list;
    for (let i = l.length - 1; i >= 0; i--) if (((l[i]!.timeout - jiffies) | 0) <= 0) l.splice(i, 1);
  }

  /**
   * nf_ct_expect_related(): adds `exp` unless it clashes with another
   * master's (-EBUSY) or the same one of another class or master
   * (-EALREADY); the master's same expectation is replaced, its oldest one
   * goes when it already has `policy.maxExpected`. 0 on success.
   */
  related(exp: Expectation, policy: ExpectPolicy, jiffies: number, hz: number): number {
    this.expire(jiffies);
    const l = this.list;
    for (let i = 0; i < l.length; i++) {
      const x = l[i]!;
      if (x.master === exp.master && sameTuple(x, exp)) {
        if (x.cls !== exp.cls) return -EALREADY;
        l.splice(i, 1);
        break;
      } else if (x.zoneId === exp.zoneId && sameTuple(x, exp)) {
        // expect_clash(): the masks are the same (the whole tuple but the source port), so the intersection is too
        return -EBUSY;
      }
    }
    if (policy.maxExpected) {
      let n = 0;
      let oldest = -1;
      for (let i = 0; i < l.length; i++) {
        if (l[i]!.master !== exp.master || l[i]!.cls !== exp.cls) continue;
        n++;
        if (oldest < 0) oldest = i;
      }
      // evict_oldest_expect(): the last of the master's list is its oldest
      if (n >= policy.maxExpected && oldest >= 0) {
        l.splice(oldest, 1);
        n--;
      }
      if (n >= policy.maxExpected) return -EMFILE;
    }
    if (l.length >= this.max) return -EMFILE;
    exp.timeout = (jiffies + policy.timeout * hz) | 0;
    l.push(exp);
    return 0;
  }

  /**
   * nf_ct_find_expectation(): the expectation a new connection's tuple `t`
   * (at `o`) in zone `zoneId` meets, unlinked (they are not permanent),
   * when its master is confirmed and not dying; undefined otherwise.
   */
  find(t: Int32Array, o: number, zoneId: number, jiffies: number, masterOk: (e: number) => boolean): Expectation | undefined {
    if (this.list.length === 0) return undefined;
    this.expire(jiffies);
    const l = this.list;
    for (let i = 0; i < l.length; i++) {
      const x = l[i]!;
      if (x.zoneId !== zoneId || !maskMatches(x.tuple, t, o)) continue;
      if (!masterOk(x.master)) return undefined;
      l.splice(i, 1);
      return x;
    }
    return undefined;
  }

  /** nf_ct_unexpect_related() */
  unexpect(exp: Expectation): void {
    const i = this.list.indexOf(exp);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** nf_ct_remove_expectations(): the expectations of master `e` go with it. */
  removeOf(e: number): void {
    const l = this.list;
    for (let i = l.length - 1; i >= 0; i--) if (l[i]!.master === e) l.splice(i, 1);
  }

  clear(): void {
    this.list.length = 0;
  }
}

function sameTuple(a: Expectation, b: Expectation): boolean {
  for (let i = 0; i < TUPLE_WORDS; i++) if (a.tuple[i] !== b.tuple[i]) return false;
  return true;
}

/** nf_ct_tuple_mask_cmp() with the mask of the whole tuple but the source port. */
function maskMatches(x: Int32Array, t: Int32Array, o: number): boolean {
  for (let i = 0; i < 4; i++) if (x[T_SRC + i] !== t[o + T_SRC + i] || x[T_DST + i] !== t[o + T_DST + i]) return false;
  return (x[T_PORTS]! & 0xffff) === (t[o + T_PORTS]! & 0xffff) && x[T_PROTO] === t[o + T_PROTO];
}
