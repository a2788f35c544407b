/**
 * `nfvm diff` on real dumps from the corpus with planted differences (a
 * swapped rule order, a widened prefix, a moved port-range edge, a changed
 * DNAT target, a changed mark mask): each is found, and every difference
 * it reports is confirmed by `nfvm trace` of both rulesets (every branch of
 * their random decisions); none is reported for a ruleset against its own
 * canonical reprint (`nfvm save`) or a reordering that cannot matter.
 * `nfvm fuzz` on real dumps and on generated rulesets: no divergence
 * between the engines, the rules no packet reached and what shadows them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { corpusPath, describeCorpus, kubeTracepacketRules, REPO } from '../helpers/corpus.js';
import { genericNodeFiles } from '../../fuzz/node.js';
import type { Family } from '../../core/ast.js';
import { constantsOf } from '../../fuzz/constants.js';
import { parseRestore } from '../../compiler/parse/restore.js';

let cli: string;
let tmp: string;

beforeAll(async () => {
  cli = await buildCli();
  tmp = mkdtempSync(join(tmpdir(), 'nfvm-fuzzdiff-'));
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const DMZ = corpusPath('diekmann-net-network', 'examples_ferm', 'dmz_router.ferm.iptables-save');
const KORNWALL = corpusPath('diekmann-net-network', 'config_kornwall', 'iptables-save');
const EXAMPLE_NODE = join(REPO, 'examples', 'node');

const kube = kubeTracepacketRules;

let n = 0;
function write(text: string): string {
  const p = join(tmp, `rules-${++n}.txt`);
  writeFileSync(p, text);
  return p;
}

/** `text` with `from` replaced by `to` (which must occur exactly once). */
function plant(text: string, from: string, to: string): string {
  expect(text.split(from).length, `planted change: "${from}" occurs once`).toBe(2);
  return text.replace(from, to);
}

/** A snapshot directory: the node's files (a directory's, or given) with `rules` as its iptables-save.txt (ip6tables-save.txt for IPv6). */
function snapshotWith(node: string | Map<string, string>, rules: string, family: Family = 'ip'): string {
  const dir = mkdtempSync(join(tmp, 'snap-'));
  const file = family === 'ip6' ? 'ip6tables-save.txt' : 'iptables-save.txt';
  if (typeof node === 'string') {
    for (const f of readdirSync(node)) if (f !== file) copyFileSync(join(node, f), join(dir, f));
  } else for (const [f, t] of node) writeFileSync(join(dir, f), t);
  writeFileSync(join(dir, file), rules);
  return dir;
}

interface DiffJson {
  differences: { packets: string[]; differs: string[] }[];
  searched: { directed: number; drawn: number; text: string };
  equivalent?: string;
}

/** What trace --all-branches says of a run: each outcome's probability, fate and the rules it met (by text). */
function traceOutcomes(dir: string, packets: readonly string[]): string {
  const r = runCli(cli, ['trace', dir, ...packets.flatMap((p) => ['--packet', p]), '--all-branches', '--json']);
  expect(r.code, r.err).toBe(0);
  const doc = JSON.parse(r.out) as { outcomes: { probability: number; text: string; steps: { kind: string; rule?: string; table?: string }[] }[] };
  return JSON.stringify(doc.outcomes.map((o) => [o.probability.toFixed(6), o.text, o.steps.filter((s) => s.kind === 'trace').map((s) => `${s.table} ${s.rule}`)]).sort());
}

/**
 * Runs nfvm diff of `oldText` against `newText` on `node` (a snapshot
 * directory, or undefined: the generic node) and checks each reported
 * difference with nfvm trace on both.
 */
function diffAndConfirm(oldText: string, newText: string, node: string | undefined, family: Family = 'ip'): DiffJson {
  const oldP = write(oldText);
  const newP = write(newText);
  const r = runCli(cli, ['diff', oldP, newP, ...(node ? ['--snapshot', node] : []), '--packets', '300', '--json']);
  expect(r.err).toBe('');
  const doc = JSON.parse(r.out) as DiffJson;
  expect(r.code).toBe(doc.differences.length ? 1 : 0);
  if (doc.differences.length) {
    const nodeFiles = node ?? genericNodeFiles([oldText, newText], family).files;
    const oldDir = snapshotWith(nodeFiles, oldText, family);
    const newDir = snapshotWith(nodeFiles, newText, family);
    for (const d of doc.differences) {
      expect(traceOutcomes(oldDir, d.packets), `trace confirms ${d.packets.join(' then ')}`).not.toBe(traceOutcomes(newDir, d.packets));
    }
  }
  return doc;
}

