/**
 * TPROXY target: iptables `extensions/libxt_TPROXY.c` (revision 1, used
 * for both families); kernel `net/netfilter/xt_TPROXY.c`
 * (`struct xt_tproxy_target_info_v1`).
 *
 *  - `--on-port PORT` (XTTYPE_PORT, mandatory): a decimal number (taken
 *    modulo 65536, as getaddrinfo does) or a service name;
 *  - `--on-ip ADDR` (XTTYPE_HOST): default 0.0.0.0 / ::;
 *  - `--tproxy-mark VALUE[/MASK]` (XTTYPE_MARKMASK32): mask defaults to
 *    0xffffffff; without the option both are 0.
 * iptables-save always prints all three: ` --on-port P --on-ip A --tproxy-mark 0xV/0xM`.
 *
 * Kernel: `mangle` table, PREROUTING only; checkentry needs `-p tcp` or
 * `-p udp`, not inverted.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { Family } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { hex } from '../save.js';
import { serviceToPort } from '../protocols.js';
import { parseMarkMask } from '../numbers.js';
import { formatAddr } from '../../core/addr.js';
import { parseHost } from '../hostmask.js';
import { compatTargetFaces } from '../compat.js';
import { be16, be32, headerPointer, ipv6FindHdrAt, type Ipv6HdrWalk, type TargetFn, type XtActionParam } from '../xt.js';
import { M_IIF, M_MARK, M_SK, M_SK_CGROUP, M_SK_CLASSID, M_SK_INDEX, SK_ASSIGNED } from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';

interface TproxyData {
  /** Local port to divert to (host order). */
  lport: number;
  /** Local address to divert to (4 or 16 bytes; all zero = the incoming interface's address). */
  laddr: Uint8Array;
  /** Mark applied: skb->mark = (skb->mark & ~markMask) ^ markValue. */
  markValue: number;
  markMask: number;
}

/** xtables_getportbyname(): getaddrinfo(NULL, name) service resolution. */
function getPortByName(s: string): number {
  if (/^[ \t\n\v\f\r]*\+?[0-9]*$/.test(s) && (s === '' || /[0-9]$/.test(s))) {
    const digits = s.replace(/^[ \t\n\v\f\r]*\+?/, '');
    const v = digits === '' ? 0n : BigInt(digits);
    if (v <= 0xffffffffffffffffn) return Number(v & 0xffffn);
  } else {
    const p = serviceToPort(s);
    if (p !== undefined) return p;
  }
  return fail(`Port "${s}" does not resolve to anything.`);
}

function makeTproxy(family: Family): TargetModule<TproxyData> {
  const bytes = family === 'ip' ? 4 : 16;
  return {
    kind: 'target',
    name: 'TPROXY',
    family,
    options: [
      { name: 'on-port', arg: 1 },
      { name: 'on-ip', arg: 1 },
      { name: 'tproxy-mark', arg: 1 },
    ],
    tables: ['mangle'],
    hooks: 1 << Hook.PRE_ROUTING,
    init: () => ({ lport: 0, laddr: new Uint8Array(bytes), markValue: 0, markMask: 0 }),
    parse(d, opt, arg) {
      switch (opt) {
        case 'on-port':
          d.lport = getPortByName(arg!);
          return;
        case 'on-ip':
          d.laddr = parseHost(family, arg!);
          return;
        case 'tproxy-mark': {
          const [v, m] = parseMarkMask(arg!, 'TPROXY', opt);
          d.markValue = v;
          d.markMask = m;
          return;
        }
      }
    },
    final(_d, seen) {
      if (!seen.has('on-port')) fail('TPROXY: option "--on-port" must be specified', 'option');
    },
    save: (d) => ` --on-port ${d.lport} --on-ip ${formatAddr(family, d.laddr)} --tproxy-mark ${hex(d.markValue)}/${hex(d.markMask)}`,
    check(_d, ctx) {
      const p = ctx.rule.proto;
      if ((p === 6 || p === 17) && !ctx.rule.invProto) return undefined;
      return `xt_TPROXY: Can be used only with -p tcp or -p udp`;
    },
    ...compatTargetFaces(family === 'ip' ? tproxyTg4 : tproxyTg6, 1),
  };
}

// --- reference semantics (xt_TPROXY.c tproxy_tg4() and tproxy_tg6_v1(), nf_tproxy_ipv4.c, nf_tproxy_ipv6.c, kernel 6.18) ---
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const TCP_FIN = 0x01;

/** The addresses of one lookup as host-order words (one packet at a time). */
const SADDR4 = new Uint32Array(1);
const DADDR4 = new Uint32Array(1);
const LADDR4 = new Uint32Array(1);
const SADDR6 = new Uint32Array(4);
const DADDR6 = new Uint32Array(4);
const LADDR6 = new Uint32Array(4);
const walk6: Ipv6HdrWalk = { off: 0, flags: 0, fragoff: 0 };

