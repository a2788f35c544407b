/**
 * The reassembly queues (hooks/path/ip-frag.ts) on their own: a datagram
 * whole from fragments in any order, the header of the first fragment and
 * the payloads in place, duplicates kept out, overlaps and a fragment
 * spanning two runs dropping the queue, the timer on the packets' clock,
 * and a checkpoint that puts the queues back (trace --all-branches). What
 * the node does with them is compared with the kernel by
 * test/kernel/defrag-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { IpFrags, FRAG_DONE, FRAG_DROPPED, FRAG_HELD, IP_DEFRAG_LOCAL_DELIVER } from '../../hooks/path/ip-frag.js';
import { Sysctls } from '../../hooks/snapshot/sysctl.js';
import { decodePacket, Packet } from '../../vm/packet.js';
import { LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { M_LEN } from '../../vm/layout.js';

const PAYLOAD = Array.from({ length: 48 }, (_, i) => i + 1);

/** An Ethernet frame with fragment [from, to) of PAYLOAD (IP ID 5, protocol 17). */
function frag(from: number, to: number, mf: boolean, ttl = 64): Packet {
  const body = PAYLOAD.slice(from, to);
  const len = 20 + body.length;
  const fo = (from >> 3) | (mf ? 0x2000 : 0);
  const h = [0x45, 0, len >> 8, len & 255, 0, 5, fo >> 8, fo & 255, ttl, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
  const p = new Packet().setFrame([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, ...h, ...body]);
  decodePacket(p, LINKTYPE_ETHERNET);
  return p;
}

describe('IPv4 reassembly queues', () => {
  it('makes the datagram whole from fragments out of order, with the first fragment\'s header', () => {
    const q = new IpFrags(new Sysctls());
    expect(q.defrag(frag(32, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
    expect(q.defrag(frag(0, 16, true, 33), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
    const last = frag(16, 32, true);
    expect(q.defrag(last, IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DONE);
    expect(last.meta[M_LEN]).toBe(68);
    expect([...last.data.subarray(14 + 20, 14 + 68)]).toEqual(PAYLOAD);
    expect(last.data[14 + 8]).toBe(33); // the first fragment's TTL
    expect((last.data[14 + 6]! << 8) | last.data[14 + 7]!).toBe(0);
  });

  it('keeps a duplicate out and drops the queue for an overlap or a fragment across two runs', () => {
    const q = new IpFrags(new Sysctls());
    q.defrag(frag(0, 16, true), IP_DEFRAG_LOCAL_DELIVER);
    q.defrag(frag(16, 32, true), IP_DEFRAG_LOCAL_DELIVER);
    expect(q.defrag(frag(8, 24, true), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DROPPED);
    expect(q.why).toBe('a duplicate fragment');
    expect(q.defrag(frag(32, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DONE);
    const r = new IpFrags(new Sysctls());
    r.defrag(frag(0, 16, true), IP_DEFRAG_LOCAL_DELIVER);
    r.defrag(frag(32, 40, true), IP_DEFRAG_LOCAL_DELIVER);
    expect(r.defrag(frag(8, 40, true), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DROPPED);
    expect(r.why).toMatch(/overlapping fragments: the queue is dropped/);
    // the queue is gone: the rest starts a new one that never completes
    expect(r.defrag(frag(16, 32, true), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
    expect(r.defrag(frag(40, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
  });

  it('lets a queue expire after ipfrag_time on the packets\' clock', () => {
    const q = new IpFrags(new Sysctls());
    q.setNow(1e9);
    q.defrag(frag(0, 16, true), IP_DEFRAG_LOCAL_DELIVER);
    q.setNow(1e9 + 31e9);
    expect(q.defrag(frag(16, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
  });

  it('puts the queues back as they were at a checkpoint', () => {
    const q = new IpFrags(new Sysctls());
    q.defrag(frag(0, 16, true), IP_DEFRAG_LOCAL_DELIVER);
    const back = q.checkpoint();
    expect(q.defrag(frag(16, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DONE);
    back();
    expect(q.defrag(frag(16, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_DONE);
    expect(q.defrag(frag(16, 48, false), IP_DEFRAG_LOCAL_DELIVER)).toBe(FRAG_HELD);
  });
});
