/**
 * One rule in iptables-nft's order: the IP part (ippart.ts), each match
 * through its extension's `lower` face (ext/match/NAME.ts, found in
 * ext/registry.ts), the rule counter, the target (verdict.ts). A match nfvm
 * has no module for, or whose lowering is a refusal, is refused with
 * "match X: semantics not modelled yet" at its source position.
 */
import type { MatchNode, Rule } from '../../core/ast.js';
import { emitCounter, emitXtMatchHotdrop } from '../../vm/expr/index.js';
import type { LowerCtx } from '../../ext/lower.js';
import { findMatch } from '../../ext/registry.js';
import { lowerIpPart } from './ippart.js';
import { lowerTarget } from './verdict.js';

function lowerMatch(c: LowerCtx, m: MatchNode): void {
  const mod = m.unknown ? undefined : findMatch(m.name, c.family);
  if (!mod || typeof mod.lower === 'string') return c.refuseMatch(m);
  mod.lower(c, m);
}

export function lowerRule(c: LowerCtx, rule: Rule): void {
  c.compatInRule = false;
  lowerIpPart(c, rule);
  for (const m of rule.matches) lowerMatch(c, m);
  emitCounter(c.b);
  // x_tables: a compat match that returned true with a hotdrop lets the rule count and run its
  // target, then the traversal ends (vm/expr/xtmatch.ts XT_MATCH_HOTDROP): before a verdict or jump,
  // after an extension target
  const hotdrop = c.legacy && c.compatInRule;
  if (hotdrop && rule.target.kind !== 'ext') emitXtMatchHotdrop(c.b);
  lowerTarget(c, rule.target);
  if (hotdrop && rule.target.kind === 'ext') emitXtMatchHotdrop(c.b);
}
