/**
 * The execution tier's code generation (vm/jit): only nfvm's fixed text and
 * int32 literals reach the generated source (the emitter refuses anything
 * else; hostile chain names, comments and log prefixes do not appear in it),
 * and how the tier runs every opcode (inlined or through the fallback; the
 * property tests in property.test.ts run both ways against the interpreter).
 */
import { describe, expect, it } from 'vitest';
import { JitSource, jitName } from '../../vm/jit/src.js';
import { jitCode, jitMode, OP_INFO, OP_MAX, Op, VmError } from '../../vm/index.js';
import { AUTO_PROBE_RUNS } from '../../vm/interp.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { compileTable } from '../../compiler/compile.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import { genPacketOf } from '../helpers/engine-gen.js';
import { iptablesRules, kubeServices } from '../../gen/kube-proxy.js';

/** What a fixed part may hold (vm/jit/src.ts): no quote, backtick or slash, so no string, comment or regex. */
const SOURCE_CHARS = /^[A-Za-z0-9_ \n(){}[\];:=<>!&|^~+\-*%.,?]*$/;

describe('the source emitter', () => {
  it('prints int32s and table names, negative numbers in parentheses', () => {
    const s = new JitSource();
    s.js`x = ${5} + ${-7} + ${jitName('nh')};`;
    expect(s.text()).toBe('x = 5 + (-7) + nh;');
  });

  it('refuses strings, non-int32 numbers, names outside the table and text not from a template literal', () => {
    const s = new JitSource();
    const evil = 'process.exit(1)';
    expect(() => s.js`x = ${evil as unknown as number};`).toThrow(VmError);
    expect(() => s.js`x = ${1.5};`).toThrow(VmError);
    expect(() => s.js`x = ${2 ** 31};`).toThrow(VmError);
    expect(() => s.js`x = ${NaN};`).toThrow(VmError);
    expect(() => s.js`x = ${{ name: 'process' } as unknown as number};`).toThrow(VmError);
    expect(() => jitName('process' as 'nh')).toThrow(VmError);
    const forged = Object.assign(['x = 1;'], { raw: ['x = 1;'] }) as unknown as TemplateStringsArray;
    expect(() => s.js(forged)).toThrow(VmError);
    expect(() => s.js`x = "a";`).toThrow(VmError);
    expect(() => s.js`x = 1; // comment`).toThrow(VmError);
    expect(s.text()).toBe('');
  });

  it('keeps hostile chain names, comments, log prefixes and set contents out of the generated source', () => {
    const hostile = ['");process.exit(7);//', "'+process.exit(8)+'", '`${process.exit(9)}`', '*/process.abort()/*', 'EVIL_CHAIN_XQ'];
    const text = `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:EVIL_CHAIN_XQ - [0:0]
-A INPUT -s 10.0.0.1/32 -m comment --comment "${hostile[0]!.replace(/"/g, '\\"')}" -j EVIL_CHAIN_XQ
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "${hostile[1]}" -j LOG --log-prefix "${hostile[3]}"
-A INPUT -m comment --comment "${hostile[2]}" -m mark --mark 0x1/0xff -j ACCEPT
-A EVIL_CHAIN_XQ -p udp -m multiport --dports 53,67 -j RETURN
-A EVIL_CHAIN_XQ -j DROP
COMMIT
`;
    const rs = parseRestore(text);
    for (const optimize of [0, 1] as const) {
      const prog = compileTable(rs, 'filter', { optimize, policyRules: true }).program;
      expect(prog.strings.some((x) => x.includes('EVIL_CHAIN_XQ'))).toBe(true);
      const src = jitCode(prog).sources.join('');
      for (const h of hostile) expect(src).not.toContain(h);
      expect(src).not.toContain('process');
      expect(src).toMatch(SOURCE_CHARS);
    }
  });
});

