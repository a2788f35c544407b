/**
 * limit (xt_limit) as iptables-nft's add_nft_limit: the average interval
 * (1/10000 s units) becomes rate/unit by walking day → hour → minute →
 * second and stopping before the unit where the rate would be too coarse;
 * the burst is kept; type packets.
 */
import { emitLimit } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LimitData } from '../../ext/match/limit.js';
import type { LowerCtx } from './ctx.js';

const XT_LIMIT_SCALE = 10000;
const MULT = [XT_LIMIT_SCALE * 24 * 60 * 60, XT_LIMIT_SCALE * 60 * 60, XT_LIMIT_SCALE * 60, XT_LIMIT_SCALE];

export function limitRate(avg: number): { rate: number; unit: number } {
  let i = 1;
  for (; i < MULT.length; i++) if (avg > MULT[i]! || Math.floor(MULT[i]! / avg) < MULT[i]! % avg) break;
  return { rate: Math.floor(MULT[i - 1]! / avg), unit: MULT[i - 1]! / XT_LIMIT_SCALE };
}

export function lowerLimit(c: LowerCtx, m: MatchNode): void {
  const d = m.data as LimitData;
  const { rate, unit } = limitRate(d.avg);
  emitLimit(c.b, rate, unit, d.burst);
}
