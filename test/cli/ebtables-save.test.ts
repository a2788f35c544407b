/**
 * `nfvm save --family bridge` through the bundled command: ebtables-save
 * text in, ebtables-save text out (counters with -c), `--among-src-file`
 * read next to the input, bad input a located error with exit 2 and
 * nothing on stdout.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-ebt-save-'));
beforeAll(async () => {
  cli = await buildCli();
}, 120_000);

describe('nfvm save --family bridge', () => {
  it('prints ebtables-save text, with counters under -c', () => {
    const f = join(dir, 'r.ebt');
    writeFileSync(join(dir, 'macs'), '02:00:00:00:00:01=10.0.0.1,2:0:0:0:0:2=10.0.0.2\n');
    writeFileSync(f, '*filter\n:FORWARD DROP\n:guests RETURN\n-A FORWARD -i veth+ -j guests -c 7 700\n-A guests --among-src-file macs -j ACCEPT\n*nat\n-A PREROUTING -p ip -d 02:00:00:00:00:09 -j dnat --to-dst 2:0:0:0:0:1\n');
    const r = runCli(cli, ['save', '--family', 'bridge', '-c', f]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      '*filter', ':INPUT ACCEPT', ':FORWARD DROP', ':OUTPUT ACCEPT', ':guests RETURN',
      '[7:700] -A FORWARD -i veth+ -j guests',
      '[0:0] -A guests --among-src 02:00:00:00:00:01=10.0.0.1,02:00:00:00:00:02=10.0.0.2 -j ACCEPT'.replace(/02:00:00:00:00:0([12])/g, '2:0:0:0:0:$1'),
      '*nat', ':PREROUTING ACCEPT', ':OUTPUT ACCEPT', ':POSTROUTING ACCEPT',
      '[0:0] -A PREROUTING -p IPv4 -d 02:00:00:00:00:09 -j dnat --to-dst 02:00:00:00:00:01 --dnat-target ACCEPT',
      '',
    ]);
  });
  it('refuses bad input with file:line:col and exit 2', () => {
    const r = runCli(cli, ['save', '--family', 'bridge', '-'], '*filter\n-A INPUT -p IPv4 --ip-dport 80\n');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('<stdin>:2:18: For port filtering the IP protocol must be either 6 (tcp), 17 (udp), 33 (dccp) or 132 (sctp)');
    const missing = runCli(cli, ['save', '--family', 'bridge', '-'], '*filter\n-A INPUT --among-dst-file nosuch\n');
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('<stdin>:2:27: cannot read nosuch');
  });
});
