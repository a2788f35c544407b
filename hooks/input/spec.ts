/**
 * The packet spec: one line describing a packet for humans, parsed to a typed
 * object and encoded to frame bytes.
 *
 *   tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0 mark 0x1
 *   udp [2001:db8::1]:5353 > [ff02::fb]:5353 len 40 from local
 *   icmp 10.0.0.1 > 10.0.0.2 echo-request ttl 1
 *   ip proto 47 10.0.0.1 > 10.0.0.2 len 24 ct established ct mark 0x10
 *
 * Grammar (words are separated by blanks; `>` may touch its neighbours):
 *
 *   spec      := proto SRC '>' DST clause*
 *   proto     := tcp | udp | udplite | sctp | icmp | icmpv6 | icmp6
 *              | ip proto P | ip4 proto P | ip6 proto P       P: number 0-255 or name (gre, esp, ...)
 *                                                            `ip` takes its family from the addresses
 *   SRC, DST  := IPV4[:PORT] | [IPV6]:PORT | [IPV6] | IPV6   dotted quads have four parts
 *   clause    :=
 *     TCP      syn | ack | fin | rst | psh | urg | ece | cwr  (may be joined by commas: syn,ack)
 *              | flags N | seq N | ackseq N | win N
 *              | tcpopt OPT[,OPT]...   OPT: mss=N | sackok | ts | nop | wscale=N | eol, in
 *                order (ts: value 1, echo 0); zero bytes pad them to 4 (at most 40)
 *     ICMP     type N [code N] | code N | NAME | id N | seq N
 *              NAME: the iptables names (echo-request, port-unreachable, ...; icmpv6: echo-request,
 *              packet-too-big, neighbour-solicitation, ...); a name with a code sets both
 *     IP       ttl N | hl N (the same field) | tos N | dscp N | ecn N | ipid N | df | mf
 *              | frag offset N (bytes, a multiple of 8) | flowlabel N (IPv6) | len N (payload bytes)
 *     IPv6     extension headers, in the order written, between the IPv6 header and
 *              the fragment header (`frag`) or the upper layer; each may repeat:
 *              hbh [len N] | dst [len N]   hop-by-hop / destination options, (N+1)*8 bytes
 *                                          of PadN (N: Hdr Ext Len, default 0)
 *              | rt [type N] [segsleft N] [addrs A,B,...]   routing header (type default 0,
 *                                          segsleft 0), 8 bytes and 16 per address, in that order
 *              | ah [spi N]                authentication header (24 bytes, SPI default 1)
 *     UDP-Lite cscov N (the checksum coverage in the length field; default 0: all)
 *     ESP      spi N (ip proto esp: the ESP header's SPI, sequence 1)
 *     metadata iif NAME | oif NAME | mark N | from local
 *              | uid N | gid N | groups N[,N]...   with from local: the sending socket's
 *                                          file credentials (fsuid, fsgid, at most 8
 *                                          supplementary groups; default uid 0 gid 0)
 *              | cgroup PATH | classid N    with from local: the socket's cgroup v2 path
 *                                          and net_cls class id (default / and 0)
 *              | ct new|established|related|invalid|untracked | ct reply | ct mark N
 *     link     src-mac MAC | dst-mac MAC | vlan N               MAC: six hex pairs, `:` or `-`
 *
 *   Numbers are decimal or 0x-hex. Each clause may appear once (TCP flag words
 *   accumulate). Clauses for another protocol are errors (`syn` on udp, ports on icmp).
 *
 * Defaults (deterministic, no randomness): ports 40000 > 80; TCP flags SYN, or
 * ACK under `ct established|related`; seq 1, ackseq 1 when ACK is set else 0,
 * window 64240; ICMP echo-request with id 1 seq 1; TTL/hop limit 64; IPv4 ID 1
 * (IPv6 fragment ID 1); tos 0; no DF; payload 0 bytes (8 in a non-first
 * fragment, which carries no transport header).
 *
 * The frame is Ethernet (MACs 02:00:00:00:00:01 > 02:00:00:00:00:02 unless
 * given) when iif, src-mac, dst-mac or vlan is given, raw IP otherwise. IPv4
 * header, TCP, UDP, UDP-Lite, SCTP (CRC32c), ICMP and ICMPv6 checksums are filled in.
 *
 * Errors are NfvmError, `packet spec:1:COL: reason`, COL the 1-based column
 * of the offending word.
 */
import { NfvmError, type SourcePos } from '../../core/errors.js';
import { parseProtocol } from '../../ext/protocols.js';
import { formatIPv4, formatIPv6, hostPort, parseIPv6, parseIPv4, parseMac } from '../../core/addr.js';
import { suggest } from '../../compiler/parse/getopt.js';
import { M_CT_DIR, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_LEN, M_MARK, M_NHOFF, SK_FILE, SK_MAX_GROUPS, SK_NONE } from '../../vm/layout.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decodePacket, setDevice, setSocket } from '../../vm/packet.js';
import { cgroupCanonical, cgroupId } from '../../vm/cgroup.js';
import {
  IPS_CONFIRMED, IPS_EXPECTED, IPS_SEEN_REPLY, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_INVALID_BIT, NF_CT_STATE_NEW_BIT,
  NF_CT_STATE_RELATED_BIT, NF_CT_STATE_UNTRACKED_BIT,
} from '../../core/netfilter.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;


export const TCP_FLAGS: ReadonlyMap<string, number> = new Map([
  ['fin', 0x01], ['syn', 0x02], ['rst', 0x04], ['psh', 0x08], ['ack', 0x10], ['urg', 0x20], ['ece', 0x40], ['cwr', 0x80],
]);

