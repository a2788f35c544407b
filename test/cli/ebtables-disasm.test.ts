/**
 * `nfvm disasm --family bridge` through the bundled command: ebtables-save
 * text compiled as ebtables-nft loads it, printed as `nft --debug=netlink`
 * prints ebtables-nft's rules; a module nfvm does not lower is a located
 * error with exit 2 and nothing on stdout.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCli, runCli } from '../helpers/cli.js';

let cli = '';
beforeAll(async () => {
  cli = await buildCli();
}, 120_000);

describe('nfvm disasm --family bridge', () => {
  it('prints ebtables-nft bytecode', () => {
    const text = '*filter\n:FORWARD DROP\n:U ACCEPT\n-A FORWARD -p IPv4 -i eth0 -j U\n-A U --ip-proto udp -p IPv4 -j mark --mark-set 0x7 --mark-target CONTINUE\n';
    const r = runCli(cli, ['disasm', '--family', 'bridge', '-'], text);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe([
      'bridge filter FORWARD',
      '  [ meta load iifname => reg 1 ]',
      '  [ cmp eq reg 1 0x30687465 0x00000000 ]',
      '  [ payload load 2b @ link header + 12 => reg 1 ]',
      '  [ cmp eq reg 1 0x00000008 ]',
      '  [ counter pkts 0 bytes 0 ]',
      '  [ immediate reg 0 jump -> U ]',
      '',
      'bridge filter U',
      '  [ payload load 2b @ link header + 12 => reg 1 ]',
      '  [ cmp eq reg 1 0x00000008 ]',
      '  [ match name ip rev 0 ]',
      '  [ counter pkts 0 bytes 0 ]',
      '  [ target name mark rev 0 ]',
      '',
      'bridge filter U',
      '  [ counter pkts 0 bytes 0 ]',
      '  [ immediate reg 0 accept ]',
      '',
    ].join('\n'));
  });
  it('refuses what it does not lower with file:line:col and exit 2', () => {
    const r = runCli(cli, ['disasm', '--family', 'bridge', '-'], '*filter\n-A INPUT --among-src 02:00:00:00:00:01\n');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('<stdin>:2:');
    expect(r.err).toContain('match among');
  });
});