describe('how the tier runs each opcode', () => {
  it('lists every opcode as structure, inlined, called (execExtra) or through the fallback', () => {
    const modes: Record<string, string> = {};
    for (let op = 1; op < OP_MAX; op++) modes[OP_INFO[op]!.name] = jitMode(op);
    expect(modes).toEqual({
      rule: 'structure', end: 'structure',
      payload: 'inline', payload_fast: 'inline', payload_cmp: 'inline', meta_cmp: 'inline', cmp: 'inline', cmp_eq32: 'inline',
      bitwise: 'inline', bitwise32: 'inline', range: 'inline', byteorder: 'fallback', meta_get: 'inline', meta_set: 'fallback',
      immediate: 'inline', immediate32: 'inline', verdict: 'inline', counter: 'inline', lookup: 'inline', numgen: 'fallback',
      limit: 'inline', log: 'inline', ct_get: 'inline', ct_set: 'call', fib: 'call', xt_l4: 'inline',
      reject: 'call', queue: 'call', nat: 'call', classify: 'inline', xt_match: 'fallback',
      xt_set_match: 'call', xt_set_target: 'call', match: 'call', target: 'fallback', random_cmp: 'inline', l4proto_cmp: 'inline',
    });
    // an opcode added later gets the fallback without a change to the generator
    expect(jitMode(OP_MAX)).toBe('fallback');
    expect(jitMode(Op.RULE)).toBe('structure');
  });
});

describe('a rewriting target run by a fallback', () => {
  it('a ct guard that runs the rest of its rule (ECN rewriting the header) leaves the next rule reading the packet as it is now', () => {
    const rs = parseRestore(`*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT DROP [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -m helper ! --helper "" -j ECN --ecn-ip-ect 1
-A OUTPUT -m ecn --ecn-ip-ect 1 -j NFQUEUE --queue-num 5
COMMIT
`);
    const g = {
      chain: 'OUTPUT', ethernet: false, srcMac: '02:00:00:00:00:01', src: '10.0.0.1', dst: '10.0.0.2', proto: 6, ttl: 64, tos: 0, fragoff: 0, mf: false,
      ipOptions: false, sport: 1, dport: 2, tcpFlags: 2, tcpOptions: false, icmpType: 0, icmpCode: 0, truncate: undefined, payload: 0, iif: 'eth0', oif: 'eth0',
      mark: 0, ctstate: 1, ctmark: 0, pkttype: 0,
    } as const;
    const queued = (5 << 16) | 3; // NF_QUEUE, queue 5
    expect(referenceTable(rs, 'mangle', {}).run('OUTPUT', genPacketOf(g))).toBe(queued);
    for (const optimize of [0, 1] as const) {
      for (const tier of ['jit', 'interp'] as const) expect(vmTable(rs, 'mangle', { optimize, tier }).run('OUTPUT', genPacketOf(g)), `${tier} -O${optimize}`).toBe(queued);
    }
  });
});

describe('segments that differ only in their parameters share one function', () => {
  it("kube-proxy's chains (a KUBE-SVC and KUBE-SEP chain per Service and endpoint, tcp and udp Services mixed in KUBE-SERVICES) run on a few functions, as the interpreter runs them", () => {
    const svcs = kubeServices({ services: 60, endpoints: 3, mode: 'iptables' });
    const rs = parseRestore(iptablesRules(svcs));
    const jit = vmTable(rs, 'nat', { optimize: 0, tier: 'jit' });
    const interp = vmTable(rs, 'nat', { optimize: 0, tier: 'interp' });
    const prog = jit.compiled.program;
    const code = jitCode(prog);
    // 60 KUBE-SVC and 180 KUBE-SEP chains, and the base ones
    expect(prog.chains.length / 5).toBeGreaterThan(240);
    expect(code.sources.length).toBeLessThan(16);
    const base = {
      chain: 'PREROUTING', ethernet: false, srcMac: '02:00:00:00:00:01', src: '10.200.0.1', dst: '10.96.0.1', proto: 6, ttl: 64, tos: 0, fragoff: 0, mf: false,
      ipOptions: false, sport: 40000, dport: 80, tcpFlags: 2, tcpOptions: false, icmpType: 0, icmpCode: 0, truncate: undefined, payload: 0, iif: 'cni0', oif: 'eth0',
      mark: 0, ctstate: 1, ctmark: 0, pkttype: 0,
    } as const;
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const sv = svcs[(i * 7) % svcs.length]!;
      // the Service's own port and protocol, or a miss (another port, the other protocol); pods and outside sources
      const g = {
        ...base, dst: sv.clusterIp, proto: i % 5 === 4 ? (sv.proto === 'tcp' ? 17 : 6) : sv.proto === 'tcp' ? 6 : 17,
        dport: i % 3 === 2 ? sv.port + 1 : sv.port, src: i % 2 ? '10.128.1.9' : `10.200.${i >> 8}.${i & 255}`, sport: 40000 + i,
      };
      const v = interp.run('PREROUTING', genPacketOf(g));
      expect(jit.run('PREROUTING', genPacketOf(g)), `packet ${i}`).toBe(v);
      if (v === 1) accepted++;
    }
    expect(accepted).toBe(400);
    expect(Array.from(prog.counters)).toEqual(Array.from(interp.compiled.program.counters));
    // the DNAT rules of the endpoints the packets reached counted them
    expect(Array.from(prog.counters).filter((c, i) => i % 2 === 0 && c > 0).length).toBeGreaterThan(100);
  });
});

