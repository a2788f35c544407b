/**
 * classify: the optimizer's prefilter for a run of consecutive rules of one
 * chain (compiler/optimize). No kernel nf_tables expression does this; it is
 * the Linear Bit Vector Search of bpf-iptables (Miano et al., 2019) over the
 * fields the run's rules test, and it prints as
 * `[ classify set __cls%d rules A-B ]` (1-based positions in the chain).
 *
 * The record is the first expression of the run's first rule. It picks the
 * first rule of the run that MAY match the packet and goes to that rule's
 * header (or, for the first rule, simply continues with the rule's own
 * expressions); when no rule may match it goes past the run. Every rule it
 * lands on runs all of its expressions as usual, so counters, verdicts,
 * traces and hotdrops are those of the straight program. When a rule it
 * lands on does not match (or matches and goes on), the interpreter asks
 * it again from the next rule (execClassify's `from`: the keys read from
 * the packet as it is then); the execution tier, which runs such programs
 * only in tests (vm/interp.ts interpOnly), goes on linearly. It never skips
 * a rule that could match: a packet it cannot classify exactly leaves it
 * doing nothing (the run is evaluated linearly) — see execClassify.
 *
 * Record: [op, header, id]
 *   +1 header  word offset in the constant pool of the classifier header
 *   +2 id      classifier number (the `__cls%d` name)
 *
 * Classifier data (Int32 words in the pool; offsets relative to the header):
 *   header (CLS_HDR_WORDS):
 *     CLS_NRULES  n, rules in the run
 *     CLS_FIRST   Program rule index of the run's first rule (rules are consecutive)
 *     CLS_NBLOCKS blocks of at most CLS_BLKSZ rules
 *     CLS_FLAGS   CLS_F_V6 (addresses are 4 words), CLS_F_TCP / CLS_F_UDP
 *                 (the run holds tcp / udp matches, which hotdrop on a short header)
 *     CLS_USED    bit per field id: the keys execClassify computes
 *     CLS_NIIF, CLS_NOIF  interface name entries
 *     CLS_IFACES  offset of the entries (iif ones, then oif ones), CLS_IF_WORDS each:
 *                 4 value words then 4 mask words over the 16-byte name as the
 *                 metadata holds it; exact names first, then prefixes longest first
 *     CLS_PCS     offset of n + 1 words: the code offset of each rule's header and
 *                 of the header (or END) after the run, filled by linkClassify()
 *     CLS_BLOCKS  offset of the block table, CLS_BLK_WORDS per block:
 *                 [first rule (0-based in the run), rules, fields, field table offset]
 *     CLS_SIZE    words of classifier data (for the validator)
 *     CLS_BLKSZ   rules per block (1..CLS_BLOCK; CLS_BLOCK but in tests)
 *     CLS_NSUM, CLS_SUMS  the block summary: a field table (below) whose rows
 *                 have a bit per column (CLS_COLS), set when some rule of the
 *                 column may match a key in the interval on that field alone
 *                 (a rule that does not test the field may match any key);
 *                 none for a single block
 *     CLS_NCOLS, CLS_COLS  the summary's columns: ncols words, the block of
 *                 each column, in block order, every block at least once. A
 *                 column is a group of one block's rules that test the same
 *                 fields as narrowly (compiler/optimize columnsOf), so that a
 *                 rule's wildcard on one field does not let the block pass
 *                 for a packet that only another rule of the block matches
 *                 on that field
 *     CLS_RANKS   offset of the rank list, 0 when there is none (a single block,
 *                 or no field whose ranks fit in the rest of the data's size):
 *                 [m, then m entries of CLS_RK_WORDS: field id, intervals, starts
 *                 offset, ranks offset, summary map offset, top offset]. Per ranked field,
 *                 the starts of the union of every block's intervals on that
 *                 field (the summary's starts are among them); for each union
 *                 interval u and block b the index of the block's own interval
 *                 holding it (16 bits: word u * ceil(nblocks / 2) + (b >> 1), the
 *                 high half for odd b); and for each u the summary's interval
 *                 holding it (one word). One search of the union per packet then
 *                 stands for the summary's search and a search per block. A
 *                 union of more than CLS_TOP_MIN starts has a top table (0
 *                 otherwise): CLS_TOP + 1 words, for each value of a key's
 *                 top CLS_TOP_BITS bits the union interval holding the least
 *                 key with those bits (the last word: the last interval). A
 *                 key's interval lies between its entry and the next, so
 *                 the search is over those few starts, not the whole union
 *                 (whose last steps each missed the cache).
 *   field table, CLS_FLD_WORDS per field: [field id, intervals, starts offset, rows offset]
 *   starts: intervals words, strictly increasing, the first = INT32_MIN: interval
 *           starts of the key, stored as `value ^ 0x80000000` so that a signed
 *           compare orders the unsigned values
 *   rows:   intervals × ceil(rules / 32) words; bit r of a row = block rule r may
 *           match a key in that interval
 *
 * Per packet: the keys; per ranked field a binary search of the union; per
 * summary field its interval (through the union's, or a binary search), the
 * AND of the column rows; for each block of a column left, in order, per field of the
 * block its interval (the rank, or a binary search of the block's own
 * starts) and the AND of the rule rows: its first set bit is the rule.
 *
 * Keys (field ids): address words of the source (CLS_K_SRC + 0..3) and the
 * destination (CLS_K_DST + 0..3), big-endian u32 each; the layer-4 protocol
 * (256 without layer-4 information); source and destination ports (65536 when
 * the packet carries no ports a tcp/udp match could read); the TCP flags byte
 * (256 when no tcp match could read it); the input and output interface as
 * the index of the first entry its name matches (the entry count for none).
 */
