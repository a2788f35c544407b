/**
 * The node's own answers against the running kernel (Linux 6.18): a node
 * namespace whose stack is NOT silenced (echo replies on, TCP and UDP
 * listeners, REJECT rules, TTL-1 forwarded packets, packets forwarded back
 * out of eth0 (ICMP redirects and their backoff), protocols without a
 * handler and a raw socket, UDP-Lite, unreachable,
 * prohibit and blackhole routes, no default route, an egress MTU smaller
 * than some DF packets), between a sender and a receiver namespace whose
 * own stacks are silenced. Frames are injected on the sender's veth with
 * tcpreplay; `tcpdump -i any` in the node writes a LINUX_SLL2 capture of
 * everything the node received and sent on eth0 and eth1 (its ifindex
 * says which, its packet type which way). That two-sided capture is then
 * replayed as `nfvm replay` replays it (each frame on the interface of its
 * ifindex, mapped through the snapshot's ip-link.json; the outgoing ones
 * paired with what nfvm sent), on a snapshot of the node taken with
 * captureSnapshot (ss.txt included). Every counter of `iptables-legacy-save
 * -c` must agree, OUTPUT and POSTROUTING included, and every frame the
 * node sent must be one nfvm sent, byte for byte but for the fields the
 * kernel fills itself: the IP ID of ICMP messages (the ICMP socket does not
 * set DF, so ip_select_ident() hashes with a boot-time key) and the header
 * checksum that covers it, the receive and transmit times of a timestamp
 * reply (the kernel's clock) and the ICMP checksum over them, and the TCP
 * checksum of REJECT's resets
 * (CHECKSUM_PARTIAL: the capture on the node sees the pseudo-header sum the
 * device would complete). The stack's own resets carry DF and ID 0 and are
 * compared whole, as are forwarded packets (a packet over the egress MTU
 * in its fragments). The SYN-ACK of a listening socket is not modelled, so
 * no SYN goes to a listening port.
 *
 * The per-destination ICMP limit is exercised (one sender address gets
 * more port unreachables than the burst of 6 lets through); the other
 * answers go to addresses of their own so their buckets stay full. Root,
 * iproute2, iptables-legacy, tcpreplay, tcpdump and python3 (the
 * listeners); skips with the reason otherwise (fails under CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, have, IS_ROOT, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, run, skipBecause } from '../helpers/kernel.js';
import { answersAgree, kernelRun, pythonInNs } from '../helpers/answers.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import type { EngineKind } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'tcpreplay', 'tcpdump', 'python3'];
const missing = TOOLS.filter((t) => !have(t));
const WHY_NOT = !IS_ROOT ? 'needs root' : missing.length ? `needs ${missing.join(', ')}` : undefined;
const SKIP = skipBecause('the node\'s answers against the kernel', WHY_NOT);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { s: `nfvm-as-${id}`, n: `nfvm-an-${id}`, r: `nfvm-ar-${id}` };
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02', eth1: '02:00:00:00:01:01', receiver: '02:00:00:00:01:02' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-answers-kern-'));
let listeners: ChildProcess | undefined;

/** Source addresses of the sender's side, one per frame that draws an answer (their ICMP buckets stay full). */
const SRC = (i: number) => `10.0.0.${10 + i}`;
const SOURCES = 100;

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p tcp -m tcp --dport 24 -j REJECT --reject-with tcp-reset
-A INPUT -p udp -m udp --dport 25 -j REJECT --reject-with icmp-host-prohibited
-A INPUT -p udp -m udp --dport 26 -j REJECT --reject-with icmp-admin-prohibited
-A INPUT -p icmp -m icmp --icmp-type 13 -m length --length 40 -j REJECT --reject-with icmp-net-prohibited
-A INPUT -p icmp -m icmp --icmp-type 3 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -f -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p 47 -j REJECT --reject-with icmp-proto-unreachable
-A FORWARD -d 10.1.0.7/32 -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset
-A FORWARD -d 10.1.0.7/32 -p udp -j REJECT --reject-with icmp-net-unreachable
-A FORWARD -d 10.1.0.7/32 -p tcp -m tcp --dport 82 -j REJECT --reject-with icmp-host-unreachable
-A FORWARD -d 10.0.0.77/32 -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset
-A OUTPUT -p icmp -m icmp --icmp-type 0
-A OUTPUT -p icmp -m icmp --icmp-type 3
-A OUTPUT -p icmp -m icmp --icmp-type 3/2
-A OUTPUT -p icmp -m icmp --icmp-type 3/3
-A OUTPUT -p icmp -m icmp --icmp-type 5
-A OUTPUT -p icmp -m icmp --icmp-type 11
-A OUTPUT -p tcp -m tcp --tcp-flags RST RST
-A OUTPUT -d 10.0.0.66/32 -j DROP
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p icmp
-A OUTPUT -p tcp
-A POSTROUTING -o eth0 -p icmp
-A POSTROUTING -o eth0 -p tcp
-A POSTROUTING -o eth1
COMMIT
`;

/**
 * The same with conntrack and the NAT core loaded. An ICMP redirect carries
 * its packet's conntrack (nf_ct_attach in icmp_glue_bits) into nat OUTPUT,
 * where nf_nat_icmp_reply_translation() drops one whose connection has not
 * had both its bindings made (a first packet: ip_forward() sends the
 * redirect before POSTROUTING) or is NATed. The port unreachable for a UDP
 * port with no socket carries none (__udp4_lib_rcv lets go of it first):
 * raw OUTPUT's CT --notrack makes it untracked, while a time exceeded keeps
 * its packet's, RELATED. An echo reply REJECTed in OUTPUT draws no port
 * unreachable: icmp_reply() holds the ICMP socket's lock, and icmp_send()'s
 * spin_trylock of it fails. Errors about NATed packets (a time exceeded
 * about a DNATed first packet, about later packets of a DNATed and of a
 * MASQUERADEd connection; REJECT's net unreachable and reset about DNATed
 * packets) go out as nf_nat_icmp_reply_translation() and nf_nat_packet()
 * rewrite them.
 */
const NAT_RULES = `${RULES.replace('-A OUTPUT -d 10.0.0.66/32 -j DROP\n', '-A OUTPUT -d 10.0.0.66/32 -j DROP\n-A OUTPUT -d 10.0.0.97/32 -p icmp -m icmp --icmp-type 0 -j REJECT\n')}*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p icmp -j CT --notrack
-A OUTPUT -p icmp -m conntrack --ctstate UNTRACKED
-A OUTPUT -p icmp -m conntrack --ctstate RELATED
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 192.0.2.53/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.0.77
-A PREROUTING -d 192.0.2.80/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.1.0.2
-A PREROUTING -d 192.0.2.81/32 -p udp -j DNAT --to-destination 10.1.0.7
-A PREROUTING -d 192.0.2.82/32 -p tcp -j DNAT --to-destination 10.0.0.77
-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 8082 -j REDIRECT --to-ports 2222
-A PREROUTING -d 10.0.0.1/32 -p udp -m udp --dport 8083 -j REDIRECT --to-ports 5353
-A PREROUTING -d 192.0.2.90/32 -j DNAT --to-destination 10.0.0.1
-A POSTROUTING -s 10.0.0.101/32 -o eth1 -j MASQUERADE
COMMIT
`;
/**
 * The frames sent to the node, in order: [spec without the MACs, what it
 * is for]. `S(i)` is a source address of its own.
 */
function frames(): string[] {
  let i = 0;
  const S = () => SRC(i++);
  const f: string[] = [];
  // Transport answers of the stack.
  f.push(`tcp ${S()}:40000 > 10.0.0.1:2222 syn`); // closed port: RST, ACK of seq + 1
  f.push(`tcp ${S()}:40001 > 10.0.0.1:2222 ack seq 1000 ackseq 777777`); // closed port, ACK: RST with seq = ack_seq
  f.push(`tcp ${S()}:40002 > 10.0.0.1:2222 fin,psh seq 5000 len 100`); // closed, data + FIN, no ACK: ack = seq + 101
  f.push(`tcp ${S()}:40003 > 10.0.0.1:2222 rst`); // a RST: no reset
  f.push(`tcp ${S()}:40004 > 10.0.0.1:22 ack seq 9 ackseq 99`); // an ACK to the listening socket: reset from the listener
  f.push(`tcp ${S()}:40005 > 10.0.0.1:22 rst`); // RST to the listener: nothing
  f.push(`tcp ${S()}:40006 > 10.0.0.255:2222 syn`); // broadcast: no reset
  f.push(`udp ${S()}:40007 > 10.0.0.1:53 len 12`); // the listening socket
  f.push(`udp ${S()}:40008 > 10.0.0.1:5353 len 30`); // closed: port unreachable
  f.push(`udp ${S()}:40009 > 10.0.0.255:5353 len 30`); // broadcast, closed: nothing
  f.push(`udp ${S()}:40010 > 10.0.0.1:8080 len 30`); // bound to eth1 only: closed on eth0
  f.push(`tcp ${S()}:40011 > 10.0.0.1:80 ack seq 1 ackseq 2`); // the dual-stack [::]:80 listener (v6only off)
  f.push(`tcp ${S()}:40012 > 10.0.0.1:443 ack seq 1 ackseq 2`); // [::]:443 with IPV6_V6ONLY: closed for IPv4
  f.push(`icmp ${S()} > 10.0.0.1 echo-request id 7 seq 1 len 56`); // echo reply
  f.push(`icmp ${S()} > 10.0.0.1 echo-request id 8 seq 2 len 0 tos 0x12`); // echo reply keeps the TOS
  f.push(`icmp ${S()} > 10.0.0.255 echo-request id 9 seq 3`); // broadcast: ignored
  f.push(`icmp ${S()} > 10.0.0.1 echo-reply id 9 seq 4`); // nothing
  f.push('icmp 10.0.0.66 > 10.0.0.1 echo-request id 10 seq 5'); // the reply is dropped in OUTPUT
  f.push(`icmp ${S()} > 10.0.0.1 timestamp-request id 11 seq 6 len 16`); // timestamp reply (its times are the kernel's clock)
  f.push(`icmp ${S()} > 10.0.0.1 timestamp-request id 12 seq 7 len 3`); // shorter than its originate timestamp: nothing
  f.push(`icmp ${S()} > 10.0.0.255 timestamp-request id 13 seq 8 len 16`); // broadcast: ignored
  // REJECT in INPUT.
  f.push(`tcp ${S()}:40020 > 10.0.0.1:23 syn`);
  f.push(`tcp ${S()}:40021 > 10.0.0.1:24 syn len 20`);
  f.push(`tcp ${S()}:40022 > 10.0.0.1:24 ack seq 7 ackseq 70`);
  f.push(`tcp ${S()}:40023 > 10.0.0.1:24 rst`); // REJECT tcp-reset of a RST: nothing
  f.push(`udp ${S()}:40024 > 10.0.0.1:25 len 10`);
  f.push(`udp ${S()}:40025 > 10.0.0.1:26 len 700`); // quoted up to 576 bytes
  f.push(`icmp ${S()} > 10.0.0.1 type 13 code 0 len 12`); // REJECT icmp-net-prohibited
  f.push(`icmp ${S()} > 10.0.0.1 port-unreachable len 28`); // REJECT of an ICMP error: nothing
  f.push(`ip proto 47 ${S()} > 10.0.0.1 len 8`); // REJECT of GRE (no checksum to verify)
  // Protocols without a handler in this kernel (protocols.txt): protocol unreachable unless a raw socket takes them.
  f.push(`ip proto 253 ${S()} > 10.0.0.1 len 20`); // protocol unreachable
  f.push(`ip proto 132 ${S()} > 10.0.0.1 len 28`); // SCTP is not built in here: protocol unreachable
  f.push(`ip proto 253 ${S()} > 10.0.0.255 len 20`); // broadcast: nothing
  f.push(`ip proto 254 ${S()} > 10.0.0.1 len 20`); // the raw socket of protocol 254 takes it: nothing
  f.push(`ip proto 252 ${S()} > 10.0.0.1 len 20`); // the raw socket of 252 is bound to 10.1.0.1: protocol unreachable
  f.push(`ip proto 252 ${S()} > 10.1.0.1 len 20`); // to its bound address: the raw socket takes it
  f.push(`ip proto 2 ${S()} > 10.0.0.1 len 8`); // IGMP has a handler: nothing sent
  // UDP-Lite (udplite_rcv): no socket can be seen, port unreachable when the checksum over the coverage is right.
  f.push(`udplite ${S()}:40050 > 10.0.0.1:7000 len 30`); // full coverage: port unreachable
  f.push(`udplite ${S()}:40051 > 10.0.0.1:7000 cscov 12 len 30`); // partial coverage: port unreachable
  f.push(`udplite ${S()}:40052 > 10.0.0.1:7000 cscov 4 len 30`); // coverage below the header: dropped
  f.push(`udplite ${S()}:40053 > 10.0.0.1:7000 cscov 60 len 30`); // coverage past the datagram: dropped
  f.push(`udplite ${S()}:40054 > 10.0.0.255:7000 len 30`); // broadcast: nothing
  f.push(`udp ${S()}:40026 > 10.0.0.1:5353 mf ipid 4242 len 16`); // a first fragment: held for reassembly, never REJECTed here
  f.push(`udp ${S()} > 10.0.0.1 frag offset 8 ipid 4343 len 16`); // a non-first fragment: reassembly, not INPUT
  // Forwarding.
  f.push(`tcp ${S()}:40030 > 10.1.0.2:80 syn ttl 1`); // time exceeded
  f.push(`udp ${S()}:40031 > 10.1.0.2:53 ttl 1 len 40`);
  f.push(`icmp ${S()} > 10.1.0.2 echo-request ttl 1`);
  f.push(`icmp ${S()} > 10.1.0.2 time-exceeded ttl 1 len 28`); // about an ICMP error: nothing
  f.push(`udp ${S()}:40042 > 10.1.0.2:53 mf ipid 4545 ttl 1 len 16`); // a first fragment: time exceeded
  f.push(`udp ${S()} > 10.1.0.2 frag offset 8 ipid 4646 ttl 1 len 16`); // not the first: icmp_send answers fragment 0 only
  f.push(`udp ${S()}:40032 > 10.1.0.2:53 df len 1400`); // fragmentation needed (eth1 MTU 1280)
  f.push(`udp ${S()}:40033 > 10.1.0.2:53 len 1400`); // no DF: fragmented, forwarded
  f.push(`tcp ${S()}:40034 > 8.8.8.8:80 syn`); // no route: net unreachable
  f.push(`tcp ${S()}:40035 > 203.0.113.5:80 syn`); // unreachable route: host unreachable
  f.push(`tcp ${S()}:40036 > 198.18.0.5:80 syn`); // prohibit route: packet filtered
  f.push(`tcp ${S()}:40037 > 198.51.100.5:80 syn`); // blackhole: nothing
  f.push(`tcp ${S()}:40038 > 10.1.0.2:80 syn`); // forwarded
  f.push(`tcp ${S()}:40039 > 10.1.0.7:81 syn`); // REJECT in FORWARD: tcp-reset
  f.push(`udp ${S()}:40040 > 10.1.0.7:53 len 20`); // REJECT in FORWARD: net unreachable, quoting TTL 63
  f.push(`tcp ${S()}:40041 > 10.1.0.7:82 ack seq 3 ackseq 4`); // REJECT in FORWARD: host unreachable
  // Back out of eth0 (ip_forward with IPSKB_DOREDIRECT): an ICMP host redirect naming the next hop, whatever FORWARD does.
  f.push(`udp ${S()}:40060 > 10.0.0.77:53 len 10`); // on-link destination: the redirect names it
  f.push(`tcp ${S()}:40061 > 198.19.0.5:80 syn`); // via 10.0.0.2 on eth0: the redirect names the gateway
  f.push(`udp 10.0.0.7:40062 > 10.0.0.77:53 len 10`); // three from one source within 20 ms: one redirect
  f.push(`udp 10.0.0.7:40063 > 10.0.0.77:53 len 10`);
  f.push(`udp 10.0.0.7:40064 > 10.0.0.77:53 len 10`);
  f.push(`udp 10.0.0.7:40065 > 10.0.0.1:5353 len 10`); // the redirect emptied the peer's ICMP tokens: no port unreachable
  f.push(`udp 10.0.0.6:40070 > 10.0.0.1:5353 len 10`); // a port unreachable first: the peer has tokens left
  f.push(`udp 10.0.0.6:40071 > 10.0.0.77:53 len 10`); // a redirect within ip_rt_redirect_silence of it keeps them
  f.push(`udp 10.0.0.6:40072 > 10.0.0.1:5353 len 10`); // so a second port unreachable goes out
  f.push(`udp ${S()}:40066 > 10.0.0.77:53 ttl 1 len 10`); // TTL 1: time exceeded, no redirect
  f.push(`tcp ${S()}:40067 > 10.0.0.77:81 syn`); // FORWARD REJECTs it after the redirect went out
  // The per-destination limit: 10 port unreachables to one address within 20 ms, 6 let through.
  for (let k = 0; k < 10; k++) f.push(`udp 10.0.0.9:${41000 + k} > 10.0.0.1:5353 len 8`);
  // ip_error()'s own limit on the same peer as icmp_send()'s: 6 host unreachables asked for from one sender.
  for (let k = 0; k < 6; k++) f.push(`tcp 10.0.0.8:${42000 + k} > 203.0.113.${k + 1}:80 syn`);
  if (i > 80) throw new Error('more sources than the first case has (the NAT case takes 80 on)');
  return f;
}

/** The frames of the NAT case, from sources frames() leaves alone (80 to 84, 86 to 99: no peer state from the first case). */
function natFrames(): string[] {
  const a = SRC(80);
  const b = SRC(81);
  const f: string[] = [];
  f.push(`udp ${a}:40100 > 10.0.0.77:53 len 10`); // a first packet back out of eth0: the redirect is dropped in nat OUTPUT (NAT not done)
  f.push(`udp ${b}:40101 > 192.0.2.53:53 len 10`); // DNATed to 10.0.0.77, back out of eth0: dropped as well
  // 60 ms of echo requests: the peers' redirect backoff (40 ms for a second redirect) lets the next two through
  for (let k = 0; k < 30; k++) f.push(`icmp ${SRC(82 + (k % 3))} > 10.0.0.1 echo-request id ${100 + k} seq 1`);
  f.push(`udp ${a}:40100 > 10.0.0.77:53 len 10`); // its connection confirmed with both bindings null: the redirect goes out
  f.push(`udp ${b}:40101 > 192.0.2.53:53 len 10`); // a NATed connection: dropped
  f.push(`udp ${SRC(86)}:40102 > 10.0.0.1:5353 len 10`); // no socket: a port unreachable without conntrack, untracked in raw OUTPUT
  f.push(`tcp ${SRC(88)}:40103 > 10.1.0.2:80 syn ttl 1`); // a time exceeded with its packet's conntrack: RELATED
  f.push('icmp 10.0.0.97 > 10.0.0.1 echo-request id 200 seq 1'); // the reply REJECTed in OUTPUT: no port unreachable follows
  // Errors about NATed packets: nf_nat_icmp_reply_translation() gives the quoted packet and the outer source back their addresses before NAT.
  f.push(`udp ${SRC(89)}:40105 > 192.0.2.53:53 len 10 ttl 1`); // DNATed, hop limit reached: a time exceeded about a first packet
  f.push(`udp ${SRC(90)}:40106 > 192.0.2.80:53 len 10`); // DNATed to 10.1.0.2, forwarded out of eth1
  f.push(`udp ${SRC(90)}:40106 > 192.0.2.80:53 len 10 ttl 1`); // the same connection, hop limit reached: a time exceeded
  f.push(`udp ${SRC(91)}:40107 > 10.1.0.2:53 len 10`); // MASQUERADEd out of eth1
  f.push(`udp ${SRC(91)}:40107 > 10.1.0.2:53 len 10 ttl 1`); // the same connection, hop limit reached
  f.push(`udp ${SRC(92)}:40108 > 192.0.2.81:53 len 10`); // DNATed to 10.1.0.7, REJECTed in FORWARD: net unreachable
  f.push(`tcp ${SRC(93)}:40109 > 192.0.2.82:81 syn`); // DNATed to 10.0.0.77, back out of eth0, REJECTed in FORWARD: a reset
  f.push(`tcp ${SRC(94)}:40110 > 10.0.0.1:8082 syn`); // REDIRECTed to the closed port 2222: the stack's reset, looked up by conntrack
  f.push(`udp ${SRC(95)}:40111 > 10.0.0.1:8083 len 10`); // REDIRECTed to the closed port 5353: a port unreachable, untracked in raw OUTPUT
  f.push(`ip proto 252 ${SRC(96)} > 10.0.0.1 len 20`); // no handler for the protocol: a protocol unreachable, with its packet's conntrack (RELATED)
  f.push(`icmp ${SRC(97)} > 192.0.2.90 echo-request id 300 seq 1`); // DNATed to the node: the echo reply leaves from 192.0.2.90
  f.push(`icmp ${SRC(98)} > 192.0.2.90 timestamp-request id 301 seq 1 len 16`); // and the timestamp reply
  f.push(`tcp ${SRC(99)}:40112 > 192.0.2.90:22 ack seq 9 ackseq 99`); // an ACK to the listening socket through DNAT: its reset leaves from 192.0.2.90
  return f;
}

function topology(): void {
  for (const ns of Object.values(NS)) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    nsSh(ns, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  }
  nsSh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}`);
  nsSh(NS.r, `ip link add veth0 address ${MAC.receiver} type veth peer name eth1 netns ${NS.n}`);
  const neigh = Array.from({ length: SOURCES }, (_, i) => `ip neigh replace ${SRC(i)} lladdr ${MAC.sender} dev eth0 nud permanent`).join('\n');
  nsSh(NS.n, `ip link set eth0 address ${MAC.eth0}
ip link set eth1 address ${MAC.eth1}
ip link set eth1 mtu 1280
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl -qw net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.eth1.disable_ipv6=1
ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip link set eth0 up; ip link set eth1 up
ip route add unreachable 203.0.113.0/24
ip route add prohibit 198.18.0.0/15
ip route add blackhole 198.51.100.0/24
ip neigh replace 10.0.0.9 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.8 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.66 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.77 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.7 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.6 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent
ip route add 198.19.0.0/16 via 10.0.0.2 dev eth0
ip neigh replace 10.1.0.2 lladdr ${MAC.receiver} dev eth1 nud permanent
ip neigh replace 10.1.0.7 lladdr ${MAC.receiver} dev eth1 nud permanent
${neigh}`);
  for (const ns of [NS.s, NS.r]) nsSh(ns, 'sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1\nip link set veth0 up\niptables-legacy -P OUTPUT DROP');
  nsSh(NS.s, 'ip addr add 10.0.0.2/24 dev veth0');
  nsSh(NS.r, 'ip addr add 10.1.0.2/24 dev veth0');
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/LOWER_UP/g) ?? []).length >= 3) break;
    spawnSync('sleep', ['0.1']);
  }
}

