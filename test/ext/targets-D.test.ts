/**
 * Corner cases of the group D targets (REJECT, LOG, NFLOG, NFQUEUE, TRACE,
 * DNAT, SNAT (IPv6), MASQUERADE, REDIRECT, NETMAP, TPROXY) beyond what their
 * .t files cover. Expected save forms are what iptables-legacy 1.8.9 printed
 * for these rules in a scratch network namespace; FAIL lines were refused by
 * iptables-restore or by the kernel at COMMIT. Cases where 1.8.9 and the
 * 1.8.13 .t files disagree are left out.
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';
import type { Family } from '../../core/ast.js';

type Line = [family: Family, table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  // REJECT: names are case-insensitive prefixes, the first table entry wins
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with ""', '-j REJECT --reject-with icmp-net-unreachable', 'OK'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with icmp', '-j REJECT --reject-with icmp-net-unreachable', 'OK'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with PORT-UNREACH', '-j REJECT --reject-with icmp-port-unreachable', 'OK'],
  ['ip', 'filter', 'INPUT', '-p tcp -j REJECT --reject-with TCP', '-p tcp -j REJECT --reject-with tcp-reset', 'OK'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with echo', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with foo', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with tcp-rst', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '! -p tcp -j REJECT --reject-with tcp-rst', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j REJECT --reject-with net-unreach --reject-with host-unreach', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j REJECT ! --reject-with host-unreach', '', 'FAIL'],
  ['ip', 'mangle', 'INPUT', '-j REJECT', '', 'FAIL'],
  ['ip6', 'filter', 'INPUT', '-j REJECT --reject-with ""', '-j REJECT --reject-with icmp6-no-route', 'OK'],
  ['ip6', 'filter', 'INPUT', '-j REJECT --reject-with addr-unreach', '-j REJECT --reject-with icmp6-addr-unreachable', 'OK'],
  ['ip6', 'filter', 'INPUT', '-j REJECT --reject-with icmp6-not', '', 'FAIL'],
  ['ip6', 'filter', 'INPUT', '-j REJECT --reject-with tcp-reset -p tcp', '-p tcp -j REJECT --reject-with tcp-reset', 'OK'],
  // LOG
  ['ip', 'filter', 'INPUT', '-j LOG --log-level err', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level Alert', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level 8', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level panic', '-j LOG --log-level 0', 'OK'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level 0x3', '-j LOG --log-level 3', 'OK'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level 4', '-j LOG', 'OK'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level warning', '-j LOG', 'OK'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-level 1 --log-level 2', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-prefix ""', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-prefix "abcdefghijklmnopqrstuvwxyz0123456789"', '-j LOG --log-prefix abcdefghijklmnopqrstuvwxyz012', 'OK'],
  ['ip', 'filter', 'INPUT', `-j LOG --log-prefix "a'b\\"c"`, `-j LOG --log-prefix "a\\'b\\"c"`, 'OK'],
  ['ip', 'filter', 'INPUT', '-j LOG --log-prefix abc_-1', '=', 'OK'],
  [
    'ip', 'filter', 'INPUT',
    '-j LOG --log-macdecode --log-uid --log-ip-options --log-tcp-options --log-tcp-sequence --log-level 7',
    '-j LOG --log-level 7 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode',
    'OK',
  ],
  // NFLOG
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-prefix ""', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-prefix "a b"', '=', 'OK'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-threshold 0', '-j NFLOG', 'OK'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-range 0', '-j NFLOG', 'OK'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-range 5 --nflog-size 6', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-size 6 --nflog-range 5', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFLOG --nflog-group 1 --nflog-group 2', '', 'FAIL'],
  [
    'ip', 'filter', 'INPUT',
    '-j NFLOG --nflog-size 0x10 --nflog-group 3 --nflog-threshold 2 --nflog-prefix x',
    '-j NFLOG --nflog-prefix x --nflog-group 3 --nflog-size 16 --nflog-threshold 2',
    'OK',
  ],
  // NFQUEUE
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-num 1 --queue-balance 1:3', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-cpu-fanout', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-balance 1:2:3', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-balance 1:x', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-balance 65535:', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NFQUEUE --queue-num 65535 --queue-bypass', '=', 'OK'],
  // TRACE: raw table only
  ['ip', 'filter', 'INPUT', '-j TRACE', '', 'FAIL'],
  ['ip', 'raw', 'PREROUTING', '-j TRACE', '=', 'OK'],
  ['ip', 'raw', 'PREROUTING', '-j TRACE --foo', '', 'FAIL'],
  // DNAT (IPv4, revision 2)
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 1.1.1.1:80', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination :80', '=', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:0', '=', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p icmp -j DNAT --to-destination 1.1.1.1:5', '=', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p udplite -j DNAT --to-destination 1.1.1.1:5', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10-5', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10:20', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10x', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10-20x', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10-20/5x', '-p tcp -j DNAT --to-destination 1.1.1.1:10-20/5', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:10-20/0x10', '-p tcp -j DNAT --to-destination 1.1.1.1:10-20/16', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 1.1.1.1:0x10-020', '-p tcp -j DNAT --to-destination 1.1.1.1:16', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 1.2.3', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 01.2.3.4', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination [1.2.3.4]', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination ""', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 1.1.1.1-', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 1.1.1.1 --random --persistent', '=', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-j DNAT --to-destination 1.1.1.10-1.1.1.1', '=', 'OK'],
  // parse_to() takes a port colon at offset 0 or 2 as "no address" (meant for `:P` and `[]:P`)
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 12:80', '-p tcp -j DNAT --to-destination :80', 'OK'],
  ['ip', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination 123:80', '', 'FAIL'],
  ['ip', 'nat', 'POSTROUTING', '-j DNAT --to-destination 1.1.1.1', '', 'FAIL'],
  // DNAT (IPv6)
  ['ip6', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination []:80', '-p tcp -j DNAT --to-destination :80', 'OK'],
  ['ip6', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination [dead::beef', '', 'FAIL'],
  ['ip6', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination [dead::beef]x:80', '-p tcp -j DNAT --to-destination [dead::beef]:80', 'OK'],
  ['ip6', 'nat', 'PREROUTING', '-j DNAT --to-destination [dead::beef]', '-j DNAT --to-destination dead::beef', 'OK'],
  ['ip6', 'nat', 'PREROUTING', '-j DNAT --to-destination ::ffff:1.2.3.4', '=', 'OK'],
  ['ip6', 'nat', 'PREROUTING', '-p tcp -j DNAT --to-destination dead::beef:80', '=', 'OK'],
  [
    'ip6', 'nat', 'PREROUTING',
    '-p tcp -j DNAT --to-destination [dead::beef]:80-90/0x5 --random --persistent',
    '-p tcp -j DNAT --to-destination [dead::beef]:80-90/5 --random --persistent',
    'OK',
  ],
  ['ip6', 'nat', 'PREROUTING', '-p icmp -j DNAT --to-destination [::1]:5', '=', 'OK'],
  // SNAT (IPv6, revision 1) and MASQUERADE lose the base port of a shifted range
  ['ip6', 'nat', 'POSTROUTING', '-p tcp -j SNAT --to-source [dead::beef]:1-2/5', '-p tcp -j SNAT --to-source [dead::beef]:1-2/0', 'OK'],
  ['ip6', 'nat', 'POSTROUTING', '-p tcp -j MASQUERADE --to-ports 1-2/3', '-p tcp -j MASQUERADE --to-ports 1-2/0', 'OK'],
  ['ip', 'nat', 'POSTROUTING', '-p tcp -j MASQUERADE --to-ports 1-2/3', '-p tcp -j MASQUERADE --to-ports 1-2/0', 'OK'],
  ['ip6', 'nat', 'POSTROUTING', '-j MASQUERADE --to-ports 1', '', 'FAIL'],
  ['ip6', 'nat', 'POSTROUTING', '-p tcp -j MASQUERADE --to-ports ssh', '-p tcp -j MASQUERADE --to-ports 22', 'OK'],
  ['ip6', 'nat', 'POSTROUTING', '-p tcp -j MASQUERADE --to-ports 5-3', '', 'FAIL'],
  ['ip', 'nat', 'PREROUTING', '-j MASQUERADE', '', 'FAIL'],
  // REDIRECT refuses a shifted range
  ['ip', 'nat', 'OUTPUT', '-p tcp -j REDIRECT --to-ports 1-2/3', '', 'FAIL'],
  ['ip6', 'nat', 'OUTPUT', '-p tcp -j REDIRECT --to-ports 1-2/3', '', 'FAIL'],
  ['ip6', 'nat', 'OUTPUT', '-p tcp -j REDIRECT --to-ports 1-2 --random', '=', 'OK'],
  ['ip', 'nat', 'POSTROUTING', '-j REDIRECT', '', 'FAIL'],
  // NETMAP
  ['ip', 'nat', 'INPUT', '-j NETMAP --to 1.2.3.4/24', '-j NETMAP --to 1.2.3.0/24', 'OK'],
  ['ip', 'nat', 'INPUT', '-j NETMAP --to 1.2.3.4/0', '-j NETMAP --to 0.0.0.0/0', 'OK'],
  ['ip', 'nat', 'INPUT', '-j NETMAP --to 1.2/8', '-j NETMAP --to 1.0.0.0/8', 'OK'],
  ['ip', 'nat', 'INPUT', '-j NETMAP', '', 'FAIL'],
  ['ip', 'filter', 'INPUT', '-j NETMAP --to 1.2.3.4', '', 'FAIL'],
  // TPROXY
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 12345', '-p tcp -j TPROXY --on-port 12345 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-ip 1.2.3.4', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 70000', '-p tcp -j TPROXY --on-port 4464 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 4294967297', '-p tcp -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 010', '-p tcp -j TPROXY --on-port 10 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port +5', '-p tcp -j TPROXY --on-port 5 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port " 5"', '-p tcp -j TPROXY --on-port 5 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port -1', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 0x10', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 5x', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port "5 "', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 99999999999999999999', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port foo', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --on-port 2', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port ssh --on-ip 1.2', '-p tcp -j TPROXY --on-port 22 --on-ip 1.0.0.2 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --on-ip 0x01020304', '-p tcp -j TPROXY --on-port 1 --on-ip 1.2.3.4 --tproxy-mark 0x0/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --on-ip 1.2.3.4/24', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --on-ip foo', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --tproxy-mark 5', '-p tcp -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x5/0xffffffff', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --tproxy-mark 5/0', '-p tcp -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x5/0x0', 'OK'],
  ['ip', 'mangle', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --tproxy-mark 0x1/0x2/3', '', 'FAIL'],
  ['ip', 'mangle', 'PREROUTING', '! -p tcp -j TPROXY --on-port 1', '', 'FAIL'],
  ['ip', 'mangle', 'INPUT', '-p tcp -j TPROXY --on-port 12345', '', 'FAIL'],
  ['ip6', 'mangle', 'PREROUTING', '-p udp -j TPROXY --on-port 1', '-p udp -j TPROXY --on-port 1 --on-ip :: --tproxy-mark 0x0/0x0', 'OK'],
];

describe('group D targets: corner cases checked on iptables-legacy', () => {
  LINES.forEach(([family, table, chain, rule, expected, result], i) => {
    it(`${i + 1} ${family} [${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'targets-D.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, family);
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
