/**
 * The protocols a node's kernel has handlers for (hooks/snapshot/protocols.ts)
 * and what the stack does with the others (hooks/answer/stack.ts
 * otherProtocol): protocols.txt read and derived from a kernel configuration
 * and /proc/modules, raw sockets from ss -w, ICMP protocol unreachable,
 * ICMPv6 parameter problem with its pointer, UDP-Lite's port unreachable;
 * and the ICMP redirect of a packet forwarded back out of its device.
 * The kernel's own answers are compared in test/kernel/answers-kernel.test.ts
 * and answers6-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { formatProtocols, parseProtocols, protocolsFromKernel } from '../../hooks/snapshot/protocols.js';
import { parseSs, rawSocketFor } from '../../hooks/snapshot/ss.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { encodeSpec, inetChecksum, parseSpec, pseudoHeaderSum } from '../../hooks/input/spec.js';
import { statefulNodeFiles } from '../helpers/flows.js';
import { NfvmError } from '../../core/errors.js';
import { InetPeers, ipRtRedirectAllow } from '../../hooks/answer/ratelimit.js';
import { Packet, decodePacket, resetMeta, LINKTYPE_RAW } from '../../vm/packet.js';

const RULES = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe('protocols.txt', () => {
  it('is derived from the kernel configuration and the loaded modules', () => {
    const config = 'CONFIG_IPV6=y\nCONFIG_IP_MULTICAST=y\nCONFIG_NET_IPGRE_DEMUX=m\nCONFIG_INET_TUNNEL=m\nCONFIG_MPLS=y\nCONFIG_IP_SCTP=m\nCONFIG_INET6_ESP=y\n# CONFIG_INET_AH is not set\n';
    const none = protocolsFromKernel(config, '')!;
    expect(none.v4).toEqual([1, 2, 6, 17, 136]);
    expect(none.v6).toEqual([6, 17, 43, 44, 50, 58, 59, 60, 136]);
    const loaded = protocolsFromKernel(config, 'gre 16384 1 ip_gre, Live 0x0\ntunnel4 16384 1 ipip, Live 0x0\nsctp 434176 2 - Live 0x0\n')!;
    expect(loaded.v4).toEqual([1, 2, 4, 6, 17, 41, 47, 132, 136, 137]);
    expect(loaded.v6).toEqual([6, 17, 43, 44, 50, 58, 59, 60, 132, 136]);
    // a kernel without IPv6 has no inet6_protos at all
    expect(protocolsFromKernel('CONFIG_IP_MULTICAST=y\n', undefined)!.v6).toEqual([]);
    // without the configuration: the base protocols and the loaded modules
    expect(protocolsFromKernel(undefined, 'gre 16384 0 - Live 0x0\n')!.v4).toEqual([1, 2, 6, 17, 47, 136]);
    expect(protocolsFromKernel(undefined, undefined)).toBeUndefined();
  });

  it('reads back what it writes, and names the line and column of an error', () => {
    const text = formatProtocols({ v4: [1, 2, 6, 17, 136], v6: [6, 17, 58], from: 'the kernel configuration' });
    const p = parseProtocols(text, 'protocols.txt');
    expect([...p.v4.keys()].filter((i) => p.v4[i])).toEqual([1, 2, 6, 17, 136]);
    expect([...p.v6.keys()].filter((i) => p.v6[i])).toEqual([6, 17, 58]);
    expect(() => parseProtocols('ipv4 1 6\nipx 17\n', 'p.txt')).toThrow(new NfvmError('syntax', 'expected "ipv4" or "ipv6" and protocol numbers, not "ipx"', 'p.txt', { line: 2, col: 1 }, 'ipx'));
    expect(() => parseProtocols('ipv6 6 256', 'p.txt')).toThrowError(/p\.txt:1:8: expected a protocol number 0-255, not "256"/);
  });
});

describe('raw sockets (ss -w)', () => {
  const ss = parseSs([
    'raw UNCONN 0      0      127.0.0.1:112 0.0.0.0:*',
    'raw UNCONN 0      0        0.0.0.0:253 0.0.0.0:*',
    'raw UNCONN 0      0              *:253       *:*',
    'raw UNCONN 0      0   0.0.0.0%eth1:89 0.0.0.0:*',
    'udp UNCONN 0      0        0.0.0.0:53 0.0.0.0:*',
  ].join('\n'), 'ss.txt');

  it('are read with their protocol, bound address and device', () => {
    expect(ss.raw.map((r) => [r.family, r.protocol, r.dev, r.text])).toEqual([
      [4, 112, '', 'raw 127.0.0.1:112'], [4, 253, '', 'raw 0.0.0.0:253'], [6, 253, '', 'raw *:253'], [4, 89, 'eth1', 'raw 0.0.0.0%eth1:89'],
    ]);
    expect(ss.sockets.length).toBe(1);
    expect(() => parseSs('raw LISTEN 0 0 0.0.0.0:253 0.0.0.0:*', 'ss.txt')).toThrowError(/ss\.txt:1:5: unexpected state "LISTEN" for raw/);
    expect(() => parseSs('raw UNCONN 0 0 0.0.0.0:300 0.0.0.0:*', 'ss.txt')).toThrowError(/ss\.txt:1:16: a raw socket's protocol is 0-255, not 300/);
  });

  it('take a protocol as raw_v4_match does', () => {
    const local = [0x0a000001];
    expect(rawSocketFor(ss, 4, 112, [0x0a000002], local, 'eth0')).toBeUndefined(); // bound to 127.0.0.1
    expect(rawSocketFor(ss, 4, 112, [0x0a000002], [0x7f000001], 'lo')?.text).toBe('raw 127.0.0.1:112');
    expect(rawSocketFor(ss, 4, 253, [0x0a000002], local, 'eth0')?.text).toBe('raw 0.0.0.0:253');
    expect(rawSocketFor(ss, 4, 89, [0x0a000002], local, 'eth0')).toBeUndefined(); // bound to eth1
    expect(rawSocketFor(ss, 4, 89, [0x0a000002], local, 'eth1')?.text).toBe('raw 0.0.0.0%eth1:89');
  });
});

describe('a protocol without a handler', () => {
  const model = (extra: Record<string, string>) => {
    const files = statefulNodeFiles(RULES);
    for (const [k, v] of Object.entries(extra)) files.set(k, v);
    return buildNodeModel(buildNode('', files), { engine: 'vm' });
  };
  const answersTo = (m: ReturnType<typeof model>, spec: string) => {
    m.setTrace(true);
    const r = m.receive(packetOf(spec), 'eth0');
    return { kinds: r.answers.map((a) => a.kind), steps: r.steps.map((s) => ('text' in s ? s.text : '')).join('\n') };
  };

  it('gets ICMP protocol unreachable unless a raw socket or a handler takes it', () => {
    const m = model({ 'protocols.txt': 'ipv4 1 2 6 17 136\nipv6 6 17 58\n', 'ss.txt': 'raw UNCONN 0 0 0.0.0.0:254 0.0.0.0:*\n' });
    expect(answersTo(m, 'ip proto 253 10.0.0.7 > 10.0.0.1 len 8').kinds).toEqual(['icmp-proto-unreachable']);
    expect(answersTo(m, 'ip proto 254 10.0.0.7 > 10.0.0.1 len 8').kinds).toEqual([]);
    expect(answersTo(m, 'ip proto 2 10.0.0.7 > 10.0.0.1 len 8').kinds).toEqual([]);
    expect(answersTo(m, 'ip proto 253 10.0.0.7 > 10.0.0.255 len 8').kinds).toEqual([]);
  });

  it('is taken as handled, with a note, when the snapshot has no protocols.txt', () => {
    const r = answersTo(model({}), 'ip proto 253 10.0.0.7 > 10.0.0.1 len 8');
    expect(r.kinds).toEqual([]);
    expect(r.steps).toMatch(/protocol 253: the snapshot has no protocols\.txt/);
  });

  it('UDP-Lite without a socket gets port unreachable when its checksum over the coverage is right', () => {
    const m = model({ 'protocols.txt': 'ipv4 1 2 6 17 136\n' });
    expect(answersTo(m, 'udplite 10.0.0.7:5 > 10.0.0.1:7000 len 20').kinds).toEqual(['icmp-port-unreachable']);
    expect(answersTo(m, 'udplite 10.0.0.8:5 > 10.0.0.1:7000 cscov 12 len 20').kinds).toEqual(['icmp-port-unreachable']);
    expect(answersTo(m, 'udplite 10.0.0.9:5 > 10.0.0.1:7000 cscov 4 len 20').kinds).toEqual([]);
    // without its handler UDP-Lite is one more protocol without one
    const n = model({ 'protocols.txt': 'ipv4 1 2 6 17\n' });
    expect(answersTo(n, 'udplite 10.0.0.7:5 > 10.0.0.1:7000 len 20').kinds).toEqual(['icmp-proto-unreachable']);
  });
});

describe('udplite packet specs', () => {
  it('carry the coverage in the length field and a checksum over it', () => {
    for (const [spec, cov] of [['udplite 10.0.0.1:5 > 10.0.0.2:7 len 20', 28], ['udplite 10.0.0.1:5 > 10.0.0.2:7 cscov 12 len 20', 12]] as const) {
      const d = encodeSpec(parseSpec(spec)).data;
      expect((d[24]! << 8) | d[25]!).toBe(cov === 28 ? 0 : cov);
      expect(inetChecksum(d, 20, 20 + cov, pseudoHeaderSum(d.subarray(12, 16), d.subarray(16, 20), 136, 28))).toBe(0);
    }
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 cscov 8')).toThrowError(/"cscov" needs udplite/);
  });
});

function packetOf(spec: string): Packet {
  const p = new Packet();
  resetMeta(p);
  p.setFrame(encodeSpec(parseSpec(spec)).data);
  decodePacket(p, LINKTYPE_RAW);
  return p;
}

describe('ICMP redirects (ip_rt_send_redirect)', () => {
  it('back off on the sender\'s peer: at once, then after redirect_load << n jiffies, at most 9 until a silence', () => {
    const peers = new InetPeers();
    const p = peers.get(0x0a000007, 100_000);
    const sent: number[] = [];
    // one forwarded packet every jiffy for 3,000 jiffies (HZ 250: 12 s)
    for (let t = 100_000; t < 103_000; t++) if (ipRtRedirectAllow(p, t)) sent.push(t - 100_000);
    // HZ / 50 = 5 jiffies: gaps of 10, 20, 40, ... (strictly after rate_last + (5 << n)), 9 in all
    expect(sent).toEqual([0, 11, 32, 73, 154, 315, 636, 1277, 2558]);
    expect(p.nRedirects).toBe(9);
    // 20.48 s (5 << 10 jiffies) after the last one seen, the algorithm starts over, and the peer's ICMP tokens with it
    p.rateTokens = 1000;
    expect(ipRtRedirectAllow(p, 102_999 + 5121)).toBe(true);
    expect([p.nRedirects, p.rateTokens]).toEqual([1, 0]);
  });

  it('a packet forwarded back out of the device it came in on gets a host redirect naming the next hop', () => {
    const files = statefulNodeFiles(RULES);
    const m = buildNodeModel(buildNode('', files), { engine: 'vm' });
    m.setTrace(true);
    const r = m.receive(packetOf('udp 10.0.0.7:5 > 10.0.0.77:53 len 10'), 'eth0');
    expect(r.fate.kind).toBe('forwarded');
    expect(r.answers.map((a) => a.kind)).toEqual(['icmp-host-redirect']);
    const b = r.answers[0]!.packet;
    // type 5 code 1, the gateway field the destination itself (on-link), quoting the packet after its TTL decrement
    expect([b[20], b[21], [...b.subarray(24, 28)].join('.'), b[28 + 8]]).toEqual([5, 1, '10.0.0.77', 63]);
    // send_redirects off on the device: none
    files.set('sysctl.txt', `${files.get('sysctl.txt')}net.ipv4.conf.all.send_redirects = 0\nnet.ipv4.conf.eth0.send_redirects = 0\n`);
    const n = buildNodeModel(buildNode('', files), { engine: 'vm' });
    expect(n.receive(packetOf('udp 10.0.0.7:5 > 10.0.0.77:53 len 10'), 'eth0').answers.length).toBe(0);
  });

  it('the redirect about a DNATed connection (a pod to a Service whose endpoint is on the same link) is dropped by the NAT core, which says so', () => {
    // nf_nat_icmp_reply_translation(): a redirect about a connection not fully bound or NATed returns 0, nf_nat_ipv4_fn drops it
    const nat = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.96.0.2/32 -p udp -j DNAT --to-destination 10.0.0.77\nCOMMIT\n';
    const m = buildNodeModel(buildNode('', statefulNodeFiles(RULES + nat)), { engine: 'vm' });
    m.setTrace(true);
    const r = m.receive(packetOf('udp 10.0.0.7:5 > 10.96.0.2:53 len 10'), 'eth0');
    expect(r.fate.kind).toBe('forwarded');
    expect(r.answers.map((a) => a.kind)).toEqual(['icmp-host-redirect']);
    const f = r.answers[0]!.fate;
    expect(f.kind === 'dropped' && f.reason).toBe('nat');
    expect(f.kind === 'dropped' && f.detail).toBe('the NAT core dropped it at OUTPUT: an ICMP redirect about a connection NATed or not yet bound both ways, which nf_nat drops lest the hosts talk past its translation');
  });
});
