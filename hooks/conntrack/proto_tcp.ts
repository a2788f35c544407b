/**
 * TCP connection tracking: the state table, window tracking and the checks
 * that make a segment INVALID.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_tcp.c:
 *   tcp_conntracks, get_conntrack_index, segment_seq_plus_len, tcp_options,
 *   tcp_sack, tcp_init_sender, nf_tcp_log_invalid, tcp_in_window,
 *   nf_tcp_handle_invalid, tcp_valid_flags, tcp_error, tcp_new,
 *   tcp_can_early_drop, nf_ct_tcp_state_reset, nf_conntrack_tcp_packet.
 * The receiver offset of NAT sequence adjustment is seqadj.ts's; no SYN
 * proxy is modelled.
 *
 * ct->proto.tcp lives in the conntrack's PROTO_WORDS (all u32 values kept
 * as s32 words; comparisons that are unsigned in C use >>> 0):
 */
import { nfCtSeqOffset } from './seqadj.js';
import { IPS_ASSURED, IPS_FIXED_TIMEOUT, IPS_SEEN_REPLY, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_IS_REPLY, NF_ACCEPT, NF_DROP, NF_REPEAT } from '../../core/netfilter.js';
import { M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { nfChecksum } from './checksum.js';
import { PROTO_WORDS, checksumHook, type NfConntrack } from './core.js';
import {
  TCP_CONNTRACK_CLOSE, TCP_CONNTRACK_CLOSE_WAIT, TCP_CONNTRACK_ESTABLISHED, TCP_CONNTRACK_FIN_WAIT, TCP_CONNTRACK_IGNORE,
  TCP_CONNTRACK_LAST_ACK, TCP_CONNTRACK_MAX, TCP_CONNTRACK_NONE, TCP_CONNTRACK_RETRANS, TCP_CONNTRACK_SYN_RECV,
  TCP_CONNTRACK_SYN_SENT, TCP_CONNTRACK_SYN_SENT2, TCP_CONNTRACK_TIME_WAIT, TCP_CONNTRACK_UNACK,
} from './sysctl.js';
import { IPPROTO_TCP, TUPLE_WORDS, after, before, protonumOf, word } from './tuple.js';

// Word offsets in the conntrack's proto words.
export const P_TCP_STATE = 0;
/** seen[dir] at P_SEEN + dir * SEEN_WORDS: td_end, td_maxend, td_maxwin, td_maxack, td_scale, flags. */
export const P_SEEN = 1;
const SEEN_WORDS = 6;
const TD_END = 0, TD_MAXEND = 1, TD_MAXWIN = 2, TD_MAXACK = 3, TD_SCALE = 4, TD_FLAGS = 5;
const P_LAST_DIR = 13, P_LAST_INDEX = 14, P_LAST_SEQ = 15, P_LAST_ACK = 16, P_LAST_END = 17, P_LAST_WIN = 18;
const P_LAST_WSCALE = 19, P_LAST_FLAGS = 20, P_RETRANS = 21;

// ip_ct_tcp_state flags (include/uapi/linux/netfilter/nf_conntrack_tcp.h)
export const IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01;
export const IP_CT_TCP_FLAG_SACK_PERM = 0x02;
export const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04;
export const IP_CT_TCP_FLAG_BE_LIBERAL = 0x08;
export const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
export const IP_CT_TCP_FLAG_MAXACK_SET = 0x20;
export const IP_CT_EXP_CHALLENGE_ACK = 0x40;
export const IP_CT_TCP_SIMULTANEOUS_OPEN = 0x80;

// enum tcp_bit_set
export const TCP_SYN_SET = 0;
export const TCP_SYNACK_SET = 1;
export const TCP_FIN_SET = 2;
export const TCP_ACK_SET = 3;
export const TCP_RST_SET = 4;
export const TCP_NONE_SET = 5;

const TCPHDR_FIN = 0x01, TCPHDR_SYN = 0x02, TCPHDR_RST = 0x04, TCPHDR_PSH = 0x08, TCPHDR_ACK = 0x10, TCPHDR_URG = 0x20;
const TCPHDR_ECE = 0x40, TCPHDR_CWR = 0x80;
const TCP_MAX_WSCALE = 14;
const MAXACKWINCONST = 66000;

// enum nf_ct_tcp_action
const NFCT_TCP_IGNORE = 0, NFCT_TCP_INVALID = 1, NFCT_TCP_ACCEPT = 2;

/** tcp_conntract_names (conntrack-tools prints SYN_SENT2 for state 9 as well). */
export const TCP_CONNTRACK_NAMES = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2'];

const sSS = TCP_CONNTRACK_SYN_SENT, sSR = TCP_CONNTRACK_SYN_RECV, sES = TCP_CONNTRACK_ESTABLISHED;
const sFW = TCP_CONNTRACK_FIN_WAIT, sCW = TCP_CONNTRACK_CLOSE_WAIT, sLA = TCP_CONNTRACK_LAST_ACK, sTW = TCP_CONNTRACK_TIME_WAIT;
const sCL = TCP_CONNTRACK_CLOSE, sS2 = TCP_CONNTRACK_SYN_SENT2, sIV = TCP_CONNTRACK_MAX, sIG = TCP_CONNTRACK_IGNORE;

/** tcp_conntracks[dir][index][state], flattened: (dir * 6 + index) * 10 + state. */
export const tcpConntracks = Uint8Array.from([
  // ORIGINAL      sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
  /* syn    */ sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2,
  /* synack */ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
  // REPLY
  /* syn    */ sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2,
  /* synack */ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
]);

/** tcp_valid_flags: the flag combinations (PSH, ECE, CWR masked out) a segment may carry. */
const tcpValidFlags = new Uint8Array(0x40);
for (const f of [TCPHDR_SYN, TCPHDR_SYN | TCPHDR_URG, TCPHDR_SYN | TCPHDR_ACK, TCPHDR_RST, TCPHDR_RST | TCPHDR_ACK, TCPHDR_FIN | TCPHDR_ACK,
  TCPHDR_FIN | TCPHDR_ACK | TCPHDR_URG, TCPHDR_ACK, TCPHDR_ACK | TCPHDR_URG]) tcpValidFlags[f] = 1;



/** Word offset of seen[dir] of the conntrack whose proto words start at b. */
function seenAt(b: number, dir: number): number {
  return b + P_SEEN + dir * SEEN_WORDS;
}

/** get_conntrack_index() */
export function getConntrackIndex(flags: number): number {
  if (flags & TCPHDR_RST) return TCP_RST_SET;
  if (flags & TCPHDR_SYN) return flags & TCPHDR_ACK ? TCP_SYNACK_SET : TCP_SYN_SET;
  if (flags & TCPHDR_FIN) return TCP_FIN_SET;
  if (flags & TCPHDR_ACK) return TCP_ACK_SET;
  return TCP_NONE_SET;
}

/** segment_seq_plus_len(): seq + payload + SYN + FIN. `th` is the header, `end` the end of the packet data. */
function segmentSeqPlusLen(seq: number, d: Uint8Array, th: number, end: number): number {
  const doff = (d[th + 12]! >> 4) * 4;
  const fl = d[th + 13]!;
  return (seq + (end - th) - doff + (fl & TCPHDR_SYN ? 1 : 0) + (fl & TCPHDR_FIN ? 1 : 0)) | 0;
}

/**
 * tcp_options(): window scale and SACK-permitted of a SYN into the state at
 * `s` (its td_scale and flags; flags keep only BE_LIBERAL). `s` < 0: into
 * the scratch `optScratch` (the `seen` local of the IGNORE path).
 */
const optScratch = { scale: 0, flags: 0 };
function tcpOptions(P: Int32Array, s: number, d: Uint8Array, th: number): void {
  let length = (d[th + 12]! >> 4) * 4 - 20;
  if (!length) return;
  let scale = 0;
  let flags = (s >= 0 ? P[s + TD_FLAGS]! : optScratch.flags) & IP_CT_TCP_FLAG_BE_LIBERAL;
  let p = th + 20;
  while (length > 0) {
    const opcode = d[p++]!;
    if (opcode === 0) break; // TCPOPT_EOL
    if (opcode === 1) { // TCPOPT_NOP
      length--;
      continue;
    }
    if (length < 2) break;
    const opsize = d[p++]!;
    if (opsize < 2 || opsize > length) break;
    if (opcode === 4 && opsize === 2) flags |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (opcode === 3 && opsize === 3) {
      scale = Math.min(d[p]!, TCP_MAX_WSCALE);
      flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
    p += opsize - 2;
    length -= opsize;
  }
  if (s >= 0) {
    P[s + TD_SCALE] = scale;
    P[s + TD_FLAGS] = flags;
  } else {
    optScratch.scale = scale;
    optScratch.flags = flags;
  }
}

/** tcp_sack(): the highest right edge of the SACK blocks above `sack`. */
function tcpSack(d: Uint8Array, th: number, sack: number): number {
  let length = (d[th + 12]! >> 4) * 4 - 20;
  if (!length) return sack;
  let p = th + 20;
  // Fast path for the timestamp-only option.
  if (length === 12 && d[p] === 1 && d[p + 1] === 1 && d[p + 2] === 8 && d[p + 3] === 10) return sack;
  let r = sack;
  while (length > 0) {
    const opcode = d[p++]!;
    if (opcode === 0) return r;
    if (opcode === 1) {
      length--;
      continue;
    }
    if (length < 2) return r;
    const opsize = d[p++]!;
    if (opsize < 2 || opsize > length) return r;
    if (opcode === 5 && opsize >= 10 && (opsize - 2) % 8 === 0) {
      for (let i = 0; i < opsize - 2; i += 8) {
        const tmp = word(d, p + i + 4);
        if (after(tmp, r)) r = tmp;
      }
      return r;
    }
    p += opsize - 2;
    length -= opsize;
  }
  return r;
}

/** tcp_init_sender(): SYN-ACK answering a SYN, or the reply SYN of a simultaneous open. */
function tcpInitSender(P: Int32Array, sender: number, receiver: number, d: Uint8Array, th: number, end: number, win: number, dir: number): void {
  P[sender + TD_END] = end;
  P[sender + TD_MAXEND] = end;
  P[sender + TD_MAXWIN] = win === 0 ? 1 : win;
  tcpOptions(P, sender, d, th);
  // RFC 1323: both sides must send the Window Scale option to enable scaling in either direction.
  if (dir === IP_CT_DIR_REPLY && !(P[sender + TD_FLAGS]! & IP_CT_TCP_FLAG_WINDOW_SCALE && P[receiver + TD_FLAGS]! & IP_CT_TCP_FLAG_WINDOW_SCALE)) {
    P[sender + TD_SCALE] = 0;
    P[receiver + TD_SCALE] = 0;
  }
}

/** nf_tcp_log_invalid(): be_liberal (per direction or by sysctl) accepts what would be ignored or invalid. */
function nfTcpLogInvalid(ct: NfConntrack, P: Int32Array, sender: number, ret: number): number {
  return P[sender + TD_FLAGS]! & IP_CT_TCP_FLAG_BE_LIBERAL || ct.sysctl.tcpBeLiberal ? NFCT_TCP_ACCEPT : ret;
}

/** MAXACKWINDOW(sender) */
function maxAckWindow(P: Int32Array, sender: number): number {
  const w = P[sender + TD_MAXWIN]! >>> 0;
  return w > MAXACKWINCONST ? w : MAXACKWINCONST;
}

/** tcp_in_window() */
function tcpInWindow(ct: NfConntrack, e: number, dir: number, index: number, d: Uint8Array, th: number, end: number): number {
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const sender = b + P_SEEN + dir * SEEN_WORDS;
  const receiver = b + P_SEEN + (1 - dir) * SEEN_WORDS;
  const fl = d[th + 13]!;
  let seq = word(d, th + 4);
  let ack = word(d, th + 8);
  let sack = ack;
  const winRaw = (d[th + 14]! << 8) | d[th + 15]!;
  let win = winRaw;
  let segEnd = segmentSeqPlusLen(seq, d, th, end);
  if (P[receiver + TD_FLAGS]! & IP_CT_TCP_FLAG_SACK_PERM) sack = tcpSack(d, th, sack);
  // Take into account NAT sequence number mangling (seqadj.ts)
  const receiverOffset = nfCtSeqOffset(ct, e, 1 - dir, (ack - 1) | 0);
  ack = (ack - receiverOffset) | 0;
  sack = (sack - receiverOffset) | 0;
  const state = P[b + P_TCP_STATE]!;

  if (P[sender + TD_MAXWIN] === 0) {
    // Initialize sender data.
    if (fl & TCPHDR_SYN) {
      tcpInitSender(P, sender, receiver, d, th, segEnd, win, dir);
      if (!(fl & TCPHDR_ACK)) return NFCT_TCP_ACCEPT; // simultaneous open
    } else {
      // Mid-connection: use the data from the packet.
      P[sender + TD_END] = segEnd;
      const swin = win << P[sender + TD_SCALE]!;
      P[sender + TD_MAXWIN] = swin === 0 ? 1 : swin;
      P[sender + TD_MAXEND] = (segEnd + P[sender + TD_MAXWIN]!) | 0;
      if (P[receiver + TD_MAXWIN] === 0) {
        // No traffic the other way yet: let III and IV pass until there is.
        P[receiver + TD_END] = sack;
        P[receiver + TD_MAXEND] = sack;
      } else if (sack === ((P[receiver + TD_END]! + 1) | 0)) {
        P[receiver + TD_END] = sack; // likely a reply to a keepalive
      }
    }
  } else if (fl & TCPHDR_SYN && after(segEnd, P[sender + TD_END]!) && (state === TCP_CONNTRACK_SYN_SENT || state === TCP_CONNTRACK_SYN_RECV)) {
    // RFC 793: a reinitialized TCP uses larger sequence numbers: re-init this direction.
    tcpInitSender(P, sender, receiver, d, th, segEnd, win, dir);
    if (dir === IP_CT_DIR_REPLY && !(fl & TCPHDR_ACK)) return NFCT_TCP_ACCEPT;
  }

  if (!(fl & TCPHDR_ACK)) {
    ack = sack = P[receiver + TD_END]!; // no ACK: pretend it was set and OK
  } else if ((fl & (TCPHDR_ACK | TCPHDR_RST)) === (TCPHDR_ACK | TCPHDR_RST) && ack === 0) {
    ack = sack = P[receiver + TD_END]!; // broken stacks: RST+ACK with a zero ack
  }
  if (fl & TCPHDR_RST && seq === 0 && state === TCP_CONNTRACK_SYN_SENT) {
    seq = segEnd = P[sender + TD_END]!; // RST answering a SYN
  }

  const seqOk = before(seq, (P[sender + TD_MAXEND]! + 1) | 0);
  if (!seqOk) {
    const overshot = (segEnd - P[sender + TD_MAXEND]! + 1) >>> 0;
    const ackOk = after(sack, (P[receiver + TD_END]! - maxAckWindow(P, sender) - 1) | 0);
    const rmaxwin = P[receiver + TD_MAXWIN]!;
    const inRecvWin = rmaxwin !== 0 && after(segEnd, (P[sender + TD_END]! - rmaxwin - 1) | 0);
    if (inRecvWin && ackOk && overshot <= rmaxwin >>> 0 && before(sack, (P[receiver + TD_END]! + 1) | 0)) {
      // TCPs that send more than the receive window allows: track the data so its ACK passes later.
      P[sender + TD_END] = segEnd;
      P[sender + TD_FLAGS]! |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
      return nfTcpLogInvalid(ct, P, sender, NFCT_TCP_IGNORE);
    }
    return nfTcpLogInvalid(ct, P, sender, NFCT_TCP_INVALID); // SEQ is over upper bound
  }
  if (!before(sack, (P[receiver + TD_END]! + 1) | 0)) return nfTcpLogInvalid(ct, P, sender, NFCT_TCP_INVALID); // ACK over upper bound
  const rmaxwin = P[receiver + TD_MAXWIN]!;
  const inRecvWin = rmaxwin === 0 || after(segEnd, (P[sender + TD_END]! - rmaxwin - 1) | 0);
  if (!inRecvWin) return nfTcpLogInvalid(ct, P, sender, NFCT_TCP_IGNORE); // SEQ under lower bound (retransmitted)
  if (!after(sack, (P[receiver + TD_END]! - maxAckWindow(P, sender) - 1) | 0)) return nfTcpLogInvalid(ct, P, sender, NFCT_TCP_IGNORE);

  // Window scaling (RFC 1323).
  if (!(fl & TCPHDR_SYN)) win = win << P[sender + TD_SCALE]!;
  // Update sender data.
  const swin = (win + (sack - ack)) >>> 0;
  if (P[sender + TD_MAXWIN]! >>> 0 < swin) P[sender + TD_MAXWIN] = swin;
  if (after(segEnd, P[sender + TD_END]!)) {
    P[sender + TD_END] = segEnd;
    P[sender + TD_FLAGS]! |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
  }
  if (fl & TCPHDR_ACK) {
    if (!(P[sender + TD_FLAGS]! & IP_CT_TCP_FLAG_MAXACK_SET)) {
      P[sender + TD_MAXACK] = ack;
      P[sender + TD_FLAGS]! |= IP_CT_TCP_FLAG_MAXACK_SET;
    } else if (after(ack, P[sender + TD_MAXACK]!)) P[sender + TD_MAXACK] = ack;
  }
  // Update receiver data.
  if (P[receiver + TD_MAXWIN] !== 0 && after(segEnd, P[sender + TD_MAXEND]!)) {
    P[receiver + TD_MAXWIN] = (P[receiver + TD_MAXWIN]! + (segEnd - P[sender + TD_MAXEND]!)) | 0;
  }
  if (after((sack + win) | 0, (P[receiver + TD_MAXEND]! - 1) | 0)) {
    P[receiver + TD_MAXEND] = (sack + win) | 0;
    if (win === 0) P[receiver + TD_MAXEND] = (P[receiver + TD_MAXEND]! + 1) | 0;
  }
  if (ack === P[receiver + TD_END]) P[receiver + TD_FLAGS]! &= ~IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
  // Retransmissions.
  if (index === TCP_ACK_SET) {
    if (P[b + P_LAST_DIR] === dir && P[b + P_LAST_SEQ] === seq && P[b + P_LAST_ACK] === ack && P[b + P_LAST_END] === segEnd && P[b + P_LAST_WIN] === winRaw) {
      P[b + P_RETRANS] = (P[b + P_RETRANS]! + 1) & 0xff;
    } else {
      P[b + P_LAST_DIR] = dir;
      P[b + P_LAST_SEQ] = seq;
      P[b + P_LAST_ACK] = ack;
      P[b + P_LAST_END] = segEnd;
      P[b + P_LAST_WIN] = winRaw;
      P[b + P_RETRANS] = 0;
    }
  }
  return NFCT_TCP_ACCEPT;
}

/** nf_tcp_handle_invalid(): an out-of-window FIN/RST answering the other side's FIN/RST shortens an assured entry's life. */
function nfTcpHandleInvalid(ct: NfConntrack, e: number, dir: number, index: number): void {
  const st = ct.status[e]!;
  if (!(st & IPS_ASSURED) || st & IPS_FIXED_TIMEOUT) return;
  if (index !== TCP_RST_SET && index !== TCP_FIN_SET) return;
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const lastIndex = P[b + P_LAST_INDEX]!;
  if (P[b + P_LAST_DIR] !== dir && (lastIndex === TCP_FIN_SET || lastIndex === TCP_RST_SET)) {
    const expires = ct.expires(e);
    if (expires < 120 * ct.sysctl.hz) return;
    const timeout = (ct.nfCtTimeoutLookup(e) ?? ct.sysctl.tcpTimeouts)[TCP_CONNTRACK_UNACK]!;
    if (expires > timeout) ct.setCtTimeout(e, (timeout + ct.jiffies) | 0);
  } else {
    P[b + P_LAST_INDEX] = index;
    P[b + P_LAST_DIR] = dir;
  }
}

/** tcp_error(): truncated header, bad checksum (PRE_ROUTING, nf_conntrack_checksum) or an invalid flag combination. */
function tcpError(ct: NfConntrack, pkt: Packet, th: number, hook: number): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  const doff = (d[th + 12]! >> 4) * 4;
  if (doff < 20 || end - th < doff) return true;
  if (checksumHook(ct, hook) && nfChecksum(d, m[M_NFPROTO]!, m[M_NHOFF]!, th, end, IPPROTO_TCP)) return true;
  return !tcpValidFlags[d[th + 13]! & ~(TCPHDR_ECE | TCPHDR_CWR | TCPHDR_PSH) & 0xff];
}

/** tcp_new(): a SYN starts a connection; with nf_conntrack_tcp_loose any valid segment picks one up mid-stream. */
function tcpNew(ct: NfConntrack, e: number, d: Uint8Array, th: number, end: number): boolean {
  const newState = tcpConntracks[getConntrackIndex(d[th + 13]!) * 10 + TCP_CONNTRACK_NONE]!;
  if (newState >= TCP_CONNTRACK_MAX) return false;
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const s0 = b + P_SEEN;
  if (newState !== TCP_CONNTRACK_SYN_SENT && !ct.sysctl.tcpLoose) return false;
  P.fill(0, b, b + PROTO_WORDS);
  const win = (d[th + 14]! << 8) | d[th + 15]!;
  P[s0 + TD_END] = segmentSeqPlusLen(word(d, th + 4), d, th, end);
  P[s0 + TD_MAXWIN] = win === 0 ? 1 : win;
  if (newState === TCP_CONNTRACK_SYN_SENT) {
    P[s0 + TD_MAXEND] = P[s0 + TD_END]!;
    tcpOptions(P, s0, d, th);
  } else {
    // Mid-connection pickup: assume SACK and liberal window checking (window scaling unknown).
    P[s0 + TD_MAXEND] = (P[s0 + TD_END]! + P[s0 + TD_MAXWIN]!) | 0;
    P[s0 + TD_FLAGS] = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
    P[s0 + SEEN_WORDS + TD_FLAGS] = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
  }
  P[b + P_LAST_INDEX] = TCP_NONE_SET;
  return true;
}

/** tcp_can_early_drop(): closing states may be evicted even when assured. */
export function tcpCanEarlyDrop(state: number): boolean {
  return state === TCP_CONNTRACK_FIN_WAIT || state === TCP_CONNTRACK_LAST_ACK || state === TCP_CONNTRACK_TIME_WAIT ||
    state === TCP_CONNTRACK_CLOSE || state === TCP_CONNTRACK_CLOSE_WAIT;
}

/** nf_ct_tcp_state_reset() */
function tcpStateReset(P: Int32Array, s: number): void {
  P[s + TD_END] = 0;
  P[s + TD_MAXEND] = 0;
  P[s + TD_MAXWIN] = 0;
  P[s + TD_MAXACK] = 0;
  P[s + TD_SCALE] = 0;
  P[s + TD_FLAGS]! &= IP_CT_TCP_FLAG_BE_LIBERAL;
}

/** nf_conntrack_tcp_established(): ESTABLISHED and assured. */
function tcpEstablished(ct: NfConntrack, e: number): boolean {
  return ct.proto[e * PROTO_WORDS + P_TCP_STATE] === TCP_CONNTRACK_ESTABLISHED && (ct.status[e]! & IPS_ASSURED) !== 0;
}

/** nf_conntrack_tcp_packet(): NF_ACCEPT, -NF_ACCEPT (invalid), -NF_REPEAT (reopen: retry with a fresh conntrack) or NF_DROP. */
export function nfConntrackTcpPacket(ct: NfConntrack, e: number, pkt: Packet, th: number, ctinfo: number, hook: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  if (th + 20 > end) return -NF_ACCEPT;
  if (tcpError(ct, pkt, th, hook)) return -NF_ACCEPT;
  if (!ct.isConfirmed(e) && !tcpNew(ct, e, d, th, end)) return -NF_ACCEPT;

  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const fl = d[th + 13]!;
  let oldState = P[b + P_TCP_STATE]!;
  const dir = ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
  const index = getConntrackIndex(fl);
  let newState = tcpConntracks[(dir * 6 + index) * 10 + oldState]!;
  const seqNo = word(d, th + 4);
  const ackSeq = word(d, th + 8);
  let skipWindow = false;

  switch (newState) {
    case TCP_CONNTRACK_SYN_SENT:
    case TCP_CONNTRACK_IGNORE: {
      if (newState === TCP_CONNTRACK_SYN_SENT) {
        if (oldState < TCP_CONNTRACK_TIME_WAIT) break;
        // RFC 1122: a SYN may reopen a connection from TIME-WAIT; an aborted one is killed and looked up again.
        if ((P[seenAt(b, dir) + TD_FLAGS]! | P[seenAt(b, 1 - dir) + TD_FLAGS]!) & IP_CT_TCP_FLAG_CLOSE_INIT ||
          (P[b + P_LAST_DIR] === dir && P[b + P_LAST_INDEX] === TCP_RST_SET)) {
          if (ct.nfCtDelete(e)) return -NF_REPEAT;
          return NF_DROP;
        }
      }
      // Ignored packets: the entry may be out of sync.
      const lastDir = P[b + P_LAST_DIR]!;
      if (index === TCP_SYNACK_SET && P[b + P_LAST_INDEX] === TCP_SYN_SET && lastDir !== dir && ackSeq === P[b + P_LAST_END]) {
        // b) this SYN/ACK acknowledges a SYN we ignored: get in sync from the annotated values.
        oldState = TCP_CONNTRACK_SYN_SENT;
        newState = TCP_CONNTRACK_SYN_RECV;
        const ls = seenAt(b, lastDir);
        P[ls + TD_END] = P[b + P_LAST_END]!;
        P[ls + TD_MAXEND] = P[b + P_LAST_END]!;
        P[ls + TD_MAXWIN] = P[b + P_LAST_WIN] === 0 ? 1 : P[b + P_LAST_WIN]!;
        P[ls + TD_SCALE] = P[b + P_LAST_WSCALE]!;
        P[b + P_LAST_FLAGS]! &= ~IP_CT_EXP_CHALLENGE_ACK;
        P[ls + TD_FLAGS] = P[b + P_LAST_FLAGS]!;
        tcpStateReset(P, seenAt(b, dir));
        break;
      }
      P[b + P_LAST_INDEX] = index;
      P[b + P_LAST_DIR] = dir;
      P[b + P_LAST_SEQ] = seqNo;
      P[b + P_LAST_END] = segmentSeqPlusLen(seqNo, d, th, end);
      P[b + P_LAST_WIN] = (d[th + 14]! << 8) | d[th + 15]!;
      // a) a SYN in ORIGINAL: annotate its options; a SYN/ACK may get us in sync.
      if (index === TCP_SYN_SET && dir === IP_CT_DIR_ORIGINAL) {
        P[b + P_LAST_FLAGS] = 0;
        P[b + P_LAST_WSCALE] = 0;
        optScratch.flags = 0;
        optScratch.scale = 0;
        tcpOptions(P, -1, d, th);
        if (optScratch.flags & IP_CT_TCP_FLAG_WINDOW_SCALE) {
          P[b + P_LAST_FLAGS]! |= IP_CT_TCP_FLAG_WINDOW_SCALE;
          P[b + P_LAST_WSCALE] = optScratch.scale;
        }
        if (optScratch.flags & IP_CT_TCP_FLAG_SACK_PERM) P[b + P_LAST_FLAGS]! |= IP_CT_TCP_FLAG_SACK_PERM;
        // A challenge ACK (RFC 5961) may follow; in LAST_ACK it would look like the last ACK.
        if (oldState === TCP_CONNTRACK_LAST_ACK) P[b + P_LAST_FLAGS]! |= IP_CT_EXP_CHALLENGE_ACK;
      }
      // A possible challenge ACK answering the SYN.
      if (oldState === TCP_CONNTRACK_SYN_SENT && index === TCP_ACK_SET && dir === IP_CT_DIR_REPLY) P[b + P_LAST_ACK] = ackSeq;
      return NF_ACCEPT;
    }
    case TCP_CONNTRACK_MAX:
      return -NF_ACCEPT; // invalid packet for the state
    case TCP_CONNTRACK_TIME_WAIT:
      // RFC 5961 challenge ACK: not the ACK of the last FIN.
      if (oldState === TCP_CONNTRACK_LAST_ACK && index === TCP_ACK_SET && P[b + P_LAST_DIR] !== dir &&
        P[b + P_LAST_INDEX] === TCP_SYN_SET && P[b + P_LAST_FLAGS]! & IP_CT_EXP_CHALLENGE_ACK) {
        P[b + P_LAST_FLAGS]! &= ~IP_CT_EXP_CHALLENGE_ACK;
        return NF_ACCEPT;
      }
      break;
    case TCP_CONNTRACK_SYN_SENT2:
      // The table cannot tell a simultaneous open by itself.
      P[b + P_LAST_FLAGS]! |= IP_CT_TCP_SIMULTANEOUS_OPEN;
      break;
    case TCP_CONNTRACK_SYN_RECV:
      if (dir === IP_CT_DIR_REPLY && index === TCP_ACK_SET && P[b + P_LAST_FLAGS]! & IP_CT_TCP_SIMULTANEOUS_OPEN) newState = TCP_CONNTRACK_ESTABLISHED;
      break;
    case TCP_CONNTRACK_CLOSE: {
      if (index !== TCP_RST_SET) break;
      // Closing: the tuple may be reused already; skip validation.
      if (tcpCanEarlyDrop(P[b + P_TCP_STATE]!)) {
        skipWindow = true;
        break;
      }
      const other = seenAt(b, 1 - dir);
      if (P[other + TD_FLAGS]! & IP_CT_TCP_FLAG_MAXACK_SET && P[b + P_LAST_INDEX] !== TCP_SYN_SET) {
        if (seqNo === 0 && !tcpEstablished(ct, e)) break;
        if (before(seqNo, P[other + TD_MAXACK]!) && !ct.sysctl.tcpIgnoreInvalidRst) return -NF_ACCEPT; // invalid RST
        if (!tcpEstablished(ct, e) || seqNo === P[other + TD_MAXACK]) break;
        // An RST that is part of a train (data then RST).
        if (P[b + P_LAST_INDEX] === TCP_ACK_SET && P[b + P_LAST_DIR] === dir && seqNo === P[b + P_LAST_END]) break;
        // The RST does not match exactly: keep the state for a possible challenge ACK.
        newState = oldState;
      }
      const st = ct.status[e]!;
      // RST to an invalid SYN or ACK we let through at a) or c). A SYN is answered from the other side:
      // Linux 6.18 does not take an RST that follows a SYN of its own direction as that answer (the
      // kernel test's conversation SYN, server data, SYN, client RST acking the data: the RST goes
      // through tcp_in_window(), "ignored ACK under lower bound", and the entry stays SYN_SENT).
      if (((st & IPS_SEEN_REPLY && P[b + P_LAST_INDEX] === TCP_SYN_SET && P[b + P_LAST_DIR] !== dir) ||
        (!(st & IPS_ASSURED) && P[b + P_LAST_INDEX] === TCP_ACK_SET)) &&
        ackSeq === P[b + P_LAST_END]) {
        skipWindow = true;
        break;
      }
      // RST answering a challenge ACK we let through.
      if (oldState === TCP_CONNTRACK_SYN_SENT && P[b + P_LAST_INDEX] === TCP_ACK_SET && P[b + P_LAST_DIR] === IP_CT_DIR_REPLY && seqNo === P[b + P_LAST_ACK]) {
        skipWindow = true;
      }
      break;
    }
    default:
      break;
  }

  if (!skipWindow) {
    const res = tcpInWindow(ct, e, dir, index, d, th, end);
    if (res === NFCT_TCP_IGNORE) return NF_ACCEPT;
    if (res === NFCT_TCP_INVALID) {
      nfTcpHandleInvalid(ct, e, dir, index);
      return -NF_ACCEPT;
    }
  }
  // in_window: from now on the packet is in window.
  P[b + P_LAST_INDEX] = index;
  P[b + P_LAST_DIR] = dir;
  P[b + P_TCP_STATE] = newState;
  if (oldState !== newState && newState === TCP_CONNTRACK_FIN_WAIT) P[seenAt(b, dir) + TD_FLAGS]! |= IP_CT_TCP_FLAG_CLOSE_INIT;

  const timeouts = ct.nfCtTimeoutLookup(e) ?? ct.sysctl.tcpTimeouts;
  const tNew = timeouts[newState]! >>> 0;
  let timeout: number;
  if (P[b + P_RETRANS]! >= ct.sysctl.tcpMaxRetrans && tNew > timeouts[TCP_CONNTRACK_RETRANS]! >>> 0) timeout = timeouts[TCP_CONNTRACK_RETRANS]!;
  else if (index === TCP_RST_SET) timeout = timeouts[TCP_CONNTRACK_CLOSE]!;
  else if ((P[seenAt(b, 0) + TD_FLAGS]! | P[seenAt(b, 1) + TD_FLAGS]!) & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED && tNew > timeouts[TCP_CONNTRACK_UNACK]! >>> 0) {
    timeout = timeouts[TCP_CONNTRACK_UNACK]!;
  } else if (P[b + P_LAST_WIN] === 0 && tNew > timeouts[TCP_CONNTRACK_RETRANS]! >>> 0) timeout = timeouts[TCP_CONNTRACK_RETRANS]!;
  else timeout = timeouts[newState]!;

  const len = end - m[M_NHOFF]!;
  const st = ct.status[e]!;
  if (!(st & IPS_SEEN_REPLY)) {
    // Only a RST came back: not an established connection; delete it now.
    if (fl & TCPHDR_RST) {
      ct.nfCtKillAcct(e, ctinfo, len);
      return NF_ACCEPT;
    }
    // A retransmitted SYN does not renew the timeout (port reuse could keep the entry for ever).
    if (index === TCP_SYN_SET && oldState === TCP_CONNTRACK_SYN_SENT) return NF_ACCEPT;
    // ESTABLISHED without SEEN_REPLY (loose pickup): no long ESTABLISHED timeout.
    if (newState === TCP_CONNTRACK_ESTABLISHED && timeout >>> 0 > timeouts[TCP_CONNTRACK_UNACK]! >>> 0) timeout = timeouts[TCP_CONNTRACK_UNACK]!;
  } else if (!(st & IPS_ASSURED) && (oldState === TCP_CONNTRACK_SYN_RECV || oldState === TCP_CONNTRACK_ESTABLISHED) && newState === TCP_CONNTRACK_ESTABLISHED) {
    // A valid ACK in ESTABLISHED after SYN_RECV, or a valid answer for a picked-up connection.
    ct.status[e] = st | IPS_ASSURED;
  }
  ct.nfCtRefreshAcct(e, ctinfo, len, timeout);
  return NF_ACCEPT;
}

/**
 * nf_ct_set_closing() → nf_conntrack_tcp_set_closing(): REJECT's reset
 * (nf_send_reset, nf_send_reset6) closes the original's confirmed TCP
 * conntrack: CLOSE, and its CLOSE timeout unless it was CLOSE already or
 * has a fixed timeout.
 */
export function nfCtSetClosing(ct: NfConntrack, e: number): void {
  if (e < 0 || !ct.isConfirmed(e) || protonumOf(ct.tuples, 2 * e * TUPLE_WORDS) !== IPPROTO_TCP) return;
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const old = P[b + P_TCP_STATE]!;
  P[b + P_TCP_STATE] = TCP_CONNTRACK_CLOSE;
  if (old === TCP_CONNTRACK_CLOSE || ct.status[e]! & IPS_FIXED_TIMEOUT) return;
  ct.setCtTimeout(e, ((ct.nfCtTimeoutLookup(e) ?? ct.sysctl.tcpTimeouts)[TCP_CONNTRACK_CLOSE]! + ct.jiffies) | 0);
}

/** seen[dir].td_end of a conntrack (nf_seq_has_advanced in NAT). */
export function tcpSeenEnd(ct: NfConntrack, e: number, dir: number): number {
  return ct.proto[e * PROTO_WORDS + P_SEEN + dir * SEEN_WORDS + TD_END]!;
}

/** The TCP state of a conntrack (for dumps). */
export function tcpState(ct: NfConntrack, e: number): number {
  return ct.proto[e * PROTO_WORDS + P_TCP_STATE]!;
}
