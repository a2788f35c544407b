/**
 * ip_rcv_core()'s header checks (hooks/path/ipv4.ts ipRcvCore): a header
 * with a right checksum goes on, with or without options; any one bit
 * changed in it (checksum, addresses, version, length fields) is dropped.
 * The checksum is computed here the plain way, a 16-bit word at a time.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ipRcvCore } from '../../hooks/path/ipv4.js';
import { Packet, decodePacket, LINKTYPE_RAW } from '../../vm/packet.js';
import { runs } from '../helpers/runs.js';

function checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 header of `ihl` words with the bytes given (version, ihl, tot_len and checksum set), and `payload` bytes after it. */
function header(bytes: number[], ihl: number, payload: number): Uint8Array {
  const p = new Uint8Array(ihl * 4 + payload);
  p.set(bytes.slice(0, ihl * 4));
  p[0] = 0x40 | ihl;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[10] = 0;
  p[11] = 0;
  const c = checksum(p.subarray(0, ihl * 4));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

function rcv(ip: Uint8Array): ReturnType<typeof ipRcvCore> {
  const pkt = new Packet();
  pkt.setFrame(ip);
  decodePacket(pkt, LINKTYPE_RAW);
  return ipRcvCore(pkt);
}

const headers = fc.record({
  bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 60, maxLength: 60 }),
  ihl: fc.integer({ min: 5, max: 15 }),
  payload: fc.integer({ min: 0, max: 40 }),
});

describe('ip_rcv_core header checks', () => {
  it('a header with its checksum goes on, options or not', () => {
    fc.assert(fc.property(headers, ({ bytes, ihl, payload }) => {
      expect(rcv(header(bytes, ihl, payload))).toBeUndefined();
    }), { numRuns: runs(300) });
  });

  it('one bit changed anywhere in the header: dropped', () => {
    fc.assert(fc.property(headers, fc.nat(), ({ bytes, ihl, payload }, at) => {
      const p = header(bytes, ihl, payload);
      const bit = at % (ihl * 32);
      p[bit >> 3] ^= 1 << (bit & 7);
      expect(rcv(p)?.kind).toBe('dropped');
    }), { numRuns: runs(300) });
  });

  it('the checksum drop names its reason', () => {
    const p = header(Array(60).fill(7), 5, 8);
    p[11] ^= 1;
    expect(rcv(p)).toMatchObject({ kind: 'dropped', reason: 'bad-header', detail: 'bad IPv4 header checksum' });
  });
});
