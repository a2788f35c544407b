/**
 * Bad input gets a typed error with file, line, column, the offending token
 * and a reason a person can act on (acorn-style: message and position are
 * both pinned).
 */
import { describe, expect, it } from 'vitest';
import { parseRestore } from '../compiler/parse/restore.js';
import { NfvmError } from '../core/errors.js';

function errorOf(text: string, family: 'ip' | 'ip6' = 'ip'): NfvmError {
  try {
    parseRestore(text, { file: 'rules.txt', family });
  } catch (e) {
    expect(e).toBeInstanceOf(NfvmError);
    return e as NfvmError;
  }
  throw new Error('expected a rejection');
}

const T = (...lines: string[]) => ['*filter', ...lines, 'COMMIT', ''].join('\n');

describe('located errors', () => {
  it.each([
    [T('-A INPUT -p tcp --dprot 22 -j ACCEPT'), 'rules.txt:2:17: unknown option "--dprot" (did you mean --dport?)', '--dprot'],
    [T('-A INPUT -p tcp --dport 65536'), "rules.txt:2:25: invalid port/service `65536' specified", '65536'],
    [T('-A INPUT -p tcp --sport 4:3'), 'rules.txt:2:25: invalid portrange (min > max)', '4:3'],
    [T('-A INPUT -m comment --comment "a"b'), "rules.txt:2:34: Bad argument `b'", 'b'],
    [T('-A INPUT ! ! -p tcp'), 'rules.txt:2:12: multiple consecutive ! not allowed', '!'],
    [T('-A INPUT ! -j ACCEPT'), 'rules.txt:2:12: cannot have ! before -j', '-j'],
    [T('-A INPUT -i eth0 -i eth1'), 'rules.txt:2:18: multiple -i flags not allowed', '-i'],
    [T('-A INPUT -i thisinterfaceistoolong0'), "rules.txt:2:13: interface name `thisinterfaceistoolong0' must be shorter than IFNAMSIZ (15)", 'thisinterfaceistoolong0'],
    [T('-A INPUT -j NOPE'), "rules.txt:2:13: Couldn't load target `NOPE':No such file or directory (no chain NOPE in table filter and no target of that name)", 'NOPE'],
    [T('-A NOCHAIN -j ACCEPT'), 'rules.txt:2:4: chain "NOCHAIN" does not exist in table filter', 'NOCHAIN'],
    [T(':X - [0:0]', ':X - [0:0]'), "rules.txt:3:2: error creating chain 'X': File exists", 'X'],
    [T('-A INPUT -j FORWARD'), 'rules.txt:2:13: cannot jump to builtin chain FORWARD', 'FORWARD'],
    [T('-A INPUT -m mark --mark 1 --mark 2'), 'rules.txt:2:27: mark: option "--mark" can only be used once.', '--mark'],
    // a second -m connmark is a clone whose options are not merged again: the last --mark is mark's (iptables 1.8.9)
    [T('-A INPUT -m connmark --mark 1 -m mark --mark 2 -m connmark --mark 3'), 'rules.txt:2:60: mark: option "--mark" can only be used once.', '--mark'],
    [T('-A INPUT -m connmark --mark 1 -m mark -m connmark --mark 3'), 'rules.txt:2:1: connmark: option "--mark" must be specified', undefined],
    [T('-A INPUT -m tcp --dport 1'), 'rules.txt:2:10: ip_tables: tcp match: only valid for protocol 6 (the rule needs -p tcp)', 'tcp'],
    ['*filter\n-A INPUT -j ACCEPT\n', 'rules.txt:3:1: COMMIT expected at line 3 (table "filter" is not committed)', undefined],
    ['*filters\nCOMMIT\n', "rules.txt:1:2: can't initialize iptables table `filters': Table does not exist (do you need to insmod?)", 'filters'],
    ['-A INPUT -j ACCEPT\n', 'rules.txt:1:1: unexpected input outside a table (expected "*table")', '-A INPUT -j ACCEPT'],
    ['*filter\r\nCOMMIT\r\n', 'rules.txt:1:8: carriage return at end of line (CRLF line endings are not accepted by iptables-restore)', '\\r'],
    [T(':INPUT BOUNCE [0:0]'), "rules.txt:2:8: Can't set policy `BOUNCE' on `INPUT': Bad policy name", 'BOUNCE'],
  ])('%j', (text, message, token) => {
    const e = errorOf(text);
    expect(e.message).toBe(message);
    expect(e.token).toBe(token);
    expect(e.pos).toBeDefined();
  });

  it('reports a chain loop at the jump that closes it', () => {
    const e = errorOf(T(':A - [0:0]', ':B - [0:0]', '-A INPUT -j A', '-A A -j B', '-A B -g A'));
    expect(e.message).toBe('rules.txt:6:9: chain loop A -> B -> A (the kernel refuses the table: Too many levels of symbolic links)');
  });

  it('refuses the kube-proxy style unquoted multi-word comment', () => {
    const e = errorOf(T('-A INPUT -m comment --comment kubernetes service portals -j ACCEPT'));
    expect(e.message).toBe("rules.txt:2:42: Bad argument `service'");
  });

  it('refuses placeholders that are not addresses', () => {
    const e = errorOf(T('-A INPUT -s <private_ip> -j ACCEPT'));
    expect(e.message).toBe("rules.txt:2:13: host/network `<private_ip>' not found");
  });
});

