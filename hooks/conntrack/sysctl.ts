/**
 * The net.netfilter.nf_conntrack_* sysctls: names, kernel defaults and the
 * range checks their proc handlers apply on write.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_conntrack_standalone.c  nf_ct_sysctl_table (proc handlers, extra1/extra2)
 *   net/netfilter/nf_conntrack_proto_*.c     the per-protocol default timeouts
 *   kernel/sysctl.c                          proc_dointvec_minmax, proc_dou8vec_minmax,
 *                                            proc_dointvec_jiffies (|v| <= INT_MAX / HZ)
 *
 * Values are parsed as the kernel's proc_get_long() does: optional blanks, an
 * optional '-' (int handlers only), then strtoul base 0 (0x.. hex, 0.. octal,
 * decimal). A value the kernel would refuse (EINVAL) is a CtSysctlError that
 * names the key, so the caller can point at its line in sysctl.txt.
 * Timeouts are kept in jiffies of the model's clock (HZ below).
 */

/** CONFIG_HZ of the reference kernel (6.18 on the test machines): jiffies per second. */
export const HZ = 250;
const INT_MAX = 2147483647;

// enum tcp_conntrack (include/uapi/linux/netfilter/nf_conntrack_tcp.h)
export const TCP_CONNTRACK_NONE = 0;
export const TCP_CONNTRACK_SYN_SENT = 1;
export const TCP_CONNTRACK_SYN_RECV = 2;
export const TCP_CONNTRACK_ESTABLISHED = 3;
export const TCP_CONNTRACK_FIN_WAIT = 4;
export const TCP_CONNTRACK_CLOSE_WAIT = 5;
export const TCP_CONNTRACK_LAST_ACK = 6;
export const TCP_CONNTRACK_TIME_WAIT = 7;
export const TCP_CONNTRACK_CLOSE = 8;
export const TCP_CONNTRACK_SYN_SENT2 = 9; // TCP_CONNTRACK_LISTEN
export const TCP_CONNTRACK_MAX = 10;
export const TCP_CONNTRACK_IGNORE = 11;
export const TCP_CONNTRACK_RETRANS = 12;
export const TCP_CONNTRACK_UNACK = 13;
export const TCP_CONNTRACK_TIMEOUT_MAX = 14;

// enum sctp_conntrack
export const SCTP_CONNTRACK_NONE = 0;
export const SCTP_CONNTRACK_CLOSED = 1;
export const SCTP_CONNTRACK_COOKIE_WAIT = 2;
export const SCTP_CONNTRACK_COOKIE_ECHOED = 3;
export const SCTP_CONNTRACK_ESTABLISHED = 4;
export const SCTP_CONNTRACK_SHUTDOWN_SENT = 5;
export const SCTP_CONNTRACK_SHUTDOWN_RECD = 6;
export const SCTP_CONNTRACK_SHUTDOWN_ACK_SENT = 7;
export const SCTP_CONNTRACK_HEARTBEAT_SENT = 8;
export const SCTP_CONNTRACK_MAX = 9;

/** A value the kernel's proc handler refuses: the key, the text and why. */
export class CtSysctlError extends Error {
  override name = 'CtSysctlError';
  constructor(
    readonly key: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super(`${key} = ${value}: ${reason}`);
  }
}

