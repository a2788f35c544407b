/**
 * The lowerings compiled and run on packets through vmTable (x_tables
 * semantics, backend 'legacy' unless stated), and the same rules through the
 * x_tables evaluator where both model them.
 */
import { describe, expect, it } from 'vitest';
import { parseRestore } from '../../compiler/parse/restore.js';
import { compileTable } from '../../compiler/compile.js';
import { NfvmError } from '../../core/errors.js';
import { vmTable, type VmTableOptions } from '../../engine/vm-table.js';
import { referenceTable } from '../../engine/reference/index.js';
import { M_CT_DIR, M_CT_MARK, M_CT_STATE, M_MARK, type Packet } from '../../vm/index.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE } from '../../core/netfilter.js';
import { TraceKind } from '../../engine/engine.js';
import { ipv4, ipv6, packet, tcp, udp, raw } from '../vm/helpers/pkt.js';

function rules(body: string, policy = 'DROP', table = 'filter', chains = ':FOO - [0:0]\n'): string {
  const builtin = table === 'filter' ? `:INPUT ${policy} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n` : '';
  return `*${table}\n${builtin}${chains}${body.trim().split('\n').map((l) => l.trim()).join('\n')}\nCOMMIT\n`;
}

function engine(body: string, o: VmTableOptions & { family?: 'ip' | 'ip6'; policy?: string } = {}) {
  const rs = parseRestore(rules(body, o.policy), { family: o.family ?? 'ip', file: 't' });
  return vmTable(rs, 'filter', o);
}

const tcp4 = (sport: number, dport: number, flags = 0x10) => packet([ipv4(), tcp({ sport, dport, flags })]);

