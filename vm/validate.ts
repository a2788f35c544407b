/**
 * The load-time verifier (nf_tables_api.c: expression init checks,
 * nft_chain_validate, nf_tables_check_loops). After validate(prog) returns,
 * the interpreter trusts every operand: register ranges, lengths, pool
 * offsets, set/counter/state indexes and jump targets are all in range, every
 * chain is a run of RULE records closed by END, and the chain graph has no
 * loop and no path deeper than NFT_JUMP_STACK_SIZE - 1 jumps from a base chain.
 *
 * It throws VmError (and nothing else) on the first problem.
 */
import { Op, OP_INFO, OP_MAX, Rec } from './opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, CH_HOOK, CH_NAME, CH_POLICY, CH_RULES, NFT_GOTO, NFT_JUMP, NFT_JUMP_STACK_SIZE,
} from './layout.js';
import { NF_ACCEPT, NF_DROP } from '../core/netfilter.js';
import { VmError, type Program } from './program.js';
import { EXPR_KINDS } from './expr/index.js';
import { verdictChain, verdictCode } from './expr/immediate.js';

/**
 * The chain that claimed record start `pc` first: chains 0..`upTo` walked
 * again as validate() walked them (all before `upTo` are valid, and `upTo`
 * is valid up to its second arrival at `pc`).
 */
function ownerOf(prog: Program, pc: number, upTo: number): number {
  const code = prog.code;
  for (let d = 0; d <= upTo; d++) {
    let at = prog.chains[d * CHAIN_WORDS + CH_FIRST]!;
    for (;;) {
      if (at === pc) return d;
      const op = code[at]!;
      if (op === Op.END) break;
      const next = at + (op >>> Rec.OP_BITS);
      for (let e = at + Rec.RULE_WORDS; e < next; e += OP_INFO[code[e]! & Rec.OP_MASK]!.size) if (e === pc) return d;
      at = next;
    }
  }
  return -1;
}

