/**
 * The compiled program and the run-time objects the interpreter uses.
 *
 * Program: one Int32Array of records per table (vm/opcodes.ts), a constant
 * pool, the chain table (layout.ts CH_*), counters, per-expression state
 * (limit buckets, numgen counters) and a source map. Built only by
 * vm/builder.ts and checked by vm/validate.ts; the interpreter trusts it.
 *
 * The Program object is frozen. Typed arrays with elements cannot be frozen
 * in JavaScript, so code, pool, chains and srcmap are read-only by
 * convention; counters and state are the mutable parts (the kernel's per-rule
 * counters and per-expression private state).
 */
import {
  CHAIN_WORDS, CH_FIRST, CH_NAME, EV_ARG, EV_CHAIN, EV_RULE, EV_TYPE, EV_VERDICT, NFT_REGS_BYTES, TRACE_WORDS,
} from './layout.js';
import type { NftSet } from './set.js';
import type { XtExpr } from './expr/compat.js';
import type { NfCtEnv } from './ct-env.js';
import { IpSetOpt, type IpSetStore } from './ipset.js';
import { xorshiftState } from './random.js';
import { Op, Rec } from './opcodes.js';
import type { Packet } from './packet.js';

export interface Program {
  /** NFPROTO_* of the table (printed as the rule header's family). */
  readonly family: number;
  /** Table name. */
  readonly table: string;
  /** The bytecode. */
  readonly code: Int32Array;
  /** Constant pool: data longer than the inline words (cmp, bitwise, range, immediate). */
  readonly pool: Int32Array;
  /** The same pool as bytes. */
  readonly pool8: Uint8Array;
  /** Chain table, CHAIN_WORDS words per chain. */
  readonly chains: Int32Array;
  /** Chain names, set names, log prefixes. */
  readonly strings: readonly string[];
  /** Sets referenced by lookup expressions. */
  readonly sets: readonly NftSet[];
  /** Counters: packets at 2*i, bytes at 2*i+1, one pair per counter expression. */
  readonly counters: Float64Array;
  /** Mutable expression state: limit buckets (4 doubles) and numgen counters (1). */
  readonly state: Float64Array;
  /** Source map: rule index → line at 2*i, column at 2*i+1 (0 = unknown). */
  readonly srcmap: Int32Array;
  /** Number of rules. */
  readonly nrules: number;
  /** The x_tables extensions the match/target (nft_compat) records call. */
  readonly xt: readonly XtExpr[];
}

export function chainCount(prog: Program): number {
  return (prog.chains.length / CHAIN_WORDS) | 0;
}

export function chainName(prog: Program, chain: number): string {
  return prog.strings[prog.chains[chain * CHAIN_WORDS + CH_NAME]!] ?? `#${chain}`;
}

/** The register block (struct nft_regs): one ArrayBuffer, two views (and a third to clear it). */
export class NftRegs {
  readonly buf = new ArrayBuffer(NFT_REGS_BYTES);
  readonly r32 = new Int32Array(this.buf);
  readonly r8 = new Uint8Array(this.buf);
  /** The block as 8-byte words: clear() stores half as many words as r32 has, and calls no builtin (r32.fill(0) cost twice as much per chain run). */
  private readonly w64 = new Float64Array(this.buf);

  /** Zeroes every register, as nft_do_chain() does once per base chain run (`struct nft_regs regs = {}`). */
  clear(): void {
    const w = this.w64;
    for (let i = 0; i < w.length; i++) w[i] = 0;
  }
}

/**
 * Per-VM run-time environment: the injectable clock (nanoseconds, set by the
 * caller before a packet), the seeded pseudo-random state (xorshift32; the
 * kernel uses a per-CPU prandom state, so only reproducibility is modelled),
 * and the preallocated trace ring.
 */
/**
 * The node's FIB as the VM's fib expression reaches it (the node implements
 * it over its routes: hooks/xt-fib.ts).
 */
export interface VmFib {
  /**
   * inet_dev_addr_type(net, dev, addr) (net/ipv4/fib_frontend.c) for the
   * device of ifindex `ifindex`: the RTN_* type of IPv4 address `addr`
   * (host order) in the local table, counted only when the route's first
   * nexthop uses that device (else RTN_UNICAST); ifindex 0 is no device
   * (inet_addr_type: the route's type).
   */
  inetDevAddrType(addr: number, ifindex: number): number;
  /**
   * The node's routes say more than the program's sets of addresses
   * (EngineOptions.localAddrs / broadcastAddrs) can: a local-table route
   * other than a local or broadcast host route and lo's 127/8 (an AnyIP
   * range), or, the local and main tables one trie, a main route that
   * would answer first or otherwise. Then IPv4 address types without a
   * device are asked of inetDevAddrType.
   */
  readonly localRanges: boolean;
}

