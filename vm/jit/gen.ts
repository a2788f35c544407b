/**
 * The code generator of the execution tier: each chain of a verified
 * Program becomes one or more JavaScript functions ("segments", a run of
 * consecutive rules each), where every record is straight-line code over
 * the typed arrays the interpreter (vm/interp.ts) reads: the packet data and
 * metadata, the register block, the program's counters, state and pool.
 * Operands are decoded here, once, and enter the source as int32 literals
 * (vm/jit/src.ts is the only way text enters it).
 *
 * Shape of a segment (pc: the record to start at, a rule header or END):
 *
 *   switch (slotAt[pc]) {     // the case number of the rule header pc
 *     default: out[OUT_PC] = pc; return SEG_GO;   // another segment's rule
 *     case <rule header>: r: { ...records; a failed test is `break r`... }
 *     case <next rule header>: ...
 *     case <END>: return NFT_CONTINUE;
 *   }
 *   out[OUT_PC] = <first rule of the next segment>; return SEG_GO;
 *
 * A rule falls through into the next one as the interpreter goes from header
 * to header; a verdict returns (the driver, vm/jit/index.ts, does the
 * jump stack exactly as nftDoChain). Records the generator does not inline
 * call the per-expression evaluation (vm/jit/index.ts jitFallback: the
 * interpreter's execExtra for the kinds it calls, the expression kind's eval
 * otherwise), so an expression kind added later runs without a change here.
 * A classifier (inlined: a call of execClassify, the Linear Bit Vector
 * Search over the typed arrays of its pool data) or a fallback that moves to
 * another rule header returns to the driver, which enters the segment of
 * that rule at its case number (slotAt: a jump table; no loop in a segment:
 * simple control flow the optimizing compiler handles quickly); a fallback
 * that moves within its rule finishes the rule there (jitWithin).
 *
 * Segments stay small enough for the optimizing compiler (it skips very
 * large functions): a chain is cut every SEGMENT_WORDS words of records.
 */
import { Op, OP_INFO, Rec } from '../opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, F_L4PROTO, F_MAC_HEADER, IFNAMSIZ, M_CPU, M_END, M_FLAGS, M_FRAGOFF, M_IIF, M_IIFGROUP,
  M_IIFNAME, M_IIFTYPE, M_CT_DIR, M_CT_STATUS, M_CT_MARK, M_L4PROTO, M_LEN, M_MACOFF, M_MARK, M_NFPROTO, M_NHOFF, M_OIF, M_OIFGROUP, M_OIFNAME,
  M_OIFTYPE, M_PKTTYPE, M_PRIORITY, M_PROTOCOL, M_SECMARK, M_SKGID, M_SKUID, M_THOFF, NFT_BITWISE_MASK_XOR, NFT_BREAK,
  NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_CONTINUE, NFT_LIMIT_F_INV,
  NFT_LOOKUP_F_INV, NFT_META_CPU, NFT_META_IIF, NFT_META_IIFGROUP, NFT_META_IIFNAME, NFT_META_BRI_IIFNAME, NFT_META_BRI_OIFNAME, M_BRIINAME, M_BRIONAME, NFT_META_IIFTYPE,
  NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK, NFT_META_NFPROTO, NFT_META_OIF, NFT_META_OIFGROUP,
  NFT_META_OIFNAME, NFT_META_OIFTYPE, NFT_META_PKTTYPE, NFT_META_PRANDOM, NFT_META_PRIORITY, NFT_META_PROTOCOL,
  NFT_META_SECMARK, NFT_META_SKGID, NFT_META_SKUID, NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER,
  NFT_PAYLOAD_TRANSPORT_HEADER, NFT_RANGE_EQ, PACKET_LOOPBACK, TRACE_LOG,
} from '../layout.js';
import { chainCount, type Program } from '../program.js';
import { Meta } from '../expr/meta.js';
import { Bitwise, Bitwise32 } from '../expr/bitwise.js';
import { Counter } from '../expr/counter.js';
import { Immediate, Verdict } from '../expr/immediate.js';
import { Lookup } from '../expr/lookup.js';
import { Range } from '../expr/range.js';
import { Limit } from '../expr/limit.js';
import { Payload, PayloadFast } from '../expr/payload.js';
import { Cmp, CmpEq32 } from '../expr/cmp.js';
import { bswap32, L4protoCmp, MetaCmp, PayloadCmp, RandomCmp } from '../expr/fused.js';
import { xtL4Hdrlen } from '../expr/xtl4.js';
import { CT_KEY, CT_REG, NFT_CT_DIRECTION, NFT_CT_MARK, NFT_CT_STATE, NFT_CT_STATUS, NFT_CT_XT_STATE } from '../expr/ct.js';
import { JitSource, jitName, jitParam } from './src.js';

/** Segment results besides verdicts: go on at out[OUT_PC] (another segment). */
export const SEG_GO = -8;
/** jitWithin: the jump left the rule; dispatch on clsPc[0]. */
export const WITHIN_DISPATCH = -7;
/** Words of the driver's out array: the pc to go on at, the next rule of a verdict's rule, a jump's target chain. */
export const OUT_PC = 0;
export const OUT_NEXT = 1;
export const OUT_TARGET = 2;

/** Words of records after which a chain is cut into a new segment. */
const SEGMENT_WORDS = 600;
/** Loops (runs of rules of one shape) after which a chain is cut into a new segment: the optimizing compiler's time grows steeply with the loops of one function. */
const SEGMENT_LOOPS = 8;
/** Consecutive rules of one shape from which they run as a loop over their parameters. */
const RUN_MIN = 4;

/**
 * How each opcode runs in the tier: inlined code, a direct call of the
 * interpreter's execExtra, or the per-expression fallback. RULE and END are structure.
 */
export type JitMode = 'structure' | 'inline' | 'call' | 'fallback';

