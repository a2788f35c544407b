/**
 * `ipvsadm-save -n` text (= `ipvsadm -S -n`): the IPVS virtual services and
 * their real servers, parsed into the configuration the node runs, and
 * printed back the way ipvsadm prints it.
 *
 * Mirrors ipvsadm 1.31 ipvsadm.c (parse_options, print_service_entry with
 * FMT_RULE, fwd_switch, print_sched_flags) and the checks the kernel applies
 * when the text is restored with `ipvsadm -R` (Linux 6.18
 * net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_add_service, ip_vs_add_dest,
 * ip_vs_check_uaddr / the netmask check of ip_vs_genl_parse_service).
 *
 * Line shapes:
 *   -A -t|-u|--sctp-service VIP:PORT -s SCHED [-p [T] [-M MASK]] [-b FLAGS] [-o|ops]
 *   -A -f MARK [-6] -s SCHED ...
 *   -a -t|-u|-f ... -r RS[:PORT] -g|-m|-i [-w W] [-x U] [-y L]
 * IPv6 addresses are bracketed: `[2001:db8::1]:80`.
 */
import { NfvmError, type ErrorKind } from '../../core/errors.js';
import { formatIPv4, formatIPv6, maskToCidr, parseIPv4, parseIPv6, prefixMask } from '../../core/addr.js';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

/** include/uapi/linux/ip_vs.h IP_VS_CONN_F_* forwarding methods. */
export const IP_VS_CONN_F_MASQ = 0x0000;
export const IP_VS_CONN_F_LOCALNODE = 0x0001;
export const IP_VS_CONN_F_TUNNEL = 0x0002;
export const IP_VS_CONN_F_DROUTE = 0x0003;
export const IP_VS_CONN_F_FWD_MASK = 0x0007;

/** include/uapi/linux/ip_vs.h IP_VS_SVC_F_* service flags. */
export const IP_VS_SVC_F_PERSISTENT = 0x0001;
export const IP_VS_SVC_F_HASHED = 0x0002;
export const IP_VS_SVC_F_ONEPACKET = 0x0004;
export const IP_VS_SVC_F_SCHED1 = 0x0008;
export const IP_VS_SVC_F_SCHED2 = 0x0010;
export const IP_VS_SVC_F_SCHED3 = 0x0020;

/** ipvsadm DEF_PERSISTENCE_TIMEOUT (seconds) for a bare `-p`. */
export const DEF_PERSISTENCE_TIMEOUT = 300;

/** The schedulers of Linux 6.18 net/netfilter/ipvs (ip_vs_<name>.c) nfvm runs. */
export const SCHEDULER_NAMES: readonly string[] = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'dh', 'mh', 'sed', 'nq', 'fo', 'ovf', 'lblc', 'lblcr'];

export interface IpvsDestConf {
  /** 4 or 16 bytes, network order. */
  readonly addr: Uint8Array;
  readonly port: number;
  /** IP_VS_CONN_F_MASQ / _TUNNEL / _DROUTE. */
  readonly fwd: number;
  readonly weight: number;
  /** -x / -y connection thresholds (0 = none). */
  readonly uThreshold: number;
  readonly lThreshold: number;
  /** 1-based line of the `-a` in the file. */
  readonly line: number;
}

export interface IpvsServiceConf {
  readonly family: 4 | 6;
  /** IPPROTO_TCP/UDP/SCTP, 0 for a fwmark service. */
  readonly protocol: number;
  readonly addr: Uint8Array;
  readonly port: number;
  /** Firewall mark of a `-f` service, 0 otherwise. */
  readonly fwmark: number;
  readonly sched: string;
  /** IP_VS_SVC_F_* (PERSISTENT, ONEPACKET, SCHED1..3). */
  readonly flags: number;
  /** Persistence timeout in seconds (meaningful with IP_VS_SVC_F_PERSISTENT). */
  readonly timeout: number;
  /** Persistence granularity mask, 4 or 16 bytes. */
  readonly netmask: Uint8Array;
  /** Real servers in file order; the kernel's list is the reverse (see ipvsDestList). */
  readonly dests: IpvsDestConf[];
  readonly line: number;
}

export interface IpvsConfig {
  readonly file: string;
  readonly services: readonly IpvsServiceConf[];
}

