/**
 * limit (net/netfilter/nft_limit.c, 6.x): a token bucket in nanoseconds on
 * the injectable clock (VmEnv.nowNs).
 *
 * Record: [op, rate, unit, burst, type, flags, state]
 *   +1 rate   events per unit, > 0
 *   +2 unit   seconds: 1, 60, 3600, 86400, 604800 (any positive value is accepted, as the kernel does)
 *   +3 burst  as given (0 = default 5 for packet limits)
 *   +4 type   NFT_LIMIT_PKTS / NFT_LIMIT_PKT_BYTES
 *   +5 flags  NFT_LIMIT_F_INV
 *   +6 state  index of 4 doubles in Program.state: tokens, last (ns), tokens_max, cost (packets)
 *
 * Per packet: tokens = min(tokens + now - last, tokens_max); last = now; if
 * tokens >= cost the packet is under the limit and pays, else it is over.
 * Over the limit → BREAK (inverted: under the limit → BREAK).
 */
import { Op } from '../opcodes.js';
import { M_LEN, NFT_BREAK, NFT_LIMIT_F_INV, NFT_LIMIT_PKTS, NFT_LIMIT_PKT_BURST_DEFAULT, NFT_LIMIT_PKT_BYTES } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { EvalCtx } from './common.js';

/** Op.LIMIT record words. */
export const enum Limit {
  RATE = 1,
  UNIT = 2,
  BURST = 3,
  TYPE = 4,
  FLAGS = 5,
  STATE = 6,
  SIZE = 7,
}

/** A limit's doubles in Program.state, from its STATE index. */
const enum LimitState {
  TOKENS = 0,
  LAST = 1,
  TOKENS_MAX = 2,
  COST = 3,
  WORDS = 4,
}

const NSEC_PER_SEC = 1e9;

export function emitLimit(b: Emitter, rate: number, unit: number, burst: number, type = NFT_LIMIT_PKTS, invert = false): void {
  b.emit([Op.LIMIT, rate, unit, burst, type, invert ? NFT_LIMIT_F_INV : 0, b.state(LimitState.WORDS)]);
}

export function validateLimit(prog: Program, code: Int32Array, pc: number): string | null {
  const rate = code[pc + Limit.RATE]!;
  const unit = code[pc + Limit.UNIT]!;
  const burst = code[pc + Limit.BURST]!;
  const type = code[pc + Limit.TYPE]!;
  const flags = code[pc + Limit.FLAGS]!;
  const st = code[pc + Limit.STATE]!;
  if (rate <= 0) return `limit: rate ${rate} (-EINVAL)`;
  if (unit <= 0) return `limit: unit ${unit} (-EINVAL)`;
  if (burst < 0) return `limit: burst ${burst} out of range`;
  if (type !== NFT_LIMIT_PKTS && type !== NFT_LIMIT_PKT_BYTES) return `limit: unknown type ${type} (-EOPNOTSUPP)`;
  if (flags & ~NFT_LIMIT_F_INV) return `limit: unknown flags ${flags}`;
  if (st < 0 || st + LimitState.WORDS > prog.state.length) return `limit: state ${st} out of range`;
  return null;
}

function unitName(unit: number): string {
  switch (unit) {
    case 1: return 'second';
    case 60: return 'minute';
    case 3600: return 'hour';
    case 86400: return 'day';
    case 604800: return 'week';
    default: return 'error';
  }
}

export function disasmLimit(_prog: Program, code: Int32Array, pc: number): string {
  const type = code[pc + Limit.TYPE] === NFT_LIMIT_PKT_BYTES ? 'bytes' : 'packets';
  return `rate ${code[pc + Limit.RATE]}/${unitName(code[pc + Limit.UNIT]!)} burst ${code[pc + Limit.BURST]} type ${type} flags 0x${code[pc + Limit.FLAGS]!.toString(16)} `;
}

/** nft_limit_init(): a full bucket at `nowNs`. */
export function initLimit(prog: Program, pc: number, nowNs: number): void {
  const code = prog.code;
  const st = code[pc + Limit.STATE]!;
  const rate = Math.max(1, code[pc + Limit.RATE]!);
  const nsecs = code[pc + Limit.UNIT]! * NSEC_PER_SEC;
  let burst = code[pc + Limit.BURST]!;
  let tokensMax: number;
  let cost = 0;
  if (code[pc + Limit.TYPE] === NFT_LIMIT_PKTS) {
    if (burst === 0) burst = NFT_LIMIT_PKT_BURST_DEFAULT;
    cost = Math.floor(nsecs / rate);
    tokensMax = cost * burst;
  } else tokensMax = Math.floor((nsecs * (rate + burst)) / rate);
  const s = prog.state;
  s[st + LimitState.TOKENS] = tokensMax;
  s[st + LimitState.LAST] = nowNs;
  s[st + LimitState.TOKENS_MAX] = tokensMax;
  s[st + LimitState.COST] = cost;
}

/** The cost of this packet (nft_limit_pkts_eval / nft_limit_bytes_eval). */
export function limitCost(code: Int32Array, pc: number, state: Float64Array, l3len: number): number {
  if (code[pc + Limit.TYPE] === NFT_LIMIT_PKTS) return state[code[pc + Limit.STATE]! + LimitState.COST]!;
  return Math.floor((code[pc + Limit.UNIT]! * NSEC_PER_SEC * l3len) / code[pc + Limit.RATE]!);
}

/** nft_limit_eval(): true when the packet is over the limit (before inversion). */
export function limitOver(state: Float64Array, st: number, cost: number, nowNs: number): boolean {
  // the elapsed time first: capture clocks (~1.7e18 ns) are past 2^53, where adding first would round the tokens
  let tokens = state[st + LimitState.TOKENS]! + (nowNs - state[st + LimitState.LAST]!);
  const max = state[st + LimitState.TOKENS_MAX]!;
  if (tokens > max) tokens = max;
  state[st + LimitState.LAST] = nowNs;
  const delta = tokens - cost;
  if (delta >= 0) {
    state[st + LimitState.TOKENS] = delta;
    return false;
  }
  state[st + LimitState.TOKENS] = tokens;
  return true;
}

export function evalLimit(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const s = ctx.prog.state;
  const cost = limitCost(code, pc, s, ctx.pkt.meta[M_LEN]!);
  const over = limitOver(s, code[pc + Limit.STATE]!, cost, ctx.env.nowNs);
  if (over !== ((code[pc + Limit.FLAGS]! & NFT_LIMIT_F_INV) !== 0)) ctx.code = NFT_BREAK;
}
