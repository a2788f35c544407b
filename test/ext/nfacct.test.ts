/**
 * -m nfacct and the node's accounting objects (ext/nfacct.ts): nfacct.txt
 * read and printed back as `nfacct list` prints it (the lines below were
 * printed by nfacct 1.0.2 on Linux 6.18 after `nfacct add` and `nfacct
 * restore`), its errors, and the VM (straight, optimized, traced) ≡ the
 * reference evaluator on generated objects, rules and packets: verdicts,
 * rule counters and the objects' counts and overquota flags after the run.
 * test/kernel/nfacct-kernel.test.ts compares both with the kernel.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { nfvmErrorOf } from '../helpers/errors.js';
import { XtState } from '../../ext/xtstate.js';
import { nfacctList, parseNfacctList, type NfacctObjects } from '../../ext/nfacct.js';
import { enginePacket, genPacketOf, type GenPacket } from '../helpers/engine-gen.js';
import { runs } from '../helpers/runs.js';

const LISTED = `{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = foo;
{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000300, mode = byte, overquota = no } = qb;
{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000002, mode = packet, overquota = no } = qp;
{ pkts = 00000000000000000005, bytes = 00000000000000000400 } = rs;
{ pkts = 00000000000000000001, bytes = 00000000000000000100, quota = 00000000000000000150, mode = byte, overquota = no } = rq;
`;

describe('nfacct.txt', () => {
  it('reads `nfacct list` and prints it back byte for byte', () => {
    const objs = parseNfacctList(LISTED, 'nfacct.txt');
    expect([...objs.keys()]).toEqual(['foo', 'qb', 'qp', 'rs', 'rq']);
    expect(nfacctList(objs)).toBe(LISTED);
  });

  it('counts, and flags the quota from the packet that reaches it; matches only past it', () => {
    const objs = parseNfacctList(LISTED, 'nfacct.txt');
    const qp = objs.get('qp')!;
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      qp.update(60);
      seen.push(qp.overquota());
      if (i === 0) expect(qp.line()).toContain('overquota = no');
      if (i === 1) expect(qp.line()).toContain('overquota = yes');
    }
    // NFACCT_UNDERQUOTA while pkts <= quota (2), NFACCT_OVERQUOTA after; no quota: NFACCT_NO_QUOTA
    expect(seen).toEqual([0, 0, 1]);
    expect(objs.get('foo')!.overquota()).toBe(-1);
    expect(qp.line()).toBe('{ pkts = 00000000000000000003, bytes = 00000000000000000180, quota = 00000000000000000002, mode = packet, overquota = yes } = qp;');
  });

  it.each([
    ['{ pkts = 1, bytes = 2 } = a;\nnot a line\n', 2, /not a line of `nfacct list`/],
    ['{ pkts = 1, bytes = 2 } = a;\n{ pkts = 1, bytes = 2 } = a;\n', 2, /listed twice/],
    ['{ pkts = 1, bytes = 2 } = abcdefghijklmnopqrstuvwxyz0123456;\n', 1, /longer than 31 bytes/],
    ['{ pkts = 18446744073709551615, bytes = 2 } = a;\n', 1, /above 2\^53/],
    ['{ pkts = 1, bytes = 2, quota = 5, mode = bits, overquota = no } = a;\n', 1, /not a line/],
  ])('refuses %j at line %i', (text, line, why) => {
    const err = nfvmErrorOf(() => parseNfacctList(text, 'nfacct.txt'));
    expect(err.file).toBe('nfacct.txt');
    expect(err.pos?.line).toBe(line);
    expect(err.message).toMatch(why);
  });
});

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const NAMES = ['a', 'b', 'c'] as const;
const CHAINS = ['INPUT', 'FORWARD', 'OUTPUT'] as const;

/** The objects: each with or without a quota (packets or bytes), some starting with counts. */
const objects = fc.tuple(...NAMES.map(() => fc.tuple(fc.option(fc.tuple(pick(['byte', 'packet']), fc.integer({ min: 0, max: 600 }))), fc.integer({ min: 0, max: 4 }))))
  .map((os) => os.map(([q, start], i) => {
    const u = (v: number) => String(v).padStart(20, '0');
    const quota = q ? `, quota = ${u(q[0] === 'packet' ? Math.floor(q[1] / 100) : q[1])}, mode = ${q[0]}, overquota = no` : '';
    return `{ pkts = ${u(start)}, bytes = ${u(start * 60)}${quota} } = ${NAMES[i]};\n`;
  }).join(''));

