/**
 * The rate and state matches on virtual time (limit, hashlimit, recent,
 * quota, connlimit, connbytes, connlabel, time, rateest/RATEEST, statistic):
 * the VM (nftDoChain on the straight and the optimized program, and the
 * slow interpreter with tracing on) and the reference evaluator agree on
 * verdicts and every counter, for generated rulesets using them and
 * generated packets spread over time, with both backends (with 'nft',
 * limit is iptables-nft's nft_limit in both engines). Each engine keeps its
 * own state (XtState), on the same clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { XtState } from '../../ext/xtstate.js';
import { ADDRS4, enginePacket, genPacketOf, type GenPacket } from '../helpers/engine-gen.js';
import { runs } from '../helpers/runs.js';

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const neg = fc.boolean().map((b) => (b ? '! ' : ''));

/** One match of the rate and state family, as iptables text. */
export const rateStateMatch: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(pick(['1/sec', '3/min', '10/sec', '2/hour', '100/sec']), fc.integer({ min: 1, max: 6 })).map(([r, b]) => `-m limit --limit ${r} --limit-burst ${b}`),
  fc.tuple(neg, fc.integer({ min: 0, max: 3000 })).map(([n, q]) => `-m quota ${n}--quota ${q}`),
  fc.tuple(pick(['A', 'B']), pick(['--set', '--rcheck', '--update', '--remove', '! --rcheck', '! --update']), fc.option(fc.integer({ min: 1, max: 30 })),
    fc.option(fc.integer({ min: 1, max: 4 })), fc.boolean(), fc.boolean(), fc.boolean(), pick(['', ' --mask 255.255.255.0', ' --rdest']))
    .map(([name, cmd, sec, hits, reap, rttl, _x, extra]) => {
      const check = /rcheck|update/.test(cmd);
      let s = `-m recent ${cmd} --name ${name}${extra}`;
      if (check && sec !== null) s += ` --seconds ${sec}${reap ? ' --reap' : ''}`;
      if (check && hits !== null) s += ` --hitcount ${hits}`;
      if (check && rttl) s += ' --rttl';
      return s;
    }),
  fc.tuple(pick(['H', 'I']), pick(['upto', 'above']), pick(['1/sec', '5/sec', '2/min', '100/sec', '1kb/s', '20kb/s']), fc.option(fc.integer({ min: 1, max: 5 })),
    fc.subarray(['srcip', 'dstip', 'srcport', 'dstport']), pick(['', ' --hashlimit-srcmask 24', ' --hashlimit-dstmask 16']),
    pick(['', ' --hashlimit-htable-expire 2000', ' --hashlimit-htable-max 2 --hashlimit-htable-size 2', ' --hashlimit-rate-match', ' --hashlimit-htable-gcinterval 500 --hashlimit-htable-expire 700']))
    .map(([name, dir, rate, burst, mode, mask, extra]) => {
      const bytes = rate.includes('b/');
      const b = burst === null ? '' : ` --hashlimit-burst ${bytes ? `${burst * 20}kb` : burst}`;
      const m = mode.length ? ` --hashlimit-mode ${mode.join(',')}` : '';
      return `-m hashlimit --hashlimit-${dir} ${rate}${b}${m}${mode.length ? mask : ''}${extra} --hashlimit-name ${name}${extra.includes('rate-match') ? 'r' : ''}`;
    }),
  fc.tuple(pick(['', ' --timestart 22:10 --timestop 22:20', ' --timestart 22:15:30 --timestop 01:00 --contiguous', ' --timestart 23:00 --timestop 22:14']),
    pick(['', ' --weekdays Tue', ' --weekdays Mon,Wed,Sat', ' ! --weekdays Tue']), pick(['', ' --monthdays 14', ' --monthdays 13,15']),
    pick(['', ' --datestart 2023-11-14T22:14:00', ' --datestop 2023-11-14T22:20:00', ' --kerneltz']))
    .map(([t, w, m, dt]) => `-m time${t}${w}${m}${dt}`),
  fc.tuple(pick(['E1', 'E2']), pick(['', '! ']), pick(['lt', 'gt', 'eq']), pick([
    ' --rateest-bps 2kbit', ' --rateest-pps 3', ' --rateest-bps 40kbit --rateest-pps 20', ' --rateest-bps 0', ' --rateest-pps 1',
  ]), pick(['abs', 'rel', 'delta', 'reldelta']))
    .map(([name, neg, mode, what, kind]) => {
      const other = name === 'E1' ? 'E2' : 'E1';
      if (kind === 'abs') return `-m rateest --rateest ${name}${what} ${neg}--rateest-${mode}`;
      if (kind === 'delta') return `-m rateest --rateest-delta --rateest ${name}${what} ${neg}--rateest-${mode}`;
      const pps = what.includes('pps');
      if (kind === 'rel') return `-m rateest --rateest1 ${name} ${pps ? '--rateest-pps' : '--rateest-bps'} ${neg}--rateest-${mode} --rateest2 ${other}`;
      return `-m rateest --rateest-delta --rateest1 ${name} --rateest-bps1 1kbit ${neg}--rateest-${mode} --rateest-bps2 3kbit --rateest2 ${other}`;
    }),
);

