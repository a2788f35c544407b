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
import { after, before, word } from './tuple.js';

export const SEQADJ_WORDS = 6;
const POS = 0, BEFORE = 1, AFTER = 2;

/** The conntrack state the adjustment reads and writes. */
export interface SeqadjTable {
  readonly seqadj: Int32Array;
  readonly status: Int32Array;
}

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

/** The offset of the direction at word `w` for sequence number `seq`: offset_after past correction_pos, else offset_before. */
function offsetAt(a: Int32Array, w: number, seq: number): number {
  return after(seq, a[w + POS]!) ? a[w + AFTER]! : a[w + BEFORE]!;
}

/** The offset the other direction (at word `w`) applied to what acknowledgement or SACK edge `v` acknowledges (v - offset_before, as the kernel compares it). */
function ackOffsetAt(a: Int32Array, w: number, v: number): number {
  return offsetAt(a, w, (v - a[w + BEFORE]!) | 0);
}

/** nf_ct_seq_offset(): the offset direction `dir` applies at `seq` (0 without IPS_SEQ_ADJUST). */
export function nfCtSeqOffset(t: SeqadjTable, e: number, dir: number, seq: number): number {
  if (!(t.status[e]! & IPS_SEQ_ADJUST)) return 0;
  return offsetAt(t.seqadj, e * SEQADJ_WORDS + dir * 3, seq);
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
  const newseq = (seq + offsetAt(a, tw, seq)) | 0;
  csumReplace4(d, th + 16, seq, newseq);
  put(d, th + 4, newseq);
  if (!(d[th + 13]! & 0x10)) return true;
  const ack = word(d, th + 8);
  const newack = (ack - ackOffsetAt(a, ow, ack)) | 0;
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
        const nv = (v - ackOffsetAt(a, ow, v)) | 0;
        csumReplace4(d, th + 16, v, nv);
        put(d, s, nv);
      }
    }
    o += len;
  }
  return true;
}