import { Op, opSize, Rec } from '../opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, F_L4PROTO, M_END, M_FLAGS, M_FRAGOFF, M_IIFNAME, M_L4PROTO, M_NHOFF, M_OIFNAME, M_THOFF,
  NFT_CONTINUE,
} from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import type { EvalCtx } from './common.js';
import { ruleOffsets } from '../program.js';

export const CLS_HEADER = 1;
/** Words of the record. */
export const CLS_RECORD_WORDS = 3;
const CLS_ID = 2;

export const CLS_NRULES = 0;
export const CLS_FIRST = 1;
export const CLS_NBLOCKS = 2;
export const CLS_FLAGS = 3;
export const CLS_USED = 4;
export const CLS_NIIF = 5;
export const CLS_NOIF = 6;
export const CLS_IFACES = 7;
export const CLS_PCS = 8;
export const CLS_BLOCKS = 9;
export const CLS_SIZE = 10;
export const CLS_BLKSZ = 11;
export const CLS_NSUM = 12;
export const CLS_SUMS = 13;
export const CLS_RANKS = 14;
export const CLS_NCOLS = 15;
export const CLS_COLS = 16;
export const CLS_HDR_WORDS = 17;
export const CLS_RK_WORDS = 6;
/** The top table (CLS_RANKS): indexed by a key's top CLS_TOP_BITS bits, for unions of more than CLS_TOP_MIN starts. */
export const CLS_TOP_BITS = 12;
export const CLS_TOP = 1 << CLS_TOP_BITS;
export const CLS_TOP_MIN = 256;

export const CLS_F_V6 = 1;
export const CLS_F_TCP = 2;
export const CLS_F_UDP = 4;

/** Rules per block at most: rows of 8 words bound the data to O(rules × intervals / 32). */
export const CLS_BLOCK = 256;
export const CLS_BLK_WORDS = 4;
export const CLS_FLD_WORDS = 4;
export const CLS_IF_WORDS = 8;

export const CLS_K_SRC = 0; // 0..3
export const CLS_K_DST = 4; // 4..7
export const CLS_K_PROTO = 8;
export const CLS_K_SPORT = 9;
export const CLS_K_DPORT = 10;
export const CLS_K_TCPFLAGS = 11;
export const CLS_K_IIF = 12;
export const CLS_K_OIF = 13;
export const CLS_NKEYS = 14;

/** The largest key of each field: the sentinel values included. */
export const CLS_KEY_MAX: readonly number[] = Object.freeze([
  0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 256, 65536, 65536, 256, -1, -1,
]);

/**
 * execClassify's result when it chose a rule other than the first: the
 * interpreter goes on at `clsPc[0]` (a rule header or the run's end). Not a
 * verdict: NFT_* codes are -1..-5 and a negative queue verdict is ≤ -65533.
 */
