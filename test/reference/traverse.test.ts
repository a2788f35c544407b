/**
 * The traversal of the x_tables evaluator (ipt_do_table / ip6t_do_table):
 * verdicts, jumps and gotos, RETURN, policies and their counters, hotdrop,
 * fragments, interfaces, traces.
 */
import { describe, expect, it } from 'vitest';
import { TraceKind } from '../../engine/engine.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE } from '../../core/netfilter.js';
import { engine, eth, ext, ipv4, ipv6, packet, raw, tcp, udp } from './helpers.js';

const P = () => packet([ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), tcp({ dport: 22 })]);

describe('standard targets and policies', () => {
  it('applies the first matching verdict and counts the rule before its target', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.9 -j DROP\n-A INPUT -p tcp --dport 22 -j DROP\n-A INPUT -j ACCEPT`);
    expect(e.run('INPUT', P())).toBe(NF_DROP);
    const c = e.counters().get('INPUT')!;
    expect(c.rules.map((r) => r.packets)).toEqual([0, 1, 0]);
    expect(c.rules[1]!.bytes).toBe(40);
    expect(c.policy).toEqual({ packets: 0, bytes: 0 });
  });

  it('falls off the end into the policy and counts it', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n-A INPUT -p udp -j ACCEPT`);
    expect(e.run('INPUT', P())).toBe(NF_DROP);
    expect(e.counters().get('INPUT')!.policy).toEqual({ packets: 1, bytes: 40 });
  });

  it('RETURN in a builtin chain applies the policy and counts it', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j RETURN\n-A INPUT -j DROP`);
    expect(e.run('INPUT', P())).toBe(NF_ACCEPT);
    const c = e.counters().get('INPUT')!;
    expect(c.rules.map((r) => r.packets)).toEqual([1, 0]);
    expect(c.policy!.packets).toBe(1);
  });

  it('a rule without -j only counts', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n-A INPUT -p tcp\n-A INPUT -p tcp\n-A INPUT -j ACCEPT`);
    expect(e.run('INPUT', P())).toBe(NF_ACCEPT);
    expect(e.counters().get('INPUT')!.rules.map((r) => r.packets)).toEqual([1, 1, 1]);
  });

  it('QUEUE is NF_QUEUE to queue 0; NFQUEUE carries the number and the bypass flag', () => {
    expect(engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -j QUEUE`).run('INPUT', P())).toBe(NF_QUEUE);
    expect(engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -j NFQUEUE --queue-num 7`).run('INPUT', P())).toBe(((7 << 16) | NF_QUEUE) >>> 0);
    expect(engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -j NFQUEUE --queue-num 65535 --queue-bypass`).run('INPUT', P())).toBe((0xffff0000 | 0x8000 | NF_QUEUE) >>> 0);
  });

  it('zero() clears rule and policy counters', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp`);
    e.run('INPUT', P());
    e.zero();
    expect(e.counters().get('INPUT')).toEqual({ rules: [{ packets: 0, bytes: 0 }], policy: { packets: 0, bytes: 0 } });
  });
});

