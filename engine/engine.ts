/**
 * The contract both packet engines implement: the bytecode VM (compiled by
 * compiler/lower, run by vm/interp.ts: engine/vm-table.ts) and the x_tables
 * evaluator (engine/reference/, `--engine reference`: x_tables' traversal
 * over the AST, which defines the meaning).
 * Property tests drive both through this interface and compare everything
 * it exposes: the verdict, the packet's final mark, every rule's counters
 * and the sequence of (chain, rule) visited.
 *
 * Semantics are those of x_tables (`ipt_do_table()` / `ip6t_do_table()`,
 * kernel 6.18) for a table's builtin chain:
 *  - rules are tried in order; a rule matches when its IP part and every
 *    match pass; its counters then grow (packets += 1, bytes += the L3
 *    length at the hook) BEFORE its target runs;
 *  - a match that cannot read the header it needs "hotdrops": the packet is
 *    dropped at once (verdict NF_DROP) — e.g. tcp on a truncated TCP header;
 *    matches on layer-4 fields never match a non-first fragment;
 *  - ACCEPT/DROP/QUEUE end the traversal; RETURN and the end of a user chain
 *    go back to the rule after the last `-j` (a `-g` pushes nothing); RETURN
 *    or the end of a builtin chain applies its policy (and counts it);
 *  - non-terminating targets (MARK, LOG, NFLOG, TRACE, ...) continue with
 *    the next rule; REJECT drops (NF_DROP) after recording the reply it
 *    would send; NFQUEUE returns NF_QUEUE with the queue number in the high
 *    16 bits (and NF_VERDICT_FLAG_QUEUE_BYPASS when --queue-bypass).
 */
import type { Packet } from '../vm/packet.js';
import type { Chooser } from '../vm/random.js';

/** What a trace records, in order, for one packet (iptables TRACE line kinds). */
export const enum TraceKind {
  /** A rule's matches all passed (TRACE `rule:N`). */
  RULE = 0,
  /** The end of a user chain or a RETURN went back to the caller (TRACE `return:N`). */
  RETURN = 1,
  /** A builtin chain's policy was applied (TRACE `policy:N`). */
  POLICY = 2,
}

export interface TraceEvent {
  kind: TraceKind;
  /** Chain name. */
  chain: string;
  /**
   * 1-based rule number within the chain (iptables numbering). For RETURN
   * and POLICY: the number the kernel prints, i.e. the rule count of the
   * chain plus one for an implicit return/policy at its end, or the RETURN
   * rule's own number.
   */
  rule: number;
  /**
   * The packet as the event met it, in the words of the describer run() was
   * given (undefined without one): x_tables logs a rule's TRACE line after its
   * matches and before its target (trace_packet() in ipt_do_table()), so a
   * MARK, TOS or TTL target shows in the lines after its own.
   */
  packet?: string;
}

/** Packet and byte counters, as u64 values kept in doubles (exact below 2^53). */
export interface Count {
  packets: number;
  bytes: number;
}

export interface TableEngine {
  readonly table: string;
  /**
   * Runs the packet through builtin chain `chain` (its hook comes from the
   * chain). The packet's metadata (mark, ...) is updated in place. Returns
   * the netfilter verdict code. Never throws on a packet. While tracing,
   * `describe` (when given) words the packet of each trace event
   * (TraceEvent.packet) as the event meets it.
   */
  run(chain: string, pkt: Packet, describe?: (pkt: Packet) => string): number;
  /** Counters of every rule, per chain in rule order, and of each builtin chain's policy. */
  counters(): Map<string, { rules: Count[]; policy: Count | undefined }>;
  /** Sets every counter to zero. */
  zero(): void;
  /** Turns recording of trace events on or off (off by default: no cost on the fast path). */
  setTrace(on: boolean): void;
  /** The events recorded since the last call, then cleared. */
  takeTrace(): TraceEvent[];
  /**
   * The rule whose REJECT ended the last run() (reject_tg(): the ICMP error
   * or TCP reset is the node's to send, the packet itself is dropped), as
   * TRACE numbers it; undefined when the run did not end in a REJECT.
   * Recorded with tracing off too.
   */
  lastReject(): { chain: string; rule: number } | undefined;
  /**
   * Sets (or clears) the forced-choice hook of the engine's random draws
   * (vm/random.ts): each draw of a rule whose match declares its outcomes
   * (MatchModule.random) is forced to the chooser's pick.
   */
  setChooser(c: Chooser | null): void;
  /**
   * Saves the engine's run-time state (counters, match state such as nth
   * counters and rate buckets); the returned function restores it. Absent
   * when the engine cannot (the reference keeps match state in closures).
   * `counters` false leaves the counters out: a caller that never reads
   * them (diff) saves copying two doubles per rule at every restore.
   */
  checkpoint?(counters?: boolean): () => void;
}

export type { EngineOptions } from '../ext/types.js';
