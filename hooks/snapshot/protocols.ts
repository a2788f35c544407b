/**
 * The IP protocols the node's kernel hands to a handler (protocols.txt in a
 * snapshot): inet_protos[] and inet6_protos[], what ip_protocol_deliver_rcu()
 * (net/ipv4/ip_input.c) and ip6_protocol_deliver_rcu() (net/ipv6/ip6_input.c)
 * look up for a locally delivered packet. A protocol without a handler and
 * without a raw socket gets ICMP protocol unreachable (IPv4) or ICMPv6
 * parameter problem, unknown next header (IPv6) (hooks/answer/stack.ts).
 *
 *   # protocols with a handler in the kernel (inet_protos, inet6_protos)
 *   ipv4 1 2 6 17 136
 *   ipv6 6 17 43 44 58 59 60 136
 *
 * The kernel cannot list them; `nfvm snapshot` derives them
 * (protocolsFromKernel) from the kernel's configuration (/proc/config.gz or
 * /boot/config-RELEASE) and the loaded modules (/proc/modules), through the
 * registrations below. A user may write the file by hand.
 */
import { NfvmError } from '../../core/errors.js';

export interface InetProtocols {
  /** 1 where inet_protos[proto] is set. */
  readonly v4: Uint8Array;
  /** 1 where inet6_protos[proto] is set. */
  readonly v6: Uint8Array;
  readonly file: string;
}

/**
 * Registered by every kernel (IPv4: inet_init(): icmp, udp, tcp, igmp with
 * CONFIG_IP_MULTICAST, udplite4_register(); IPv6: inet6_init(): tcpv6,
 * udpv6, udplitev6, icmpv6_init(), ipv6_exthdrs_init() (routing 43,
 * destination options 60), ipv6_frag_init() (44), ipv6_nodata_init() (59)).
 */
const ALWAYS4 = [1, 6, 17, 136];
const ALWAYS6 = [6, 17, 43, 44, 58, 59, 60, 136];

/**
 * The configuration options (and the module each builds) whose code
 * registers a protocol handler when it is built in or loaded:
 *   gre_demux.c gre_init                    IPPROTO_GRE
 *   tunnel4.c tunnel4_init                  IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_MPLS (CONFIG_MPLS)
 *   xfrm4_protocol.c xfrm4_protocol_register (esp4, ah4, ipcomp, ip_vti)   ESP, AH, COMP
 *   sctp/protocol.c sctp_v4_add_protocol / sctp_v6_add_protocol           IPPROTO_SCTP
 *   l2tp_ip.c / l2tp_ip6.c                  IPPROTO_L2TP
 *   ipmr.c ip_mr_init (CONFIG_IP_PIMSM_V2), ip6mr.c ip6_mr_init (CONFIG_IPV6_PIMSM_V2)   IPPROTO_PIM
 *   tunnel6.c tunnel6_init                  IPPROTO_IPV6, IPPROTO_IPIP, IPPROTO_MPLS (CONFIG_MPLS)
 *   ip6_gre.c ip6gre_init                   IPPROTO_GRE
 *   xfrm6_protocol.c (esp6, ah6, ipcomp6, ip6_vti)   ESP, AH, COMP
 */
interface Registration {
  readonly config: string;
  readonly module: string;
  readonly v4: readonly number[];
  readonly v6: readonly number[];
  /** Also needs this option (CONFIG_IPV6 for the IPv6 side of a module). */
  readonly mpls?: boolean;
}

const REGISTRATIONS: readonly Registration[] = [
  { config: 'IP_MULTICAST', module: '', v4: [2], v6: [] },
  { config: 'NET_IPGRE_DEMUX', module: 'gre', v4: [47], v6: [] },
  { config: 'INET_TUNNEL', module: 'tunnel4', v4: [4, 41], v6: [], mpls: true },
  { config: 'INET_ESP', module: 'esp4', v4: [50], v6: [] },
  { config: 'INET_AH', module: 'ah4', v4: [51], v6: [] },
  { config: 'INET_IPCOMP', module: 'ipcomp', v4: [108], v6: [] },
  { config: 'NET_IPVTI', module: 'ip_vti', v4: [50, 51, 108], v6: [] },
  { config: 'IP_SCTP', module: 'sctp', v4: [132], v6: [132] },
  { config: 'L2TP_IP', module: 'l2tp_ip', v4: [115], v6: [] },
  { config: 'L2TP_IP', module: 'l2tp_ip6', v4: [], v6: [115] },
  { config: 'IP_PIMSM_V2', module: '', v4: [103], v6: [] },
  { config: 'IPV6_PIMSM_V2', module: '', v4: [], v6: [103] },
  { config: 'INET6_TUNNEL', module: 'tunnel6', v4: [], v6: [41, 4], mpls: true },
  { config: 'IPV6_GRE', module: 'ip6_gre', v4: [], v6: [47] },
  { config: 'INET6_ESP', module: 'esp6', v4: [], v6: [50] },
  { config: 'INET6_AH', module: 'ah6', v4: [], v6: [51] },
  { config: 'INET6_IPCOMP', module: 'ipcomp6', v4: [], v6: [108] },
  { config: 'IPV6_VTI', module: 'ip6_vti', v4: [], v6: [50, 51, 108] },
];