export const CLS_JUMP = -6;
/**
 * Scratch words (the VM runs one packet at a time): [CLS_TO] where CLS_JUMP
 * goes; after execClassify placed a packet (CLS_JUMP, or NFT_CONTINUE with
 * [CLS_TO] the first rule's header), [CLS_END] the code offset past the run
 * and [CLS_FIRST_RULE] the Program rule index of its first rule; [CLS_TO] is
 * -1 after NFT_CONTINUE for a packet it cannot classify.
 */
export const clsPc = new Int32Array(3);
export const CLS_TO = 0;
export const CLS_END = 1;
export const CLS_FIRST_RULE = 2;

/** Emits the record over classifier data built by compiler/optimize (header first). */
export function emitClassify(b: Emitter, data: Int32Array, id: number): void {
  const at = b.poolKeep(data);
  b.emit([Op.CLASSIFY, at, id]);
}

/** Fills every classifier's CLS_PCS table once the code is laid out (before validation). */
export function linkClassify(prog: Program): void {
  const code = prog.code;
  const pool = prog.pool;
  let heads: Int32Array | null = null;
  for (let pc = 0; pc < code.length; ) {
    const w = code[pc]!;
    const op = w & Rec.OP_MASK;
    if (op === Op.RULE) {
      const next = pc + (w >>> 8);
      for (let e = pc + Rec.RULE_WORDS; e < next; e += recordSize(code[e]!)) {
        if ((code[e]! & Rec.OP_MASK) !== Op.CLASSIFY) continue;
        heads ??= ruleOffsets(prog);
        const h = code[e + CLS_HEADER]!;
        const n = pool[h + CLS_NRULES]!;
        const first = pool[h + CLS_FIRST]!;
        const t = h + pool[h + CLS_PCS]!;
        for (let i = 0; i < n; i++) pool[t + i] = heads[first + i]!;
        const last = pool[t + n - 1]!;
        pool[t + n] = last + (code[last]! >>> 8);
      }
      pc = next;
    } else pc += 1; // END
  }
}

function recordSize(w: number): number {
  return opSize(w & Rec.OP_MASK);
}