/** The `-b` names of IP_VS_SVC_F_SCHED1..3 per scheduler (ipvsadm parse_sched_flags). */
const SCHED_FLAG_NAMES: ReadonlyMap<string, readonly string[]> = new Map([
  ['sh', ['sh-fallback', 'sh-port', '']],
  ['mh', ['mh-fallback', 'mh-port', '']],
]);
const GENERIC_FLAG_NAMES = ['flag-1', 'flag-2', 'flag-3'];

interface Tok { readonly text: string; readonly col: number }

function tokenize(line: string): Tok[] {
  const out: Tok[] = [];
  const re = /\S+/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push({ text: m[0], col: m.index + 1 });
  return out;
}

/** A service key: what the kernel hashes services by (ip_vs_svc_hashkey / ip_vs_svc_fwm_hashkey). */
export function serviceKey(s: Pick<IpvsServiceConf, 'family' | 'protocol' | 'addr' | 'port' | 'fwmark'>): string {
  return s.fwmark ? `f${s.family}:${s.fwmark}` : `${s.protocol}:${addrPort(s.family, s.addr, s.port)}`;
}

/** ipvsadm's addrport_to_anyname with FMT_NUMERIC: `a.b.c.d:p`, `[v6]:p`. */
export function addrPort(family: 4 | 6, addr: Uint8Array, port: number): string {
  return family === 4 ? `${formatIPv4(addr)}:${port}` : `[${formatIPv6(addr)}]:${port}`;
}

