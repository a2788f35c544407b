/**
 * The FTP conntrack helper and expectations (hooks/conntrack/helper_ftp.ts,
 * expect.ts) on conversations through the stateful node: what an
 * announcement expects, for how long, and what it does not. The kernel
 * comparison is the FTP case of test/kernel/stateful-kernel.test.ts (and of
 * stateful6-kernel for IPv6).
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Conversation, Tcp, statefulModel, statefulNodeFiles } from '../helpers/flows.js';
import { outputText } from '../../cli/io.js';
import { cmdReplay } from '../../cli/replay.js';

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
    a.line('EPRT |1|10.0.0.2|42030|\r\n');
    expect(a.last!.fate.kind).toBe('forwarded');
  });

  it('a NATed control connection: nothing is expected and replay says the rewrite is not modelled', () => {
    const rules = RULES('-A POSTROUTING -o eth1 -j MASQUERADE\n');
    const m = statefulModel(rules);
    const c = new Conversation(m);
    control(c).line('PORT 10,0,0,2,164,17\r\n').sline('200 ok\r\n').ack();
    expect(expectations(m)).toBe(0);
    expect(m.conntrackTable!.ftpNatNotModelled).toBe(1);
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-ftp-'));
    try {
      for (const [f, text] of statefulNodeFiles(rules)) writeFileSync(join(dir, f), text);
      writeFileSync(join(dir, 'ftp.pcapng'), c.pcapng());
      const doc = JSON.parse(outputText(cmdReplay([dir, '--pcap', join(dir, 'ftp.pcapng'), '--json']))) as { summary: { notes: string[] } };
      expect(doc.summary.notes.join('\n')).toMatch(/1 FTP data connection announced on NATed control connections: the kernel's nf_nat_ftp would rewrite/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
