/**
 * The bpf match (--bytecode): generated classic programs (test/helpers/
 * bpf-gen.ts) over generated IPv4/IPv6 frames give the same verdicts,
 * counters and trace in the VM (nft_compat records, tracing off and on) and
 * the x_tables evaluator; hand-written programs give the results the
 * classic semantics define, ancillary loads (SKF_AD_*) included; the
 * ancillary fields no capture holds and pinned objects are refused with
 * what they would need. Run counts come from NFVM_PROPERTY_SCALE.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import { compileTable } from '../../compiler/compile.js';
import type { TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { hdrPacket, hdrPacketOf, type Fam, type HdrPacket } from '../helpers/header-gen.js';
import { bpfAncProgram, bpfProgram } from '../helpers/bpf-gen.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { M_HOOK, M_IIF, M_IIFTYPE, M_NFPROTO, M_OIF, M_OIFTYPE } from '../../vm/layout.js';
import { runs } from '../helpers/runs.js';

function observe(engine: TableEngine, packets: readonly HdrPacket[], trace: boolean) {
  engine.setTrace(trace);
  const v = packets.map((g) => engine.run('PREROUTING', hdrPacketOf(g)));
  return { v, trace: trace ? engine.takeTrace().map((e) => `${e.kind}:${e.rule}`) : [], counters: JSON.stringify([...engine.counters()]) };
}

const table = (rules: readonly string[]) => ['*raw', ':PREROUTING ACCEPT [0:0]', ...rules.map((r) => `-A PREROUTING ${r}`), 'COMMIT', ''].join('\n');

describe('bpf --bytecode', () => {
  for (const fam of ['ip', 'ip6'] as Fam[]) {
    it.each([['plain', bpfProgram], ['ancillary', bpfAncProgram]] as const)(`VM and reference agree on generated programs (${fam}, %s)`, (_, gen) => {
      let matched = 0;
      fc.assert(fc.property(fc.array(gen, { minLength: 1, maxLength: 4 }), fc.array(hdrPacket(fam, [0]), { minLength: 1, maxLength: 10 }), fc.constantFrom<Backend>('legacy', 'nft'), (progs, packets, backend) => {
        const rs = parseRestore(table(progs.map((p) => `-m bpf --bytecode "${p}"`)), { family: fam });
        const ref = observe(referenceTable(rs, 'raw', { backend }), packets, false);
        expect(observe(vmTable(rs, 'raw', { backend, optimize: 0 }), packets, false)).toEqual(ref);
        expect(observe(vmTable(rs, 'raw', { backend }), packets, true)).toEqual(observe(referenceTable(rs, 'raw', { backend }), packets, true));
        matched += JSON.parse(ref.counters)[0][1].rules.filter((r: { packets: number }) => r.packets > 0).length;
      }), { numRuns: runs(80) });
      expect(matched).toBeGreaterThan(0);
    });
  }

  it('SKF_AD_RANDOM draws from the engine\'s seeded generator: both engines alike, about half the draws odd', () => {
    const rs = parseRestore(table(['-m bpf --bytecode "4,32 0 0 4294963256,69 0 1 1,6 0 0 1,6 0 0 0"']));
    const pkts = Array.from({ length: 2000 }, (_, i) => packet(ipPacket('10.0.0.2', '10.0.0.1', { proto: 'udp', sport: 1000 + (i % 50), dport: 53 })));
    const count = (e: TableEngine) => {
      for (const p of pkts) {
        p.meta[M_NFPROTO] = 2;
        e.run('PREROUTING', p);
      }
      return JSON.parse(JSON.stringify([...e.counters()]))[0][1].rules[0].packets as number;
    };
    const vm = count(vmTable(rs, 'raw', { seed: 7 }));
    expect(count(referenceTable(rs, 'raw', { seed: 7 }))).toBe(vm);
    expect(vm).toBeGreaterThan(850);
    expect(vm).toBeLessThan(1150);
  });

  it('runs the classic semantics', () => {
    const cases: [string, boolean][] = [
      // ldb [9]; jeq #17 → ret 1 : ret 0 (UDP)
      ['4,48 0 0 9,21 0 1 17,6 0 0 1,6 0 0 0', true],
      ['4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0', false],
      // ldx msh [0]; ldh [x+2] (destination port); jeq #53
      ['5,177 0 0 0,72 0 0 2,21 0 1 53,6 0 0 1,6 0 0 0', true],
      // a load past the end ends the program with 0
      ['2,32 0 0 5000,6 0 0 1', false],
      // the network header through SKF_NET_OFF: ldb [net+9]
      ['4,48 0 0 4293918729,21 0 1 17,6 0 0 1,6 0 0 0', true],
      // a division by a zero X ends with 0; ret a after a = 7 / 1
      ['5,0 0 0 7,1 0 0 0,60 0 0 0,6 0 0 1,6 0 0 1', false],
      ['5,0 0 0 7,1 0 0 1,60 0 0 0,22 0 0 0,6 0 0 0', true],
      // len: 28 bytes of IPv4 + UDP + 4
      ['4,128 0 0 0,21 0 1 32,6 0 0 1,6 0 0 0', true],
      // ancillary loads, whatever their size: ldh proto; jeq #0x800
      ['4,40 0 0 4294963200,21 0 1 2048,6 0 0 1,6 0 0 0', true],
      ['4,48 0 0 4294963200,21 0 1 2048,6 0 0 1,6 0 0 0', true],
      // pkttype (PACKET_HOST), mark, cpu: 0
      ['2,32 0 0 4294963204,22 0 0 0', false],
      ['2,32 0 0 4294963220,22 0 0 0', false],
      // A ^= X: 3 ^ 5 = 6
      ['6,1 0 0 5,0 0 0 3,32 0 0 4294963240,21 0 1 6,6 0 0 1,6 0 0 0', true],
      // no VLAN tag: tag, present, TPID all 0
      ['3,0 0 0 9,32 0 0 4294963248,22 0 0 0', false],
      ['3,0 0 0 9,32 0 0 4294963260,22 0 0 0', false],
      // nla_find over the UDP payload (4 zero bytes: an attribute of length 0 ends the walk) finds nothing
      ['4,0 0 0 28,1 0 0 0,32 0 0 4294963212,22 0 0 0', false],
    ];
    for (const [prog, want] of cases) {
      const rs = parseRestore(table([`-m bpf --bytecode "${prog}"`]), { family: 'ip' });
      for (const engine of [vmTable(rs, 'raw', {}), referenceTable(rs, 'raw', {})]) {
        const p = packet(ipPacket('10.0.0.2', '10.0.0.1', { proto: 'udp', sport: 4000, dport: 53, payload: 4 }));
        p.meta[M_NFPROTO] = 2;
        p.meta[M_HOOK] = 0;
        engine.run('PREROUTING', p);
        expect([prog, engine.counters().get('PREROUTING')!.rules[0]!.packets]).toEqual([prog, want ? 1 : 0]);
      }
    }
  });

  it('reads skb->dev per hook: the input device in PREROUTING, none in OUTPUT (the program exits with A)', () => {
    // ld #5; ld ifindex; ret a  /  ld ifindex; ret a  /  ld hatype; jeq #1 (ARPHRD_ETHER)
    const progs = ['3,0 0 0 5,32 0 0 4294963208,22 0 0 0', '2,32 0 0 4294963208,22 0 0 0', '4,32 0 0 4294963228,21 0 1 1,6 0 0 1,6 0 0 0'];
    const rs = parseRestore(['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...progs.flatMap((p) => [`-A PREROUTING -m bpf --bytecode "${p}"`, `-A OUTPUT -m bpf --bytecode "${p}"`]), 'COMMIT', ''].join('\n'), { family: 'ip' });
    for (const engine of [vmTable(rs, 'raw', {}), referenceTable(rs, 'raw', {})]) {
      for (const [chain, hook] of [['PREROUTING', 0], ['OUTPUT', 3]] as const) {
        const p = packet(ipPacket('10.0.0.2', '10.0.0.1', { proto: 'udp', sport: 4000, dport: 53, payload: 4 }));
        p.meta[M_NFPROTO] = 2;
        p.meta[M_HOOK] = hook;
        p.meta[hook === 0 ? M_IIF : M_OIF] = 2;
        p.meta[hook === 0 ? M_IIFTYPE : M_OIFTYPE] = 1;
        engine.run(chain, p);
      }
      expect(engine.counters().get('PREROUTING')!.rules.map((r) => r.packets)).toEqual([1, 1, 1]);
      expect(engine.counters().get('OUTPUT')!.rules.map((r) => r.packets)).toEqual([1, 0, 0]);
    }
  });

  it('refuses what it cannot know, and programs the kernel refuses', () => {
    const refuse = (rule: string) => {
      try {
        compileTable(parseRestore(table([rule]), { family: 'ip', file: 'r' }), 'raw', { file: 'r' });
        return 'accepted';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(refuse('-m bpf --bytecode "2,48 0 0 4294963200,6 0 0 1"')).toBe('accepted');
    expect(refuse('-m bpf --bytecode "2,32 0 0 4294963224,6 0 0 1"')).toMatch(/ancillary data .*SKF_AD_QUEUE/);
    expect(refuse('-m bpf --bytecode "2,32 0 0 4294963232,6 0 0 1"')).toMatch(/ancillary data .*SKF_AD_RXHASH/);
    expect(refuse('-m bpf --bytecode "2,32 0 0 4294963252,6 0 0 1"')).toBe('accepted');
    expect(refuse('-m bpf --bytecode "2,32 0 0 4294963256,6 0 0 1"')).toBe('accepted');
    expect(refuse('-m bpf --object-pinned /sys/fs/bpf/x')).toMatch(/BPF filesystem/);
    expect(refuse('-m bpf --bytecode "2,96 0 0 0,6 0 0 1"')).toMatch(/scratch memory read before/);
    expect(refuse('-m bpf --bytecode "2,100 0 0 32,6 0 0 1"')).toMatch(/shift out of range/);
    expect(refuse('-m bpf --bytecode "2,48 0 0 4294963264,6 0 0 1"')).toMatch(/unknown ancillary/);
  });
});
