/**
 * The random-ruleset generator of `nfvm fuzz --random-rulesets`: every
 * ruleset it draws is one iptables-restore takes (the fuzzer stops at a
 * ruleset nfvm refuses), and a module given again is left out where
 * iptables would give its options to the module in between.
 */
import { describe, expect, it } from 'vitest';
import { genRuleset, joinMatches } from '../../fuzz/gen.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { seededRand } from '../../fuzz/rand.js';
import { runs } from '../helpers/runs.js';

describe('fuzz/gen.ts', () => {
  it('leaves out a repeated module whose options the module between would take', () => {
    expect(joinMatches(['-m connmark --mark 0x1/0xffff', '-m mark --mark 0x2', '-m connmark --mark 0x3/0xffff'])).toBe('-m connmark --mark 0x1/0xffff -m mark --mark 0x2');
    // a repeat with nothing between, or with other options between, stays (iptables takes both)
    expect(joinMatches(['-m mark --mark 0x1', '-m mark ! --mark 0x2'])).toBe('-m mark --mark 0x1 -m mark ! --mark 0x2');
    expect(joinMatches(['-m connmark --mark 0x1/0xffff', '-m ttl --ttl-eq 1', '-m connmark --mark 0x3/0xffff'])).toBe('-m connmark --mark 0x1/0xffff -m ttl --ttl-eq 1 -m connmark --mark 0x3/0xffff');
  });

  it('draws only rulesets that parse and check', () => {
    const n = runs(3000);
    for (let seed = 1; seed <= n; seed++) {
      const { text } = genRuleset(seededRand(seed));
      expect(() => parseRestore(text), text).not.toThrow();
    }
  });
});
