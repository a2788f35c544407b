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
    lower: 'gives the packet a local socket (nf_tproxy_get_sock_v4/v6 over the node\'s sockets, nf_tproxy_assign_sock: skb->sk for local delivery) and its mark: not modelled yet',
    reference: 'gives the packet a local socket (nf_tproxy_get_sock_v4/v6 over the node\'s sockets, nf_tproxy_assign_sock: skb->sk for local delivery) and its mark: not modelled yet',
  };
}

export const TPROXY4 = makeTproxy('ip');
export const TPROXY6 = makeTproxy('ip6');

