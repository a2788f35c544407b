/**
 * The bridge of the node model from the kernel source (Linux 6.18), for what
 * the running kernel cannot show here or shows only through counters:
 *
 *  - the forwarding database (net/bridge/br_fdb.c): br_fdb_update() learns a
 *    frame's source on its port and moves it; learned entries vanish
 *    ageing_time after their last update (br_fdb_cleanup(): deleted once
 *    `updated + hold_time <= now`); static and local entries never age and
 *    are not moved; an unknown unicast destination is flooded (br_flood);
 *  - VLAN filtering (net/bridge/br_vlan.c): br_allowed_ingress() gives an
 *    untagged or priority-tagged frame the port's PVID, drops it without one,
 *    drops a tagged frame of a VLAN the port is not in; br_allowed_egress()
 *    sends only to member ports; a VLAN the egress port has as untagged
 *    leaves without its tag (br_handle_vlan);
 *  - broute (net/bridge/netfilter/ebtable_broute.c ebt_broute(), br_input.c
 *    nf_hook_bridge_pre()): only on a forwarding port; DROP means "route":
 *    the frame is not bridged but goes up the port's own stack
 *    (RX_HANDLER_PASS), the rest of the bridge PRE_ROUTING hooks skipped; a
 *    frame to the bridge's MAC that is not the port's becomes PACKET_OTHERHOST
 *    there (legacy ebt_broute only: nft_meta_bridge's `meta broute set 1`
 *    leaves pkt_type alone). Under ebtables-nft only a rule's DROP (and a
 *    user chain's DROP policy, a rule there) is `meta broute set 1; accept`;
 *    the BROUTING chain's own DROP policy is nf_tables' and drops: seen on
 *    this kernel with that chain made by nft (ebtables-nft 1.8.9 refuses
 *    `-t broute`, and `meta broute set` is refused with EOPNOTSUPP: no
 *    nft_meta_bridge here, so the routing DROP rule is from the source).
 */
import { describe, expect, it } from 'vitest';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, ebtablesWithCounters, type NodeModel } from '../../hooks/node.js';
import type { Fate } from '../../hooks/path/fate.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { saveEbtRuleset } from '../../compiler/ebt/save.js';
import { replyTo } from '../../cli/model.js';
import { LINKTYPE_ETHERNET, Packet, decodePacket, resetMeta } from '../../vm/packet.js';

const MAC = { br0: '02:00:00:00:00:fe', eth0: '02:00:00:00:01:00', eth1: '02:00:00:00:01:01', eth2: '02:00:00:00:01:02', a: '02:00:00:00:00:0a', b: '02:00:00:00:00:0b', c: '02:00:00:00:00:0c' };

const port = (ifindex: number, name: string) =>
  `{"ifindex":${ifindex},"ifname":"${name}","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"br0","address":"${MAC[name as 'eth0']}",` +
  `"linkinfo":{"info_kind":"veth","info_slave_kind":"bridge","info_slave_data":{"state":"forwarding","hairpin":false,"learning":true,"flood":true,"mcast_flood":true,"bcast_flood":true}}}`;
