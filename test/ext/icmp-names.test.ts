/**
 * ICMP and ICMPv6 type names as iptables (__ipt_parse_icmp) and ebtables
 * (ebt_parse_icmp) read them: an unambiguous prefix, any case, of a name in
 * libxt_icmp.h's tables (which spell two with capitals: TOS-...).
 */
import { describe, expect, it } from 'vitest';
import { ICMP_NAMES, ICMPV6_NAMES, typeByName } from '../../ext/match/icmp.js';
import { parseIcmpTypeCode } from '../../ext/ebt/values.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';

describe('ICMP type names', () => {
  it('match an unambiguous prefix in any case, and refuse an ambiguous one', () => {
    expect(typeByName(ICMP_NAMES, 'Echo-ReQ', 'ICMP')?.[1]).toBe(8);
    expect(typeByName(ICMP_NAMES, 'PORT-UNREACHABLE', 'ICMP')?.slice(1)).toEqual([3, 3, 3]);
    expect(typeByName(ICMP_NAMES, '8', 'ICMP')).toBeUndefined();
    expect(() => typeByName(ICMP_NAMES, 'echo', 'ICMP')).toThrow("Ambiguous ICMP type `echo': `echo-reply' or `echo-request'?");
    expect(typeByName(ICMPV6_NAMES, 'Neighbour-S', 'ICMPv6')?.[1]).toBe(135);
    expect(typeByName(ICMP_NAMES, 'tos-network-u', 'ICMP')?.slice(1)).toEqual([3, 11, 11]);
    expect(() => typeByName(ICMP_NAMES, 'tos-', 'ICMP')).toThrow("Ambiguous ICMP type `tos-': `TOS-network-unreachable' or `TOS-host-unreachable'?");
    expect(parseIcmpTypeCode(ICMP_NAMES, 'Host-Unreachable', 'ICMP')).toEqual({ type: [3, 3], code: [1, 1] });
  });

  it('print as iptables-save prints them, whatever the case they were given in', () => {
    const rs = parseRestore('*filter\n-A INPUT -p icmp -m icmp --icmp-type Echo-Request -j ACCEPT\n-A INPUT -p icmp -m icmp ! --icmp-type HOST-unreach -j DROP\nCOMMIT\n');
    expect(saveRuleset(rs, { comments: false })).toContain('-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT\n-A INPUT -p icmp -m icmp ! --icmp-type 3/1 -j DROP\n');
  });
});
