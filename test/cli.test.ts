/**
 * The nfvm command as users run it: the esbuild bundle of cli/main.ts,
 * spawned as a process (exit codes, stdout/stderr separation).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from './helpers/cli.js';
import { REPO } from './helpers/corpus.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-cli-'));

beforeAll(async () => {
  cli = await buildCli(dir);
});

function nfvm(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('nfvm save', () => {
  it('prints the example node unchanged (it is in canonical form)', () => {
    const r = nfvm(['save', join(REPO, 'examples/node/iptables-save.txt')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const src = readFileSync(join(REPO, 'examples/node/iptables-save.txt'), 'utf8');
    const strip = (s: string) => s.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(strip(r.out)).toEqual(strip(src));
  });

  it('reads stdin with -', () => {
    const r = nfvm(['save', '-', '--family', 'ip6'], '*filter\n-A INPUT -s 2001:db8::1 -p ipv6-icmp -j ACCEPT\nCOMMIT\n');
    expect(r.code).toBe(0);
    expect(r.out).toContain('-A INPUT -s 2001:db8::1/128 -p ipv6-icmp -j ACCEPT\n');
  });

  it('keeps counters with -c', () => {
    const r = nfvm(['save', '-c', '-'], '*filter\n:INPUT DROP [5:300]\n[7:420] -A INPUT -j ACCEPT\nCOMMIT\n');
    expect(r.out).toContain(':INPUT DROP [5:300]\n');
    expect(r.out).toContain('[7:420] -A INPUT -j ACCEPT\n');
  });

  it('bad input: located message on stderr, nothing on stdout, exit 2', () => {
    const f = join(dir, 'bad.rules');
    writeFileSync(f, '*filter\n-A INPUT -p tcp --dprot 22 -j ACCEPT\nCOMMIT\n');
    const r = nfvm(['save', f]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${f}:2:17: unknown option "--dprot" (did you mean --dport?)\n`);
  });

  it('a missing file, an unknown command and an unknown option exit 2', () => {
    expect(nfvm(['save', join(dir, 'nope')])).toMatchObject({ code: 2, out: '', err: `${join(dir, 'nope')}: no such file\n` });
    expect(nfvm(['frobnicate']).code).toBe(2);
    expect(nfvm(['save', '--bogus', 'x']).code).toBe(2);
    expect(nfvm(['save', '--family', 'ipx', '-']).code).toBe(2);
  });

  it('a file longer than a string can be is refused by its size, before it is read', () => {
    const f = join(dir, 'huge.txt');
    writeFileSync(f, '');
    truncateSync(f, 600 * 1024 * 1024); // sparse: nothing is written
    try {
      const r = nfvm(['save', f]);
      expect(r).toMatchObject({ code: 2, out: '' });
      expect(r.err).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 629145600 bytes, more than the \\d+ nfvm reads as one text\n$`));
      // a pipe has no size: it is read until it is too long
      const piped = spawnSync('sh', ['-c', `head -c 629145600 /dev/zero | ${process.execPath} ${JSON.stringify(cli)} save -`], { encoding: 'utf8', maxBuffer: 1 << 20 });
      expect(piped.status).toBe(2);
      expect(piped.stdout).toBe('');
      expect(piped.stderr).toMatch(/^<stdin>: longer than the \d+ bytes nfvm reads as one text\n$/);
    } finally {
      rmSync(f);
    }
  });

  it('--help and --version', () => {
    expect(nfvm(['--help'])).toMatchObject({ code: 0 });
    expect(nfvm(['--version']).out).toMatch(/^nfvm \d+\.\d+\.\d+\n$/);
  });
});