const links = (vlanFiltering: number, ageing: number) => `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"address":"00:00:00:00:00:00"},
{"ifindex":2,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"address":"${MAC.br0}",
 "linkinfo":{"info_kind":"bridge","info_data":{"vlan_filtering":${vlanFiltering},"stp_state":0,"ageing_time":${ageing},"nf_call_iptables":0}}},
${port(3, 'eth0')},
${port(4, 'eth1')},
${port(5, 'eth2')}]`;
const ADDRS = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"}]},
{"ifindex":2,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"address":"${MAC.br0}","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24,"broadcast":"10.0.0.255","scope":"global","label":"br0"}]}]`;
const FDB = `[{"mac":"${MAC.b}","ifname":"eth1","flags":[],"master":"br0","state":"static"}]`;
/** eth0: PVID 1 untagged, 10 tagged; eth1: PVID 1 untagged, 10 untagged; eth2: 20 only (no PVID); br0: PVID 1. */
const VLANS = `[{"ifname":"eth0","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":10}]},
{"ifname":"eth1","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":10,"flags":["Egress Untagged"]}]},
{"ifname":"eth2","vlans":[{"vlan":20}]},
{"ifname":"br0","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]}]}]`;

function model(o: { vlanFiltering?: number; ageing?: number; ebtables?: string; backend?: 'legacy' | 'nft'; iptables?: string } = {}): NodeModel {
  const files = new Map(Object.entries({
    'ip-link.json': links(o.vlanFiltering ?? 0, o.ageing ?? 30000),
    'ip-addr.json': ADDRS,
    'bridge-fdb.json': FDB,
    'bridge-vlan.json': VLANS,
    'sysctl.txt': `net.ipv4.ip_forward = 0\nnet.bridge.bridge-nf-call-iptables = ${o.iptables ? 1 : 0}\n`,
    ...(o.ebtables ? { 'ebtables-save.txt': o.ebtables } : {}),
    ...(o.iptables ? { 'iptables-save.txt': o.iptables } : {}),
  }));
  return buildNodeModel(buildNode('mem', files), o.backend ? { backend: o.backend } : {});
}

const pkt = new Packet(4096);

/** A UDP frame on `port` at `t` seconds, as `nfvm replay` feeds it. */
function send(m: NodeModel, portName: string, src: string, dst: string, t: number, extra = ''): Fate {
  resetMeta(pkt);
  const ipDst = dst === MAC.br0 || dst === MAC.eth0 ? '10.0.0.1' : '10.0.0.99';
  pkt.setFrame(encodeSpec(parseSpec(`udp 10.0.0.2:1000 > ${ipDst}:53 iif ${portName} src-mac ${src} dst-mac ${dst}${extra}`)).data);
  decodePacket(pkt, LINKTYPE_ETHERNET);
  m.captureCt(pkt);
  return m.receive(pkt, portName, { now: Math.round(t * 1e9) }).fate;
}

/** The ports a bridged frame left by (sorted), or its fate's kind and reason. */
function outPorts(f: Fate): string {
  if (f.kind === 'bridged') return f.ports.filter((p) => p.fate === undefined).map((p) => p.port).sort().join(',') + (f.local ? ` +local ${f.local.kind}` : '');
  return f.kind === 'dropped' ? `dropped: ${f.detail}` : f.kind;
}

describe('the forwarding database', () => {
  it('learns a source on its port: unknown unicast is flooded, the learned address then goes to its port only', () => {
    const m = model();
    expect(outPorts(send(m, 'eth1', MAC.c, MAC.a, 0))).toBe('eth0,eth2');
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.c, 1))).toBe('eth1');
    expect(outPorts(send(m, 'eth2', MAC.c, MAC.a, 2))).toBe('eth0');
    // c moved from eth1 to eth2
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.c, 3))).toBe('eth2');
    expect(m.bridge!.fdbText()).toContain(`${MAC.c} dev eth2 master br0`);
  });

  it('ages a learned entry out ageing_time after its last update, on the capture\'s clock', () => {
    const m = model({ ageing: 1000 }); // 10 s
    send(m, 'eth0', MAC.a, MAC.b, 0);
    expect(outPorts(send(m, 'eth1', MAC.b, MAC.a, 9.999))).toBe('eth0');
    // br_fdb_cleanup deletes it once updated + hold_time <= now
    expect(outPorts(send(m, 'eth1', MAC.b, MAC.a, 10))).toBe('eth0,eth2');
    // a frame from a refreshes it
    send(m, 'eth0', MAC.a, MAC.b, 20);
    expect(outPorts(send(m, 'eth1', MAC.b, MAC.a, 29))).toBe('eth0');
    expect(outPorts(send(m, 'eth1', MAC.b, MAC.a, 30.5))).toBe('eth0,eth2');
  });

  it('keeps static entries: they never age and a frame from their address on another port does not move them', () => {
    const m = model({ ageing: 100 });
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.b, 100_000))).toBe('eth1');
    expect(outPorts(send(m, 'eth2', MAC.b, MAC.a, 100_001))).toBe('eth0,eth1');
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.b, 100_002))).toBe('eth1');
    expect(m.bridge!.fdbText()).toContain(`${MAC.b} dev eth1 master br0 static`);
  });

  it('sends a frame to the bridge\'s own address up (local entry), and an ageing_time of 0 learns nothing that lasts', () => {
    const m = model({ ageing: 0 });
    const up = send(m, 'eth0', MAC.a, MAC.br0, 0);
    expect(up.kind === 'delivered' ? `${up.dev} ${up.addr}` : up.kind).toBe('br0 10.0.0.1');
    send(m, 'eth0', MAC.a, MAC.b, 1);
    expect(outPorts(send(m, 'eth1', MAC.b, MAC.a, 1))).toBe('eth0,eth2');
  });
});