describe('jumps, gotos and returns', () => {
  it('the end of a user chain returns after the jumping rule', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n:X - [0:0]\n-A INPUT -j X\n-A INPUT -j ACCEPT\n-A X -p udp -j DROP`);
    expect(e.run('INPUT', P())).toBe(NF_ACCEPT);
    expect(e.counters().get('INPUT')!.rules.map((r) => r.packets)).toEqual([1, 1]);
  });

  it('a jump to an empty chain returns', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n:EMPTY - [0:0]\n-A INPUT -j EMPTY\n-A INPUT -j ACCEPT`);
    e.setTrace(true);
    expect(e.run('INPUT', P())).toBe(NF_ACCEPT);
    expect(e.takeTrace()).toEqual([
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
      { kind: TraceKind.RETURN, chain: 'EMPTY', rule: 1 },
      { kind: TraceKind.POLICY, chain: 'INPUT', rule: 2 }, // quirk: unconditional -j ACCEPT traces as policy
    ]);
  });

  it('RETURN after a goto returns past the rule that last jumped', () => {
    const e = engine('filter', [
      ':INPUT DROP [0:0]', ':A - [0:0]', ':B - [0:0]',
      '-A INPUT -j A', '-A INPUT -j ACCEPT',
      '-A A -g B', '-A A -j DROP',
      '-A B -p tcp -j RETURN',
    ].join('\n'));
    e.setTrace(true);
    expect(e.run('INPUT', P())).toBe(NF_ACCEPT);
    expect(e.counters().get('A')!.rules.map((r) => r.packets)).toEqual([1, 0]);
    expect(e.takeTrace()).toEqual([
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
      { kind: TraceKind.RULE, chain: 'A', rule: 1 },
      { kind: TraceKind.RULE, chain: 'B', rule: 1 },
      { kind: TraceKind.POLICY, chain: 'INPUT', rule: 2 },
    ]);
  });

  it('a goto from a builtin chain ends in its policy, which counts', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n:B - [0:0]\n-A INPUT -g B\n-A INPUT -j ACCEPT\n-A B -p udp -j ACCEPT`);
    e.setTrace(true);
    expect(e.run('INPUT', P())).toBe(NF_DROP);
    expect(e.counters().get('INPUT')!.policy!.packets).toBe(1);
    expect(e.takeTrace()).toEqual([
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
      { kind: TraceKind.RETURN, chain: 'B', rule: 2 },
      { kind: TraceKind.POLICY, chain: 'INPUT', rule: 3 },
    ]);
  });

  it('an unconditional -j RETURN traces as return with its own number, a conditional one as a rule', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n:X - [0:0]\n:Y - [0:0]\n-A INPUT -j X\n-A INPUT -j Y\n-A X -j RETURN\n-A Y -p tcp -j RETURN`);
    e.setTrace(true);
    e.run('INPUT', P());
    expect(e.takeTrace()).toEqual([
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
      { kind: TraceKind.RETURN, chain: 'X', rule: 1 },
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 2 },
      { kind: TraceKind.RULE, chain: 'Y', rule: 1 },
      { kind: TraceKind.POLICY, chain: 'INPUT', rule: 3 },
    ]);
  });

  it('records nothing while tracing is off', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -j LOG`);
    e.run('INPUT', P());
    expect(e.takeTrace()).toEqual([]);
    expect(e.takeActions()).toEqual([]);
  });
});

describe('the IP part', () => {
  it('addresses with masks and inversion', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -d 10.0.0.2/32 -j DROP`);
    expect(e.run('INPUT', P())).toBe(NF_DROP);
    const f = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT ! -s 10.0.0.0/8 -j DROP`);
    expect(f.run('INPUT', P())).toBe(NF_ACCEPT);
  });

  it('interfaces: exact, + prefix, inverted, and + matching no device', () => {
    const rules = `:FORWARD ACCEPT [0:0]\n-A FORWARD -i eth0 -j QUEUE\n-A FORWARD -i veth+ -o ! lo -j DROP\n-A FORWARD -i + -j NFQUEUE --queue-num 9`;
    const e = engine('filter', rules.replace('-o ! lo', '! -o lo'));
    const mk = (iif: string | undefined, oif?: string) =>
      packet([ipv4(), tcp()], { iif: iif === undefined ? undefined : [3, iif], oif: oif === undefined ? undefined : [4, oif] });
    expect(e.run('FORWARD', mk('eth0'))).toBe(NF_QUEUE);
    expect(e.run('FORWARD', mk('eth0.5'))).toBe(((9 << 16) | NF_QUEUE) >>> 0); // exact name compares the NUL
    expect(e.run('FORWARD', mk('veth12', 'eth1'))).toBe(NF_DROP);
    expect(e.run('FORWARD', mk('veth12', 'lo'))).toBe(((9 << 16) | NF_QUEUE) >>> 0);
    expect(e.run('FORWARD', mk('vet'))).toBe(((9 << 16) | NF_QUEUE) >>> 0);
    expect(e.run('FORWARD', mk(undefined))).toBe(((9 << 16) | NF_QUEUE) >>> 0); // `-i +` matches no device too
  });

  it('protocol and its inversion; -f and ! -f', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT ! -p tcp -j DROP\n-A INPUT -f -j QUEUE\n-A INPUT ! -f -j NFQUEUE --queue-num 1`);
    expect(e.run('INPUT', packet([ipv4(), udp()]))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv4({ fragoff: 3, proto: 6 }), raw([1, 2, 3, 4, 5, 6, 7, 8])]))).toBe(NF_QUEUE);
    expect(e.run('INPUT', packet([ipv4({ mf: true }), tcp()]))).toBe(((1 << 16) | NF_QUEUE) >>> 0);
  });

  it('never lets a frame the stack would drop reach the table', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT`);
    expect(e.run('INPUT', packet([ipv4({ ihl: 4 }), tcp()]))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv6(), tcp()]))).toBe(NF_DROP);
    expect(e.counters().get('INPUT')!.rules[0]!.packets).toBe(0);
  });
});

describe('fragments and hotdrop', () => {
  it('hotdrops on truncated tcp, udp and icmp headers, whatever the later rules say', () => {
    const cases: [string, Parameters<typeof packet>[0]][] = [
      ['-p tcp --dport 22', [ipv4(), tcp({ truncate: 19 })]],
      ['-p udp --dport 53', [ipv4(), raw([0, 1, 0, 53, 0, 8, 0])].map((l, i) => (i === 1 ? { ...l, ipproto: 17 } : l))],
      ['-p icmp --icmp-type 8', [ipv4(), raw([8, 0, 0, 0, 0, 0, 0])].map((l, i) => (i === 1 ? { ...l, ipproto: 1 } : l))],
    ];
    for (const [rule, layers] of cases) {
      const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT ${rule} -j ACCEPT\n-A INPUT -j ACCEPT`);
      expect(e.run('INPUT', packet(layers)), rule).toBe(NF_DROP);
      expect(e.counters().get('INPUT')!.rules.map((r) => r.packets), rule).toEqual([0, 0]);
    }
  });

  it('non-first fragments never match layer-4 matches, inverted or not; offset 1 hotdrops tcp', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp ! --dport 22 -j DROP\n-A INPUT -p udp -m multiport ! --dports 1 -j DROP\n-A INPUT -j QUEUE`);
    expect(e.run('INPUT', packet([ipv4({ fragoff: 8, proto: 6 }), raw(new Array(20).fill(0))]))).toBe(NF_QUEUE);
    expect(e.run('INPUT', packet([ipv4({ fragoff: 8, proto: 17 }), raw(new Array(20).fill(0))]))).toBe(NF_QUEUE);
    const f = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j ACCEPT`);
    expect(f.run('INPUT', packet([ipv4({ fragoff: 1, proto: 6 }), raw(new Array(20).fill(0))]))).toBe(NF_DROP);
  });

  it('IPv6: -p finds TCP behind extension headers (AH skipped by its length)', () => {
    const e = engine('filter', `:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT`, { family: 'ip6' });
    expect(e.run('INPUT', packet([ipv6(), ext('hbh'), ext('dst', { len: 1 }), ext('frag'), ext('ah'), tcp({ dport: 22 })]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv6(), ext('hbh'), tcp({ dport: 23 })]))).toBe(NF_DROP);
  });

  it('IPv6: a non-first fragment matches -p but no layer-4 match; a truncated extension header hotdrops', () => {
    const e = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\n-A INPUT -p tcp -j QUEUE`, { family: 'ip6' });
    expect(e.run('INPUT', packet([ipv6(), ext('frag', { offset: 2 }), tcp({ dport: 22 })]))).toBe(NF_QUEUE);
    const g = engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p udp -j DROP\n-A INPUT -j ACCEPT`, { family: 'ip6' });
    expect(g.run('INPUT', packet([ipv6({ nexthdr: 0 }), raw([6])]))).toBe(NF_DROP);
    expect(g.counters().get('INPUT')!.rules.map((r) => r.packets)).toEqual([0, 0]);
  });
});

describe('refusals', () => {
  it('names a match or target whose semantics are not modelled', () => {
    expect(() => engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -m policy --dir in --pol ipsec -j ACCEPT`)).toThrow(/match policy: needs the IPsec states of the node/);
    expect(() => engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j SYNPROXY --mss 1460`)).toThrow(/target SYNPROXY: semantics not modelled yet/);
    expect(() => engine('mangle', `:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j SECMARK --selctx system_u:object_r:ssh_packet_t:s0`)).toThrow(/target SECMARK: semantics not modelled yet/);
  });
});

void eth;
