/**
 * The traversal: ipt_do_table() / ip6t_do_table() with ip_packet_match() /
 * ip6_packet_match() (net/ipv4/netfilter/ip_tables.c,
 * net/ipv6/netfilter/ip6_tables.c, kernel 6.18), over the AST instead of the
 * entry blob.
 *
 * The blob's shape is kept where it shows: every chain ends in a tail entry
 * (a builtin chain's policy, a user chain's RETURN) that matches
 * unconditionally, counts, and is traced as `policy:N` / `return:N`; a jump
 * pushes the jumping rule (`-g` pushes nothing); RETURN pops and resumes
 * after the popped rule, or with an empty stack goes to the hook's underflow
 * entry, the builtin chain's policy. The loop runs while no match hotdropped
 * (`do { ... } while (!acpar.hotdrop)`), and a hotdrop returns NF_DROP
 * whatever the verdict.
 */
import { M_IIFNAME, M_LEN, M_NHOFF, M_OIFNAME } from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE } from '../../core/netfilter.js';
import type { Count, TraceEvent } from '../engine.js';
import { TraceKind } from '../engine.js';
import { XT_CONTINUE, ifnameDiffers, ipv6FindHdr, type MatchFn, type TargetFn, type XtActionParam, type XtEnv } from '../../ext/xt.js';
import type { Packet } from '../../vm/packet.js';

export type RefTarget =
  /** ACCEPT / DROP / QUEUE: the standard target's final verdict. */
  | { kind: 'verdict'; verdict: number }
  | { kind: 'return' }
  | { kind: 'jump'; chain: RefChain; goto: boolean }
  /** No `-j`: the standard target's verdict is the next entry (nothing pushed). */
  | { kind: 'next' }
  | { kind: 'ext'; fn: TargetFn };

/** One entry: a rule, or a chain's tail. */
export interface RefEntry {
  chain: RefChain;
  /** 1-based number as TRACE prints it (the tail is rules + 1). */
  num: number;
  family: 'ip' | 'ip6';
  src: Uint8Array | undefined;
  smsk: Uint8Array | undefined;
  dst: Uint8Array | undefined;
  dmsk: Uint8Array | undefined;
  invSrc: boolean;
  invDst: boolean;
  iniface: Uint8Array;
  inifaceMask: Uint8Array;
  outiface: Uint8Array;
  outifaceMask: Uint8Array;
  invIn: boolean;
  invOut: boolean;
  proto: number;
  invProto: boolean;
  frag: boolean;
  invFrag: boolean;
  matches: MatchFn[];
  target: RefTarget;
  /**
   * get_chainname_rulenum()'s tail test: an unconditional entry (no IP part,
   * no matches) with a standard target and a negative verdict. True for the
   * tails and for rules such as a bare `-A X -j RETURN` or `-A INPUT -j ACCEPT`,
   * which the kernel traces as `return:N` / `policy:N` too.
   */
  tailLike: boolean;
  counter: Count;
}

export interface RefChain {
  name: string;
  builtin: boolean;
  /** Rules then the tail entry. */
  entries: RefEntry[];
}

/** (addr & msk) != rule address, over 4 or 16 bytes (the rule address is stored masked). */
function addrDiffers(d: Uint8Array, at: number, addr: Uint8Array | undefined, msk: Uint8Array | undefined): boolean {
  if (!addr || !msk) return false;
  for (let i = 0; i < addr.length; i++) if ((d[at + i]! & msk[i]!) !== (addr[i]! & msk[i]!)) return true;
  return false;
}

/** ip_packet_match() */
function ipPacketMatch(e: RefEntry, par: XtActionParam): boolean {
  const d = par.d;
  const nh = par.nh;
  const mb = par.pkt.metaBytes;
  if (addrDiffers(d, nh + 12, e.src, e.smsk) !== e.invSrc || addrDiffers(d, nh + 16, e.dst, e.dmsk) !== e.invDst) return false;
  if (ifnameDiffers(mb, M_IIFNAME, e.iniface, e.inifaceMask) !== e.invIn) return false;
  if (ifnameDiffers(mb, M_OIFNAME, e.outiface, e.outifaceMask) !== e.invOut) return false;
  if (e.proto && (d[nh + 9] !== e.proto) !== e.invProto) return false;
  // `-f`: only non-first fragments; `! -f`: only unfragmented packets and first fragments.
  if ((e.frag && par.fragoff === 0) !== e.invFrag) return false;
  return true;
}

const findOut = { fragoff: 0 };

/**
 * ip6_packet_match(): may set par.thoff, par.fragoff and par.hotdrop. With
 * `nftPktinfo` (iptables-nft: the rule's `-p` is `meta l4proto`, its ports
 * `payload @th`), the protocol and transport header are nf_tables' pktinfo,
 * which ipv6_find_hdr() computes with IP6_FH_F_AUTH: an AH header is the
 * protocol, not skipped.
 */