describe('VLAN filtering', () => {
  it('gives an untagged frame the port\'s PVID and floods it to that VLAN\'s members only', () => {
    const m = model({ vlanFiltering: 1 });
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.c, 0))).toBe('eth1');
    expect(m.bridge!.fdbText()).toContain(`${MAC.a} dev eth0 vlan 1 master br0`);
  });

  it('admits a tagged frame of a VLAN the port is in, keyed by that VLAN in the fdb', () => {
    const m = model({ vlanFiltering: 1 });
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.c, 0, ' vlan 10'))).toBe('eth1');
    expect(m.bridge!.fdbText()).toContain(`${MAC.a} dev eth0 vlan 10 master br0`);
    // eth1 has VLAN 10 as untagged: the frame leaves without its tag (br_handle_vlan)
    expect(m.bridge!.tagPresent('eth1')).toBe(false);
    expect(m.bridge!.tagPresent('eth0')).toBe(true);
    // the static entry is in no VLAN's table (it was added without one): b is unknown in VLAN 10
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.b, 1, ' vlan 10'))).toBe('eth1');
  });

  it('drops a tagged frame of a VLAN the port is not in, and an untagged frame on a port without a PVID', () => {
    const m = model({ vlanFiltering: 1 });
    expect(outPorts(send(m, 'eth0', MAC.a, MAC.c, 0, ' vlan 20'))).toBe('dropped: VLAN 20 not allowed on eth0 (br_allowed_ingress)');
    expect(outPorts(send(m, 'eth2', MAC.a, MAC.c, 0))).toBe('dropped: VLAN untagged not allowed on eth2 (br_allowed_ingress)');
    // VLAN 20 has no other member: a frame in it goes nowhere
    expect(outPorts(send(m, 'eth2', MAC.a, MAC.c, 0, ' vlan 20'))).toBe('');
  });

  it('without vlan_filtering a tag is just part of the frame', () => {
    const m = model({ vlanFiltering: 0 });
    expect(outPorts(send(m, 'eth2', MAC.a, MAC.c, 0, ' vlan 20'))).toBe('eth0,eth1');
  });
});

