/**
 * cttimeout policies (net/netfilter/nfnetlink_cttimeout.c,
 * nf_conntrack_timeout.c, Linux 6.18): named timeout sets made with `nfct
 * add timeout NAME FAMILY PROTO STATE SECONDS ...` that `-j CT --timeout
 * NAME` gives the conntracks its template makes; the trackers then read
 * their timeouts from the policy (nf_ct_timeout_lookup) instead of the
 * namespace's sysctls.
 *
 * A node snapshot keeps them as nfct-timeout.txt, what `nfct list timeout`
 * (conntrack-tools 1.4.7) prints:
 *
 *   .NAME = {
 *   	.l3proto = 2,
 *   	.l4proto = 6,
 *   	.policy = {
 *   		.SYN_SENT = 120,
 *   		...
 *   	},
 *   };
 *
 * The kernel fills a new policy from the namespace's current timeouts and
 * the values given, so a full list names every state of the tracker. nfct
 * 1.4.7 prints every state of TCP, UDP, UDP-Lite, GRE, ICMP and ICMPv6
 * (checked on this kernel) but not SCTP's HEARTBEAT_SENT: nfct can neither
 * set it ("Wrong state name") nor print it, so an SCTP policy nfct made holds
 * the namespace's nf_conntrack_sctp_timeout_heartbeat_sent of when it was
 * made (sctp_timeout_nlattr_to_obj fills the policy from the namespace's
 * timeouts first), which the model takes from the snapshot's sysctls (a
 * policy made by another netlink client with its own HEARTBEAT_SENT, or the
 * sysctl changed since, would differ). A policy of the generic tracker (one value) goes only
 * to rules of a protocol without a tracker of its own: xt_CT refuses a
 * `--timeout` rule without `-p` (or with `! -p`), and nf_ct_set_timeout()
 * a policy of another tracker than the rule's protocol's.
 */
import { NfvmError } from '../../core/errors.js';
import {
  TCP_CONNTRACK_CLOSE, TCP_CONNTRACK_CLOSE_WAIT, TCP_CONNTRACK_ESTABLISHED, TCP_CONNTRACK_FIN_WAIT, TCP_CONNTRACK_LAST_ACK,
  TCP_CONNTRACK_RETRANS, TCP_CONNTRACK_SYN_RECV, TCP_CONNTRACK_SYN_SENT, TCP_CONNTRACK_SYN_SENT2, TCP_CONNTRACK_TIME_WAIT,
  TCP_CONNTRACK_TIMEOUT_MAX, TCP_CONNTRACK_UNACK, SCTP_CONNTRACK_CLOSED, SCTP_CONNTRACK_COOKIE_ECHOED, SCTP_CONNTRACK_COOKIE_WAIT,
  SCTP_CONNTRACK_ESTABLISHED, SCTP_CONNTRACK_HEARTBEAT_SENT, SCTP_CONNTRACK_MAX, SCTP_CONNTRACK_SHUTDOWN_ACK_SENT,
  SCTP_CONNTRACK_SHUTDOWN_RECD, SCTP_CONNTRACK_SHUTDOWN_SENT,
} from './sysctl.js';

/** A policy as nfct lists it: its protocols and the timeouts (seconds) by the state names nfct prints. */
export interface CtTimeoutPolicy {
  readonly name: string;
  /** NFPROTO_IPV4 (2) or NFPROTO_IPV6 (10). */
  readonly l3num: number;
  /** The tracker's protocol number (255: the generic tracker). */
  readonly l4num: number;
  readonly seconds: ReadonlyMap<string, number>;
}

/** The trackers whose policies nfct lists in full: the state names in the kernel's timeout array order. */
const LAYOUTS: ReadonlyMap<number, readonly (readonly [string, number])[]> = new Map([
  [6, [
    ['SYN_SENT', TCP_CONNTRACK_SYN_SENT], ['SYN_RECV', TCP_CONNTRACK_SYN_RECV], ['ESTABLISHED', TCP_CONNTRACK_ESTABLISHED],
    ['FIN_WAIT', TCP_CONNTRACK_FIN_WAIT], ['CLOSE_WAIT', TCP_CONNTRACK_CLOSE_WAIT], ['LAST_ACK', TCP_CONNTRACK_LAST_ACK],
    ['TIME_WAIT', TCP_CONNTRACK_TIME_WAIT], ['CLOSE', TCP_CONNTRACK_CLOSE], ['SYN_SENT2', TCP_CONNTRACK_SYN_SENT2],
    ['RETRANS', TCP_CONNTRACK_RETRANS], ['UNACKNOWLEDGED', TCP_CONNTRACK_UNACK],
  ]],
  // UDP_CT_UNREPLIED, UDP_CT_REPLIED (UDP-Lite shares the UDP tracker's array); GRE_CT_UNREPLIED, GRE_CT_REPLIED
  [17, [['UNREPLIED', 0], ['REPLIED', 1]]],
  [136, [['UNREPLIED', 0], ['REPLIED', 1]]],
  [47, [['UNREPLIED', 0], ['REPLIED', 1]]],
  // nf_icmp_net.timeout, nf_icmpv6_net.timeout, nf_generic_net.timeout: one value
  [1, [['TIMEOUT', 0]]],
  [58, [['TIMEOUT', 0]]],
  [255, [['TIMEOUT', 0]]],
  [132, [
    ['CLOSED', SCTP_CONNTRACK_CLOSED], ['COOKIE_WAIT', SCTP_CONNTRACK_COOKIE_WAIT], ['COOKIE_ECHOED', SCTP_CONNTRACK_COOKIE_ECHOED],
    ['ESTABLISHED', SCTP_CONNTRACK_ESTABLISHED], ['SHUTDOWN_SENT', SCTP_CONNTRACK_SHUTDOWN_SENT], ['SHUTDOWN_RECD', SCTP_CONNTRACK_SHUTDOWN_RECD],
    ['SHUTDOWN_ACK_SENT', SCTP_CONNTRACK_SHUTDOWN_ACK_SENT], ['HEARTBEAT_SENT', SCTP_CONNTRACK_HEARTBEAT_SENT],
  ]],
]);