/** The conntrack sysctls of one network namespace, timeouts in jiffies. */
export class NfConntrackSysctl {
  /** jiffies per second of this clock. */
  readonly hz: number;
  max = 262144; // nf_conntrack_max (global; a fresh namespace shows the host's)
  buckets = 262144; // nf_conntrack_buckets (nf_conntrack_htable_size)
  checksum = 1;
  logInvalid = 0;
  expectMax = 4096;
  acct = 0;
  events = 2;
  timestamp = 0;
  tcpLoose = 1;
  tcpBeLiberal = 0;
  tcpIgnoreInvalidRst = 0;
  tcpMaxRetrans = 3;
  genericTimeout: number;
  /** nf_tcp_net.timeouts[TCP_CONNTRACK_TIMEOUT_MAX]; [0] is the SYN_SENT value (nf_conntrack_tcp_init_net). */
  readonly tcpTimeouts = new Int32Array(TCP_CONNTRACK_TIMEOUT_MAX);
  /** UDP_CT_UNREPLIED, UDP_CT_REPLIED. */
  readonly udpTimeouts = new Int32Array(2);
  icmpTimeout: number;
  icmpv6Timeout: number;
  /** nf_sctp_net.timeouts; [0] is the CLOSED value. */
  readonly sctpTimeouts = new Int32Array(SCTP_CONNTRACK_MAX);
  /** GRE_CT_UNREPLIED, GRE_CT_REPLIED. */
  readonly greTimeouts = new Int32Array(2);

  constructor(hz = HZ) {
    this.hz = hz;
    const s = hz;
    this.genericTimeout = 600 * s;
    const t = this.tcpTimeouts;
    t[TCP_CONNTRACK_SYN_SENT] = 120 * s;
    t[TCP_CONNTRACK_SYN_RECV] = 60 * s;
    t[TCP_CONNTRACK_ESTABLISHED] = 5 * 24 * 3600 * s;
    t[TCP_CONNTRACK_FIN_WAIT] = 120 * s;
    t[TCP_CONNTRACK_CLOSE_WAIT] = 60 * s;
    t[TCP_CONNTRACK_LAST_ACK] = 30 * s;
    t[TCP_CONNTRACK_TIME_WAIT] = 120 * s;
    t[TCP_CONNTRACK_CLOSE] = 10 * s;
    t[TCP_CONNTRACK_SYN_SENT2] = 120 * s;
    t[TCP_CONNTRACK_RETRANS] = 300 * s;
    t[TCP_CONNTRACK_UNACK] = 300 * s;
    t[TCP_CONNTRACK_NONE] = t[TCP_CONNTRACK_SYN_SENT]!;
    this.udpTimeouts[0] = 30 * s;
    this.udpTimeouts[1] = 120 * s;
    this.icmpTimeout = 30 * s;
    this.icmpv6Timeout = 30 * s;
    const c = this.sctpTimeouts;
    c[SCTP_CONNTRACK_CLOSED] = 10 * s;
    c[SCTP_CONNTRACK_COOKIE_WAIT] = 3 * s;
    c[SCTP_CONNTRACK_COOKIE_ECHOED] = 3 * s;
    c[SCTP_CONNTRACK_ESTABLISHED] = 210 * s;
    c[SCTP_CONNTRACK_SHUTDOWN_SENT] = 3 * s;
    c[SCTP_CONNTRACK_SHUTDOWN_RECD] = 3 * s;
    c[SCTP_CONNTRACK_SHUTDOWN_ACK_SENT] = 3 * s;
    c[SCTP_CONNTRACK_HEARTBEAT_SENT] = 30 * s;
    c[0] = c[SCTP_CONNTRACK_CLOSED]!;
    this.greTimeouts[0] = 30 * s;
    this.greTimeouts[1] = 180 * s;
  }
}

type Handler = 'int' | 'uint' | 'u8' | 'jiffies';
interface Entry {
  readonly handler: Handler;
  readonly min: number;
  readonly max: number;
  readonly set: (s: NfConntrackSysctl, v: number) => void;
}

const u8 = (min: number, max: number, set: Entry['set']): Entry => ({ handler: 'u8', min, max, set });
const jiffies = (set: (s: NfConntrackSysctl, j: number) => void): Entry => ({ handler: 'jiffies', min: 0, max: 0, set });
const tcpT = (i: number) => jiffies((s, j) => { s.tcpTimeouts[i] = j; if (i === TCP_CONNTRACK_SYN_SENT) s.tcpTimeouts[0] = j; });
const sctpT = (i: number) => jiffies((s, j) => { s.sctpTimeouts[i] = j; if (i === SCTP_CONNTRACK_CLOSED) s.sctpTimeouts[0] = j; });
const ignored: Entry = { handler: 'int', min: -INT_MAX - 1, max: INT_MAX, set: () => {} };