function ip6PacketMatch(e: RefEntry, par: XtActionParam, nftPktinfo: boolean): boolean {
  const d = par.d;
  const nh = par.nh;
  const mb = par.pkt.metaBytes;
  if (addrDiffers(d, nh + 8, e.src, e.smsk) !== e.invSrc || addrDiffers(d, nh + 24, e.dst, e.dmsk) !== e.invDst) return false;
  if (ifnameDiffers(mb, M_IIFNAME, e.iniface, e.inifaceMask) !== e.invIn) return false;
  if (ifnameDiffers(mb, M_OIFNAME, e.outiface, e.outifaceMask) !== e.invOut) return false;
  // IP6T_F_PROTO: set by ip6tables when -p is given; from saved text that is proto != 0.
  if (e.proto !== 0) {
    const protohdr = ipv6FindHdr(par, findOut, nftPktinfo);
    if (protohdr < 0) {
      // iptables-nft's `-p` is `meta l4proto`: without NFT_PKTINFO_L4PROTO the load breaks, nothing is dropped
      if (findOut.fragoff === 0 && !nftPktinfo) par.hotdrop = true;
      return false;
    }
    par.fragoff = findOut.fragoff;
    if (e.proto === protohdr) return !e.invProto;
    if (!e.invProto) return false;
  }
  return true;
}

export interface TraverseState {
  env: XtEnv;
  /** Jump stack depth: user chains + 1 (one per ERROR entry, as translate_table counts). */
  stackSize: number;
  /** iptables-nft: IPv6 rules see nf_tables' pktinfo (AH is a protocol; ip6PacketMatch). */
  nftPktinfo?: boolean;
  trace: boolean;
  events: TraceEvent[];
  /** The describer of the packet of each trace event (TableEngine.run), null when none. */
  describe: ((pkt: Packet) => string) | null;
}

/**
 * The entry's trace event; with a describer, the packet as ipt_do_table()'s
 * trace_packet() logs it (its matches passed, its target not run yet), or
 * for iptables-nft (nftPktinfo) as nft_trace_packet() reports it, after the
 * rule: the caller describes it again once the target has run.
 */
function traceEntry(st: TraverseState, e: RefEntry, pkt: Packet): TraceEvent {
  const kind = e.tailLike ? (e.chain.builtin ? TraceKind.POLICY : TraceKind.RETURN) : TraceKind.RULE;
  const ev: TraceEvent = { kind, chain: e.chain.name, rule: e.num };
  if (st.describe !== null) ev.packet = st.describe(pkt);
  st.events.push(ev);
  return ev;
}

/**
 * Runs the packet through builtin chain `start` (hook `hook`); returns the
 * netfilter verdict (unsigned).
 */
export function doTable(st: TraverseState, start: RefChain, hook: number, pkt: Packet, family: 'ip' | 'ip6'): number {
  const d = pkt.data;
  const meta = pkt.meta;
  const nh = meta[M_NHOFF]!;
  const par: XtActionParam = {
    pkt, d, meta, hook, nh, end: nh + meta[M_LEN]!, thoff: 0, fragoff: 0, hotdrop: false, env: st.env, chain: '', rule: 0,
  };
  if (family === 'ip') {
    par.fragoff = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff;
    par.thoff = (d[nh]! & 0x0f) * 4;
  }
  const stack: RefEntry[] = [];
  let verdict = NF_DROP;
  let chain = start;
  let i = 0;
  do {
    const e = chain.entries[i]!;
    if (family === 'ip6') par.thoff = 0;
    if (!(family === 'ip' ? ipPacketMatch(e, par) : ip6PacketMatch(e, par, st.nftPktinfo === true))) {
      i++;
      continue;
    }
    par.chain = chain.name;
    par.rule = e.num;
    let matched = true;
    for (const m of e.matches) {
      if (!m(par)) {
        matched = false;
        break;
      }
    }
    if (!matched) {
      i++;
      continue;
    }
    e.counter.packets += 1;
    e.counter.bytes += meta[M_LEN]!; // skb->len now: a target (TCPMSS) may have grown the packet
    const ev = st.trace ? traceEntry(st, e, pkt) : undefined;
    const t = e.target;
    if (t.kind === 'verdict') {
      verdict = t.verdict;
      break;
    }
    if (t.kind === 'return') {
      const back = stack.pop();
      if (back === undefined) {
        chain = start;
        i = start.entries.length - 1; // the hook's underflow: the policy entry
      } else {
        chain = back.chain;
        i = back.num; // the entry after the one that jumped
      }
      continue;
    }
    if (t.kind === 'jump') {
      if (!t.goto) {
        if (stack.length >= st.stackSize) {
          verdict = NF_DROP;
          break;
        }
        stack.push(e);
      }
      chain = t.chain;
      i = 0;
      continue;
    }
    if (t.kind === 'next') {
      i++;
      continue;
    }
    const v = t.fn(par);
    if (ev !== undefined && st.describe !== null && st.nftPktinfo === true) ev.packet = st.describe(pkt);
    if (v !== XT_CONTINUE) {
      verdict = v;
      break;
    }
    i++;
  } while (!par.hotdrop);
  return par.hotdrop ? NF_DROP : verdict >>> 0;
}

/** Standard verdict name → netfilter verdict. */
export function standardVerdict(name: 'ACCEPT' | 'DROP' | 'QUEUE'): number {
  return name === 'ACCEPT' ? NF_ACCEPT : name === 'DROP' ? NF_DROP : NF_QUEUE;
}