/**
 * Kinds the interpreter hands to execExtra that never move (CLS_JUMP), so
 * generated code calls execExtra itself (CT_GET too, for keys it does not inline).
 */
const CALLED: readonly number[] = [Op.CT_SET, Op.FIB, Op.REJECT, Op.QUEUE, Op.NAT, Op.XT_SET_MATCH, Op.XT_SET_TARGET, Op.MATCH];
const CALLED_SET: ReadonlySet<number> = new Set(CALLED);

/** The opcodes the generator inlines (others call the fallback; META_GET with a key not listed below does too). */
const INLINED: ReadonlySet<number> = new Set([
  Op.PAYLOAD, Op.PAYLOAD_FAST, Op.PAYLOAD_CMP, Op.META_CMP, Op.CMP, Op.CMP_EQ32, Op.BITWISE, Op.BITWISE32, Op.RANGE,
  Op.META_GET, Op.IMMEDIATE, Op.IMMEDIATE32, Op.VERDICT, Op.COUNTER, Op.LOOKUP, Op.LIMIT, Op.LOG, Op.CLASSIFY, Op.XT_L4,
  Op.CT_GET, Op.RANDOM_CMP, Op.L4PROTO_CMP, ...CALLED,
]);

export function jitMode(op: number): JitMode {
  if (op === Op.RULE || op === Op.END) return 'structure';
  if (CALLED_SET.has(op)) return 'call';
  return INLINED.has(op) ? 'inline' : 'fallback';
}

export interface GenOptions {
  /** false: every expression goes through the fallback (tests of the fallback path). */
  inline?: boolean;
  /** Words of records per segment (default SEGMENT_WORDS; tests cut every rule into its own). */
  segmentWords?: number;
  /** Consecutive rules of one shape that run as a loop (default RUN_MIN; tests run every rule as one). */
  runMin?: number;
}

/** The generated segments of a program: source per segment, the segment of every rule header and END. */
export interface GenResult {
  readonly sources: string[];
  readonly segAt: Int32Array;
  /**
   * The case number of each rule header and END within its segment (0, 1, ...;
   * -1 elsewhere): a segment switches on slotAt[pc], dense small integers the
   * compilers turn into a jump table, so entering a segment at any of its
   * rules (a classifier's move) costs one indexed jump, not a case-by-case search.
   */
  readonly slotAt: Int32Array;
  /** The row of each rule of a run within it (Segment.text). */
  readonly rowAt: Int32Array;
  /** The start of the block of parameters of the segment of each rule header and END (Segment.text). */
  readonly baseAt: Int32Array;
  /** The parameter table: each segment's block (the rows of its runs, then its other parameters). */
  readonly params: Int32Array;
}

/**
 * Packet loads of a segment, by load key: each distinct (base, offset,
 * length) of a packed payload record is loaded once when the segment is
 * entered, into a local pair kN (1 loaded, 2 out of bounds: the record
 * BREAKs) and vN (the value). No expression writes the packet during a run
 * (the interpreter's fast path relies on the same), so the loads of a chain
 * of rules testing the same fields cost one load each.
 */
class LoadCache {
  private readonly keys = new Map<number, number>();
  /** A packed record of each key, in slot order. */
  readonly records: number[] = [];
  /** The cache slot of the packed record `e`. */
  slot(e: number): number {
    const k = e & (PayloadFast.LOAD_KEY | PayloadFast.KFAST);
    let i = this.keys.get(k);
    if (i === undefined) {
      i = this.records.length;
      this.keys.set(k, i);
      this.records.push(e);
    }
    return i;
  }
}

/** A rule's generated code: its shape (the source with parameters read from a row) and the row. */
interface RuleCode {
  /** The rule header. */
  readonly pc: number;
  /** null for a rule that extends a run past RUN_MIN (the run is written from its first rule). */
  readonly src: JitSource | null;
  readonly shape: string;
  readonly params: number[];
}

/**
 * A segment: each rule is written to `body`, then kept (RuleCode); the
 * prologue (with the load cache's locals) and the rules make the source.
 * Consecutive rules of one shape (at least RUN_MIN: rules that differ only
 * in their parameters, e.g. a chain of `-s A -p tcp --dport N -j DROP`)
 * become one loop over their rows of the parameter table; the others are
 * written out with their parameters as literals.
 */