const IPPROTO_MPLS = 137;

/**
 * The handlers of a kernel whose configuration is `config` (the text of
 * .config, undefined when unknown: built-in options are then unknown too)
 * and whose loaded modules are `modules` (/proc/modules; undefined or empty
 * on a kernel without modules). Undefined when neither says anything.
 */
export function protocolsFromKernel(config: string | undefined, modules: string | undefined): { v4: number[]; v6: number[]; from: string } | undefined {
  if (config === undefined && modules === undefined) return undefined;
  const opt = new Map<string, string>();
  for (const l of (config ?? '').split('\n')) {
    const m = /^CONFIG_([A-Z0-9_]+)=([ym])\s*$/.exec(l);
    if (m) opt.set(m[1]!, m[2]!);
  }
  const loaded = new Set<string>();
  for (const l of (modules ?? '').split('\n')) {
    const name = l.split(' ')[0];
    if (name) loaded.add(name.replace(/-/g, '_'));
  }
  const v4 = new Set(ALWAYS4);
  const v6 = new Set(ALWAYS6);
  const mpls = opt.has('MPLS');
  for (const r of REGISTRATIONS) {
    const o = opt.get(r.config);
    const on = o === 'y' || (r.module !== '' && loaded.has(r.module));
    if (!on) continue;
    for (const p of r.v4) v4.add(p);
    for (const p of r.v6) v6.add(p);
    if (r.mpls && mpls) (r.v4.length ? v4 : v6).add(IPPROTO_MPLS);
  }
  if (config !== undefined && !opt.has('IPV6')) v6.clear();
  // IP_MULTICAST is a bool every distribution sets; without the configuration, take it as set
  if (config === undefined) v4.add(2);
  const from = config !== undefined ? (modules !== undefined ? 'the kernel configuration and /proc/modules' : 'the kernel configuration') : '/proc/modules (the kernel configuration was not readable: built-in handlers besides the base protocols are not known)';
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return { v4: sorted(v4), v6: sorted(v6), from };
}

/** protocols.txt as `nfvm snapshot` writes it. */
export function formatProtocols(p: { v4: readonly number[]; v6: readonly number[]; from: string }): string {
  return `# protocols with a handler in the kernel (inet_protos, inet6_protos), from ${p.from}\nipv4 ${p.v4.join(' ')}\nipv6 ${p.v6.join(' ')}\n`;
}

/** Parses protocols.txt; an error names the line and column. A family without a line has no handler at all. */
export function parseProtocols(text: string, file: string): InetProtocols {
  const v4 = new Uint8Array(256);
  const v6 = new Uint8Array(256);
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const l = lines[n]!.replace(/\r$/, '');
    const re = /\S+/g;
    const words: { t: string; col: number }[] = [];
    let m: RegExpExecArray | null;
    while ((m = re.exec(l))) words.push({ t: m[0], col: m.index + 1 });
    if (words.length === 0 || words[0]!.t.startsWith('#')) continue;
    const at = (w: { col: number }) => ({ line: n + 1, col: w.col });
    const fam = words[0]!;
    if (fam.t !== 'ipv4' && fam.t !== 'ipv6') throw new NfvmError('syntax', `expected "ipv4" or "ipv6" and protocol numbers, not "${fam.t}"`, file, at(fam), fam.t);
    const into = fam.t === 'ipv4' ? v4 : v6;
    for (const w of words.slice(1)) {
      if (!/^\d{1,3}$/.test(w.t) || Number(w.t) > 255) throw new NfvmError('value', `expected a protocol number 0-255, not "${w.t}"`, file, at(w), w.t);
      into[Number(w.t)] = 1;
    }
  }
  return { v4, v6, file };
}
