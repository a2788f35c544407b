/**
 * `nfvm fuzz --random-rulesets N`: nfvm fuzzed on rulesets it generates
 * itself (fuzz/gen.ts), each run on every engine (fuzz/engines.ts) with
 * packets from the generator's pools. Deterministic for a seed.
 */
import { parseRestore } from '../compiler/parse/restore.js';
import type { EngineOptions } from '../engine/engine.js';
import { parseIPv4 } from '../core/addr.js';
import { fuzzTable, type Divergence } from './engines.js';
import { GEN_BROADCAST, GEN_LOCAL, genPacket, genRuleset } from './gen.js';
import { pick, seededRand } from './rand.js';

export interface RandomRulesetsResult {
  rulesets: number;
  packets: number;
  divergences: Divergence[];
  /** Rules the generated rulesets had, and those a packet matched (reference engine). */
  rules: number;
  rulesHit: number;
}

export const GEN_ENGINE_OPTIONS: EngineOptions = {
  seed: 7,
  localAddrs: GEN_LOCAL.map((a) => parseIPv4(a)!),
  broadcastAddrs: GEN_BROADCAST.map((a) => parseIPv4(a)!),
};

/**
 * Fuzzes `n` generated rulesets with `packetsEach` packets each (stops
 * early when `deadline`, a Date.now() value, passes; `progress` is called
 * after each ruleset).
 */
export function fuzzRandomRulesets(n: number, seed: number, packetsEach: number, deadline = Infinity, progress?: (done: number, r: RandomRulesetsResult) => void): RandomRulesetsResult {
  const rand = seededRand(seed);
  const res: RandomRulesetsResult = { rulesets: 0, packets: 0, divergences: [], rules: 0, rulesHit: 0 };
  for (let i = 0; i < n && Date.now() < deadline; i++) {
    const gen = genRuleset(rand);
    const rs = parseRestore(gen.text);
    const packets = Array.from({ length: packetsEach }, () => genPacket(rand, pick(rand, gen.chains)));
    const r = fuzzTable(rs, gen.table, GEN_ENGINE_OPTIONS, packets, gen.text);
    res.rulesets++;
    res.packets += r.packets;
    for (const d of r.divergences) if (res.divergences.length < 20) res.divergences.push(d);
    for (const hits of r.hits.values()) {
      res.rules += hits.length;
      res.rulesHit += hits.filter((h) => h > 0).length;
    }
    progress?.(res.rulesets, res);
  }
  return res;
}
