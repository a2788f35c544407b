/**
 * IPVS in the node (Linux 6.18 net/netfilter/ipvs/): the `ipvsadm-save -n`
 * configuration (save.ts), the real servers (dest.ts), the schedulers
 * (sched/), the services at run time (service.ts).
 */
export {
  parseIpvsadmSave, formatIpvsadmSave, serviceKey, serviceName, addrPort, fwdSwitch, sortedServices, sortedDests,
  SCHEDULER_NAMES, DEF_PERSISTENCE_TIMEOUT, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP,
  IP_VS_CONN_F_MASQ, IP_VS_CONN_F_LOCALNODE, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_FWD_MASK,
  IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
  type IpvsConfig, type IpvsServiceConf, type IpvsDestConf,
} from './save.js';
export { IpvsDest, connOverhead, totalConns, IP_VS_DEST_F_AVAILABLE, IP_VS_DEST_F_OVERLOAD } from './dest.js';
export { IpvsService, buildServices } from './service.js';
export { makeScheduler, IMPLEMENTED_SCHEDULERS, type Scheduler, type SchedPacket } from './sched/index.js';
export {
  IpvsConn, IpvsConnTable, IPVS_SYSCTL_DEFAULTS, IP_VS_DIR_INPUT, IP_VS_DIR_OUTPUT, TCP_STATE_NAMES, TCP_TIMEOUTS, UDP_TIMEOUT,
  IP_VS_CONN_F_TEMPLATE, IP_VS_CONN_F_INACTIVE, IP_VS_CONN_F_NOOUTPUT, IP_VS_CONN_F_NFCT, TH_FIN, TH_SYN, TH_RST, TH_ACK,
  IP_VS_TCP_S_NONE, IP_VS_TCP_S_ESTABLISHED, IP_VS_TCP_S_SYN_RECV, IP_VS_TCP_S_FIN_WAIT, IP_VS_TCP_S_TIME_WAIT, IP_VS_TCP_S_CLOSE, IP_VS_TCP_S_CLOSE_WAIT,
  type IpvsSysctl,
} from './conn.js';
export { formatIpvsStats, largeNum } from './stats.js';
