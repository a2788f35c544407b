/**
 * One rule in iptables-nft's order: the IP part (ippart.ts), each match
 * through its extension's `lower` face (ext/match/NAME.ts, found in
 * ext/registry.ts), the rule counter, the target (verdict.ts). A match nfvm
 * has no module for, or whose lowering is a refusal, is refused with
 * "match X: semantics not modelled yet" at its source position.
 */
import type { MatchNode, Rule } from '../../core/ast.js';
import { emitCounter } from '../../vm/expr/index.js';
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
  lowerIpPart(c, rule);
  for (const m of rule.matches) lowerMatch(c, m);
  emitCounter(c.b);
  lowerTarget(c, rule.target);
}