describe('accepted spellings', () => {
  it('long options with =, abbreviations, clustered short options', () => {
    const rs = parseRestore(T('-A INPUT --protocol=tcp --source=1.2.3.4 --in-interface=eth0 --dp 22 --jump=ACCEPT', '-A INPUT -ptcp -s1.2.3.4 -jACCEPT'));
    const rules = rs.tables.get('filter')!.chains.get('INPUT')!.rules;
    expect(rules).toHaveLength(2);
    expect(rules[0]!.iif).toBe('eth0');
  });

  it('-I, -D, -R, -N, -E, -X, -F and -P inside a restore file', async () => {
    const { saveRuleset } = await import('../compiler/save.js');
    const rs = parseRestore(
      T(
        '-N X',
        '-A INPUT -j ACCEPT',
        '-I INPUT 1 -s 1.1.1.1 -j DROP',
        '-I INPUT 2 -j X',
        '-A INPUT -p udp -j ACCEPT',
        '-D INPUT -j ACCEPT',
        '-R INPUT 3 -p tcp -j ACCEPT',
        '-E X Y',
        '-N Z',
        '-X Z',
        '-P FORWARD DROP',
        '-N W',
        '-A W -j RETURN',
        '-F W',
      ),
    );
    expect(saveRuleset(rs, { comments: false })).toBe(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':W - [0:0]',
        ':Y - [0:0]',
        '-A INPUT -s 1.1.1.1/32 -j DROP',
        '-A INPUT -j Y',
        '-A INPUT -p tcp -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('multiple addresses expand source-major, as iptables does', async () => {
    const { saveRuleset } = await import('../compiler/save.js');
    const out = saveRuleset(parseRestore(T('-A INPUT -s 1.2.3.4,5.6.7.8 -d 9.9.9.9,8.8.8.8')), { comments: false });
    expect(out.split('\n').filter((l) => l.startsWith('-A'))).toEqual([
      '-A INPUT -s 1.2.3.4/32 -d 9.9.9.9/32',
      '-A INPUT -s 1.2.3.4/32 -d 8.8.8.8/32',
      '-A INPUT -s 5.6.7.8/32 -d 9.9.9.9/32',
      '-A INPUT -s 5.6.7.8/32 -d 8.8.8.8/32',
    ]);
  });
});

describe('family-specific extensions', () => {
  it.each([
    ['ip6', '-A INPUT -m ttl --ttl-eq 1', "rules.txt:2:13: Couldn't load match `ttl': it exists only for IPv4 (iptables)"],
    ['ip6', '-A INPUT -m realm --realm 1', "rules.txt:2:13: Couldn't load match `realm': it exists only for IPv4 (iptables)"],
    ['ip', '-A INPUT -m hl --hl-eq 1', "rules.txt:2:13: Couldn't load match `hl': it exists only for IPv6 (ip6tables)"],
    ['ip', '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1', "rules.txt:2:26: Couldn't load match `icmp6': it exists only for IPv6 (ip6tables)"],
  ] as const)('%s %s', (family, rule, message) => {
    expect(errorOf(T(rule), family).message).toBe(message);
  });
});
