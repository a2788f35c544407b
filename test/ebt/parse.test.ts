/**
 * The ebtables parser and printer on real inputs: libvirt's nwfilter
 * command lists load, iptables' ebtables-save blobs load and print back as
 * ebtables-save prints them (counters in both forms, chain policies,
 * broute, among), and bad input gets a located error.
 */
import { describe, expect, it } from 'vitest';
import { applyEbtCommands, emptyEbtRuleset, ebtTable, parseEbtRestore } from '../../compiler/ebt/restore.js';
import { saveEbtRuleset } from '../../compiler/ebt/save.js';
import { NfvmError } from '../../core/errors.js';
import { describeCorpus } from '../helpers/corpus.js';
import { ebtShellBlob, libvirtCommands, libvirtFiles } from '../helpers/ebt-corpus.js';

const save = (text: string, counters = false) => saveEbtRuleset(parseEbtRestore(text, { file: 't.ebt' }), { comments: false, counters });

function located(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    if (e instanceof NfvmError && e.pos) return e.message;
    throw e;
  }
  throw new Error('accepted');
}

describeCorpus('libvirt nwfilter ebtables command lists', () => {
  /**
   * libvirt creates its libvirt-J-/libvirt-P- chains before these commands
   * and runs the -F/-X cleanup of chains it is about to create ignoring
   * their errors; the same here, and nothing else is tolerated.
   */
  function load(files: readonly string[]) {
    const rs = emptyEbtRuleset();
    const nat = ebtTable(rs, 'nat');
    for (const name of ['libvirt-J-vnet0', 'libvirt-P-vnet0']) nat.chains.set(name, { name, builtin: false, policy: 'ACCEPT', policyCounters: { packets: 0n, bytes: 0n }, rules: [], pos: undefined });
    let cleanupRefused = 0;
    let applied = 0;
    for (const f of files) {
      for (const c of libvirtCommands(f)) {
        try {
          applyEbtCommands(rs, [c], { file: f });
          applied++;
        } catch (e) {
          if (!(e instanceof NfvmError) || !/^-[FX]$/.test(c.args[2]?.text ?? '') || !/does not exist/.test(e.reason)) throw e;
          cleanupRefused++;
        }
      }
    }
    return { rs, applied, cleanupRefused };
  }

  it('every file loads', () => {
    const files = libvirtFiles();
    expect(files).toEqual(['arp-linux.args', 'ip-linux.args', 'mac-linux.args', 'stp-linux.args', 'vlan-linux.args']);
    const { rs, applied, cleanupRefused } = load(files);
    expect(cleanupRefused).toBe(4);
    const nat = rs.tables.get('nat')!;
    const rules = [...nat.chains.values()].reduce((n, c) => n + c.rules.length, 0);
    expect(rules).toBe(applied - 4 /* -N of the stp chains, -F/-X that succeeded */ + 2);
    const text = saveEbtRuleset(rs, { comments: false });
    // the spellings libvirt uses come back in ebtables-save's canonical form
    expect(text).toContain('-A libvirt-J-vnet0 -p ARP -s 01:02:03:04:05:06 -d aa:bb:cc:dd:ee:ff --arp-op Request --arp-htype 12 --arp-ptype 0x22 --arp-mac-src 01:02:03:04:05:06 --arp-mac-dst 0a:0b:0c:0d:0e:0f -j ACCEPT');
    expect(text).toContain('-A libvirt-J-vnet0 -p IPv4 --ip-src 10.1.0.0/17 --ip-dst 10.1.2.0/24 --ip-tos 0x3F --ip-proto udp -j ACCEPT');
    expect(text).toContain('-A J-vnet0-stp-xyz -s 01:02:03:04:05:06 -d BGA --stp-root-prio 4660:9029 --stp-root-addr 06:05:04:03:02:01 --stp-root-cost 287454020:573785173 -j RETURN');
    expect(text).toContain('-A libvirt-J-vnet0 -p 802_1Q -s 01:02:03:04:05:06 -d aa:bb:cc:dd:ee:ff --vlan-encap 2054 -j DROP');
    expect(text).toContain('-A libvirt-P-vnet0 -p 0xffff -d aa:bb:cc:dd:ee:ff -j ACCEPT');
    // and what is printed loads back to the same text
    expect(save(text)).toBe(text);
  });
});

