/**
 * The emitter the compiler uses (nftables netlink_linearize.c + bpfilter's
 * fixups): declare chains, begin rules, emit expressions through the
 * vm/expr encoders, then finish() lays the records out, resolves chain
 * references, initialises expression state and validates.
 *
 *   const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
 *   b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
 *   b.rule('INPUT', { line: 3, col: 1 });
 *   emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 9, 1);
 *   emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [6]);
 *   emitVerdict(b, NFT_JUMP, 'SSH');
 *   const prog = b.finish();
 */
import { Op, opSize as opSizeOf, Rec } from './opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, CH_HOOK, CH_NAME, CH_POLICY, CH_RULES, NFT_REG_1, NFT_REG_MAX, NFT_REG_SIZE,
} from './layout.js';
import { NF_ACCEPT, NF_DROP } from '../core/netfilter.js';
import { VmError, type Program } from './program.js';
import type { NftSet } from './set.js';
import { validate } from './validate.js';
import type { Emitter } from './emit.js';
import type { XtExpr } from './expr/compat.js';
import { initLimit } from './expr/limit.js';
import { initNumgen } from './expr/numgen.js';
import { fuseRule } from './expr/fused.js';
import { Words } from './words.js';

export interface ChainOptions {
  /** NF_INET_* hook for a base chain. */
  hook?: number;
  /** NF_ACCEPT or NF_DROP: makes the chain a base chain. */
  policy?: number;
}

export interface SourcePos {
  line: number;
  col: number;
}

interface ChainDef {
  name: string;
  defined: boolean;
  hook: number;
  policy: number;
  /** How many rules the chain has (which ones: RI.CHAIN of the rules). */
  nrules: number;
}

/**
 * The words of a rule in ProgramBuilder.ruleInfo (RI.WORDS per rule): its chain, the block of
 * ruleBlocks that holds its words, its first word there and its word count (set when the rule
 * ends), its source position, its first fixup.
 */
const enum RI {
  CHAIN = 0,
  BLOCK = 1,
  START = 2,
  LEN = 3,
  LINE = 4,
  COL = 5,
  FIXUP = 6,
  WORDS = 7,
}

/**
 * Words per block of rule words. The rules' words go into blocks of this size, a rule whole in
 * one block, rather than into one buffer that doubles: no growth copies, no half-empty buffer,
 * no big transient buffers (external memory pressure makes V8 collect the whole heap).
 */
const BLOCK_WORDS = 1 << 16;

/**
 * The words of a chain reference in ProgramBuilder.fixups (FX.WORDS per reference, in rule
 * order): the word's position in its rule, the chain's index, and `shift` (-1: the word is the
 * chain index; else the chain index + 1 goes in the bits from `shift` up).
 */
const enum FX {
  AT = 0,
  CHAIN = 1,
  SHIFT = 2,
  WORDS = 3,
}

export interface FinishOptions {
  /** Run the load-time validator (default true). */
  validate?: boolean;
  /** Clock at creation (limit buckets start full at this time). */
  nowNs?: number;
  /** Run the peephole pass that picks superinstructions (default true). */
  fuse?: boolean;
}

export class ProgramBuilder implements Emitter {
  readonly family: number;
  readonly table: string;
  private chains: ChainDef[] = [];
  private chainByName = new Map<string, number>();
  /** The rules, RI.WORDS each (typed, not an object per rule: tables have hundreds of thousands). */
  private ruleInfo = new Words();
  private nrules = 0;
  /** The chain references of every rule, FX.WORDS each, in rule order. */
  private fixups = new Words();
  /** The current rule's index (-1: none yet) and its first word in the current block. */
  private cur = -1;
  private curStart = 0;
  /** The constant pool: the segments kept whole (poolKeep), then the words after them. */
  private poolSegs: Int32Array[] = [];
  private poolBase = 0;
  private poolWords = new Words();
  /** Every rule's expression words, rule after rule, in blocks (BLOCK_WORDS); `block` is the last, filled up to `fill`. */
  private ruleBlocks: Int32Array[] = [];
  private block = new Int32Array(0);
  private fill = 0;
  private strings: string[] = [];
  private stringIndex = new Map<string, number>();
  private sets: NftSet[] = [];
  private xts: XtExpr[] = [];
  private ncounters = 0;
  private nstate = 0;
  private regLow = NFT_REG_1;

  constructor(family: number, table: string) {
    this.family = family;
    this.table = table;
  }

