/**
 * The FTP and TFTP conntrack helpers and expectations (hooks/conntrack/helper_ftp.ts,
 * helper_tftp.ts, expect.ts) on conversations through the stateful node: what an
 * announcement expects, for how long, and what it does not. The kernel
 * comparison is the FTP case of test/kernel/stateful-kernel.test.ts (and of
 * stateful6-kernel for IPv6).
 */
import { describe, expect, it } from 'vitest';
import { Conversation, Tcp, ether, statefulModel, tftpFlows } from '../helpers/flows.js';
import { LINKTYPE_ETHERNET, Packet, decodePacket, resetMeta } from '../../vm/packet.js';
import { ipPacket } from '../helpers/ctpkt.js';

const RULES = (nat = '') => `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
${nat}COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate NEW
-A FORWARD -m conntrack --ctstate RELATED
-A FORWARD -m helper --helper ftp
COMMIT
`;
type Model = ReturnType<typeof statefulModel>;
/** Packets of FORWARD's rules: NEW, RELATED, the helper match. */
const counts = (m: Model) => m.counters('filter')!.get('FORWARD')!.rules.map((r) => r.packets);
const expectations = (m: Model) => m.conntrackTable!.expect.size;

/** A control connection from 10.0.0.2 that has said one line each way (so the next lines are read). */
function control(c: Conversation, port = 42000): Tcp {
  return new Tcp(c, 'c', '10.0.0.2', port, '10.1.0.2', 21).handshake().sline('220 ready\r\n').ack().line('USER a\r\n').sline('331 pw\r\n').ack();
}

/** The first packet of a data connection from the server's port 20 to the client's `port`: its FORWARD counts. */
function activeSyn(c: Conversation, m: Model, port: number): number[] {
  const before = counts(m);
  new Tcp(c, 's', '10.1.0.2', 20, '10.0.0.2', port).syn();
  return counts(m).map((n, i) => n - before[i]!);
}

describe('the FTP helper', () => {
  it('PORT (any case) expects the server at the named port: RELATED, with the master\'s helper; the expectation is used once', () => {
    const m = statefulModel(RULES());
    const c = new Conversation(m);
    control(c).line('port 10,0,0,2,164,17\r\n').sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(1);
    expect(activeSyn(c, m, 42001)).toEqual([0, 1, 1]);
    expect(expectations(m)).toBe(0);
    // the SYN again (a retransmission): the conntrack is there, still RELATED until a reply is seen (IPS_EXPECTED)
    expect(activeSyn(c, m, 42001)).toEqual([0, 1, 1]);
    c.t += 1;
    expect(activeSyn(c, m, 42002)).toEqual([1, 0, 0]);
  });

  it('227 with or without parentheses, and 229, expect the client at the server\'s port', () => {
    const m = statefulModel(RULES());
    const c = new Conversation(m);
    const a = control(c);
    a.line('PASV\r\n').sline('227 Entering Passive Mode 10,1,0,2,117,48\r\n').ack();
    new Tcp(c, 'c', '10.0.0.2', 42100, '10.1.0.2', 30000).syn();
    a.line('EPSV\r\n').sline('229 Entering Extended Passive Mode (!!!30001!)\r\n').ack();
    new Tcp(c, 'c', '10.0.0.2', 42101, '10.1.0.2', 30001).syn();
    expect(counts(m)).toEqual([1, 2, 2]);
  });

  it('expects nothing for a line that does not follow a newline, another address, or an announcement 5 minutes old', () => {
    const m = statefulModel(RULES());
    const c = new Conversation(m);
    // the client's first line follows no newline the helper saw
    const a = new Tcp(c, 'c', '10.0.0.2', 42000, '10.1.0.2', 21).handshake().line('PORT 10,0,0,2,164,20\r\n').sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(0);
    a.line('PORT 10,0,0,9,164,21\r\n').sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(0);
    a.line('PORT 10,0,0,2,164,22\r\n').sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(1);
    c.t += 301;
    expect(activeSyn(c, m, 42022)).toEqual([1, 0, 0]);
  });

  it('drops a segment that is only the start of a command (find_pattern\'s partial match)', () => {
    const m = statefulModel(RULES());
    const c = new Conversation(m);
    const a = control(c);
    a.line('EP');
    // the filter table let it through; the helper drops it at POST_ROUTING (nf_confirm)
    expect(a.last!.fate.kind).toBe('dropped');
    expect(JSON.stringify(a.last!.fate)).toContain("the FTP helper dropped it: partial matching of `EPRT' (nf_conntrack_ftp)");
    a.line('EPRT |1|10.0.0.2|42030|\r\n');
    expect(a.last!.fate.kind).toBe('forwarded');
  });

  it('a MASQUERADEd control connection: the PORT command names the masquerading address, the data connection is NATed back to the client', () => {
    const m = statefulModel(RULES('-A POSTROUTING -o eth1 -j MASQUERADE\n'));
    const c = new Conversation(m);
    const a = control(c);
    a.line('PORT 10,0,0,2,164,17\r\n');
    // the forwarded command names eth1's address ("10,1,0,1" for "10,0,0,2": the same length)
    const out = new TextDecoder().decode(a.last!.out!.ip.subarray(40));
    expect(out).toBe('PORT 10,1,0,1,164,17\r\n');
    a.sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(1);
    // the server connects to 10.1.0.1:42001; the node sends it on to the client
    const before = counts(m);
    const s = new Tcp(c, 's', '10.1.0.2', 20, '10.1.0.1', 42001).syn().last!;
    expect(s.fate.kind).toBe('forwarded');
    const ip = s.out!.ip;
    expect([...ip.subarray(16, 20)].join('.')).toBe('10.0.0.2');
    expect((ip[22]! << 8) | ip[23]!).toBe(42001);
    expect(counts(m).map((n, i) => n - before[i]!)).toEqual([0, 1, 1]);
  });

  it('a resized command moves the sequence numbers of every later segment both ways', () => {
    const m = statefulModel(RULES('-A POSTROUTING -o eth1 -j SNAT --to-source 10.1.0.100\n'));
    const c = new Conversation(m);
    const a = control(c);
    // "10,0,0,2" becomes "10,1,0,100": two bytes more
    a.line('PORT 10,0,0,2,164,17\r\n');
    expect(new TextDecoder().decode(a.last!.out!.ip.subarray(40))).toBe('PORT 10,1,0,100,164,17\r\n');
    const seqOf = (ip: Uint8Array) => ((ip[24]! << 24) | (ip[25]! << 16) | (ip[26]! << 8) | ip[27]!) >>> 0;
    const sent = seqOf(a.last!.out!.ip);
    a.line('NOOP\r\n');
    // the next command leaves two bytes further on than the client numbered it
    expect(seqOf(a.last!.out!.ip)).toBe((sent + 'PORT 10,0,0,2,164,17\r\n'.length + 2) >>> 0);
    expect(a.last!.fate.kind).toBe('forwarded');
  });
});