/**
 * What tproxy_tg4() and tproxy_tg6_v1() share, once the addresses are
 * read: the socket of the packet's own connection
 * (NF_TPROXY_LOOKUP_ESTABLISHED); a TIME-WAIT one gives way to the
 * listener on the redirect address for a bare SYN
 * (nf_tproxy_handle_time_wait4/6); without one, the listener on the
 * redirect address `laddr` and port (--on-port, else the destination
 * port), wildcard ones included. A transparent socket gets the packet
 * (nf_tproxy_assign_sock: skb->sk, what the socket match and local
 * delivery then see) and the mark `(mark & ~mask) ^ value`: NF_ACCEPT.
 * Otherwise NF_DROP. `th` is the transport header (absolute), `tcpOk`
 * whether a whole TCP header is there (nf_tproxy_get_sock_v4/v6 read it
 * first, and find no socket without it).
 */
function tproxyAssign(par: XtActionParam, d: TproxyData, family: 4 | 6, proto: number, th: number, tcpOk: boolean, saddr: Uint32Array, daddr: Uint32Array, laddr: Uint32Array): number {
  const socks = par.env.sockets;
  const bytes = par.d;
  const m = par.meta;
  const sport = be16(bytes, th);
  const dport = be16(bytes, th + 2);
  const ifindex = m[M_IIF]!;
  const lport = d.lport || dport;
  const found = socks !== null && tcpOk;
  let sk = found ? socks.tproxyLookup(family, proto, saddr, sport, daddr, dport, ifindex, true) : undefined;
  if (sk && sk.timeWait) {
    const flags = bytes[th + 13]!;
    if ((flags & TCP_SYN) !== 0 && (flags & (TCP_RST | TCP_ACK | TCP_FIN)) === 0) {
      const sk2 = socks!.tproxyLookup(family, proto, saddr, sport, laddr, lport, ifindex, false);
      if (sk2) sk = sk2;
    }
  } else if (!sk && found) sk = socks.tproxyLookup(family, proto, saddr, sport, laddr, lport, ifindex, false);
  if (!sk || !sk.transparent) return NF_DROP;
  m[M_MARK] = ((m[M_MARK]! & ~d.markMask) ^ d.markValue) | 0;
  m[M_SK] = SK_ASSIGNED;
  m[M_SK_INDEX] = sk.index;
  // its sk_cgrp_data: ss prints the cgroup, not the net_cls class id (0 here)
  m[M_SK_CGROUP] = sk.cgroup;
  m[M_SK_CLASSID] = 0;
  return NF_ACCEPT;
}

/**
 * tproxy_tg4(): the transport header after the IPv4 header; the redirect
 * address is --on-ip, else the first primary address of the input device
 * (nf_tproxy_laddr4), else the destination.
 */
function tproxyTg4(d: TproxyData): TargetFn {
  const userLaddr = be32(d.laddr, 0);
  return (par) => {
    const bytes = par.d;
    const nh = par.nh;
    const ihl = (bytes[nh]! & 0x0f) * 4;
    const hp = headerPointer(par, ihl, 8);
    if (hp < 0) return NF_DROP;
    const proto = bytes[nh + 9]!;
    SADDR4[0] = be32(bytes, nh + 12);
    DADDR4[0] = be32(bytes, nh + 16);
    LADDR4[0] = userLaddr || (par.env.sockets?.primaryAddr4(par.meta[M_IIF]!) || DADDR4[0]);
    return tproxyAssign(par, d, 4, proto, hp, proto !== 6 || headerPointer(par, ihl, 20) >= 0, SADDR4, DADDR4, LADDR4);
  };
}

/**
 * tproxy_tg6_v1(): the transport header ipv6_find_hdr() finds past the
 * extension headers (NF_DROP without one; a later fragment, which
 * nf_defrag_ipv6 normally reassembles first, leaves the offset at 0, so
 * its "ports" are the IPv6 header's first bytes); the redirect address is
 * --on-ip unless it is ::, else the first address of the input device
 * that is neither tentative nor deprecated (nf_tproxy_laddr6), else the
 * destination.
 */
function tproxyTg6(d: TproxyData): TargetFn {
  const user = Uint32Array.from([0, 4, 8, 12], (k) => be32(d.laddr, k));
  const userAny = user.every((w) => w === 0);
  return (par) => {
    const bytes = par.d;
    const nh = par.nh;
    walk6.flags = 0;
    const proto = ipv6FindHdrAt(bytes, nh, par.end, 0, walk6);
    if (proto < 0) return NF_DROP;
    const thoff = walk6.fragoff === 0 ? walk6.off : 0;
    const hp = headerPointer(par, thoff, 8);
    if (hp < 0) return NF_DROP;
    for (let k = 0; k < 4; k++) {
      SADDR6[k] = be32(bytes, nh + 8 + 4 * k);
      DADDR6[k] = be32(bytes, nh + 24 + 4 * k);
    }
    if (!userAny) LADDR6.set(user);
    else if (!par.env.sockets?.firstAddr6(par.meta[M_IIF]!, LADDR6)) LADDR6.set(DADDR6);
    return tproxyAssign(par, d, 6, proto, hp, proto !== 6 || headerPointer(par, thoff, 20) >= 0, SADDR6, DADDR6, LADDR6);
  };
}

export const TPROXY4 = makeTproxy('ip');
export const TPROXY6 = makeTproxy('ip6');

