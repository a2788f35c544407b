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
import { be16, be32, headerPointer, type TargetFn } from '../xt.js';
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

const NO_TPROXY6 = 'IPv6 (tproxy_tg6_v1): nf_tproxy_laddr6 takes the first usable address of the device in the kernel\'s own list order, which ip -j addr does not give: not modelled yet';

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
    ...(family === 'ip'
      ? compatTargetFaces(tproxyTg4, 1)
      : { lower: NO_TPROXY6, reference: NO_TPROXY6 }),
  };
}

// --- reference semantics (xt_TPROXY.c tproxy_tg4(), nf_tproxy_ipv4.c, kernel 6.18) ---------------
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const TCP_FIN = 0x01;

/**
 * tproxy_tg4(): the socket of the packet's own connection
 * (NF_TPROXY_LOOKUP_ESTABLISHED); a TIME-WAIT one gives way to the
 * listener on the redirect address for a bare SYN
 * (nf_tproxy_handle_time_wait4); without one, the listener on the redirect
 * address and port (--on-ip, else the first primary address of the input
 * device, else the destination; --on-port, else the destination port),
 * wildcard ones included. A transparent socket gets the packet
 * (nf_tproxy_assign_sock: skb->sk, what the socket match and local
 * delivery then see) and the mark `(mark & ~mask) ^ value`: NF_ACCEPT.
 * Otherwise, or when the header is short, NF_DROP.
 */
function tproxyTg4(d: TproxyData): TargetFn {
  const userLaddr = ((d.laddr[0]! << 24) | (d.laddr[1]! << 16) | (d.laddr[2]! << 8) | d.laddr[3]!) >>> 0;
  return (par) => {
    const socks = par.env.sockets;
    const bytes = par.d;
    const nh = par.nh;
    const ihl = (bytes[nh]! & 0x0f) * 4;
    const hp = headerPointer(par, ihl, 8);
    if (hp < 0) return NF_DROP;
    const m = par.meta;
    const proto = bytes[nh + 9]!;
    const saddr = be32(bytes, nh + 12);
    const daddr = be32(bytes, nh + 16);
    const sport = be16(bytes, hp);
    const dport = be16(bytes, hp + 2);
    const ifindex = m[M_IIF]!;
    // nf_tproxy_get_sock_v4() reads the whole TCP header first
    const tcpOk = proto !== 6 || headerPointer(par, ihl, 20) >= 0;
    let sk = socks && tcpOk ? socks.tproxyLookup(proto, saddr, sport, daddr, dport, ifindex, true) : undefined;
    const laddr = userLaddr || (socks?.primaryAddr4(ifindex) || daddr);
    const lport = d.lport || dport;
    if (sk && sk.timeWait) {
      const flags = bytes[hp + 13]!;
      if ((flags & TCP_SYN) !== 0 && (flags & (TCP_RST | TCP_ACK | TCP_FIN)) === 0) {
        const sk2 = socks!.tproxyLookup(proto, saddr, sport, laddr, lport, ifindex, false);
        if (sk2) sk = sk2;
      }
    } else if (!sk && socks && tcpOk) sk = socks.tproxyLookup(proto, saddr, sport, laddr, lport, ifindex, false);
    if (!sk || !sk.transparent) return NF_DROP;
    m[M_MARK] = ((m[M_MARK]! & ~d.markMask) ^ d.markValue) | 0;
    m[M_SK] = SK_ASSIGNED;
    m[M_SK_INDEX] = sk.index;
    // its sk_cgrp_data: ss prints the cgroup, not the net_cls class id (0 here)
    m[M_SK_CGROUP] = sk.cgroup;
    m[M_SK_CLASSID] = 0;
    return NF_ACCEPT;
  };
}

export const TPROXY4 = makeTproxy('ip');
export const TPROXY6 = makeTproxy('ip6');