export function validateClassify(prog: Program, code: Int32Array, pc: number): string | null {
  const pool = prog.pool;
  const h = code[pc + CLS_HEADER]!;
  if (h < 0 || h + CLS_HDR_WORDS > pool.length) return `classify: header ${h} outside the pool`;
  const size = pool[h + CLS_SIZE]!;
  if (size < CLS_HDR_WORDS || h + size > pool.length) return 'classify: data outside the pool';
  const n = pool[h + CLS_NRULES]!;
  const first = pool[h + CLS_FIRST]!;
  const nb = pool[h + CLS_NBLOCKS]!;
  const bs = pool[h + CLS_BLKSZ]!;
  if (n < 1 || first < 0 || first + n > prog.nrules) return `classify: rules ${first}+${n} out of range`;
  if (bs < 1 || bs > CLS_BLOCK || nb !== Math.ceil(n / bs)) return `classify: ${nb} blocks of ${bs} for ${n} rules`;
  if (pool[h + CLS_FLAGS]! & ~(CLS_F_V6 | CLS_F_TCP | CLS_F_UDP)) return 'classify: unknown flags';
  const used = pool[h + CLS_USED]!;
  if (used & ~((1 << CLS_NKEYS) - 1)) return 'classify: unknown keys';
  const v6 = (pool[h + CLS_FLAGS]! & CLS_F_V6) !== 0;
  if (!v6 && (used & ((0xe << CLS_K_SRC) | (0xe << CLS_K_DST))) !== 0) return 'classify: IPv6 address words in an IPv4 classifier';
  const nif = [pool[h + CLS_NIIF]!, pool[h + CLS_NOIF]!];
  const ifs = pool[h + CLS_IFACES]!;
  if (nif[0]! < 0 || nif[1]! < 0 || ifs < CLS_HDR_WORDS || ifs + (nif[0]! + nif[1]!) * CLS_IF_WORDS > size) return 'classify: interface entries out of range';
  // Jump targets: the run's rule headers, consecutive in one chain, this record first in rule 0.
  const t = pool[h + CLS_PCS]!;
  if (t < CLS_HDR_WORDS || t + n + 1 > size) return 'classify: target table out of range';
  let at = h + t;
  if (pc !== pool[at]! + Rec.RULE_WORDS) return 'classify: not the first expression of the run\'s first rule';
  for (let i = 0; i < n; i++) {
    const r = pool[at + i]!;
    if (r < 0 || r + Rec.RULE_WORDS > code.length || (code[r]! & Rec.OP_MASK) !== Op.RULE) return `classify: target ${i} is not a rule header`;
    if (code[r + 1] !== first + i) return `classify: target ${i} is not rule ${first + i}`;
    if (pool[at + i + 1] !== r + (code[r]! >>> 8)) return `classify: target ${i + 1} does not follow rule ${first + i} in its chain`;
  }
  const end = pool[at + n]!;
  if (end < 0 || end >= code.length || ((code[end]! & Rec.OP_MASK) !== Op.RULE && code[end] !== Op.END)) return 'classify: end of run is not a rule header or END';
  // Blocks: consecutive, CLS_BLKSZ rules each but the last; fields in range, starts sorted, rows in range.
  at = pool[h + CLS_BLOCKS]!;
  if (at < CLS_HDR_WORDS || at + nb * CLS_BLK_WORDS > size) return 'classify: block table out of range';
  for (let b = 0; b < nb; b++) {
    const bt = h + at + b * CLS_BLK_WORDS;
    const base = pool[bt]!;
    const cnt = pool[bt + 1]!;
    if (base !== b * bs || cnt !== Math.min(bs, n - base)) return `classify: block ${b} covers the wrong rules`;
    const why = validateFields(pool, h, size, used, pool[bt + 2]!, pool[bt + 3]!, cnt, `block ${b}`);
    if (why !== null) return why;
  }
  const nsum = pool[h + CLS_NSUM]!;
  if (nsum !== 0 && nb < 2) return 'classify: a summary over one block';
  const ncols = pool[h + CLS_NCOLS]!;
  if (nsum !== 0) {
    // the columns: in block order, every block at least once (a block no column names would never be searched)
    const cols = pool[h + CLS_COLS]!;
    if (ncols < nb || cols < CLS_HDR_WORDS || cols + ncols > size) return 'classify: column table out of range';
    for (let c = 0, prev = -1; c < ncols; c++) {
      const b = pool[h + cols + c]!;
      if (b !== prev && b !== prev + 1) return `classify: column ${c} is not of block ${prev} or ${prev + 1}`;
      prev = b;
    }
    if (pool[h + cols + ncols - 1] !== nb - 1) return `classify: no column of block ${nb - 1}`;
  } else if (ncols !== 0) return 'classify: columns without a block summary';
  return validateFields(pool, h, size, used, nsum, pool[h + CLS_SUMS]!, ncols, 'summary') ?? validateRanks(pool, h, size, used, nb, at);
}