describeCorpus('nfvm diff finds planted differences in real dumps', () => {
  const dmz = () => readFileSync(DMZ, 'utf8');

  it('a swapped rule order (a router\'s FORWARD: an ACCEPT and the REJECT after it)', () => {
    const t = dmz();
    const a = '-A FORWARD -i eth2 -o eth1 -j ACCEPT\n';
    const b = '-A FORWARD -i eth2 -j REJECT --reject-with icmp-net-prohibited\n';
    const d = diffAndConfirm(t, plant(t, a + b, b + a), undefined);
    expect(d.differences.some((x) => x.packets[0]!.includes('iif eth2') && x.differs.includes('fate'))).toBe(true);
  }, 120_000);

  it('a widened prefix', () => {
    const t = dmz();
    const d = diffAndConfirm(t, plant(t, '-A INPUT -s 192.168.0.4/32 -i eth0', '-A INPUT -s 192.168.0.4/30 -i eth0'), undefined);
    expect(d.differences.some((x) => x.packets[0]!.startsWith('tcp 192.168.0.') && x.differs.includes('fate'))).toBe(true);
  }, 120_000);

  it('a moved port-range edge', () => {
    const t = readFileSync(KORNWALL, 'utf8');
    const d = diffAndConfirm(t, plant(t, '--sport 1023:65535 --dport 1023:65535 --tcp-flags SYN,RST,ACK SYN', '--sport 1023:65535 --dport 1024:65535 --tcp-flags SYN,RST,ACK SYN'), undefined);
    expect(d.differences.some((x) => x.packets[0]!.includes(':1023 ') && x.packets[0]!.includes('from local'))).toBe(true);
  }, 120_000);

  it('a changed DNAT target (a router; a kube-proxy endpoint)', () => {
    const t = dmz();
    const d = diffAndConfirm(t, plant(t, '--dport 25 -j DNAT --to-destination 192.168.1.3', '--dport 25 -j DNAT --to-destination 192.168.1.5'), undefined);
    expect(d.differences.some((x) => x.packets[0]!.includes('> 193.43.91.203:25') && x.differs.includes('NAT result'))).toBe(true);
    const k = kube();
    const dk = diffAndConfirm(k, plant(k, '--to-destination 10.180.0.5:80', '--to-destination 10.180.0.6:80'), EXAMPLE_NODE);
    expect(dk.differences.some((x) => x.differs.includes('NAT result'))).toBe(true);
  }, 180_000);

  it('a changed mark mask (kube-proxy KUBE-FORWARD)', () => {
    const k = kube();
    const d = diffAndConfirm(k, plant(k, '-m mark --mark 0x4000/0x4000 -j ACCEPT', '-m mark --mark 0x4000/0xc000 -j ACCEPT'), EXAMPLE_NODE);
    expect(d.differences.some((x) => /mark 0x/.test(x.packets[0]!))).toBe(true);
  }, 120_000);

  it('nothing against the canonical reprint, nor for a reordering that cannot matter; exit 0', () => {
    for (const [file, node] of [[DMZ, undefined], [KORNWALL, undefined], [write(kube()), EXAMPLE_NODE]] as const) {
      const saved = runCli(cli, ['save', file]);
      expect(saved.code, saved.err).toBe(0);
      const r = runCli(cli, ['diff', file, write(saved.out), ...(node ? ['--snapshot', node] : []), '--json']);
      expect(r.code, r.err).toBe(0);
      expect((JSON.parse(r.out) as DiffJson).equivalent).toMatch(/canonical/);
    }
    const t = dmz();
    const a = '-A INPUT -i eth1 -p tcp -m tcp --dport 113 -j ACCEPT\n';
    const b = '-A INPUT -i eth1 -p tcp -m tcp --dport 8080 -j REJECT --reject-with icmp-port-unreachable\n';
    const r = runCli(cli, ['diff', DMZ, write(plant(t, a + b, b + a))]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/equivalent by construction: the same rules; 1 chain orders them differently/);
  }, 120_000);

  it('a search that finds nothing says what it searched and exits 0', () => {
    const t = dmz();
    // a second copy of a REJECT rule right after it is never reached: no packet can tell
    const rule = '-A INPUT -i eth1 -p tcp -m tcp --dport 3128 -j REJECT --reject-with icmp-port-unreachable\n';
    const d = diffAndConfirm(t, plant(t, rule, rule + rule), undefined);
    expect(d.differences).toEqual([]);
    expect(d.searched.directed).toBeGreaterThan(0);
    expect(d.searched.text).toMatch(/packet runs aimed at the 1 rule that differ/);
  }, 120_000);
});

