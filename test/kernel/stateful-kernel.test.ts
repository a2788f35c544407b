/**
 * The stateful node against the running kernel (Linux 6.18): conntrack,
 * NAT, marks and fwmark routing with two-sided flows.
 *
 * The node namespace (eth0 10.0.0.1/24 + 192.168.50.1/32, eth1 10.1.0.1/24,
 * routes to 203.0.113.0/24 and 198.51.100.0/24 via 10.0.0.2 on eth0, the
 * default via 10.1.0.2 on eth1) sits between one "wire" namespace holding
 * the peers of both veths. For each case a ruleset is loaded with
 * iptables-legacy-restore (and policy routing set up), the node's snapshot
 * taken, and a conversation generated with the snapshot's model as the
 * network (test/helpers/flows.ts: clients on eth0, servers on eth1, each
 * answering what the node delivered to it; TCP handshakes, data, FIN and
 * RST closes, UDP both ways, ICMP echo and errors quoting forwarded
 * packets, repeated 5-tuples). The conversation is written as a pcapng with
 * an interface per side (eth0, eth1) and injected with one tcpreplay (a
 * tcpprep cache splitting it by source MAC) at the capture's pace; `nfvm
 * replay --json` runs the same file on the snapshot, with both engines.
 * Compared: every counter of every chain (OUTPUT and POSTROUTING too: the
 * node stays silent, kernel-oracle.md "Two-sided flows": ICMP echo ignored,
 * no redirects, neighbours permanent, UDP redirected to a bound port) and
 * `conntrack -L -o extended` line by line (timeouts within the seconds the
 * kernel's clock ran on; a source port the kernel's NAT drew at random
 * compared by its class).
 *
 * Root with iproute2, iptables-legacy, conntrack, tcpreplay and tcpprep;
 * skips with the reason otherwise, fails under CI. NFVM_STATEFUL_CASES
 * scales the generated cases, FC_SEED replays them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { kernelSkip, nsSh } from '../helpers/kernel.js';
import { CLIENTS, Conversation, MAC, Tcp, icmpError, ftpFlows, mixedFlows, ping, udp, tftpFlows } from '../helpers/flows.js';
import { statefulRules, type StatefulGen } from '../helpers/stateful-gen.js';
import { COUNT_STATES, RAW_FTP, RAW_NOTRACK_ZONES, addNamespaces, mangleMarks, newTally, ruleset, runGenerated, runStatefulCase, teardownRig, udpListener, waitCarrier, type StatefulCase } from '../helpers/stateful-kernel.js';
import { runs } from '../helpers/runs.js';
import { ipPacket } from '../helpers/ctpkt.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'conntrack', 'tcpreplay', 'tcpprep', 'tcpdump'];
const SKIP = kernelSkip('the stateful node against the kernel', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { wire: `nfvm-sw-${id}`, node: `nfvm-sn-${id}` };
const REMOTE = ['203.0.113.7', '203.0.113.66', '198.51.100.7'];
const SERVERS = ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.9', '10.1.0.200', ...Array.from({ length: 21 }, (_, i) => `10.1.0.${100 + i}`)];
/** The UDP port redirected traffic reaches on the node (a socket is bound there, so nothing answers). */
const LOCAL_UDP = 5353;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-stateful-kern-'));
let listener: ChildProcess | undefined;