/** The rank list (CLS_RANKS): union starts sorted, every rank inside its block's own intervals of the field. */
function validateRanks(pool: Int32Array, h: number, size: number, used: number, nb: number, blocks: number): string | null {
  const rk = pool[h + CLS_RANKS]!;
  if (rk === 0) return null;
  if (nb < 2 || pool[h + CLS_NSUM] === 0) return 'classify: ranks without a block summary';
  if (rk < CLS_HDR_WORDS || rk >= size) return 'classify: rank list out of range';
  const m = pool[h + rk]!;
  if (m < 1 || m > CLS_NKEYS || rk + 1 + m * CLS_RK_WORDS > size) return 'classify: rank list out of range';
  const half = (nb + 1) >>> 1;
  let seen = 0;
  for (let e = h + rk + 1, i = 0; i < m; i++, e += CLS_RK_WORDS) {
    const k = pool[e]!;
    const n = pool[e + 1]!;
    const st = pool[e + 2]!;
    const rt = pool[e + 3]!;
    if (k < 0 || k >= CLS_NKEYS || (used & (1 << k)) === 0 || (seen & (1 << k)) !== 0) return `classify: ranks of field ${k} not computed or twice`;
    seen |= 1 << k;
    const sm = pool[e + 4]!;
    const top = pool[e + 5]!;
    if (n < 1 || st < CLS_HDR_WORDS || st + n > size || rt < CLS_HDR_WORDS || rt + n * half > size || sm < CLS_HDR_WORDS || sm + n > size) return `classify: ranks of field ${k} out of range`;
    if (pool[h + st] !== -0x80000000) return `classify: ranks of field ${k} do not start at 0`;
    for (let u = 1; u < n; u++) if (pool[h + st + u]! <= pool[h + st + u - 1]!) return `classify: ranks of field ${k} starts not increasing`;
    if ((top !== 0) !== n > CLS_TOP_MIN) return `classify: ranks of field ${k}: a top table for ${n} starts`;
    if (top !== 0) {
      if (top < CLS_HDR_WORDS || top + CLS_TOP + 1 > size) return `classify: top table of field ${k} out of range`;
      // each entry the interval holding the least key of its top bits (the search between two entries relies on it)
      for (let t = 0; t < CLS_TOP; t++) {
        const u = pool[h + top + t]!;
        const least = ((t << TOP_SHIFT) ^ BIAS) | 0;
        if (u < 0 || u >= n || pool[h + st + u]! > least || (u + 1 < n && pool[h + st + u + 1]! <= least)) return `classify: top table of field ${k}: entry ${t} is not the interval of its least key`;
      }
      if (pool[h + top + CLS_TOP] !== n - 1) return `classify: top table of field ${k} does not end at the last interval`;
    }
    // the summary map: inside the summary's intervals of the field
    let sumCount = 0;
    for (let f = 0, fd = h + pool[h + CLS_SUMS]!; f < pool[h + CLS_NSUM]!; f++, fd += CLS_FLD_WORDS) if (pool[fd] === k) sumCount = pool[fd + 1]!;
    for (let u = 0; u < n; u++) {
      const i = pool[h + sm + u]!;
      if (i < 0 || i >= sumCount) return `classify: summary map of field ${k} past the summary's intervals`;
    }
    for (let b = 0; b < nb; b++) {
      // the intervals of block b on field k (0: the block does not test it, its ranks are 0)
      const bt = h + blocks + b * CLS_BLK_WORDS;
      let count = 1;
      for (let f = 0, fd = h + pool[bt + 3]!; f < pool[bt + 2]!; f++, fd += CLS_FLD_WORDS) if (pool[fd] === k) count = pool[fd + 1]!;
      for (let u = 0; u < n; u++) {
        const w = pool[h + rt + u * half + (b >>> 1)]!;
        if (((b & 1) !== 0 ? w >>> 16 : w & 0xffff) >= count) return `classify: rank of block ${b} on field ${k} past its intervals`;
      }
    }
  }
  return null;
}

/** A field table of `nf` fields at h + ft whose rows have `bits` bits. */
function validateFields(pool: Int32Array, h: number, size: number, used: number, nf: number, ft: number, bits: number, what: string): string | null {
  if (nf === 0) return null;
  if (nf < 0 || nf > CLS_NKEYS || ft < CLS_HDR_WORDS || ft + nf * CLS_FLD_WORDS > size) return `classify: ${what} field table out of range`;
  const words = (bits + 31) >>> 5;
  const tail = bits & 31 ? ~((1 << (bits & 31)) - 1) : 0;
  for (let f = 0; f < nf; f++) {
    const fd = h + ft + f * CLS_FLD_WORDS;
    const id = pool[fd]!;
    const ni = pool[fd + 1]!;
    const st = pool[fd + 2]!;
    const rows = pool[fd + 3]!;
    if (id < 0 || id >= CLS_NKEYS || (used & (1 << id)) === 0) return `classify: ${what} field ${id} not computed`;
    if (ni < 1 || st < CLS_HDR_WORDS || st + ni > size || rows < CLS_HDR_WORDS || rows + ni * words > size) return `classify: ${what} field ${id} tables out of range`;
    if (pool[h + st] !== -0x80000000) return `classify: ${what} field ${id} does not start at 0`;
    for (let i = 1; i < ni; i++) if (pool[h + st + i]! <= pool[h + st + i - 1]!) return `classify: ${what} field ${id} starts not increasing`;
    for (let i = 0; i < ni; i++) if (pool[h + rows + i * words + words - 1]! & tail) return `classify: ${what} field ${id} row ${i} names bits past its end`;
  }
  return null;
}