describeCorpus('iptables ebtables shell test blobs', () => {
  it('0002: a dump of every module round-trips byte for byte (the redirect target keeps its trailing blank)', () => {
    const dump = ebtShellBlob('0002-ebtables-save-restore_0', '01-var_DUMP.txt');
    const out = save(dump);
    expect(out).toBe(dump.replace(/^(-A .*)$/gm, (l) => l));
    expect(out).toContain('-A PREROUTING -j redirect \n');
  });
  it('0003: defaults are printed (limit burst, log level, CONTINUE)', () => {
    const out = save(ebtShellBlob('0003-ebtables-restore-defaults_0', '01-var_DUMP.txt'));
    expect(out).toBe(ebtShellBlob('0003-ebtables-restore-defaults_0', '02-var_EXPECT.txt'));
  });
  it('0004: counters print as [p:b] and load from both forms', () => {
    const plain = ebtShellBlob('0004-save-counters_0', '03-var_EXPECT.txt');
    const bracket = ebtShellBlob('0004-save-counters_0', '04-var_EXPECT.txt');
    const dashC = ebtShellBlob('0004-save-counters_0', '05-var_EXPECT.txt');
    expect(save(plain)).toBe(plain);
    expect(save(plain, true)).toBe(bracket);
    expect(save(dashC, true)).toBe(bracket);
    expect(save(bracket, true)).toBe(bracket);
  });
  it('0005: interface names with + and user chains', () => {
    const t = ebtShellBlob('0005-ifnamechecks_0', '01-var_EXPECT.txt');
    expect(save(t)).toBe(t);
  });
  it('0006: among lists load (MACs without leading zeros, MAC=IP pairs)', () => {
    for (const b of ['01-var_RULESET.txt', '02-var_RULESET.txt', '03-var_RULESET.txt']) {
      const t = ebtShellBlob('0006-flush_0', b);
      expect(save(save(t))).toBe(save(t));
    }
    expect(save(ebtShellBlob('0006-flush_0', '01-var_RULESET.txt'))).toContain('-A OUTPUT --among-src c0:ff:ee:90:0:0=192.168.0.1 -j DROP');
  });
  it('0007: user chain policies', () => {
    const base = ebtShellBlob('0007-chain-policies_0', '01-var_EXPECT_BASE.txt');
    const t = base + ':BAR RETURN\n:BAZ ACCEPT\n:FOO DROP\n';
    expect(save(t)).toBe(t);
  });
  it('0009: broute and nat with -P and COMMIT (printed in ebtables-nft-save\'s table order: filter, nat, broute)', () => {
    const out = save(ebtShellBlob('0009-broute-bug_0', '01-heredoc.txt'));
    expect(out).toBe('*nat\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\n*broute\n:BROUTING ACCEPT\n');
  });
  it('0011: -c PCNT BCNT on rules', () => {
    const out = save(ebtShellBlob('0011-rulenum_0', '01-heredoc.txt'), true);
    expect(out.split('\n')).toContain(ebtShellBlob('0011-rulenum_0', '04-var_EXPECT.txt').trim());
    expect(out.split('\n')).toContain(ebtShellBlob('0011-rulenum_0', '05-var_EXPECT.txt').trim());
  });
  it('0012: among with several MACs', () => {
    expect(save(ebtShellBlob('0012-restore-delete-among_0', '01-var_RULESET.txt'))).toContain(
      '-A FORWARD --among-dst c0:ff:ee:0:ba:be,de:ad:0:be:ee:ff -j CONTINUE',
    );
  });
});

