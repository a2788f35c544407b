/**
 * HMARK and cluster: the kernel's jhash (ext/jhash.ts) against values the
 * kernel computed, and the two engines against each other.
 *
 *  - jhash_3words: HMARK --hmark-mod 4294967295 (reciprocal_scale by
 *    2^32 - 1 leaves the hash minus one) with CONNMARK --save-mark shows the
 *    hash as the conntrack's mark; the marks below are what `conntrack -L`
 *    printed in a namespace (Linux 6.18) for UDP from local sockets;
 *  - VM (nft_compat records, tracing off and on) and the x_tables evaluator
 *    give the same verdicts, marks, pkt_type and counters for generated
 *    HMARK and cluster rules over generated IPv4/IPv6 frames (ICMP errors
 *    quoting a header, extension header chains, AH, fragments, headers cut
 *    short), and on the stateful node for generated conversations (the
 *    --hmark-tuple ct and cluster hashes of the conntracks, counted by mark
 *    rules and saved to the conntracks' marks).
 * Run counts come from NFVM_PROPERTY_SCALE (test/helpers/runs.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jhash1word, jhash2, jhash2words, jhash3words } from '../../vm/jhash.js';
import { reciprocalScale } from '../../vm/expr/numgen.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { M_HOOK, M_MARK, M_NFPROTO, M_PKTTYPE } from '../../vm/layout.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { hdrPacket, hdrPacketOf, type Fam, type HdrPacket } from '../helpers/header-gen.js';
import { statefulModel } from '../helpers/flows.js';
import { converse, flow, replay } from '../helpers/conversation-gen.js';
import { runs } from '../helpers/runs.js';

const ipv4 = (s: string) => s.split('.').reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0);

/** [address (source and destination), sport, dport, the conntrack mark the kernel showed] with --hmark-rnd 0x12345678, UDP. */
const KERNEL_UDP: readonly [string, number, number, number][] = [
  ['127.0.0.1', 48477, 5000, 148208326], ['127.0.0.1', 38554, 5001, 1192687796], ['127.0.0.1', 53947, 53, 384203341],
  ['10.9.8.7', 47995, 5000, 455058215], ['10.9.8.7', 37860, 5001, 3960702999], ['10.9.8.7', 43582, 53, 273093197],
];
const HMARK_FULL = '-j HMARK --hmark-tuple src,dst,sport,dport,proto --hmark-mod 4294967295 --hmark-rnd 0x12345678';

describe('jhash (include/linux/jhash.h)', () => {
  it('gives the hashes the kernel gave (HMARK of UDP flows)', () => {
    for (const [a, sp, dp, mark] of KERNEL_UDP) {
      const ports = sp > dp ? ((sp << 16) | dp) >>> 0 : ((dp << 16) | sp) >>> 0;
      const hash = (jhash3words(ipv4(a), ipv4(a), ports, 0x12345678) ^ 17) >>> 0;
      expect(reciprocalScale(hash, 0xffffffff)).toBe(mark);
    }
  });

  it('the HMARK target of both engines sets those marks', () => {
    const rs = parseRestore(`*mangle\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p udp ${HMARK_FULL}\nCOMMIT\n`, { family: 'ip' });
    for (const engine of [vmTable(rs, 'mangle', {}), referenceTable(rs, 'mangle', {})]) {
      for (const [a, sp, dp, mark] of KERNEL_UDP) {
        const p = packet(ipPacket(a, a, { proto: 'udp', sport: sp, dport: dp, payload: 2 }));
        p.meta[M_NFPROTO] = 2;
        p.meta[M_HOOK] = 3;
        engine.run('OUTPUT', p);
        expect(p.meta[M_MARK]! >>> 0).toBe(mark);
      }
    }
  });

  it('the word shortcuts are jhash2 of the same words (__jhash_nwords)', () => {
    fc.assert(fc.property(fc.integer(), fc.integer(), fc.integer(), fc.integer(), (a, b, c, iv) => {
      expect(jhash3words(a, b, c, iv)).toBe(jhash2([a, b, c], 3, iv));
      expect(jhash2words(a, b, iv)).toBe(jhash2([a, b], 2, iv));
      expect(jhash1word(a, iv)).toBe(jhash2([a], 1, iv));
    }), { numRuns: runs(200) });
  });
});

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