function topology(): void {
  addNamespaces(NS, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1');
  nsSh(NS.wire, `ip link add c0 address ${MAC.c0} type veth peer name eth0 netns ${NS.node}
ip link add s0 address ${MAC.s0} type veth peer name eth1 netns ${NS.node}
sysctl -qw net.ipv6.conf.c0.disable_ipv6=1 net.ipv6.conf.s0.disable_ipv6=1
ip link set c0 up; ip link set s0 up
iptables-legacy -P OUTPUT DROP`);
  const neigh = [...CLIENTS.map((a) => `ip neigh replace ${a} lladdr ${MAC.c0} dev eth0 nud permanent`),
    ...SERVERS.map((a) => `ip neigh replace ${a} lladdr ${MAC.s0} dev eth1 nud permanent`)].join('\n');
  nsSh(NS.node, `ip link set eth0 address ${MAC.eth0}
ip link set eth1 address ${MAC.eth1}
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl -qw net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 net.ipv4.conf.eth1.send_redirects=0
sysctl -qw net.ipv4.icmp_echo_ignore_all=1
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.eth1.disable_ipv6=1
ip addr add 10.0.0.1/24 dev eth0
ip addr add 192.168.50.1/32 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip link set eth0 up; ip link set eth1 up
ip route add default via 10.1.0.2
ip route add 203.0.113.0/24 via 10.0.0.2 dev eth0
ip route add 198.51.100.0/24 via 10.0.0.2 dev eth0
${neigh}`);
  waitCarrier(NS);
  listener = udpListener(NS, LOCAL_UDP, 'udp4');
}

// ---------------------------------------------------------------------------
// The cases

type Case = StatefulCase;

const CASES: Case[] = [
  {
    name: 'the TFTP helper: a read request expects the server\'s transfer from its own port, RELATED, NATed as its master behind SNAT and DNAT',
    frames: true,
    rules: ruleset({
      raw: `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp
COMMIT`,
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.1.0.200/32 -p udp -m udp --dport 69 -j DNAT --to-destination 10.1.0.3
-A POSTROUTING -s 10.0.0.128/25 -o eth1 -j SNAT --to-source 10.1.0.100
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A FORWARD -m helper --helper tftp
-A FORWARD -m conntrack --ctstatus EXPECTED
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p udp -m udp --dport 69 -m conntrack --ctstate NEW -j ACCEPT
COMMIT`,
    }),
    flows: (c) => {
      // plain, through SNAT (the port kept), to a DNATed server
      tftpFlows(c, '10.0.0.2', '10.1.0.2', 43000);
      tftpFlows(c, '10.0.0.130', '10.1.0.2', 43001, 50001);
      tftpFlows(c, '10.0.0.3', '10.1.0.200', 43002, 50002);
      // a transfer from another server than the one asked is not the expected one
      c.send('s', ipPacket('10.1.0.4', '10.0.0.2', { proto: 'udp', sport: 50003, dport: 43000, payload: 8 }));
    },
  },
  {
    name: 'the FTP NAT helper: a SNATed client\'s PORT and EPRT and a DNATed server\'s 227 and 229 rewritten, the data connections NATed as their master, sequence numbers adjusted',
    frames: true,
    rules: ruleset({
      raw: RAW_FTP,
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.1.0.200/32 -p tcp -m tcp --dport 21 -j DNAT --to-destination 10.1.0.3
-A POSTROUTING -s 10.0.0.0/24 -o eth1 -j SNAT --to-source 10.1.0.100
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A FORWARD -m helper --helper ftp
-A FORWARD -m conntrack --ctstatus EXPECTED,SEEN_REPLY
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -p tcp -m conntrack --ctstate NEW
COMMIT`,
    }),
    flows: (c) => {
      // active mode through SNAT: "10,0,0,2" becomes "10,1,0,100", two bytes longer, so every later segment moves
      const a = new Tcp(c, 'c', '10.0.0.2', 43000, '10.1.0.2', 21).handshake().sline('220 ready\r\n').ack();
      a.line('USER anonymous\r\n').sack().sline('331 Password required\r\n').ack();
      a.line('PORT 10,0,0,2,168,12\r\n').sline('200 PORT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.1.0.100', 43020).handshake().data(200).fin().sack().sfin().ack();
      a.line('EPRT |1|10.0.0.2|43021|\r\n').sline('200 EPRT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.1.0.100', 43021).handshake().data(70).sack();
      a.line('NOOP\r\n').sline('200 NOOP ok\r\n').ack().data(30).sdata(40).ack();
      a.fin().sack().sfin().ack();
      // passive mode to a DNATed server: its "10,1,0,3" becomes "10,1,0,200", two bytes longer the other way
      const p = new Tcp(c, 'c', '10.0.0.3', 43100, '10.1.0.200', 21).handshake().sline('220 ready\r\n').ack();
      p.line('PASV\r\n').sline('227 Entering Passive Mode (10,1,0,3,117,48).\r\n').ack();
      new Tcp(c, 'c', '10.0.0.3', 43101, '10.1.0.200', 30000).handshake().sdata(300).ack().fin().sack().sfin().ack();
      p.line('EPSV\r\n').sline('229 Entering Extended Passive Mode (|||30001|)\r\n').ack();
      new Tcp(c, 'c', '10.0.0.3', 43102, '10.1.0.200', 30001).handshake().sdata(100).ack();
      p.line('QUIT\r\n').sline('221 Goodbye\r\n').ack().fin().sack().sfin().ack();
    },
  },
  {
    name: 'the FTP helper: PORT, EPRT, PASV and EPSV make the data connection RELATED (helper match, EXPECTED status, one expectation per control connection)',
    frames: true,
    rules: ruleset({
      raw: RAW_FTP,
      mangle: `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x21/0xff
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A FORWARD -m helper --helper ftp
-A FORWARD -m helper --helper ftp -m conntrack --ctstate RELATED
-A FORWARD -m conntrack --ctstatus EXPECTED
-A FORWARD -m connmark --mark 0x21
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -p tcp -m conntrack --ctstate NEW
COMMIT`,
    }),
    flows: (c) => {
      // active mode: the server connects back to the port the client names (PORT, then EPRT)
      const a = new Tcp(c, 'c', '10.0.0.2', 43000, '10.1.0.2', 21).handshake().sline('220 ready\r\n').ack();
      a.line('USER anonymous\r\n').sack().sline('331 Password required\r\n').ack();
      a.line('PORT 10,0,0,2,168,12\r\n').sline('200 PORT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', 43020).handshake().data(200).fin().sack().sfin().ack();
      // the expectation was used: the same port again is a new connection
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', 43020, 5000).syn();
      a.line('eprt |1|10.0.0.2|43021|\r\n').sline('200 EPRT command successful\r\n').ack();
      // a second announcement replaces the first (max_expected 1): 43022 is expected, 43021 no longer
      a.line('PORT 10,0,0,2,168,14\r\n').sline('200 PORT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', 43021).syn();
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', 43022).handshake().data(50).sack();
      // another address than the client's: nothing is expected (loose is 0)
      a.line('PORT 10,0,0,3,168,15\r\n').sline('200 PORT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.3', 43023).syn();
      // a command split over two segments: the second does not follow a newline and is not read
      a.line('PO').line('RT 10,0,0,2,168,16\r\n').sline('200 PORT command successful\r\n').ack();
      new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', 43024).syn();
      a.fin().sack().sfin().ack();
      // passive mode: the client connects to the port the server names (227, then 229)
      const p = new Tcp(c, 'c', '10.0.0.3', 43100, '10.1.0.3', 21).handshake().sline('220 ready\r\n').ack();
      p.line('PASV\r\n').sline('227 Entering Passive Mode (10,1,0,3,117,48).\r\n').ack();
      new Tcp(c, 'c', '10.0.0.3', 43101, '10.1.0.3', 30000).handshake().sdata(300).ack().fin().sack().sfin().ack();
      p.line('EPSV\r\n').sline('229 Entering Extended Passive Mode (|||30001|)\r\n').ack();
      new Tcp(c, 'c', '10.0.0.3', 43102, '10.1.0.3', 30001).handshake().sdata(100).ack();
      // a data connection from another client is not the expected one
      p.line('PASV\r\n').sline('227 Entering Passive Mode (10,1,0,3,117,50)\r\n').ack();
      new Tcp(c, 'c', '10.0.0.4', 43103, '10.1.0.3', 30002).syn();
      new Tcp(c, 'c', '10.0.0.3', 43104, '10.1.0.3', 30002).handshake().data(10).sack().rst();
      p.srst();
    },
  },
  {
    name: 'marks and connection marks (MARK, CONNMARK set/save/restore with masks and shifts, mark and connmark matches)',
    rules: ruleset({
      mangle: mangleMarks('icmp'),
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A FORWARD -m statistic --mode nth --every 3 --packet 1
COMMIT`,
    }),
    flows: (c) => mixedFlows(c, ['10.1.0.2', '10.1.0.3']),
  },
  {
    name: 'NOTRACK, CT --zone and the conntrack match options (status, direction, protocol, tuples, ports, expiry)',
    rules: ruleset({
      raw: RAW_NOTRACK_ZONES,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A FORWARD -m conntrack --ctstatus ASSURED
-A FORWARD -m conntrack ! --ctstatus ASSURED
-A FORWARD -m conntrack --ctstatus SEEN_REPLY,EXPECTED
-A FORWARD -m conntrack --ctdir REPLY
-A FORWARD -m conntrack --ctproto udp --ctdir ORIGINAL
-A FORWARD -m conntrack --ctorigsrc 10.0.0.0/29 --ctorigdst 10.1.0.2
-A FORWARD -m conntrack --ctreplsrc 10.1.0.3 --ctrepldstport 41000:41020
-A FORWARD -m conntrack --ctorigdstport 80 ! --ctorigsrcport 41000
-A FORWARD -m conntrack --ctexpire 100:500
-A FORWARD -m conntrack ! --ctexpire 0:100000
-A FORWARD -m conntrack --ctstate NEW,INVALID,UNTRACKED --ctdir ORIGINAL
-A FORWARD -m state --state ESTABLISHED -m conntrack --ctreplsrcport 80
COMMIT`,
    }),
    flows: (c) => mixedFlows(c, ['10.1.0.2', '10.1.0.3', '10.1.0.4'], 41000),
  },
  {
    name: 'DNAT, DNAT to ranges, REDIRECT, NETMAP, SNAT to a range, MASQUERADE, hairpin; clashes and repeated flows',
    rules: ruleset({
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
-A PREROUTING -d 10.1.0.200/32 -j SVC
-A PREROUTING -d 10.9.0.0/24 -j NETMAP --to 10.1.0.0/24
-A PREROUTING -d 192.168.50.1/32 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 10.0.0.3:443
-A PREROUTING -d 10.0.0.1/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports ${LOCAL_UDP}
-A SVC -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.0.3:8080
-A SVC -p tcp -m tcp --dport 81 -j DNAT --to-destination 10.1.0.3-10.1.0.5:8000-8010
-A SVC -p udp -j DNAT --to-destination 10.1.0.4
-A POSTROUTING -s 10.0.0.128/25 -o eth1 -j SNAT --to-source 10.1.0.100-10.1.0.120
-A POSTROUTING -s 10.0.0.0/25 -o eth1 -p udp -j SNAT --to-source 10.1.0.110
-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/24 -j MASQUERADE
-A POSTROUTING -s 10.0.0.0/25 -o eth1 -j MASQUERADE
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
${COUNT_STATES}
-A INPUT -p udp -m conntrack --ctstate DNAT -m udp --dport ${LOCAL_UDP}
COMMIT`,
    }),
    flows: (c) => {
      mixedFlows(c, ['10.1.0.200', '10.9.0.5'], 42000);
      new Tcp(c, 'c', '10.0.0.2', 42100, '10.1.0.200', 81).handshake().data().sack();
      new Tcp(c, 'c', '10.0.0.3', 42101, '10.1.0.200', 81).handshake().data().sack();
      new Tcp(c, 'c', '10.0.0.130', 42102, '10.1.0.2', 80).handshake().data().sack();
      new Tcp(c, 'c', '10.0.0.131', 42102, '10.1.0.2', 80).handshake().data().sack();
      // UDP from two clients with the same source port SNATed to one address: the second is remapped
      udp(c, 'c', '10.0.0.2', 5000, '10.1.0.2', 53, 1);
      udp(c, 'c', '10.0.0.4', 5000, '10.1.0.2', 53, 1);
      udp(c, 'c', '10.0.0.2', 5001, '10.0.0.1', 53, 0);
      udp(c, 'c', '203.0.113.7', 5002, '10.0.0.1', 53, 0);
      new Tcp(c, 'c', '10.0.0.2', 42103, '192.168.50.1', 8443).handshake().data().sack().fin().sfin().ack();
      ping(c, 'c', '10.0.0.9', '10.1.0.200', 700);
    },
  },
  {
    name: 'fwmark routing: a mark set in mangle PREROUTING (and restored from the connection) picks the routing table',
    setup: 'ip rule add fwmark 0x1/0xff table 100 priority 100\nip route add default via 10.0.0.9 dev eth0 table 100',
    teardown: 'ip rule del priority 100\nip route flush table 100',
    rules: ruleset({
      mangle: `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --restore-mark
-A PREROUTING -s 10.0.0.3/32 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xff
-A PREROUTING -s 10.0.0.4/32 -p udp -j MARK --set-xmark 0x101/0xffff
-A PREROUTING -j CONNMARK --save-mark
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -o eth0 -m mark --mark 0x1/0xff
-A FORWARD -o eth1 -m mark --mark 0x1/0xff
-A FORWARD -o eth0
-A FORWARD -o eth1
COMMIT`,
    }),
    flows: (c) => mixedFlows(c, ['10.1.0.2', '8.8.8.8', '198.51.100.7'], 43000),
  },
  {
    name: 'a nat table without NAT targets or conntrack users: no conntrack is registered, so its chains see no packet',
    rules: ruleset({
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -s 10.0.0.0/8
-A PREROUTING -p tcp -j RETURN
-A POSTROUTING -o eth1
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -o eth0
-A FORWARD -o eth1
COMMIT`,
    }),
    flows: (c) => mixedFlows(c, ['10.1.0.2', '8.8.8.8'], 44000),
  },
  {
    name: 'a Docker host: DOCKER-USER, DOCKER-ISOLATION, published-port DNAT, MASQUERADE, RELATED,ESTABLISHED accept',
    rules: ruleset({
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 10.1.0.0/24 ! -o eth1 -j MASQUERADE
-A POSTROUTING -s 10.1.0.2/32 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -s 10.1.0.3/32 -d 10.1.0.3/32 -p udp -m udp --dport 53 -j MASQUERADE
-A DOCKER -i eth1 -j RETURN
-A DOCKER ! -i eth1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
-A DOCKER ! -i eth1 -p udp -m udp --dport 5300 -j DNAT --to-destination 10.1.0.3:53
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o eth1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o eth1 -j DOCKER
-A FORWARD -i eth1 ! -o eth1 -j ACCEPT
-A FORWARD -i eth1 -o eth1 -j ACCEPT
-A DOCKER -d 10.1.0.2/32 ! -i eth1 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER -d 10.1.0.3/32 ! -i eth1 -o eth1 -p udp -m udp --dport 53 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i eth1 ! -o eth1 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -d 10.0.0.128/25 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -s 203.0.113.66/32 -j DROP
-A DOCKER-USER -j RETURN
COMMIT`,
    }),
    flows: (c) => {
      // published ports from the LAN and from remote networks (one of them blocked in DOCKER-USER)
      new Tcp(c, 'c', '10.0.0.2', 44000, '10.0.0.1', 8080).handshake().data().sdata(500).ack().fin().sack().sfin().ack();
      new Tcp(c, 'c', '203.0.113.7', 44001, '10.0.0.1', 8080).handshake().data().sack().srst();
      new Tcp(c, 'c', '203.0.113.66', 44002, '10.0.0.1', 8080).syn();
      new Tcp(c, 'c', '198.51.100.7', 44003, '192.168.50.1', 8080).handshake().data(40).sack();
      udp(c, 'c', '10.0.0.3', 44004, '10.0.0.1', 5300, 2);
      // a port that is not published, to a container directly: FORWARD's DROP policy
      new Tcp(c, 'c', '10.0.0.4', 44005, '10.1.0.2', 22).syn();
      // containers going out (masqueraded), and to an isolated network
      new Tcp(c, 's', '10.1.0.2', 44006, '198.51.100.7', 443).handshake().data().sdata(800).ack().fin().sack().sfin().ack();
      udp(c, 's', '10.1.0.3', 44007, '10.0.0.2', 53, 1);
      ping(c, 's', '10.1.0.2', '203.0.113.7', 900);
      new Tcp(c, 's', '10.1.0.2', 44008, '10.0.0.130', 80).syn();
      icmpError(c, udp(c, 's', '10.1.0.3', 44009, '10.0.0.4', 33434, 0), 3, 3);
    },
  },
];

// ---------------------------------------------------------------------------
// Running a case

const tally = newTally();

async function runCase(k: number, cs: Case): Promise<string[]> {
  return (await runStatefulCase('ip', NS, tmp, k, cs, tally)).diffs;
}

const GENERATED = runs(12);
const SEED = Number(process.env.FC_SEED ?? 20261204);

describe.skipIf(SKIP)('the stateful node against the kernel', () => {
  beforeAll(() => topology(), 60_000);
  afterAll(() => {
    teardownRig(NS, listener, tmp);
    console.log(`stateful node vs kernel: ${tally.countersAgree}/${tally.counters} counters agree, ${tally.conntrackAgree}/${tally.conntrack} conntrack lines agree (both engines), ${tally.frames} frames the node sent compared, ${tally.refused} generated rulesets refused by both`);
  });

  for (const [k, cs] of CASES.entries()) {
    it(cs.name, async () => {
      const diffs = await runCase(k, cs);
      expect(diffs.join('\n')).toBe('');
    }, 120_000);
  }

  it(`${GENERATED} generated rulesets and conversations`, async () => {
    const failed = await runGenerated(fc.sample(statefulRules, { numRuns: GENERATED, seed: SEED }), SEED, generatedFlows, runCase);
    expect(failed.slice(0, 2).join('\n\n')).toBe('');
  }, 900_000);
});

/** The conversation of a generated case: its flows over the destinations its rules name. */
function generatedFlows(c: Conversation, g: StatefulGen, i: number): void {
  mixedFlows(c, g.destinations, 45000 + 200 * i);
  for (const r of REMOTE) ping(c, 'c', r, g.destinations[0]!, 800 + i);
  ftpFlows(c, CLIENTS[i % CLIENTS.length]!, g.destinations[0]!, 46000 + 200 * i);
  tftpFlows(c, CLIENTS[(i + 1) % CLIENTS.length]!, g.destinations[0]!, 46100 + 200 * i, 51000 + i);
}
