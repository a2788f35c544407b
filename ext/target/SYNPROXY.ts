/**
 * SYNPROXY target: iptables `extensions/libxt_SYNPROXY.c`, kernel
 * `net/netfilter/xt_SYNPROXY.c` (`struct xt_synproxy_info`): answer TCP SYNs
 * with SYN cookies and hand validated connections on.
 *
 * Options: `--sack-perm`, `--timestamp`, `--wscale N`, `--mss N` (both read
 * as u32 and cut to the u8/u16 field: `--wscale 256` is 0), `--ecn`. Saved
 * in the order sack-perm, timestamp, wscale, mss, ecn.
 * Kernel: INPUT and FORWARD only (any table), `-p tcp` not inverted.
 */
import { Hook } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';

const XT_SYNPROXY_OPT_MSS = 0x01;
const XT_SYNPROXY_OPT_WSCALE = 0x02;
const XT_SYNPROXY_OPT_SACK_PERM = 0x04;
const XT_SYNPROXY_OPT_TIMESTAMP = 0x08;
const XT_SYNPROXY_OPT_ECN = 0x10;

interface SynproxyData {
  /** XT_SYNPROXY_OPT_* bits. */
  options: number;
  /** Window scale (u8), with XT_SYNPROXY_OPT_WSCALE. */
  wscale: number;
  /** MSS (u16), with XT_SYNPROXY_OPT_MSS. */
  mss: number;
}

export const SYNPROXY: TargetModule<SynproxyData> = {
  kind: 'target',
  name: 'SYNPROXY',
  hooks: (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD),
  proto: 6,
  options: [
    { name: 'sack-perm', arg: 0 },
    { name: 'timestamp', arg: 0 },
    { name: 'wscale', arg: 1 },
    { name: 'mss', arg: 1 },
    { name: 'ecn', arg: 0 },
  ],
  init: () => ({ options: 0, wscale: 0, mss: 0 }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'sack-perm':
        d.options |= XT_SYNPROXY_OPT_SACK_PERM;
        return;
      case 'timestamp':
        d.options |= XT_SYNPROXY_OPT_TIMESTAMP;
        return;
      case 'wscale':
        d.wscale = parseUintOpt(arg!, 0, 0xffffffff, 'SYNPROXY', opt) & 0xff;
        d.options |= XT_SYNPROXY_OPT_WSCALE;
        return;
      case 'mss':
        d.mss = parseUintOpt(arg!, 0, 0xffffffff, 'SYNPROXY', opt) & 0xffff;
        d.options |= XT_SYNPROXY_OPT_MSS;
        return;
      case 'ecn':
        d.options |= XT_SYNPROXY_OPT_ECN;
        return;
    }
  },
  save(d) {
    let s = '';
    if (d.options & XT_SYNPROXY_OPT_SACK_PERM) s += ' --sack-perm';
    if (d.options & XT_SYNPROXY_OPT_TIMESTAMP) s += ' --timestamp';
    if (d.options & XT_SYNPROXY_OPT_WSCALE) s += ` --wscale ${d.wscale}`;
    if (d.options & XT_SYNPROXY_OPT_MSS) s += ` --mss ${d.mss}`;
    if (d.options & XT_SYNPROXY_OPT_ECN) s += ' --ecn';
    return s;
  },
  lower: 'answers SYNs with SYN cookies (synproxy_send_client_synack): the cookie secret (syncookie_secret) is random per boot and in no snapshot',
  reference: 'answers SYNs with SYN cookies (synproxy_send_client_synack): the cookie secret (syncookie_secret) is random per boot and in no snapshot',
};