/** Parses `ipvsadm-save -n` text; every problem is a located NfvmError. */
export function parseIpvsadmSave(text: string, file: string): IpvsConfig {
  const services: IpvsServiceConf[] = [];
  const byKey = new Map<string, IpvsServiceConf>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const toks = tokenize(raw);
    const err = (kind: ErrorKind, reason: string, t: Tok | undefined): never => {
      throw new NfvmError(kind, reason, file, { line: lineNo, col: t ? t.col : raw.length + 1 }, t?.text);
    };
    const cmd = toks[0]!;
    if (cmd.text !== '-A' && cmd.text !== '--add-service' && cmd.text !== '-a' && cmd.text !== '--add-server') {
      err('syntax', `expected -A or -a, found "${cmd.text}"`, cmd);
    }
    const isService = cmd.text === '-A' || cmd.text === '--add-service';
    let family: 4 | 6 = 4;
    let protocol = -1;
    let addr: Uint8Array | undefined;
    let port = 0;
    let fwmark = 0;
    let svcTok: Tok | undefined;
    let sched: string | undefined;
    let flags = 0;
    let timeout = 0;
    let netmaskTok: Tok | undefined;
    let schedFlagsTok: Tok | undefined;
    let rs: { addr: Uint8Array; port: number; family: 4 | 6 } | undefined;
    let rsTok: Tok | undefined;
    let fwd = -1;
    let weight = 1;
    let uThr = 0;
    let lThr = 0;
    let v6flag = false;
    const seen = new Set<string>();
    let k = 1;
    const value = (opt: Tok): Tok => {
      const v = toks[k++];
      if (!v) return err('option', `option "${opt.text}" requires a value`, undefined);
      return v;
    };
    const num = (opt: Tok, min: number, max: number): number => {
      const v = value(opt);
      if (!/^[0-9]+$/.test(v.text) || Number(v.text) < min || Number(v.text) > max) {
        return err('value', `bad value "${v.text}" for ${opt.text} (${min}..${max})`, v);
      }
      return Number(v.text);
    };
    while (k < toks.length) {
      const t = toks[k++]!;
      const o = canonical(t.text);
      if (o === undefined) err('option', `unknown option "${t.text}"`, t);
      if (seen.has(o!)) err('option', `option "${t.text}" given twice`, t);
      seen.add(o!);
      switch (o) {
        case '-t': case '-u': case '--sctp-service': {
          if (seen.has('-f') || protocol >= 0) err('option', 'more than one service given', t);
          protocol = o === '-t' ? IPPROTO_TCP : o === '-u' ? IPPROTO_UDP : IPPROTO_SCTP;
          svcTok = value(t);
          const ap = parseAddrPort(svcTok.text, true);
          if (!ap || ap.port === 0) err('value', `bad service address "${svcTok.text}"`, svcTok);
          family = ap!.family; addr = ap!.addr; port = ap!.port;
          break;
        }
        case '-f': {
          if (protocol >= 0) err('option', 'more than one service given', t);
          // ip_vs_ctl.c: a fwmark service has fwmark != 0 (ip_vs_add_service refuses 0 with no address).
          fwmark = num(t, 1, 0xffffffff);
          svcTok = t;
          protocol = 0;
          break;
        }
        case '-6': v6flag = true; break;
        case '-s': {
          if (!isService) err('option', `option "${t.text}" belongs to -A`, t);
          const v = value(t);
          // ip_vs_scheduler_get(): an unknown name is -ENOENT ("Scheduler not found").
          if (!SCHEDULER_NAMES.includes(v.text)) err('check', `unknown scheduler "${v.text}"`, v);
          sched = v.text;
          break;
        }
        case '-p': {
          if (!isService) err('option', `option "${t.text}" belongs to -A`, t);
          flags |= IP_VS_SVC_F_PERSISTENT;
          timeout = DEF_PERSISTENCE_TIMEOUT;
          const nx = toks[k];
          if (nx && !nx.text.startsWith('-') && nx.text !== 'ops' && nx.text !== 'pe') {
            // ipvsadm: string_to_number(optarg, 1, 86400*31)
            timeout = num(t, 1, 86400 * 31);
          }
          break;
        }
        case '-M': if (!isService) err('option', `option "${t.text}" belongs to -A`, t); netmaskTok = value(t); break;
        case '-b': if (!isService) err('option', `option "${t.text}" belongs to -A`, t); schedFlagsTok = value(t); break;
        case '-o': if (!isService) err('option', `option "${t.text}" belongs to -A`, t); flags |= IP_VS_SVC_F_ONEPACKET; break;
        case '-r': {
          if (isService) err('option', `option "${t.text}" belongs to -a`, t);
          const v = value(t);
          const ap = parseAddrPort(v.text, false);
          if (!ap) err('value', `bad real server address "${v.text}"`, v);
          rs = ap!;
          rsTok = v;
          break;
        }
        case '-g': case '-m': case '-i': {
          if (isService) err('option', `option "${t.text}" belongs to -a`, t);
          if (fwd >= 0) err('option', 'more than one forwarding method given', t);
          fwd = o === '-g' ? IP_VS_CONN_F_DROUTE : o === '-m' ? IP_VS_CONN_F_MASQ : IP_VS_CONN_F_TUNNEL;
          break;
        }
        // ipvsadm: weight string_to_number(optarg, 0, 65535); thresholds 0..INT_MAX.
        case '-w': if (isService) err('option', `option "${t.text}" belongs to -a`, t); weight = num(t, 0, 65535); break;
        case '-x': if (isService) err('option', `option "${t.text}" belongs to -a`, t); uThr = num(t, 0, 2147483647); break;
        case '-y': if (isService) err('option', `option "${t.text}" belongs to -a`, t); lThr = num(t, 0, 2147483647); break;
      }
    }
    if (!svcTok) err('option', 'no service given (-t, -u, --sctp-service or -f)', undefined);
    if (fwmark) {
      family = v6flag ? 6 : 4;
      addr = new Uint8Array(family === 4 ? 4 : 16);
    } else if (v6flag && family !== 6) {
      err('option', '-6 goes with a fwmark service only', svcTok);
    }
    const key = serviceKey({ family, protocol, addr: addr!, port, fwmark });
    if (isService) {
      if (!sched) sched = 'wlc'; // ipvsadm DEF_SCHED
      let netmask = prefixMask(family === 4 ? 32 : 128, family === 4 ? 4 : 16);
      if (netmaskTok) {
        if (!(flags & IP_VS_SVC_F_PERSISTENT)) err('option', '-M needs -p', netmaskTok);
        if (family === 4) {
          const m = parseIPv4(netmaskTok.text);
          if (!m) err('value', `bad netmask "${netmaskTok.text}"`, netmaskTok);
          netmask = m!;
        } else {
          // ip_vs_ctl.c: an IPv6 netmask is a prefix length 1..128.
          if (!/^[0-9]+$/.test(netmaskTok.text) || Number(netmaskTok.text) < 1 || Number(netmaskTok.text) > 128) {
            err('value', `bad IPv6 prefix length "${netmaskTok.text}"`, netmaskTok);
          }
          netmask = prefixMask(Number(netmaskTok.text), 16);
        }
      }
      if (schedFlagsTok) flags |= parseSchedFlags(schedFlagsTok, sched, err);
      if (byKey.has(key)) err('check', `service ${svcTok!.text} already exists (line ${byKey.get(key)!.line})`, svcTok); // -EEXIST
      const svc: IpvsServiceConf = { family, protocol, addr: addr!, port, fwmark, sched, flags, timeout, netmask, dests: [], line: lineNo };
      byKey.set(key, svc);
      services.push(svc);
    } else {
      const svc = byKey.get(key);
      if (!svc) err('check', `no such service ${fwmark ? `-f ${fwmark}` : svcTok!.text}`, svcTok); // -ESRCH
      if (!rs) err('option', 'no real server given (-r)', undefined);
      // ip_vs_ctl.c ip_vs_add_dest: the dest family must match (mixed families only with tunnelling).
      if (rs!.family !== svc!.family && fwd !== IP_VS_CONN_F_TUNNEL) err('check', 'real server address family differs from the service', rsTok);
      if (fwd < 0) fwd = IP_VS_CONN_F_DROUTE; // ipvsadm's default: gatewaying
      // ipvsadm: without a port, or with a non-NAT method, the real server port is the service port.
      let rport = rs!.port;
      if (rport === 0 || fwd !== IP_VS_CONN_F_MASQ) rport = svc!.port;
      for (const d of svc!.dests) {
        if (d.port === rport && bytesEqual(d.addr, rs!.addr)) err('check', `real server ${rsTok!.text} already exists (line ${d.line})`, rsTok); // -EEXIST
      }
      svc!.dests.push({ addr: rs!.addr, port: rport, fwd, weight, uThreshold: uThr, lThreshold: lThr, line: lineNo });
    }
  }
  return { file, services };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const ALIASES: ReadonlyMap<string, string> = new Map([
  ['-t', '-t'], ['--tcp-service', '-t'], ['-u', '-u'], ['--udp-service', '-u'], ['--sctp-service', '--sctp-service'],
  ['-f', '-f'], ['--fwmark-service', '-f'], ['-6', '-6'], ['--ipv6', '-6'],
  ['-s', '-s'], ['--scheduler', '-s'], ['-p', '-p'], ['--persistent', '-p'], ['-M', '-M'], ['--netmask', '-M'],
  ['-b', '-b'], ['--sched-flags', '-b'], ['-o', '-o'], ['--ops', '-o'], ['ops', '-o'],
  ['-r', '-r'], ['--real-server', '-r'], ['-g', '-g'], ['--gatewaying', '-g'], ['-m', '-m'], ['--masquerading', '-m'],
  ['-i', '-i'], ['--ipip', '-i'], ['-w', '-w'], ['--weight', '-w'], ['-x', '-x'], ['--u-threshold', '-x'], ['-y', '-y'], ['--l-threshold', '-y'],
]);