const hmarkRule = fc.record({
  tuple: fc.subarray(['src', 'dst', 'sport', 'dport', 'proto', 'spi', 'ct']),
  extra: fc.subarray(['--hmark-src-prefix 24', '--hmark-dst-prefix 16', '--hmark-sport-mask 0xff00', '--hmark-dport-mask 0x00ff', '--hmark-spi-mask 0xffff', '--hmark-sport 0x1', '--hmark-dport 0x5', '--hmark-spi 0x7', '--hmark-proto-mask 0x0f']),
  rnd: pick(['0', '0x1', '0xdeadbeef', '0x12345678']),
  mod: pick([1, 2, 3, 7, 4294967295]),
  offset: pick(['', ' --hmark-offset 100', ' --hmark-offset 4294967295']),
}).filter(({ tuple, extra }) => {
  const given = new Set([...tuple.map((t) => `--hmark-${t === 'src' || t === 'dst' ? `${t}-prefix` : t === 'proto' ? 'proto-mask' : t === 'ct' ? 'tuple' : `${t}-mask`}`), ...extra.map((e) => e.split(' ')[0]!)]);
  if (tuple.length + extra.length === 0) return false;
  // each option once; no SPI mask with port masks, no SPI with ports (iptables and the kernel refuse those)
  if (given.size !== tuple.length + extra.length) return false;
  const has = (o: string) => given.has(o);
  if (has('--hmark-spi-mask') && (has('--hmark-sport-mask') || has('--hmark-dport-mask'))) return false;
  if (has('--hmark-spi') && (has('--hmark-sport') || has('--hmark-dport'))) return false;
  return !(has('--hmark-spi') && has('--hmark-sport-mask'));
}).map(({ tuple, extra, rnd, mod, offset }) =>
  `-j HMARK${tuple.length ? ` --hmark-tuple ${tuple.join(',')}` : ''}${extra.length ? ` ${extra.join(' ')}` : ''} --hmark-rnd ${rnd} --hmark-mod ${mod}${offset}`);

const clusterRule = fc.record({
  total: fc.integer({ min: 1, max: 32 }),
  node: fc.integer({ min: 1, max: 32 }),
  inv: fc.boolean(),
  seed: pick(['0', '0xdeadbeef', '0x1', '12345']),
}).map(({ total, node, inv, seed }) => `-m cluster --cluster-total-nodes ${total} ${inv ? '! ' : ''}--cluster-local-node ${Math.min(node, total)} --cluster-hash-seed ${seed}`);

interface Seen {
  verdicts: number[];
  meta: number[];
  traces: string[][];
  counters: string;
}

