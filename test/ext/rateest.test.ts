/**
 * The RATEEST estimator's arithmetic (ext/rateest.ts, gen_estimator.c's
 * est_timer) worked by hand, and its sharing rules.
 */
import { describe, expect, it } from 'vitest';
import { XtRateest, rateestGet } from '../../ext/rateest.js';
import { XtState } from '../../ext/xtstate.js';
import { NotModelled } from '../../ext/xt.js';

describe('RATEEST estimator', () => {
  it('folds each 250 ms tick into the average as est_timer does', () => {
    // interval 250 ms (intvl_log 0): a tick every HZ/4 = 62 jiffies at HZ 250; ewma_log 2 (W = 1/4)
    const e = new XtRateest(-2, 2, 250);
    e.advance(10, 0);
    e.bytes += 1000;
    e.packets += 10;
    e.advance(61, 0);
    expect([e.bps(), e.pps()]).toEqual([0, 0]);
    // tick at 62: (1000 << 10) >> 2 = 256000 -> 1000 B/s; (10 << 10) >> 2 = 2560 -> 10 pps
    e.advance(62, 0);
    expect([e.bps(), e.pps()]).toEqual([1000, 10]);
    // an idle tick takes a quarter off: 256000 - 64000 = 192000 -> 750 B/s; 2560 - 640 = 1920 -> 7 pps
    e.advance(124, 0);
    expect([e.bps(), e.pps()]).toEqual([750, 7]);
    // hours idle: the averages decay until (av >> ewma_log) is 0, then stay
    e.advance(250 * 3600 * 5, 0);
    expect([e.bps(), e.pps()]).toEqual([0, 0]);
  });

  it('shares an estimator by name only with the same interval and ewmalog', () => {
    const xt = new XtState();
    const a = rateestGet(xt, 'A', 0, 3);
    expect(rateestGet(xt, 'A', 0, 3)).toBe(a);
    expect(() => rateestGet(xt, 'A', 1, 3)).toThrow(NotModelled);
    expect(() => rateestGet(xt, 'B', 0, 25)).toThrow(/above 2\^20/);
  });
});