describeCorpus('nfvm diff reaches rules that earlier rules, state and the node hide', () => {
  const dump = (...p: string[]) => readFileSync(corpusPath('diekmann-net-network', ...p), 'utf8');
  /** `text` with its lines `i` and `i + 1` (1-based) swapped. */
  const swap = (text: string, i: number) => {
    const l = text.split('\n');
    [l[i - 1], l[i]] = [l[i]!, l[i - 1]!];
    return l.join('\n');
  };
  const fate = (d: DiffJson) => d.differences.filter((x) => x.differs.some((a) => a !== 'counters touched'));

  it('a widened source past a `-p tcp --dport 80 -j ACCEPT` (ufw): a packet to another port', () => {
    const t = dump('configs_srvs_ufw', 'server1-iptables-save');
    const d = diffAndConfirm(t, plant(t, '-A ufw-user-input -s 188.95.233.200/32 -j ACCEPT', '-A ufw-user-input -s 188.95.233.200/30 -j ACCEPT'), undefined);
    expect(fate(d).some((x) => /^(tcp|udp|icmp) 188\.95\.233\.20[123]\b/.test(x.packets[0]!))).toBe(true);
  }, 120_000);

  it('a swapped LOG and DROP of INVALID packets behind `! -i eth0` rules: an RST of no connection on another interface', () => {
    const t = dump('found_online', 'openvpn.eu', 'iptables-save');
    const i = t.split('\n').indexOf('-A INPUT -m state --state INVALID -j LOG --log-prefix "INPUT DROP INVALID " --log-tcp-options --log-ip-options') + 1;
    expect(i).toBeGreaterThan(0);
    const d = diffAndConfirm(t, swap(t, i), undefined);
    expect(d.differences.some((x) => / rst iif (?!eth0)/.test(x.packets[0]!))).toBe(true);
  }, 120_000);

  it('a moved port of a recent --hitcount rule behind bogon filters: a public source trying four times', () => {
    const t = dump('found_online', 'sargon', 'iptables-save.txt');
    const from = '-A wan-input -p tcp -m recent --update --seconds 60 --hitcount 3 --name sshd --rsource -m tcp --dport 22 -j DROP';
    const d = diffAndConfirm(t, plant(t, from, from.replace('--dport 22', '--dport 23')), undefined);
    expect(fate(d).some((x) => x.packets.length >= 4 && x.packets.every((p) => p.includes(':22 ')))).toBe(true);
  }, 120_000);

  it('a changed DNAT target in Docker\'s chain reached by `--dst-type LOCAL` from the node itself', () => {
    const t = dump('found_online', 'pastebin.com_bbWXHaTn', 'iptables-save');
    const d = diffAndConfirm(t, plant(t, '--dport 500 -j DNAT --to-destination 172.17.0.1:500', '--dport 500 -j DNAT --to-destination 172.17.0.2:500'), undefined);
    expect(d.differences.some((x) => x.packets[0]!.includes(':500 from local') && x.differs.includes('NAT result'))).toBe(true);
  }, 120_000);

  it('a changed DNAT target behind `-m rpfilter --invert -j DROP`: a source routed back out of ppp0', () => {
    const t = dump('configs_medium-sized-company', 'iptables-save.iptables_mainfw_31.01.2016');
    const d = diffAndConfirm(t, plant(t, '--dport 4081 -j DNAT --to-destination 172.16.2.34', '--dport 4081 -j DNAT --to-destination 172.16.2.35'), undefined);
    expect(d.differences.some((x) => x.packets[0]!.includes('iif ppp0') && x.differs.includes('NAT result'))).toBe(true);
  }, 120_000);

  it('a host address of the INPUT rules is the generic node\'s own: a moved port of an OpenVPN server\'s INPUT', () => {
    const t = dump('configs_serverfault', '769294.txt');
    const from = '-A INPUT -d 91.13.18.170/32 -p tcp -m state --state NEW -m tcp --dport 443 -j AS0_ACCEPT';
    const d = diffAndConfirm(t, plant(t, from, from.replace('--dport 443', '--dport 444')), undefined);
    expect(fate(d).some((x) => x.packets[0]!.includes('> 91.13.18.170:443 '))).toBe(true);
  }, 120_000);
});