class Segment {
  /** Consecutive rules of one shape from which they run as a loop. */
  constructor(private readonly runMin: number) {}
  body = new JitSource();
  readonly cache = new LoadCache();
  readonly rules: RuleCode[] = [];
  /** Words of code so far (a rule that extends a run costs none), and the loops so far. */
  words = 0;
  loops = 0;
  private runLen = 0;
  /** The register slot whose value the local x holds after the record just emitted (-1: none). */
  xslot = -1;
  /** Set by a record that leaves its register's value in x. */
  xset = false;
  /**
   * The records of the rule so far have no effect but register writes and
   * read only the packet and registers (PURE): a rule failing the next
   * compare has the effects every rule of its shape has when it fails it.
   */
  pure = false;
  /**
   * The register slot every record of the rule so far wrote, when each was a
   * load-and-compare of a value the packet fixes for the whole run (an
   * L4PROTO_CMP, a PAYLOAD_CMP of the load cache): -2 before the first
   * record, -1 once another record or another slot came. A rule of a run
   * failing any of those compares leaves that slot alone changed, and the
   * next rule of the run writes it first: a compound skip (JitSource.skip's
   * term) passes over rules that fail any of them.
   */
  fused = -2;
  /** Keeps the rule at `pc` just written to `body` (`words` long), and starts a new body. */
  endRule(pc: number, words: number): void {
    const { text, params } = this.body.shape();
    const last = this.rules[this.rules.length - 1];
    const same = last !== undefined && last.shape === text;
    this.runLen = same ? this.runLen + 1 : 1;
    if (this.runLen < this.runMin) this.words += words;
    else if (this.runLen === this.runMin) this.loops++;
    // a run keeps one copy of its shape, and the source of its first rules only
    this.rules.push({ pc, src: this.runLen > this.runMin ? null : this.body, shape: same ? last.shape : text, params });
    this.body = new JitSource();
  }
  /**
   * The source: prologue, the switch over the rules, then the segment's
   * end: END at `end` (the chain's end), or a move to the rule at `next`.
   * Sets the case number (slotAt) of each rule header and END: a rule of its
   * own has its case, a run one case for all its rules, entered at the row
   * rowAt[pc] (0 when it is entered by falling through). Every parameter is
   * read from the segment's block of the parameter table, `P[B + k]` (B:
   * baseAt of the pc it is entered at): the rows of its runs first, then
   * its other parameters in the order of the source. So segments that
   * differ only in their parameters (the chains kube-proxy writes per
   * Service and endpoint: KUBE-SVC-*, KUBE-SEP-*) have the same source and
   * share one function. The block's values are in `block`; the text is the
   * source after the prologue all segments share (PROLOGUE).
   */
  text(slotAt: Int32Array, rowAt: Int32Array, end: number, next: number): { text: string; block: number[] } {
    const block: number[] = [];
    const s = new JitSource();
    for (const [i, e] of this.cache.records.entries()) {
      const len = ((e >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
      const b = fastBase(e);
      s.js`let k${i} = 1, v${i} = 0;
at = ${b} + ${(e >>> PayloadFast.OFFSET_SHIFT) & PayloadFast.OFFSET_MASK};
if (${b} < 0 || at + ${len} > end) k${i} = 2;
else {
`;
      emitLoad(s, len);
      s.js`v${i} = x;
}
`;
    }
    s.js`switch (slotAt[pc]) {
default: out[${OUT_PC}] = pc; return ${SEG_GO};
`;
    const rules = this.rules;
    let slot = 0;
    for (let r = 0; r < rules.length; ) {
      let n = 1;
      while (r + n < rules.length && rules[r + n]!.shape === rules[r]!.shape) n++;
      if (n < this.runMin) {
        for (let k = r; k < r + n; k++) {
          slotAt[rules[k]!.pc] = slot;
          s.js`case ${slot++}:
`.append(rules[k]!.src!);
        }
      } else {
        // a parameter every rule of the run agrees on stays a literal (a run
        // of one rule, only with GenOptions.runMin, reads all from its row)
        const first = rules[r]!.params;
        const row: number[] = [];
        let w = 0;
        for (let j = 0; j < first.length; j++) {
          let same = n > 1;
          for (let k = r + 1; k < r + n && same; k++) same = rules[k]!.params[j] === first[j];
          row.push(same ? -1 : w++);
        }
        const base = block.length;
        for (let k = r; k < r + n; k++) {
          const ps = rules[k]!.params;
          for (let j = 0; j < ps.length; j++) if (row[j]! >= 0) block.push(ps[j]!);
          slotAt[rules[k]!.pc] = slot;
          rowAt[rules[k]!.pc] = k - r;
        }
        s.js`pc = ${jitParam(rules[r]!.pc)};
case ${slot++}:
for (i = rowAt[pc]; i < ${n}; i++) {
q = B + ${base} + i * ${w};
`;
        s.appendRow(rules[r]!.src!, row, n, w);
        s.js`}
`;
      }
      r += n;
    }
    if (end >= 0) {
      slotAt[end] = slot;
      s.js`case ${slot}: return ${NFT_CONTINUE};
}
};
`;
    } else s.js`}
out[${OUT_PC}] = ${jitParam(next)}; return ${SEG_GO};
};
`;
    return { text: s.blockText(block), block };
  }
}

/** The prologue every segment shares: program arrays and helpers from the kit, per-run locals from the packet. */
const PROLOGUE = new JitSource().js`const code = K.code, pool = K.pool, pool8 = K.pool8, counters = K.counters, state = K.state, sets = K.sets;
const out = K.out, clsPc = K.clsPc, fb = K.fallback, traceRecord = K.traceRecord;
const limitOver = K.limitOver, limitCost = K.limitCost, prandomU32 = K.prandomU32, pkttypeLoopback = K.pkttypeLoopback;
const copy8 = K.copy8, cmp8 = K.cmp8, extra = K.extra, ctStateWord = K.ctStateWord, ctXtStateWord = K.ctXtStateWord;
const prog = K.prog, classify = K.classify, slotAt = K.slotAt, rowAt = K.rowAt, baseAt = K.baseAt, P = K.params;
return function segment(pc, pkt, regs, env) {
const B = baseAt[pc];
const data = pkt.data, meta = pkt.meta, r32 = regs.r32, r8 = regs.r8;
const nh = meta[${M_NHOFF}];
const thk = (meta[${M_FLAGS}] & ${F_L4PROTO}) !== 0 ? meta[${M_THOFF}] : -1;
const th = meta[${M_FRAGOFF}] === 0 ? thk : -1;
const end = meta[${M_END}];
const l4ok = (meta[${M_FLAGS}] & ${F_L4PROTO}) !== 0;
const l4 = meta[${M_L4PROTO}] & 255;
let v = 0, x = 0, at = 0, diff = 0, i = 0, w = 0, q = 0;
`.text();

/** Generates the segments of `prog` (already validated). */
export function generate(prog: Program, opts: GenOptions = {}): GenResult {
  const code = prog.code;
  const inline = opts.inline !== false;
  const segmentWords = opts.segmentWords ?? SEGMENT_WORDS;
  const runMin = opts.runMin ?? RUN_MIN;
  const sources: string[] = [];
  const sourceIndex = new Map<string, number>();
  const table: number[] = [];
  const segAt = new Int32Array(code.length).fill(-1);
  const slotAt = new Int32Array(code.length).fill(-1);
  const rowAt = new Int32Array(code.length);
  const baseAt = new Int32Array(code.length);
  /** The rule headers (and END) of the segment being written. */
  let entries: number[] = [];
  const finish = (seg: Segment, end: number, next: number): void => {
    const { text, block } = seg.text(slotAt, rowAt, end, next);
    const base = table.length;
    for (const v of block) table.push(v);
    let f = sourceIndex.get(text);
    if (f === undefined) {
      f = sources.length;
      sources.push(PROLOGUE + text);
      sourceIndex.set(text, f);
    }
    for (const pc of entries) {
      segAt[pc] = f;
      baseAt[pc] = base;
    }
    entries = [];
  };
  for (let c = 0; c < chainCount(prog); c++) {
    let pc = prog.chains[c * CHAIN_WORDS + CH_FIRST]!;
    let seg = new Segment(runMin);
    for (;;) {
      const w = code[pc]!;
      entries.push(pc);
      if ((w & Rec.OP_MASK) !== Op.RULE) {
        finish(seg, pc, -1);
        break;
      }
      const next = pc + (w >>> Rec.OP_BITS);
      emitRule(seg, prog, c, pc, next, inline);
      seg.endRule(pc, next - pc);
      pc = next;
      if ((seg.words >= segmentWords || seg.loops >= SEGMENT_LOOPS) && (code[pc]! & Rec.OP_MASK) === Op.RULE) {
        finish(seg, -1, pc);
        seg = new Segment(runMin);
      }
    }
  }
  return { sources, segAt, slotAt, rowAt, baseAt, params: Int32Array.from(table) };
}

/** One rule: a labelled block whose records break out of it when they do not match. */
function emitRule(seg: Segment, prog: Program, chain: number, head: number, next: number, inline: boolean): void {
  const code = prog.code;
  const s = seg.body;
  const rule = code[head + Rec.RULE_INDEX]!;
  s.js`r: {
`;
  seg.xslot = -1;
  seg.pure = true;
  seg.fused = -2;
  let writes = false;
  // A fallback may run the rest of the rule itself (a move within it, e.g.
  // a ct guard's skip: jitWithin), a rewriting record included, and come
  // back with NFT_BREAK: so a fallback before the rule's first such record
  // marks the rule as written too.
  let firstWrite = -1;
  for (let pc = head + Rec.RULE_WORDS; pc < next; pc += OP_INFO[code[pc]! & Rec.OP_MASK]!.size) {
    if (MAY_WRITE.has(code[pc]! & Rec.OP_MASK)) {
      firstWrite = pc;
      break;
    }
  }
  let marked = false;
  const fallback = (pc: number): false => {
    if (firstWrite > pc && !marked) {
      marked = true;
      s.js`w = 1;
`;
    }
    return emitFallback(s, chain, rule, pc, next);
  };
  for (let pc = head + Rec.RULE_WORDS; pc < next; ) {
    const op = code[pc]! & Rec.OP_MASK;
    const xslot = seg.xslot;
    seg.xset = false;
    if (MAY_WRITE.has(op)) {
      writes = true;
      s.js`w = 1;
`;
    }
    // After a record that may have rewritten the packet, the segment's
    // loads (LoadCache) and header offsets are stale: the rest of the rule
    // runs through the fallback, which reads the packet itself.
    const inlined = inline && !writes && INLINED.has(op);
    const fs = inlined ? fusedSlot(code[pc]!) : -1;
    seg.fused = fs >= 0 && (seg.fused === -2 || seg.fused === fs) ? fs : -1;
    const done = inlined ? emitInline(seg, prog, chain, rule, pc, next) : fallback(pc);
    if (!inlined || done === null || !isPure(code, pc)) seg.pure = false;
    if (done === null) fallback(pc);
    else if (done) break; // the rest of the rule is unreachable (a verdict or an unconditional break)
    seg.xslot = seg.xset ? seg.xslot : xslot === -1 || !keepsX(code, pc) ? -1 : xslot;
    pc += OP_INFO[op]!.size;
  }
  s.js`}
`;
  // The next rule starts from a fresh entry of its segment, which loads the
  // header fields again from the packet as it is now.
  if (writes || marked) s.js`if (w !== 0) { out[${OUT_PC}] = ${jitParam(next)}; return ${SEG_GO}; }
`;
}

/**
 * Records whose evaluation may rewrite the packet in the middle of a run:
 * an x_tables target through nft_compat (TTL, TOS, ECN, TCPMSS, DSCP, ...
 * mangle the header and may change its length).
 */
const MAY_WRITE: ReadonlySet<number> = new Set([Op.TARGET]);

/** Records whose inlined code only reads the packet and registers and writes registers (Segment.pure). */
const PURE: ReadonlySet<number> = new Set([
  Op.PAYLOAD, Op.PAYLOAD_FAST, Op.PAYLOAD_CMP, Op.META_CMP, Op.L4PROTO_CMP, Op.CMP, Op.CMP_EQ32, Op.BITWISE, Op.BITWISE32, Op.RANGE,
  Op.IMMEDIATE, Op.IMMEDIATE32, Op.META_GET,
]);

function isPure(code: Int32Array, pc: number): boolean {
  const op = code[pc]! & Rec.OP_MASK;
  if (op === Op.META_GET) {
    // a random draw steps the generator; the loopback pkttype calls out
    const key = code[pc + Meta.KEY]!;
    return key !== NFT_META_PRANDOM && key !== NFT_META_PKTTYPE;
  }
  return PURE.has(op);
}

/** Records after which x still holds the register it held (tests that write no register). */
function keepsX(code: Int32Array, pc: number): boolean {
  const op = code[pc]! & Rec.OP_MASK;
  return op === Op.CMP_EQ32 || op === Op.COUNTER;
}

/**
 * A record through the fallback (vm/jit/index.ts jitFallback): NFT_CONTINUE
 * goes on, NFT_BREAK leaves the rule (also when a move within the rule
 * finished it), WITHIN_DISPATCH goes on at the rule header clsPc[0], anything
 * else is the verdict (out[OUT_NEXT] set).
 */
function emitFallback(s: JitSource, chain: number, rule: number, pc: number, next: number): false {
  s.js`v = fb(${jitParam(pc)}, ${jitParam(next)}, ${jitParam(chain)}, ${jitParam(rule)}, pkt, regs, env);
if (v !== ${NFT_CONTINUE}) {
if (v === ${NFT_BREAK}) break r;
if (v === ${WITHIN_DISPATCH}) { out[${OUT_PC}] = clsPc[0]; return ${SEG_GO}; }
return v;
}
`;
  return false;
}

/** The base local of a packed payload record: network header, transport header as the fast ops see it, or as the generic path does. */
function fastBase(e: number) {
  return jitName((e & PayloadFast.TH) === 0 ? 'nh' : (e & PayloadFast.KFAST) !== 0 ? 'thk' : 'th');
}

/** x = the len (1..4) bytes at `at`, host order. */
function emitLoad(s: JitSource, len: number): void {
  if (len === 4) s.js`x = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24);
`;
  else if (len === 1) s.js`x = data[at];
`;
  else if (len === 2) s.js`x = data[at] | (data[at + 1] << 8);
`;
  else s.js`x = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
`;
}

/**
 * A packed payload load (PAYLOAD_FAST, PAYLOAD_CMP): bounds as
 * nft_payload_fast_eval, loaded when the segment is entered (LoadCache);
 * the value in x and the register.
 */
function emitFastLoad(seg: Segment, e: number): number {
  const s = seg.body;
  const slot = (e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK;
  const len = ((e >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
  const k = seg.cache.slot(e);
  s.js`if (k${k} === 2) { `;
  if (len !== 4) s.js`r32[${slot}] = 0; `;
  s.js`break r; }
x = v${k};
r32[${slot}] = x;
`;
  seg.xslot = slot;
  seg.xset = true;
  return k;
}

/** The register slot a fused load-and-compare record `e` writes (Segment.fused), -1 for any other record. */
function fusedSlot(e: number): number {
  switch (e & Rec.OP_MASK) {
    case Op.L4PROTO_CMP: return (e >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK;
    case Op.PAYLOAD_CMP: return (e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK;
    default: return -1;
  }
}

/**
 * `break r` when `cond` (one compare with its one parameter) holds; after
 * records with no effect but register writes (Segment.pure), a rule of a
 * run that fails it passes over the next rules failing it too (JitSource.skip).
 * `term`: the same test on the run's constant value (not x), for the
 * compound skip of a fused prefix (Segment.fused).
 */
function emitTest(seg: Segment, cond: JitSource, term?: JitSource): void {
  const s = seg.body;
  s.js`if (`.append(cond);
  if (!seg.pure) {
    s.js`) break r;
`;
    return;
  }
  s.js`) {
`.skip(cond, seg.fused >= 0 ? term : undefined);
  s.js`break r;
}
`;
}

/** `break r` unless `diff` (a byte compare's first difference) satisfies the NFT_CMP_* op. */
function emitCmpOp(s: JitSource, op: number): void {
  switch (op) {
    case NFT_CMP_EQ: s.js`if (diff !== 0) break r;
`; break;
    case NFT_CMP_NEQ: s.js`if (diff === 0) break r;
`; break;
    case NFT_CMP_LT: s.js`if (diff >= 0) break r;
`; break;
    case NFT_CMP_LTE: s.js`if (diff > 0) break r;
`; break;
    case NFT_CMP_GT: s.js`if (diff <= 0) break r;
`; break;
    default: s.js`if (diff < 0) break r;
`; // NFT_CMP_GTE
  }
}

/**
 * Inlines one record. Returns true when the rule cannot go on after it (a
 * verdict returned, a BREAK), false when it can, null to use the fallback.
 */
function emitInline(seg: Segment, prog: Program, chain: number, rule: number, pc: number, next: number): boolean | null {
  const code = prog.code;
  const s = seg.body;
  const e = code[pc]!;
  switch (e & Rec.OP_MASK) {
    case Op.PAYLOAD_CMP: {
      const k = emitFastLoad(seg, e);
      const data = code[pc + PayloadCmp.DATA]!;
      if ((e & PayloadCmp.NEQ) === 0) emitTest(seg, new JitSource().js`x !== ${jitParam(data)}`, new JitSource().js`v${k} !== ${jitParam(data)}`);
      else emitTest(seg, new JitSource().js`x === ${jitParam(data)}`, new JitSource().js`v${k} === ${jitParam(data)}`);
      return false;
    }
    case Op.PAYLOAD_FAST:
      emitFastLoad(seg, e);
      return false;
    case Op.META_CMP: {
      const field = (e >>> MetaCmp.FIELD_SHIFT) & MetaCmp.FIELD_MASK;
      const slot = (e >>> MetaCmp.SLOT_SHIFT) & MetaCmp.SLOT_MASK;
      const sh = (MetaCmp.LEN_MASK - ((e >>> MetaCmp.LEN_SHIFT) & MetaCmp.LEN_MASK)) << 3;
      const k = code[pc + MetaCmp.DATA]! << sh;
      s.js`x = meta[${field}];
r32[${slot}] = x;
`;
      if ((e & MetaCmp.NEQ) === 0) emitTest(seg, new JitSource().js`(x << ${sh}) !== ${jitParam(k)}`);
      else emitTest(seg, new JitSource().js`(x << ${sh}) === ${jitParam(k)}`);
      return false;
    }
    case Op.L4PROTO_CMP: {
      // F_L4PROTO and the protocol do not change during a run (emitMetaGet)
      const slot = (e >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK;
      s.js`if (!l4ok) break r;
x = l4;
r32[${slot}] = x;
`;
      seg.xslot = slot;
      seg.xset = true;
      const proto = e >>> L4protoCmp.PROTO_SHIFT;
      if ((e & L4protoCmp.NEQ) === 0) emitTest(seg, new JitSource().js`x !== ${jitParam(proto)}`, new JitSource().js`l4 !== ${jitParam(proto)}`);
      else emitTest(seg, new JitSource().js`x === ${jitParam(proto)}`, new JitSource().js`l4 === ${jitParam(proto)}`);
      return false;
    }
    case Op.RANDOM_CMP: {
      // a draw per rule: never pure, so a failing rule does not pass over the next ones
      seg.pure = false;
      const slot = (e >>> RandomCmp.SLOT_SHIFT) & RandomCmp.SLOT_MASK;
      s.js`x = (env.drawAt === null ? prandomU32(env) : env.drawAt(${jitParam(rule)})) & ${RandomCmp.MASK};
r32[${slot}] = ((x & 255) << 24) | ((x & 65280) << 8) | ((x >>> 8) & 65280) | (x >>> 24);
x = x ^ (-2147483648);
`;
      // unsigned order as signed order with the top bits flipped
      const t = (bswap32(code[pc + RandomCmp.DATA]!) ^ -2147483648) | 0;
      const c = new JitSource();
      switch ((e >>> RandomCmp.CMPOP_SHIFT) & RandomCmp.CMPOP_MASK) {
        case NFT_CMP_EQ: c.js`x !== ${jitParam(t)}`; break;
        case NFT_CMP_NEQ: c.js`x === ${jitParam(t)}`; break;
        case NFT_CMP_LT: c.js`x >= ${jitParam(t)}`; break;
        case NFT_CMP_LTE: c.js`x > ${jitParam(t)}`; break;
        case NFT_CMP_GT: c.js`x <= ${jitParam(t)}`; break;
        default: c.js`x < ${jitParam(t)}`; // NFT_CMP_GTE
      }
      emitTest(seg, c);
      return false;
    }
    case Op.CMP_EQ32: {
      const slot = (e >>> CmpEq32.SLOT_SHIFT) & CmpEq32.SLOT_MASK;
      const sh = (CmpEq32.LEN_MASK - ((e >>> CmpEq32.LEN_SHIFT) & CmpEq32.LEN_MASK)) << 3;
      const k = code[pc + CmpEq32.DATA]! << sh;
      if (seg.xslot === slot) {
        // the register was just written from x
        if ((e & CmpEq32.NEQ) === 0) emitTest(seg, new JitSource().js`(x << ${sh}) !== ${jitParam(k)}`);
        else emitTest(seg, new JitSource().js`(x << ${sh}) === ${jitParam(k)}`);
        return false;
      }
      if ((e & CmpEq32.NEQ) === 0) emitTest(seg, new JitSource().js`(r32[${slot}] << ${sh}) !== ${jitParam(k)}`);
      else emitTest(seg, new JitSource().js`(r32[${slot}] << ${sh}) === ${jitParam(k)}`);
      return false;
    }
    case Op.PAYLOAD: {
      const d = code[pc + Payload.DREG]!;
      const len = code[pc + Payload.LEN]!;
      const base = code[pc + Payload.BASE]!;
      const off = code[pc + Payload.OFFSET]!;
      if ((len & 3) !== 0) s.js`r32[${d + (len >> 2)}] = 0;
`;
      if (base === NFT_PAYLOAD_NETWORK_HEADER) s.js`at = meta[${M_NHOFF}];
`;
      else if (base === NFT_PAYLOAD_TRANSPORT_HEADER) s.js`at = (meta[${M_FLAGS}] & ${F_L4PROTO}) !== 0 && meta[${M_FRAGOFF}] === 0 ? meta[${M_THOFF}] : -1;
`;
      else if (base === NFT_PAYLOAD_LL_HEADER) s.js`at = (meta[${M_FLAGS}] & ${F_MAC_HEADER}) !== 0 ? meta[${M_MACOFF}] : -1;
`;
      else s.js`at = -1;
`;
      s.js`if (at < 0 || at + ${off + len} > meta[${M_END}]) break r;
at += ${off};
copy8(r8, ${d << 2}, data, at, ${len});
`;
      return false;
    }
    case Op.BITWISE32:
      s.js`r32[${code[pc + Bitwise32.DREG]!}] = (r32[${code[pc + Bitwise32.SREG]!}] & ${jitParam(code[pc + Bitwise32.MASK]!)}) ^ ${jitParam(code[pc + Bitwise32.XOR]!)};
`;
      return false;
    case Op.BITWISE: {
      if (code[pc + Bitwise.OP] !== NFT_BITWISE_MASK_XOR) return null;
      const src = code[pc + Bitwise.SREG]!;
      const dst = code[pc + Bitwise.DREG]!;
      const words = (code[pc + Bitwise.LEN]! + 3) >>> 2;
      const m = code[pc + Bitwise.MASK]!;
      const xo = code[pc + Bitwise.XOR]!;
      for (let k = 0; k < words; k++) s.js`r32[${dst + k}] = (r32[${src + k}] & ${jitParam(prog.pool[m + k]!)}) ^ ${jitParam(prog.pool[xo + k]!)};
`;
      return false;
    }
    case Op.VERDICT: {
      const v = (e << Verdict.CODE_UP) >> Verdict.CODE_DOWN;
      if (v === NFT_CONTINUE) return false;
      if (v === NFT_BREAK) {
        s.js`break r;
`;
        return true;
      }
      s.js`out[${OUT_NEXT}] = ${jitParam(next)}; out[${OUT_TARGET}] = ${jitParam((e >>> Verdict.CHAIN_SHIFT) - 1)}; return ${v};
`;
      return true;
    }
    case Op.IMMEDIATE32: {
      const d = code[pc + Immediate.DREG]!;
      const len = code[pc + Immediate.LEN]!;
      const w = code[pc + Immediate.DATA]!;
      // little-endian register bytes: the low len bytes of w, the rest of the word zeroed
      s.js`r32[${d}] = ${jitParam(len === 4 ? w : w & ((1 << (8 * len)) - 1))};
`;
      return false;
    }
    case Op.IMMEDIATE: {
      const d = code[pc + Immediate.DREG]!;
      const len = code[pc + Immediate.LEN]!;
      if ((len & 3) !== 0) s.js`r32[${d + (len >> 2)}] = 0;
`;
      s.js`copy8(r8, ${d << 2}, pool8, ${jitParam(code[pc + Immediate.DATA]! << 2)}, ${len});
`;
      return false;
    }
    case Op.COUNTER: {
      const i = (e >>> Counter.INDEX_SHIFT) << 1;
      s.js`counters[${jitParam(i)}] += 1;
counters[${jitParam(i + 1)}] += meta[${M_LEN}];
`;
      return false;
    }
    case Op.META_GET:
      return emitMetaGet(seg, code[pc + Meta.REG]!, code[pc + Meta.KEY]!, rule);
    case Op.CMP: {
      const op = code[pc + Cmp.OP]!;
      if (op === NFT_CMP_EQ || op === NFT_CMP_NEQ) {
        emitCmpWords(s, prog, code[pc + Cmp.SREG]!, code[pc + Cmp.POOL]!, code[pc + Cmp.LEN]!, op === NFT_CMP_EQ);
        return false;
      }
      const sr = code[pc + Cmp.SREG]! << 2;
      const p = code[pc + Cmp.POOL]! << 2;
      s.js`diff = cmp8(r8, ${sr}, pool8, ${jitParam(p)}, ${code[pc + Cmp.LEN]!});
`;
      emitCmpOp(s, code[pc + Cmp.OP]!);
      return false;
    }
    case Op.RANGE: {
      const sr = code[pc + Range.SREG]! << 2;
      const len = code[pc + Range.LEN]!;
      const f = code[pc + Range.FROM]! << 2;
      const t = code[pc + Range.TO]! << 2;
      s.js`x = cmp8(r8, ${sr}, pool8, ${jitParam(f)}, ${len});
diff = cmp8(r8, ${sr}, pool8, ${jitParam(t)}, ${len});
`;
      if (code[pc + Range.OP] === NFT_RANGE_EQ) s.js`if (x < 0 || diff > 0) break r;
`;
      else s.js`if (x >= 0 && diff <= 0) break r;
`;
      return false;
    }
    case Op.LOOKUP: {
      const inv = (code[pc + Lookup.FLAGS]! & NFT_LOOKUP_F_INV) !== 0;
      s.js`v = sets[${jitParam(code[pc + Lookup.SET]!)}].lookup(r8, r32, ${code[pc + Lookup.SREG]!}) ? 1 : 0;
`;
      if (inv) s.js`if (v === 1) break r;
`;
      else s.js`if (v === 0) break r;
`;
      return false;
    }
    case Op.LIMIT: {
      const inv = (code[pc + Limit.FLAGS]! & NFT_LIMIT_F_INV) !== 0;
      s.js`v = limitOver(state, ${jitParam(code[pc + Limit.STATE]!)}, limitCost(code, ${jitParam(pc)}, state, meta[${M_LEN}]), env.nowNs) ? 1 : 0;
`;
      if (inv) s.js`if (v === 0) break r;
`;
      else s.js`if (v === 1) break r;
`;
      return false;
    }
    case Op.CLASSIFY:
      // the first rule of the run that may match: this one (go on), or a later
      // rule header or the run's end, entered through the driver (segAt)
      s.js`if (classify(prog, ${jitParam(pc)}, pkt) !== ${NFT_CONTINUE}) { out[${OUT_PC}] = clsPc[0]; return ${SEG_GO}; }
`;
      return false;
    case Op.XT_L4:
      // the header readable in full at a first fragment: go on; anything else
      // (no match, the offset-1 rule, a hotdrop) through execXtL4. The length
      // is a parameter: a run of rules may mix protocols (kube-proxy's
      // KUBE-SERVICES: tcp, udp and sctp Services in any order)
      s.js`if (th < 0 || th + ${jitParam(xtL4Hdrlen(e))} > end) {
`;
      emitFallback(s, chain, rule, pc, next);
      s.js`}
`;
      return false;
    case Op.LOG:
      s.js`traceRecord(env, ${TRACE_LOG}, ${jitParam(chain)}, ${jitParam(rule)}, 0, ${jitParam(pc)});
`;
      return false;
    case Op.CT_GET: {
      // the keys read from the packet's metadata alone (execCt's)
      const d = code[pc + CT_REG]!;
      switch (code[pc + CT_KEY]!) {
        case NFT_CT_STATE: s.js`r32[${d}] = ctStateWord(meta);
`; return false;
        case NFT_CT_XT_STATE: s.js`r32[${d}] = ctXtStateWord(meta);
`; return false;
        case NFT_CT_DIRECTION: s.js`if (meta[${M_CT_DIR}] === (-1)) break r;
r32[${d}] = meta[${M_CT_DIR}] & 255;
`; return false;
        case NFT_CT_STATUS: s.js`if (meta[${M_CT_DIR}] === (-1)) break r;
r32[${d}] = meta[${M_CT_STATUS}];
`; return false;
        case NFT_CT_MARK: s.js`if (meta[${M_CT_DIR}] === (-1)) break r;
r32[${d}] = meta[${M_CT_MARK}];
`; return false;
        default: return emitExtra(s, chain, rule, pc, next);
      }
    }
    case Op.CT_SET:
    case Op.FIB:
    case Op.REJECT:
    case Op.QUEUE:
    case Op.NAT:
    case Op.XT_SET_MATCH:
    case Op.XT_SET_TARGET:
    case Op.MATCH:
      return emitExtra(s, chain, rule, pc, next);
    default:
      return null;
  }
}

/**
 * A record the interpreter hands to execExtra, called directly (these
 * kinds return NFT_CONTINUE, NFT_BREAK or a verdict, never a move:
 * vm/expr/extra.ts), as the interpreter does.
 */
function emitExtra(s: JitSource, chain: number, rule: number, pc: number, next: number): false {
  s.js`v = extra(prog, ${jitParam(pc)}, pkt, regs, env, ${jitParam(chain)}, ${jitParam(rule)});
if (v !== ${NFT_CONTINUE}) {
if (v === ${NFT_BREAK}) break r;
out[${OUT_NEXT}] = ${jitParam(next)};
return v;
}
`;
  return false;
}

/**
 * An equality compare (NFT_CMP_EQ/NEQ) of `len` register bytes with pool
 * data, word by word: the pool words enter the source as literals, the
 * register words are read in host order as the pool was written (a partial
 * last word masked to its bytes).
 */
function emitCmpWords(s: JitSource, prog: Program, sreg: number, pool: number, len: number, eq: boolean): void {
  const words = (len + 3) >>> 2;
  s.js`if (`;
  for (let k = 0; k < words; k++) {
    const rem = len - 4 * k;
    const mask = rem >= 4 ? -1 : (1 << (8 * rem)) - 1;
    const want = prog.pool[pool + k]! & mask;
    if (k > 0) {
      if (eq) s.js` || `;
      else s.js` && `;
    }
    if (mask === -1) {
      if (eq) s.js`r32[${sreg + k}] !== ${jitParam(want)}`;
      else s.js`r32[${sreg + k}] === ${jitParam(want)}`;
    } else if (eq) s.js`(r32[${sreg + k}] & ${mask}) !== ${jitParam(want)}`;
    else s.js`(r32[${sreg + k}] & ${mask}) === ${jitParam(want)}`;
  }
  s.js`) break r;
`;
}

/** meta load (interp.ts META_GET): keys that need no device or socket are plain loads; the others BREAK when absent. */
function emitMetaGet(seg: Segment, d: number, key: number, rule: number): boolean | null {
  const s = seg.body;
  switch (key) {
    case NFT_META_L4PROTO:
      // F_L4PROTO and the protocol do not change during a run (only the nftrace flag does)
      s.js`if (!l4ok) break r;
x = l4;
r32[${d}] = x;
`;
      seg.xslot = d;
      seg.xset = true;
      return false;
    case NFT_META_MARK: s.js`r32[${d}] = meta[${M_MARK}];
`; return false;
    case NFT_META_IIFNAME:
    case NFT_META_OIFNAME:
    case NFT_META_BRI_IIFNAME:
    case NFT_META_BRI_OIFNAME: {
      const at = (key === NFT_META_IIFNAME ? M_IIFNAME : key === NFT_META_OIFNAME ? M_OIFNAME : key === NFT_META_BRI_IIFNAME ? M_BRIINAME : M_BRIONAME) << 2;
      // the name's IFNAMSIZ bytes are four metadata words
      for (let k = 0; k < IFNAMSIZ / 4; k++) s.js`r32[${d + k}] = meta[${(at >> 2) + k}];
`;
      return false;
    }
    case NFT_META_LEN: s.js`r32[${d}] = meta[${M_LEN}];
`; return false;
    case NFT_META_PROTOCOL: s.js`x = meta[${M_PROTOCOL}];
r32[${d}] = ((x >>> 8) & 255) | ((x & 255) << 8);
`; return false;
    case NFT_META_NFPROTO: s.js`r32[${d}] = meta[${M_NFPROTO}] & 255;
`; return false;
    case NFT_META_IIF: s.js`r32[${d}] = meta[${M_IIF}];
`; return false;
    case NFT_META_OIF: s.js`r32[${d}] = meta[${M_OIF}];
`; return false;
    case NFT_META_PRIORITY: s.js`r32[${d}] = meta[${M_PRIORITY}];
`; return false;
    case NFT_META_SECMARK: s.js`r32[${d}] = meta[${M_SECMARK}];
`; return false;
    case NFT_META_CPU: s.js`r32[${d}] = meta[${M_CPU}];
`; return false;
    case NFT_META_IIFTYPE:
    case NFT_META_OIFTYPE: {
      const dev = key === NFT_META_IIFTYPE ? M_IIF : M_OIF;
      s.js`if (meta[${dev}] === 0) break r;
r32[${d}] = meta[${key === NFT_META_IIFTYPE ? M_IIFTYPE : M_OIFTYPE}] & 65535;
`;
      return false;
    }
    case NFT_META_IIFGROUP:
    case NFT_META_OIFGROUP: {
      const dev = key === NFT_META_IIFGROUP ? M_IIF : M_OIF;
      s.js`if (meta[${dev}] === 0) break r;
r32[${d}] = meta[${key === NFT_META_IIFGROUP ? M_IIFGROUP : M_OIFGROUP}];
`;
      return false;
    }
    case NFT_META_SKUID:
    case NFT_META_SKGID:
      s.js`x = meta[${key === NFT_META_SKUID ? M_SKUID : M_SKGID}];
if (x === -1) break r;
r32[${d}] = x;
`;
      return false;
    case NFT_META_PKTTYPE:
      s.js`x = meta[${M_PKTTYPE}];
if (x === ${PACKET_LOOPBACK}) x = pkttypeLoopback(data, meta);
if (x < 0) break r;
r32[${d}] = x & 255;
`;
      return false;
    case NFT_META_PRANDOM:
      s.js`r32[${d}] = env.drawAt === null ? prandomU32(env) : env.drawAt(${jitParam(rule)});
`;
      return false;
    default:
      return null;
  }
}
