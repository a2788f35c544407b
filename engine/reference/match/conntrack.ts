/**
 * conntrack match (and `state`, its alias): net/netfilter/xt_conntrack.c
 * conntrack_mt() (kernel 6.18), on the packet's conntrack metadata:
 *  - M_CT_DIR >= 0: a conntrack entry is attached; M_CT_STATE holds its
 *    ctinfo as the NF_CT_STATE_* bit (ESTABLISHED 2, RELATED 4, NEW 8, the
 *    same bits as XT_CONNTRACK_STATE_*), M_CT_STATUS ct->status;
 *  - M_CT_DIR < 0: no entry: UNTRACKED when M_CT_STATE has the untracked
 *    bit (64), INVALID otherwise.
 * Supported: --ctstate (with the SNAT/DNAT virtual states from IPS_SRC_NAT /
 * IPS_DST_NAT), --ctstatus, --ctdir. The tuple criteria (--ctproto,
 * --ctorig*, --ctrepl*, ports) and --ctexpire need the conntrack table and
 * are refused.
 */
import { CT_STATE, type ConntrackData } from '../../../ext/match/conntrack.js';
import { M_CT_DIR, M_CT_STATE, M_CT_STATUS } from '../../../vm/layout.js';
import { NotModelled, type MatchFn } from '../../../ext/xt.js';

/** NF_CT_STATE_UNTRACKED_BIT in the M_CT_STATE encoding (nft `ct state` bits). */
const NF_CT_STATE_UNTRACKED = 64;
/** ESTABLISHED | RELATED | NEW: the ctinfo-derived bits. */
const CTINFO_BITS = CT_STATE.ESTABLISHED | CT_STATE.RELATED | CT_STATE.NEW;
const IPS_SRC_NAT = 1 << 4;
const IPS_DST_NAT = 1 << 5;
const IP_CT_DIR_ORIGINAL = 0;

export function conntrack(info: ConntrackData): MatchFn {
  const unsupported = (['proto', 'origsrc', 'origdst', 'replsrc', 'repldst', 'origsrcport', 'origdstport', 'replsrcport', 'repldstport', 'expire'] as const).find((k) => info[k] !== undefined);
  if (unsupported) throw new NotModelled(`match conntrack --ct${unsupported}`);
  return (par) => {
    const m = par.meta;
    const hasCt = m[M_CT_DIR]! >= 0;
    let statebit: number;
    if (hasCt) statebit = m[M_CT_STATE]! & CTINFO_BITS;
    else if (m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED) statebit = CT_STATE.UNTRACKED;
    else statebit = CT_STATE.INVALID;
    if (info.state) {
      if (hasCt) {
        if (m[M_CT_STATUS]! & IPS_SRC_NAT) statebit |= CT_STATE.SNAT;
        if (m[M_CT_STATUS]! & IPS_DST_NAT) statebit |= CT_STATE.DNAT;
      }
      if (((info.state.mask & statebit) !== 0) === info.state.invert) return false;
    }
    if (!hasCt) return info.state !== undefined;
    if (info.dir && (m[M_CT_DIR] === IP_CT_DIR_ORIGINAL) !== (info.dir === 'ORIGINAL')) return false;
    if (info.status && ((info.status.mask & m[M_CT_STATUS]!) !== 0) === info.status.invert) return false;
    return true;
  };
}