export class VmEnv {
  /** Current time in nanoseconds (ktime_get_ns()). */
  nowNs = 0;
  /** xorshift32 state (never 0); a node's engines share one (vm/random.ts Xorshift32.state). */
  readonly rng: Int32Array;
  /**
   * The forced-choice hook (vm/random.ts): when set, every random draw
   * (meta random, numgen random) calls it with the program rule index
   * doing the draw instead of stepping the generator. null in normal runs.
   */
  drawAt: ((rule: number) => number) | null = null;
  /** Trace ring, TRACE_WORDS words per event, or null when tracing is off. */
  trace: Int32Array | null = null;
  /** Events the ring holds (a power of two). */
  traceCap = 0;
  /** Events written so far (the ring index is traceHead & (traceCap - 1)). */
  traceHead = 0;
  /**
   * A traced run's describer of the packet (engine/vm-table.ts sets it for the
   * run, null otherwise): the slow interpreter words the packet of each
   * rule, return and policy event with it, keeps the words in `traceNotes`
   * and records their number + 1 as the event's EV_ARG (0: not described).
   */
  traceDescribe: ((pkt: Packet) => string) | null = null;
  /**
   * Whether a rule's event is described at its counter, after its matches and
   * before its target, as ipt_do_table()'s trace_packet() logs it (the
   * legacy backend), rather than after the rule, as nft_do_chain()'s
   * nft_trace_packet() reports it.
   */
  traceAtCounter = false;
  /** The descriptions of the current traced run. */
  readonly traceNotes: string[] = [];
  /** Program rule index of the reject that ended the last run, -1 when none (engine/vm-table.ts clears it per run). */
  rejectRule = -1;
  /**
   * Words of bytecode the interpreter walked (int32, wrapping): at each
   * chain it leaves (a verdict, a jump, its END), the distance from the
   * chain's start. What Vm 'auto' measures.
   */
  walk = 0;
  /** The node's conntrack table and NAT core (vm/ct-env.ts), null for an engine without a node. */
  ct: NfCtEnv | null = null;
  /** The node's ipsets (vm/ipset.ts), null for an engine without them. */
  ipsets: IpSetStore | null = null;
  /** The node's FIB (the fib expression's device-restricted lookups), null for an engine without a node. */
  fib: VmFib | null = null;
  /** The ip_set_adt_opt the xt_set expressions fill (one per VM: no allocation per packet). */
  readonly ipsetOpt = new IpSetOpt();
  /** An x_tables match run through a compat record returned true with a hotdrop (vm/expr/xtmatch.ts XT_MATCH_HOTDROP); cleared per run by the engine. */
  xtHotdrop = false;

  constructor(seed = 0x6e66766d, traceCap = 0, rng?: Int32Array) {
    this.rng = rng ?? Int32Array.of(xorshiftState(seed));
    if (traceCap > 0) this.enableTrace(traceCap);
  }

  enableTrace(cap: number): void {
    let c = 1;
    while (c < cap) c <<= 1;
    this.trace = new Int32Array(c * TRACE_WORDS);
    this.traceCap = c;
    this.traceHead = 0;
  }

  /** The recorded events, oldest first (allocates; for printers and tests). */
  events(): { type: number; chain: number; rule: number; verdict: number; arg: number }[] {
    const out = [];
    const t = this.trace;
    if (!t) return [];
    const first = Math.max(0, this.traceHead - this.traceCap);
    for (let i = first; i < this.traceHead; i++) {
      const at = (i & (this.traceCap - 1)) * TRACE_WORDS;
      out.push({ type: t[at + EV_TYPE]!, chain: t[at + EV_CHAIN]!, rule: t[at + EV_RULE]!, verdict: t[at + EV_VERDICT]!, arg: t[at + EV_ARG]! });
    }
    return out;
  }
}

/** Appends one event to the trace ring (no-op without a ring). */
export function traceRecord(env: VmEnv, type: number, chain: number, rule: number, verdict: number, arg: number): void {
  const t = env.trace;
  if (t === null) return;
  const at = (env.traceHead & (env.traceCap - 1)) * TRACE_WORDS;
  t[at + EV_TYPE] = type;
  t[at + EV_CHAIN] = chain;
  t[at + EV_RULE] = rule;
  t[at + EV_VERDICT] = verdict;
  t[at + EV_ARG] = arg;
  env.traceHead++;
}

/** xorshift32 step on env.rng: the model's prandom_u32(). */
export function prandomU32(env: VmEnv): number {
  const s = env.rng;
  let x = s[0]!;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  s[0] = x;
  return x;
}

/** The error the validator (and the builder) throw: one class, a reason and where. */
export class VmError extends Error {
  readonly pc: number;
  constructor(message: string, pc = -1) {
    super(pc >= 0 ? `${message} (at word ${pc})` : message);
    this.name = 'VmError';
    this.pc = pc;
  }
}

/** The word offset of each rule's header, by rule index (-1 when absent). */
export function ruleOffsets(prog: Program): Int32Array {
  const offs = new Int32Array(prog.nrules).fill(-1);
  const code = prog.code;
  for (let c = 0; c < chainCount(prog); c++) {
    for (let pc = prog.chains[c * CHAIN_WORDS + CH_FIRST]!; (code[pc]! & Rec.OP_MASK) === Op.RULE; pc += code[pc]! >>> Rec.OP_BITS) {
      offs[code[pc + Rec.RULE_INDEX]!] = pc;
    }
  }
  return offs;
}