describeCorpus('nfvm diff on IPv6 dumps (ip6tables-save files)', () => {
  // the dumps end with a line of blanks, which iptables-restore refuses; the chair's hides its MACs as XX:XX:XX:XX:XX:XX
  const dump6 = (...p: string[]) => readFileSync(corpusPath('diekmann-net-network', ...p), 'utf8').replace(/^[ \t]+$/gm, '').replace(/XX:XX:XX:XX:XX:XX/g, '02:00:00:00:00:01').replace(/\n\n+/g, '\n');
  const web = () => dump6('configs_ipv6_server', 'webserver');
  const chair = () => dump6('configs_chair_for_Network_Architectures_and_Services', 'ip6tables-save-2016-03-16_13-53-28');

  it('a moved port and a swapped rule order (a web server\'s INPUT)', () => {
    const t = web();
    const d = diffAndConfirm(t, plant(t, '--dport 443 -m conntrack', '--dport 444 -m conntrack'), undefined, 'ip6');
    expect(d.differences.some((x) => /^tcp \[[0-9a-f:]+\]:\d+ > \[[0-9a-f:]+\]:44[34] /.test(x.packets[0]!) && x.differs.includes('fate'))).toBe(true);
    const a = '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m conntrack --ctstate NEW -j ACCEPT\n';
    const b = '-A INPUT -p ipv6-icmp -j DROP\n';
    const s = diffAndConfirm(t, plant(t, a + b, b + a), undefined, 'ip6');
    expect(s.differences.some((x) => x.packets[0]!.startsWith('icmpv6 ') && x.differs.includes('fate'))).toBe(true);
  }, 120_000);

  it('a widened IPv6 prefix (5,600 rules of a university chair\'s router)', () => {
    const t = chair();
    const from = '-A filter_96 -d 2001:4ca0:2001:10:216:3eff:fe6f:dd60/128 -p tcp';
    const d = diffAndConfirm(t, plant(t, from, from.replace('/128', '/126')), undefined, 'ip6');
    // the addresses the wider prefix adds reach the ACCEPT on the new side only (routed out of eth1.96 by the rules' -d/-o pairs)
    expect(d.differences.some((x) => /> \[2001:4ca0:2001:10:216:3eff:fe6f:dd6[1-3]\]:10022 /.test(x.packets[0]!) && x.differs.includes('fate'))).toBe(true);
  }, 180_000);

  it('nfvm fuzz on IPv6 dumps: no divergence between the engines, coverage, IPv6 constants', () => {
    const r = runCli(cli, ['fuzz', write(web()), '--packets', '1000', '--json']);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as { divergences: unknown[]; coverage: { rules: number; reached: number } };
    expect(doc.divergences).toEqual([]);
    expect(doc.coverage.rules).toBe(27);
    expect(doc.coverage.reached).toBeGreaterThan(10);
    // the chair's 5,584 rules (its JSON lists every unreached rule: the text's summary line is read)
    const c = runCli(cli, ['fuzz', write(chair()), '--packets', '1000']);
    expect(c.code, c.err).toBe(0);
    expect(c.out).toMatch(/^no divergence between the engines$/m);
    expect(c.out).toMatch(/, 0 divergences, \d+ of 5584 rules covered\n$/);
    // its prefixes give IPv6 constants: each edge and the address just outside
    const k = constantsOf([parseRestore(chair(), { family: 'ip6' })]);
    expect(k.addrs6).toEqual(expect.arrayContaining(['2001:4ca0:2001:10::', '2001:4ca0:2001:10:ffff:ffff:ffff:ffff', '2001:4ca0:2001:f:ffff:ffff:ffff:ffff', '2001:4ca0:2001:11::']));
  }, 120_000);

  it('nothing against the canonical reprint; an IPv6 file against an IPv4 one is a usage error', () => {
    for (const t of [web(), chair()]) {
      const file = write(t);
      const saved = runCli(cli, ['save', file, '--family', 'ip6']);
      expect(saved.code, saved.err).toBe(0);
      const r = runCli(cli, ['diff', file, write(saved.out), '--json']);
      expect(r.code, r.err).toBe(0);
      expect((JSON.parse(r.out) as DiffJson).equivalent).toMatch(/canonical/);
    }
    const r = runCli(cli, ['diff', write(web()), DMZ]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/IPv6 ruleset and NEW an IPv4 one/);
  }, 120_000);
});

