/**
 * What a match or target sees: the model of `struct xt_action_param`
 * (include/linux/netfilter/x_tables.h, kernel 6.18) plus the node facts the
 * model keeps outside the packet (local addresses, the seeded generator)
 * and the recorder of target actions.
 *
 * Offsets: `nh` and `end` are absolute frame offsets (the network header
 * and the end of the L3 data, i.e. skb->data and skb->data + skb->len);
 * `thoff` is relative to `nh`, as the kernel's par->thoff is relative to
 * skb->data at these hooks.
 */
import type { Packet } from '../vm/packet.js';
import type { NfCtEnv } from '../vm/ct-env.js';
import { XtState } from './xtstate.js';
import { Xorshift32 } from '../vm/random.js';
import type { EngineOptions } from './types.js';

/** XT_CONTINUE: a target's "go on with the next rule" (0xFFFFFFFF). */
export const XT_CONTINUE = 0xffffffff;

/** Something a target did besides its verdict, recorded while tracing is on. */
export type TargetAction =
  | { kind: 'LOG'; chain: string; rule: number; level: number; prefix: string; logflags: number }
  | { kind: 'NFLOG'; chain: string; rule: number; group: number; prefix: string }
  | { kind: 'TRACE'; chain: string; rule: number }
  /** The reply REJECT asks for (nf_send_unreach / nf_send_reset); sending it is the node's business. */
  | { kind: 'REJECT'; chain: string; rule: number; with: string }
  /** A NAT target ran (its binding is the node's NAT core's, through XtEnv.ct); `verdict` is what it returned. */
  | { kind: 'NAT'; chain: string; rule: number; target: 'SNAT' | 'DNAT' | 'MASQUERADE' | 'REDIRECT' | 'NETMAP'; data: unknown; verdict: number };

/** Engine-wide state a match or target may consult. */
export interface XtEnv {
  family: 'ip' | 'ip6';
  rng: Xorshift32;
  localAddrs: readonly Uint8Array[];
  broadcastAddrs: readonly Uint8Array[];
  /** Recording of TargetActions (on with tracing). */
  recording: boolean;
  actions: TargetAction[];
  /** The rule whose REJECT ended the current run (TableEngine.lastReject), recorded with tracing off too. */
  reject: { chain: string; rule: number } | undefined;
  /** The node's conntrack table and NAT core (vm/ct-env.ts), null for an engine without a node. */
  ct: NfCtEnv | null;
  /** The clock and the per-namespace state of the rate and state matches (ext/xtstate.ts). */
  xt: XtState;
}

/** The XtEnv of an engine built with `o` (its own generator and XtState when the node gives none). */
export function newXtEnv(family: 'ip' | 'ip6', o: EngineOptions): XtEnv {
  return {
    family,
    rng: o.random ?? new Xorshift32(o.seed ?? 1),
    localAddrs: o.localAddrs ?? [],
    broadcastAddrs: o.broadcastAddrs ?? [],
    recording: false,
    actions: [],
    reject: undefined,
    ct: o.ct ?? null,
    xt: o.xt ?? new XtState(),
  };
}

export interface XtActionParam {
  pkt: Packet;
  /** pkt.data */
  d: Uint8Array;
  /** pkt.meta */
  meta: Int32Array;
  /** state->hook (NF_INET_*). */
  hook: number;
  nh: number;
  end: number;
  /** par->thoff, relative to nh. */
  thoff: number;
  /** par->fragoff: IPv4 the 13-bit offset field (8-byte units), IPv6 bytes. */
  fragoff: number;
  hotdrop: boolean;
  env: XtEnv;
  /** The rule being evaluated (for recorded actions). */
  chain: string;
  rule: number;
}

export type MatchFn = (par: XtActionParam) => boolean;
/** Returns XT_CONTINUE or a netfilter verdict (unsigned). */
export type TargetFn = (par: XtActionParam) => number;

/**
 * skb_header_pointer(skb, off, len) != NULL: the absolute frame offset of
 * `len` bytes at `off` from the network header, or -1 when they lie past
 * the end of the packet.
 */
export function headerPointer(par: XtActionParam, off: number, len: number): number {
  const at = par.nh + off;
  return off < 0 || at + len > par.end ? -1 : at;
}

export function be16(d: Uint8Array, at: number): number {
  return (d[at]! << 8) | d[at + 1]!;
}

/** Thrown by a factory; the engine adds the file and position. */
export class NotModelled extends Error {
  /** @param message the whole refusal when it is not "semantics not modelled yet" (iptables' own, e.g. "Set foo doesn't exist.") */
  constructor(readonly what: string, message?: string) {
    super(message ?? `${what}: semantics not modelled yet`);
  }
}
