/**
 * pkttype match: iptables `extensions/libxt_pkttype.c`, kernel
 * `net/netfilter/xt_pkttype.c` (no checkentry): the link-layer packet type
 * (skb->pkt_type, PACKET_HOST etc. of linux/if_packet.h).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import {
  NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_PKTTYPE, M_PKTTYPE, PACKET_BROADCAST, PACKET_LOOPBACK, PACKET_MULTICAST,
} from '../../vm/layout.js';
import { emitCmp, emitMetaGet } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';

interface PkttypeData {
  /** PACKET_HOST 0, PACKET_BROADCAST 1, PACKET_MULTICAST 2, PACKET_OTHERHOST 3. */
  pkttype: number;
  invert: boolean;
}

/** supported_types[] in table order: the first name of a value is the one saved. */
const PKTTYPES: ReadonlyArray<readonly [string, number]> = [
  ['unicast', 0],
  ['broadcast', 1],
  ['multicast', 2],
  ['otherhost', 3],
  ['bcast', 1],
  ['mcast', 2],
  ['host', 0],
];

export const pkttype: MatchModule<PkttypeData> = {
  kind: 'match',
  name: 'pkttype',
  pure: true,
  options: [{ name: 'pkt-type', arg: 1, invert: true }],
  init: () => ({ pkttype: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    const t = PKTTYPES.find(([n]) => n.toLowerCase() === arg!.toLowerCase());
    if (!t) fail(`Bad packet type '${arg}'`);
    d.pkttype = t[1];
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('pkt-type')) fail('pkttype: option "--pkt-type" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --pkt-type ${PKTTYPES.find(([, v]) => v === d.pkttype)?.[0] ?? d.pkttype}`,
  lower: lowerPkttype,
  reference: pkttypeMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** pkttype (xt_pkttype): `meta load pkttype` (loopback remapped as the match does), cmp. */
function lowerPkttype(c: LowerCtx, m: MatchNode): void {
  const d = m.data as PkttypeData;
  c.withReg(1, (r) => {
    emitMetaGet(c.b, r, NFT_META_PKTTYPE);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [d.pkttype]);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * pkttype match: net/netfilter/xt_pkttype.c pkttype_mt() (kernel 6.18).
 */
function pkttypeMt(info: PkttypeData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    const pt = par.meta[M_PKTTYPE]!;
    let type: number;
    if (pt !== PACKET_LOOPBACK) type = pt;
    else if (family === 'ip' && (par.d[par.nh + 16]! & 0xf0) === 0xe0) type = PACKET_MULTICAST;
    else if (family === 'ip6') type = PACKET_MULTICAST;
    else type = PACKET_BROADCAST;
    return (type === info.pkttype) !== info.invert;
  };
}
