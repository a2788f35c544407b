/**
 * The connection-counting and labelling matches (connlimit over
 * nf_conncount, connlabel over the conntracks' labels) and rpfilter (the
 * node's FIB) on the stateful node: for generated rulesets using them in raw (before conntrack: the
 * packet's own tuple looked up, CT zones), mangle and filter, and generated
 * conversations (repeated 5-tuples, TCP closes, gaps of 10 ms to 40 s), the
 * VM (its execution tier and its interpreter) and the x_tables evaluator
 * give every frame the same fate and bytes, and end with the same counters
 * and conntrack table, tracing off and on. Run counts come from
 * FC_NUM_RUNS (test/setup.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Conversation, Tcp, statefulModel } from '../helpers/flows.js';
import { SYN, ipPacket } from '../helpers/ctpkt.js';
import { converse, flow, replay } from '../helpers/conversation-gen.js';

const connlimit = fc.record({
  how: fc.constantFrom('upto', 'above', '! upto', '! above'),
  n: fc.integer({ min: 0, max: 3 }),
  mask: fc.constantFrom('', ' --connlimit-mask 24', ' --connlimit-mask 16', ' --connlimit-mask 0'),
  dir: fc.constantFrom('', ' --connlimit-saddr', ' --connlimit-daddr'),
  proto: fc.constantFrom('', '-p tcp --syn ', '-p udp ', '-p tcp '),
}).map((c) => `${c.proto}-m connlimit ${c.how.startsWith('!') ? '! ' : ''}--connlimit-${c.how.replace('! ', '')} ${c.n}${c.mask}${c.dir}`);

const connlabel = fc.record({
  neg: fc.boolean(),
  bit: fc.constantFrom(0, 1, 5, 127),
  set: fc.boolean(),
  proto: fc.constantFrom('', '-p tcp ', '-p udp ', '-p icmp '),
}).map((c) => `${c.proto}-m connlabel ${c.neg ? '! ' : ''}--label ${c.bit}${c.set ? ' --set' : ''}`);

const rpfilter = fc.subarray(['--loose', '--validmark', '--accept-local', '--invert']).map((o) => `-m rpfilter ${o.join(' ')}`.trimEnd());

const target = fc.constantFrom('-j DROP', '-j ACCEPT', '-j RETURN', '-j MARK --set-mark 7', '');

/** rpfilter only where the kernel allows it: raw and mangle PREROUTING. */
const rpRule = fc.record({ where: fc.constantFrom('raw PREROUTING', 'mangle PREROUTING'), m: rpfilter, t: target });

const rule = fc.record({
  where: fc.constantFrom('raw PREROUTING', 'mangle PREROUTING', 'mangle FORWARD', 'filter FORWARD', 'filter INPUT', 'filter FORWARD'),
  m: fc.oneof(connlimit, connlabel),
  t: target,
});

/** A ruleset of the generated rules; raw may give some packets a zone. */
const rulesets = fc.record({
  rules: fc.array(fc.oneof(rule, rpRule), { minLength: 1, maxLength: 5 }),
  zone: fc.boolean(),
}).map(({ rules, zone }) => {
  const tables = new Map<string, string[]>([['raw', []], ['mangle', []], ['filter', []]]);
  if (zone) tables.get('raw')!.push('-A PREROUTING -s 10.0.0.0/25 -j CT --zone 5');
  for (const r of rules) {
    const [t, c] = r.where.split(' ') as [string, string];
    tables.get(t)!.push(`-A ${c} ${r.m} ${r.t}`.trimEnd());
  }
  const chains: Record<string, string[]> = { raw: ['PREROUTING', 'OUTPUT'], mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'], filter: ['INPUT', 'FORWARD', 'OUTPUT'] };
  const out: string[] = [];
  for (const [t, lines] of tables) out.push(`*${t}`, ...chains[t]!.map((c) => `:${c} ACCEPT [0:0]`), ...lines, 'COMMIT');
  return `${out.join('\n')}\n`;
});

describe('connlimit, connlabel and rpfilter: VM and x_tables evaluator agree on the stateful node', () => {
  it('on fates, bytes out, counters and the conntrack table, tracing off and on', () => {
    fc.assert(
      fc.property(rulesets, fc.array(flow, { minLength: 1, maxLength: 16 }), (text, flows) => {
        const frames = converse(statefulModel(text), flows);
        const runs = (['vm', 'interp', 'reference'] as const).flatMap((engine) => [false, true].map((trace) => {
          const m = statefulModel(text, engine);
          m.setTrace(trace);
          // a hotdrop (connlimit with no count) is told as such only while tracing
          return { name: `${engine}${trace ? ' traced' : ''}`, out: replay(m, frames).map((l) => l.replace(/^dropped: a match could not read the header it needs \(hotdrop\) $/, 'dropped ')) };
        }));
        for (const r of runs.slice(1)) expect([r.name, r.out]).toEqual([r.name, runs[0]!.out]);
      }),
    );
  });

  it('counts connections per source; a reset connection stops counting', () => {
    const text = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p tcp --syn -m connlimit --connlimit-above 2 -j DROP\nCOMMIT\n';
    for (const engine of ['vm', 'reference'] as const) {
      const c = new Conversation(statefulModel(text, engine));
      const fate = () => c.frames.length;
      const a = new Tcp(c, 'c', '10.0.0.2', 40000, '10.1.0.2', 80).syn().synack();
      new Tcp(c, 'c', '10.0.0.2', 40001, '10.1.0.2', 81).syn().synack();
      const before = fate();
      // the third: 3 > 2, dropped (the server sees nothing, so answers nothing)
      new Tcp(c, 'c', '10.0.0.2', 40002, '10.1.0.2', 22).syn();
      expect(c.frames.length).toBe(before + 1);
      const third = c.send('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 6, sport: 40003, dport: 22, flags: SYN, seq: 1 }));
      expect(third.fate.kind).toBe('dropped');
      // another client has its own count
      expect(c.send('c', ipPacket('10.0.0.3', '10.1.0.2', { proto: 6, sport: 40003, dport: 22, flags: SYN, seq: 1 })).fate.kind).toBe('forwarded');
      // the server resets the first connection (CLOSE): the next SYN is the second of two
      a.srst();
      expect(c.send('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 6, sport: 40004, dport: 22, flags: SYN, seq: 1 })).fate.kind).toBe('forwarded');
      expect(c.send('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 6, sport: 40005, dport: 22, flags: SYN, seq: 1 })).fate.kind).toBe('dropped');
    }
  });
});
