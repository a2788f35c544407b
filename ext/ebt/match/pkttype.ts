/**
 * pkttype match: iptables `extensions/libebt_pkttype.c`, kernel
 * `net/bridge/netfilter/ebt_pkttype.c`: skb->pkt_type.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { wholeNumber } from '../values.js';
import { M_PKTTYPE } from '../../../vm/layout.js';

/** classes[] of libebt_pkttype.c, indexed by PACKET_* value. */
const CLASSES = ['host', 'broadcast', 'multicast', 'otherhost', 'outgoing', 'loopback', 'fastroute'];

interface PkttypeData {
  type: number;
  invert: boolean;
}

export const pkttype: EbtModule<PkttypeData> = {
  kind: 'match',
  name: 'pkttype',
  options: [{ name: 'pkttype-type', arg: 1, invert: true }],
  init: () => ({ type: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    let v = wholeNumber(arg!, 16);
    if (v === undefined) {
      v = CLASSES.findIndex((c) => c.toLowerCase() === arg!.toLowerCase());
      if (v < 0) fail('Problem with specified pkttype class');
    }
    if (v > 0xff) fail('Problem with specified pkttype class');
    d.type = v;
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('pkttype-type')) fail('pkttype: option "--pkttype-type" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --pkttype-type ${CLASSES[d.type] ?? String(d.type)}`,
  lower: { rev: 0 },
  // ebt_pkttype_mt()
  reference: { mt: (d) => (p) => (p.meta[M_PKTTYPE] === d.type) !== d.invert },
};
