/**
 * SET target (libxt_SET.c revision 3, kernel xt_set.c): the corpus has no
 * libxt_SET.t. Expected save forms are what iptables-legacy 1.8.9 printed in
 * a scratch network namespace where the sets foo, m (hash:ip skbinfo) and
 * a234567890123456789012345678901 existed (nfvm accepts any set name; the
 * kernel would refuse a missing one). FAIL lines were refused by
 * iptables-restore (option errors) or by the kernel at COMMIT (--map-set
 * outside mangle; --map-prio/--map-queue outside FORWARD/OUTPUT/POSTROUTING).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: 'ip' | 'ip6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['ip', "filter", "INPUT", "-j SET --add-set foo src", "=", "OK"],
  ['ip', "filter", "INPUT", "-j SET --del-set foo src,dst --add-set foo dst --exist --timeout 10", "-j SET --add-set foo dst --exist --timeout 10 --del-set foo src,dst", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --timeout 4294967295", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --timeout 4294967294", "=", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --timeout 0x10", "-j SET --add-set foo src --timeout 16", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --timeout -1", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --del-set foo src --exist", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --del-set foo src --timeout 5", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --map-set m src --map-mark", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --map-set m src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --map-mark", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --add-set foo dst", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --exist --exist", "-j SET --add-set foo src --exist", "OK"],
  ['ip', "filter", "INPUT", "-j SET ! --add-set foo src", "-j SET --add-set foo src", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src,dst,dst --timeout 5 --timeout 6", "-j SET --add-set foo src,dst,dst --timeout 6", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --exist --timeout 0", "=", "OK"],
  ['ip', "filter", "INPUT", "-j SET --del-set foo dst,src", "=", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src,dst,src,dst,src,dst", "=", "OK"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src,dst,src,dst,src,dst,src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo bogus", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set a2345678901234567890123456789012 src", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --map-mark", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --add-set foo src --del-set foo dst --map-set m src --map-mark", "", "FAIL"],
  ['ip', "filter", "INPUT", "-j SET --timeout 5 --add-set foo src", "-j SET --add-set foo src --timeout 5", "OK"],
  ['ip', "mangle", "INPUT", "-j SET --map-set m src --map-mark", "=", "OK"],
  ['ip', "mangle", "INPUT", "-j SET --map-set m src,dst --map-prio --map-queue --map-mark --add-set foo src --exist --del-set foo dst", "", "FAIL"],
  ['ip', "mangle", "INPUT", "-j SET --map-set m src --map-prio", "", "FAIL"],
  ['ip', "mangle", "INPUT", "-j SET --map-set m src --map-queue", "", "FAIL"],
  ['ip', "mangle", "INPUT", "-j SET --map-set foo src --map-mark", "=", "OK"],
  ['ip', "mangle", "PREROUTING", "-j SET --map-set m src --map-mark", "=", "OK"],
  ['ip', "mangle", "PREROUTING", "-j SET --map-set m src,dst --map-prio --map-queue --map-mark --add-set foo src --exist --del-set foo dst", "", "FAIL"],
  ['ip', "mangle", "PREROUTING", "-j SET --map-set m src --map-prio", "", "FAIL"],
  ['ip', "mangle", "PREROUTING", "-j SET --map-set m src --map-queue", "", "FAIL"],
  ['ip', "mangle", "PREROUTING", "-j SET --map-set foo src --map-mark", "=", "OK"],
  ['ip', "mangle", "FORWARD", "-j SET --map-set m src --map-mark", "=", "OK"],
  ['ip', "mangle", "FORWARD", "-j SET --map-set m src,dst --map-prio --map-queue --map-mark --add-set foo src --exist --del-set foo dst", "-j SET --add-set foo src --exist --del-set foo dst --map-set m src,dst --map-mark --map-prio --map-queue", "OK"],
  ['ip', "mangle", "FORWARD", "-j SET --map-set m src --map-prio", "=", "OK"],
  ['ip', "mangle", "FORWARD", "-j SET --map-set m src --map-queue", "=", "OK"],
  ['ip', "mangle", "FORWARD", "-j SET --map-set foo src --map-mark", "=", "OK"],
  ['ip', "mangle", "OUTPUT", "-j SET --map-set m src --map-mark", "=", "OK"],
  ['ip', "mangle", "OUTPUT", "-j SET --map-set m src,dst --map-prio --map-queue --map-mark --add-set foo src --exist --del-set foo dst", "-j SET --add-set foo src --exist --del-set foo dst --map-set m src,dst --map-mark --map-prio --map-queue", "OK"],
  ['ip', "mangle", "OUTPUT", "-j SET --map-set m src --map-prio", "=", "OK"],
  ['ip', "mangle", "OUTPUT", "-j SET --map-set m src --map-queue", "=", "OK"],
  ['ip', "mangle", "OUTPUT", "-j SET --map-set foo src --map-mark", "=", "OK"],
  ['ip', "mangle", "POSTROUTING", "-j SET --map-set m src --map-mark", "=", "OK"],
  ['ip', "mangle", "POSTROUTING", "-j SET --map-set m src,dst --map-prio --map-queue --map-mark --add-set foo src --exist --del-set foo dst", "-j SET --add-set foo src --exist --del-set foo dst --map-set m src,dst --map-mark --map-prio --map-queue", "OK"],
  ['ip', "mangle", "POSTROUTING", "-j SET --map-set m src --map-prio", "=", "OK"],
  ['ip', "mangle", "POSTROUTING", "-j SET --map-set m src --map-queue", "=", "OK"],
  ['ip', "mangle", "POSTROUTING", "-j SET --map-set foo src --map-mark", "=", "OK"],
  ['ip6', "filter", "INPUT", "-j SET --add-set s6 src --exist", "=", "OK"],
];

describe('SET', () => {
  LINES.forEach(([family, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${family} ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'SET.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, family);
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