export function disasmClassify(prog: Program, code: Int32Array, pc: number): string {
  const pool = prog.pool;
  const h = code[pc + CLS_HEADER]!;
  // 1-based positions in the chain: count the headers from the chain's first.
  const firstPc = pool[h + pool[h + CLS_PCS]!]!;
  let pos = 1;
  const nch = (prog.chains.length / CHAIN_WORDS) | 0;
  for (let c = 0; c < nch; c++) {
    let at = prog.chains[c * CHAIN_WORDS + CH_FIRST]!;
    let i = 1;
    for (; (code[at]! & Rec.OP_MASK) === Op.RULE && at !== firstPc; at += code[at]! >>> 8) i++;
    if (at === firstPc) {
      pos = i;
      break;
    }
  }
  return `set __cls${code[pc + CLS_ID]} rules ${pos}-${pos + pool[h + CLS_NRULES]! - 1} `;
}

const BIAS = -0x80000000;
const TOP_SHIFT = 32 - CLS_TOP_BITS;

// Per-packet scratch: the keys (biased), the row offsets of one block's and of the summary's fields,
// and per ranked field the pool offset of the ranks of the union interval holding its key.
const keys = new Int32Array(CLS_NKEYS);
const rowAt = new Int32Array(CLS_NKEYS);
const sumAt = new Int32Array(CLS_NKEYS);
const rankAt = new Int32Array(CLS_NKEYS);
const sumIdx = new Int32Array(CLS_NKEYS);

/** The index of the last of the `n` starts at `st` that is ≤ `key` (starts[0] is the minimum). */
function intervalOf(pool: Int32Array, st: number, n: number, key: number): number {
  // halving without a branch on the compare: which half the key is in is a coin toss the
  // processor would mispredict at every step; the loop's own count depends on n alone
  let base = st;
  let len = n;
  while (len > 1) {
    const half = len >>> 1;
    base += -((pool[base + half]! <= key) as unknown as number) & half;
    len -= half;
  }
  return base - st;
}

/**
 * For each of the `nf` fields at `fd`: the offset of the row of the interval
 * holding its key, into `out`. A field whose bit is set in `ranked` takes
 * its interval from `b`'s ranks (rankAt) or, for the summary (`b` < 0), from
 * the summary map (sumIdx); the others search.
 */
function rowsOf(pool: Int32Array, h: number, fd: number, nf: number, words: number, out: Int32Array, ranked: number, b: number): void {
  for (let f = 0; f < nf; f++, fd += CLS_FLD_WORDS) {
    const k = pool[fd]!;
    let i: number;
    if (((ranked >>> k) & 1) === 0) i = intervalOf(pool, h + pool[fd + 2]!, pool[fd + 1]!, keys[k]!);
    else if (b < 0) i = sumIdx[k]!;
    else {
      const w = pool[rankAt[k]! + (b >>> 1)]!;
      i = (b & 1) !== 0 ? w >>> 16 : w & 0xffff;
    }
    out[f] = h + pool[fd + 3]! + i * words;
  }
}

/** The first rule (index in the run) of block `b`, whose entry is at `bt`, that may match, or -1. */
function searchBlock(pool: Int32Array, h: number, bt: number, b: number, ranked: number, from: number): number {
  const first = pool[bt]!;
  const n = pool[bt + 1]!;
  // the block's rules from `from` on (0-based in the block)
  const skip = from > first ? from - first : 0;
  if (skip >= n) return -1;
  const nf = pool[bt + 2]!;
  if (nf === 0) return first + skip;
  const words = (n + 31) >>> 5;
  rowsOf(pool, h, h + pool[bt + 3]!, nf, words, rowAt, ranked, b);
  for (let w = skip >>> 5; w < words; w++) {
    let acc = w === skip >>> 5 ? -1 << (skip & 31) : -1;
    for (let f = 0; f < nf && acc !== 0; f++) acc &= pool[rowAt[f]! + w]!;
    if (acc !== 0) return first + (w << 5) + 31 - Math.clz32(acc & -acc);
  }
  return -1;
}

/**
 * Searches the union starts of every ranked field of the classifier at `h`
 * and sets its rankAt; returns the ranked fields as a bit per field id.
 */