function observe(engine: TableEngine, packets: readonly HdrPacket[], trace: boolean): Seen {
  engine.setTrace(trace);
  const o: Seen = { verdicts: [], meta: [], traces: [], counters: '' };
  for (const [i, g] of packets.entries()) {
    const p = hdrPacketOf(g);
    // some frames came with a multicast link address (what cluster rewrites)
    p.meta[M_PKTTYPE] = i % 3 === 0 ? 2 : p.meta[M_PKTTYPE]!;
    o.verdicts.push(engine.run('PREROUTING', p));
    o.meta.push(p.meta[M_MARK]! >>> 0, p.meta[M_PKTTYPE]!);
    if (trace) o.traces.push(engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`));
  }
  o.counters = JSON.stringify([...engine.counters()]);
  return o;
}

describe('HMARK and cluster: VM (nft_compat) and reference agree', () => {
  for (const fam of ['ip', 'ip6'] as Fam[]) {
    it(`on generated frames (${fam})`, () => {
      const arb = fc.tuple(
        fc.array(fc.oneof(hmarkRule, clusterRule), { minLength: 1, maxLength: 4 }),
        fc.array(hdrPacket(fam, [0]), { minLength: 1, maxLength: 10 }),
        pick<Backend>(['legacy', 'nft']),
      );
      const marks = new Set<number>();
      fc.assert(fc.property(arb, ([rules, packets, backend]) => {
        const text = ['*mangle', ':PREROUTING ACCEPT [0:0]', ...rules.map((r) => `-A PREROUTING ${r}`), '-A PREROUTING -m mark --mark 0', '-A PREROUTING -m mark --mark 1', 'COMMIT', ''].join('\n');
        const rs = parseRestore(text, { family: fam });
        const ref = observe(referenceTable(rs, 'mangle', { backend }), packets, false);
        expect(observe(vmTable(rs, 'mangle', { backend, optimize: 0 }), packets, false)).toEqual(ref);
        const refT = observe(referenceTable(rs, 'mangle', { backend }), packets, true);
        expect(observe(vmTable(rs, 'mangle', { backend }), packets, true)).toEqual(refT);
        for (let i = 0; i < ref.meta.length; i += 2) marks.add(ref.meta[i]!);
      }), { numRuns: runs(80) });
      // the hash spreads: many different marks were set
      expect(marks.size).toBeGreaterThan(10);
    });
  }

  it('on the stateful node: the conntrack hashes (--hmark-tuple ct, cluster), tracing off and on', () => {
    const rulesets = fc.record({
      hmark: fc.array(hmarkRule, { minLength: 1, maxLength: 2 }),
      cluster: fc.array(clusterRule, { minLength: 1, maxLength: 2 }),
      where: pick(['PREROUTING', 'FORWARD', 'POSTROUTING']),
    }).map(({ hmark, cluster, where }) => [
      '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
      ...hmark.map((r) => `-A ${where} ${r}`),
      ...[0, 1, 2, 100].map((k) => `-A ${where} -m mark --mark ${k}`),
      `-A ${where} -m conntrack --ctstate NEW -j CONNMARK --save-mark`,
      ...cluster.map((r) => `-A ${where} ${r} -j MARK --set-xmark 0x40000000/0x40000000`),
      'COMMIT', '',
    ].join('\n'));
    fc.assert(fc.property(rulesets, fc.array(flow, { minLength: 1, maxLength: 12 }), (text, flows) => {
      const frames = converse(statefulModel(text), flows);
      const outs = (['vm', 'interp', 'reference'] as const).flatMap((engine) => [false, true].map((trace) => {
        const m = statefulModel(text, engine);
        m.setTrace(trace);
        return { name: `${engine}${trace ? ' traced' : ''}`, out: replay(m, frames) };
      }));
      for (const r of outs.slice(1)) expect([r.name, r.out]).toEqual([r.name, outs[0]!.out]);
    }), { numRuns: runs(25) });
  });
});

describe('cluster --cluster-local-nodemask as iptables-restore reads it', () => {
  const line = (mask: string) => `*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m cluster --cluster-local-nodemask ${mask} --cluster-total-nodes 8 --cluster-hash-seed 0x00000001\nCOMMIT\n`;
  it('takes a mask of 1 to 32, and refuses a wider one as iptables 1.8.9 does, saying iptables-save prints it', () => {
    // iptables-legacy-restore 1.8.9, fed `iptables-legacy-save` of `--cluster-local-node 7`: "cluster: bad value
    // for option "--cluster-local-nodemask", or out of range (1-32)."
    expect(() => parseRestore(line('0x00000020'))).not.toThrow();
    expect(() => parseRestore(line('0x00000040'))).toThrow(/^.*bad value for option "--cluster-local-nodemask" near "0x00000040", or out of range \(1-32\)\. iptables-restore 1\.8 refuses it too.*--cluster-local-node N/);
    expect(() => parseRestore(line('0x40'))).toThrow(/iptables-restore 1\.8 refuses it too/);
    // not a number at all: the plain message
    expect(() => parseRestore(line('x'))).toThrow(/near "x", or out of range \(1-32\)\.$/);
    expect(() => parseRestore(line('0'))).toThrow(/near "0", or out of range \(1-32\)\.$/);
  });
});