function canonical(s: string): string | undefined {
  return ALIASES.get(s);
}

function parseSchedFlags(t: Tok, sched: string, err: (k: ErrorKind, r: string, t: Tok) => never): number {
  const names = SCHED_FLAG_NAMES.get(sched);
  let f = 0;
  for (const n of t.text.split(',')) {
    let i = GENERIC_FLAG_NAMES.indexOf(n);
    if (i < 0 && names) i = names.indexOf(n);
    if (i < 0 || n === '') err('value', `unknown scheduler flag "${n}" for ${sched}`, t);
    f |= IP_VS_SVC_F_SCHED1 << i;
  }
  return f;
}

/** `a.b.c.d[:port]` or `[v6][:port]`; the port is required for a service. */
function parseAddrPort(s: string, needPort: boolean): { family: 4 | 6; addr: Uint8Array; port: number } | undefined {
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return undefined;
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
    const a = parseIPv6(host);
    if (!a) return undefined;
    return withPort(6, a, portText, needPort);
  }
  const c = s.indexOf(':');
  host = c < 0 ? s : s.slice(0, c);
  portText = c < 0 ? undefined : s.slice(c + 1);
  const a = parseIPv4(host);
  if (!a) return undefined;
  return withPort(4, a, portText, needPort);
}

function withPort(family: 4 | 6, addr: Uint8Array, portText: string | undefined, needPort: boolean) {
  if (portText === undefined) return needPort ? undefined : { family, addr, port: 0 };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) return undefined;
  return { family, addr, port: Number(portText) };
}