/** The node's listening sockets: TCP 0.0.0.0:22, a dual-stack [::]:80, a v6only [::]:443, UDP 10.0.0.1:53, UDP 8080 bound to eth1. */
const LISTENERS = `
import socket, time
def tcp(fam, addr, v6only=None):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind(addr); s.listen(16); return s
keep = [tcp(socket.AF_INET, ('0.0.0.0', 22)), tcp(socket.AF_INET6, ('::', 80), 0), tcp(socket.AF_INET6, ('::', 443), 1)]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('10.0.0.1', 53)); keep.append(u)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth1'); b.bind(('0.0.0.0', 8080)); keep.append(b)
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 254); keep.append(r)
r1 = socket.socket(socket.AF_INET, socket.SOCK_RAW, 252); r1.bind(('10.1.0.1', 0)); keep.append(r1)
print('ready', flush=True)
time.sleep(600)
`;

/** The namespaces built anew (any of an earlier run deleted) with the node's listeners. */
async function freshNode(): Promise<void> {
  if (listeners?.pid) listeners.kill('SIGKILL');
  for (const ns of Object.values(NS)) netnsDel(ns);
  topology();
  listeners = await pythonInNs(NS.n, LISTENERS);
}

describe.skipIf(SKIP)('the node\'s answers against the kernel', () => {
  beforeAll(freshNode, 60_000);
  afterAll(() => {
    if (listeners?.pid) listeners.kill('SIGKILL');
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every counter (OUTPUT and POSTROUTING too) and every frame the node sends agree', async () => {
    await agree('answers against the kernel', RULES, frames(), ['ip.check', 'ip.id', 'tcp.check'], 25);
  }, 120_000);

  it('with the NAT core loaded: the redirects it drops and the one it lets through', async () => {
    await agree('answers against the kernel, NAT loaded', NAT_RULES, natFrames(), ['ip.check', 'ip.id', 'tcp.check'], 40);
  }, 120_000);
});

