/**
 * The IPsec policy database of a node without states (hooks/route/xfrm.ts):
 * `ip [-s] xfrm policy show` read back, the lookup's order (priority, then
 * insertion), the selector's fields, the check and the output lookup's
 * answers. The kernel's own answers for a namespace are compared in
 * test/kernel/policy-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { XfrmPolicies, XFRM_POLICY_FWD, XFRM_POLICY_IN, XFRM_POLICY_OUT, newXfrmFlow, parseXfrmDefaults, parseXfrmPolicies, xfrmFlow4At, type XfrmFlow } from '../../hooks/route/xfrm.js';
import { NfvmError } from '../../core/errors.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { fateText } from '../../hooks/path/fate.js';
import { specInput } from '../../cli/model.js';

// `ip xfrm policy show` as iproute2 6.x prints it here (newest first)
const PLAIN = `src 10.0.0.1/32 dst 10.0.0.2/32 proto udp sport 53 
	dir out priority 0 ptype main 
	tmpl src 0.0.0.0 dst 0.0.0.0
		proto ah reqid 0 mode transport
	if_id 0x5
src 0.0.0.0/0 dst 0.0.0.0/0 proto icmp type 8 code 0 
	dir fwd priority 0 ptype main flag localok icmp
src 192.0.2.0/24 dst 198.51.100.0/24 
	dir fwd action block priority 0 ptype main 
src 198.51.100.0/24 dst 192.0.2.0/24 
	dir in priority 0 ptype main 
	tmpl src 198.51.100.1 dst 192.0.2.1
		proto esp reqid 0 mode tunnel
		level use 
src 192.0.2.0/24 dst 198.51.100.0/24 
	dir out priority 0 ptype main 
	tmpl src 192.0.2.1 dst 198.51.100.1
		proto esp reqid 0 mode tunnel
`;

// `ip -s xfrm policy show`: the index orders policies of one priority
const STATS = `src 10.0.0.0/8 dst 0.0.0.0/0 uid 0
	dir out action block index 17 priority 10 ptype main share any flag  (0x00000000)
	lifetime config:
	  limit: soft (INF)(bytes), hard (INF)(bytes)
	  limit: soft (INF)(packets), hard (INF)(packets)
	  expire add: soft 0(sec), hard 0(sec)
	  expire use: soft 0(sec), hard 0(sec)
	lifetime current:
	  0(bytes), 0(packets)
	  add 2026-12-05 19:21:52 use -
src 10.0.0.0/8 dst 0.0.0.0/0 uid 0
	dir out action allow index 25 priority 10 ptype main share any flag  (0x00000000)
src 10.1.0.0/16 dst 0.0.0.0/0 proto gre key 65538 uid 0
	dir out action allow index 9 priority 11 ptype main share any flag  (0x00000000)
	tmpl src 0.0.0.0 dst 0.0.0.0
		proto esp spi 0x00000000(0) reqid 0(0x00000000) mode transport
		level required share any 
		enc-mask ffffffff auth-mask ffffffff comp-mask ffffffff
src 10.2.0.0/16 dst 0.0.0.0/0 uid 0
	dir in action allow index 32 priority 0 ptype sub share any flag  (0x00000000)
	mark 0x10/0xff
src 10.2.0.0/16 dst 0.0.0.0/0 uid 0
	dir in action block index 40 priority 0 ptype main share any flag  (0x00000000)
`;

function flow(spec: string, oif = 'eth0', mark = 0): XfrmFlow {
  const data = encodeSpec(parseSpec(spec)).data;
  return xfrmFlow4At(data, 0, data.length, mark, oif, false, newXfrmFlow());
}

describe('xfrm policies of a node without states', () => {
  it('reads ip xfrm policy show: selectors, directions, actions, templates, if_id, flags; the dump order is newest first', () => {
    const p = parseXfrmPolicies(PLAIN, 'xfrm-policy.txt');
    expect(p.map((x) => [x.dir, x.block, x.tmpls.length, x.order])).toEqual([
      [XFRM_POLICY_OUT, false, 1, 5], [XFRM_POLICY_FWD, false, 0, 4], [XFRM_POLICY_FWD, true, 0, 3], [XFRM_POLICY_IN, false, 1, 2], [XFRM_POLICY_OUT, false, 1, 1],
    ]);
    expect(p[0]).toMatchObject({ proto: 17, sport: 53, sportMask: 0xffff, dportMask: 0, ifId: 5 });
    expect(p[1]).toMatchObject({ proto: 1, sport: 8, dport: 0, sportMask: 0xffff, dportMask: 0xffff, icmp: true });
    expect(p[3]!.tmpls).toEqual([{ proto: 'esp', mode: 'tunnel', optional: true }]);
    expect(p[4]!.tmpls).toEqual([{ proto: 'esp', mode: 'tunnel', optional: false }]);
  });

  it('reads ip -s xfrm policy show: the index is the insertion order; ties of priority go to the policy added first', () => {
    const db = new XfrmPolicies(parseXfrmPolicies(STATS, 'xfrm-policy.txt'));
    expect(db.count).toEqual([2, 3, 0]);
    // index 17 (block) was added before index 25 (allow): it decides
    expect(db.lookupOut(flow('tcp 10.3.0.1:1 > 192.0.2.9:80'), false).verdict).toBe('eperm');
    // the GRE key's halves are the selector's ports: key 65538 = 1 << 16 | 2
    const gre = parseXfrmPolicies(STATS, 'f')[2]!;
    expect([gre.proto, gre.sport, gre.dport]).toEqual([47, 1, 2]);
  });

  it('a sub policy is looked up before the main ones, with its mark; an allowing sub policy brings the main one after it', () => {
    const db = new XfrmPolicies(parseXfrmPolicies(STATS, 'xfrm-policy.txt'));
    // mark 0x10 selects the sub policy (allow) and the main one blocks: rejected
    expect(db.check(flow('udp 10.2.0.1:5 > 10.9.9.9:53', 'eth0', 0x110), XFRM_POLICY_IN, false)).toMatch(/blocks/);
    // another mark: only the main policy matches, and it blocks too
    expect(db.check(flow('udp 10.2.0.1:5 > 10.9.9.9:53', 'eth0', 0x11), XFRM_POLICY_IN, false)).toMatch(/blocks/);
    // outside the selectors: no policy, the default accepts
    expect(db.check(flow('udp 10.3.0.1:5 > 10.9.9.9:53'), XFRM_POLICY_IN, false)).toBeUndefined();
    // disable_policy on the input device (IPSKB_NOPOLICY): no check
    expect(db.check(flow('udp 10.2.0.1:5 > 10.9.9.9:53'), XFRM_POLICY_IN, true)).toBeUndefined();
  });

  it('a template the packet did not come through rejects it unless optional (level use); out: required templates have no state', () => {
    const db = new XfrmPolicies(parseXfrmPolicies(PLAIN, 'xfrm-policy.txt'));
    expect(db.check(flow('tcp 198.51.100.7:1 > 192.0.2.7:22'), XFRM_POLICY_IN, false)).toBeUndefined();
    expect(db.check(flow('tcp 192.0.2.7:1 > 198.51.100.7:22'), XFRM_POLICY_FWD, false)).toMatch(/blocks/);
    expect(db.lookupOut(flow('tcp 192.0.2.7:1 > 198.51.100.7:22'), false).verdict).toBe('nostate');
    // ICMP echo (type 8) is selected by the fwd policy without templates: it passes; type 0 is not selected
    expect(db.check(flow('icmp 10.0.0.1 > 10.0.0.2 type 8 code 0'), XFRM_POLICY_FWD, false)).toBeUndefined();
    expect(db.lookupType(flow('icmp 10.0.0.1 > 10.0.0.2 type 8 code 0'), XFRM_POLICY_FWD, false)?.icmp).toBe(true);
    expect(db.lookupType(flow('icmp 10.0.0.1 > 10.0.0.2 type 0 code 0'), XFRM_POLICY_FWD, false)).toBeUndefined();
    // if_id 5: only packets of an xfrm interface with that id, none here
    expect(db.lookupOut(flow('udp 10.0.0.1:53 > 10.0.0.2:9'), false).verdict).toBe('pass');
  });

  it('the default policies: block without a policy, except on loopback for out', () => {
    const db = new XfrmPolicies([]);
    parseXfrmDefaults('Default policies:\n in:  block\n fwd: accept\n out: block\n', 'xfrm-default.txt', db);
    expect(db.defaultBlock).toEqual([true, true, false]); // in, out, fwd (XFRM_POLICY_*)
    expect(db.check(flow('udp 10.0.0.1:5 > 10.0.0.2:9'), XFRM_POLICY_IN, false)).toMatch(/default in policy blocks/);
    expect(db.check(flow('udp 10.0.0.1:5 > 10.0.0.2:9'), XFRM_POLICY_FWD, false)).toBeUndefined();
    expect(db.lookupOut(flow('udp 10.0.0.1:5 > 10.0.0.2:9'), false).verdict).toBe('eperm');
    expect(db.lookupOut(flow('udp 10.0.0.1:5 > 10.0.0.2:9', 'lo'), true).verdict).toBe('pass');
  });

  it('refuses what it cannot read with the file and line', () => {
    const bad = (text: string): NfvmError => { try { parseXfrmPolicies(text, 'xfrm-policy.txt'); } catch (e) { return e as NfvmError; } throw new Error('no error'); };
    expect(bad('src 10.0.0.0/8 dst 0.0.0.0/0\n\tdir sideways priority 0 ptype main\n')).toMatchObject({ file: 'xfrm-policy.txt', pos: { line: 2 } });
    expect(bad('src 10.0.0.0/33 dst 0.0.0.0/0\n').message).toMatch(/prefix length/);
    expect(bad('src 10.0.0.0/8 dst 0.0.0.0/0\n\tdir out priority 0 ptype main\n\tsecurity context system_u:object_r:x:s0\n').message).toMatch(/security context/);
    expect(bad('\tdir out\n').message).toMatch(/before the first policy/);
  });
});

/**
 * An ICMP error's output route is icmp_route_lookup(): the error's own flow
 * first, then, when a policy refuses it (-EPERM), the reverse of the packet
 * it quotes (xfrm_decode_session_reverse), whose policy decides. The node is
 * test/path/fixtures/node (eth0 10.0.0.1/24, no sockets).
 */
