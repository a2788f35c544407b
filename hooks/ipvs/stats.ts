/**
 * `ipvsadm -L -n --stats` (ipvsadm.c print_title / print_service_entry with
 * FMT_STATS, print_largenum): per service and real server, the connections
 * scheduled and the packets and bytes in each direction.
 */
import { IPPROTO_TCP, IPPROTO_UDP, addrPort, sortedDests, sortedServices } from './save.js';
import type { IpvsService } from './service.js';

/** include/net/ip_vs.h IP_VS_VERSION_CODE 1.2.1 and the default IP_VS_CONN_TAB_SIZE (CONFIG_IP_VS_TAB_BITS 12). */
const HEADER = 'IP Virtual Server version 1.2.1 (size=4096)\n';
const TITLE = 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n';

/** print_largenum() without --exact: 9 columns, K/M/G/T past 10^8. */
export function largeNum(i: number): string {
  if (i < 1e8) return String(i).padStart(9);
  if (i < 1e9) return `${String(Math.floor(i / 1e3)).padStart(8)}K`;
  if (i < 1e11) return `${String(Math.floor(i / 1e6)).padStart(8)}M`;
  if (i < 1e14) return `${String(Math.floor(i / 1e9)).padStart(8)}G`;
  return `${String(Math.floor(i / 1e12)).padStart(8)}T`;
}

export function formatIpvsStats(services: readonly IpvsService[]): string {
  let out = HEADER + TITLE;
  const byConf = new Map(services.map((s) => [s.conf, s]));
  for (const conf of sortedServices(services.map((s) => s.conf))) {
    const s = byConf.get(conf)!;
    let name: string;
    if (conf.fwmark) name = conf.family === 6 ? `FWM  ${conf.fwmark} IPv6` : `FWM  ${conf.fwmark}`;
    else {
      const pro = conf.protocol === IPPROTO_TCP ? 'TCP' : conf.protocol === IPPROTO_UDP ? 'UDP' : 'SCTP';
      name = `${pro}  ${addrPort(conf.family, conf.addr, conf.port)}`;
      // ipvsadm cuts an IPv4 service name at 33 characters.
      if (conf.family === 4) name = name.slice(0, 33);
    }
    out += name.padEnd(33) + largeNum(s.conns) + largeNum(s.inpkts) + largeNum(s.outpkts) + largeNum(s.inbytes) + largeNum(s.outbytes) + '\n';
    for (const d of sortedDests(s.dests)) {
      let dname = addrPort(d.addr.length === 4 ? 4 : 6, d.addr, d.port);
      if (conf.family === 4) dname = dname.slice(0, 28);
      out += `  -> ${dname.padEnd(28)}` + largeNum(d.conns) + largeNum(d.inpkts) + largeNum(d.outpkts) + largeNum(d.inbytes) + largeNum(d.outbytes) + '\n';
    }
  }
  return out;
}
