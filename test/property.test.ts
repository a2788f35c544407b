/**
 * Properties of the front end on generated rulesets:
 *  - they parse (the generator only writes what iptables-restore accepts);
 *  - the printed form is a fixed point: save(parse(save(parse(x)))) equals
 *    save(parse(x)), with and without counters;
 *  - user chains named like Object.prototype members behave as any chain.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { ruleset } from './helpers/gen.js';
import { runs } from './helpers/runs.js';

describe('print(parse(x)) is a fixed point', () => {
  it('for generated rulesets', () => {
    fc.assert(
      fc.property(ruleset, (text) => {
        for (const counters of [false, true]) {
          const once = saveRuleset(parseRestore(text, { counters }), { counters });
          const twice = saveRuleset(parseRestore(once, { counters }), { counters });
          expect(twice).toBe(once);
        }
      }),
      { numRuns: runs(300) },
    );
  });

  it('keeps counters when asked', () => {
    fc.assert(
      fc.property(ruleset, (text) => {
        const withC = saveRuleset(parseRestore(text, { counters: true }), { counters: true });
        for (const m of text.matchAll(/^\[(\d+):(\d+)\] -A/gm)) expect(withC).toContain(`[${m[1]}:${m[2]}] -A`);
      }),
      { numRuns: runs(100) },
    );
  });
});

describe('chain names are data, not object keys', () => {
  it('__proto__, constructor and toString are ordinary user chains', () => {
    const text = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':__proto__ - [0:0]',
      ':constructor - [0:0]',
      ':toString - [0:0]',
      '-A INPUT -j __proto__',
      '-A __proto__ -j constructor',
      '-A constructor -g toString',
      '-A toString -j RETURN',
      'COMMIT',
      '',
    ].join('\n');
    const out = saveRuleset(parseRestore(text), { comments: false });
    expect(out).toBe(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':__proto__ - [0:0]',
        ':constructor - [0:0]',
        ':toString - [0:0]',
        '-A INPUT -j __proto__',
        '-A __proto__ -j constructor',
        '-A constructor -g toString',
        '-A toString -j RETURN',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
