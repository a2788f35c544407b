/**
 * The ruleset as JSON, for `save --json` and `replay --json` (README
 * "JSON output"): tables in input order, chains in iptables-save order
 * (builtins in hook order, then user chains by name), each rule as
 * iptables-save prints it, with its source line and counters (numbers:
 * exact up to 2^53).
 */
import type { Counters, Ruleset } from '../core/ast.js';
import { chainOrder, saveRule } from '../compiler/save.js';

export interface RuleJson {
  rule: string;
  line: number;
  packets: number;
  bytes: number;
}

export interface ChainJson {
  name: string;
  builtin: boolean;
  /** ACCEPT / DROP for a builtin chain, null for a user chain. */
  policy: string | null;
  /** The policy's counters (0 for a user chain). */
  packets: number;
  bytes: number;
  rules: RuleJson[];
}

export interface TableJson {
  name: string;
  chains: ChainJson[];
}

const num = (c: Counters | undefined) => ({ packets: Number(c?.packets ?? 0n), bytes: Number(c?.bytes ?? 0n) });

export function rulesetJson(rs: Ruleset): TableJson[] {
  return [...rs.tables.values()].map((t) => ({
    name: t.name,
    chains: chainOrder(t).map((c) => ({
      name: c.name,
      builtin: c.builtin,
      policy: c.builtin ? (c.policy ?? 'ACCEPT') : null,
      ...(c.builtin ? num(c.policyCounters) : num(undefined)),
      rules: c.rules.map((r) => ({ rule: saveRule(rs.family, c.name, r, false), line: r.pos.line, ...num(r.counters) })),
    })),
  }));
}

/** A --json document: two-space indented, one trailing newline. */
export function jsonDoc(doc: object): string {
  return JSON.stringify(doc, null, 2) + '\n';
}
