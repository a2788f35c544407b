/**
 * The TFTP conntrack helper: a read or write request (`-j CT --helper tftp`
 * on the request to port 69) expects the server's answer from any port to
 * the client's, so the transfer, which the server makes from a port of its
 * own, starts RELATED.
 *
 * Mirrors net/netfilter/nf_conntrack_tftp.c (Linux 6.18): tftp_help() on
 * every UDP packet of the connection, whatever its state: the opcode after
 * the UDP header; RRQ (1) and WRQ (2) make an expectation from the reply
 * tuple's source to its destination and destination port, any source port,
 * for 5 minutes, one per connection (tftp_exp_policy); DATA, ACK, ERROR and
 * the rest, nothing. On a NATed connection nf_nat_tftp registers the
 * expectation to be NATed as its master (hooks/nat/ftp.ts
 * nfNatFollowMaster): the client's port before NAT, in the reply's
 * direction.
 */
import { T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS, IPPROTO_UDP } from './tuple.js';
import type { ExpectPolicy } from './expect.js';

/** tftp_exp_policy */
export const TFTP_EXP_POLICY: ExpectPolicy = { maxExpected: 1, timeout: 5 * 60 };

const TFTP_OPCODE_READ = 1;
const TFTP_OPCODE_WRITE = 2;

/**
 * tftp_help()'s expectation for the UDP packet at `uh` (data ending at
 * `end`) of conntrack `e`: the expected tuple (source port 0), or undefined
 * when the packet is no request.
 */
export function tftpExpectation(d: Uint8Array, uh: number, end: number, tuples: Int32Array, e: number, l3num: number): Int32Array | undefined {
  if (uh + 8 + 2 > end) return undefined;
  const opcode = (d[uh + 8]! << 8) | d[uh + 9]!;
  if (opcode !== TFTP_OPCODE_READ && opcode !== TFTP_OPCODE_WRITE) return undefined;
  const reply = (2 * e + 1) * TUPLE_WORDS;
  const t = new Int32Array(TUPLE_WORDS);
  for (let w = 0; w < 4; w++) {
    t[T_SRC + w] = tuples[reply + T_SRC + w]!;
    t[T_DST + w] = tuples[reply + T_DST + w]!;
  }
  t[T_PORTS] = tuples[reply + T_PORTS]! & 0xffff;
  t[T_PROTO] = (l3num << 8) | IPPROTO_UDP;
  return t;
}