/** iptables' icmp type names: [type, code] (code -1 = any). */
export const ICMP_NAMES: ReadonlyMap<string, readonly [number, number]> = new Map([
  ['echo-reply', [0, -1]], ['pong', [0, -1]], ['destination-unreachable', [3, -1]],
  ['network-unreachable', [3, 0]], ['host-unreachable', [3, 1]], ['protocol-unreachable', [3, 2]],
  ['port-unreachable', [3, 3]], ['fragmentation-needed', [3, 4]], ['source-route-failed', [3, 5]],
  ['network-unknown', [3, 6]], ['host-unknown', [3, 7]], ['network-prohibited', [3, 9]],
  ['host-prohibited', [3, 10]], ['tos-network-unreachable', [3, 11]], ['tos-host-unreachable', [3, 12]],
  ['communication-prohibited', [3, 13]], ['host-precedence-violation', [3, 14]], ['precedence-cutoff', [3, 15]],
  ['source-quench', [4, -1]], ['redirect', [5, -1]], ['network-redirect', [5, 0]], ['host-redirect', [5, 1]],
  ['tos-network-redirect', [5, 2]], ['tos-host-redirect', [5, 3]], ['echo-request', [8, -1]], ['ping', [8, -1]],
  ['router-advertisement', [9, -1]], ['router-solicitation', [10, -1]], ['time-exceeded', [11, -1]],
  ['ttl-exceeded', [11, -1]], ['ttl-zero-during-transit', [11, 0]], ['ttl-zero-during-reassembly', [11, 1]],
  ['parameter-problem', [12, -1]], ['ip-header-bad', [12, 0]], ['required-option-missing', [12, 1]],
  ['timestamp-request', [13, -1]], ['timestamp-reply', [14, -1]], ['address-mask-request', [17, -1]],
  ['address-mask-reply', [18, -1]],
]);

/** ip6tables' icmpv6 type names. */
export const ICMPV6_NAMES: ReadonlyMap<string, readonly [number, number]> = new Map([
  ['destination-unreachable', [1, -1]], ['no-route', [1, 0]], ['communication-prohibited', [1, 1]],
  ['beyond-scope', [1, 2]], ['address-unreachable', [1, 3]], ['port-unreachable', [1, 4]],
  ['failed-policy', [1, 5]], ['reject-route', [1, 6]], ['packet-too-big', [2, -1]], ['time-exceeded', [3, -1]],
  ['ttl-exceeded', [3, -1]], ['ttl-zero-during-transit', [3, 0]], ['ttl-zero-during-reassembly', [3, 1]],
  ['parameter-problem', [4, -1]], ['bad-header', [4, 0]], ['unknown-header-type', [4, 1]],
  ['unknown-option', [4, 2]], ['echo-request', [128, -1]], ['ping', [128, -1]], ['echo-reply', [129, -1]],
  ['pong', [129, -1]], ['mld-listener-query', [130, -1]], ['mld-listener-report', [131, -1]],
  ['mld-listener-done', [132, -1]], ['mld-listener-reduction', [132, -1]], ['router-solicitation', [133, -1]],
  ['router-advertisement', [134, -1]], ['neighbour-solicitation', [135, -1]], ['neighbor-solicitation', [135, -1]],
  ['neighbour-advertisement', [136, -1]], ['neighbor-advertisement', [136, -1]], ['redirect', [137, -1]],
]);

export type CtState = 'new' | 'established' | 'related' | 'invalid' | 'untracked';
const CT_STATES: readonly CtState[] = ['new', 'established', 'related', 'invalid', 'untracked'];

/** A parsed packet spec. Numbers are -1 when absent and not defaulted. */
export interface PacketSpec {
  /** 4 or 6. */
  family: 4 | 6;
  /** IP protocol number. */
  proto: number;
  src: Uint8Array;
  dst: Uint8Array;
  /** Ports (defaults applied); -1 for protocols without ports and non-first fragments. */
  sport: number;
  dport: number;
  /** TCP: flags byte, sequence, acknowledgement number, window; -1 when not TCP. */
  tcpFlags: number;
  seq: number;
  ackSeq: number;
  window: number;
  /** TCP options, padded to a multiple of 4 bytes (empty without `tcpopt`). */
  tcpOptions: Uint8Array;
  /** ICMP/ICMPv6 type, code, echo id and sequence; -1 when not ICMP. */
  icmpType: number;
  icmpCode: number;
  icmpId: number;
  icmpSeq: number;
  ttl: number;
  /** The whole TOS / traffic class byte. */
  tos: number;
  /** IPv4 identification, or the IPv6 fragment header identification. */
  ipId: number;
  df: boolean;
  mf: boolean;
  /** Fragment offset in bytes; -1 when the packet is not a fragment (IPv6: no fragment header). */
  fragOffset: number;
  flowLabel: number;
  /** Payload bytes after the transport header. */
  payloadLen: number;
  iif: string;
  oif: string;
  /** skb->mark, unsigned (0 when not given). */
  mark: number;
  /** '' when not given. */
  ct: CtState | '';
  ctReply: boolean;
  /** ct->mark, unsigned; -1 when not given. */
  ctMark: number;
  fromLocal: boolean;
  /** The sending socket's file credentials (`from local`): fsuid and fsgid (0 when not given), supplementary groups. */
  uid: number;
  gid: number;
  groups: number[];
  /** The sending socket's cgroup v2 path (`/` when not given) and net_cls class id (0). */
  cgroup: string;
  classid: number;
  srcMac: Uint8Array | undefined;
  dstMac: Uint8Array | undefined;
  vlan: number;
  /** IPv6 extension headers in order, each with its Next Header byte left for the encoder. */
  ext: SpecExtHdr[];
  /** `spi N` of an ESP packet; -1 when not given. */
  espSpi: number;
  /** UDP-Lite: the checksum coverage in the length field (`cscov N`; 0, the default: the whole datagram); -1 for other protocols. */
  cscov: number;
  /** Where each clause was written: keys are the clause words (`proto`, `src`, `dst`, `sport`, `ttl`, `ct`, ...). */
  pos: Map<string, SourcePos>;
}

/** An IPv6 extension header of a spec: its protocol number and bytes (byte 0, Next Header, filled by encodeSpec). */
export interface SpecExtHdr {
  type: number;
  bytes: Uint8Array;
}

/** A hop-by-hop or destination options header of (hdrExtLen + 1) * 8 bytes, padded with PadN (Pad1 for a single byte). */
function optionsHeader(type: number, hdrExtLen: number): SpecExtHdr {
  const bytes = new Uint8Array((hdrExtLen + 1) * 8);
  bytes[1] = hdrExtLen;
  let o = 2;
  while (o < bytes.length) {
    const left = bytes.length - o;
    if (left === 1) break; // Pad1: a zero byte
    const n = Math.min(left, 257);
    bytes[o] = 1;
    bytes[o + 1] = n - 2;
    o += n;
  }
  return { type, bytes };
}

interface Tok {
  text: string;
  col: number;
}

