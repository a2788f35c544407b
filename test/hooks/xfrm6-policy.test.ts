/**
 * The IPsec policies of a node without states on IPv6 (hooks/route/xfrm.ts,
 * hooks/path/ipv6.ts, ipv6-route.ts, local-in.ts, xfrm-out.ts): the flow
 * decode_session6 fills (extension headers walked, a fragment without
 * ports, ICMPv6 type and code), the fwd check before the hop limit,
 * xfrm6_route_forward after it, the in check after INPUT, the out lookups of
 * the node's own packets and answers, disable_policy per device, the
 * default policies. The node is test/path/fixtures/node6 (eth0
 * 2001:db8::1/64, eth1 2001:db8:1::1/64, default via 2001:db8:1::2,
 * forwarding on). The kernel's answers are compared in
 * test/kernel/policy6-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { XfrmPolicies, XFRM_POLICY_FWD, XFRM_POLICY_IN, newXfrmFlow, parseXfrmPolicies, xfrmFlow6At, type XfrmFlow } from '../../hooks/route/xfrm.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { specInput } from '../../cli/model.js';

const FIX = join(import.meta.dirname, '../path/fixtures/node6');
const base = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));
const FILTER = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

function flow(spec: string, reverse = false): XfrmFlow {
  const data = encodeSpec(parseSpec(spec)).data;
  return xfrmFlow6At(data, 0, data.length, 0, '', reverse, newXfrmFlow(6));
}

function model(policies: string, engine: EngineKind, extra: Record<string, string> = {}): NodeModel {
  const files = new Map(base);
  files.set('ip6tables-save.txt', FILTER);
  files.set('xfrm-policy.txt', policies);
  files.set('xfrm-state.txt', '');
  for (const [k, v] of Object.entries(extra)) files.set(k, v);
  return buildNodeModel(buildNode('', files), { engine });
}

function go(m: NodeModel, spec: string): PathResult {
  m.setTrace(true);
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  return iif === '' ? m.send(pkt, s.oif) : m.receive(pkt, iif);
}

const chains = (r: PathResult) => r.steps.flatMap((s) => (s.kind === 'trace' ? [`${s.table}:${s.chain}`] : []));

/** `ip -6 xfrm policy show` of the policies below (newest first). */
const POLICIES = `src 2001:db8::2/128 dst 2400:cb00::7/128 proto udp 
	dir fwd action block priority 0 ptype main 
src 2001:db8::2/128 dst 2400:cb00::8/128 
	dir out priority 0 ptype main 
	tmpl src :: dst ::
		proto esp reqid 0 mode transport
src 2001:db8::2/128 dst 2001:db8::1/128 proto tcp dport 22 
	dir in priority 0 ptype main 
	tmpl src :: dst ::
		proto esp reqid 0 mode transport
src 2001:db8::1/128 dst 2001:db8::2/128 proto ipv6-icmp type 1 
	dir out action block priority 0 ptype main 
src 2001:db8::1/128 dst 2001:db8::2/128 proto udp 
	dir out priority 0 ptype main 
	tmpl src :: dst ::
		proto esp reqid 0 mode transport
`;

describe('decode_session6: the flow of an IPv6 packet', () => {
  it('walks hop-by-hop, destination options and routing headers to the ports; a fragment header gives the protocol without ports', () => {
    expect(flow('udp [2001:db8::2]:5000 > [2001:db8::1]:53 hbh dst len 1 rt')).toMatchObject({ family: 6, proto: 17, sport: 5000, dport: 53 });
    expect(flow('udp [2001:db8::2]:5000 > [2001:db8::1]:53 frag offset 0 mf ipid 1')).toMatchObject({ proto: 17, sport: 0, dport: 0 });
    expect(flow('udp 2001:db8::2 > 2001:db8::1 hbh frag offset 8 ipid 1')).toMatchObject({ proto: 17, sport: 0, dport: 0 });
    // an AH header is not walked: the protocol is AH, whose selector ports are 0
    expect(flow('udp [2001:db8::2]:5000 > [2001:db8::1]:53 ah')).toMatchObject({ proto: 51, sport: 0, dport: 0 });
  });

  it('ICMPv6 type and code in the port fields, not swapped when reversed; addresses and ports are', () => {
    expect(flow('icmpv6 2001:db8::2 > 2001:db8::1 packet-too-big')).toMatchObject({ proto: 58, sport: 2, dport: 0 });
    const r = flow('icmpv6 2001:db8::2 > 2001:db8::1 type 1 code 4', true);
    expect([r.sport, r.dport, r.saddr[3], r.daddr[3]]).toEqual([1, 4, 1, 2]);
    const u = flow('tcp [2001:db8::2]:5000 > [2001:db8::1]:80', true);
    expect([u.sport, u.dport]).toEqual([80, 5000]);
  });

  it('selects by family: an IPv4 policy never matches an IPv6 flow', () => {
    const db = new XfrmPolicies(parseXfrmPolicies('src 0.0.0.0/0 dst 0.0.0.0/0 \n\tdir in action block priority 0 ptype main \nsrc ::/0 dst 2001:db8::/64 proto tcp \n\tdir fwd action block priority 0 ptype main \n', 'f'));
    expect(db.check(flow('udp [2001:db8::2]:1 > [2001:db8::1]:2'), XFRM_POLICY_IN, false)).toBeUndefined();
    expect(db.check(flow('tcp [2001:db8:5::2]:1 > [2001:db8::9]:2'), XFRM_POLICY_FWD, false)).toMatch(/blocks/);
    expect(db.check(flow('tcp [2001:db8:5::2]:1 > [2001:db8:1::9]:2'), XFRM_POLICY_FWD, false)).toBeUndefined();
  });
});

