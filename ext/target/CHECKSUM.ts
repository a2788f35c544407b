/**
 * CHECKSUM target: iptables `extensions/libxt_CHECKSUM.c`, kernel
 * `net/netfilter/xt_CHECKSUM.c` (`.table` = mangle; checkentry refuses an
 * empty operation and only warns outside `-p udp`): fill in the checksum of
 * packets whose checksum offload is pending.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { compatTargetFaces } from '../compat.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

interface ChecksumData {
  /** XT_CHECKSUM_OP_FILL */
  fill: boolean;
}

export const CHECKSUM: TargetModule<ChecksumData> = {
  kind: 'target',
  name: 'CHECKSUM',
  tables: ['mangle'],
  options: [{ name: 'checksum-fill', arg: 0 }],
  init: () => ({ fill: false }),
  parse(d) {
    d.fill = true;
  },
  final(_d, seen) {
    if (!seen.has('checksum-fill')) fail('CHECKSUM: option "--checksum-fill" must be specified', 'option');
  },
  save: (d) => (d.fill ? ' --checksum-fill' : ''),
  check: (d) => (d.fill ? undefined : 'xt_CHECKSUM: no operation'),
  ...compatTargetFaces(checksumTg),
};

/**
 * checksum_tg() (net/netfilter/xt_CHECKSUM.c, kernel 6.18): a packet whose
 * checksum is left to the device (CHECKSUM_PARTIAL, not GSO) gets it
 * filled in (skb_checksum_help); XT_CONTINUE. Every packet of the model
 * carries its whole checksum already (frames read from captures, the
 * node's own answers computed in full), so nothing is left to fill: the
 * bytes are those the kernel's device would send.
 */
function checksumTg(): TargetFn {
  return () => XT_CONTINUE;
}