describe('the TFTP helper', () => {
  const TFTP = (nat = '') => RULES(nat).replace('-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp', '-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp').replace('-m helper --helper ftp', '-m helper --helper tftp');

  it('a read request expects the transfer from any port of the server to the client\'s port: RELATED, with the master\'s helper', () => {
    const m = statefulModel(TFTP());
    const c = new Conversation(m);
    tftpFlows(c, '10.0.0.2', '10.1.0.2', 43000);
    // the request NEW; the first block RELATED; every packet of the transfer (2 blocks, 2 ACKs) the master's helper's
    expect(counts(m)).toEqual([1, 1, 4]);
    expect(expectations(m)).toBe(0);
  });

  it('behind SNAT the transfer to the translated port is NATed back to the client (nf_nat_tftp)', () => {
    const m = statefulModel(TFTP('-A POSTROUTING -o eth1 -j SNAT --to-source 10.1.0.100\n'));
    const c = new Conversation(m);
    const before = c.frames.length;
    tftpFlows(c, '10.0.0.2', '10.1.0.2', 43000);
    // request, 2 blocks and 2 ACKs, all forwarded
    expect(c.frames.length - before).toBe(5);
    expect(counts(m)).toEqual([1, 1, 4]);
  });

  it('a data or acknowledgement packet to port 69 expects nothing', () => {
    const m = statefulModel(TFTP());
    const c = new Conversation(m);
    c.send('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 43000, dport: 69, payload: Uint8Array.from([0, 4, 0, 1]) }));
    expect(expectations(m)).toBe(0);
  });

  it('a traced request says what the helper expects', () => {
    const m = statefulModel(TFTP());
    m.setTrace(true);
    const pkt = new Packet(4096);
    resetMeta(pkt);
    pkt.setFrame(ether('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 43000, dport: 69, payload: Uint8Array.from([0, 1, 0x66, 0, 0x6f, 0x63, 0x74, 0x65, 0x74, 0]) })));
    decodePacket(pkt, LINKTYPE_ETHERNET);
    m.captureCt(pkt);
    const r = m.receive(pkt, 'eth0', { now: 1e9 });
    expect(r.steps.map((x) => ('text' in x ? x.text : ''))).toContain('tftp helper: expects udp src=10.1.0.2 dst=10.0.0.2 sport=0 dport=43000');
  });
});
