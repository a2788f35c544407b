/**
 * `nfvm snapshot DIR` (the bundled command, run with `ip netns exec`) in
 * throwaway network namespaces of the running kernel, with the iptables
 * rules loaded by iptables-legacy-restore only, then by iptables-nft-restore
 * only, then by both: the snapshot holds the rules of the backend that has
 * them (its header names the backend, which nfvm then registers at),
 * whatever backend `iptables-save` reads; rules in both are captured from
 * the default one, with a note. DIR exists and is empty, as a user may
 * have made it.
 *
 * Root with iproute2 and both iptables backends; skips with a message
 * otherwise (fails under CI).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelSkip, nsSh } from '../helpers/kernel.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { backendOf } from '../../hooks/snapshot/read.js';

const TOOLS = ['ip', 'iptables-save', 'iptables-legacy-restore', 'iptables-nft-restore', 'ip6tables-legacy-restore', 'ip6tables-nft-restore'];
const SKIP = kernelSkip('nfvm snapshot against the kernel\'s two iptables backends', TOOLS);

const RULES4 = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 23 -j DROP\nCOMMIT\n';
const RULES6 = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 24 -j DROP\nCOMMIT\n';
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-snap-backend-'));
let cli = '';

/** The backend plain iptables-save reads on this machine. */
function defaultBackend(): 'nft' | 'legacy' {
  return /nf_tables/.test(spawnSync('iptables-save', ['--version'], { encoding: 'utf8' }).stdout) ? 'nft' : 'legacy';
}

/** A namespace with lo up and rules loaded by the given backends' restore tools; `nfvm snapshot` into an empty DIR. */
function snapshotWith(backends: readonly ('legacy' | 'nft')[]): { dir: string; code: number | null; out: string; err: string } {
  const ns = `nfvm-sb-${process.pid % 10000}-${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
  try {
    nsSh(ns, 'ip link set lo up');
    for (const b of backends) {
      const r4 = spawnSync('ip', ['netns', 'exec', ns, `iptables-${b}-restore`], { input: RULES4, encoding: 'utf8' });
      const r6 = spawnSync('ip', ['netns', 'exec', ns, `ip6tables-${b}-restore`], { input: RULES6, encoding: 'utf8' });
      if (r4.status !== 0 || r6.status !== 0) throw new Error(`${b} restore in ${ns}: ${r4.stderr}${r6.stderr}`);
    }
    const dir = join(tmp, `${backends.join('+')}-${ns}`);
    mkdirSync(dir);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, cli, 'snapshot', dir], { encoding: 'utf8', timeout: 120_000 });
    return { dir, code: r.status, out: r.stdout, err: r.stderr };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

describe.skipIf(SKIP)('nfvm snapshot takes the rules from the backend that holds them', () => {
  beforeAll(async () => {
    cli = await buildCli();
    return () => rmSync(tmp, { recursive: true, force: true });
  });

  it.each(['legacy', 'nft'] as const)('rules loaded with the %s tools only', (backend) => {
    const s = snapshotWith([backend]);
    const name = backend === 'nft' ? 'nf_tables' : 'legacy';
    expect(s.code).toBe(0);
    expect(s.out).toContain(`iptables-save.txt from iptables-${backend}-save (${name}), ip6tables-save.txt from ip6tables-${backend}-save (${name})`);
    if (backend === defaultBackend()) expect(s.err).toBe('');
    else {
      const other = backend === 'nft' ? 'legacy' : 'nf_tables';
      expect(s.err).toBe(
        `nfvm: iptables-save.txt: the rules are in the ${name} backend (iptables-${backend}-save); iptables-save (${other}) shows none\n` +
        `nfvm: ip6tables-save.txt: the rules are in the ${name} backend (ip6tables-${backend}-save); ip6tables-save (${other}) shows none\n`);
    }
    const dump4 = readFileSync(join(s.dir, 'iptables-save.txt'), 'utf8');
    const dump6 = readFileSync(join(s.dir, 'ip6tables-save.txt'), 'utf8');
    expect(dump4).toContain('-A INPUT -p tcp -m tcp --dport 23 -j DROP');
    expect(dump6).toContain('-A INPUT -p tcp -m tcp --dport 24 -j DROP');
    expect([backendOf(dump4), backendOf(dump6)]).toEqual([backend, backend]);
    // the model runs the tables at that backend's priorities
    const t = runCli(cli, ['trace', s.dir, '--packet', 'tcp 127.0.0.1 > 127.0.0.1:23 from local', '--json']);
    expect(t.err).toBe('');
    const doc = JSON.parse(t.out) as { backend: string; text: string; fate: { by: { entry: string } } };
    expect(doc.backend).toBe(backend);
    expect(doc.text).toBe('dropped by filter:INPUT rule 1');
    expect(doc.fate.by.entry).toBe(backend === 'nft' ? 'nft ip filter' : 'iptable_filter');
  });

  it('rules in both backends: the default one, and a note', () => {
    const s = snapshotWith(['legacy', 'nft']);
    const d = defaultBackend();
    const name = (b: string) => (b === 'nft' ? 'nf_tables' : 'legacy');
    const other = d === 'nft' ? 'legacy' : 'nft';
    expect(s.code).toBe(0);
    expect(s.err).toBe(
      `nfvm: iptables-save.txt: rules in both backends (${name(d)}: 2, ${name(other)}: 2); captured the ${name(d)} ones (what iptables-save shows); the kernel runs both, nfvm models one\n` +
      `nfvm: ip6tables-save.txt: rules in both backends (${name(d)}: 1, ${name(other)}: 1); captured the ${name(d)} ones (what ip6tables-save shows); the kernel runs both, nfvm models one\n`);
    expect(backendOf(readFileSync(join(s.dir, 'iptables-save.txt'), 'utf8'))).toBe(d);
  });
});