describe.each(['vm', 'reference'] as const)('an ICMP error meets the policies through icmp_route_lookup (%s engine)', (engine: EngineKind) => {
  it('a port unreachable whose own flow is blocked is dropped by the reverse flow\'s template', () => {
    const FIX = join(import.meta.dirname, '../path/fixtures/node');
    const files = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));
    files.set('xfrm-policy.txt', `src 10.0.0.1/32 dst 10.0.0.2/32 proto icmp type 3 
	dir out action block priority 0 ptype main 
src 10.0.0.1/32 dst 10.0.0.2/32 proto udp 
	dir out priority 0 ptype main 
	tmpl src 0.0.0.0 dst 0.0.0.0
		proto esp reqid 0 mode transport
`);
    files.set('xfrm-state.txt', '');
    const m = buildNodeModel(buildNode('', files), { engine });
    m.setTrace(true);
    const { pkt, iif } = specInput(m, parseSpec('udp 10.0.0.2:5000 > 10.0.0.1:9 iif eth0'));
    const u = m.receive(pkt, iif);
    expect(u.fate.kind).toBe('delivered');
    expect(u.answers.map((a) => [a.kind, a.fate.kind])).toEqual([['icmp-port-unreachable', 'dropped']]);
    expect(fateText(u.answers[0]!.fate)).toMatch(/icmp_route_lookup/);
  });
});