describe('broute (DROP means route)', () => {
  const BROUTE = (backend: string) => `# Generated by ${backend === 'legacy' ? 'ebtables-save v2.0.11' : 'ebtables-nft-save v1.8.9 (nf_tables)'}\n*broute\n:BROUTING ACCEPT\n-A BROUTING -p IPv4 --ip-proto udp --ip-dport 53 -j DROP\n*nat\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\n-A PREROUTING\n`;

  for (const backend of ['legacy', 'nft'] as const) {
    it(`${backend}: a DROP in BROUTING sends the frame up the port's own stack, not bridged, past the bridge's other PRE_ROUTING hooks`, () => {
      const m = model({ ebtables: BROUTE(backend), backend });
      // to the port's own MAC: routed up eth0 (10.0.0.1 is local to the node)
      const f = send(m, 'eth0', MAC.a, MAC.eth0, 0);
      expect(f.kind).toBe('delivered');
      expect(f.kind === 'delivered' ? f.dev : '').toBe('eth0');
      // another port's destination: routed, not bridged (the port's stack drops a frame not for it)
      const g = send(m, 'eth0', MAC.a, MAC.b, 1);
      expect(g.kind).not.toBe('bridged');
      // a frame the broute rule lets through is bridged
      const h = resendTcp(m);
      expect(outPorts(h)).toBe('eth1');
      // the nat PREROUTING rule (priority -300, after broute's NF_BR_PRI_FIRST) saw only the bridged frame
      const text = saveEbtRuleset(ebtablesWithCounters(m)!, { counters: true, comments: false });
      expect(text).toMatch(/\[2:\d+\] -A BROUTING -p IPv4 --ip-proto udp --ip-dport 53 -j DROP/);
      expect(text).toMatch(/\[1:\d+\] -A PREROUTING -j CONTINUE\n/);
    });
  }

  it('legacy: a frame to the bridge\'s MAC (not the port\'s) is made PACKET_OTHERHOST and the port\'s stack drops it; ebtables-nft leaves it PACKET_HOST', () => {
    const legacy = send(model({ ebtables: BROUTE('legacy'), backend: 'legacy' }), 'eth0', MAC.a, MAC.br0, 0);
    expect(legacy.kind === 'dropped' ? legacy.reason : legacy.kind).toBe('other-host');
    const nft = send(model({ ebtables: BROUTE('nft'), backend: 'nft' }), 'eth0', MAC.a, MAC.br0, 0);
    expect(nft.kind === 'delivered' ? nft.dev : nft.kind).toBe('eth0');
  });

  /** BROUTING with policy DROP: UDP to port 53 jumps to u1 (policy `u1pol`, a DROP rule for 10.0.0.1), TCP is accepted. */
  const POLICY_DROP = (backend: string, u1pol: string) => `# Generated by ${backend === 'legacy' ? 'ebtables-save v2.0.11' : 'ebtables-nft-save v1.8.13 (nf_tables)'}
*broute\n:BROUTING DROP\n:u1 ${u1pol}\n-A BROUTING -p IPv4 --ip-proto tcp -j ACCEPT\n-A BROUTING -p IPv4 --ip-proto udp --ip-dport 53 -j u1\n-A u1 -p IPv4 --ip-dst 10.0.0.1 -j DROP\n`;

  it('nft: the BROUTING chain\'s DROP policy drops the frame (nf_tables chain policy, as this kernel does); a DROP rule and a user chain\'s DROP policy route it', () => {
    const m = model({ ebtables: POLICY_DROP('nft', 'RETURN'), backend: 'nft' });
    // to the port's MAC, 10.0.0.1: the DROP rule in u1 is `meta broute set 1; accept`: routed up eth0
    const routed = send(m, 'eth0', MAC.a, MAC.eth0, 0);
    expect(routed.kind === 'delivered' ? routed.dev : routed.kind).toBe('eth0');
    // 10.0.0.99: u1 returns, the base chain's policy DROP drops it (not routed, not bridged)
    const policy = send(m, 'eth0', MAC.a, MAC.b, 1);
    expect(policy.kind).toBe('dropped');
    expect(policy.kind === 'dropped' ? policy.by?.table : '').toBe('bridge broute');
    // accepted by a rule: bridged
    expect(outPorts(resendTcp(m))).toBe('eth1');
    // u1's own DROP policy is a rule under ebtables-nft (ebt_add_policy_rule): it routes
    const u1drop = send(model({ ebtables: POLICY_DROP('nft', 'DROP'), backend: 'nft' }), 'eth0', MAC.a, MAC.b, 0);
    expect(u1drop.kind).not.toBe('bridged');
    expect(u1drop.kind === 'dropped' ? u1drop.reason : u1drop.kind).not.toBe('policy');
    const text = saveEbtRuleset(ebtablesWithCounters(m)!, { counters: true, comments: false });
    expect(text).toMatch(/\[1:\d+\] -A BROUTING -p IPv4 --ip-proto tcp -j ACCEPT/);
    expect(text).toMatch(/\[2:\d+\] -A BROUTING -p IPv4 --ip-proto udp --ip-dport 53 -j u1/);
  });

  it('legacy: every DROP of the broute table routes, the BROUTING policy\'s too (ebt_broute)', () => {
    const m = model({ ebtables: POLICY_DROP('legacy', 'RETURN'), backend: 'legacy' });
    const policy = send(m, 'eth0', MAC.a, MAC.b, 1);
    expect(policy.kind).not.toBe('bridged');
    expect(policy.kind === 'dropped' ? policy.reason : policy.kind).not.toBe('policy');
    expect(outPorts(resendTcp(m))).toBe('eth1');
  });

  it('does not broute on a port that is not forwarding', () => {
    const files = new Map(Object.entries({
      'ip-link.json': links(0, 30000).replace('"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"br0","address":"02:00:00:00:01:00","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge","info_slave_data":{"state":"forwarding"', '"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"br0","address":"02:00:00:00:01:00","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge","info_slave_data":{"state":"learning"'),
      'ip-addr.json': ADDRS, 'bridge-fdb.json': FDB, 'ebtables-save.txt': BROUTE('legacy'),
    }));
    const m = buildNodeModel(buildNode('mem', files), { backend: 'legacy' });
    const f = send(m, 'eth0', MAC.a, MAC.eth0, 0);
    expect(f.kind === 'dropped' ? f.detail : f.kind).toMatch(/learning/);
  });
});

