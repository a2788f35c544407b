/**
 * set match (libxt_set.c revision 4, kernel xt_set.c) beyond libxt_set.t:
 * expected save forms are what iptables-legacy 1.8.9 printed in a scratch
 * network namespace where the sets foo, a234567890123456789012345678901 and
 * s6 (family inet6) existed. Without the node's sets (`nfvm save` with no
 * --ipset) nfvm accepts any set name, so only name-independent FAIL lines
 * are listed; test/ext/ipset.test.ts checks the refusal of a missing set.
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: 'ip' | 'ip6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['ip', "filter", "INPUT", "-m set --match-set foo src", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set ! --match-set foo src,dst --return-nomatch ! --update-counters ! --update-subcounters --packets-eq 5 ! --bytes-eq 7", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --packets-lt 5 --bytes-gt 18446744073709551615", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --update-counters --update-subcounters", "-m set --match-set foo src", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --packets-gt 1 --packets-lt 2", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src ! --packets-lt 2", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src ! --return-nomatch", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --return-nomatch --return-nomatch", "-m set --match-set foo src --return-nomatch", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo srcx,dsty", "-m set --match-set foo src,dst", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src,dst,src,dst,src,dst", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src,dst,src,dst,src,dst,src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo sr", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src,", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --match-set foo dst", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --set foo src", "-m set --match-set foo src", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --packets-eq 0x10", "-m set --match-set foo src --packets-eq 16", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --packets-eq -1", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src --bytes-lt 18446744073709551616", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo src ! --packets-eq 3 --bytes-gt 9", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set foo ! src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo -x", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set a234567890123456789012345678901 src", "=", "OK"],
  ['ip', "filter", "INPUT", "-m set --match-set a2345678901234567890123456789012 src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m set --match-set foo dst --packets-eq 1 --packets-eq 2", "", "FAIL"],
  ['ip6', "filter", "INPUT", "-m set --match-set s6 src", "=", "OK"],
  ['ip6', "filter", "INPUT", "-m set ! --match-set s6 dst --bytes-gt 100", "=", "OK"],
];

describe('set match', () => {
  LINES.forEach(([family, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${family} ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'set-match.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, family);
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