const ruleset = fc.array(
  fc.tuple(pick(CHAINS), fc.array(pick(NAMES), { minLength: 1, maxLength: 2 }), pick(['', ' -p udp', ' -p tcp']), pick(['ACCEPT', 'DROP', 'RETURN', ''])),
  { minLength: 1, maxLength: 8 },
).map((rules) => {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  for (const [chain, names, proto, target] of rules) lines.push(`-A ${chain}${proto} ${names.map((n) => `-m nfacct --nfacct-name ${n}`).join(' ')}${target ? ` -j ${target}` : ''}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
});

function observe(make: (xt: XtState, objs: NfacctObjects) => TableEngine, list: string, pkts: GenPacket[], trace: boolean) {
  const xt = new XtState();
  const objs = parseNfacctList(list, 'nfacct.txt');
  const engine = make(xt, objs);
  engine.setTrace(trace);
  const verdicts: number[] = [];
  const traces: string[] = [];
  for (const g of pkts) {
    verdicts.push(engine.run(g.chain, genPacketOf(g)));
    if (trace) traces.push(engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`).join(' '));
  }
  return { verdicts, counters: JSON.stringify([...engine.counters()]), traces, nfacct: nfacctList(objs) };
}

describe('-m nfacct: VM ≡ reference', () => {
  it('on generated objects, rules and packets, both backends', () => {
    fc.assert(
      fc.property(objects, ruleset, fc.array(enginePacket([...CHAINS]), { minLength: 1, maxLength: 30 }), pick<Backend>(['legacy', 'nft']), (list, text, pkts, backend) => {
        const rs = parseRestore(text);
        const ref = observe((xt, nfacct) => referenceTable(rs, 'filter', { backend, xt, nfacct }), list, pkts, false);
        expect(observe((xt, nfacct) => vmTable(rs, 'filter', { backend, xt, nfacct, optimize: 0 }), list, pkts, false), 'straight').toEqual(ref);
        expect(observe((xt, nfacct) => vmTable(rs, 'filter', { backend, xt, nfacct, optimize: 1 }), list, pkts, false), 'optimized').toEqual(ref);
        const refT = observe((xt, nfacct) => referenceTable(rs, 'filter', { backend, xt, nfacct }), list, pkts, true);
        expect(observe((xt, nfacct) => vmTable(rs, 'filter', { backend, xt, nfacct }), list, pkts, true), 'traced').toEqual(refT);
      }),
      { numRuns: runs(150) },
    );
  });

  it('refuses the match without the node\'s objects, and a name they lack as the kernel does', () => {
    const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m nfacct --nfacct-name zz\nCOMMIT\n', { file: 'r' });
    expect(() => vmTable(rs, 'filter', { file: 'r' })).toThrow(/r:5:\d+: match nfacct: needs the node's accounting objects .*nfacct\.txt/);
    expect(() => referenceTable(rs, 'filter', { file: 'r', nfacct: parseNfacctList(LISTED, 'n') })).toThrow(/accounting object `zz' does not exist \(ENOENT\)/);
    expect(() => parseRestore('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m nfacct --nfacct-name zz\nCOMMIT\n', { file: 'r', objects: { nfacct: new Set(['foo']) } })).toThrow(/xt_nfacct: accounting object `zz' does not exist/);
  });
});
