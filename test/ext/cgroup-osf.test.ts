/**
 * cgroup and osf matches (libxt_cgroup.c revision 2, libxt_osf.c; kernel
 * xt_cgroup.c, xt_osf.c): the corpus has no .t file for them. Expected save
 * forms are what iptables-legacy 1.8.9 printed in a scratch network
 * namespace; FAIL lines were refused by iptables (option ranges) or by the
 * kernel (EINVAL: cgroup with both or neither of --path/--cgroup, osf
 * without -p tcp or outside PREROUTING/INPUT/FORWARD, cgroup from
 * FORWARD).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: 'ip' | 'ip6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['ip', 'filter', 'OUTPUT', '-m cgroup --cgroup 1', '=', 'OK'],
  ['ip', 'filter', 'INPUT', '-m cgroup --cgroup 1', '=', 'OK'],
  ['ip', 'filter', 'OUTPUT', '-m cgroup ! --cgroup 0x10', '-m cgroup ! --cgroup 16', 'OK'],
  ['ip', 'filter', 'OUTPUT', '-m cgroup --path /', '-m cgroup --path "/"', 'OK'],
  ['ip6', 'filter', 'OUTPUT', '-m cgroup --path / ', '-m cgroup --path "/"', 'OK'],
  ['ip', 'filter', 'OUTPUT', '-m cgroup --path / --cgroup 1', '', 'FAIL'],
  ['ip', 'filter', 'OUTPUT', '-m cgroup', '', 'FAIL'],
  ['ip', 'filter', 'FORWARD', '-m cgroup --cgroup 1', '', 'FAIL'],
  ['ip', 'filter', 'OUTPUT', '-m cgroup --cgroup 4294967296', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-p tcp -m osf --genre Linux', '=', 'OK'],
  ['ip', 'filter', 'INPUT', '-p tcp -m osf ! --genre "Windows XP" --ttl 2 --log 1', '-p tcp -m osf ! --genre Windows XP --ttl 2 --log 1', 'OK'],
  ['ip', 'filter', 'INPUT', '-p tcp -m osf --genre Linux --ttl 1', '=', 'OK'],
  ['ip', 'filter', 'INPUT', '-p tcp -m osf --genre Linux --ttl 3', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-m osf --genre Linux', '', 'FAIL'],
  ['ip', 'filter', 'OUTPUT', '-p tcp -m osf --genre Linux', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-p tcp -m osf --ttl 1', '', 'FAIL'],
  ['ip6', 'filter', 'INPUT', '-p tcp -m osf --genre Linux', '', 'FAIL'],
];

describe('cgroup and osf', () => {
  LINES.forEach(([family, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${family} ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'cgroup-osf.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, family);
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
