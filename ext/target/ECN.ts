/**
 * ECN target (IPv4 only): iptables `extensions/libipt_ECN.c`, kernel
 * `net/ipv4/netfilter/ipt_ECN.c` (`struct ipt_ECN_info`, `.table` = mangle).
 *
 *  - `--ecn-tcp-remove` clears ECE and CWR (operation SET_ECE|SET_CWR with
 *    both values 0); it excludes `--ecn-tcp-cwr` and `--ecn-tcp-ece`;
 *  - `--ecn-tcp-cwr 0|1`, `--ecn-tcp-ece 0|1` set the TCP flags;
 *  - `--ecn-ip-ect 0..3` sets the ECT codepoint of the IP header.
 *
 * At least one operation is required. Saved as ` --ecn-tcp-remove` for the
 * remove form, else ` --ecn-tcp-ece N --ecn-tcp-cwr N --ecn-ip-ect N` for
 * the operations set. Kernel checkentry: only known operation bits, ECT at
 * most 3, and the TCP operations need `-p tcp` (not inverted).
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { XT_CONTINUE, be16, headerPointer, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { csumReplace2 } from '../dsfield.js';
import { NF_DROP } from '../../core/netfilter.js';

const IPT_ECN_OP_SET_IP = 0x01;
const IPT_ECN_OP_SET_ECE = 0x10;
const IPT_ECN_OP_SET_CWR = 0x20;
const IPT_ECN_OP_MASK = 0xce;

export interface EcnData {
  /** IPT_ECN_OP_* bits. */
  operation: number;
  /** The IP ECT codepoint (0..3) for IPT_ECN_OP_SET_IP. */
  ipEct: number;
  /** TCP ECE value (0/1) for IPT_ECN_OP_SET_ECE. */
  ece: number;
  /** TCP CWR value (0/1) for IPT_ECN_OP_SET_CWR. */
  cwr: number;
}

export const ECN: TargetModule<EcnData> = {
  kind: 'target',
  name: 'ECN',
  family: 'ip',
  tables: ['mangle'],
  options: [
    { name: 'ecn-tcp-remove', arg: 0 },
    { name: 'ecn-tcp-cwr', arg: 1 },
    { name: 'ecn-tcp-ece', arg: 1 },
    { name: 'ecn-ip-ect', arg: 1 },
  ],
  init: () => ({ operation: 0, ipEct: 0, ece: 0, cwr: 0 }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'ecn-tcp-remove':
        d.operation = IPT_ECN_OP_SET_ECE | IPT_ECN_OP_SET_CWR;
        d.ece = 0;
        d.cwr = 0;
        return;
      case 'ecn-tcp-cwr':
        d.cwr = parseUintOpt(arg!, 0, 1, 'ECN', opt);
        d.operation |= IPT_ECN_OP_SET_CWR;
        return;
      case 'ecn-tcp-ece':
        d.ece = parseUintOpt(arg!, 0, 1, 'ECN', opt);
        d.operation |= IPT_ECN_OP_SET_ECE;
        return;
      case 'ecn-ip-ect':
        d.ipEct = parseUintOpt(arg!, 0, 3, 'ECN', opt);
        d.operation |= IPT_ECN_OP_SET_IP;
        return;
    }
  },
  final(_d, seen) {
    if (seen.has('ecn-tcp-remove')) {
      for (const o of ['ecn-tcp-cwr', 'ecn-tcp-ece']) {
        if (seen.has(o)) fail(`ECN: option "--ecn-tcp-remove" cannot be used together with "--${o}".`, 'option');
      }
    }
    if (seen.size === 0) fail('ECN target: An operation is required', 'option');
  },
  save(d) {
    if (d.operation === (IPT_ECN_OP_SET_ECE | IPT_ECN_OP_SET_CWR) && d.ece === 0 && d.cwr === 0) return ' --ecn-tcp-remove';
    let s = '';
    if (d.operation & IPT_ECN_OP_SET_ECE) s += ` --ecn-tcp-ece ${d.ece}`;
    if (d.operation & IPT_ECN_OP_SET_CWR) s += ` --ecn-tcp-cwr ${d.cwr}`;
    if (d.operation & IPT_ECN_OP_SET_IP) s += ` --ecn-ip-ect ${d.ipEct}`;
    return s;
  },
  check(d, ctx) {
    if (d.operation & IPT_ECN_OP_MASK) return 'ECN: unsupported ECN operation';
    if (d.ipEct & ~3) return 'ECN: new ECT codepoint out of mask';
    if (d.operation & (IPT_ECN_OP_SET_ECE | IPT_ECN_OP_SET_CWR) && (ctx.rule.proto !== 6 || ctx.rule.invProto)) {
      return 'ECN: cannot use operation on non-tcp rule';
    }
    return undefined;
  },
  ...compatTargetFaces(ecnTg),
};


// --- reference semantics (ipt_ECN.c ecn_tg, kernel 6.18) --------------------------------

/**
 * ecn_tg(): the IP ECN codepoint (csum_replace2 over the TOS word), then for
 * TCP (by the protocol field alone: a later fragment is rewritten too) the
 * ECE/CWR bits with the TCP checksum updated over the flags word
 * (inet_proto_csum_replace2 of a packet whose checksum is complete). A TCP
 * header cut short drops the packet.
 */
function ecnTg(info: EcnData): TargetFn {
  return (par) => {
    const d = par.d;
    const nh = par.nh;
    if (info.operation & IPT_ECN_OP_SET_IP && (d[nh + 1]! & 3) !== (info.ipEct & 3)) {
      const old = d[nh + 1]!;
      const nw = (old & ~3) | (info.ipEct & 3);
      d[nh + 1] = nw;
      csumReplace2(d, nh + 10, old, nw);
    }
    if (info.operation & (IPT_ECN_OP_SET_ECE | IPT_ECN_OP_SET_CWR) && d[nh + 9] === 6) {
      const th = headerPointer(par, (d[nh]! & 0x0f) * 4, 20);
      if (th < 0) return NF_DROP;
      const fl = d[th + 13]!;
      const ece = (fl >> 6) & 1;
      const cwr = (fl >> 7) & 1;
      if ((info.operation & IPT_ECN_OP_SET_ECE && ece !== info.ece) || (info.operation & IPT_ECN_OP_SET_CWR && cwr !== info.cwr)) {
        const oldval = be16(d, th + 12);
        let f = fl;
        if (info.operation & IPT_ECN_OP_SET_ECE) f = (f & ~0x40) | (info.ece << 6);
        if (info.operation & IPT_ECN_OP_SET_CWR) f = (f & ~0x80) | (info.cwr << 7);
        d[th + 13] = f;
        csumReplace2(d, th + 16, oldval, be16(d, th + 12));
      }
    }
    return XT_CONTINUE;
  };
}
