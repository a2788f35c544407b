/**
 * The rate limits on the node's ICMP and ICMPv6 messages, on the model's
 * virtual clock (jiffies of the capture's timestamps, HZ of the reference
 * kernel).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/inetpeer.c  inet_getpeer(): a new peer starts with rate_tokens 0 and
 *                        rate_last = jiffies - 60 * HZ; inet_peer_xrlim_allow(): a token bucket
 *                        of XRLIM_BURST_FACTOR (6) messages, one message costs `timeout` jiffies
 *   net/ipv4/icmp.c      icmp_global_allow() / icmp_global_consume(): the per-namespace credit
 *                        (icmp_msgs_per_sec refill, at most icmp_msgs_burst, refilled at most
 *                        every HZ / 50), each message sent consumes get_random_u32_below(3);
 *                        icmpv4_mask_allow(): types outside icmp_ratemask (and fragmentation
 *                        needed) are never limited
 *   net/ipv4/route.c     ip_error(): its own bucket on the same inet_peer (ip_rt_error_cost HZ,
 *                        ip_rt_error_burst 5 * HZ) before icmp_send()
 *   net/ipv4/route.c     ip_rt_send_redirect(): on the sender's peer, the first redirect at once,
 *                        then each after ip_rt_redirect_load << n_redirects jiffies, at most
 *                        ip_rt_redirect_number of them until ip_rt_redirect_silence without one
 *                        (which also resets the peer's ICMP tokens)
 *   net/ipv6/icmp.c      icmpv6_mask_allow() over the icmpv6 ratemask bitmap (PKT_TOOBIG never
 *                        limited), the per-peer timeout shortened for wider routes
 *
 * Peers are kept in a map bounded to MAX_PEERS entries (the oldest go first,
 * as inet_peer's garbage collection drops idle ones: a peer idle longer than
 * its burst refills completely, so dropping it changes nothing).
 */
import { HZ } from '../conntrack/sysctl.js';
import type { Xorshift32 } from '../../vm/random.js';

/** XRLIM_BURST_FACTOR (include/net/inetpeer.h). */
const XRLIM_BURST_FACTOR = 6;
const MAX_PEERS = 65536;

export { HZ };

/** struct inet_peer's rate-limit fields. */
export interface InetPeer {
  rateTokens: number;
  rateLast: number;
  /** n_redirects: the ICMP redirects sent since the last silence (ip_rt_send_redirect). */
  nRedirects: number;
}

/** net->ipv4.peers / net->ipv6.peers. */
export class InetPeers {
  private readonly peers = new Map<number | string, InetPeer>();

  /** inet_getpeer(): the peer of an address (created on first use). */
  get(key: number | string, now: number): InetPeer {
    let p = this.peers.get(key);
    if (!p) {
      if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.keys().next().value!);
      p = { rateTokens: 0, rateLast: now - 60 * HZ, nRedirects: 0 };
      this.peers.set(key, p);
    }
    return p;
  }

  /** A copy of every peer, for checkpoints. */
  save(): Map<number | string, InetPeer> {
    const m = new Map<number | string, InetPeer>();
    for (const [k, p] of this.peers) m.set(k, { ...p });
    return m;
  }

  restore(m: Map<number | string, InetPeer>): void {
    this.peers.clear();
    for (const [k, p] of m) this.peers.set(k, { ...p });
  }
}

/** inet_peer_xrlim_allow(peer, timeout) at `now` jiffies. */
export function inetPeerXrlimAllow(peer: InetPeer, timeout: number, now: number): boolean {
  let token = peer.rateTokens;
  const delta = now - peer.rateLast;
  if (delta) {
    peer.rateLast = now;
    token += delta;
    if (token > XRLIM_BURST_FACTOR * timeout) token = XRLIM_BURST_FACTOR * timeout;
  }
  let rc = false;
  if (token >= timeout) {
    token -= timeout;
    rc = true;
  }
  peer.rateTokens = token;
  return rc;
}

/** ip_rt_redirect_number, ip_rt_redirect_load, ip_rt_redirect_silence: global, not per namespace (net.ipv4.route.redirect_*). */
const IP_RT_REDIRECT_NUMBER = 9;
const IP_RT_REDIRECT_LOAD = (HZ / 50) | 0;
const IP_RT_REDIRECT_SILENCE = IP_RT_REDIRECT_LOAD << (IP_RT_REDIRECT_NUMBER + 1);

/** ip_rt_send_redirect()'s limit on the sender's peer at `now` jiffies: whether this redirect is sent. */
export function ipRtRedirectAllow(peer: InetPeer, now: number): boolean {
  // time_after(jiffies, rate_last + ip_rt_redirect_silence): the algorithm starts over
  if (now - (peer.rateLast + IP_RT_REDIRECT_SILENCE) > 0) {
    peer.rateTokens = 0;
    peer.nRedirects = 0;
  }
  if (peer.nRedirects >= IP_RT_REDIRECT_NUMBER) {
    peer.rateLast = now;
    return false;
  }
  if (peer.nRedirects === 0 || now - (peer.rateLast + (IP_RT_REDIRECT_LOAD << peer.nRedirects)) > 0) {
    peer.rateLast = now;
    peer.nRedirects++;
    return true;
  }
  return false;
}

/** ip_error()'s own limit on the sender's peer: ip_rt_error_cost / ip_rt_error_burst. */
export function ipErrorAllow(peer: InetPeer, now: number): boolean {
  const cost = HZ;
  const burst = 5 * HZ;
  peer.rateTokens += now - peer.rateLast;
  if (peer.rateTokens > burst) peer.rateTokens = burst;
  peer.rateLast = now;
  if (peer.rateTokens >= cost) {
    peer.rateTokens -= cost;
    return true;
  }
  return false;
}

/** net->ipv4.icmp_global_credit / icmp_global_stamp: shared by ICMP and ICMPv6. */
export class IcmpGlobal {
  credit = 0;
  /** The last refill, in jiffies (-Infinity: never, the first call refills the whole burst). */
  stamp = -Infinity;

  /** icmp_global_allow(). */
  allow(now: number, msgsPerSec: number, burst: number): boolean {
    if (this.credit > 0) return true;
    const delta = Math.min(now - this.stamp, HZ);
    if (delta < Math.floor(HZ / 50)) return false;
    const incr = Math.floor((msgsPerSec * delta) / HZ);
    if (!incr) return false;
    this.stamp = now;
    this.credit = Math.min(this.credit + incr, burst);
    return true;
  }

  /** icmp_global_consume(): 0, 1 or 2 credits at random (the credit may go negative). */
  consume(rng: Xorshift32): void {
    this.credit -= rng.below(3);
  }
}

/** Milliseconds of a `_ms_jiffies` sysctl in jiffies (msecs_to_jiffies, rounded up). */
export function msToJiffies(ms: number): number {
  return Math.ceil((ms * HZ) / 1000);
}

/**
 * A bitmap sysctl as `proc_do_large_bitmap` prints it (`0-1,3-127`): the
 * set bits; undefined when the text is not of that form.
 */
export function parseBitmap(text: string): Set<number> | undefined {
  const out = new Set<number>();
  const t = text.trim();
  if (t === '') return out;
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 255) return undefined;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}