describe('ebtables commands', () => {
  const cmds = (...lines: string[]) => {
    const text = '*filter\n' + lines.join('\n') + '\n';
    return save(text);
  };
  it('takes the old-style ! after an option, the new style before it, and prints the new style', () => {
    expect(cmds('-A INPUT -p ! ARP -s ! Broadcast')).toContain('-A INPUT ! -p ARP ! -s Broadcast -j CONTINUE');
    expect(cmds('-A INPUT -p ARP --arp-ip-dst ! 1.2.3.4 --arp-gratuitous !')).toContain('-A INPUT -p ARP ! --arp-ip-dst 1.2.3.4 ! --arp-gratuitous -j CONTINUE');
    expect(cmds('-A INPUT -p IPv4 ! --ip-src 1.2.3.4/255.255.0.0')).toContain('-A INPUT -p IPv4 ! --ip-src 1.2.0.0/16 -j CONTINUE');
  });
  it('abbreviates long options as getopt_long does', () => {
    expect(cmds('-A INPUT --stp-root-pri 1 --pkttype host')).toContain('--stp-root-prio 1 --pkttype-type host');
    expect(located(() => cmds('-A INPUT --stp-root 1'))).toBe('t.ebt:2:10: option "--stp-root" is ambiguous; possibilities: --stp-root-prio --stp-root-addr --stp-root-cost');
  });
  it('user chains, jumps, policies, -I, -D, -E, -X', () => {
    const out = cmds(
      '-N a -P RETURN', '-N b', '-A INPUT -j a', '-A a -j b', '-I a 1 -s Multicast -j DROP', '-D a -j b', '-E b c', '-X c', '-P INPUT DROP',
    );
    expect(out).toBe('*filter\n:INPUT DROP\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n:a RETURN\n-A INPUT -j a\n-A a -s Multicast -j DROP\n');
  });
  it('refuses what ebtables refuses, with the line and column', () => {
    expect(located(() => cmds('-A INPUT -p 0x5ff'))).toBe('t.ebt:2:13: Sorry, protocols have values above or equal to 0x0600');
    expect(located(() => cmds('-A OUTPUT -i eth0'))).toBe('t.ebt:2:11: Use -i only in INPUT, FORWARD, PREROUTING and BROUTING chains');
    expect(located(() => cmds('-A INPUT -j nosuch'))).toBe("t.ebt:2:13: Chain 'nosuch' does not exist");
    expect(located(() => cmds('-P INPUT RETURN'))).toBe('t.ebt:2:1: Policy RETURN only allowed for user defined chains');
    expect(located(() => cmds(':INPUT CONTINUE'))).toBe("t.ebt:2:8: Wrong policy 'CONTINUE'");
    expect(located(() => cmds('-A INPUT --limit 1/s --limit 2/s'))).toBe('t.ebt:2:22: Multiple use of same option not allowed');
    expect(located(() => cmds('-A INPUT -p IPv4 ! --ip-src ! 1.2.3.4'))).toBe("t.ebt:2:29: Double use of '!' not allowed");
    expect(located(() => cmds('-A INPUT --mark-set 1'))).toMatch(/^t\.ebt:2:10: unknown option "--mark-set" \(a target's option/);
    expect(located(() => cmds('-A INPUT -j mark'))).toBe('t.ebt:2:13: You must specify some option');
    expect(located(() => cmds('-A INPUT -i abcdefghijklmnop'))).toMatch(/^t\.ebt:2:13: interface name/);
    expect(located(() => cmds('-A INPUT -s 01:02:03:04:05'))).toBe("t.ebt:2:13: Problem with specified source mac '01:02:03:04:05'");
    expect(located(() => cmds('-A INPUT -j dnat --to-dst 0:1:2:3:4:5'))).toMatch(/^t\.ebt:2:13: target dnat: not allowed in table filter/);
    expect(located(() => cmds('-A INPUT -p 802_1Q --vlan-id 4095'))).toBe("t.ebt:2:30: Invalid --vlan-id range ('4095')");
    expect(located(() => cmds('-A INPUT --among-src-file /x'))).toBe('t.ebt:2:27: --among-src-file: no file may be read here');
    expect(located(() => save('-A INPUT'))).toMatch(/^t\.ebt:1:1: no table specified/);
    expect(located(() => save('*mangle'))).toBe("t.ebt:1:1: table 'mangle' does not exist");
  });
  it('reads --among-src-file through the file reader it is given', () => {
    const rs = parseEbtRestore('*filter\n-A INPUT --among-src-file macs.txt\n', { file: 't.ebt', readFile: (p) => (p === 'macs.txt' ? 'de:ad:be:ef:0:1=10.0.0.1,0:0:0:0:0:2\n' : '') });
    expect(saveEbtRuleset(rs, { comments: false })).toContain('-A INPUT --among-src 0:0:0:0:0:2,de:ad:be:ef:0:1=10.0.0.1 -j CONTINUE');
  });
});