/** ipvsadm fwd_switch(). */
export function fwdSwitch(fwd: number): string {
  switch (fwd & IP_VS_CONN_F_FWD_MASK) {
    case IP_VS_CONN_F_MASQ: return '-m';
    case IP_VS_CONN_F_TUNNEL: return '-i';
    default: return '-g';
  }
}

/** The `-A`/`-f` service part of a line (ipvsadm's svc_name with FMT_RULE). */
export function serviceName(s: IpvsServiceConf): string {
  if (s.fwmark) return s.family === 6 ? `-f ${s.fwmark} -6` : `-f ${s.fwmark}`;
  const p = s.protocol === IPPROTO_TCP ? '-t' : s.protocol === IPPROTO_UDP ? '-u' : '--sctp-service';
  return `${p} ${addrPort(s.family, s.addr, s.port)}`;
}

/**
 * Prints as `ipvsadm-save -n` does: services in ipvs_cmp_services order,
 * real servers in ipvs_cmp_dests order (ipvsadm sorts unless -L --nosort).
 */
export function formatIpvsadmSave(cfg: IpvsConfig): string {
  let out = '';
  for (const s of sortedServices(cfg.services)) {
    out += `-A ${serviceName(s)} -s ${s.sched}`;
    if (s.flags & IP_VS_SVC_F_PERSISTENT) {
      out += ` -p ${s.timeout}`;
      if (s.family === 4) {
        if (!(s.netmask[0] === 255 && s.netmask[1] === 255 && s.netmask[2] === 255 && s.netmask[3] === 255)) out += ` -M ${formatIPv4(s.netmask)}`;
      } else {
        const len = maskToCidr(s.netmask);
        if (len !== 128) out += ` -M ${len}`;
      }
    }
    const sf = s.flags & (IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3);
    if (sf) {
      const names = SCHED_FLAG_NAMES.get(s.sched);
      const parts: string[] = [];
      for (let i = 0; i < 3; i++) if (sf & (IP_VS_SVC_F_SCHED1 << i)) parts.push(names?.[i] || GENERIC_FLAG_NAMES[i]!);
      out += ` -b ${parts.join(',')}`;
    }
    if (s.flags & IP_VS_SVC_F_ONEPACKET) out += ' ops';
    out += '\n';
    for (const d of sortedDests(s.dests)) {
      out += `-a ${serviceName(s)} -r ${addrPort(d.addr.length === 4 ? 4 : 6, d.addr, d.port)} ${fwdSwitch(d.fwd)} -w ${d.weight}`;
      if (d.uThreshold) out += ` -x ${d.uThreshold}`;
      if (d.lThreshold) out += ` -y ${d.lThreshold}`;
      out += '\n';
    }
  }
  return out;
}

/**
 * libipvs ipvs_cmp_services / ipvs_cmp_dests compare addresses as
 * `r = ntohl(a) - ntohl(b)` into an int: the unsigned difference wraps, so
 * 200.0.0.1 sorts before 10.0.0.1 (0xbe000000 is negative). Kept as ipvsadm has it.
 */
function cmpAddr(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i += 4) {
    const x = ((a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!) >>> 0;
    const y = ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
    const r = (x - y) | 0;
    if (r !== 0) return r;
  }
  return 0;
}

const afOf = (len: number) => (len === 4 ? 2 : 10); // AF_INET, AF_INET6

/** libipvs ipvs_cmp_services: fwmark, af, protocol, address, port. */
export function sortedServices(list: readonly IpvsServiceConf[]): IpvsServiceConf[] {
  return [...list].sort((a, b) => ((a.fwmark - b.fwmark) | 0) || (afOf(a.addr.length) - afOf(b.addr.length)) || (a.protocol - b.protocol) || cmpAddr(a.addr, b.addr) || (a.port - b.port));
}

/** libipvs ipvs_cmp_dests: af, address, port. */
export function sortedDests(list: readonly IpvsDestConf[]): IpvsDestConf[] {
  return [...list].sort((a, b) => (afOf(a.addr.length) - afOf(b.addr.length)) || cmpAddr(a.addr, b.addr) || (a.port - b.port));
}
