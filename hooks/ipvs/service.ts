/**
 * A virtual service at run time (struct ip_vs_service, Linux 6.18
 * include/net/ip_vs.h): its real servers in kernel list order, its
 * scheduler, its counters.
 *
 * Built as `ipvsadm -R` builds it (net/netfilter/ipvs/ip_vs_ctl.c):
 * ip_vs_add_service() binds the scheduler over an empty list
 * (init_service), then each `-a` in file order goes through
 * ip_vs_new_dest/__ip_vs_update_dest: list_add_rcu() at the head of
 * svc->destinations, then sched->add_dest(). The list therefore runs from the
 * last `-a` to the first, and schedulers with state (wrr's cw) see each add.
 */
import { NfvmError } from '../../core/errors.js';
import { IpvsDest } from './dest.js';
import { type IpvsConfig, type IpvsServiceConf, addrPort, serviceName } from './save.js';
import { IMPLEMENTED_SCHEDULERS, makeScheduler, type SchedPacket, type Scheduler } from './sched/index.js';

export class IpvsService {
  /** svc->destinations: newest first. */
  readonly dests: IpvsDest[] = [];
  readonly sched: Scheduler;
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;

  constructor(readonly conf: IpvsServiceConf, file: string) {
    const s = makeScheduler(conf.sched, conf.flags, []);
    if (!s) {
      throw new NfvmError('check', `scheduler "${conf.sched}" is not modelled (nfvm runs ${IMPLEMENTED_SCHEDULERS.join(', ')})`, file, { line: conf.line, col: 1 }, conf.sched);
    }
    this.sched = s;
    for (const dc of conf.dests) this.addDest(new IpvsDest(dc));
  }

  /** __ip_vs_update_dest(add): list_add_rcu at the head, then add_dest. */
  addDest(d: IpvsDest): void {
    this.dests.unshift(d);
    this.sched.destChanged(this.dests);
  }

  /** svc->scheduler->schedule(). */
  schedule(p: SchedPacket, now = 0): IpvsDest | null {
    return this.sched.schedule(this.dests, p, now);
  }

  get name(): string {
    return this.conf.fwmark ? serviceName(this.conf) : addrPort(this.conf.family, this.conf.addr, this.conf.port);
  }
}

/** Every service of a parsed `ipvsadm-save` text, ready to schedule. */
export function buildServices(cfg: IpvsConfig): IpvsService[] {
  return cfg.services.map((s) => new IpvsService(s, cfg.file));
}