/** nf_ct_sysctl_table by procname (without the net.netfilter. prefix). */
const TABLE: ReadonlyMap<string, Entry> = new Map<string, Entry>([
  ['nf_conntrack_max', { handler: 'int', min: 0, max: INT_MAX, set: (s, v) => { s.max = v; } }],
  ['nf_conntrack_count', ignored], // read-only: what the namespace held, not a setting
  // nf_conntrack_hash_sysctl: a positive table size; bounded here so a snapshot cannot ask for gigabytes.
  ['nf_conntrack_buckets', { handler: 'uint', min: 1, max: 1 << 24, set: (s, v) => { s.buckets = v; } }],
  ['nf_conntrack_checksum', u8(0, 1, (s, v) => { s.checksum = v; })],
  ['nf_conntrack_log_invalid', u8(0, 255, (s, v) => { s.logInvalid = v; })],
  ['nf_conntrack_expect_max', { handler: 'int', min: 1, max: INT_MAX, set: (s, v) => { s.expectMax = v; } }],
  ['nf_conntrack_acct', u8(0, 1, (s, v) => { s.acct = v; })],
  ['nf_conntrack_events', u8(0, 2, (s, v) => { s.events = v; })],
  ['nf_conntrack_timestamp', u8(0, 1, (s, v) => { s.timestamp = v; })],
  ['nf_conntrack_generic_timeout', jiffies((s, j) => { s.genericTimeout = j; })],
  ['nf_conntrack_tcp_timeout_syn_sent', tcpT(TCP_CONNTRACK_SYN_SENT)],
  ['nf_conntrack_tcp_timeout_syn_recv', tcpT(TCP_CONNTRACK_SYN_RECV)],
  ['nf_conntrack_tcp_timeout_established', tcpT(TCP_CONNTRACK_ESTABLISHED)],
  ['nf_conntrack_tcp_timeout_fin_wait', tcpT(TCP_CONNTRACK_FIN_WAIT)],
  ['nf_conntrack_tcp_timeout_close_wait', tcpT(TCP_CONNTRACK_CLOSE_WAIT)],
  ['nf_conntrack_tcp_timeout_last_ack', tcpT(TCP_CONNTRACK_LAST_ACK)],
  ['nf_conntrack_tcp_timeout_time_wait', tcpT(TCP_CONNTRACK_TIME_WAIT)],
  ['nf_conntrack_tcp_timeout_close', tcpT(TCP_CONNTRACK_CLOSE)],
  ['nf_conntrack_tcp_timeout_max_retrans', tcpT(TCP_CONNTRACK_RETRANS)],
  ['nf_conntrack_tcp_timeout_unacknowledged', tcpT(TCP_CONNTRACK_UNACK)],
  ['nf_flowtable_tcp_timeout', jiffies(() => {})], // flow offload is not modelled
  ['nf_conntrack_tcp_loose', u8(0, 1, (s, v) => { s.tcpLoose = v; })],
  ['nf_conntrack_tcp_be_liberal', u8(0, 1, (s, v) => { s.tcpBeLiberal = v; })],
  ['nf_conntrack_tcp_ignore_invalid_rst', u8(0, 1, (s, v) => { s.tcpIgnoreInvalidRst = v; })],
  ['nf_conntrack_tcp_max_retrans', u8(0, 255, (s, v) => { s.tcpMaxRetrans = v; })],
  ['nf_conntrack_udp_timeout', jiffies((s, j) => { s.udpTimeouts[0] = j; })],
  ['nf_conntrack_udp_timeout_stream', jiffies((s, j) => { s.udpTimeouts[1] = j; })],
  ['nf_flowtable_udp_timeout', jiffies(() => {})],
  ['nf_conntrack_icmp_timeout', jiffies((s, j) => { s.icmpTimeout = j; })],
  ['nf_conntrack_icmpv6_timeout', jiffies((s, j) => { s.icmpv6Timeout = j; })],
  ['nf_conntrack_sctp_timeout_closed', sctpT(SCTP_CONNTRACK_CLOSED)],
  ['nf_conntrack_sctp_timeout_cookie_wait', sctpT(SCTP_CONNTRACK_COOKIE_WAIT)],
  ['nf_conntrack_sctp_timeout_cookie_echoed', sctpT(SCTP_CONNTRACK_COOKIE_ECHOED)],
  ['nf_conntrack_sctp_timeout_established', sctpT(SCTP_CONNTRACK_ESTABLISHED)],
  ['nf_conntrack_sctp_timeout_shutdown_sent', sctpT(SCTP_CONNTRACK_SHUTDOWN_SENT)],
  ['nf_conntrack_sctp_timeout_shutdown_recd', sctpT(SCTP_CONNTRACK_SHUTDOWN_RECD)],
  ['nf_conntrack_sctp_timeout_shutdown_ack_sent', sctpT(SCTP_CONNTRACK_SHUTDOWN_ACK_SENT)],
  ['nf_conntrack_sctp_timeout_heartbeat_sent', sctpT(SCTP_CONNTRACK_HEARTBEAT_SENT)],
  ['nf_conntrack_gre_timeout', jiffies((s, j) => { s.greTimeouts[0] = j; })],
  ['nf_conntrack_gre_timeout_stream', jiffies((s, j) => { s.greTimeouts[1] = j; })],
]);