function rankKeys(pool: Int32Array, h: number, nb: number): number {
  const rk = pool[h + CLS_RANKS]!;
  if (rk === 0) return 0;
  const m = pool[h + rk]!;
  const half = (nb + 1) >>> 1;
  let ranked = 0;
  for (let e = h + rk + 1, i = 0; i < m; i++, e += CLS_RK_WORDS) {
    const k = pool[e]!;
    const key = keys[k]!;
    const st = h + pool[e + 2]!;
    const top = pool[e + 5]!;
    let u: number;
    if (top === 0) u = intervalOf(pool, st, pool[e + 1]!, key);
    else {
      // between the intervals of the least keys of the key's top bits and of the next top bits
      const t = h + top + ((key ^ BIAS) >>> TOP_SHIFT);
      const lo = pool[t]!;
      u = lo + intervalOf(pool, st + lo, pool[t + 1]! - lo + 1, key);
    }
    rankAt[k] = h + pool[e + 3]! + u * half;
    sumIdx[k] = pool[h + pool[e + 4]! + u]!;
    ranked |= 1 << k;
  }
  return ranked;
}

/** Index of the first entry the 16-byte name at metadata word `m` matches, or n. */
function ifaceIndex(pool: Int32Array, at: number, n: number, meta: Int32Array, m: number): number {
  const w0 = meta[m]!;
  const w1 = meta[m + 1]!;
  const w2 = meta[m + 2]!;
  const w3 = meta[m + 3]!;
  for (let i = 0; i < n; i++, at += CLS_IF_WORDS) {
    if ((w0 & pool[at + 4]!) === pool[at]! && (w1 & pool[at + 5]!) === pool[at + 1]! &&
      (w2 & pool[at + 6]!) === pool[at + 2]! && (w3 & pool[at + 7]!) === pool[at + 3]!) return i;
  }
  return n;
}

/**
 * The first rule of the run from rule `from` (0-based in the run) on that
 * may match the packet: NFT_CONTINUE (go on with the first rule: it may
 * match, or the packet cannot be classified) or CLS_JUMP with clsPc[CLS_TO]
 * set (a later rule, or past the run). Packets left to linear evaluation: a network header shorter than
 * the fixed IP header; with tcp (udp) matches in the run, a TCP (UDP) packet
 * whose first fragment header is shorter than 20 (8) bytes, and a TCP
 * fragment at offset 1: the rules' own guards hotdrop those (xt_l4), which
 * only linear evaluation reproduces; an IPv6 packet without a protocol
 * (x_tables' ip6_packet_match hotdrops it at a rule with -p).
 */
export function execClassify(prog: Program, pc: number, pkt: Packet, from = 0): number {
  const pool = prog.pool;
  const h = prog.code[pc + CLS_HEADER]!;
  clsPc[CLS_TO] = -1;
  const r = classifyFrom(pool, h, pkt, from);
  if (r === UNCLASSIFIED) return NFT_CONTINUE;
  const t = h + pool[h + CLS_PCS]!;
  const n = pool[h + CLS_NRULES]!;
  clsPc[CLS_END] = pool[t + n]!;
  clsPc[CLS_FIRST_RULE] = pool[h + CLS_FIRST]!;
  clsPc[CLS_TO] = pool[t + (r < 0 ? n : r)]!;
  return r === 0 ? NFT_CONTINUE : CLS_JUMP;
}

/** classifyFrom(): the packet left to linear evaluation. */
const UNCLASSIFIED = -2;