const CHAINS = ['INPUT', 'FORWARD', 'OUTPUT'] as const;

const ruleset = fc.array(
  fc.tuple(pick(CHAINS), fc.array(rateStateMatch, { minLength: 1, maxLength: 2 }), fc.option(pick(ADDRS4.slice(0, 4))), pick(['ACCEPT', 'DROP', 'RETURN', ''])),
  { minLength: 1, maxLength: 8 },
).map((rules) => {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  // the estimators the rateest matches read, fed by every packet (E1) and by UDP (E2), made before the rules naming them
  for (const c of CHAINS) {
    lines.push(`-A ${c} -j RATEEST --rateest-name E1 --rateest-interval 250ms --rateest-ewmalog 1s`);
    lines.push(`-A ${c} -p udp -j RATEEST --rateest-name E2 --rateest-interval 500ms --rateest-ewmalog 2s`);
  }
  for (const [chain, ms, src, target] of rules) lines.push(`-A ${chain}${src ? ` -s ${src}` : ''} ${ms.join(' ')}${target ? ` -j ${target}` : ''}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
});

/** Packets with the gap before each (ms; up to a minute, mostly short). */
const packets = fc.array(
  fc.tuple(enginePacket([...CHAINS]), fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 60000 }))),
  { minLength: 1, maxLength: 30 },
);

const T0 = 1_700_000_000 * 1e9;

function observe(make: (xt: XtState) => TableEngine, pkts: [GenPacket, number][], trace: boolean): { verdicts: number[]; counters: string; traces: string[] } {
  const xt = new XtState();
  const engine = make(xt);
  engine.setTrace(trace);
  const verdicts: number[] = [];
  const traces: string[] = [];
  let now = T0;
  for (const [g, gap] of pkts) {
    now += gap * 1e6;
    xt.setNow(now);
    verdicts.push(engine.run(g.chain, genPacketOf(g)));
    if (trace) traces.push(engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`).join(' '));
  }
  return { verdicts, counters: JSON.stringify([...engine.counters()]), traces };
}

describe('rate and state matches: VM ≡ reference', () => {
  it('on generated rulesets and packets over time, both backends', () => {
    fc.assert(
      fc.property(ruleset, packets, pick<Backend>(['legacy', 'nft']), (text, pkts, backend) => {
        const rs = parseRestore(text);
        const ref = observe((xt) => referenceTable(rs, 'filter', { backend, xt }), pkts, false);
        expect(observe((xt) => vmTable(rs, 'filter', { backend, xt, optimize: 0 }), pkts, false), 'straight').toEqual(ref);
        expect(observe((xt) => vmTable(rs, 'filter', { backend, xt, optimize: 1 }), pkts, false), 'optimized').toEqual(ref);
        const refT = observe((xt) => referenceTable(rs, 'filter', { backend, xt }), pkts, true);
        expect(observe((xt) => vmTable(rs, 'filter', { backend, xt }), pkts, true), 'traced').toEqual(refT);
      }),
      { numRuns: runs(200) },
    );
  });
});

describe('limit overflow: the xt checkentry on legacy, nft_limit on nft', () => {
  // -m limit --limit 1/day --limit-burst 7: avg * burst wraps u32 and user2credits() drops at HZ 250;
  // iptables-nft lowers limit to the native nft_limit, which loads it (both checked on Linux 6.18)
  const text = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m limit --limit 1/day --limit-burst 7\nCOMMIT\n';
  it('legacy refuses it as xt_limit does (ERANGE)', () => {
    expect(() => parseRestore(text, { file: 'r' })).toThrow(/r:5:\d+: xt_limit: Overflow, try lower: 864000000\/7 \(ERANGE\)/);
  });
  it('nft loads it', () => {
    expect(parseRestore(text, { file: 'r', backend: 'nft' }).tables.get('filter')!.chains.get('INPUT')!.rules).toHaveLength(1);
  });
});
