/**
 * The named rate estimators of RATEEST and the rateest match
 * (net/netfilter/xt_RATEEST.c, net/core/gen_estimator.c, Linux 6.18), on
 * the node's virtual clock.
 *
 * xt_rateest_tg_checkentry makes an estimator per name in the namespace
 * (xt_rateest_net), or shares the one of that name when its interval and
 * ewma_log are the same (different ones: -EINVAL, the rule is refused);
 * gen_new_estimator starts its timer: every (HZ/4) << intvl_log jiffies
 * (intvl_log = interval + 2), counted from the load, est_timer folds the
 * bytes and packets the target counted since the last tick into averages
 * scaled by 2^8:
 *
 *   avbps += ((Δbytes << (10 - intvl_log)) >> ewma_log) - (avbps >> ewma_log)
 *
 * (and the same for packets); gen_estimator_read gives avbps >> 8 bytes/s
 * and avpps >> 8 packets/s. The model runs the ticks that are due before
 * each packet that touches the estimator (the kernel's timer is never late
 * on the virtual clock). The rules load just before the first packet
 * (XtState.loadJiffies), so the phase of the ticks against the packets is
 * the model's: the kernel's timer started when the rules were loaded.
 */
import type { XtSaveable, XtState } from './xtstate.js';
import { NotModelled } from './xt.js';

/** The largest ewma_log modelled: with it an idle estimator settles within about 2^20 ticks. */
const EWMA_LOG_MAX = 20;

export class XtRateest implements XtSaveable {
  /** gnet_stats_basic_sync: what the RATEEST rules counted. */
  bytes = 0;
  packets = 0;
  private lastBytes = 0;
  private lastPackets = 0;
  private avbps = 0;
  private avpps = 0;
  /** est->next_jiffies, set at the first use (the load). */
  private next: number | undefined = undefined;
  private readonly intvlLog: number;
  private readonly period: number;

  constructor(readonly interval: number, readonly ewmaLog: number, hz: number) {
    this.intvlLog = interval + 2;
    this.period = Math.floor(hz / 4) * 2 ** this.intvlLog;
  }

  save(): () => void {
    const s = [this.bytes, this.packets, this.lastBytes, this.lastPackets, this.avbps, this.avpps, this.next] as const;
    return () => {
      [this.bytes, this.packets, this.lastBytes, this.lastPackets, this.avbps, this.avpps, this.next] = s;
    };
  }

  /** est_timer() for every tick due at `jiffies` (the load at `load`). */
  advance(jiffies: number, load: number): void {
    if (this.next === undefined) this.next = load + this.period;
    const e = 2 ** this.ewmaLog;
    const scale = 2 ** (10 - this.intvlLog);
    while (jiffies >= this.next) {
      const db = this.bytes - this.lastBytes;
      const dp = this.packets - this.lastPackets;
      const sb = Math.floor(this.avbps / e);
      const sp = Math.floor(this.avpps / e);
      if (db === 0 && dp === 0 && sb === 0 && sp === 0) {
        // nothing counted and the averages too small to decay: every later idle tick changes nothing
        this.next += Math.floor((jiffies - this.next) / this.period + 1) * this.period;
        break;
      }
      this.avbps += Math.floor((db * scale) / e) - sb;
      this.avpps += Math.floor((dp * scale) / e) - sp;
      this.lastBytes = this.bytes;
      this.lastPackets = this.packets;
      this.next += this.period;
    }
  }

  /** gen_estimator_read(): bytes/s and packets/s as the u32 fields xt_rateest_mt compares. */
  bps(): number {
    return Math.floor(this.avbps / 256) % 4294967296;
  }

  pps(): number {
    return Math.floor(this.avpps / 256) % 4294967296;
  }
}

/** xt_rateest_lookup(): the estimator `name`, or undefined. */
export function rateestLookup(xt: XtState, name: string): XtRateest | undefined {
  return xt.named.get(`rateest:${name}`) as XtRateest | undefined;
}

/** xt_rateest_tg_checkentry(): the estimator `name`, made or shared; a different interval or ewma_log is refused as the kernel refuses it. */
export function rateestGet(xt: XtState, name: string, interval: number, ewmaLog: number): XtRateest {
  if (ewmaLog > EWMA_LOG_MAX) {
    throw new NotModelled('target RATEEST', `target RATEEST: an averaging time above 2^${EWMA_LOG_MAX} intervals is not modelled (the model steps every tick of the estimator's timer)`);
  }
  const est = xt.get(`rateest:${name}`, () => new XtRateest(interval, ewmaLog, xt.hz));
  if (est.interval !== interval || est.ewmaLog !== ewmaLog) {
    throw new NotModelled('target RATEEST', `RATEEST: estimator ${name} exists with another interval or ewmalog (the kernel refuses the rule: Invalid argument)`);
  }
  return est;
}