/** The first rule of the run (0-based) from `from` on that may match the packet, -1 for none, or UNCLASSIFIED. */
function classifyFrom(pool: Int32Array, h: number, pkt: Packet, from: number): number {
  const meta = pkt.meta;
  const data = pkt.data;
  const flags = pool[h + CLS_FLAGS]!;
  const used = pool[h + CLS_USED]!;
  const nh = meta[M_NHOFF]!;
  const end = meta[M_END]!;
  if (nh + ((flags & CLS_F_V6) !== 0 ? 40 : 20) > end) return UNCLASSIFIED;

  // IPv6 without a protocol (ipv6_find_hdr failed; -1 in the x_tables view past AH): a legacy
  // rule with -p hotdrops it (xt_match noproto), which only linear evaluation reproduces.
  if ((flags & CLS_F_V6) !== 0 && ((meta[M_FLAGS]! & F_L4PROTO) === 0 || meta[M_L4PROTO]! < 0)) return UNCLASSIFIED;
  let proto = 256;
  let sport = 65536;
  let dport = 65536;
  let tflags = 256;
  if ((meta[M_FLAGS]! & F_L4PROTO) !== 0) {
    proto = meta[M_L4PROTO]! & 0xff;
    const need = proto === 6 && (flags & CLS_F_TCP) !== 0 ? 20 : proto === 17 && (flags & CLS_F_UDP) !== 0 ? 8 : 0;
    if (need !== 0) {
      const fo = meta[M_FRAGOFF]!;
      const th = meta[M_THOFF]!;
      if (fo === 0) {
        if (th + need > end) return UNCLASSIFIED;
        sport = (data[th]! << 8) | data[th + 1]!;
        dport = (data[th + 2]! << 8) | data[th + 3]!;
        if (proto === 6) tflags = data[th + 13]!;
      } else if (fo === 1 && proto === 6) return UNCLASSIFIED;
    }
  }
  keys[CLS_K_PROTO] = proto ^ BIAS;
  keys[CLS_K_SPORT] = sport ^ BIAS;
  keys[CLS_K_DPORT] = dport ^ BIAS;
  keys[CLS_K_TCPFLAGS] = tflags ^ BIAS;
  if ((flags & CLS_F_V6) === 0) {
    keys[CLS_K_SRC] = ((data[nh + 12]! << 24) | (data[nh + 13]! << 16) | (data[nh + 14]! << 8) | data[nh + 15]!) ^ BIAS;
    keys[CLS_K_DST] = ((data[nh + 16]! << 24) | (data[nh + 17]! << 16) | (data[nh + 18]! << 8) | data[nh + 19]!) ^ BIAS;
  } else {
    for (let k = 0; k < 4; k++) {
      const s = nh + 8 + 4 * k;
      const d = nh + 24 + 4 * k;
      keys[CLS_K_SRC + k] = ((data[s]! << 24) | (data[s + 1]! << 16) | (data[s + 2]! << 8) | data[s + 3]!) ^ BIAS;
      keys[CLS_K_DST + k] = ((data[d]! << 24) | (data[d + 1]! << 16) | (data[d + 2]! << 8) | data[d + 3]!) ^ BIAS;
    }
  }
  if ((used & ((1 << CLS_K_IIF) | (1 << CLS_K_OIF))) !== 0) {
    const ni = pool[h + CLS_NIIF]!;
    const at = h + pool[h + CLS_IFACES]!;
    keys[CLS_K_IIF] = ifaceIndex(pool, at, ni, meta, M_IIFNAME) ^ BIAS;
    keys[CLS_K_OIF] = ifaceIndex(pool, at + ni * CLS_IF_WORDS, pool[h + CLS_NOIF]!, meta, M_OIFNAME) ^ BIAS;
  }

  const nb = pool[h + CLS_NBLOCKS]!;
  const blocks = h + pool[h + CLS_BLOCKS]!;
  const nsum = pool[h + CLS_NSUM]!;
  let found = -1;
  if (nsum === 0) {
    for (let b = 0; b < nb && found < 0; b++) found = searchBlock(pool, h, blocks + b * CLS_BLK_WORDS, b, 0, from);
  } else {
    // the columns every summary field allows, in order; a block is searched once (its first such column)
    const ncols = pool[h + CLS_NCOLS]!;
    const cols = h + pool[h + CLS_COLS]!;
    const words = (ncols + 31) >>> 5;
    const ranked = rankKeys(pool, h, nb);
    rowsOf(pool, h, h + pool[h + CLS_SUMS]!, nsum, words, sumAt, ranked, -1);
    let searched = -1;
    for (let w = 0; w < words && found < 0; w++) {
      let m = -1;
      for (let f = 0; f < nsum && m !== 0; f++) m &= pool[sumAt[f]! + w]!;
      while (m !== 0 && found < 0) {
        const low = m & -m;
        m ^= low;
        const b = pool[cols + (w << 5) + 31 - Math.clz32(low)]!;
        if (b === searched) continue;
        searched = b;
        found = searchBlock(pool, h, blocks + b * CLS_BLK_WORDS, b, ranked, from);
      }
    }
  }
  return found;
}

/** The slow interpreter (vm/interp-slow.ts) evaluates the run linearly: exact, and what tracing needs. */
export function evalClassify(_ctx: EvalCtx, _pc: number): void {}