describe('--packet reply after a bridged frame', () => {
  it('arrives on the port the frame left by, from the address it went to, to its sender', () => {
    const m = model();
    const f = send(m, 'eth0', MAC.a, MAC.b, 0);
    expect(outPorts(f)).toBe('eth1');
    expect(replyTo({ pkt, fate: f }, 1)).toBe(`udp 10.0.0.99:53 > 10.0.0.2:1000 iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}`);
    // flooded (unknown unicast): which port answers is not known
    const g = send(m, 'eth0', MAC.a, MAC.c, 1);
    expect(outPorts(g)).toBe('eth1,eth2');
    expect(() => replyTo({ pkt, fate: g }, 1)).toThrow(/flooded out of eth1, eth2/);
  });
});

describe('br_netfilter: REJECT in iptables FORWARD on a bridged frame', () => {
  it('answers through OUTPUT: icmp_send() takes the bridge\'s fake rtable, the frame is PACKET_HOST in FORWARD', () => {
    const m = model({ iptables: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j REJECT\n-A OUTPUT -p icmp\nCOMMIT\n' });
    const f = send(m, 'eth0', MAC.a, MAC.b, 0);
    expect(f).toMatchObject({ kind: 'bridged', ports: [{ port: 'eth1', fate: { kind: 'rejected', with: 'icmp-port-unreachable' } }] });
    // the ICMP port unreachable to 10.0.0.2 crossed OUTPUT (br_netfilter's br_nf_forward_ip made the frame PACKET_HOST)
    const out = [...m.rulesetWithCounters()!.tables.get('filter')!.chains.get('OUTPUT')!.rules];
    expect(out[0]!.counters!.packets).toBe(1n);
  });
});

/** A TCP frame from a to b on eth0 (not matched by the broute rule). */
function resendTcp(m: NodeModel): Fate {
  resetMeta(pkt);
  pkt.setFrame(encodeSpec(parseSpec(`tcp 10.0.0.2:1000 > 10.0.0.3:80 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`)).data);
  decodePacket(pkt, LINKTYPE_ETHERNET);
  m.captureCt(pkt);
  return m.receive(pkt, 'eth0', { now: 2e9 }).fate;
}

describe('TRACE lines of the bridge tables', () => {
  // ebtables-nft: nft_trace_packet() reports a rule after it ran, so the frame an snat rule rewrote shows on its own line and after
  it.each([['nft', 'vm'], ['nft', 'reference'], ['legacy', 'vm'], ['legacy', 'reference']] as const)('word the frame as each rule left it (backend %s, engine %s)', (backend, engine) => {
    const files = new Map(Object.entries({
      'ip-link.json': links(0, 30000), 'ip-addr.json': ADDRS, 'bridge-fdb.json': FDB, 'bridge-vlan.json': VLANS, 'sysctl.txt': 'net.ipv4.ip_forward = 0\n',
      'ebtables-save.txt': `*nat\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\n-A POSTROUTING -p IPv4 -j mark --mark-set 0x1 --mark-target CONTINUE\n-A POSTROUTING -j snat --to-src ${MAC.c} --snat-target CONTINUE\n-A POSTROUTING -p IPv4\n`,
    }));
    const m = buildNodeModel(buildNode('mem', files), { backend, engine });
    m.setTrace(true);
    resetMeta(pkt);
    pkt.setFrame(encodeSpec(parseSpec(`udp 10.0.0.2:1000 > 10.0.0.99:53 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`)).data);
    decodePacket(pkt, LINKTYPE_ETHERNET);
    m.captureCt(pkt);
    const r = m.receive(pkt, 'eth0', { now: 0 });
    const lines = r.steps.flatMap((s) => (s.kind === 'trace' && s.chain === 'POSTROUTING' ? [`${s.type}:${s.num} ${/MAC source = (\S+)/.exec(s.line)![1]}`] : []));
    expect(lines).toEqual([`rule:1 ${MAC.a}`, `rule:2 ${MAC.c}`, `rule:3 ${MAC.c}`, `policy:4 ${MAC.c}`]);
  });
});
