/**
 * The state x_tables matches keep outside their rules, per network
 * namespace, and the clock they read: what a node (hooks/node.ts) gives
 * every engine of both families, so that a `--name` shared by several
 * rules reaches one list as in the kernel.
 *
 *  - the clock: the packet's virtual time (a capture timestamp) in
 *    nanoseconds, and jiffies computed from it as the kernel counts them,
 *    floor(ns / (1e9 / HZ)); HZ is the node's setting (CONFIG_HZ, default
 *    250 as on the reference kernel). The kernel's jiffies start at
 *    INITIAL_JIFFIES; the model's start at the clock's origin, so only
 *    differences of jiffies mean anything (as in the kernel's own use);
 *  - the rules are loaded just before the first packet: state a checkentry
 *    starts with the load time (xt_limit's priv->prev) takes the time of
 *    the first packet the node sees (`loadNs`);
 *  - named tables, created by the first rule that names them (checkentry
 *    order: table by table, rule by rule) and shared by the later ones:
 *    xt_recent's lists (recent_net, by name, both families), hashlimit's
 *    htables (hashlimit_net, by name and family), RATEEST's estimators
 *    (xt_rateest_net, by name).
 */

/** CONFIG_HZ of the reference kernel (6.18 on the test machines). */
export const XT_HZ_DEFAULT = 250;

export class XtState {
  /** The packet's time, ns (set by the node before each packet). */
  nowNs = 0;
  /** Time of the ruleset load (the first packet's), ns; undefined before the first packet. */
  loadNs: number | undefined = undefined;
  /** Named objects: `recent:NAME`, `hashlimit4:NAME`, `hashlimit6:NAME`, `rateest:NAME`, `nfacct:NAME` (the node's accounting objects). */
  readonly named = new Map<string, unknown>();

  constructor(readonly hz = XT_HZ_DEFAULT) {
    if (!Number.isInteger(hz) || hz < 1 || hz > 10000) throw new RangeError(`HZ ${hz} out of range 1..10000`);
  }

  /** Sets the clock (the node calls this before each packet). */
  setNow(nowNs: number): void {
    this.nowNs = nowNs;
    if (this.loadNs === undefined) this.loadNs = nowNs;
  }

  /** jiffies at the packet's time. */
  jiffies(): number {
    return Math.floor(this.nowNs / (1e9 / this.hz));
  }

  /** jiffies when the rules were loaded. */
  loadJiffies(): number {
    return Math.floor((this.loadNs ?? this.nowNs) / (1e9 / this.hz));
  }

  /** The named object `key`, made by `make` the first time. */
  get<T>(key: string, make: () => T): T {
    let v = this.named.get(key) as T | undefined;
    if (v === undefined) {
      v = make();
      this.named.set(key, v);
    }
    return v;
  }

  private rules = 0;

  /**
   * A rule's own state (what its checkentry allocates: xt_limit_priv,
   * xt_quota_priv), number fields only, saved and restored with the named
   * objects by checkpoint().
   */
  ruleState<T extends Record<string, number>>(init: T): T {
    const s = { ...init };
    const saveable: XtSaveable = {
      save: () => {
        const copy = { ...s };
        return () => void Object.assign(s, copy);
      },
    };
    this.named.set(`rule#${this.rules++}`, saveable);
    return s;
  }

  /** A rule's own state object (xt_connlimit's nf_conncount_data), saved and restored by checkpoint(). */
  ruleObject<T extends XtSaveable>(o: T): T {
    this.named.set(`rule#${this.rules++}`, o);
    return o;
  }

  /** Saves every named object's state with `save` (objects implementing XtSaveable); the returned function restores it. */
  checkpoint(): () => void {
    const now = this.nowNs;
    const load = this.loadNs;
    const saved = [...this.named].map(([k, v]) => [k, v, (v as Partial<XtSaveable>).save?.()] as const);
    return () => {
      this.nowNs = now;
      this.loadNs = load;
      this.named.clear();
      for (const [k, v, restore] of saved) {
        this.named.set(k, v);
        restore?.();
      }
    };
  }
}

/** A named object that can save its contents (XtState.checkpoint). */
export interface XtSaveable {
  /** Saves the contents; the returned function restores them. */
  save(): () => void;
}

/**
 * A named object with a /proc file (xt_recent's /proc/net/xt_recent/NAME,
 * hashlimit's /proc/net/ipt_hashlimit/NAME): `replay --save` prints them.
 */
export interface XtProcFile {
  /** The file's path, e.g. `/proc/net/xt_recent/DEFAULT`. */
  readonly procPath: string;
  /** What reading the file prints at the clock's time, one line each. */
  procLines(xt: XtState): string[];
}

/** The /proc files of the named objects whose path starts with `prefix`, by path. */
export function xtProcFiles(xt: XtState, prefix: string): XtProcFile[] {
  const out: XtProcFile[] = [];
  for (const v of xt.named.values()) {
    const f = v as Partial<XtProcFile>;
    if (typeof f.procPath === 'string' && typeof f.procLines === 'function' && f.procPath.startsWith(prefix)) out.push(f as XtProcFile);
  }
  return out.sort((a, b) => (a.procPath < b.procPath ? -1 : a.procPath > b.procPath ? 1 : 0));
}