describe.each(['vm', 'reference'] as const)('IPv6 policies on the node\'s paths (%s engine)', (engine) => {
  it('forwarded: the fwd block before the hop limit check (no time exceeded), the out template after it (larval drop); others pass', () => {
    const m = model(POLICIES, engine);
    const b = go(m, 'udp [2001:db8::2]:5000 > [2400:cb00::7]:9 hl 1 iif eth0');
    expect(b.fate).toMatchObject({ kind: 'dropped', reason: 'xfrm-policy' });
    expect(fateText(b.fate)).toMatch(/xfrm6_policy_check/);
    expect(b.answers).toEqual([]);
    const t = go(m, 'tcp [2001:db8::2]:5000 > [2400:cb00::8]:80 syn iif eth0');
    expect(fateText(t.fate)).toMatch(/requires an IPsec state .*xfrm6_route_forward/);
    expect(chains(t).some((c) => c.endsWith('FORWARD'))).toBe(false);
    // hop limit 1: time exceeded before xfrm6_route_forward looks
    const h = go(m, 'tcp [2001:db8::2]:5000 > [2400:cb00::8]:80 syn hl 1 iif eth0');
    expect(h.fate).toMatchObject({ reason: 'ttl' });
    expect(fateText(go(m, 'udp [2001:db8::2]:5000 > [2400:cb00::9]:9 iif eth0').fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
  });

  it('forwarded with net.ipv6.conf.eth0.disable_policy = 1: no fwd check (the out lookup still runs)', () => {
    const m = model(POLICIES, engine, { 'sysctl.txt': `${base.get('sysctl.txt')!}net.ipv6.conf.eth0.disable_policy = 1\n` });
    expect(fateText(go(m, 'udp [2001:db8::2]:5000 > [2400:cb00::7]:9 iif eth0').fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
    expect(fateText(go(m, 'tcp [2001:db8::2]:5000 > [2400:cb00::8]:80 syn iif eth0').fate)).toMatch(/xfrm6_route_forward/);
  });

  it('delivered: the in template drops after INPUT, no reset; the port unreachable to a blocked out flow is not sent; the node\'s datagram passes OUTPUT into a blackhole', () => {
    const m = model(POLICIES, engine);
    const s = go(m, 'tcp [2001:db8::2]:5001 > [2001:db8::1]:22 syn iif eth0');
    expect(s.fate).toMatchObject({ kind: 'dropped', reason: 'xfrm-policy' });
    expect(chains(s)).toContain('filter:INPUT');
    expect(s.answers).toEqual([]);
    const u = go(m, 'udp [2001:db8::2]:5000 > [2001:db8::1]:9 iif eth0');
    expect(u.fate.kind).toBe('delivered');
    expect(u.answers.map((a) => [a.kind, a.fate.kind])).toEqual([['icmp6-port-unreachable', 'dropped']]);
    expect(fateText(u.answers[0]!.fate)).toMatch(/icmpv6_route_lookup/);
    // a reset to another port is sent (no policy selects it)
    const r = go(m, 'tcp [2001:db8::2]:5002 > [2001:db8::1]:23 syn iif eth0');
    expect(r.answers.map((a) => [a.kind, a.fate.kind])).toEqual([['tcp-reset', 'sent']]);
    const o = go(m, 'udp [2001:db8::1]:40000 > [2001:db8::2]:9 from local');
    expect(fateText(o.fate)).toMatch(/blackhole/);
    expect(chains(o)).toContain('filter:OUTPUT');
  });

  it('the default policies block: in and fwd without a policy drop; out blocks but not to lo (the in policy then drops it after INPUT)', () => {
    const m = model('', engine, { 'xfrm-default.txt': 'Default policies:\n in:  block\n fwd: block\n out: block\n' });
    expect(go(m, 'icmpv6 2001:db8::2 > 2001:db8::1 echo-request iif eth0').fate).toMatchObject({ reason: 'xfrm-policy' });
    expect(go(m, 'udp 2001:db8::2 > 2400:cb00::9 iif eth0').fate).toMatchObject({ reason: 'xfrm-policy' });
    expect(go(m, 'udp [2001:db8::1]:40000 > [2001:db8::2]:9 from local').fate).toMatchObject({ reason: 'xfrm-policy' });
    const lo = go(m, 'udp [2001:db8::1]:40000 > [2001:db8::1]:9 from local');
    expect(fateText(lo.fate)).toMatch(/default in policy blocks.*after INPUT/);
    expect(chains(lo)).toEqual(expect.arrayContaining(['filter:OUTPUT', 'filter:INPUT']));
  });
});
