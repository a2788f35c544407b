/**
 * A real server as the schedulers see it (struct ip_vs_dest, Linux 6.18
 * include/net/ip_vs.h) and the connection overhead the least-connection
 * family ranks by.
 */
import type { IpvsDestConf } from './save.js';
import type { InetFamily, OutputRoute } from '../path/ctx.js';

/** include/net/ip_vs.h dest flags. */
export const IP_VS_DEST_F_AVAILABLE = 0x0001;
export const IP_VS_DEST_F_OVERLOAD = 0x0002;

export class IpvsDest {
  readonly addr: Uint8Array;
  readonly port: number;
  readonly fwd: number;
  weight: number;
  /** dest->last_weight: the weight before the last change to 0 (mh builds on it). */
  lastWeight: number;
  readonly uThreshold: number;
  readonly lThreshold: number;
  flags = IP_VS_DEST_F_AVAILABLE;
  activeconns = 0;
  inactconns = 0;
  persistconns = 0;
  /** ipvsadm -L --stats: conns, inpkts, outpkts, inbytes, outbytes. */
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;
  /**
   * dest->dest_dst: the output route to the real server (its family's
   * route, kept by the node's IPVS module) and its direct-routing variant
   * with the real server as next hop.
   */
  dstCache: OutputRoute | undefined = undefined;
  dstCacheAf: InetFamily | undefined = undefined;
  dstCacheNh: Exclude<OutputRoute, { fate: unknown }> | undefined = undefined;

  constructor(c: Pick<IpvsDestConf, 'addr' | 'port' | 'fwd' | 'weight' | 'uThreshold' | 'lThreshold'>) {
    this.addr = c.addr;
    this.port = c.port;
    this.fwd = c.fwd;
    this.weight = c.weight;
    this.lastWeight = c.weight;
    this.uThreshold = c.uThreshold;
    this.lThreshold = c.lThreshold;
  }

  get overloaded(): boolean {
    return (this.flags & IP_VS_DEST_F_OVERLOAD) !== 0;
  }
}

/**
 * ip_vs_dest_conn_overhead() (include/net/ip_vs.h): active connections
 * weigh 256 inactive ones.
 */
export function connOverhead(d: IpvsDest): number {
  return d.activeconns * 256 + d.inactconns;
}

/** ip_vs_dest_totalconns(): what the -x/-y thresholds compare. */
export function totalConns(d: IpvsDest): number {
  return d.activeconns + d.inactconns;
}
