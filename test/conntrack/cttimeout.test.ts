/**
 * cttimeout policies (hooks/conntrack/timeout.ts): nfct-timeout.txt as
 * `nfct list timeout` (conntrack-tools 1.4.7, Linux 6.18) printed it for
 * policies made with `nfct add timeout` (the text below is its output), the
 * policies the model runs and those it refuses (an SCTP policy's
 * HEARTBEAT_SENT, which nfct neither sets nor prints, is the namespace's),
 * the jiffies arrays, the errors. What `-j CT --timeout` does with them on
 * the node is compared with the kernel by test/kernel/cttimeout-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { nfvmErrorOf } from '../helpers/errors.js';
import { cttimeoutJiffies, cttimeoutUsable, parseNfctTimeouts } from '../../hooks/conntrack/timeout.js';
import {
  NfConntrackSysctl, SCTP_CONNTRACK_CLOSED, SCTP_CONNTRACK_ESTABLISHED, SCTP_CONNTRACK_HEARTBEAT_SENT, SCTP_CONNTRACK_SHUTDOWN_ACK_SENT,
  TCP_CONNTRACK_CLOSE, TCP_CONNTRACK_ESTABLISHED, TCP_CONNTRACK_RETRANS, TCP_CONNTRACK_SYN_SENT, TCP_CONNTRACK_UNACK,
} from '../../hooks/conntrack/sysctl.js';

const LISTED = `.t1 = {
\t.l3proto = 2,
\t.l4proto = 6,
\t.policy = {
\t\t.SYN_SENT = 120,
\t\t.SYN_RECV = 60,
\t\t.ESTABLISHED = 100,
\t\t.FIN_WAIT = 120,
\t\t.CLOSE_WAIT = 60,
\t\t.LAST_ACK = 30,
\t\t.TIME_WAIT = 120,
\t\t.CLOSE = 5,
\t\t.SYN_SENT2 = 120,
\t\t.RETRANS = 300,
\t\t.UNACKNOWLEDGED = 300,
\t},
};
.u1 = {
\t.l3proto = 2,
\t.l4proto = 17,
\t.policy = {
\t\t.UNREPLIED = 7,
\t\t.REPLIED = 40,
\t},
};
.i6 = {
\t.l3proto = 10,
\t.l4proto = 58,
\t.policy = {
\t\t.TIMEOUT = 9,
\t},
};
.s1 = {
\t.l3proto = 2,
\t.l4proto = 132,
\t.policy = {
\t\t.CLOSED = 10,
\t\t.COOKIE_WAIT = 3,
\t\t.COOKIE_ECHOED = 3,
\t\t.ESTABLISHED = 50,
\t\t.SHUTDOWN_SENT = 3,
\t\t.SHUTDOWN_RECD = 3,
\t\t.SHUTDOWN_ACK_SENT = 3,
\t},
};
.g = {
\t.l3proto = 2,
\t.l4proto = 255,
\t.policy = {
\t\t.TIMEOUT = 4,
\t},
};
`;

describe('nfct-timeout.txt', () => {
  it('reads the policies `nfct list timeout` prints', () => {
    const ps = parseNfctTimeouts(LISTED, 'nfct-timeout.txt');
    expect(ps.map((p) => [p.name, p.l3num, p.l4num, p.seconds.size])).toEqual([['t1', 2, 6, 11], ['u1', 2, 17, 2], ['i6', 10, 58, 1], ['s1', 2, 132, 7], ['g', 2, 255, 1]]);
    expect(ps.map((p) => cttimeoutUsable(p) ?? 'ok')).toEqual([
      'ok', 'ok', 'ok', 'ok', 'ok',
    ]);
    // sctp_timeout_nlattr_to_obj(): the namespace's timeouts first (HEARTBEAT_SENT among them), index 0 is CLOSED's
    const ns = new NfConntrackSysctl().sctpTimeouts.map((j) => j * 2);
    const s = cttimeoutJiffies(ps[3]!, 100, ns);
    expect([s[0], s[SCTP_CONNTRACK_CLOSED], s[SCTP_CONNTRACK_ESTABLISHED], s[SCTP_CONNTRACK_SHUTDOWN_ACK_SENT], s[SCTP_CONNTRACK_HEARTBEAT_SENT]])
      .toEqual([1000, 1000, 5000, 300, ns[SCTP_CONNTRACK_HEARTBEAT_SENT]]);
    const t = cttimeoutJiffies(ps[0]!, 250);
    expect([t[0], t[TCP_CONNTRACK_SYN_SENT], t[TCP_CONNTRACK_ESTABLISHED], t[TCP_CONNTRACK_CLOSE], t[TCP_CONNTRACK_RETRANS], t[TCP_CONNTRACK_UNACK]]).toEqual([30000, 30000, 25000, 1250, 75000, 75000]);
    expect([...cttimeoutJiffies(ps[1]!, 100)]).toEqual([700, 4000]);
    expect([...cttimeoutJiffies(ps[2]!, 250)]).toEqual([2250]);
    expect([...cttimeoutJiffies(ps[4]!, 250)]).toEqual([1000]);
  });

  it('refuses an SCTP policy with a printed state missing', () => {
    const [p] = parseNfctTimeouts('.s = {\n\t.l3proto = 2,\n\t.l4proto = 132,\n\t.policy = {\n\t\t.CLOSED = 1,\n\t},\n};\n', 'f');
    expect(cttimeoutUsable(p!)).toBe('timeout policy s (l3proto 2, l4proto 132): nfct-timeout.txt lacks COOKIE_WAIT, COOKIE_ECHOED, ESTABLISHED, SHUTDOWN_SENT, SHUTDOWN_RECD, SHUTDOWN_ACK_SENT');
  });

  it('refuses a TCP policy with states missing, naming them', () => {
    const [p] = parseNfctTimeouts('.t = {\n\t.l3proto = 2,\n\t.l4proto = 6,\n\t.policy = {\n\t\t.SYN_SENT = 1,\n\t},\n};\n', 'f');
    expect(cttimeoutUsable(p!)).toMatch(/nfct-timeout.txt lacks SYN_RECV, ESTABLISHED, .*UNACKNOWLEDGED$/);
  });

  it.each([
    ['.t = {\n\t.l3proto = 2,\n', 3, /expected "\\t.l4proto = N,"/],
    ['t = {\n', 1, /expected ".NAME = \{"/],
    ['.t = {\n\t.l3proto = 2,\n\t.l4proto = 6,\n\t.policy = {\n\t\t.SYN_SENT = 1,\n\t}\n};\n', 6, /expected "\\t},"/],
    ['.a = {\n\t.l3proto = 2,\n\t.l4proto = 17,\n\t.policy = {\n\t},\n};\n.a = {\n', 7, /listed twice/],
  ])('refuses %j at line %i', (text, line, why) => {
    const err = nfvmErrorOf(() => parseNfctTimeouts(text, 'nfct-timeout.txt'));
    expect(err.pos?.line).toBe(line);
    expect(err.message).toMatch(why);
  });
});