  /** Declares a chain (a base chain when `policy` is given); returns its index. */
  chain(name: string, opts: ChainOptions = {}): number {
    let i = this.chainByName.get(name);
    if (i !== undefined && this.chains[i]!.defined) throw new VmError(`chain ${name} declared twice`);
    if (opts.policy !== undefined && opts.policy !== NF_ACCEPT && opts.policy !== NF_DROP) throw new VmError(`chain ${name}: policy must be NF_ACCEPT or NF_DROP`);
    if (i === undefined) i = this.add(name);
    const c = this.chains[i]!;
    c.defined = true;
    c.policy = opts.policy ?? -1;
    c.hook = opts.policy !== undefined ? (opts.hook ?? -1) : -1;
    return i;
  }

  /** Room for `n` more rules' bookkeeping at once (a compiler that knows its rule count). */
  expectRules(n: number): void {
    if (this.nrules === 0) this.ruleInfo = new Words(n * RI.WORDS);
  }

  /** The index of a declared or referenced chain (undefined: neither). */
  chainIndex(name: string): number | undefined {
    return this.chainByName.get(name);
  }

  /** Starts a rule at the end of `chain`; returns its rule index. Resets the register allocator. */
  rule(chain: string | number, pos?: SourcePos): number {
    const ci = typeof chain === 'number' ? chain : this.chainByName.get(chain);
    if (ci === undefined || !this.chains[ci]?.defined) throw new VmError(`rule in undeclared chain ${String(chain)}`);
    this.endRule();
    const idx = this.nrules++;
    const start = this.fill;
    const ri = this.ruleInfo;
    ri.reserve(RI.WORDS);
    ri.push(ci);
    ri.push(this.ruleBlocks.length - 1);
    ri.push(start);
    ri.push(0);
    ri.push(pos?.line ?? 0);
    ri.push(pos?.col ?? 0);
    ri.push(this.fixups.length / FX.WORDS);
    this.cur = idx;
    this.curStart = start;
    this.chains[ci]!.nrules++;
    this.regLow = NFT_REG_1;
    return idx;
  }

  /** Appends one record to the current rule; returns its word position inside the rule. For vm/expr encoders. */
  emit(words: readonly number[]): number {
    if (this.cur < 0) throw new VmError('expression outside a rule');
    const n = words.length;
    if (this.fill + n > this.block.length) this.newBlock(n);
    const blk = this.block;
    const at = this.fill - this.curStart;
    for (let i = 0; i < n; i++) blk[this.fill++] = words[i]! | 0;
    return at;
  }

  /** Overwrites the word at rule position `at` of the current rule. For vm/expr encoders. */
  patch(at: number, value: number): void {
    if (this.cur < 0 || at < 0 || at >= this.fill - this.curStart) throw new VmError('patch outside the current rule');
    this.block[this.curStart + at] = value | 0;
  }

  /** A fresh block for the current rule, which moves there with its words so far and `more` to come. */
  private newBlock(more: number): void {
    const have = this.fill - this.curStart;
    const blk = new Int32Array(Math.max(BLOCK_WORDS, have + more));
    blk.set(this.block.subarray(this.curStart, this.fill));
    this.ruleBlocks.push(blk);
    this.block = blk;
    this.curStart = 0;
    this.fill = have;
    const at = this.cur * RI.WORDS;
    this.ruleInfo.set(at + RI.BLOCK, this.ruleBlocks.length - 1);
    this.ruleInfo.set(at + RI.START, 0);
  }

  /** Records the current rule's word count (its words are complete). */
  private endRule(): void {
    if (this.cur >= 0) this.ruleInfo.set(this.cur * RI.WORDS + RI.LEN, this.fill - this.curStart);
  }

  /**
   * Records that the word at rule position `at` is the index of chain `name`
   * (patched at finish). With `shift`, the word is a packed one and the chain
   * index + 1 is ORed into its bits from `shift` up.
   */
  fixupChain(at: number, name: string, shift?: number): void {
    if (this.cur < 0) throw new VmError('chain reference outside a rule');
    const fx = this.fixups;
    fx.reserve(FX.WORDS);
    fx.push(at);
    fx.push(this.ref(name));
    fx.push(shift ?? -1);
  }

  /** Adds data (bytes in register order) to the constant pool; returns its word offset. */
  pool(bytes: ArrayLike<number>): number {
    const pw = this.poolWords;
    const off = this.poolBase + pw.length;
    const n = bytes.length;
    pw.reserve((n + 3) >>> 2);
    for (let w = 0; w < n; w += 4) {
      let v = 0;
      for (let i = 0; i < 4 && w + i < n; i++) v |= (bytes[w + i]! & 0xff) << (8 * i);
      pw.push(v);
    }
    return off;
  }

