/**
 * TCP sequence number adjustment of a connection whose payload a NAT helper
 * resized (nf_nat_ftp rewriting a PORT command): each direction remembers
 * where the last resize happened and the offsets before and after it, and
 * every later packet has its sequence number, acknowledgement and SACK
 * blocks moved by them as it leaves (nf_confirm), while TCP tracking reads
 * acknowledgements back in the sender's space (tcp_in_window's
 * receiver_offset).
 *
 * Mirrors net/netfilter/nf_conntrack_seqadj.c (Linux 6.18): nf_ct_seqadj_set,
 * nf_ct_seq_adjust, nf_ct_sack_adjust, nf_ct_sack_block_adjust,
 * nf_ct_seq_offset. The state is SEQADJ_WORDS words per conntrack in
 * NfConntrack.seqadj: per direction correction_pos, offset_before,
 * offset_after.
 */
import { IPS_SEQ_ADJUST, IP_CT_IS_REPLY } from '../../core/netfilter.js';
import { csumReplace4 } from './checksum.js';

export const SEQADJ_WORDS = 6;
const POS = 0, BEFORE = 1, AFTER = 2;

/** The conntrack state the adjustment reads and writes. */
export interface SeqadjTable {
  readonly seqadj: Int32Array;
  readonly status: Int32Array;
}

const before = (a: number, b: number) => ((a - b) | 0) < 0;
const after = (a: number, b: number) => ((b - a) | 0) < 0;
const word = (d: Uint8Array, at: number) => ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) | 0;
function put(d: Uint8Array, at: number, v: number): void {
  d[at] = v >>> 24;
  d[at + 1] = (v >>> 16) & 0xff;
  d[at + 2] = (v >>> 8) & 0xff;
  d[at + 3] = v & 0xff;
}

/** nf_ct_seqadj_set(): the packet of `ctinfo` with sequence number `seq` changed its length by `off`. */
export function nfCtSeqadjSet(t: SeqadjTable, e: number, ctinfo: number, seq: number, off: number): void {
  if (off === 0) return;
  t.status[e]! |= IPS_SEQ_ADJUST;
  const w = e * SEQADJ_WORDS + (ctinfo >= IP_CT_IS_REPLY ? 3 : 0);
  const a = t.seqadj;
  if (a[w + BEFORE] === a[w + AFTER] || before(a[w + POS]!, seq)) {
    a[w + POS] = seq;
    a[w + BEFORE] = a[w + AFTER]!;
    a[w + AFTER] = (a[w + AFTER]! + off) | 0;
  }
}

/** nf_ct_seq_offset(): the offset direction `dir` applies at `seq` (0 without IPS_SEQ_ADJUST). */
export function nfCtSeqOffset(t: SeqadjTable, e: number, dir: number, seq: number): number {
  if (!(t.status[e]! & IPS_SEQ_ADJUST)) return 0;
  const w = e * SEQADJ_WORDS + dir * 3;
  return after(seq, t.seqadj[w + POS]!) ? t.seqadj[w + AFTER]! : t.seqadj[w + BEFORE]!;
}

/**
 * nf_ct_seq_adjust(): the TCP header at `th` (data ending at `end`) of a
 * packet in direction `dir` gets its sequence number, acknowledgement and
 * SACK blocks moved, checksum kept. False when its options are malformed
 * (the caller drops it).
 */
export function nfCtSeqAdjust(t: SeqadjTable, e: number, dir: number, d: Uint8Array, th: number, end: number): boolean {
  const a = t.seqadj;
  const tw = e * SEQADJ_WORDS + dir * 3;
  const ow = e * SEQADJ_WORDS + (dir ^ 1) * 3;
  const seq = word(d, th + 4);
  const seqoff = after(seq, a[tw + POS]!) ? a[tw + AFTER]! : a[tw + BEFORE]!;
  const newseq = (seq + seqoff) | 0;
  csumReplace4(d, th + 16, seq, newseq);
  put(d, th + 4, newseq);
  if (!(d[th + 13]! & 0x10)) return true;
  const ack = word(d, th + 8);
  const ackoff = after((ack - a[ow + BEFORE]!) | 0, a[ow + POS]!) ? a[ow + AFTER]! : a[ow + BEFORE]!;
  const newack = (ack - ackoff) | 0;
  csumReplace4(d, th + 16, ack, newack);
  put(d, th + 8, newack);
  return sackAdjust(a, ow, d, th, end);
}

/** nf_ct_sack_adjust(): the SACK blocks of the options, by the other direction's offsets (`ow`); false for a partial option. */
function sackAdjust(a: Int32Array, ow: number, d: Uint8Array, th: number, end: number): boolean {
  const optend = Math.min(th + (d[th + 12]! >> 4) * 4, end);
  let o = th + 20;
  while (o < optend) {
    const kind = d[o]!;
    if (kind === 0) return true;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = d[o + 1]!;
    if (o + 1 === optend || o + len > optend || len < 2) return false;
    // TCPOPT_SACK with whole blocks of TCPOLEN_SACK_PERBLOCK (8)
    if (kind === 5 && len >= 10 && (len - 2) % 8 === 0) {
      for (let s = o + 2; s < o + len; s += 4) {
        const v = word(d, s);
        const nv = (v - (after((v - a[ow + BEFORE]!) | 0, a[ow + POS]!) ? a[ow + AFTER]! : a[ow + BEFORE]!)) | 0;
        csumReplace4(d, th + 16, v, nv);
        put(d, s, nv);
      }
    }
    o += len;
  }
  return true;
}
