/**
 * The IPsec policies on a node's output route, shared by IPv4 and IPv6 (a
 * node without states, hooks/route/xfrm.ts), Linux 6.18:
 *   net/xfrm/xfrm_policy.c  xfrm_lookup_route (XFRM_LOOKUP_QUEUE: a required template
 *                           without state gives a blackhole route with net.core.xfrm_larval_drop,
 *                           else the policy's queue: the packet passes LOCAL_OUT and goes no
 *                           further), xfrm_lookup without XFRM_LOOKUP_QUEUE (either failure is
 *                           an error: no packet), XFRM_LOOKUP_ICMP
 *   net/ipv4/icmp.c         icmp_route_lookup      net/ipv6/icmp.c  icmpv6_route_lookup
 *
 *   route = xfrmRoute(node, r, db.lookupOut(fl, loopback), 'flow', 'xfrm_lookup_route');
 */
import type { Node } from '../snapshot/node.js';
import type { XfrmPolicy } from '../route/xfrm.js';
import { dropped, type OutputRoute, type XfrmRouting } from './ctx.js';
import type { Fate } from './fate.js';

type Verdict = 'pass' | 'eperm' | 'nostate';
type Routed = Exclude<OutputRoute, { fate: Fate }>;

/**
 * The route `r` after the OUT lookup's answer `out`: 'flow' (xfrm_lookup_route:
 * EPERM to the sender, a blackhole or queue for a missing state) or
 * 'me-harder' (xfrm_lookup without XFRM_LOOKUP_QUEUE: `fn` fails, no packet).
 */
export function xfrmRoute(node: Node, r: Routed, out: { verdict: Verdict; policy: XfrmPolicy | undefined }, how: Exclude<XfrmRouting, 'icmp'>, fn: string): OutputRoute {
  if (out.verdict === 'pass') return r;
  const what = out.policy ? `out policy "${out.policy.text}"` : 'the default out policy';
  if (out.verdict === 'eperm') return { fate: dropped('xfrm-policy', `${what} blocks it (xfrm_lookup: EPERM${how === 'flow' ? ' to the sender' : ''})`) };
  if (how === 'me-harder') return { fate: dropped('xfrm-policy', `${what} requires an IPsec state that does not exist (${fn}: xfrm_lookup fails)`) };
  const hold = node.sysctl.xfrmLarvalDrop() ? `${what} requires an IPsec state that does not exist: the route is a blackhole (xfrm_lookup_route, xfrm_larval_drop)`
    : `${what} requires an IPsec state that does not exist: held in the policy's queue (xfrm_larval_drop = 0), never sent`;
  return { dev: r.dev, gateway: r.gateway, local: r.local, cast: r.cast, get text() { return r.text; }, xfrmHold: hold };
}

/**
 * icmp_route_lookup() / icmpv6_route_lookup() after the error's own lookup
 * (`first`; a pass returns the route when `firstDone`, IPv4's error to a
 * local address): a required template without state fails the error; else
 * the quoted packet's flow reversed is looked up with XFRM_LOOKUP_ICMP
 * (`rev`, undefined when it cannot be decoded): only a policy with `flag
 * icmp` decides there (a block one fails the error, an allowing one sends
 * it), and the default out policy's EPERM fails it; none, or a policy
 * without the flag, leaves the first route, if there is one.
 */
export function icmpXfrmRoute(r: Routed, first: Verdict, firstDone: boolean, rev: { verdict: Verdict; policy: XfrmPolicy | undefined } | undefined, fn: string): OutputRoute {
  const no = (why: string): OutputRoute => ({ fate: dropped('xfrm-policy', `ICMP error not sent: ${why} (${fn})`) });
  if (first === 'nostate') return no('an out policy requires an IPsec state that does not exist');
  if (first === 'pass' && firstDone) return r;
  if (rev === undefined) return first === 'pass' ? r : no('an out policy blocks it');
  if (rev.verdict === 'eperm' && (rev.policy === undefined || rev.policy.icmp)) return no(rev.policy ? `out policy "${rev.policy.text}" blocks the quoted flow` : 'the default out policy blocks it');
  if (rev.policy === undefined || !rev.policy.icmp || rev.verdict === 'nostate') return first === 'pass' ? r : no('an out policy blocks it');
  return r;
}
