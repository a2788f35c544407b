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
import { addrWords } from './conn.js';
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

/** IP_VS_SVC_TAB_BITS: the kernel's 256 buckets, the least this table has. */
const IP_VS_SVC_TAB_SIZE = 256;
/** Key words of a service slot: family, protocol, port, fwmark, address (4 words). */
const SW_AF = 0, SW_PROTO = 1, SW_PORT = 2, SW_MARK = 3, SW_ADDR = 4, SW_WORDS = 8;

/**
 * ip_vs_svc_table and ip_vs_svc_fwm_table (ip_vs_ctl.c) as typed arrays:
 * chained buckets over service slots, hashed as ip_vs_svc_hashkey()
 * (protocol ^ host-order address, an IPv6 address folded by XOR of its
 * words, ^ port >> IP_VS_SVC_TAB_BITS ^ port) and ip_vs_svc_fwm_hashkey()
 * (the mark). The kernel keeps 2^8 buckets; these have at least as many
 * as services, so a lookup stays one or two compares at any size.
 */
export class IpvsSvcTable {
  private readonly heads: Int32Array;
  private readonly fwmHeads: Int32Array;
  private readonly next: Int32Array;
  private readonly keys: Int32Array;
  private readonly mask: number;

  constructor(readonly services: readonly IpvsService[]) {
    let n = IP_VS_SVC_TAB_SIZE;
    while (n < services.length) n *= 2;
    this.mask = n - 1;
    this.heads = new Int32Array(n).fill(-1);
    this.fwmHeads = new Int32Array(n).fill(-1);
    this.next = new Int32Array(services.length);
    this.keys = new Int32Array(services.length * SW_WORDS);
    // Added in file order at the head of their bucket, as ip_vs_svc_hash's hlist_add_head_rcu.
    for (let i = 0; i < services.length; i++) {
      const c = services[i]!.conf;
      const b = i * SW_WORDS;
      const k = this.keys;
      k[b + SW_AF] = c.family;
      k[b + SW_PROTO] = c.protocol;
      k[b + SW_PORT] = c.port;
      k[b + SW_MARK] = c.fwmark | 0;
      addrWords(c.addr, k, b + SW_ADDR);
      const heads = c.fwmark ? this.fwmHeads : this.heads;
      const h = c.fwmark ? this.fwmHash(c.fwmark | 0) : this.hash(c.family, c.protocol, k, b + SW_ADDR, c.port);
      this.next[i] = heads[h]!;
      heads[h] = i;
    }
  }

  /** ip_vs_svc_hashkey(). */
  private hash(af: number, proto: number, w: Int32Array, at: number, port: number): number {
    const a = af === 6 ? w[at]! ^ w[at + 1]! ^ w[at + 2]! ^ w[at + 3]! : w[at]!;
    return (proto ^ a ^ (port >>> 8) ^ port) & this.mask;
  }

  /** ip_vs_svc_fwm_hashkey(). */
  private fwmHash(mark: number): number {
    return mark & this.mask;
  }

  /** __ip_vs_service_find(): family, protocol, address words (at `at` of `w`), port. */
  find(af: number, proto: number, w: Int32Array, at: number, port: number): IpvsService | undefined {
    const k = this.keys;
    for (let i = this.heads[this.hash(af, proto, w, at, port)]!; i >= 0; i = this.next[i]!) {
      const b = i * SW_WORDS;
      if (k[b + SW_PORT] === port && k[b + SW_PROTO] === proto && k[b + SW_AF] === af && k[b + SW_ADDR] === w[at]
        && k[b + SW_ADDR + 1] === w[at + 1] && k[b + SW_ADDR + 2] === w[at + 2] && k[b + SW_ADDR + 3] === w[at + 3]) return this.services[i];
    }
    return undefined;
  }

  /** __ip_vs_svc_fwm_find(): family and mark. */
  findMark(af: number, mark: number): IpvsService | undefined {
    const k = this.keys;
    for (let i = this.fwmHeads[this.fwmHash(mark | 0)]!; i >= 0; i = this.next[i]!) {
      const b = i * SW_WORDS;
      if (k[b + SW_MARK] === (mark | 0) && k[b + SW_AF] === af) return this.services[i];
    }
    return undefined;
  }
}
