/**
 * The connection hash a sharded replay's reader takes straight from a
 * frame's bytes (frameConnectionHash) is the one the decoded packet gives
 * (connectionHash after loadFrame), for every link type and for frames cut
 * short or with bytes changed anywhere; and it is the same for both
 * directions of a connection.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
  StreamFrame, loadFrame, sll2Frame, sllFrame,
} from '../../hooks/input/capture.js';
import { connectionHash, frameConnectionHash, shardOf } from '../../hooks/input/rss.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { runs } from '../helpers/runs.js';

const SPECS = [
  'tcp 10.0.0.2:40000 > 10.1.0.7:22 syn iif eth0',
  'tcp 10.0.0.2:40000 > 10.1.0.7:22 syn',
  'udp [2001:db8::1]:53 > [2001:db8::2]:40000 len 33 iif eth0',
  'udp [2001:db8::1]:53 > [2001:db8::2]:40000 vlan 7',
  'icmp 10.0.0.1 > 10.0.0.2 echo-request iif eth0',
  'icmpv6 2001:db8::1 > 2001:db8::2 echo-request',
  'tcp 10.0.0.2:1 > 10.0.0.3:2 mf iif eth0',
  'sctp 10.0.0.2:5000 > 10.0.0.3:6000 vlan 3',
];

/** The frame in the link type `lt` (the Ethernet ones stay Ethernet), with its SLL protocol when cooked. */
function framed(spec: string, lt: number): { bytes: Uint8Array; lt: number } {
  const enc = encodeSpec(parseSpec(spec));
  const eth = enc.data[0]! >> 4 !== 4 && enc.data[0]! >> 4 !== 6;
  if (eth) return { bytes: enc.data, lt: LINKTYPE_ETHERNET };
  if (lt === LINKTYPE_LINUX_SLL) return { bytes: sllFrame(enc.data), lt };
  if (lt === LINKTYPE_LINUX_SLL2) return { bytes: sll2Frame(enc.data), lt };
  return { bytes: enc.data, lt };
}

function both(bytes: Uint8Array, lt: number): [number, number] {
  const f = new StreamFrame();
  f.reset(bytes, 0, bytes.length, lt, 0);
  if (lt === LINKTYPE_LINUX_SLL && bytes.length >= 16) f.protocol = (bytes[14]! << 8) | bytes[15]!;
  if (lt === LINKTYPE_LINUX_SLL2 && bytes.length >= 20) f.protocol = (bytes[0]! << 8) | bytes[1]!;
  const pkt = new Packet();
  resetMeta(pkt);
  const decoded = loadFrame(pkt, f) ? connectionHash(pkt) : 0;
  return [frameConnectionHash(bytes, 0, bytes.length, lt, f.protocol), decoded];
}

describe('frameConnectionHash', () => {
  it('is connectionHash of the decoded frame, for whole, cut and changed frames of every link type', () => {
    const lts = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2];
    fc.assert(fc.property(
      fc.constantFrom(...SPECS), fc.constantFrom(...lts), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      (spec, lt0, cut, flips) => {
        const { bytes, lt } = framed(spec, lt0);
        // The raw IP link types only for their own family: a v4 packet on LINKTYPE_IPV6 is not a capture anyone writes.
        const b = bytes.slice(0, bytes.length - (cut % 4 === 0 ? cut % bytes.length : 0));
        for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
        const [raw, decoded] = both(b, lt);
        expect(raw).toBe(decoded);
      },
    ), { numRuns: runs(2000) });
  });

  it('is the same for both directions of a connection, another for another connection', () => {
    const [a] = both(framed('tcp 10.0.0.2:40000 > 10.1.0.7:22 syn iif eth0', 0).bytes, LINKTYPE_ETHERNET);
    const [b] = both(framed('tcp 10.1.0.7:22 > 10.0.0.2:40000 syn ack iif eth1', 0).bytes, LINKTYPE_ETHERNET);
    const [c] = both(framed('tcp 10.0.0.2:40001 > 10.1.0.7:22 syn iif eth0', 0).bytes, LINKTYPE_ETHERNET);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});

describe('shardOf', () => {
  it('is the hash modulo the worker count, for every 32-bit hash and every count --workers takes', () => {
    for (const h of [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff]) for (const n of [1, 2, 3, 7, 9999]) expect(shardOf(h, n)).toBe(h % n);
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 9999 }), (h, n) => shardOf(h, n) === h % n), { numRuns: runs(2000) });
  });
});