describe("the tier 'auto' chooses (what nfvm replay runs)", () => {
  const g = {
    chain: 'FORWARD', ethernet: false, srcMac: '02:00:00:00:00:01', src: '10.0.0.7', dst: '10.1.0.5', proto: 6, ttl: 64, tos: 0, fragoff: 0, mf: false,
    ipOptions: false, sport: 40000, dport: 22, tcpFlags: 16, tcpOptions: false, icmpType: 0, icmpCode: 0, truncate: undefined, payload: 0, iif: 'eth0', oif: 'eth1',
    mark: 0, ctstate: 2, ctmark: 0, pkttype: 0,
  } as const;
  const ruleset = (established: boolean, rules: number) => {
    const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
    if (established) lines.push('-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
    for (let i = 0; i < rules; i++) lines.push(`-A FORWARD -s 10.${i >> 8}.${i & 255}.1/32 -p tcp -m tcp --dport ${1000 + i} -j DROP`);
    lines.push('COMMIT', '');
    return parseRestore(lines.join('\n'));
  };
  const runs = 2 * AUTO_PROBE_RUNS + 10;
  const counters = (e: ReturnType<typeof vmTable>) => Array.from(e.compiled.program.counters);

  it('the tier for packets that walk a long chain, with the counters the interpreter gives', () => {
    const rs = ruleset(false, 300);
    const auto = vmTable(rs, 'filter', { optimize: 0, tier: 'auto' });
    const interp = vmTable(rs, 'filter', { optimize: 0, tier: 'interp' });
    expect(auto.vm.onTier).toBe(false);
    for (let i = 0; i < runs; i++) expect(auto.run('FORWARD', genPacketOf(g))).toBe(interp.run('FORWARD', genPacketOf(g)));
    expect(auto.vm.onTier).toBe(true);
    expect(counters(auto)).toEqual(counters(interp));
  });

  it('the interpreter for packets a first rule accepts (a stateful firewall\'s established flows), after a burst of new connections walking the chain', () => {
    // the burst walks the 100 rules (about 1,500 words), the window after it one rule
    const rs = ruleset(true, 100);
    const auto = vmTable(rs, 'filter', { optimize: 0, tier: 'auto' });
    const interp = vmTable(rs, 'filter', { optimize: 0, tier: 'interp' });
    const fresh = { ...g, ctstate: 8 };
    for (let i = 0; i < 2 * runs; i++) {
      const p = i < AUTO_PROBE_RUNS ? fresh : g;
      expect(auto.run('FORWARD', genPacketOf(p))).toBe(interp.run('FORWARD', genPacketOf(p)));
    }
    expect(auto.vm.onTier).toBe(false);
    expect(counters(auto)).toEqual(counters(interp));
  });
});