/** The states nfct lists but cannot print: their timeouts are the namespace's when the policy was made. */
const UNPRINTED: ReadonlySet<string> = new Set(['HEARTBEAT_SENT']);

/** Why a rule may not give this policy to its conntracks, or undefined when the model can. */
export function cttimeoutUsable(p: CtTimeoutPolicy): string | undefined {
  const layout = LAYOUTS.get(p.l4num);
  const what = `timeout policy ${p.name} (l3proto ${p.l3num}, l4proto ${p.l4num})`;
  if (!layout) return `${what}: no tracker of the model takes this protocol's timeouts`;
  const missing = layout.filter(([n]) => !p.seconds.has(n) && !(p.l4num === 132 && UNPRINTED.has(n))).map(([n]) => n);
  if (missing.length) return `${what}: nfct-timeout.txt lacks ${missing.join(', ')}`;
  return undefined;
}

/**
 * The policy's timeout array in jiffies, laid out as the tracker's sysctl
 * array (tcp: index 0 is SYN_SENT, as tcp_timeout_nlattr_to_obj sets it;
 * sctp: index 0 is CLOSED, and a state nfct does not print keeps
 * `sctpTimeouts`, the namespace's, as sctp_timeout_nlattr_to_obj fills it).
 */
export function cttimeoutJiffies(p: CtTimeoutPolicy, hz: number, sctpTimeouts?: Int32Array): Int32Array {
  const layout = LAYOUTS.get(p.l4num)!;
  const out = new Int32Array(p.l4num === 6 ? TCP_CONNTRACK_TIMEOUT_MAX : p.l4num === 132 ? SCTP_CONNTRACK_MAX : layout.length);
  if (p.l4num === 132 && sctpTimeouts) out.set(sctpTimeouts.subarray(0, SCTP_CONNTRACK_MAX));
  for (const [n, i] of layout) {
    const s = p.seconds.get(n);
    if (s !== undefined) out[i] = s * hz;
  }
  if (p.l4num === 6) out[0] = out[TCP_CONNTRACK_SYN_SENT]!;
  if (p.l4num === 132) out[0] = out[SCTP_CONNTRACK_CLOSED]!;
  return out;
}

const HEAD = /^\.(.+) = \{$/;
const FIELD = /^\t\.(l3proto|l4proto) = ([0-9]+),$/;
const VALUE = /^\t\t\.([A-Z0-9_]+) = ([0-9]+),$/;

/** The policies of `nfct list timeout` output (nfct-timeout.txt), in its order. */
export function parseNfctTimeouts(text: string, file: string): CtTimeoutPolicy[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const out: CtTimeoutPolicy[] = [];
  const names = new Set<string>();
  let i = 0;
  const fail = (why: string): never => {
    throw new NfvmError('syntax', `not \`nfct list timeout\` output: ${why}`, file, { line: i + 1, col: 1 }, (lines[i] ?? '').slice(0, 40));
  };
  const expect = (s: string): void => {
    if (lines[i] !== s) fail(`expected "${s.replace(/\t/g, '\\t')}"`);
    i++;
  };
  while (i < lines.length) {
    const head = HEAD.exec(lines[i]!);
    if (!head) fail('expected ".NAME = {"');
    const name = head![1]!;
    if (names.has(name)) throw new NfvmError('value', `timeout policy ${name} listed twice`, file, { line: i + 1, col: 2 }, name);
    names.add(name);
    i++;
    const nums: number[] = [];
    for (const want of ['l3proto', 'l4proto']) {
      const f = FIELD.exec(lines[i] ?? '');
      if (!f || f[1] !== want) fail(`expected "\\t.${want} = N,"`);
      nums.push(Number(f![2]));
      i++;
    }
    expect('\t.policy = {');
    const seconds = new Map<string, number>();
    for (let v = VALUE.exec(lines[i] ?? ''); v; v = VALUE.exec(lines[i] ?? '')) {
      const s = Number(v[2]);
      // the kernel keeps timeout * HZ in an unsigned int (ctnl_timeout_parse_policy)
      if (!Number.isSafeInteger(s) || s > 0xffffffff) throw new NfvmError('value', `timeout ${v[2]} out of range`, file, { line: i + 1, col: 1 }, v[2]);
      seconds.set(v[1]!, s);
      i++;
    }
    expect('\t},');
    expect('};');
    out.push({ name, l3num: nums[0]!, l4num: nums[1]!, seconds });
  }
  return out;
}