describe('nfvm diff and fuzz on bad input', () => {
  it('a missing file, a malformed rule and a bad option are exit 2 with a located message', () => {
    const ok = write('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
    const bad = write('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dprot 22 -j ACCEPT\nCOMMIT\n');
    for (const args of [['diff', ok, join(tmp, 'missing.txt')], ['diff', ok, bad], ['fuzz', bad], ['fuzz', ok, '--packets', 'x'], ['diff', ok]]) {
      const r = runCli(cli, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).not.toMatch(/at .*\.(ts|mjs):\d+/);
    }
    expect(runCli(cli, ['diff', ok, bad]).err).toMatch(/rules-\d+\.txt:3:\d+: unknown option "--dprot"/);
    for (const c of ['fuzz', 'diff']) {
      const h = runCli(cli, [c, '--help']);
      expect(h.code).toBe(0);
      expect(h.out).toContain(`nfvm ${c}`);
    }
  }, 60_000);
});

describeCorpus('nfvm fuzz on real dumps', () => {
  it('no divergence between the engines, coverage and the rules no packet reached', () => {
    for (const [file, rules] of [[DMZ, 31], [KORNWALL, 56], [write(kube()), 70]] as const) {
      const r = runCli(cli, ['fuzz', file, '--packets', '2000', '--json']);
      expect(r.code, r.err).toBe(0);
      const doc = JSON.parse(r.out) as { divergences: unknown[]; coverage: { rules: number; reached: number }; unreached: { rule: string }[] };
      expect(doc.divergences).toEqual([]);
      expect(doc.coverage.rules).toBe(rules);
      expect(doc.coverage.reached).toBeGreaterThan(rules / 2);
      expect(doc.unreached.length).toBe(rules - doc.coverage.reached);
    }
  }, 120_000);
});

describe('nfvm fuzz', () => {
  it('names the earlier rule that shadows a rule no packet reached', () => {
    const p = write([
      '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
      '-A INPUT -s 10.0.0.0/8 -j DROP',
      '-A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 80:90 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 85 -j DROP',
      'COMMIT', '',
    ].join('\n'));
    const r = runCli(cli, ['fuzz', p, '--packets', '3000']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('no divergence between the engines');
    expect(r.out).toContain('filter:INPUT rule 2: -A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT\n      shadowed by rule 1: -A INPUT -s 10.0.0.0/8 -j DROP');
    expect(r.out).toContain('filter:INPUT rule 4: -A INPUT -p tcp -m tcp --dport 85 -j DROP\n      shadowed by rule 3: -A INPUT -p tcp -m tcp --dport 80:90 -j ACCEPT');
    expect(r.out).toMatch(/rules a packet reached: 2 of 4 \(50\.0%\)/);
  }, 60_000);

  it('--random-rulesets: generated rulesets on every engine, no divergence', () => {
    const r = runCli(cli, ['fuzz', '--random-rulesets', '200', '--seed', '5', '--json']);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as { randomRulesets: { rulesets: number; packets: number; rulesHit: number }; divergences: unknown[] };
    expect(doc.randomRulesets.rulesets).toBe(200);
    expect(doc.randomRulesets.rulesHit).toBeGreaterThan(0);
    expect(doc.divergences).toEqual([]);
  }, 120_000);
});
