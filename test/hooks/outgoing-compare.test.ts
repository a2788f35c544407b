/**
 * compareIp (hooks/outgoing.ts): a captured packet the node sent against
 * the model's, field by field; the fields the kernel fills from its own
 * state (here an ICMP timestamp reply's receive and transmit times, from
 * the kernel's clock, and the checksum over them) are kernel differences,
 * not differences.
 */
import { describe, expect, it } from 'vitest';
import { compareIp } from '../../hooks/outgoing.js';
import { inetChecksum } from '../../hooks/input/spec.js';

/** A 40-byte timestamp reply whose receive and transmit times are `ms`. */
function timestampReply(ms: number, originate = 7): Uint8Array {
  const b = new Uint8Array(40);
  b.set([0x45, 0, 0, 40, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  const c = inetChecksum(b, 0, 20);
  b[10] = c >> 8;
  b[11] = c & 255;
  b.set([14, 0, 0, 0, 0, 11, 0, 6], 20);
  const put = (at: number, v: number) => b.set([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255], at);
  put(28, originate);
  put(32, ms);
  put(36, ms);
  const k = inetChecksum(b, 20, 40);
  b[22] = k >> 8;
  b[23] = k & 255;
  return b;
}

describe('compareIp', () => {
  it('an ICMP timestamp reply: other times are kernel differences, another originate timestamp is a difference', () => {
    const want = timestampReply(1000);
    expect(compareIp(timestampReply(1000), want, ['ip.id', 'icmp.timestamps'])).toEqual({ diffs: [], kernelDiffs: [] });
    expect(compareIp(timestampReply(2345), want, ['ip.id', 'icmp.timestamps'])).toEqual({ diffs: [], kernelDiffs: ['icmp.timestamps', 'icmp.checksum'] });
    // without the kernel field the times are a payload difference
    expect(compareIp(timestampReply(2345), want, ['ip.id']).diffs).toEqual(['icmp.checksum', 'quoted packet byte 6']);
    expect(compareIp(timestampReply(1000, 8), want, ['ip.id', 'icmp.timestamps']).diffs).toEqual(['icmp.checksum', 'quoted packet byte 3']);
  });
});
