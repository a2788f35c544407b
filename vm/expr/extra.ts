/**
 * The interpreter's single call site for the expression kinds added with
 * the compiler (ct, fib, xt_l4, reject, queue, nat, the x_tables compat match/target) and the optimizer
 * (classify): they are rare on the fast path, so they share one `case` that
 * calls here. Returns NFT_CONTINUE, NFT_BREAK, a verdict, or CLS_JUMP
 * (classify: go on at clsPc[0]).
 */
import { Op, Rec } from '../opcodes.js';
import { NFT_BREAK } from '../layout.js';
import type { NftRegs, Program, VmEnv } from '../program.js';
import type { Packet } from '../packet.js';
import { execCt } from './ct.js';
import { execFib } from './fib.js';
import { execXtL4 } from './xtl4.js';
import { execReject } from './reject.js';
import { execQueue } from './queue.js';
import { execNat } from './nat.js';
import { execClassify } from './classify.js';
import { execXtMatch } from './xtmatch.js';
import { execXtSet } from './xtset.js';
import { execCompat } from './compat.js';

/** The opcodes execExtra runs (the interpreter's shared case). */
export const EXTRA_OPS: ReadonlySet<number> = new Set([Op.CT_GET, Op.CT_SET, Op.FIB, Op.XT_L4, Op.REJECT, Op.QUEUE, Op.NAT, Op.CLASSIFY, Op.XT_MATCH, Op.XT_SET_MATCH, Op.XT_SET_TARGET, Op.MATCH, Op.TARGET]);

export function execExtra(prog: Program, pc: number, pkt: Packet, regs: NftRegs, env: VmEnv, chain: number, rule: number): number {
  const code = prog.code;
  switch (code[pc]! & Rec.OP_MASK) {
    case Op.CT_GET:
    case Op.CT_SET:
      return execCt(code, pc, pkt, regs, env);
    case Op.FIB:
      return execFib(prog, code, pc, pkt, regs, env);
    case Op.XT_L4:
      return execXtL4(code, pc, pkt, env, chain, rule);
    case Op.REJECT:
      return execReject(pc, env, chain, rule);
    case Op.QUEUE:
      return execQueue(code, pc, pkt);
    case Op.NAT:
      return execNat(prog, pc, pkt, env, chain, rule);
    case Op.CLASSIFY:
      return execClassify(prog, pc, pkt);
    case Op.XT_MATCH:
      return execXtMatch(prog, pc, pkt, regs, env, chain, rule);
    case Op.XT_SET_MATCH:
    case Op.XT_SET_TARGET:
      return execXtSet(prog, pc, pkt, env);
    case Op.MATCH:
    case Op.TARGET:
      return execCompat(prog, pc, pkt, env, chain, rule);
    default:
      return NFT_BREAK;
  }
}
