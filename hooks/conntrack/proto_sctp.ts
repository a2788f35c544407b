/**
 * SCTP connection tracking.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_sctp.c:
 * sctp_conntracks, for_each_sctp_chunk, do_basic_checks, sctp_new_state,
 * sctp_new, sctp_error (CRC32c at PRE_ROUTING), nf_conntrack_sctp_packet
 * (verification tags, Sec 8.5 / 8.5.1), sctp_can_early_drop.
 *
 * Proto words: state, vtag[ORIGINAL], vtag[REPLY], init[ORIGINAL],
 * init[REPLY], flags, last_dir. Tags are the host-order values of the
 * network words (only compared for equality).
 */
import { IPS_ASSURED, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_IS_REPLY, NF_ACCEPT } from '../../core/netfilter.js';
import { M_END, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { sctpComputeCksum, sctpStoredCksum } from './checksum.js';
import { PROTO_WORDS, checksumHook, type NfConntrack } from './core.js';
import { word } from './tuple.js';
import {
  SCTP_CONNTRACK_CLOSED, SCTP_CONNTRACK_COOKIE_ECHOED, SCTP_CONNTRACK_COOKIE_WAIT, SCTP_CONNTRACK_ESTABLISHED,
  SCTP_CONNTRACK_HEARTBEAT_SENT, SCTP_CONNTRACK_MAX, SCTP_CONNTRACK_NONE, SCTP_CONNTRACK_SHUTDOWN_ACK_SENT,
  SCTP_CONNTRACK_SHUTDOWN_RECD, SCTP_CONNTRACK_SHUTDOWN_SENT,
} from './sysctl.js';

export const P_SCTP_STATE = 0;
const P_VTAG = 1; // + dir
const P_INIT = 3; // + dir
const P_SFLAGS = 5;
const P_SLAST_DIR = 6;
const SCTP_FLAG_HEARTBEAT_VTAG_FAILED = 1;

// SCTP chunk types (include/linux/sctp.h)
const SCTP_CID_DATA = 0, SCTP_CID_INIT = 1, SCTP_CID_INIT_ACK = 2, SCTP_CID_HEARTBEAT = 4, SCTP_CID_HEARTBEAT_ACK = 5;
const SCTP_CID_ABORT = 6, SCTP_CID_SHUTDOWN = 7, SCTP_CID_SHUTDOWN_ACK = 8, SCTP_CID_ERROR = 9, SCTP_CID_COOKIE_ECHO = 10;
const SCTP_CID_COOKIE_ACK = 11, SCTP_CID_SHUTDOWN_COMPLETE = 14;
const SCTP_CHUNK_FLAG_T = 0x01;

export const SCTP_CONNTRACK_NAMES = ['NONE', 'CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'HEARTBEAT_SENT'];

const sCL = SCTP_CONNTRACK_CLOSED, sCW = SCTP_CONNTRACK_COOKIE_WAIT, sCE = SCTP_CONNTRACK_COOKIE_ECHOED;
const sES = SCTP_CONNTRACK_ESTABLISHED, sSS = SCTP_CONNTRACK_SHUTDOWN_SENT, sSR = SCTP_CONNTRACK_SHUTDOWN_RECD;
const sSA = SCTP_CONNTRACK_SHUTDOWN_ACK_SENT, sHS = SCTP_CONNTRACK_HEARTBEAT_SENT, sIV = SCTP_CONNTRACK_MAX;

/** sctp_conntracks[dir][chunk row][state], flattened: (dir * 11 + row) * 9 + state. */
const sctpConntracks = Uint8Array.from([
  // ORIGINAL            sNO  sCL  sCW  sCE  sES  sSS  sSR  sSA  sHS
  /* init          */ sCL, sCL, sCW, sCE, sES, sCL, sCL, sSA, sCW,
  /* init_ack      */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL,
  /* abort         */ sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* shutdown      */ sCL, sCL, sCW, sCE, sSS, sSS, sSR, sSA, sCL,
  /* shutdown_ack  */ sSA, sCL, sCW, sCE, sES, sSA, sSA, sSA, sSA,
  /* error         */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL,
  /* cookie_echo   */ sCL, sCL, sCE, sCE, sES, sSS, sSR, sSA, sCL,
  /* cookie_ack    */ sCL, sCL, sCW, sES, sES, sSS, sSR, sSA, sCL,
  /* shutdown_comp */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sCL, sCL,
  /* heartbeat     */ sHS, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS,
  /* heartbeat_ack */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS,
  // REPLY
  /* init          */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sIV,
  /* init_ack      */ sIV, sCW, sCW, sCE, sES, sSS, sSR, sSA, sIV,
  /* abort         */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sIV,
  /* shutdown      */ sIV, sCL, sCW, sCE, sSR, sSS, sSR, sSA, sIV,
  /* shutdown_ack  */ sIV, sCL, sCW, sCE, sES, sSA, sSA, sSA, sIV,
  /* error         */ sIV, sCL, sCW, sCL, sES, sSS, sSR, sSA, sIV,
  /* cookie_echo   */ sIV, sCL, sCE, sCE, sES, sSS, sSR, sSA, sIV,
  /* cookie_ack    */ sIV, sCL, sCW, sES, sES, sSS, sSR, sSA, sIV,
  /* shutdown_comp */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sCL, sIV,
  /* heartbeat     */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS,
  /* heartbeat_ack */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sES,
]);

/** Table row of a chunk type in sctp_new_state(), -1 for chunks that do not change the state (DATA, SACK, ...). */
function chunkRow(type: number): number {
  switch (type) {
    case SCTP_CID_INIT: return 0;
    case SCTP_CID_INIT_ACK: return 1;
    case SCTP_CID_ABORT: return 2;
    case SCTP_CID_SHUTDOWN: return 3;
    case SCTP_CID_SHUTDOWN_ACK: return 4;
    case SCTP_CID_ERROR: return 5;
    case SCTP_CID_COOKIE_ECHO: return 6;
    case SCTP_CID_COOKIE_ACK: return 7;
    case SCTP_CID_SHUTDOWN_COMPLETE: return 8;
    case SCTP_CID_HEARTBEAT: return 9;
    case SCTP_CID_HEARTBEAT_ACK: return 10;
    default: return -1;
  }
}

/** sctp_new_state() */
function sctpNewState(dir: number, cur: number, type: number): number {
  const row = chunkRow(type);
  return row < 0 ? cur : sctpConntracks[(dir * 11 + row) * 9 + cur]!;
}

/** The chunk types present (the `map` bitmap), reused between packets. */
const map = new Uint8Array(256);


/** Next chunk offset after the one at `at` (length rounded up to 4). */
function nextChunk(d: Uint8Array, at: number): number {
  return at + ((((d[at + 2]! << 8) | d[at + 3]!) + 3) & ~3);
}

/** do_basic_checks(): false when the chunks are fine; fills `map`. */
function doBasicChecks(d: Uint8Array, dataoff: number, end: number): boolean {
  map.fill(0);
  let flag = false;
  let count = 0;
  for (let off = dataoff + 12; off < end && off + 4 <= end; off = nextChunk(d, off), count++) {
    const type = d[off]!;
    if (type === SCTP_CID_INIT || type === SCTP_CID_INIT_ACK || type === SCTP_CID_SHUTDOWN_COMPLETE) flag = true;
    const length = (d[off + 2]! << 8) | d[off + 3]!;
    // COOKIE_ACK/ECHO not first, INIT/INIT_ACK/SHUTDOWN_COMPLETE not alone, or a zero length.
    if (((type === SCTP_CID_COOKIE_ACK || type === SCTP_CID_COOKIE_ECHO || flag) && count !== 0) || length === 0) return true;
    map[type] = 1;
  }
  return count === 0;
}

/** sctp_new(): the first packet's chunks decide whether it may create a conntrack; notes the tags. */
function sctpNew(ct: NfConntrack, e: number, d: Uint8Array, dataoff: number, end: number): boolean {
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  P.fill(0, b, b + PROTO_WORDS);
  const vtag = word(d, dataoff + 4);
  for (let off = dataoff + 12; off < end && off + 4 <= end; off = nextChunk(d, off)) {
    const type = d[off]!;
    const ns = sctpNewState(IP_CT_DIR_ORIGINAL, SCTP_CONNTRACK_NONE, type);
    if (ns === SCTP_CONNTRACK_NONE || ns === SCTP_CONNTRACK_MAX) return false;
    if (type === SCTP_CID_INIT) {
      if (vtag !== 0) return false; // Sec 8.5.1 (A)
      if (off + 4 + 16 > end) return false;
      P[b + P_VTAG + IP_CT_DIR_REPLY] = word(d, off + 4);
    } else if (type === SCTP_CID_HEARTBEAT) {
      P[b + P_VTAG + IP_CT_DIR_ORIGINAL] = vtag;
    } else if (type === SCTP_CID_SHUTDOWN_ACK) {
      // An OOTB SHUTDOWN_ACK expects a SHUTDOWN_COMPLETE (or an ABORT) back: Sec 8.4 (5), (8).
      P[b + P_VTAG + IP_CT_DIR_REPLY] = vtag;
    }
    P[b + P_SCTP_STATE] = SCTP_CONNTRACK_NONE;
  }
  return true;
}

/** sctp_error(): short header, or a bad CRC32c at PRE_ROUTING with nf_conntrack_checksum. */
function sctpError(ct: NfConntrack, d: Uint8Array, dataoff: number, end: number, hook: number): boolean {
  if (end < dataoff + 12) return true;
  return checksumHook(ct, hook) && sctpStoredCksum(d, dataoff) !== sctpComputeCksum(d, dataoff, end);
}

/** nf_conntrack_sctp_packet(): NF_ACCEPT or -NF_ACCEPT. */
export function nfConntrackSctpPacket(ct: NfConntrack, e: number, pkt: Packet, dataoff: number, ctinfo: number, hook: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  const dir = ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
  if (sctpError(ct, d, dataoff, end, hook)) return -NF_ACCEPT;
  if (doBasicChecks(d, dataoff, end)) return -NF_ACCEPT;
  if (!ct.isConfirmed(e)) {
    // An OOTB packet with any of these chunks is discarded (Sec 8.4).
    if (map[SCTP_CID_ABORT] || map[SCTP_CID_SHUTDOWN_COMPLETE] || map[SCTP_CID_COOKIE_ACK]) return -NF_ACCEPT;
    if (!sctpNew(ct, e, d, dataoff, end)) return -NF_ACCEPT;
  }
  const P = ct.proto;
  const b = e * PROTO_WORDS;
  const vtag = word(d, dataoff + 4);
  // Verification tag check (Sec 8.5).
  if (!map[SCTP_CID_INIT] && !map[SCTP_CID_SHUTDOWN_COMPLETE] && !map[SCTP_CID_COOKIE_ECHO] && !map[SCTP_CID_ABORT] &&
    !map[SCTP_CID_SHUTDOWN_ACK] && !map[SCTP_CID_HEARTBEAT] && !map[SCTP_CID_HEARTBEAT_ACK] && vtag !== P[b + P_VTAG + dir]) {
    return -NF_ACCEPT;
  }
  let oldState = SCTP_CONNTRACK_NONE;
  let newState = SCTP_CONNTRACK_NONE;
  let ignore = false;
  for (let off = dataoff + 12; off < end && off + 4 <= end; off = nextChunk(d, off)) {
    const type = d[off]!;
    const cflags = d[off + 1]!;
    // Special cases of the verification tag check (Sec 8.5.1).
    if (type === SCTP_CID_INIT) {
      if (vtag !== 0) return -NF_ACCEPT; // (A)
    } else if (type === SCTP_CID_ABORT || type === SCTP_CID_SHUTDOWN_COMPLETE) {
      // (B), (C): own tag without the T flag, the peer's with it.
      if (!(cflags & SCTP_CHUNK_FLAG_T) ? vtag !== P[b + P_VTAG + dir] : vtag !== P[b + P_VTAG + 1 - dir]) return -NF_ACCEPT;
    } else if (type === SCTP_CID_COOKIE_ECHO) {
      if (vtag !== P[b + P_VTAG + dir]) return -NF_ACCEPT; // (D)
    } else if (type === SCTP_CID_COOKIE_ACK) {
      P[b + P_INIT + dir] = 0;
      P[b + P_INIT + 1 - dir] = 0;
    } else if (type === SCTP_CID_HEARTBEAT) {
      if (P[b + P_VTAG + dir] === 0) P[b + P_VTAG + dir] = vtag;
      else if (vtag !== P[b + P_VTAG + dir]) {
        if (map[SCTP_CID_DATA] || ignore) return -NF_ACCEPT;
        P[b + P_SFLAGS]! |= SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
        P[b + P_SLAST_DIR] = dir;
        ignore = true;
        continue;
      } else if (P[b + P_SFLAGS]! & SCTP_FLAG_HEARTBEAT_VTAG_FAILED) P[b + P_SFLAGS]! &= ~SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
    } else if (type === SCTP_CID_HEARTBEAT_ACK) {
      if (P[b + P_VTAG + dir] === 0) P[b + P_VTAG + dir] = vtag;
      else if (vtag !== P[b + P_VTAG + dir]) {
        if (map[SCTP_CID_DATA] || ignore) return -NF_ACCEPT;
        if ((P[b + P_SFLAGS]! & SCTP_FLAG_HEARTBEAT_VTAG_FAILED) === 0 || P[b + P_SLAST_DIR] === dir) return -NF_ACCEPT;
        P[b + P_SFLAGS]! &= ~SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
        P[b + P_VTAG + dir] = vtag;
        P[b + P_VTAG + 1 - dir] = 0;
      } else if (P[b + P_SFLAGS]! & SCTP_FLAG_HEARTBEAT_VTAG_FAILED) P[b + P_SFLAGS]! &= ~SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
    }
    oldState = P[b + P_SCTP_STATE]!;
    newState = sctpNewState(dir, oldState, type);
    if (newState === SCTP_CONNTRACK_MAX) return -NF_ACCEPT;
    // INIT / INIT_ACK: note the tag.
    if (type === SCTP_CID_INIT) {
      if (off + 4 + 16 > end) return -NF_ACCEPT;
      if (P[b + P_INIT + dir] && P[b + P_INIT + 1 - dir]) P[b + P_INIT + 1 - dir] = 0;
      P[b + P_INIT + dir] = 1;
      P[b + P_VTAG + 1 - dir] = word(d, off + 4);
      // An INIT retransmitted in CLOSED does not renew the timeout.
      if (newState === SCTP_CONNTRACK_CLOSED && oldState === SCTP_CONNTRACK_CLOSED && ct.isConfirmed(e)) ignore = true;
    } else if (type === SCTP_CID_INIT_ACK) {
      if (off + 4 + 16 > end) return -NF_ACCEPT;
      const initTag = word(d, off + 4);
      const peer = P[b + P_VTAG + 1 - dir]!;
      if (!P[b + P_INIT + 1 - dir] && peer && peer !== initTag) return -NF_ACCEPT;
      if (P[b + P_INIT + dir] && P[b + P_INIT + 1 - dir] && peer !== initTag) return -NF_ACCEPT; // collision
      P[b + P_VTAG + 1 - dir] = initTag;
    }
    P[b + P_SCTP_STATE] = newState;
    if (oldState !== newState && newState === SCTP_CONNTRACK_ESTABLISHED) ct.status[e]! |= IPS_ASSURED;
  }
  if (ignore) return NF_ACCEPT; // allowed, the timeout is not refreshed
  ct.nfCtRefreshAcct(e, ctinfo, end - m[M_NHOFF]!, (ct.nfCtTimeoutLookup(e) ?? ct.sysctl.sctpTimeouts)[newState]!);
  return NF_ACCEPT;
}

/** sctp_can_early_drop() */
export function sctpCanEarlyDrop(state: number): boolean {
  return state === SCTP_CONNTRACK_SHUTDOWN_SENT || state === SCTP_CONNTRACK_SHUTDOWN_RECD || state === SCTP_CONNTRACK_SHUTDOWN_ACK_SENT;
}

/** The SCTP state of a conntrack (for dumps). */
export function sctpState(ct: NfConntrack, e: number): number {
  return ct.proto[e * PROTO_WORDS + P_SCTP_STATE]!;
}