  /** Adds `words` to the constant pool as they are, keeping the array (see Emitter.poolKeep). */
  poolKeep(words: Int32Array): number {
    this.poolSeal();
    const off = this.poolBase;
    this.poolSegs.push(words);
    this.poolBase += words.length;
    return off;
  }

  /** Ends the pool's current segment of words. */
  private poolSeal(): void {
    const n = this.poolWords.length;
    if (n === 0) return;
    this.poolSegs.push(this.poolWords.take());
    this.poolBase += n;
  }

  /** The pool in one exact array: a lone kept segment as it is, else the segments copied once. */
  private poolArray(): Int32Array {
    this.poolSeal();
    const segs = this.poolSegs;
    const only = segs.length === 1 ? segs[0]! : undefined;
    if (only && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength) return only;
    const pool = new Int32Array(this.poolBase);
    let at = 0;
    for (const s of segs) {
      pool.set(s, at);
      at += s.length;
    }
    return pool;
  }

  /** Allocates a counter pair. */
  counter(): number {
    return this.ncounters++;
  }

  /** Allocates `n` doubles of expression state. */
  state(n: number): number {
    const at = this.nstate;
    this.nstate += n;
    return at;
  }

  /** Interns a string (chain names, set names, log prefixes). */
  str(s: string): number {
    let i = this.stringIndex.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.stringIndex.set(s, i);
    }
    return i;
  }

  /** Adds a set object; lookups name it. */
  addSet(set: NftSet): number {
    if (this.sets.some((s) => s.name === set.name)) throw new VmError(`set ${set.name} added twice`);
    this.sets.push(set);
    return this.sets.length - 1;
  }

  setIndex(name: string): number {
    const i = this.sets.findIndex((s) => s.name === name);
    if (i < 0) throw new VmError(`set ${name} does not exist`);
    return i;
  }

  xt(x: XtExpr): number {
    this.xts.push(x);
    return this.xts.length - 1;
  }

  /** nftables get_register(): the next free register for a value of `len` bytes (UAPI number). */
  getRegister(len = NFT_REG_SIZE): number {
    const n = Math.max(1, Math.ceil(len / NFT_REG_SIZE));
    if (this.regLow + n - 1 > NFT_REG_MAX) throw new VmError(`register allocation: ${len} bytes do not fit`);
    const reg = this.regLow;
    this.regLow += n;
    return reg;
  }

  /** nftables release_register(). */
  releaseRegister(len = NFT_REG_SIZE): void {
    const n = Math.max(1, Math.ceil(len / NFT_REG_SIZE));
    if (this.regLow - n < NFT_REG_1) throw new VmError('register allocation: release without get');
    this.regLow -= n;
  }

  finish(opts: FinishOptions = {}): Program {
    for (const c of this.chains) if (!c.defined) throw new VmError(`chain ${c.name} is referenced but not declared (-ENOENT)`);
    this.endRule();
    const nr = this.nrules;
    const info = this.ruleInfo.view(0, nr * RI.WORDS);
    const nfix = this.fixups.length / FX.WORDS;
    const fx = this.fixups.view(0, nfix * FX.WORDS);
    const blocks = this.ruleBlocks;
    // the peephole pass, each rule in place in its block (it moves the rule's chain references with their
    // records), then the code's exact size: a RULE header and the fused words a rule, an END a chain. The
    // code of a big table is then allocated once at its size, neither grown nor copied to size at the end
    let size = this.chains.length;
    for (let ri = 0; ri < nr; ri++) {
      const at = ri * RI.WORDS;
      const len = info[at + RI.LEN]!;
      if (opts.fuse !== false && len > 0) {
        const start = info[at + RI.START]!;
        const f0 = info[at + RI.FIXUP]!;
        const f1 = ri + 1 < nr ? info[(ri + 1) * RI.WORDS + RI.FIXUP]! : nfix;
        const fused = fuseRule(blocks[info[at + RI.BLOCK]!]!, start, start + len, fx, f0, f1, FX.WORDS) - start;
        info[at + RI.LEN] = fused;
        size += fused;
      } else {
        size += len;
      }
      size += Rec.RULE_WORDS;
    }
    const code = new Int32Array(size);
    let pc = 0;
    // the rules chain by chain, in the order each chain got them (a counting sort by chain, not a list per chain)
    const nch = this.chains.length;
    const firstOf = new Int32Array(nch + 1);
    for (let ci = 0; ci < nch; ci++) firstOf[ci + 1] = firstOf[ci]! + this.chains[ci]!.nrules;
    const byChain = new Int32Array(nr);
    const fill = firstOf.slice(0, nch);
    for (let ri = 0; ri < nr; ri++) byChain[fill[info[ri * RI.WORDS + RI.CHAIN]!]!++] = ri;
    const chains = new Int32Array(nch * CHAIN_WORDS);
    this.chains.forEach((c, ci) => {
      const at = ci * CHAIN_WORDS;
      chains[at + CH_FIRST] = pc;
      chains[at + CH_POLICY] = c.policy;
      chains[at + CH_NAME] = this.str(c.name);
      chains[at + CH_HOOK] = c.hook;
      chains[at + CH_RULES] = c.nrules;
      for (let k = firstOf[ci]!; k < firstOf[ci + 1]!; k++) {
        const ri = byChain[k]!;
        const len = info[ri * RI.WORDS + RI.LEN]!;
        const skip = Rec.RULE_WORDS + len;
        if (skip >= 2 ** (32 - Rec.OP_BITS)) throw new VmError(`rule ${ri}: ${len} words of expressions are too many`);
        code[pc++] = Op.RULE | (skip << Rec.OP_BITS);
        code[pc++] = ri;
        if (len > 0) {
          // a rule is a few words: copied one by one, not through a view made per rule
          const blk = blocks[info[ri * RI.WORDS + RI.BLOCK]!]!;
          const start = info[ri * RI.WORDS + RI.START]!;
          for (let w = 0; w < len; w++) code[pc + w] = blk[start + w]!;
        }
        // the chain references, at their (fused) positions
        const f0 = info[ri * RI.WORDS + RI.FIXUP]!;
        const f1 = ri + 1 < nr ? info[(ri + 1) * RI.WORDS + RI.FIXUP]! : nfix;
        for (let f = f0; f < f1; f++) {
          const w = pc + fx[f * FX.WORDS + FX.AT]!;
          const idx = fx[f * FX.WORDS + FX.CHAIN]!;
          const shift = fx[f * FX.WORDS + FX.SHIFT]!;
          if (shift < 0) code[w] = idx;
          else {
            if (idx + 1 > 0xffffffff >>> shift) throw new VmError(`chain ${this.chains[idx]!.name}: index ${idx} too large for a packed reference`);
            code[w] = code[w]! | ((idx + 1) << shift);
          }
        }
        pc += len;
      }
      code[pc++] = Op.END;
    });
    const srcmap = new Int32Array(nr * 2);
    for (let i = 0; i < nr; i++) {
      srcmap[2 * i] = info[i * RI.WORDS + RI.LINE]!;
      srcmap[2 * i + 1] = info[i * RI.WORDS + RI.COL]!;
    }
    const pool = this.poolArray();
    const prog: Program = Object.freeze({
      family: this.family,
      table: this.table,
      code,
      pool,
      pool8: new Uint8Array(pool.buffer),
      chains,
      strings: Object.freeze(this.strings.slice()),
      sets: Object.freeze(this.sets.slice()),
      counters: new Float64Array(this.ncounters * 2),
      state: new Float64Array(this.nstate),
      srcmap,
      nrules: nr,
      xt: Object.freeze(this.xts.slice()),
    });
    if (opts.validate !== false) validate(prog);
    resetState(prog, opts.nowNs ?? 0);
    return prog;
  }

  private ref(name: string): number {
    const i = this.chainByName.get(name);
    return i === undefined ? this.add(name) : i;
  }

  /** A chain not seen before (its name not in chainByName). */
  private add(name: string): number {
    const i = this.chains.length;
    this.chains.push({ name, defined: false, hook: -1, policy: -1, nrules: 0 });
    this.chainByName.set(name, i);
    return i;
  }
}

/** Zeroes the counters and sets expression state to its creation values (full limit buckets at `nowNs`). */
export function resetState(prog: Program, nowNs = 0): void {
  prog.counters.fill(0);
  prog.state.fill(0);
  const code = prog.code;
  let pc = 0;
  while (pc < code.length) {
    const op = code[pc]! & Rec.OP_MASK;
    if (op === Op.LIMIT) initLimit(prog, pc, nowNs);
    else if (op === Op.NUMGEN) initNumgen(prog, pc);
    const size = opSizeOf(op);
    if (size === 0) break;
    pc += size;
  }
}

