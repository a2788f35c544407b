/**
 * `nfvm disasm --family bridge` against the real tools: generated ebtables
 * rulesets with among lists (MACs alone, MAC=IP pairs, `!`, both
 * directions, in filter and nat) next to plain rules are loaded with
 * ebtables-nft-restore in a throwaway namespace and listed with
 * `nft --debug=netlink list table bridge T`; nfvm's listing of the same
 * text must be that text, the anonymous sets' element blocks included.
 * Two things are normalised: the rule handles nft puts in each rule's
 * header line, and the order of a hash set's elements (the kernel's
 * seeded hash lists them differently on each load; nfvm sorts them).
 *
 * Root with iproute2, ebtables-nft and nft; skips with a message otherwise
 * (fails under CI). NFVM_PROPERTY_SCALE scales the generated cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { kernelSkip, netnsAdd, netnsDel, run } from '../helpers/kernel.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { runs, scaled } from '../helpers/runs.js';

const SKIP = kernelSkip('ebtables disasm against nft --debug=netlink', ['ip', 'ebtables-nft-restore', 'nft']);
const NS = `nfvm-ebd-${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const SEED = Number(process.env.FC_SEED ?? 20261204);

const mac = fc.constantFrom('02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:0a', '52:54:00:12:34:56', 'de:ad:be:ef:00:01');
const ip = fc.constantFrom('', '', '10.0.0.1', '10.0.0.2', '192.168.1.20');
const list = fc.uniqueArray(fc.tuple(mac, ip), { minLength: 1, maxLength: 4, selector: ([m]) => m })
  .map((pairs) => pairs.map(([m, a]) => (a ? `${m}=${a}` : m)).join(','));
const amongRule = fc.record({
  src: fc.option(list, { nil: undefined }), dst: fc.option(list, { nil: undefined }),
  invSrc: fc.boolean(), invDst: fc.boolean(),
  pre: fc.constantFrom('', '-p IPv4', '-p ARP', '-i eth0'),
  target: fc.constantFrom('ACCEPT', 'DROP', 'CONTINUE'),
}).filter((r) => r.src !== undefined || r.dst !== undefined)
  .map((r) => [r.pre, r.src ? `${r.invSrc ? '! ' : ''}--among-src ${r.src}` : '', r.dst ? `${r.invDst ? '! ' : ''}--among-dst ${r.dst}` : '', `-j ${r.target}`].filter(Boolean).join(' '));
const plainRule = fc.constantFrom('-p IPv4 --ip-proto udp -j ACCEPT', '-s 02:00:00:00:00:01 -j DROP', '-d Broadcast', '-p IPv4 -i eth0 -j CONTINUE');
const ruleset = fc.record({
  forward: fc.array(fc.oneof(amongRule, amongRule, plainRule), { minLength: 1, maxLength: 4 }),
  input: fc.array(fc.oneof(amongRule, plainRule), { maxLength: 2 }),
  pre: fc.array(amongRule, { maxLength: 2 }),
}).map((g) => ({
  filter: ['*filter', ':INPUT ACCEPT', ':FORWARD ACCEPT', ':OUTPUT ACCEPT', ...g.input.map((r) => `-A INPUT ${r}`), ...g.forward.map((r) => `-A FORWARD ${r}`)].join('\n') + '\n',
  nat: ['*nat', ':PREROUTING ACCEPT', ':OUTPUT ACCEPT', ':POSTROUTING ACCEPT', ...g.pre.map((r) => `-A PREROUTING ${r}`)].join('\n') + '\n',
}));

/** The listing with rule handles dropped and each set's element lines sorted (blank lines and the ruleset text after it dropped). */
function normalise(text: string): string {
  const out: string[] = [];
  let elems: string[] = [];
  const flush = () => {
    out.push(...elems.sort());
    elems = [];
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('table ')) break;
    if (line.startsWith('\telement ')) {
      elems.push(line);
      continue;
    }
    flush();
    if (line === '') continue;
    out.push(line.replace(/^(bridge [a-z]+ [A-Za-z0-9_-]+)( \d+)+$/, '$1'));
  }
  flush();
  return out.join('\n');
}

let cli = '';

describe.skipIf(SKIP)('ebtables disasm against nft --debug=netlink', () => {
  beforeAll(async () => {
    cli = await buildCli();
    const r = netnsAdd(NS);
    if (r.status !== 0) throw new Error(`ip netns add ${NS}: ${r.stderr}`);
  }, scaled(120_000));
  afterAll(() => netnsDel(NS));

  it(`${runs(12)} generated rulesets with among: nfvm's listing is nft's`, async () => {
    const cases = fc.sample(ruleset, { numRuns: runs(12), seed: SEED });
    let rules = 0;
    let sets = 0;
    for (const c of cases) {
      for (const [table, text] of Object.entries(c)) {
        const load = await run('ip', ['netns', 'exec', NS, 'sh', '-c', `ebtables-nft -t ${table} -F; ebtables-nft-restore --noflush`], text);
        expect(load.stderr, text).toBe('');
        const real = await run('ip', ['netns', 'exec', NS, 'nft', '--debug=netlink', 'list', 'table', 'bridge', table]);
        const mine = runCli(cli, ['disasm', '--family', 'bridge', '-'], text);
        expect(mine.err).toBe('');
        expect(normalise(mine.out), text).toBe(normalise(real.stdout));
        rules += (text.match(/^-A /gm) ?? []).length;
        sets += (real.stdout.match(/^bridge [a-z]+ @/gm) ?? []).length;
      }
    }
    console.log(`ebtables disasm: ${cases.length} rulesets, ${rules} rules, ${sets} anonymous sets listed as nft lists them`);
    expect(sets).toBeGreaterThan(0);
  }, scaled(300_000));
});