const PREFIX = 'net.netfilter.';

/**
 * proc_get_long() + the handler's conversion: the number, or a reason.
 * `neg` is allowed for the int handlers only (do_proc_douintvec refuses it).
 */
function procValue(text: string, handler: Handler): number | string {
  const m = /^[ \t\n]*(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[ \t\n]*$/.exec(text);
  if (!m) return 'not a number (EINVAL)';
  const neg = m[1] === '-';
  const digits = m[2]!;
  const mag = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits[0] === '0' ? parseInt(digits, 8) : Number(digits);
  if (neg && (handler === 'uint' || handler === 'u8')) return 'negative value for an unsigned setting (EINVAL)';
  if (!Number.isFinite(mag) || mag > 0xffffffff) return 'out of range (EINVAL)';
  return neg ? -mag : mag;
}

/**
 * The sysctls of a namespace from `name → value` (keys as sysctl.txt names
 * them, `net.netfilter.nf_conntrack_*`; other keys are not ours and are
 * skipped, as are conntrack keys this kernel does not have). Throws
 * CtSysctlError for a value the kernel's proc handler would refuse.
 */
export function nfConntrackSysctl(values: ReadonlyMap<string, string> | Readonly<Record<string, string>>, hz = HZ): NfConntrackSysctl {
  const s = new NfConntrackSysctl(hz);
  const entries: Iterable<[string, string]> = values instanceof Map ? values.entries() : Object.entries(values);
  for (const [key, text] of entries) {
    if (!key.startsWith(PREFIX)) continue;
    const e = TABLE.get(key.slice(PREFIX.length));
    if (!e) continue;
    const v = procValue(text, e.handler);
    if (typeof v === 'string') throw new CtSysctlError(key, text, v);
    if (e.handler === 'jiffies') {
      // do_proc_dointvec_jiffies_conv: |v| > INT_MAX / HZ is refused.
      if (Math.abs(v) > Math.floor(INT_MAX / hz)) throw new CtSysctlError(key, text, `out of range: at most ${Math.floor(INT_MAX / hz)} seconds (EINVAL)`);
      e.set(s, v * hz);
      continue;
    }
    if (v < e.min || v > e.max) throw new CtSysctlError(key, text, `out of range ${e.min}..${e.max} (EINVAL)`);
    e.set(s, v);
  }
  return s;
}