export function validate(prog: Program): void {
  const code = prog.code;
  const n = code.length;
  const chains = prog.chains;
  if (!(code instanceof Int32Array) || !(prog.pool instanceof Int32Array) || !(chains instanceof Int32Array)) throw new VmError('program arrays must be Int32Arrays');
  if (prog.pool8.buffer !== prog.pool.buffer || prog.pool8.length !== prog.pool.length * 4) throw new VmError('pool8 is not a view of the pool');
  if (chains.length % CHAIN_WORDS !== 0) throw new VmError('chain table size is not a multiple of CHAIN_WORDS');
  if (prog.counters.length % 2 !== 0) throw new VmError('counter storage is not in pairs');
  if (!Number.isInteger(prog.nrules) || prog.nrules < 0 || prog.srcmap.length !== prog.nrules * 2) throw new VmError('source map does not match the rule count');
  const nchains = chains.length / CHAIN_WORDS;
  const ruleSeen = new Uint8Array(prog.nrules);
  // record starts some chain has claimed, a bit a word (a word of the code each would be tens of MB
  // for a big table); which chain, only an error asks (ownerOf)
  const claimed = new Uint8Array((n >>> 3) + 1);
  // the chains' jump targets in one list: chain c's are edgeDest[edgeFirst[c], edgeFirst[c + 1])
  const edgeFirst = new Int32Array(nchains + 1);
  const edgeDest: number[] = [];

  for (let c = 0; c < nchains; c++) {
    const at = c * CHAIN_WORDS;
    const policy = chains[at + CH_POLICY]!;
    const name = chains[at + CH_NAME]!;
    const hook = chains[at + CH_HOOK]!;
    if (policy !== -1 && policy !== NF_ACCEPT && policy !== NF_DROP) throw new VmError(`chain ${c}: policy ${policy} is not accept/drop`);
    if (name < 0 || name >= prog.strings.length) throw new VmError(`chain ${c}: name string ${name} out of range`);
    if (hook < -1 || hook > 7 || (policy === -1 && hook !== -1)) throw new VmError(`chain ${c}: bad hook ${hook}`);
    edgeFirst[c] = edgeDest.length;
    let pc = chains[at + CH_FIRST]!;
    let rules = 0;
    for (;;) {
      if (pc < 0 || pc >= n) throw new VmError(`chain ${c}: record offset ${pc} outside the code`, pc);
      if ((claimed[pc >>> 3]! & (1 << (pc & 7))) !== 0) throw new VmError(`chain ${c}: records shared with chain ${ownerOf(prog, pc, c)}`, pc);
      claimed[pc >>> 3]! |= 1 << (pc & 7);
      const op = code[pc]!;
      if (op === Op.END) break;
      if ((op & Rec.OP_MASK) !== Op.RULE) throw new VmError(`chain ${c}: expected a rule header, found opcode ${op}`, pc);
      if (pc + Rec.RULE_WORDS > n) throw new VmError('truncated rule header', pc);
      const next = pc + (op >>> Rec.OP_BITS);
      const ri = code[pc + Rec.RULE_INDEX]!;
      if (next < pc + Rec.RULE_WORDS || next >= n) throw new VmError(`rule header: next offset ${next} out of range`, pc);
      if (ri < 0 || ri >= prog.nrules) throw new VmError(`rule header: rule index ${ri} out of range`, pc);
      if (ruleSeen[ri]) throw new VmError(`rule index ${ri} used twice`, pc);
      ruleSeen[ri] = 1;
      rules++;
      let e = pc + Rec.RULE_WORDS;
      while (e < next) {
        const eop = code[e]! & Rec.OP_MASK;
        let info = eop > 0 && eop < OP_MAX ? OP_INFO[eop] : undefined;
        // Only packed records carry operand bits above the opcode.
        if (info && !info.packed && code[e] !== eop) info = undefined;
        const kind = info ? EXPR_KINDS[eop] : undefined;
        if (!info || !kind) throw new VmError(`unknown expression opcode ${code[e]}`, e);
        if (e + info.size > next) throw new VmError(`${info.name}: record runs past the end of its rule`, e);
        const why = kind.validate(prog, code, e);
        if (why !== null) throw new VmError(why, e);
        if (eop === Op.VERDICT) {
          const v = verdictCode(code[e]!);
          if (v === NFT_JUMP || v === NFT_GOTO) edgeDest.push(verdictChain(code[e]!));
        }
        claimed[e >>> 3]! |= 1 << (e & 7);
        e += info.size;
      }
      pc = next;
    }
    if (rules !== chains[at + CH_RULES]) throw new VmError(`chain ${c}: rule count ${chains[at + CH_RULES]} but ${rules} rules`);
  }
  edgeFirst[nchains] = edgeDest.length;

  // nf_tables_check_loops: no cycle anywhere (-ELOOP).
  const color = new Uint8Array(nchains); // 0 new, 1 on stack, 2 done
  const depth = new Int32Array(nchains); // longest jump path below a chain
  const visit = (root: number): void => {
    // Iterative DFS (chain graphs can be deep; no recursion limits).
    const stack: number[] = [root];
    const iter: number[] = [0];
    color[root] = 1;
    while (stack.length) {
      const c = stack[stack.length - 1]!;
      const i = iter[iter.length - 1]!;
      const from = edgeFirst[c]!;
      const to = edgeFirst[c + 1]!;
      if (from + i < to) {
        iter[iter.length - 1] = i + 1;
        const t = edgeDest[from + i]!;
        if (color[t] === 1) throw new VmError(`chain loop through ${prog.strings[chains[t * CHAIN_WORDS + CH_NAME]!]} (-ELOOP)`);
        if (color[t] === 0) {
          color[t] = 1;
          stack.push(t);
          iter.push(0);
        }
      } else {
        let d = 0;
        for (let k = from; k < to; k++) d = Math.max(d, depth[edgeDest[k]!]! + 1);
        depth[c] = d;
        color[c] = 2;
        stack.pop();
        iter.pop();
      }
    }
  };
  for (let c = 0; c < nchains; c++) if (color[c] === 0) visit(c);
  // nft_chain_validate: a chain reached at level NFT_JUMP_STACK_SIZE is refused (-EMLINK).
  for (let c = 0; c < nchains; c++) {
    if (chains[c * CHAIN_WORDS + CH_POLICY] !== -1 && depth[c]! >= NFT_JUMP_STACK_SIZE) {
      throw new VmError(`chain ${prog.strings[chains[c * CHAIN_WORDS + CH_NAME]!]}: jumps nest ${depth[c]} deep, limit ${NFT_JUMP_STACK_SIZE - 1} (-EMLINK)`);
    }
  }
}
