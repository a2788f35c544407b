/** Every target module (ACCEPT/DROP/QUEUE/RETURN and chain jumps are handled by the rule parser). */
import type { TargetModule } from '../types.js';
import { MARK } from './MARK.js';
// imports: group A (packet header targets)
import { TOS } from './TOS.js';
import { DSCP } from './DSCP.js';
import { TTL, HL } from './TTL.js';
import { TCPMSS } from './TCPMSS.js';
import { CHECKSUM } from './CHECKSUM.js';
import { CLASSIFY } from './CLASSIFY.js';
// imports: group B (conntrack targets)
import { CONNMARK } from './CONNMARK.js';
import { CT, NOTRACK } from './CT.js';
import { AUDIT } from './AUDIT.js';
// imports: group C (sets)
import { SET } from './SET.js';
// imports: group D (verdict-like, logging, NAT)
import { REJECT4, REJECT6 } from './REJECT.js';
import { LOG } from './LOG.js';
import { NFLOG } from './NFLOG.js';
import { TRACE } from './TRACE.js';
import { NFQUEUE } from './NFQUEUE.js';
import { NAT_TARGETS } from './NAT.js';
import { NETMAP4, NETMAP6 } from './NETMAP.js';
import { TPROXY4, TPROXY6 } from './TPROXY.js';
// imports: group F (targets and misc)
import { ECN } from './ECN.js';
import { TEE } from './TEE.js';
import { SECMARK, CONNSECMARK } from './SECMARK.js';
import { HMARK } from './HMARK.js';
import { IDLETIMER } from './IDLETIMER.js';
import { LED } from './LED.js';
import { RATEEST } from './RATEEST.js';
import { SYNPROXY } from './SYNPROXY.js';
import { TCPOPTSTRIP } from './TCPOPTSTRIP.js';
import { SNPT, DNPT } from './NPT.js';

export const TARGETS: readonly TargetModule[] = [
  MARK,
  // list: group A
  TOS,
  DSCP,
  TTL,
  HL,
  TCPMSS,
  CHECKSUM,
  CLASSIFY,
  // list: group B
  CONNMARK,
  CT,
  NOTRACK,
  AUDIT,
  // list: group C
  SET,
  // list: group D
  REJECT4,
  REJECT6,
  LOG,
  NFLOG,
  TRACE,
  NFQUEUE,
  ...NAT_TARGETS,
  NETMAP4,
  NETMAP6,
  TPROXY4,
  TPROXY6,
  // list: group F
  ECN,
  TEE,
  SECMARK,
  CONNSECMARK,
  HMARK,
  IDLETIMER,
  LED,
  RATEEST,
  SYNPROXY,
  TCPOPTSTRIP,
  SNPT,
  DNPT,
];
