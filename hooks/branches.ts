/**
 * Every outcome of a packet's random decisions, with its probability:
 * `statistic --mode random` (kube-proxy's endpoint choice: which endpoints
 * can this Service packet reach?), and any draw a match declares the
 * outcomes of (MatchModule.random).
 *
 * The packet is run again and again with the node's random source in
 * forced-choice mode (vm/random.ts Chooser): each draw that feeds a
 * decision returns the raw value of one of its outcomes, chosen by a
 * script; the runs walk the tree of decisions depth first (the first
 * outcome of each decision, then the next of the deepest decision with
 * one left, ...). A branch's probability is the product of its choices'.
 * Runs that end alike (the same fate, TRACE steps and answers) are one
 * outcome; their probabilities add up. Draws that feed no enumerable
 * decision (a NAT port picked from a range with --random, the ICMP rate
 * limit's random cost) take the seeded generator's value and are counted.
 *
 * Each run starts from the same state (the caller restores the node's
 * counters, match state and random source before it). The walk stops
 * after `limit` runs; what it did not reach is reported as such.
 */
import type { Choices, Chooser } from '../vm/random.js';
import type { PathResult } from './path/fate.js';

interface Step {
  /** Indices of the outcomes with a non-zero probability. */
  options: number[];
  /** The one taken. */
  pos: number;
}

class ScriptChooser implements Chooser {
  readonly trail: Step[] = [];
  probability = 1;
  unbranched = 0;

  constructor(private readonly script: readonly number[]) {}

  draw(choices: Choices | undefined, seeded: () => number): number {
    if (!choices) {
      this.unbranched++;
      return seeded();
    }
    const options: number[] = [];
    for (let i = 0; 2 * i + 1 < choices.length; i++) if (choices[2 * i + 1]! > 0) options.push(i);
    if (options.length === 0) return seeded();
    const k = this.trail.length;
    const pos = Math.min(this.script[k] ?? 0, options.length - 1);
    this.trail.push({ options, pos });
    const i = options[pos]!;
    this.probability *= choices[2 * i + 1]!;
    return choices[2 * i]! | 0;
  }
}

export interface Outcome {
  /** The sum of the probabilities of the branches that end this way. */
  probability: number;
  /** The run of the first branch that ended this way. */
  result: PathResult;
  /** How many branches end this way. */
  branches: number;
  /** The most random decisions on one of its branches. */
  decisions: number;
}

export interface Exploration {
  /** Most probable first (ties: in the order found). */
  outcomes: Outcome[];
  /** Runs made. */
  branches: number;
  /** The walk stopped at the limit with branches left. */
  cut: boolean;
  /** The probability the outcomes found cover (1 unless cut). */
  covered: number;
  /** The most random decisions met on one branch. */
  decisions: number;
  /** Draws that fed no enumerable decision (their seeded value was used). */
  unbranched: number;
}

/** What makes two runs end alike: the fate, every TRACE step, and each answer's fate. */
export function outcomeKey(r: PathResult): string {
  const parts: string[] = [JSON.stringify(r.fate)];
  for (const s of r.steps) if (s.kind === 'trace') parts.push(`${s.table}:${s.chain}:${s.type}:${s.num}`);
  for (const a of r.answers) {
    parts.push(`answer ${a.kind} ${JSON.stringify(a.fate)}`);
    for (const s of a.steps) if (s.kind === 'trace') parts.push(`${s.table}:${s.chain}:${s.type}:${s.num}`);
  }
  return parts.join('\n');
}

/** DEFAULT_MAX_BRANCHES: the runs an exploration makes at most. */
export const DEFAULT_MAX_BRANCHES = 4096;

/**
 * Runs `run` once per branch of the random decisions (each call gets the
 * chooser to install; the caller resets the node's state first).
 */
export function exploreBranches(run: (chooser: Chooser) => PathResult, limit = DEFAULT_MAX_BRANCHES): Exploration {
  const byKey = new Map<string, Outcome>();
  let script: number[] = [];
  let branches = 0;
  let decisions = 0;
  let unbranched = 0;
  let cut = false;
  for (;;) {
    const ch = new ScriptChooser(script);
    const r = run(ch);
    branches++;
    unbranched += ch.unbranched;
    decisions = Math.max(decisions, ch.trail.length);
    const key = outcomeKey(r);
    const o = byKey.get(key);
    if (o) {
      o.probability += ch.probability;
      o.branches++;
      o.decisions = Math.max(o.decisions, ch.trail.length);
    } else byKey.set(key, { probability: ch.probability, result: r, branches: 1, decisions: ch.trail.length });
    let j = ch.trail.length - 1;
    while (j >= 0 && ch.trail[j]!.pos + 1 >= ch.trail[j]!.options.length) j--;
    if (j < 0) break;
    if (branches >= limit) {
      cut = true;
      break;
    }
    script = ch.trail.slice(0, j).map((s) => s.pos);
    script.push(ch.trail[j]!.pos + 1);
  }
  const outcomes = [...byKey.values()];
  const covered = outcomes.reduce((s, o) => s + o.probability, 0);
  outcomes.sort((a, b) => b.probability - a.probability);
  return { outcomes, branches, cut, covered: cut ? covered : 1, decisions, unbranched };
}