export interface SpecOptions {
  /** Default `packet spec`. */
  file?: string;
  /** Default 1. */
  line?: number;
}

const PORT_PROTOS = new Set([IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_UDPLITE]);
const NO_OPTIONS = new Uint8Array(0);

/** Every clause word, for "did you mean". */
const WORDS = [
  ...TCP_FLAGS.keys(), 'flags', 'seq', 'ackseq', 'win', 'tcpopt', 'type', 'code', 'id', 'ttl', 'hl', 'tos', 'dscp', 'ecn',
  'ipid', 'df', 'mf', 'frag', 'flowlabel', 'len', 'iif', 'oif', 'mark', 'from', 'ct', 'src-mac', 'dst-mac', 'vlan',
  'hbh', 'dst', 'rt', 'ah', 'spi', 'uid', 'gid', 'groups', 'cgroup', 'classid',
];

function tokenize(text: string): Tok[] {
  const toks: Tok[] = [];
  const re = /[^\s>]+|>/g;
  for (let m = re.exec(text); m; m = re.exec(text)) toks.push({ text: m[0], col: m.index + 1 });
  return toks;
}

/** Parses a packet spec; throws NfvmError (`packet spec:1:COL: reason`) on bad input. */
export function parseSpec(text: string, o: SpecOptions = {}): PacketSpec {
  const file = o.file ?? 'packet spec';
  const line = o.line ?? 1;
  const toks = tokenize(text);
  let i = 0;
  const pos = new Map<string, SourcePos>();

  const err = (t: Tok | undefined, reason: string, kind: 'syntax' | 'value' = 'syntax'): never => {
    const col = t ? t.col : text.length + 1;
    throw new NfvmError(kind, reason, file, { line, col }, t?.text);
  };
  const next = (what: string): Tok => {
    const t = toks[i++];
    if (!t) return err(undefined, `expected ${what} at the end of the spec`);
    return t;
  };
  const num = (t: Tok, min: number, max: number, what: string): number => {
    const s = t.text;
    let v: number;
    if (/^0x[0-9a-f]+$/i.test(s)) v = parseInt(s.slice(2), 16);
    else if (/^[0-9]+$/.test(s)) v = Number(s);
    else return err(t, `${what} "${s}" is not a number`, 'value');
    if (!(v >= min && v <= max)) return err(t, `${what} ${s} out of range (${min}-${max})`, 'value');
    return v;
  };

  // protocol
  const pt = next('a protocol');
  let proto: number;
  let familyWanted: 0 | 4 | 6 = 0;
  const pw = pt.text.toLowerCase();
  if (pw === 'tcp') proto = IPPROTO_TCP;
  else if (pw === 'udp') proto = IPPROTO_UDP;
  else if (pw === 'sctp') proto = IPPROTO_SCTP;
  else if (pw === 'udplite') proto = IPPROTO_UDPLITE;
  else if (pw === 'icmp') [proto, familyWanted] = [IPPROTO_ICMP, 4];
  else if (pw === 'icmpv6' || pw === 'icmp6') [proto, familyWanted] = [IPPROTO_ICMPV6, 6];
  else if (pw === 'ip' || pw === 'ip4' || pw === 'ip6') {
    familyWanted = pw === 'ip4' ? 4 : pw === 'ip6' ? 6 : 0;
    const kw = next('"proto"');
    if (kw.text !== 'proto') err(kw, `expected "proto" after ${pw}`);
    const pn = next('a protocol number or name');
    try {
      proto = parseProtocol(pn.text);
    } catch {
      return err(pn, `unknown protocol "${pn.text}"`, 'value');
    }
    if (proto === IPPROTO_ICMP && familyWanted === 0) familyWanted = 4;
    if (proto === IPPROTO_ICMPV6 && familyWanted === 0) familyWanted = 6;
  } else {
    const s = suggest(pw, ['tcp', 'udp', 'udplite', 'sctp', 'icmp', 'icmpv6', 'ip', 'ip6']);
    return err(pt, `expected a protocol (tcp, udp, udplite, sctp, icmp, icmpv6, ip proto N), not "${pt.text}"` + (s ? ` (did you mean ${s}?)` : ''));
  }
  pos.set('proto', { line, col: pt.col });
  const hasPorts = PORT_PROTOS.has(proto);

  // endpoints
  const endpoint = (t: Tok, which: 'src' | 'dst'): { addr: Uint8Array; port: number } => {
    const s = t.text;
    let addrText = s;
    let portText: string | undefined;
    let portCol = 0;
    let v6 = false;
    if (s.startsWith('[')) {
      const close = s.indexOf(']');
      if (close < 0) return err(t, `missing "]" in ${which} address "${s}"`);
      addrText = s.slice(1, close);
      v6 = true;
      const rest = s.slice(close + 1);
      if (rest !== '') {
        if (!rest.startsWith(':')) return err(t, `expected ":PORT" after "]" in "${s}"`);
        portText = rest.slice(1);
        portCol = t.col + close + 2;
      }
    } else if (s.split(':').length === 2) {
      const c = s.indexOf(':');
      addrText = s.slice(0, c);
      portText = s.slice(c + 1);
      portCol = t.col + c + 1;
    } else if (s.includes(':')) v6 = true;
    const addr = v6 ? parseIPv6(addrText) : parseIPv4(addrText);
    if (!addr) return err(t, `bad ${v6 ? 'IPv6' : 'IPv4'} ${which} address "${addrText}"`, 'value');
    let port = -1;
    if (portText !== undefined) {
      const pt2: Tok = { text: portText, col: portCol };
      if (!hasPorts) return err(pt2, `a port needs tcp, udp, udplite or sctp (the protocol is ${pt.text})`);
      port = num(pt2, 0, 65535, 'port');
      pos.set(which === 'src' ? 'sport' : 'dport', { line, col: portCol });
    }
    pos.set(which, { line, col: t.col });
    return { addr, port };
  };
  const st = next('a source address');
  const src = endpoint(st, 'src');
  const gt = next('">"');
  if (gt.text !== '>') err(gt, `expected ">" between the source and the destination, not "${gt.text}"`);
  const dtok = next('a destination address');
  const dst = endpoint(dtok, 'dst');
  if (src.addr.length !== dst.addr.length) {
    err(dtok, `address family mismatch: source is IPv${src.addr.length === 4 ? 4 : 6}, destination is IPv${dst.addr.length === 4 ? 4 : 6}`, 'value');
  }
  const family: 4 | 6 = src.addr.length === 4 ? 4 : 6;
  if (familyWanted !== 0 && familyWanted !== family) {
    err(st, `${pt.text} needs IPv${familyWanted} addresses${proto === IPPROTO_ICMP ? ' (use icmpv6 for IPv6)' : proto === IPPROTO_ICMPV6 ? ' (use icmp for IPv4)' : ''}`, 'value');
  }
  const isIcmp = proto === (family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  if (proto === IPPROTO_ICMP && family === 6) err(pt, 'icmp with IPv6 addresses (use icmpv6)', 'value');

  const spec: PacketSpec = {
    family, proto, src: src.addr, dst: dst.addr, sport: -1, dport: -1, tcpFlags: -1, seq: -1, ackSeq: -1, window: -1, tcpOptions: NO_OPTIONS,
    icmpType: -1, icmpCode: -1, icmpId: -1, icmpSeq: -1, ttl: 64, tos: 0, ipId: 1, df: false, mf: false,
    fragOffset: -1, flowLabel: 0, payloadLen: -1, iif: '', oif: '', mark: 0, ct: '', ctReply: false, ctMark: -1,
    fromLocal: false, uid: 0, gid: 0, groups: [], cgroup: '/', classid: 0, srcMac: undefined, dstMac: undefined, vlan: -1, ext: [], espSpi: -1, cscov: proto === IPPROTO_UDPLITE ? 0 : -1, pos,
  };
  let flagWords = 0;
  let tosByte = -1;
  let dscp = -1;
  let ecn = -1;

  const once = (key: string, t: Tok): void => {
    if (pos.has(key)) err(t, `duplicate "${key}"`);
    pos.set(key, { line, col: t.col });
  };
  /** `mss=1460,sackok,ts,nop,wscale=7`: the option bytes in order, zero-padded to a multiple of 4. */
  const tcpOptions = (t: Tok): Uint8Array => {
    const out: number[] = [];
    let col = t.col;
    for (const w of t.text.split(',')) {
      const at: Tok = { text: w, col };
      col += w.length + 1;
      const [name, val] = w.split('=', 2) as [string, string | undefined];
      const arg = (max: number) => (val === undefined ? err(at, `"${name}" needs a value (${name}=N)`) : num({ text: val, col: at.col + name.length + 1 }, 0, max, name));
      if (name !== 'mss' && name !== 'wscale' && val !== undefined) err(at, `"${name}" takes no value`);
      if (name === 'mss') {
        const v = arg(0xffff);
        out.push(2, 4, v >> 8, v & 0xff);
      } else if (name === 'wscale') out.push(3, 3, arg(255));
      else if (name === 'sackok') out.push(4, 2);
      else if (name === 'ts') out.push(8, 10, 0, 0, 0, 1, 0, 0, 0, 0);
      else if (name === 'nop') out.push(1);
      else if (name === 'eol') out.push(0);
      else err(at, `unknown TCP option "${name}" (mss=N, sackok, ts, nop, wscale=N, eol)`, 'value');
    }
    while (out.length % 4) out.push(0);
    if (out.length > 40) err(t, `${out.length} bytes of TCP options (at most 40)`, 'value');
    return Uint8Array.from(out);
  };
  const needTcp = (t: Tok): void => {
    if (proto !== IPPROTO_TCP) err(t, `"${t.text}" needs tcp (the protocol is ${pt.text})`);
  };
  const needIcmp = (t: Tok): void => {
    if (!isIcmp) err(t, `"${t.text}" needs ${family === 4 ? 'icmp' : 'icmpv6'} (the protocol is ${pt.text})`);
  };
  const ifname = (t: Tok): string => {
    if (t.text.length >= 16 || t.text === '.' || t.text === '..' || /[/:\s]/.test(t.text)) err(t, `bad interface name "${t.text}"`, 'value');
    return t.text;
  };
  const icmpNames = family === 4 ? ICMP_NAMES : ICMPV6_NAMES;

  while (i < toks.length) {
    const t = toks[i++]!;
    const w = t.text.toLowerCase();
    // TCP flag words, possibly joined with commas
    if (w.split(',').every((f) => TCP_FLAGS.has(f))) {
      needTcp(t);
      if (pos.has('flags') && !pos.has('flag-words')) err(t, 'TCP flags given twice (flags N and flag words)');
      pos.set('flag-words', { line, col: t.col });
      if (!pos.has('flags')) pos.set('flags', { line, col: t.col });
      for (const f of w.split(',')) flagWords |= TCP_FLAGS.get(f)!;
      continue;
    }
    if (isIcmp && icmpNames.has(w)) {
      once('type', t);
      const [ty, co] = icmpNames.get(w)!;
      spec.icmpType = ty;
      if (co >= 0) {
        once('code', t);
        spec.icmpCode = co;
      }
      continue;
    }
    switch (w) {
      case 'flags':
        needTcp(t);
        if (pos.has('flags')) err(t, 'TCP flags given twice');
        once('flags', t);
        flagWords = num(next('a flags value'), 0, 255, 'TCP flags');
        break;
      case 'seq':
        if (proto !== IPPROTO_TCP) needIcmp(t);
        once('seq', t);
        if (isIcmp) spec.icmpSeq = num(next('a sequence number'), 0, 0xffff, 'ICMP sequence');
        else spec.seq = num(next('a sequence number'), 0, 0xffffffff, 'sequence number');
        break;
      case 'ackseq':
        needTcp(t);
        once('ackseq', t);
        spec.ackSeq = num(next('an acknowledgement number'), 0, 0xffffffff, 'acknowledgement number');
        break;
      case 'win':
        needTcp(t);
        once('win', t);
        spec.window = num(next('a window'), 0, 0xffff, 'window');
        break;
      case 'tcpopt':
        needTcp(t);
        once('tcpopt', t);
        spec.tcpOptions = tcpOptions(next('TCP options (mss=N,sackok,ts,nop,wscale=N,eol)'));
        break;
      case 'type':
        needIcmp(t);
        once('type', t);
        spec.icmpType = num(next('an ICMP type'), 0, 255, 'ICMP type');
        break;
      case 'code':
        needIcmp(t);
        once('code', t);
        spec.icmpCode = num(next('an ICMP code'), 0, 255, 'ICMP code');
        break;
      case 'id':
        needIcmp(t);
        once('id', t);
        spec.icmpId = num(next('an ICMP id'), 0, 0xffff, 'ICMP id');
        break;
      case 'ttl':
      case 'hl':
        once('ttl', t);
        spec.ttl = num(next('a TTL'), 0, 255, w === 'ttl' ? 'TTL' : 'hop limit');
        break;
      case 'tos':
        once('tos', t);
        tosByte = num(next('a TOS value'), 0, 255, 'TOS');
        break;
      case 'dscp':
        once('dscp', t);
        dscp = num(next('a DSCP value'), 0, 63, 'DSCP');
        break;
      case 'ecn':
        once('ecn', t);
        ecn = num(next('an ECN value'), 0, 3, 'ECN');
        break;
      case 'ipid':
        once('ipid', t);
        spec.ipId = num(next('an identification'), 0, family === 4 ? 0xffff : 0xffffffff, 'IP identification');
        break;
      case 'df':
        if (family === 6) err(t, '"df" needs IPv4 (IPv6 has no DF bit)');
        once('df', t);
        spec.df = true;
        break;
      case 'mf':
        once('mf', t);
        spec.mf = true;
        break;
      case 'frag': {
        once('frag', t);
        const kw = next('"offset"');
        if (kw.text !== 'offset') err(kw, `expected "offset" after frag, not "${kw.text}"`);
        const ot = next('a fragment offset');
        const off = num(ot, 0, 65528, 'fragment offset');
        if (off % 8 !== 0) err(ot, `fragment offset ${off} is not a multiple of 8`, 'value');
        spec.fragOffset = off;
        break;
      }
      case 'hbh':
      case 'dst': {
        if (family === 4) err(t, `"${w}" (an IPv6 extension header) needs IPv6`);
        let len = 0;
        if (toks[i]?.text === 'len') {
          i++;
          len = num(next('a header length (8-octet units beyond the first)'), 0, 255, 'header length');
        }
        spec.ext.push(optionsHeader(w === 'hbh' ? 0 : 60, len));
        break;
      }
      case 'rt': {
        if (family === 4) err(t, '"rt" (an IPv6 routing header) needs IPv6');
        let type = 0;
        let segsleft = 0;
        const addrs: Uint8Array[] = [];
        if (toks[i]?.text === 'type') {
          i++;
          type = num(next('a routing type'), 0, 255, 'routing type');
        }
        if (toks[i]?.text === 'segsleft') {
          i++;
          segsleft = num(next('a segments-left count'), 0, 255, 'segments left');
        }
        if (toks[i]?.text === 'addrs') {
          i++;
          const at2 = next('IPv6 addresses, separated by commas');
          for (const a of at2.text.split(',')) {
            const v = parseIPv6(a);
            if (!v) return err(at2, `bad IPv6 address "${a}" in the routing header`, 'value');
            addrs.push(v);
          }
          if (addrs.length > 127) err(at2, 'a routing header holds at most 127 addresses', 'value');
        }
        const bytes = new Uint8Array(8 + 16 * addrs.length);
        bytes[1] = 2 * addrs.length;
        bytes[2] = type;
        bytes[3] = segsleft;
        addrs.forEach((a, k) => bytes.set(a, 8 + 16 * k));
        spec.ext.push({ type: 43, bytes });
        break;
      }
      case 'ah': {
        if (family === 4) err(t, '"ah" (an extension header here) needs IPv6');
        let spi = 1;
        if (toks[i]?.text === 'spi') {
          i++;
          spi = num(next('an SPI'), 0, 0xffffffff, 'SPI');
        }
        // RFC 4302: Payload Len in 4-octet units minus 2; a 12-byte ICV of zeros
        const bytes = new Uint8Array(24);
        bytes[1] = 4;
        bytes.set([spi >>> 24, (spi >>> 16) & 255, (spi >>> 8) & 255, spi & 255], 4);
        bytes[11] = 1;
        spec.ext.push({ type: 51, bytes });
        break;
      }
      case 'cscov':
        if (proto !== IPPROTO_UDPLITE) err(t, `"cscov" needs udplite (the protocol is ${pt.text})`);
        once('cscov', t);
        spec.cscov = num(next('a checksum coverage'), 0, 0xffff, 'checksum coverage');
        break;
      case 'spi':
        if (proto !== 50) err(t, `"spi" needs ip proto esp (the protocol is ${pt.text}${pt.text === 'ip' || pt.text === 'ip6' ? ' proto ...' : ''}; an AH SPI goes with "ah")`);
        once('spi', t);
        spec.espSpi = num(next('an SPI'), 0, 0xffffffff, 'SPI');
        break;
      case 'flowlabel':
        if (family === 4) err(t, '"flowlabel" needs IPv6');
        once('flowlabel', t);
        spec.flowLabel = num(next('a flow label'), 0, 0xfffff, 'flow label');
        break;
      case 'len':
        once('len', t);
        spec.payloadLen = num(next('a payload length'), 0, 65000, 'payload length');
        break;
      case 'iif':
        once('iif', t);
        spec.iif = ifname(next('an interface name'));
        break;
      case 'oif':
        once('oif', t);
        spec.oif = ifname(next('an interface name'));
        break;
      case 'mark':
        once('mark', t);
        spec.mark = num(next('a mark'), 0, 0xffffffff, 'mark');
        break;
      case 'uid':
      case 'gid':
        once(w, t);
        spec[w] = num(next(w === 'uid' ? 'a user id' : 'a group id'), 0, 0xfffffffe, w === 'uid' ? 'user id' : 'group id');
        break;
      case 'groups': {
        once('groups', t);
        const g = next('group ids (N[,N]...)');
        const list = g.text.split(',');
        if (list.length > SK_MAX_GROUPS) err(g, `at most ${SK_MAX_GROUPS} supplementary groups`, 'value');
        spec.groups = list.map((x) => num({ text: x, col: g.col }, 0, 0xfffffffe, 'group id'));
        break;
      }
      case 'cgroup': {
        once('cgroup', t);
        const c = next('a cgroup path');
        if (Buffer.byteLength(c.text) >= 4096) err(c, 'a cgroup path is shorter than 4096 bytes (PATH_MAX)', 'value');
        spec.cgroup = cgroupCanonical(c.text);
        break;
      }
      case 'classid':
        once('classid', t);
        spec.classid = num(next('a net_cls class id'), 0, 0xffffffff, 'class id');
        break;
      case 'from': {
        const kw = next('"local"');
        if (kw.text !== 'local') err(kw, `expected "local" after from, not "${kw.text}"`);
        once('from', t);
        spec.fromLocal = true;
        break;
      }
      case 'ct': {
        const kw = next('a conntrack state, "mark" or "reply"');
        const k = kw.text.toLowerCase();
        if (k === 'mark') {
          once('ct mark', t);
          spec.ctMark = num(next('a conntrack mark'), 0, 0xffffffff, 'ct mark');
        } else if (k === 'reply' || k === 'original') {
          once('ct dir', t);
          spec.ctReply = k === 'reply';
        } else if ((CT_STATES as readonly string[]).includes(k)) {
          once('ct', t);
          spec.ct = k as CtState;
        } else {
          const s = suggest(k, [...CT_STATES, 'mark', 'reply', 'original']);
          err(kw, `unknown conntrack state "${kw.text}" (expected ${CT_STATES.join('|')}, mark or reply)` + (s ? ` (did you mean ${s}?)` : ''), 'value');
        }
        break;
      }
      case 'src-mac':
      case 'dst-mac': {
        once(w, t);
        const mt = next('a MAC address');
        const mac = parseMac(mt.text);
        if (!mac) err(mt, `bad MAC address "${mt.text}"`, 'value');
        if (w === 'src-mac') spec.srcMac = mac;
        else spec.dstMac = mac;
        break;
      }
      case 'vlan':
        once('vlan', t);
        spec.vlan = num(next('a VLAN id'), 0, 4095, 'VLAN id');
        break;
      default: {
        if (w === '>') err(t, 'unexpected ">" (one source and one destination only)');
        const s = suggest(w, [...WORDS, ...(isIcmp ? icmpNames.keys() : [])]);
        err(t, `unknown word "${t.text}"` + (s ? ` (did you mean ${s}?)` : ''));
      }
    }
  }

  // Cross-clause checks and defaults.
  const at = (key: string): Tok => ({ text: key, col: pos.get(key)?.col ?? 1 });
  if (tosByte >= 0 && (dscp >= 0 || ecn >= 0)) err(at(dscp >= 0 ? 'dscp' : 'ecn'), 'tos and dscp/ecn both set the same byte');
  spec.tos = tosByte >= 0 ? tosByte : ((dscp < 0 ? 0 : dscp) << 2) | (ecn < 0 ? 0 : ecn);
  const nonFirst = spec.fragOffset > 0;
  if (nonFirst) {
    for (const k of ['sport', 'dport', 'flags', 'seq', 'ackseq', 'win', 'tcpopt', 'type', 'code', 'id']) {
      if (pos.has(k)) err(at(k), `a non-first fragment (offset ${spec.fragOffset}) has no transport header for "${k}"`);
    }
  }
  if (!spec.fromLocal) {
    for (const k of ['uid', 'gid', 'groups', 'cgroup', 'classid']) if (pos.has(k)) err(at(k), `"${k}" is the sending socket's: it needs "from local"`);
  }
  if (spec.fromLocal) {
    if (spec.iif) err(at('iif'), 'a locally generated packet (from local) has no input interface');
    for (const k of ['src-mac', 'dst-mac', 'vlan']) if (pos.has(k)) err(at(k), `a locally generated packet (from local) has no link-layer header for "${k}"`);
  }
  if ((pos.has('ct mark') || spec.ctReply) && (spec.ct === '' || spec.ct === 'invalid' || spec.ct === 'untracked')) {
    err(at(pos.has('ct mark') ? 'ct mark' : 'ct dir'), 'ct mark and ct reply need a tracked connection (ct new|established|related)');
  }
  if (spec.ctReply && spec.ct === 'new') err(at('ct dir'), 'a new connection has no reply direction yet');
  if (!nonFirst) {
    if (hasPorts) {
      spec.sport = src.port >= 0 ? src.port : 40000;
      spec.dport = dst.port >= 0 ? dst.port : 80;
    }
    if (proto === IPPROTO_TCP) {
      spec.tcpFlags = pos.has('flags') ? flagWords : spec.ct === 'established' || spec.ct === 'related' ? 0x10 : 0x02;
      if (spec.seq < 0) spec.seq = 1;
      if (spec.ackSeq < 0) spec.ackSeq = spec.tcpFlags & 0x10 ? 1 : 0;
      if (spec.window < 0) spec.window = 64240;
    }
    if (isIcmp) {
      if (spec.icmpType < 0) spec.icmpType = family === 4 ? 8 : 128;
      if (spec.icmpCode < 0) spec.icmpCode = 0;
      if (spec.icmpId < 0) spec.icmpId = 1;
      if (spec.icmpSeq < 0) spec.icmpSeq = 1;
    }
  }
  if (spec.payloadLen < 0) spec.payloadLen = nonFirst ? 8 : 0;
  if (spec.espSpi >= 0 && !nonFirst && spec.payloadLen < 8) spec.payloadLen = 8;
  if (spec.mf && spec.fragOffset < 0) spec.fragOffset = 0;
  return spec;
}

// ---------------------------------------------------------------------------
// Encoding

/** Internet checksum (RFC 1071) of `d[from, to)` added to `sum`, not folded. */
function sum16(d: Uint8Array, from: number, to: number, sum: number): number {
  let s = sum;
  let p = from;
  for (; p + 1 < to; p += 2) s += (d[p]! << 8) | d[p + 1]!;
  if (p < to) s += d[p]! << 8;
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return ~x & 0xffff;
}

/** The ones'-complement checksum of `d[from, to)` (plus an initial partial sum). */
export function inetChecksum(d: Uint8Array, from = 0, to = d.length, initial = 0): number {
  return fold(sum16(d, from, to, initial));
}

/** The pseudo-header sum for a transport checksum (RFC 768/793, RFC 8200 §8.1). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, proto: number, len: number): number {
  let s = sum16(src, 0, src.length, 0);
  s = sum16(dst, 0, dst.length, s);
  return s + proto + (len >>> 16) + (len & 0xffff);
}

let crcTable: Uint32Array | undefined;

/** CRC32c (Castagnoli), as SCTP uses it (RFC 9260 appendix A). */
export function crc32c(d: Uint8Array, from = 0, to = d.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = crcTable[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface EncodedSpec {
  /** The frame bytes. */
  data: Uint8Array;
  /** LINKTYPE_ETHERNET or LINKTYPE_RAW. */
  linktype: number;
  /** Offset of the network header in `data`. */
  nhoff: number;
}

/** True when the spec's frame has an Ethernet header. */
export function specHasEthernet(s: PacketSpec): boolean {
  return s.iif !== '' || s.srcMac !== undefined || s.dstMac !== undefined || s.vlan >= 0;
}

/** Encodes a spec to frame bytes with every checksum filled in. */
export function encodeSpec(s: PacketSpec): EncodedSpec {
  const eth = specHasEthernet(s);
  const nonFirst = s.fragOffset > 0;
  const v4 = s.family === 4;
  const l2 = eth ? 14 + (s.vlan >= 0 ? 4 : 0) : 0;
  const ipHdr = v4 ? 20 : 40;
  const fragHdr = !v4 && s.fragOffset >= 0 ? 8 : 0;
  let extLen = 0;
  for (const e of s.ext) extLen += e.bytes.length;
  const isIcmp = s.proto === (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  let l4 = 0;
  if (!nonFirst) {
    if (s.proto === IPPROTO_TCP) l4 = 20 + s.tcpOptions.length;
    else if (s.proto === IPPROTO_UDP || s.proto === IPPROTO_UDPLITE) l4 = 8;
    else if (s.proto === IPPROTO_SCTP) l4 = 12;
    else if (isIcmp) l4 = 8;
  }
  const l3len = ipHdr + extLen + fragHdr + l4 + s.payloadLen;
  if (l3len > 0xffff + (v4 ? 0 : 40)) throw new RangeError(`packet of ${l3len} bytes is too long`);
  const d = new Uint8Array(l2 + l3len);
  let p = 0;
  if (eth) {
    d.set(s.dstMac ?? [2, 0, 0, 0, 0, 2], 0);
    d.set(s.srcMac ?? [2, 0, 0, 0, 0, 1], 6);
    p = 12;
    if (s.vlan >= 0) {
      d[p++] = 0x81; d[p++] = 0x00;
      d[p++] = s.vlan >> 8; d[p++] = s.vlan & 0xff;
    }
    const et = v4 ? 0x0800 : 0x86dd;
    d[p++] = et >> 8; d[p++] = et & 0xff;
  }
  const nh = p;
  const th = nh + ipHdr + extLen + fragHdr;
  const put16 = (at: number, v: number): void => {
    d[at] = (v >>> 8) & 0xff;
    d[at + 1] = v & 0xff;
  };
  const put32 = (at: number, v: number): void => {
    put16(at, v >>> 16);
    put16(at + 2, v & 0xffff);
  };
  if (v4) {
    d[nh] = 0x45;
    d[nh + 1] = s.tos;
    put16(nh + 2, l3len);
    put16(nh + 4, s.ipId);
    put16(nh + 6, (s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) | (s.fragOffset > 0 ? s.fragOffset >>> 3 : 0));
    d[nh + 8] = s.ttl;
    d[nh + 9] = s.proto;
    d.set(s.src, nh + 12);
    d.set(s.dst, nh + 16);
    put16(nh + 10, inetChecksum(d, nh, nh + 20));
  } else {
    put32(nh, (6 << 28) | (s.tos << 20) | s.flowLabel);
    put16(nh + 4, l3len - 40);
    const afterExt = fragHdr ? 44 : s.proto;
    d[nh + 6] = s.ext.length ? s.ext[0]!.type : afterExt;
    d[nh + 7] = s.ttl;
    d.set(s.src, nh + 8);
    d.set(s.dst, nh + 24);
    let eh = nh + 40;
    s.ext.forEach((e, k) => {
      d.set(e.bytes, eh);
      d[eh] = k + 1 < s.ext.length ? s.ext[k + 1]!.type : afterExt;
      eh += e.bytes.length;
    });
    if (fragHdr) {
      const fh = eh;
      d[fh] = s.proto;
      put16(fh + 2, (s.fragOffset & 0xfff8) | (s.mf ? 1 : 0));
      put32(fh + 4, s.ipId);
    }
  }
  // Payload bytes: a deterministic pattern, so that checksums see non-zero data.
  for (let i = th + l4; i < d.length; i++) d[i] = (i - th - l4) & 0xff;
  if (s.espSpi >= 0 && !nonFirst) {
    put32(th, s.espSpi);
    put32(th + 4, 1);
  }
  if (!nonFirst) {
    const l4len = l4 + s.payloadLen;
    const pseudo = pseudoHeaderSum(s.src, s.dst, s.proto, l4len);
    if (s.proto === IPPROTO_TCP) {
      put16(th, s.sport);
      put16(th + 2, s.dport);
      put32(th + 4, s.seq);
      put32(th + 8, s.ackSeq);
      d[th + 12] = (5 + s.tcpOptions.length / 4) << 4;
      d[th + 13] = s.tcpFlags;
      put16(th + 14, s.window);
      d.set(s.tcpOptions, th + 20);
      put16(th + 16, inetChecksum(d, th, th + l4len, pseudo));
    } else if (s.proto === IPPROTO_UDP) {
      put16(th, s.sport);
      put16(th + 2, s.dport);
      put16(th + 4, l4len);
      put16(th + 6, inetChecksum(d, th, th + l4len, pseudo) || 0xffff);
    } else if (s.proto === IPPROTO_UDPLITE) {
      // RFC 3828: the length field is the checksum coverage (0: all), the pseudo-header has the whole length
      put16(th, s.sport);
      put16(th + 2, s.dport);
      put16(th + 4, s.cscov);
      const cov = s.cscov === 0 || s.cscov > l4len ? l4len : Math.max(s.cscov, 8);
      put16(th + 6, inetChecksum(d, th, th + cov, pseudo) || 0xffff);
    } else if (s.proto === IPPROTO_SCTP) {
      put16(th, s.sport);
      put16(th + 2, s.dport);
      put32(th + 4, 1); // verification tag
      const c = crc32c(d, th, th + l4len);
      // The CRC32c is stored in little-endian byte order (RFC 9260 appendix A).
      d[th + 8] = c & 0xff; d[th + 9] = (c >>> 8) & 0xff; d[th + 10] = (c >>> 16) & 0xff; d[th + 11] = c >>> 24;
    } else if (isIcmp) {
      d[th] = s.icmpType;
      d[th + 1] = s.icmpCode;
      const echo = v4 ? s.icmpType === 0 || s.icmpType === 8 : s.icmpType === 128 || s.icmpType === 129;
      if (echo) {
        put16(th + 4, s.icmpId);
        put16(th + 6, s.icmpSeq);
      }
      // ICMPv4 has no pseudo-header; ICMPv6 does.
      put16(th + 2, inetChecksum(d, th, th + l4len, v4 ? 0 : pseudo));
    }
  }
  return { data: d, linktype: eth ? LINKTYPE_ETHERNET : LINKTYPE_RAW, nhoff: nh };
}

export interface SpecPacketOptions {
  /** ifindex for an interface name; default: 1 for lo, else 2 for the iif and 3 for a different oif. */
  ifindex?: (name: string, dir: 'in' | 'out') => number;
  /** Packet buffer to fill; default a new one. */
  packet?: Packet;
}

/**
 * The spec as the VM's Packet: frame bytes, decodePacket(), devices, mark and
 * the conntrack fields (state bits, mark, direction, status).
 */
export function specPacket(s: PacketSpec, o: SpecPacketOptions = {}): Packet {
  const enc = encodeSpec(s);
  const pkt = o.packet ?? new Packet(Math.max(4096, enc.data.length));
  pkt.setFrame(enc.data);
  decodePacket(pkt, enc.linktype);
  const ifx = o.ifindex ?? ((name: string, dir: 'in' | 'out') => (name === 'lo' ? 1 : dir === 'in' || name === s.iif ? 2 : 3));
  setDevice(pkt, 'in', s.iif ? ifx(s.iif, 'in') : 0, s.iif);
  setDevice(pkt, 'out', s.oif ? ifx(s.oif, 'out') : 0, s.oif);
  const m = pkt.meta;
  m[M_MARK] = s.mark | 0;
  // a program's socket (a file with its credentials); a received packet has none
  setSocket(pkt, s.fromLocal ? SK_FILE : SK_NONE, s.uid, s.gid, s.groups, s.fromLocal ? cgroupId(s.cgroup) : 0, s.fromLocal ? s.classid : 0);
  switch (s.ct) {
    case 'new':
      m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
      m[M_CT_STATUS] = 0;
      break;
    case 'established':
      m[M_CT_STATE] = NF_CT_STATE_ESTABLISHED_BIT;
      m[M_CT_STATUS] = IPS_SEEN_REPLY | IPS_CONFIRMED;
      break;
    case 'related':
      m[M_CT_STATE] = NF_CT_STATE_RELATED_BIT;
      m[M_CT_STATUS] = IPS_EXPECTED | IPS_CONFIRMED;
      break;
    case 'invalid':
      m[M_CT_STATE] = NF_CT_STATE_INVALID_BIT;
      break;
    case 'untracked':
      m[M_CT_STATE] = NF_CT_STATE_UNTRACKED_BIT;
      break;
    default:
      m[M_CT_STATE] = 0;
  }
  const tracked = s.ct === 'new' || s.ct === 'established' || s.ct === 'related';
  m[M_CT_DIR] = tracked ? (s.ctReply ? 1 : 0) : -1;
  m[M_CT_MARK] = tracked && s.ctMark >= 0 ? s.ctMark | 0 : 0;
  return pkt;
}

/**
 * The answer to a packet, as a spec (without where it arrives): the
 * addresses and ports swapped; TCP answers a SYN with SYN,ACK (seq 1000000,
 * ackseq the SYN's seq + 1) and anything else with an ACK of what it
 * carried; UDP and other protocols carry nothing; ICMP and ICMPv6 echo
 * requests get their echo reply (same id and seq). undefined for what has
 * no answer (ICMP other than echo, a TCP RST, a non-first fragment, a
 * header cut short).
 */
export function replySpec(pkt: Packet): string | undefined {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  const v4 = d[nh]! >> 4 === 4;
  if (nh + (v4 ? 20 : 40) > end) return undefined;
  const u16 = (o: number) => (d[o]! << 8) | d[o + 1]!;
  const u32 = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  let src: string, dst: string, proto: number, th: number;
  if (v4) {
    if (u16(nh + 6) & 0x1fff) return undefined;
    src = formatIPv4(d, nh + 12);
    dst = formatIPv4(d, nh + 16);
    proto = d[nh + 9]!;
    th = nh + (d[nh]! & 15) * 4;
  } else {
    src = formatIPv6(d.subarray(nh + 8, nh + 24));
    dst = formatIPv6(d.subarray(nh + 24, nh + 40));
    proto = d[nh + 6]!;
    th = nh + 40;
  }
  const ep = (a: string, port?: number) => (port !== undefined ? hostPort(a, port) : v4 ? a : `[${a}]`);
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) {
    if (th + (proto === IPPROTO_TCP ? 20 : 8) > end) return undefined;
    const head = `${proto === IPPROTO_TCP ? 'tcp' : proto === IPPROTO_UDP ? 'udp' : 'sctp'} ${ep(dst, u16(th + 2))} > ${ep(src, u16(th))}`;
    if (proto !== IPPROTO_TCP) return head;
    const flags = d[th + 13]!;
    if (flags & 0x04) return undefined;
    const seq = u32(th + 4);
    if (flags & 0x02 && !(flags & 0x10)) return `${head} syn,ack seq 1000000 ackseq ${(seq + 1) >>> 0}`;
    const len = end - th - (d[th + 12]! >> 4) * 4;
    return `${head} ack seq ${u32(th + 8)} ackseq ${(seq + Math.max(0, len) + (flags & 0x01 ? 1 : 0)) >>> 0}`;
  }
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    if (th + 8 > end || d[th] !== (proto === IPPROTO_ICMP ? 8 : 128)) return undefined;
    return `${proto === IPPROTO_ICMP ? 'icmp' : 'icmpv6'} ${ep(dst)} > ${ep(src)} echo-reply id ${u16(th + 4)} seq ${u16(th + 6)}`;
  }
  return `ip proto ${proto} ${ep(dst)} > ${ep(src)}`;
}
