/**
 * vlan match: iptables `extensions/libebt_vlan.c`, kernel
 * `net/bridge/netfilter/ebt_vlan.c`: the 802.1Q tag's VLAN id, priority
 * and encapsulated ethertype; the rule needs `-p 802_1Q`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { ethertypeByName, wholeNumber } from '../values.js';
import { M_PROTOCOL, M_VLAN_PROTO, M_VLAN_TCI } from '../../../vm/layout.js';
import { ebtHeader } from '../ref.js';

const ETH_P_8021Q = 0x8100;
/** ETH_ZLEN: the smallest encapsulated type libebt_vlan takes. */
const ETH_ZLEN = 60;

interface VlanData {
  id?: { v: number; inv: boolean };
  prio?: { v: number; inv: boolean };
  encap?: { v: number; inv: boolean };
}

export const vlan: EbtModule<VlanData> = {
  kind: 'match',
  name: 'vlan',
  options: [
    { name: 'vlan-id', arg: 1, invert: true },
    { name: 'vlan-prio', arg: 1, invert: true },
    { name: 'vlan-encap', arg: 1, invert: true },
  ],
  init: () => ({}),
  parse(d, opt, arg, inv) {
    const a = arg!;
    if (opt === 'vlan-id') {
      const v = wholeNumber(a, 10);
      if (v === undefined || v > 4094) fail(`Invalid --vlan-id range ('${a}')`);
      d.id = { v, inv };
    } else if (opt === 'vlan-prio') {
      const v = wholeNumber(a, 10);
      if (v === undefined || v > 7) fail(`Invalid --vlan-prio range ('${a}')`);
      d.prio = { v, inv };
    } else {
      const v = wholeNumber(a, 16) ?? ethertypeByName(a);
      if (v === undefined) fail(`Unknown --vlan-encap value ('${a}')`);
      if (v < ETH_ZLEN || v > 0xffff) fail(`Invalid --vlan-encap range ('${a}')`);
      d.encap = { v, inv };
    }
  },
  final(_d, _seen, ctx) {
    const r = ctx.rule;
    if (r.anyProto || r.is8023 || r.ethproto !== ETH_P_8021Q || r.invProto) {
      fail('For vlan filtering the protocol must be specified as 802_1Q', 'check');
    }
  },
  save(d) {
    let s = '';
    if (d.id) s += `${d.id.inv ? ' !' : ''} --vlan-id ${d.id.v}`;
    if (d.prio) s += `${d.prio.inv ? ' !' : ''} --vlan-prio ${d.prio.v}`;
    if (d.encap) s += `${d.encap.inv ? ' !' : ''} --vlan-encap ${d.encap.v.toString(16).toUpperCase().padStart(4, '0')}`;
    return s;
  },
  lower: { rev: 0 },
  // ebt_vlan_mt(): the accelerated tag and skb->protocol, else an 802.1Q header at skb->data
  reference: {
    mt: (d) => (p) => {
      let tci: number;
      let encap: number;
      if (p.meta[M_VLAN_PROTO] !== 0) {
        tci = p.meta[M_VLAN_TCI]!;
        encap = p.meta[M_PROTOCOL]!;
      } else {
        const at = ebtHeader(p, 0, 4);
        if (at < 0) return false;
        tci = (p.d[at]! << 8) | p.d[at + 1]!;
        encap = (p.d[at + 2]! << 8) | p.d[at + 3]!;
      }
      if (d.id && (d.id.v !== (tci & 0xfff)) !== d.id.inv) return false;
      if (d.prio && (d.prio.v !== ((tci >> 13) & 7)) !== d.prio.inv) return false;
      if (d.encap && (d.encap.v !== encap) !== d.encap.inv) return false;
      return true;
    },
  },
};