describe('compiled rules on packets', () => {
  it('tcp dport, counters and the policy', () => {
    const e = engine('-A INPUT -p tcp --dport 22 -j ACCEPT');
    expect(e.run('INPUT', tcp4(1000, 22))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', tcp4(1000, 23))).toBe(NF_DROP);
    const c = e.counters().get('INPUT')!;
    expect(c.rules[0]!.packets).toBe(1);
    expect(c.rules[0]!.bytes).toBe(40);
    expect(c.policy).toEqual({ packets: 1, bytes: 40 });
  });

  it('inverted sport+dport: legacy needs both to differ, nft merges them (kernel-facts §1.8 trap)', () => {
    const body = '-A INPUT -p tcp ! --sport 1 ! --dport 2 -j ACCEPT';
    const p = () => tcp4(1, 3);
    expect(engine(body).run('INPUT', p())).toBe(NF_DROP);
    expect(engine(body, { backend: 'nft' }).run('INPUT', p())).toBe(NF_ACCEPT);
  });

  it('a truncated tcp header hotdrops (legacy) and the rule does not count', () => {
    const e = engine('-A INPUT -p tcp --dport 22 -j ACCEPT', { policy: 'ACCEPT' });
    const p = packet([ipv4({ proto: 6 }), raw([0, 1, 0, 22, 0, 0])]);
    expect(e.run('INPUT', p)).toBe(NF_DROP);
    expect(e.counters().get('INPUT')!.rules[0]!.packets).toBe(0);
    expect(e.counters().get('INPUT')!.policy!.packets).toBe(0);
  });

  it('a non-first fragment never matches a layer-4 test, inverted or not; offset 1 hotdrops for tcp', () => {
    const e = engine('-A INPUT -p tcp ! --dport 22 -j DROP', { policy: 'ACCEPT' });
    expect(e.run('INPUT', packet([ipv4({ proto: 6, fragoff: 2 }), raw(new Array(40).fill(0))]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4({ proto: 6, fragoff: 1 }), raw(new Array(40).fill(0))]))).toBe(NF_DROP);
  });

  it('multiport, icmp, iprange, length, ttl', () => {
    const e = engine(`
      -A INPUT -p tcp -m multiport --dports 22,80:90 -j ACCEPT
      -A INPUT -p icmp --icmp-type echo-request -j ACCEPT
      -A INPUT -m iprange --src-range 10.9.0.1-10.9.0.9 -j ACCEPT
      -A INPUT -m length --length 100:200 -j ACCEPT
      -A INPUT -m ttl --ttl-lt 5 -j ACCEPT`);
    expect(e.run('INPUT', tcp4(1, 85))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', tcp4(1, 91))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv4({ proto: 1 }), raw([8, 0, 0, 0, 0, 0, 0, 0])]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4({ proto: 1 }), raw([0, 0, 0, 0, 0, 0, 0, 0])]))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv4({ src: '10.9.0.5' }), udp()]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4(), udp(), raw(new Array(120).fill(0))]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4({ ttl: 3 }), udp()]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4(), udp()]))).toBe(NF_DROP);
  });

  it('mark, MARK and CONNMARK on the metadata; conntrack state and connmark', () => {
    const e = engine(`
      -A INPUT -m mark --mark 0x1/0xff -j MARK --set-xmark 0x4000/0x4000
      -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j CONNMARK --save-mark
      -A INPUT -m connmark --mark 0x4001 -j ACCEPT
      -A INPUT -m state --state INVALID -j ACCEPT`);
    const p = tcp4(1, 2);
    p.meta[M_MARK] = 0x101;
    p.meta[M_CT_DIR] = 0;
    p.meta[M_CT_STATE] = 2; // ESTABLISHED
    expect(e.run('INPUT', p)).toBe(NF_DROP);
    expect(p.meta[M_MARK]).toBe(0x4101);
    expect(p.meta[M_CT_MARK]).toBe(0x4101);
    const q = tcp4(1, 2);
    q.meta[M_MARK] = 0x1;
    q.meta[M_CT_DIR] = 0;
    q.meta[M_CT_STATE] = 2;
    expect(e.run('INPUT', q)).toBe(NF_ACCEPT);
    expect(e.run('INPUT', tcp4(1, 2))).toBe(NF_ACCEPT); // no conntrack: INVALID
  });

  it('statistic nth every 3 from packet 0: the first packet matches (count starts at every - packet)', () => {
    const e = engine('-A INPUT -m statistic --mode nth --every 3 --packet 0 -j ACCEPT');
    const got = [0, 1, 2, 3, 4, 5].map(() => e.run('INPUT', tcp4(1, 2)));
    expect(got).toEqual([NF_ACCEPT, NF_DROP, NF_DROP, NF_ACCEPT, NF_DROP, NF_DROP]);
  });

  it('addrtype against the node addresses', () => {
    const e = engine('-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT\n-A INPUT -m addrtype --dst-type BROADCAST,MULTICAST -j ACCEPT', {
      localAddrs: [Uint8Array.of(10, 0, 0, 2)],
    });
    expect(e.run('INPUT', packet([ipv4({ dst: '10.0.0.2' }), udp()]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv4({ dst: '10.0.0.3' }), udp()]))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv4({ dst: '224.0.0.1' }), udp()]))).toBe(NF_ACCEPT);
  });

  it('REJECT drops, NFQUEUE queues, DNAT accepts', () => {
    const rs = parseRestore(
      '*filter\n-A INPUT -p udp -j REJECT\n-A INPUT -p tcp -j NFQUEUE --queue-num 5 --queue-bypass\nCOMMIT\n*nat\n-A PREROUTING -j DNAT --to-destination 1.2.3.4\nCOMMIT\n',
      { family: 'ip', file: 't' },
    );
    const f = vmTable(rs, 'filter');
    expect(f.run('INPUT', packet([ipv4(), udp()]))).toBe(NF_DROP);
    expect(f.run('INPUT', tcp4(1, 2))).toBe(((5 << 16) | 0x8000 | NF_QUEUE) >>> 0);
    expect(vmTable(rs, 'nat').run('PREROUTING', tcp4(1, 2))).toBe(NF_ACCEPT);
  });

  it('IPv6: addresses, tcp, hl', () => {
    const e = engine('-A INPUT -s 2001:db8::/64 -p tcp --dport 443 -j ACCEPT\n-A INPUT -m hl --hl-eq 64 -p udp -j ACCEPT', { family: 'ip6' });
    expect(e.run('INPUT', packet([ipv6({ src: '2001:db8::9' }), tcp({ dport: 443 })]))).toBe(NF_ACCEPT);
    expect(e.run('INPUT', packet([ipv6({ src: '2001:db9::9' }), tcp({ dport: 443 })]))).toBe(NF_DROP);
    expect(e.run('INPUT', packet([ipv6(), udp()]))).toBe(NF_ACCEPT);
  });

  it('trace events: rules, a user chain return, the policy', () => {
    const e = engine('-A INPUT -p tcp -j FOO\n-A FOO -p tcp --dport 9 -j ACCEPT');
    e.setTrace(true);
    expect(e.run('INPUT', tcp4(1, 2))).toBe(NF_DROP);
    expect(e.takeTrace()).toEqual([
      { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
      { kind: TraceKind.RETURN, chain: 'FOO', rule: 2 },
      { kind: TraceKind.POLICY, chain: 'INPUT', rule: 2 },
    ]);
  });

  it('refuses what it does not model, naming it', () => {
    const rs = parseRestore('*filter\n-A INPUT -m policy --dir in --pol ipsec -j ACCEPT\nCOMMIT\n', { family: 'ip', file: 'r.rules' });
    expect(() => compileTable(rs, 'filter')).toThrow(NfvmError);
    // without the node's IPsec lists (xfrm-policy.txt, xfrm-state.txt): the refusal says what it needs
    expect(() => compileTable(rs, 'filter', { file: 'r.rules' })).toThrow(/^r\.rules:2:\d+: match policy: needs the IPsec states of the node .*IPsec transforms are not modelled$/);
  });
});

