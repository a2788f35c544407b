/**
 * queue (net/netfilter/nft_queue.c, xt NFQUEUE/QUEUE): the verdict
 * NF_QUEUE with the queue number in the high 16 bits, plus
 * NF_VERDICT_FLAG_QUEUE_BYPASS with the bypass flag.
 *
 * Record: [op, num, total, flags]
 *   +1 num    first queue number (u16)
 *   +2 total  queues balanced over (≥ 1)
 *   +3 flags  NFT_QUEUE_FLAG_BYPASS 0x01, NFT_QUEUE_FLAG_CPU_FANOUT 0x02
 *
 * With total > 1 the kernel picks a queue by CPU (fanout) or by a flow hash
 * keyed with a boot-time random seed; the model picks num + cpu % total for
 * fanout and `num` otherwise (the hash is not reproducible anyway).
 */
import { Op } from '../opcodes.js';
import { M_CPU } from '../layout.js';
import { NF_QUEUE, NF_VERDICT_FLAG_QUEUE_BYPASS } from '../../core/netfilter.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import type { EvalCtx } from './common.js';

export const NFT_QUEUE_FLAG_BYPASS = 0x01;
export const NFT_QUEUE_FLAG_CPU_FANOUT = 0x02;

const QUEUE_NUM = 1;
const QUEUE_TOTAL = 2;
const QUEUE_FLAGS = 3;

export function emitQueue(b: Emitter, num: number, total = 1, flags = 0): void {
  b.emit([Op.QUEUE, num, total, flags]);
}

export function validateQueue(_prog: Program, code: Int32Array, pc: number): string | null {
  const num = code[pc + QUEUE_NUM]!;
  const total = code[pc + QUEUE_TOTAL]!;
  if (num < 0 || total < 1 || num + total - 1 > 0xffff) return `queue: queues ${num}..${num + total - 1} out of range (-ERANGE)`;
  if (code[pc + QUEUE_FLAGS]! & ~(NFT_QUEUE_FLAG_BYPASS | NFT_QUEUE_FLAG_CPU_FANOUT)) return 'queue: unknown flags (-EOPNOTSUPP)';
  return null;
}

export function disasmQueue(_prog: Program, code: Int32Array, pc: number): string {
  const num = code[pc + QUEUE_NUM]!;
  const total = code[pc + QUEUE_TOTAL]!;
  const flags = code[pc + QUEUE_FLAGS]!;
  return `num ${num}${total > 1 ? `-${num + total - 1}` : ''} ${flags ? `flags 0x${flags.toString(16)} ` : ''}`;
}

export function execQueue(code: Int32Array, pc: number, pkt: Packet): number {
  const total = code[pc + QUEUE_TOTAL]!;
  const flags = code[pc + QUEUE_FLAGS]!;
  let q = code[pc + QUEUE_NUM]!;
  if (total > 1 && flags & NFT_QUEUE_FLAG_CPU_FANOUT) q += pkt.meta[M_CPU]! % total;
  let v = NF_QUEUE | (q << 16);
  if (flags & NFT_QUEUE_FLAG_BYPASS) v |= NF_VERDICT_FLAG_QUEUE_BYPASS;
  return v;
}

export function evalQueue(ctx: EvalCtx, pc: number): void {
  ctx.code = execQueue(ctx.prog.code, pc, ctx.pkt);
}
