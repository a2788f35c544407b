/** The scheduler name table (ip_vs_sched.c ip_vs_scheduler_get by name). */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';
import { RrScheduler } from './rr.js';
import { WrrScheduler } from './wrr.js';
import { LcScheduler } from './lc.js';
import { WlcScheduler } from './wlc.js';
import { SedScheduler } from './sed.js';
import { NqScheduler } from './nq.js';
import { FoScheduler } from './fo.js';
import { OvfScheduler } from './ovf.js';
import { ShScheduler } from './sh.js';
import { DhScheduler } from './dh.js';
import { LblcScheduler } from './lblc.js';
import { MhScheduler } from './mh.js';
import { LblcrScheduler } from './lblcr.js';

export type { Scheduler, SchedPacket } from './sched.js';

const MAKERS: ReadonlyMap<string, (flags: number, dests: readonly IpvsDest[]) => Scheduler> = new Map<string, (flags: number, dests: readonly IpvsDest[]) => Scheduler>([
  ['rr', () => new RrScheduler()],
  ['wrr', (_f, d) => new WrrScheduler(d)],
  ['lc', () => new LcScheduler()],
  ['wlc', () => new WlcScheduler()],
  ['sed', () => new SedScheduler()],
  ['nq', () => new NqScheduler()],
  ['fo', () => new FoScheduler()],
  ['ovf', () => new OvfScheduler()],
  ['sh', (f, d) => new ShScheduler(f, d)],
  ['dh', (_f, d) => new DhScheduler(d)],
  ['mh', (f, d) => new MhScheduler(f, d)],
  ['lblc', () => new LblcScheduler()],
  ['lblcr', () => new LblcrScheduler()],
]);

/** The schedulers nfvm implements; the others of SCHEDULER_NAMES are refused at load. */
export const IMPLEMENTED_SCHEDULERS: readonly string[] = [...MAKERS.keys()];

/** init_service(): a scheduler over the dests present when the service is bound to it. */
export function makeScheduler(name: string, svcFlags: number, dests: readonly IpvsDest[]): Scheduler | undefined {
  return MAKERS.get(name)?.(svcFlags, dests);
}
