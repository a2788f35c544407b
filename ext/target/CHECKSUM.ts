/**
 * CHECKSUM target: iptables `extensions/libxt_CHECKSUM.c`, kernel
 * `net/netfilter/xt_CHECKSUM.c` (`.table` = mangle; checkentry refuses an
 * empty operation and only warns outside `-p udp`): fill in the checksum of
 * packets whose checksum offload is pending.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';

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
  lower: 'fills in checksums left to the device (CHECKSUM_PARTIAL, skb_checksum_help): nfvm does not model skb->ip_summed',
  reference: 'fills in checksums left to the device (CHECKSUM_PARTIAL, skb_checksum_help): nfvm does not model skb->ip_summed',
};

