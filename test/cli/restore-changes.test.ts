/**
 * Changes applied as iptables-restore applies them: the parser with a
 * `base` (what the kernel holds) and `noflush`, and the commands that take
 * `--apply CHANGE [--noflush]` (save, diff, trace, replay with its workers).
 * What the kernel does with the same inputs is test/kernel/noflush-kernel.test.ts;
 * here the rules that follow from it, on every machine.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/corpus.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { runs } from '../helpers/runs.js';
import { restoreSession } from '../helpers/restore-gen.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { LINKTYPE_ETHERNET, writePcap } from '../../hooks/input/capture.js';
import type { Ruleset } from '../../core/ast.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import type { Backend } from '../../core/netfilter.js';

const NODE = join(REPO, 'examples/node');
const CHANGE = join(REPO, 'examples/changes/checkout-endpoints.txt');
const dir = mkdtempSync(join(tmpdir(), 'nfvm-restore-changes-'));
let cli = '';
const nfvm = (args: string[], input?: string) => runCli(cli, args, input);

const BASE = `*filter
:INPUT DROP [10:1000]
:FORWARD DROP [5:500]
:OUTPUT ACCEPT [3:300]
:A - [0:0]
[1:100] -A INPUT -s 10.0.0.1/32 -j A
[3:300] -A A -p tcp -m tcp --dport 22 -j ACCEPT
[4:400] -A A -p tcp -m tcp --dport 23 -j DROP
COMMIT
`;

const apply = (base: Ruleset, text: string, o: { noflush?: boolean; counters?: boolean; backend?: Backend } = {}) =>
  parseRestore(text, { file: 'change', base, noflush: o.noflush ?? true, counters: o.counters, backend: o.backend });
const saved = (rs: Ruleset) => saveRuleset(rs, { counters: true, comments: false });
const lines = (rs: Ruleset) => saved(rs).split('\n');

describe('parseRestore with a base', () => {
  const base = (backend: Backend = 'legacy') => parseRestore(BASE, { file: 'base', counters: true, backend });

  it('--noflush: a chain line flushes that user chain; the rules left alone keep their counters', () => {
    const rs = apply(base(), '*filter\n:A - [0:0]\n-A A -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n');
    expect(lines(rs)).toEqual(expect.arrayContaining(['[1:100] -A INPUT -s 10.0.0.1/32 -j A', '[0:0] -A A -p tcp -m tcp --dport 80 -j ACCEPT']));
    expect(saved(rs)).not.toContain('--dport 22');
  });

  it('without --noflush the table is flushed (rules and user chains), its policies kept; a chain line for a chain the block made is refused (legacy)', () => {
    const rs = apply(base(), '*filter\n-A INPUT -j ACCEPT\nCOMMIT\n', { noflush: false });
    expect(lines(rs).filter((l) => l.startsWith(':') || l.startsWith('['))).toEqual([':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', '[0:0] -A INPUT -j ACCEPT']);
    expect(() => apply(base(), '*filter\n-N X\n:X - [0:0]\nCOMMIT\n', { noflush: false })).toThrow(/change:3:2: error creating chain 'X': File exists/);
    // iptables-nft-restore deletes the table: the policies start from ACCEPT again, and a chain line flushes
    const nft = apply(base('nft'), '*filter\n-N X\n:X - [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n', { noflush: false, backend: 'nft' });
    expect(lines(nft).filter((l) => l.startsWith(':'))).toEqual([':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':X - [0:0]']);
  });

  it('legacy: a block that changed something zeroes the policy counters it did not set; one that changed nothing keeps them; nft keeps them', () => {
    expect(lines(apply(base(), '*filter\n-A OUTPUT -j ACCEPT\nCOMMIT\n')).slice(1, 4)).toEqual([':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]']);
    expect(lines(apply(base(), '*filter\nCOMMIT\n')).slice(1, 4)).toEqual([':INPUT DROP [10:1000]', ':FORWARD DROP [5:500]', ':OUTPUT ACCEPT [3:300]']);
    expect(lines(apply(base(), '*filter\n:FORWARD ACCEPT [9:900]\nCOMMIT\n', { counters: true })).slice(1, 4)).toEqual([':INPUT DROP [0:0]', ':FORWARD ACCEPT [9:900]', ':OUTPUT ACCEPT [0:0]']);
    expect(lines(apply(base('nft'), '*filter\n-A OUTPUT -j ACCEPT\nCOMMIT\n', { backend: 'nft' })).slice(1, 4)).toEqual([':INPUT DROP [10:1000]', ':FORWARD DROP [5:500]', ':OUTPUT ACCEPT [3:300]']);
  });

  it('the counters of a change count only with -c; -Z zeroes what the kernel counted, not what the block set (legacy), everything (nft)', () => {
    expect(saved(apply(base(), '*filter\n[7:700] -A OUTPUT -j ACCEPT\nCOMMIT\n'))).toContain('[0:0] -A OUTPUT -j ACCEPT');
    const z = '*filter\n[7:700] -A OUTPUT -j ACCEPT\n-Z\nCOMMIT\n';
    expect(lines(apply(base(), z, { counters: true })).filter((l) => l.startsWith('['))).toEqual(['[0:0] -A INPUT -s 10.0.0.1/32 -j A', '[7:700] -A OUTPUT -j ACCEPT', '[0:0] -A A -p tcp -m tcp --dport 22 -j ACCEPT', '[0:0] -A A -p tcp -m tcp --dport 23 -j DROP']);
    expect(saved(apply(base('nft'), z, { counters: true, backend: 'nft' }))).toContain('[0:0] -A OUTPUT -j ACCEPT');
  });

  it('a rule of the base a change makes wrong is refused at the COMMIT line, as iptables-restore reports it; the change\'s own rules where they are', () => {
    const b = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n-A OUTPUT -j X\n-A X -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n', { file: 'base' });
    expect(() => apply(b, '*filter\n-A INPUT -p tcp -j X\nCOMMIT\n')).toThrow(/^change:3:1: .*owner match: used from hooks INPUT\/OUTPUT, but only valid from OUTPUT\/POSTROUTING \(a rule the input did not change, at line 7 of what it is applied to; iptables-restore: line 3 failed\)$/);
    expect(() => apply(b, '*filter\n-A INPUT -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n')).toThrow(/^change:2:/);
  });

  it('one input, a table twice: the second block starts from the first\'s table flushed, its policies kept', () => {
    const rs = parseRestore('*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n*filter\n-A OUTPUT -j DROP\nCOMMIT\n', { file: 'x' });
    expect(lines(rs).filter((l) => l.startsWith(':') || l.startsWith('['))).toEqual([':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '[0:0] -A OUTPUT -j DROP']);
  });

  it('property: the ruleset a change is applied to is never changed (generated sessions, both backends, with and without --noflush)', () => {
    let applied = 0;
    for (let seed = 1; seed <= runs(60); seed++) {
      for (const backend of ['legacy', 'nft'] as const) {
        const s = restoreSession(seed, 6, backend);
        let rs = parseRestore(s.base, { file: 'base', counters: true, backend });
        for (const step of s.steps) {
          const before = saved(rs);
          let next: Ruleset | undefined;
          try {
            next = parseRestore(step.text, { file: 'step', base: rs, noflush: step.noflush, counters: step.counters, backend });
          } catch {
            // refused: the session goes on from the same tables
          }
          expect(saved(rs)).toBe(before);
          if (next) {
            applied++;
            rs = next;
          }
        }
      }
    }
    expect(applied).toBeGreaterThan(runs(60));
  });
});

describe('NodeModelOptions.changes', () => {
  it('a change of a family the snapshot has no rules of applies to empty tables; the IPv4 rules stay', () => {
    const node = readSnapshot(join(REPO, 'test/path/fixtures/node'));
    const m = buildNodeModel(node, { changes: [{ file: 'v6.txt', text: '*filter\n-A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n', family: 'ip6', noflush: true }] });
    expect(saveRuleset(m.rs6!, { comments: false })).toBe('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n');
    expect(saveRuleset(m.rs4!)).toBe(saveRuleset(buildNodeModel(readSnapshot(join(REPO, 'test/path/fixtures/node'))).rs4!));
    expect(() => buildNodeModel(readSnapshot(join(REPO, 'test/path/fixtures/node')), { changes: [{ file: 'bad.txt', text: '*filter\n-A INPUT -m set --match-set nope src -j DROP\nCOMMIT\n', family: 'ip', noflush: true }] }))
      .toThrow(/^bad\.txt:2:\d+: .*nope/);
  });
});

describe('nfvm save / diff / trace / replay --apply', () => {
  beforeAll(async () => {
    cli = await buildCli();
  });

  it('save FILE --apply CHANGE --noflush prints the tables as iptables-save would after iptables-restore --noflush', () => {
    const base = join(dir, 'base.txt');
    writeFileSync(base, BASE);
    const change = join(dir, 'change.txt');
    writeFileSync(change, '*filter\n:A - [0:0]\n-A A -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n');
    const r = nfvm(['save', base, '-c', '--apply', change, '--noflush']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toContain(':INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n[1:100] -A INPUT -s 10.0.0.1/32 -j A\n[0:0] -A A -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n');
    // the same change without --noflush: A is gone with the flush, so the chain line makes it again, INPUT's rule is gone
    expect(nfvm(['save', base, '--apply', change]).out).toContain(':A - [0:0]\n-A A -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n');
    expect(nfvm(['save', base, '--noflush'])).toMatchObject({ code: 2, out: '', err: expect.stringMatching(/--noflush and --backend say how --apply CHANGE applies/) });
    expect(nfvm(['save', base, '--apply', join(dir, 'nope.txt')])).toMatchObject({ code: 2, out: '' });
    writeFileSync(join(dir, 'bad.txt'), '*filter\n-A B -j ACCEPT\nCOMMIT\n');
    expect(nfvm(['save', base, '--apply', join(dir, 'bad.txt'), '--noflush'])).toMatchObject({ code: 2, out: '', err: expect.stringContaining('bad.txt:2:4: chain "B" does not exist in table filter') });
  });

  const nodePort = 'tcp 198.51.100.7:40000 > 192.168.1.10:31080 syn iif eth0';

  it('trace SNAPSHOT --apply CHANGE --noflush: the example NodePort answers once kube-proxy\'s change for shop/checkout is in', () => {
    expect(nfvm(['trace', NODE, '--packet', nodePort]).out).toMatch(/rejected by filter:KUBE-EXTERNAL-SERVICES rule 1 with icmp-port-unreachable\n$/);
    const after = nfvm(['trace', NODE, '--apply', CHANGE, '--noflush', '--packet', nodePort]);
    expect(after.code).toBe(0);
    expect(after.out).toMatch(/nat:KUBE-SEP-UBSAPSODLUDCCVOZ:rule:2 /);
    expect(after.out).toMatch(/DNAT to 10\.244\.2\.40:8080, SNAT to 192\.168\.1\.10:\d+, forwarded out eth0 via 192\.168\.1\.1\n$/);
    // without --noflush the change flushes both tables: the example's other rules are gone, so its chain lines name chains no rule of it made
    expect(nfvm(['trace', NODE, '--apply', CHANGE, '--packet', nodePort])).toMatchObject({ code: 2, err: expect.stringMatching(/checkout-endpoints\.txt:\d+:\d+: .*KUBE-EXT-GJ4MHFOKTVHVN3IL/) });
  });

  it('diff SNAPSHOT --apply CHANGE --noflush finds what the change does to the node\'s packets (exit 1)', () => {
    const r = nfvm(['diff', NODE, '--apply', CHANGE, '--noflush', '--max', '50', '--packets', '200']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('(NEW)');
    expect(r.out).toMatch(/--packet "tcp [\d.]+:\d+ > 192\.168\.1\.10:31080/);
    expect(r.out).toMatch(/--packet "tcp [\d.]+:\d+ > 10\.96\.40\.7:80/);
    expect(nfvm(['diff', NODE, NODE, '--apply', CHANGE])).toMatchObject({ code: 2, err: expect.stringMatching(/diff --apply takes OLD alone/) });
  });

  it('replay SNAPSHOT --apply CHANGE --noflush --ipset FILE: one thread and two workers (which read the changed rules and the sets too) count alike', () => {
    // a node without nat (no state shared across connections): the capture is spread over the workers
    const snap = join(dir, 'node');
    cpSync(join(REPO, 'test/path/fixtures/node'), snap, { recursive: true });
    writeFileSync(join(snap, 'iptables-save.txt'), '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n' +
      '-A FORWARD -i eth0 -o eth1 -p tcp -m set --match-set blocked src -j DROP\n-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n');
    writeFileSync(join(snap, 'ipset-save.txt'), 'create blocked hash:ip family inet hashsize 1024 maxelem 65536\nadd blocked 10.0.0.5\n');
    const sets = join(dir, 'sets.txt');
    writeFileSync(sets, 'create blocked hash:ip family inet hashsize 1024 maxelem 65536\nadd blocked 10.0.0.6\n');
    const change = join(dir, 'drop7.txt');
    writeFileSync(change, '*filter\n-I FORWARD 1 -s 10.0.0.7/32 -j DROP\nCOMMIT\n');
    const pcap = join(dir, 'syns.pcap');
    const frames = Array.from({ length: 400 }, (_, i) => encodeSpec(parseSpec(`tcp 10.0.0.${5 + (i % 4)}:${20000 + i} > 10.1.0.2:80 syn iif eth0 src-mac 02:00:00:00:00:09 dst-mac 02:00:00:00:00:02`)).data);
    writeFileSync(pcap, writePcap(frames.map((data, i) => ({ data, tsSec: 1, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const counters = (workers: string) => {
      const r = nfvm(['replay', snap, '--pcap', pcap, '--iface', 'eth0', '--apply', change, '--noflush', '--ipset', sets, '--save', 'iptables', '--workers', workers]);
      expect(r).toMatchObject({ code: 0, err: '' });
      return r.out;
    };
    const one = counters('1');
    expect(one).toContain('[100:4000] -A FORWARD -s 10.0.0.7/32 -j DROP\n[100:4000] -A FORWARD -i eth0 -o eth1 -p tcp -m set --match-set blocked src -j DROP\n[200:8000] -A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT\n');
    expect(counters('2')).toBe(one);
  });
});
