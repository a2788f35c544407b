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
 * With total > 1 the kernel picks num + cpu % total with the CPU fanout
 * flag, else nfqueue_hash() (include/net/netfilter/nf_queue.h, Linux 6.18):
 * num + reciprocal_scale(hash, total), the hash a jhash_3words of the
 * addresses ordered so both directions of a flow meet in one queue, keyed
 * with jhash_initval. The kernel draws that key once (init_hashrandom(),
 * get_random_u32() until non-zero) and never shows it; the model keys with
 * NFQUEUE_JHASH_INITVAL, so a flow's queue is the kernel's function of the
 * flow under that key: flows spread and stay together as in the kernel, the
 * queue number of one flow can differ from a given machine's. Without a
 * listener (the only queue state a snapshot holds) the fate does not depend
 * on the number: bypass accepts, else the packet is dropped.
 */
import { Op } from '../opcodes.js';
import { F_MAC_HEADER, M_CPU, M_FLAGS, M_MACOFF, M_NFPROTO, M_NHOFF } from '../layout.js';
import { NF_QUEUE, NF_VERDICT_FLAG_QUEUE_BYPASS, NFPROTO_BRIDGE, NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { forceU32, jhash3words } from '../jhash.js';
import { reciprocalScale } from './numgen.js';
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

/** The model's jhash_initval (the kernel's is a random non-zero u32 drawn at the first rule load). */
export const NFQUEUE_JHASH_INITVAL = 0x2545f491;

/** A big-endian u32 of the frame, as (__force u32) reads it on a little-endian host. */
function rawWord(d: Uint8Array, at: number): number {
  return forceU32(((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) | 0);
}

/** hash_v4(): the smaller address (as the CPU compares the raw words) first, then the protocol. */
function hashV4(d: Uint8Array, nh: number, initval: number): number {
  const s = rawWord(d, nh + 12), t = rawWord(d, nh + 16);
  const proto = d[nh + 9]!;
  return (s >>> 0) < (t >>> 0) ? jhash3words(s, t, proto, initval) : jhash3words(t, s, proto, initval);
}

/** hash_v6(): words 3 of both addresses ordered, then the smaller word 1. */
function hashV6(d: Uint8Array, nh: number, initval: number): number {
  const s3 = rawWord(d, nh + 8 + 12), t3 = rawWord(d, nh + 24 + 12);
  const s1 = rawWord(d, nh + 8 + 4), t1 = rawWord(d, nh + 24 + 4);
  const lt3 = (s3 >>> 0) < (t3 >>> 0);
  const a = lt3 ? s3 : t3, b = lt3 ? t3 : s3;
  const c = (s1 >>> 0) < (t1 >>> 0) ? s1 : t1;
  return jhash3words(a, b, c, initval);
}

/** nfqueue_hash(skb, queue, queues_total, family, initval). */
export function nfqueueHash(pkt: Packet, queue: number, total: number, initval: number): number {
  const m = pkt.meta;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  let h: number;
  switch (m[M_NFPROTO]) {
    case NFPROTO_IPV4:
      h = nh + 20 <= pkt.len ? hashV4(d, nh, initval) : 0;
      break;
    case NFPROTO_IPV6:
      h = nh + 40 <= pkt.len ? hashV6(d, nh, initval) : 0;
      break;
    case NFPROTO_BRIDGE: {
      // hash_bridge(): by eth_hdr(skb)->h_proto; 0 for other protocols or a short header
      h = 0;
      if (m[M_FLAGS]! & F_MAC_HEADER) {
        const mac = m[M_MACOFF]!;
        const proto = (d[mac + 12]! << 8) | d[mac + 13]!;
        if (proto === 0x0800 && nh + 20 <= pkt.len) h = hashV4(d, nh, initval);
        else if (proto === 0x86dd && nh + 40 <= pkt.len) h = hashV6(d, nh, initval);
      }
      break;
    }
    default:
      return queue;
  }
  return (queue + reciprocalScale(h, total)) & 0xffff;
}

export function execQueue(code: Int32Array, pc: number, pkt: Packet): number {
  const total = code[pc + QUEUE_TOTAL]!;
  const flags = code[pc + QUEUE_FLAGS]!;
  let q = code[pc + QUEUE_NUM]!;
  if (total > 1) {
    if (flags & NFT_QUEUE_FLAG_CPU_FANOUT) q += pkt.meta[M_CPU]! % total;
    else q = nfqueueHash(pkt, q, total, NFQUEUE_JHASH_INITVAL);
  }
  let v = NF_QUEUE | (q << 16);
  if (flags & NFT_QUEUE_FLAG_BYPASS) v |= NF_VERDICT_FLAG_QUEUE_BYPASS;
  return v;
}

export function evalQueue(ctx: EvalCtx, pc: number): void {
  ctx.code = execQueue(ctx.prog.code, pc, ctx.pkt);
}
