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
import { kernelSkip, netnsDel, nsSh } from '../helpers/kernel.js';
import { CLIENTS, Conversation, MAC, Tcp, icmpError, ftpFlows, mixedFlows, ping, udp, tftpFlows } from '../helpers/flows.js';
import { statefulRules, type StatefulGen } from '../helpers/stateful-gen.js';
import { COUNT_STATES, RAW_FTP, RAW_NOTRACK_ZONES, addNamespaces, mangleMarks, newTally, ruleset, runGenerated, runStatefulCase, teardownRig, udpListener, waitCarrier, type StatefulCase } from '../helpers/stateful-kernel.js';
import { runs, scaled } from '../helpers/runs.js';
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

/** The namespaces made anew, for a case whose capture lost frames to run again in. */
function rebuild(): void {
  if (listener?.pid) listener.kill();
  netnsDel(NS.wire);
  netnsDel(NS.node);
  topology();
}

// ---------------------------------------------------------------------------
// The cases

type Case = StatefulCase;

/**
 * libvirt's default NAT network as iptables-save shows its LIBVIRT_* chains
 * (virbr0 and 192.168.122.0/24 here eth1 and 10.1.0.0/24), with a port
 * forward to a guest's SSH inserted ahead of them as a host's hook adds it.
 */
const LIBVIRT_RULES = ruleset({
  mangle: `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:LIBVIRT_PRT - [0:0]
-A POSTROUTING -j LIBVIRT_PRT
-A LIBVIRT_PRT -o eth1 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill
COMMIT`,
  nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:LIBVIRT_PRT - [0:0]
-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.1.0.2:22
-A POSTROUTING -j LIBVIRT_PRT
-A LIBVIRT_PRT -s 10.1.0.0/24 -d 224.0.0.0/24 -j RETURN
-A LIBVIRT_PRT -s 10.1.0.0/24 -d 255.255.255.255/32 -j RETURN
-A LIBVIRT_PRT -s 10.1.0.0/24 ! -d 10.1.0.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535
-A LIBVIRT_PRT -s 10.1.0.0/24 ! -d 10.1.0.0/24 -p udp -j MASQUERADE --to-ports 1024-65535
-A LIBVIRT_PRT -s 10.1.0.0/24 ! -d 10.1.0.0/24 -j MASQUERADE
COMMIT`,
  filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWX - [0:0]
:LIBVIRT_INP - [0:0]
:LIBVIRT_OUT - [0:0]
-A INPUT -j LIBVIRT_INP
-A FORWARD -d 10.1.0.2/32 -o eth1 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW,DNAT -j ACCEPT
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A OUTPUT -j LIBVIRT_OUT
-A LIBVIRT_FWI -d 10.1.0.0/24 -o eth1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o eth1 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWO -s 10.1.0.0/24 -i eth1 -j ACCEPT
-A LIBVIRT_FWO -i eth1 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWX -i eth1 -o eth1 -j ACCEPT
-A LIBVIRT_INP -i eth1 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i eth1 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i eth1 -p udp -m udp --dport 67 -j ACCEPT
-A LIBVIRT_INP -i eth1 -p tcp -m tcp --dport 67 -j ACCEPT
-A LIBVIRT_OUT -o eth1 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o eth1 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o eth1 -p udp -m udp --dport 68 -j ACCEPT
-A LIBVIRT_OUT -o eth1 -p tcp -m tcp --dport 68 -j ACCEPT
COMMIT`,
});

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
  {
    // kube-proxy's iptables mode as it writes a node (pkg/proxy/iptables/proxier.go), the pod network on eth1
    // (10.1.0.0/24), plain MASQUERADE so that masqueraded flows are answered; the random endpoint choice
    // replaced by statistic's nth mode, which the kernel counts deterministically
    name: 'a kube-proxy node: ClusterIP, external IP, NodePort, externalTrafficPolicy Local, load balancer source ranges, session affinity, hairpin, Services without endpoints',
    frames: true,
    rules: ruleset({
      nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SEP-DNSUDP2DNSUDP2DN - [0:0]
:KUBE-SEP-DNSTCP2DNSTCP2DN - [0:0]
:KUBE-SEP-AFF1AFF1AFF1AFF1 - [0:0]
:KUBE-SEP-AFF2AFF2AFF2AFF2 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SVC-ERIFXISQEP7F7OF4 - [0:0]
:KUBE-SVC-AFFINITYAFFINITY - [0:0]
:KUBE-SVL-4SW47YFZTEDKD3PK - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-4SW47YFZTEDKD3PK -s 10.1.0.0/24 -m comment --comment "pod traffic for ns4/local:https external destinations" -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade LOCAL traffic for ns4/local:https external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "route LOCAL traffic for ns4/local:https external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVL-4SW47YFZTEDKD3PK
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade traffic for ns2/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/lb:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/shop:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-FW-NUKIZ6OKUXPJNT4C -s 203.0.113.0/25 -m comment --comment "ns5/lb:http loadbalancer IP" -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/lb:http will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns2/web:http" -m tcp --dport 30001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns3/shop:http" -m tcp --dport 30080 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns4/local:https" -m tcp --dport 30443 -j KUBE-EXT-4SW47YFZTEDKD3PK
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns5/lb:http" -m tcp --dport 30500 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -s 10.1.0.5/32 -m comment --comment "ns3/shop:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -p tcp -m comment --comment "ns3/shop:http" -m tcp -j DNAT --to-destination 10.1.0.5:80
-A KUBE-SEP-I77PXRDZVX7PMWMN -s 10.1.0.100/32 -m comment --comment "ns5/lb:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -p tcp -m comment --comment "ns5/lb:http" -m tcp -j DNAT --to-destination 10.1.0.100:80
-A KUBE-SEP-OYPFS5VJICHGATKP -s 10.1.0.9/32 -m comment --comment "ns4/local:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -p tcp -m comment --comment "ns4/local:https" -m tcp -j DNAT --to-destination 10.1.0.9:443
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -s 10.1.0.2/32 -m comment --comment "ns2/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -p tcp -m comment --comment "ns2/web:http" -m tcp -j DNAT --to-destination 10.1.0.2:8080
-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.1.0.200/32 -m comment --comment "ns4/local:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -p tcp -m comment --comment "ns4/local:https" -m tcp -j DNAT --to-destination 10.1.0.200:443
-A KUBE-SEP-UKSFD7AGPMPPLUHC -s 10.1.0.4/32 -m comment --comment "ns3/shop:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -p tcp -m comment --comment "ns3/shop:http" -m tcp -j DNAT --to-destination 10.1.0.4:80
-A KUBE-SEP-DNSUDP2DNSUDP2DN -s 10.1.0.3/32 -m comment --comment "kube-system/kube-dns:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-DNSUDP2DNSUDP2DN -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.1.0.3:53
-A KUBE-SEP-DNSTCP2DNSTCP2DN -s 10.1.0.3/32 -m comment --comment "kube-system/kube-dns:dns-tcp" -j KUBE-MARK-MASQ
-A KUBE-SEP-DNSTCP2DNSTCP2DN -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp" -m tcp -j DNAT --to-destination 10.1.0.3:53
-A KUBE-SEP-AFF1AFF1AFF1AFF1 -s 10.1.0.101/32 -m comment --comment "ns7/sticky:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-AFF1AFF1AFF1AFF1 -p tcp -m comment --comment "ns7/sticky:http" -m recent --set --name KUBE-SEP-AFF1AFF1AFF1AFF1 --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.1.0.101:80
-A KUBE-SEP-AFF2AFF2AFF2AFF2 -s 10.1.0.102/32 -m comment --comment "ns7/sticky:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-AFF2AFF2AFF2AFF2 -p tcp -m comment --comment "ns7/sticky:http" -m recent --set --name KUBE-SEP-AFF2AFF2AFF2AFF2 --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.1.0.102:80
-A KUBE-SERVICES -d 172.30.0.42/32 -p tcp -m comment --comment "ns2/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -d 192.168.50.1/32 -p tcp -m comment --comment "ns2/web:http external IP" -m tcp --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -d 172.30.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SERVICES -d 172.30.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4
-A KUBE-SERVICES -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/shop:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -d 172.30.0.44/32 -p tcp -m comment --comment "ns4/local:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -d 172.30.0.45/32 -p tcp -m comment --comment "ns5/lb:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -d 5.6.7.8/32 -p tcp -m comment --comment "ns5/lb:http loadbalancer IP" -m tcp --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -d 172.30.0.47/32 -p tcp -m comment --comment "ns7/sticky:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AFFINITYAFFINITY
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-4SW47YFZTEDKD3PK ! -s 10.1.0.0/24 -d 172.30.0.44/32 -p tcp -m comment --comment "ns4/local:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/local:https -> 10.1.0.200:443" -m statistic --mode nth --every 2 --packet 0 -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/local:https -> 10.1.0.9:443" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT ! -s 10.1.0.0/24 -d 172.30.0.42/32 -p tcp -m comment --comment "ns2/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/web:http -> 10.1.0.2:8080" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C ! -s 10.1.0.0/24 -d 172.30.0.45/32 -p tcp -m comment --comment "ns5/lb:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/lb:http -> 10.1.0.100:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-X27LE4BHSL4DOUIK ! -s 10.1.0.0/24 -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/shop:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/shop:http -> 10.1.0.4:80" -m statistic --mode nth --every 2 --packet 0 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/shop:http -> 10.1.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SVC-TCOU7JCQXEZGVUNU ! -s 10.1.0.0/24 -d 172.30.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.1.0.3:53" -j KUBE-SEP-DNSUDP2DNSUDP2DN
-A KUBE-SVC-ERIFXISQEP7F7OF4 ! -s 10.1.0.0/24 -d 172.30.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp -> 10.1.0.3:53" -j KUBE-SEP-DNSTCP2DNSTCP2DN
-A KUBE-SVC-AFFINITYAFFINITY ! -s 10.1.0.0/24 -d 172.30.0.47/32 -p tcp -m comment --comment "ns7/sticky:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-AFFINITYAFFINITY -m comment --comment "ns7/sticky:http -> 10.1.0.101:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-AFF1AFF1AFF1AFF1 --mask 255.255.255.255 --rsource -j KUBE-SEP-AFF1AFF1AFF1AFF1
-A KUBE-SVC-AFFINITYAFFINITY -m comment --comment "ns7/sticky:http -> 10.1.0.102:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-AFF2AFF2AFF2AFF2 --mask 255.255.255.255 --rsource -j KUBE-SEP-AFF2AFF2AFF2AFF2
-A KUBE-SVC-AFFINITYAFFINITY -m comment --comment "ns7/sticky:http -> 10.1.0.101:80" -m statistic --mode nth --every 2 --packet 0 -j KUBE-SEP-AFF1AFF1AFF1AFF1
-A KUBE-SVC-AFFINITYAFFINITY -m comment --comment "ns7/sticky:http -> 10.1.0.102:80" -j KUBE-SEP-AFF2AFF2AFF2AFF2
-A KUBE-SVL-4SW47YFZTEDKD3PK -m comment --comment "ns4/local:https -> 10.1.0.9:443" -j KUBE-SEP-OYPFS5VJICHGATKP
COMMIT`,
      filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -s 10.1.0.0/24 -m comment --comment "pod egress (the network plugin's)" -j ACCEPT
-A FORWARD -d 10.1.0.0/24 -m comment --comment "pod ingress (the network plugin's)" -j ACCEPT
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ns6/empty:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30600 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns4/local:https health check node port" -m tcp --dport 32000 -j ACCEPT
-A KUBE-PROXY-FIREWALL -d 5.6.7.8/32 -p tcp -m comment --comment "ns5/lb:http traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp --dport 80 -j DROP
-A KUBE-SERVICES -d 172.30.0.46/32 -p tcp -m comment --comment "ns6/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT`,
    }),
    flows: (c) => {
      // ClusterIP from outside the pod network (masqueraded), and the external IP on the node
      new Tcp(c, 'c', '10.0.0.2', 44100, '172.30.0.42', 80).handshake().data().sdata(600).ack().fin().sack().sfin().ack();
      new Tcp(c, 'c', '10.0.0.3', 44101, '192.168.50.1', 80).handshake().data(30).srst();
      udp(c, 'c', '10.0.0.4', 44102, '172.30.0.10', 53, 2);
      new Tcp(c, 'c', '10.0.0.4', 44103, '172.30.0.10', 53).handshake().data(40).sdata(200).ack().fin().sack().sfin().ack();
      // pods to Services: not masqueraded, DNATed back onto eth1; a pod to a Service it backs (hairpin, masqueraded)
      udp(c, 's', '10.1.0.2', 44104, '172.30.0.10', 53, 1);
      new Tcp(c, 's', '10.1.0.4', 44105, '172.30.0.42', 80).handshake().data().sack().fin().sfin().ack();
      new Tcp(c, 's', '10.1.0.2', 44106, '172.30.0.42', 80).handshake().data(10).sack().rst();
      // NodePorts on both node addresses, endpoints taken in turn (statistic nth)
      for (let i = 0; i < 4; i++) new Tcp(c, 'c', CLIENTS[i]!, 44110 + i, i & 1 ? '192.168.50.1' : '10.0.0.1', 30080).handshake().data(20 + i).sack();
      new Tcp(c, 'c', '198.51.100.7', 44115, '10.0.0.1', 30001).handshake().data().sack().fin().sfin().ack();
      // externalTrafficPolicy Local: from outside only the local endpoint, not masqueraded; from a pod the whole Service
      new Tcp(c, 'c', '10.0.0.130', 44120, '10.0.0.1', 30443).handshake().data().sack();
      new Tcp(c, 'c', '203.0.113.7', 44121, '10.0.0.1', 30443).handshake().data().sack();
      new Tcp(c, 's', '10.1.0.5', 44122, '10.1.0.1', 30443).handshake().data().sack();
      new Tcp(c, 's', '10.1.0.5', 44123, '172.30.0.44', 443).handshake().data().sack();
      new Tcp(c, 's', '10.1.0.5', 44124, '172.30.0.44', 443).handshake();
      // the load balancer: a source inside its ranges, one outside (KUBE-PROXY-FIREWALL), its NodePort
      new Tcp(c, 'c', '203.0.113.66', 44130, '5.6.7.8', 80).handshake().data().sack();
      new Tcp(c, 'c', '203.0.113.200', 44131, '5.6.7.8', 80).syn();
      new Tcp(c, 'c', '10.0.0.9', 44132, '10.0.0.1', 30500).handshake();
      // session affinity: a client keeps its endpoint, the next client takes the next one
      for (let i = 0; i < 3; i++) new Tcp(c, 'c', '10.0.0.2', 44140 + i, '172.30.0.47', 80).handshake().data(10).sack().fin().sfin().ack();
      for (let i = 0; i < 2; i++) new Tcp(c, 'c', '10.0.0.3', 44145 + i, '172.30.0.47', 80).handshake().data(10).sack();
      // Services without endpoints (REJECT from FORWARD and from INPUT), the health check port, a port nothing listens on
      new Tcp(c, 'c', '10.0.0.4', 44150, '172.30.0.46', 80).syn();
      new Tcp(c, 'c', '10.0.0.9', 44151, '10.0.0.1', 30600).syn();
      new Tcp(c, 'c', '10.0.0.130', 44152, '10.0.0.1', 32000).syn();
      new Tcp(c, 'c', '10.0.0.131', 44153, '10.0.0.1', 31999).syn();
      // a stray segment of no connection, and pod egress
      new Tcp(c, 'c', '10.0.0.2', 44160, '172.30.0.42', 80).handshake().wild().data(5).sack();
      new Tcp(c, 's', '10.1.0.9', 44161, '198.51.100.7', 443).handshake().data().sdata(100).ack();
      mixedFlows(c, ['172.30.0.42', '172.30.0.43', '172.30.0.46', '5.6.7.8'], 44200);
    },
  },
  {
    // libvirt's default NAT network (LIBVIRT_RULES)
    name: 'a libvirt host: guests masqueraded, multicast and broadcast exempt, new inbound connections rejected, a port forward, guest to guest',
    frames: true,
    rules: LIBVIRT_RULES,
    flows: (c) => {
      // guests going out: TCP, UDP and ICMP masqueraded (unprivileged source ports kept)
      new Tcp(c, 's', '10.1.0.2', 44400, '198.51.100.7', 443).handshake().data().sdata(700).ack().fin().sack().sfin().ack();
      udp(c, 's', '10.1.0.4', 44401, '10.0.0.2', 53, 2);
      ping(c, 's', '10.1.0.5', '203.0.113.66', 1200);
      icmpError(c, udp(c, 's', '10.1.0.3', 44402, '10.0.0.4', 33434, 0), 3, 3);
      // multicast and limited broadcast from a guest (exempt from masquerade), guest to guest through the node
      udp(c, 's', '10.1.0.2', 5353, '224.0.0.251', 5353, 0);
      udp(c, 's', '10.1.0.2', 68, '255.255.255.255', 67, 0);
      new Tcp(c, 's', '10.1.0.3', 44403, '10.1.0.4', 8080).handshake().data().sack();
      // the host's DNS and DHCP for guests, another port of the host
      udp(c, 's', '10.1.0.5', 44404, '10.1.0.1', 53, 0);
      udp(c, 's', '10.1.0.5', 68, '10.1.0.1', 67, 0);
      new Tcp(c, 's', '10.1.0.5', 44405, '10.1.0.1', 22).syn();
      // from outside: a new connection to a guest (rejected), the port forward, answers to the guests' connections
      new Tcp(c, 'c', '10.0.0.2', 44406, '10.1.0.2', 22).syn();
      udp(c, 'c', '10.0.0.3', 44407, '10.1.0.3', 53, 0);
      new Tcp(c, 'c', '10.0.0.9', 44408, '10.0.0.1', 2222).handshake().data().sdata(300).ack().fin().sack().sfin().ack();
      new Tcp(c, 'c', '198.51.100.7', 44409, '192.168.50.1', 2222).syn();
      ping(c, 'c', '10.0.0.130', '10.1.0.4', 1201);
    },
  },
  {
    // the same host, guests' privileged source ports: MASQUERADE --to-ports 1024-65535 draws a port at random
    // (the frames the node sends then differ from the kernel's; the conntrack lines are compared by port class)
    name: 'a libvirt host: guests\' privileged source ports masqueraded into 1024-65535',
    rules: LIBVIRT_RULES,
    flows: (c) => {
      new Tcp(c, 's', '10.1.0.3', 800, '203.0.113.7', 80).handshake().data().sack();
      udp(c, 's', '10.1.0.4', 123, '10.0.0.3', 123, 1);
      new Tcp(c, 's', '10.1.0.2', 1023, '198.51.100.7', 22).syn();
      new Tcp(c, 's', '10.1.0.2', 1024, '198.51.100.7', 22).handshake();
    },
  },
  {
    // ufw's ruleset on a host (ufw 0.36's before/after/user chains as iptables-save prints them) with
    // `ufw limit 22/tcp`, `ufw allow 80,443/tcp` and `ufw route allow to 10.1.0.2 port 80`
    name: 'a ufw host: SSH rate limited by recent (the sixth new connection in 30 s rejected), allowed ports, default deny in and routed, broadcast and INVALID handling',
    frames: true,
    rules: ruleset({
      filter: `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-after-forward - [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-forward - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-after-logging-output - [0:0]
:ufw-after-output - [0:0]
:ufw-before-forward - [0:0]
:ufw-before-input - [0:0]
:ufw-before-logging-forward - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-before-logging-output - [0:0]
:ufw-before-output - [0:0]
:ufw-logging-allow - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-reject-forward - [0:0]
:ufw-reject-input - [0:0]
:ufw-reject-output - [0:0]
:ufw-skip-to-policy-forward - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-skip-to-policy-output - [0:0]
:ufw-track-forward - [0:0]
:ufw-track-input - [0:0]
:ufw-track-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-input - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
:ufw-user-logging-forward - [0:0]
:ufw-user-logging-input - [0:0]
:ufw-user-logging-output - [0:0]
:ufw-user-output - [0:0]
-A INPUT -j ufw-before-logging-input
-A INPUT -j ufw-before-input
-A INPUT -j ufw-after-input
-A INPUT -j ufw-after-logging-input
-A INPUT -j ufw-reject-input
-A INPUT -j ufw-track-input
-A FORWARD -j ufw-before-logging-forward
-A FORWARD -j ufw-before-forward
-A FORWARD -j ufw-after-forward
-A FORWARD -j ufw-after-logging-forward
-A FORWARD -j ufw-reject-forward
-A FORWARD -j ufw-track-forward
-A OUTPUT -j ufw-before-logging-output
-A OUTPUT -j ufw-before-output
-A OUTPUT -j ufw-after-output
-A OUTPUT -j ufw-after-logging-output
-A OUTPUT -j ufw-reject-output
-A OUTPUT -j ufw-track-output
-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-after-logging-forward -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 11 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 12 -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-forward -j ufw-user-forward
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
-A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT
-A ufw-before-input -j ufw-user-input
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-output -j ufw-user-output
-A ufw-logging-allow -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "
-A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-forward -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-skip-to-policy-output -j ACCEPT
-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-forward -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource
-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j ufw-user-limit
-A ufw-user-input -p tcp -m tcp --dport 22 -j ufw-user-limit-accept
-A ufw-user-input -p tcp -m multiport --dports 80,443 -j ACCEPT
-A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
-A ufw-user-limit-accept -j ACCEPT
COMMIT`,
    }),
    flows: (c) => {
      // SSH: one client opens eight connections (nothing listens: the node resets each it accepts), another one
      for (let i = 0; i < 8; i++) new Tcp(c, 'c', '10.0.0.2', 44300 + i, '10.0.0.1', 22).syn();
      new Tcp(c, 'c', '10.0.0.3', 44310, '192.168.50.1', 22).syn();
      // allowed and denied ports, NetBIOS skipped to the policy, echo, a broadcast, DHCP's answer
      new Tcp(c, 'c', '10.0.0.3', 44311, '10.0.0.1', 80).syn();
      new Tcp(c, 'c', '10.0.0.4', 44312, '10.0.0.1', 443).syn();
      new Tcp(c, 'c', '10.0.0.4', 44313, '10.0.0.1', 25).syn();
      udp(c, 'c', '10.0.0.4', 44314, '10.0.0.1', 137, 0);
      udp(c, 'c', '10.0.0.9', 44315, '10.0.0.1', 53, 0);
      udp(c, 'c', '10.0.0.9', 44316, '10.0.0.255', 138, 0);
      udp(c, 'c', '10.0.0.9', 67, '10.0.0.1', 68, 0);
      ping(c, 'c', '10.0.0.130', '10.0.0.1', 700, false);
      // routed: the allowed server port, a denied one, echo through, a server going out, an out-of-window segment
      new Tcp(c, 'c', '10.0.0.2', 44320, '10.1.0.2', 80).handshake().data().sdata(400).ack().fin().sack().sfin().ack();
      new Tcp(c, 'c', '10.0.0.2', 44321, '10.1.0.3', 80).syn();
      ping(c, 'c', '10.0.0.3', '10.1.0.4', 701);
      new Tcp(c, 's', '10.1.0.2', 44322, '198.51.100.7', 443).syn();
      new Tcp(c, 'c', '10.0.0.131', 44323, '10.1.0.2', 80).handshake().wild().data(5).sack();
      icmpError(c, udp(c, 'c', '10.0.0.4', 44324, '10.1.0.2', 80, 0), 3, 3);
    },
  },
];

// ---------------------------------------------------------------------------
// Running a case

const tally = newTally();

async function runCase(k: number, cs: Case): Promise<string[]> {
  return (await runStatefulCase('ip', NS, tmp, k, cs, tally, rebuild)).diffs;
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
    }, scaled(120_000));
  }

  it(`${GENERATED} generated rulesets and conversations`, async () => {
    const failed = await runGenerated(fc.sample(statefulRules, { numRuns: GENERATED, seed: SEED }), SEED, generatedFlows, runCase);
    expect(failed.slice(0, 2).join('\n\n')).toBe('');
  }, scaled(900_000));
});

/** The conversation of a generated case: its flows over the destinations its rules name. */
function generatedFlows(c: Conversation, g: StatefulGen, i: number): void {
  mixedFlows(c, g.destinations, 45000 + 200 * i);
  for (const r of REMOTE) ping(c, 'c', r, g.destinations[0]!, 800 + i);
  ftpFlows(c, CLIENTS[i % CLIENTS.length]!, g.destinations[0]!, 46000 + 200 * i);
  tftpFlows(c, CLIENTS[(i + 1) % CLIENTS.length]!, g.destinations[0]!, 46100 + 200 * i, 51000 + i);
}
