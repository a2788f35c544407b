/**
 * The xt compat expressions iptables-nft loads for `-m set` and `-j SET`
 * (net/netfilter/nft_compat.c running xt_set.c's set_match_v4 and
 * set_target_v3): they act on the node's ipsets (vm/ipset.ts IpSetStore,
 * VmEnv.ipsets), the same code the x_tables evaluator runs. Printed as
 * nft --debug=netlink prints compat expressions: `[ match name set rev 4 ]`,
 * `[ target name SET rev 3 ]`.
 *
 * Record: [op, pool]
 *   +1 pool  word offset of the XS_WORDS info words (vm/ipset.ts XS_*) in the constant pool
 */
import { Op } from '../opcodes.js';
import { NFT_BREAK, NFT_CONTINUE } from '../layout.js';
import type { Program, VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { XS_WORDS, xtSetMatch, xtSetTarget } from '../ipset.js';
import { poolOk, type EvalCtx } from './common.js';

const POOL = 1;
export const XT_SET_SIZE = 2;

/** Emits the match (`target` false) or the target with its info words. */
export function emitXtSet(b: Emitter, target: boolean, words: Int32Array): void {
  const bytes = new Uint8Array(words.buffer.slice(words.byteOffset, words.byteOffset + words.byteLength));
  b.emit([target ? Op.XT_SET_TARGET : Op.XT_SET_MATCH, b.pool(bytes)]);
}

export function validateXtSet(prog: Program, code: Int32Array, pc: number): string | null {
  return poolOk(prog, code[pc + POOL]!, XS_WORDS * 4) ? null : 'xt_set: info outside the constant pool';
}

export function disasmXtSet(_prog: Program, code: Int32Array, pc: number): string {
  return code[pc] === Op.XT_SET_TARGET ? 'name SET rev 3 ' : 'name set rev 4 ';
}

/**
 * The match: NFT_CONTINUE or NFT_BREAK; the target: NFT_CONTINUE (XT_CONTINUE).
 * Without the node's sets (an engine built alone) nothing is found and nothing changes.
 */
export function execXtSet(prog: Program, pc: number, pkt: Packet, env: VmEnv): number {
  const store = env.ipsets;
  const at = prog.code[pc + POOL]!;
  if (prog.code[pc] === Op.XT_SET_TARGET) {
    if (store !== null) xtSetTarget(store, prog.pool, at, pkt, env.ipsetOpt);
    return NFT_CONTINUE;
  }
  if (store === null) return NFT_BREAK;
  return xtSetMatch(store, prog.pool, at, pkt, env.ipsetOpt) ? NFT_CONTINUE : NFT_BREAK;
}

export function evalXtSet(ctx: EvalCtx, pc: number): void {
  const v = execXtSet(ctx.prog, pc, ctx.pkt, ctx.env);
  if (v !== NFT_CONTINUE) ctx.code = v;
}