/** `specs` sent 2 ms apart to the node loaded with `rules`: every counter and every frame it sent, kernel and nfvm. */
async function agree(label: string, rules: string, specs: readonly string[], kernelFields: readonly string[], atLeast: number): Promise<void> {
  const pcap = join(tmp, 'in.pcap');
  // 2 ms apart: tcpreplay keeps the spacing, so the rate limits see the same time line.
  writeFileSync(pcap, writePcap(specs.map((s, k) => ({
    data: encodeSpec(parseSpec(`${s} iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.eth0}`)).data,
    tsSec: 1000, tsNsec: k * 2_000_000,
  })), { linktype: LINKTYPE_ETHERNET }));
  const cap = join(tmp, 'node.pcap');
  const snap = await kernelRun(label, { node: NS.n, sender: NS.s }, pcap, cap, specs.length, freshNode, async (attempt) => {
    const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], rules);
    expect(restore.code, restore.stderr).toBe(0);
    const dir = join(tmp, `snap-${label.length}-${attempt}`);
    captureSnapshot(dir, nsSnapshotRunner(NS.n));
    return dir;
  });
  const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
  const kernel = flattenCounters(parseRestore(save.stdout, { counters: true }), true);

  for (const engine of ['vm', 'reference'] as EngineKind[]) {
    const { results } = answersAgree(label, kernel, snap, cap, engine);
    // Only where the kernel fills fields itself: the ICMP socket's IP ID (and the header checksum over it),
    // the checksum REJECT's reset leaves to the device.
    // A timestamp reply's times are the kernel's clock: the capture's millisecond, unless the kernel read its clock
    // a millisecond later (then they and the ICMP checksum over them differ, now and then).
    const clock = (f: string): boolean => f === 'icmp.timestamps' || f === 'icmp.checksum';
    expect([...new Set(results.flatMap((x) => (x.verdict === 'kernel-fields' ? x.fields : [])))].filter((f) => !clock(f)).sort()).toEqual(kernelFields);
    for (const x of results.filter((r) => r.verdict === 'kernel-fields')) {
      const own = x.kind === 'tcp-reset' ? ['tcp.check'] : x.kind === 'icmp-timestamp-reply' ? ['ip.id', 'ip.check', 'icmp.timestamps', 'icmp.checksum'] : ['ip.id', 'ip.check'];
      expect(own, `frame ${x.frame} (${x.kind})`).toEqual(expect.arrayContaining(x.fields));
    }
    // Enough of each kind came out to mean something.
    expect(results.length).toBeGreaterThan(atLeast);
  }
}