describe('VM and reference agree', () => {
  const body = `
    -A INPUT -i lo -j ACCEPT
    -A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j FOO
    -A INPUT -p tcp ! --sport 1 ! --dport 2 -j ACCEPT
    -A INPUT -p udp -m multiport --dports 53,67:68 -j ACCEPT
    -A INPUT -m mark --mark 0x1/0x1 -j MARK --set-xmark 0x10/0x10
    -A INPUT -m statistic --mode random --probability 0.5 -j ACCEPT
    -A INPUT -j RETURN
    -A FOO -m statistic --mode nth --every 2 --packet 0 -j RETURN
    -A FOO -p tcp --syn -j ACCEPT`;
  it('verdicts, marks, counters and traces on a packet mix', () => {
    const rs = parseRestore(rules(body), { family: 'ip', file: 't' });
    const vm = vmTable(rs, 'filter', { seed: 7 });
    const ref = referenceTable(rs, 'filter', { seed: 7 });
    vm.setTrace(true);
    ref.setTrace(true);
    const pkts: (() => Packet)[] = [
      () => tcp4(1000, 22, 0x02),
      () => tcp4(1, 3),
      () => tcp4(5, 6),
      () => packet([ipv4({ src: '10.1.1.1' }), tcp({ dport: 22, flags: 0x02 })]),
      () => packet([ipv4(), udp({ dport: 67 })]),
      () => packet([ipv4(), udp({ dport: 99 })], { mark: 1 }),
      () => packet([ipv4({ proto: 6, fragoff: 3 }), raw(new Array(30).fill(0))]),
      () => packet([ipv4({ proto: 6 }), raw([0, 1])]),
    ];
    for (let round = 0; round < 4; round++) {
      for (const mk of pkts) {
        const a = mk();
        const b = mk();
        expect(vm.run('INPUT', a)).toBe(ref.run('INPUT', b));
        expect(a.meta[M_MARK]).toBe(b.meta[M_MARK]);
        expect(vm.takeTrace()).toEqual(ref.takeTrace());
      }
    }
    expect(vm.counters()).toEqual(ref.counters());
  });
});

describe('size', () => {
  it('bytes per rule of the golden set (code + pool)', () => {
    const text = rules(`
      -A INPUT -s 10.0.0.0/8 -j ACCEPT
      -A INPUT -p tcp --dport 22 -j ACCEPT
      -A INPUT -p tcp --sport 1024 --dport 22 -j ACCEPT
      -A INPUT -i eth0 -p udp --dport 53 -j ACCEPT
      -A INPUT -m mark --mark 0x1/0xff -j FOO
      -A INPUT -s 172.16.0.0/12 -d 10.0.0.0/8 -j DROP
      -A INPUT -m limit --limit 3/min -j NFLOG --nflog-group 2
      -A INPUT -p tcp --syn -j DROP`);
    const { program } = compileTable(parseRestore(text, { family: 'ip', file: 't' }), 'filter', { backend: 'nft' });
    const bytes = (program.code.length + program.pool.length) * 4;
    const perRule = bytes / program.nrules;
    console.log(`nfvm bytecode: ${bytes} bytes for ${program.nrules} rules = ${perRule.toFixed(1)} bytes/rule`);
    expect(perRule).toBeLessThan(200);
  });
});
