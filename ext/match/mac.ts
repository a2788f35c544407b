/**
 * mac match: iptables `extensions/libxt_mac.c` (XTTYPE_ETHERMAC,
 * `xtopt_parse_ethermac`), kernel `net/netfilter/xt_mac.c`: the Ethernet
 * source address. The kernel allows it only from PREROUTING, INPUT and
 * FORWARD (`.hooks`), where the packet came in on an interface.
 */
import { fail } from '../../core/errors.js';
import { Hook, type MatchNode } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';
import { formatMac } from '../../core/addr.js';
import {
  NFT_CMP_EQ, NFT_CMP_NEQ, NFT_PAYLOAD_LL_HEADER, F_MAC_HEADER, M_FLAGS, M_IIF, M_IIFTYPE, M_MACOFF,
} from '../../vm/layout.js';
import { emitCmp, emitPayload } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';

interface MacData {
  /** 6 bytes. */
  srcaddr: Uint8Array;
  invert: boolean;
}

/**
 * `xtopt_parse_ethermac()`: six `strtoul(.., 16)` fields separated by `:`,
 * each at most two characters long (an empty field is 0).
 */
function parseEthermac(s: string): Uint8Array {
  const out = new Uint8Array(6);
  let p = 0;
  for (let i = 0; i < 6; i++) {
    const r = strtoumax(s, 16, p);
    const end = r.end;
    const value = r.overflow ? 0xffn : r.value;
    if (end - p > 2) fail('Invalid MAC address specified.');
    if (i < 5 ? s[end] !== ':' : end !== s.length) fail('Invalid MAC address specified.');
    out[i] = Number(value & 0xffn);
    p = end + 1;
  }
  return out;
}

export const mac: MatchModule<MacData> = {
  kind: 'match',
  name: 'mac',
  pure: true,
  options: [{ name: 'mac-source', arg: 1, invert: true }],
  hooks: (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD),
  init: () => ({ srcaddr: new Uint8Array(6), invert: false }),
  parse(d, _opt, arg, invert) {
    d.srcaddr = parseEthermac(arg!);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('mac-source')) fail('mac: option "--mac-source" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --mac-source ${formatMac(d.srcaddr)}`,
  lower: lowerMac,
  reference: macMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** mac (xt_mac): 6 bytes at link+6, BREAKs without a MAC header. */
function lowerMac(c: LowerCtx, m: MatchNode): void {
  const d = m.data as MacData;
  c.withReg(6, (r) => {
    emitPayload(c.b, r, NFT_PAYLOAD_LL_HEADER, 6, 6);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, d.srcaddr);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * mac match: net/netfilter/xt_mac.c mac_mt() (kernel 6.18).
 * skb->dev is the input device at the hooks mac may be used in
 * (PREROUTING, INPUT, FORWARD); it must be an Ethernet device with a MAC
 * header in front of the network header. Otherwise: no match, even inverted.
 */
const ARPHRD_ETHER = 1;
const ETH_HLEN = 14;
const ETH_ALEN = 6;

function macMt(info: MacData): MatchFn {
  return (par) => {
    const m = par.meta;
    if (m[M_IIF] === 0 || m[M_IIFTYPE] !== ARPHRD_ETHER) return false;
    if (!(m[M_FLAGS]! & F_MAC_HEADER)) return false;
    const mh = m[M_MACOFF]!;
    if (mh + ETH_HLEN > par.nh) return false;
    let equal = true;
    for (let i = 0; i < ETH_ALEN; i++) if (par.d[mh + ETH_ALEN + i] !== info.srcaddr[i]) equal = false;
    return equal !== info.invert;
  };
}
