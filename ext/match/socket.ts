/**
 * socket match: libxt_socket.c (revision 3), kernel xt_socket.c: a local
 * socket matches the packet. Kernel `.hooks` = PREROUTING and INPUT.
 */
import type { MatchModule } from '../types.js';

/** struct xt_socket_mtinfo3 flags. */
interface SocketData {
  /** XT_SOCKET_TRANSPARENT: only transparent (IP_TRANSPARENT) sockets. */
  transparent: boolean;
  /** XT_SOCKET_NOWILDCARD: also sockets bound to the any address. */
  nowildcard: boolean;
  /** XT_SOCKET_RESTORESKMARK: copy the socket mark to the packet. */
  restoreSkmark: boolean;
}

export const socket: MatchModule<SocketData> = {
  kind: 'match',
  name: 'socket',
  options: [
    { name: 'transparent', arg: 0 },
    { name: 'nowildcard', arg: 0 },
    { name: 'restore-skmark', arg: 0 },
  ],
  hooks: (1 << 0) | (1 << 1),
  init: () => ({ transparent: false, nowildcard: false, restoreSkmark: false }),
  parse(d, opt) {
    if (opt === 'transparent') d.transparent = true;
    else if (opt === 'nowildcard') d.nowildcard = true;
    else d.restoreSkmark = true;
  },
  save: (d) => (d.transparent ? ' --transparent' : '') + (d.nowildcard ? ' --nowildcard' : '') + (d.restoreSkmark ? ' --restore-skmark' : ''),
  lower: 'needs the node\'s established and transparent sockets with their marks (nf_sk_lookup_slow_v4/v6): ss.txt gives listening sockets only',
  reference: 'needs the node\'s established and transparent sockets with their marks (nf_sk_lookup_slow_v4/v6): ss.txt gives listening sockets only',
};

