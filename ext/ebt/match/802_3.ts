/**
 * 802_3 match: iptables `extensions/libebt_802_3.c`, kernel
 * `net/bridge/netfilter/ebt_802_3.c`: the DSAP/SSAP and the SNAP type of
 * an 802.3 (length-field) frame; the rule needs `-p LENGTH`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { wholeNumber } from '../values.js';
/** ebt_802_3.h: the SNAP SAP, and the UI control bits. */
const CHECK_TYPE = 0xaa;
const IS_UI = 0x03;

interface Ebt8023Data {
  sap: number | undefined;
  invSap: boolean;
  type: number | undefined;
  invType: boolean;
}

export const m802_3: EbtModule<Ebt8023Data> = {
  kind: 'match',
  name: '802_3',
  options: [
    { name: '802_3-sap', arg: 1, invert: true },
    { name: '802_3-type', arg: 1, invert: true },
  ],
  init: () => ({ sap: undefined, invSap: false, type: undefined, invType: false }),
  parse(d, opt, arg, invert) {
    const v = wholeNumber(arg!, 16);
    if (opt === '802_3-sap') {
      if (v === undefined || v > 0xff) fail('Problem with specified sap hex value');
      d.sap = v;
      d.invSap = invert;
    } else {
      if (v === undefined || v > 0xffff) fail('Problem with the specified type hex value');
      d.type = v;
      d.invType = invert;
    }
  },
  final(_d, _seen, ctx) {
    if (!ctx.rule.is8023) fail('For 802.3 DSAP/SSAP filtering the protocol must be LENGTH', 'check');
  },
  save(d) {
    let s = '';
    if (d.sap !== undefined) s += `${d.invSap ? ' !' : ''} --802_3-sap 0x${d.sap.toString(16).padStart(2, '0')}`;
    if (d.type !== undefined) s += `${d.invType ? ' !' : ''} --802_3-type 0x${d.type.toString(16).padStart(4, '0')}`;
    return s;
  },
  lower: { rev: 0 },
  /**
   * ebt_802_3_mt(): the LLC header after the length field (skb_mac_header()
   * + ETH_HLEN, i.e. skb->data), read as the kernel does, without a bounds
   * check (bytes past the frame read as zero here).
   */
  reference: {
    mt: (d) => (p) => {
      const b = (i: number) => (p.nh + i < p.end ? p.d[p.nh + i]! : 0);
      const dsap = b(0);
      const ssap = b(1);
      const type = b(2) & IS_UI ? (b(6) << 8) | b(7) : (b(7) << 8) | b(8);
      if (d.sap !== undefined) {
        if ((d.sap !== ssap) !== d.invSap) return false;
        if ((d.sap !== dsap) !== d.invSap) return false;
      }
      if (d.type !== undefined) {
        if (!(dsap === CHECK_TYPE && ssap === CHECK_TYPE)) return false;
        if ((d.type !== type) !== d.invType) return false;
      }
      return true;
    },
  },
};
