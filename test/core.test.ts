/**
 * Core parser/printer behaviour found by comparing real dumps with the
 * kernel (test/kernel/dumps-kernel.test.ts). Each case states what
 * iptables-legacy-restore 1.8.9 does with the same input (observed in a
 * network namespace).
 */
import { describe, expect, it } from 'vitest';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { NfvmError } from '../core/errors.js';

function rejects(text: string, opts: Parameters<typeof parseRestore>[1] = {}): NfvmError {
  try {
    parseRestore(text, opts);
  } catch (e) {
    if (e instanceof NfvmError) return e;
    throw e;
  }
  throw new Error('accepted: ' + JSON.stringify(text));
}

const save = (text: string, opts: Parameters<typeof parseRestore>[1] = {}) =>
  saveRuleset(parseRestore(text, opts), { comments: false, counters: opts.counters ?? false });

describe('iptables-restore line handling', () => {
  it('skips empty lines, but a line of blanks outside a table fails ("iptables-restore: line 4 failed")', () => {
    expect(save('\n*filter\n\nCOMMIT\n\n')).toContain('*filter');
    const e = rejects('*filter\n-A INPUT -j ACCEPT\nCOMMIT\n \n');
    expect(e.pos?.line).toBe(4);
    expect(e.message).toMatch(/line 4 failed: a line of only blanks outside a table/);
    expect(rejects('\t\n*filter\nCOMMIT\n').pos?.line).toBe(1);
  });

  it('a line of blanks inside a table is an empty command ("no command specified")', () => {
    const e = rejects('*filter\n \n-A INPUT -j ACCEPT\nCOMMIT\n');
    expect(e.pos?.line).toBe(2);
    expect(e.message).toMatch(/no command specified/);
    expect(rejects('*filter\n\t\nCOMMIT\n').message).toMatch(/no command specified/);
  });

  it('a line of only counters is an empty command too', () => {
    const e = rejects('*filter\n[3:4]\nCOMMIT\n', { counters: true });
    expect(e.pos?.line).toBe(2);
    expect(e.message).toMatch(/no command specified/);
  });

  it('COMMIT needs its newline: at the end of the input without one it is a command ("Bad argument `COMMIT\'")', () => {
    const e = rejects('*filter\n-A INPUT -j ACCEPT\nCOMMIT');
    expect(e.pos?.line).toBe(3);
    expect(e.message).toMatch(/COMMIT at the end of the input needs a newline/);
    expect(save('*filter\n-A INPUT -j ACCEPT\nCOMMIT\n')).toContain('-A INPUT -j ACCEPT');
  });
});

describe('intrapositioned negation (iptables < 1.4.3: `-d ! ADDR`)', () => {
  it.each([
    ['-A INPUT -d ! 192.168.122.0/24 -j ACCEPT', '-d ! 192.168.122.0/24', '! -d 192.168.122.0/24'],
    ['-A INPUT -s ! 10.0.0.1 -j ACCEPT', '-s ! 10.0.0.1', '! -s 10.0.0.1'],
    ['-A INPUT -p ! tcp -j ACCEPT', '-p ! tcp', '! -p tcp'],
    ['-A INPUT -i ! eth0 -j ACCEPT', '-i ! eth0', '! -i eth0'],
    ['-A INPUT --source ! 10.0.0.1', '-s ! 10.0.0.1', '! -s 10.0.0.1'],
  ])('%s is refused (1.8.9: Bad argument / unknown protocol "!")', (rule, written, fix) => {
    const e = rejects(`*filter\n${rule}\nCOMMIT\n`);
    expect(e.pos?.line).toBe(2);
    expect(e.message).toContain(`intrapositioned negation \`${written}'`);
    expect(e.message).toContain(`write \`${fix}'`);
  });

  it('extrapositioned negation is fine', () => {
    expect(save('*filter\n-A INPUT ! -d 192.168.122.0/24 ! -p tcp -j ACCEPT\nCOMMIT\n')).toContain(
      '-A INPUT ! -d 192.168.122.0/24 ! -p tcp -j ACCEPT',
    );
  });
});

describe('chain lines under iptables-restore -c', () => {
  it('counters are read only after a policy, not after `-` (1.8.9 loads these)', () => {
    const out = save('*filter\n:INPUT -\n:X - [a:b]\n:Y -\nCOMMIT\n', { counters: true });
    expect(out).toContain(':X - [0:0]');
    expect(out).toContain(':INPUT ACCEPT [0:0]');
  });

  it('a policy without counters is refused, for builtin and user chains ("invalid policy counters")', () => {
    expect(rejects('*filter\n:INPUT ACCEPT\nCOMMIT\n', { counters: true }).message).toMatch(/invalid policy counters for chain 'INPUT'/);
    expect(rejects('*filter\n:X ACCEPT\nCOMMIT\n', { counters: true }).message).toMatch(/invalid policy counters for chain 'X'/);
    // without -c the counters are not read at all
    expect(save('*filter\n:INPUT DROP\nCOMMIT\n')).toContain(':INPUT DROP [0:0]');
  });
});

describe('matches nfvm does not know', () => {
  it('own the options nobody spells out in full (not taken as abbreviations of --set-counters, --policy, --in-interface)', () => {
    const rule = '-A INPUT -m nfvmunknown --set --pol ipsec --in 3 -j ACCEPT';
    const rs = parseRestore(`*filter\n${rule}\nCOMMIT\n`);
    const m = rs.tables.get('filter')!.chains.get('INPUT')!.rules[0]!.matches[0]!;
    expect(m.unknown).toBe(true);
    expect(m.raw).toEqual(['--set', '--pol', 'ipsec', '--in', '3']);
    expect(saveRuleset(rs, { comments: false })).toContain(rule);
  });

  it('base options given in full still apply after an unknown match', () => {
    const out = save('*filter\n-A INPUT -m nfvmunknown --foo 1 --in-interface eth0 -j ACCEPT\nCOMMIT\n');
    expect(out).toContain('-A INPUT -i eth0 -m nfvmunknown --foo 1 -j ACCEPT');
  });
});
