/**
 * The ebtables evaluator: the meaning of a bridge-family ruleset, ebtables'
 * own traversal over the AST: ebt_do_table() with ebt_basic_match() and
 * ebt_dev_check() (net/bridge/netfilter/ebtables.c, Linux 6.18). Each
 * rule's matches, watchers and target are the `reference` faces of the
 * ext/ebt modules (ports of net/bridge/netfilter/ebt_*.c).
 *
 * What the kernel does and this keeps:
 *  - a rule matches when ebt_basic_match() passes (protocol, the four
 *    interface names, source and destination MAC under their masks) and
 *    every match returns true; a hotdrop is looked at only once a rule has
 *    matched (NF_DROP then);
 *  - its counter then grows by skb->len (M_LEN: the frame after the MAC
 *    header and an accelerated VLAN tag), its watchers run, then its target;
 *  - ACCEPT / DROP end the traversal; CONTINUE goes on; RETURN pops the
 *    chain stack (RETURN on a base chain acts as CONTINUE, after a WARN;
 *    under ebtables-nft it is nf_tables' return, which applies the policy);
 *    a jump pushes the rule after the jumping one;
 *  - at the end of a chain its policy applies: RETURN pops, ACCEPT accepts,
 *    anything else drops. The policy counter counts the packets that got
 *    it (the nf_tables base chain counter of ebtables-nft; legacy ebtables
 *    keeps none, its counter stays as nfvm counts it for the report).
 *
 * With the nft backend (ebtables-nft, the only one this kernel loads) the
 * rule's basic part is the nf_tables expressions nft-bridge.c emits, which
 * differ where a device is absent: `--logical-in`/`--logical-out` are
 * `meta ibrname`/`obrname` (nft_meta_bridge_get_eval()), which give the empty
 * name when the device is not a bridge port, where ebt_basic_match() skips
 * the test; `-i`/`-o` of an absent device compare the empty name; `-p`
 * reads the rebuilt tag's own protocol (0x88a8 for 802.1ad, where
 * ebt_basic_match() says 0x8100).
 *
 * The broute table under ebtables-nft (iptables/nft-bridge.c _add_action()):
 * a `-j DROP` is `meta broute set 1` and `accept` (nft_meta_bridge_set_eval()
 * sets BR_INPUT_SKB_CB()->br_netfilter_broute: F_BR_BROUTE here), and so is
 * a user chain's DROP policy (ebt_add_policy_rule() makes it a rule through
 * the same path); the base chain's DROP policy is the nf_tables chain policy
 * and drops the frame, as does a target extension's own DROP
 * (nft_target_eval_bridge()). Legacy ebt_broute() routes on any NF_DROP.
 */
import type { EbtRule, EbtRuleset, EbtTableName } from '../../core/ebt-ast.js';
import { EBT_BUILTIN_HOOK } from '../../core/ebt-ast.js';
import { NfvmError } from '../../core/errors.js';
import { EBT_ACCEPT, EBT_CONTINUE, EBT_DROP, EBT_RETURN, NF_ACCEPT, NF_DROP, type Backend } from '../../core/netfilter.js';
import { F_BR_BROUTE, IFNAMSIZ, M_BRIINAME, M_FLAGS, M_BRIONAME, M_IIF, M_IIFNAME, M_LEN, M_NHOFF, M_OIF, M_OIFNAME, M_VLAN_PROTO } from '../../vm/layout.js';
import { ETH_P_8021Q, ETH_P_802_3_MIN, type Packet } from '../../vm/packet.js';
import type { Chooser } from '../../vm/random.js';
import { findEbtModule, findEbtTarget } from '../../ext/ebt/registry.js';
import {
  ebtVerdict, type EbtEngineOptions, type EbtEnv, type EbtMatchFn, type EbtParam, type EbtTargetFn,
} from '../../ext/ebt/types.js';
import { NotModelled, newXtEnv, type TargetAction } from '../../ext/xt.js';
import type { Count, TableEngine, TraceEvent } from '../engine.js';
import { TraceKind } from '../engine.js';

type Target =
  | { kind: 'verdict'; verdict: number }
  | { kind: 'jump'; chain: Chain }
  | { kind: 'ext'; fn: EbtTargetFn };

interface Entry {
  num: number;
  rule: EbtRule;
  matches: EbtMatchFn[];
  watchers: EbtMatchFn[];
  target: Target;
  /** The interface names as ebt_dev_check() compares them: NUL-terminated, '+' as the wildcard 1. */
  iif: Uint8Array | undefined;
  oif: Uint8Array | undefined;
  lin: Uint8Array | undefined;
  lout: Uint8Array | undefined;
  counter: Count;
}

interface Chain {
  name: string;
  builtin: boolean;
  entries: Entry[];
  /** EBT_ACCEPT / EBT_DROP / EBT_RETURN (a user chain's default). */
  policy: number;
  policyCounter: Count;
}

/** The ebtables table engine plus the actions its watchers and targets record. */
export interface EbtReferenceEngine extends TableEngine {
  takeActions(): TargetAction[];
}

/** The name as ebtables stores it for ebt_dev_check(): a trailing '+' becomes the wildcard byte 1. */
function devName(s: string): Uint8Array | undefined {
  if (s === '') return undefined;
  const b = new Uint8Array(IFNAMSIZ + 1);
  for (let i = 0; i < s.length && i < IFNAMSIZ; i++) b[i] = s.charCodeAt(i) & 0xff;
  if (s.endsWith('+') && s.length <= IFNAMSIZ) b[s.length - 1] = 1;
  return b;
}

/** ebt_dev_check() with the device's name in the metadata at word `w` (`present`: the device exists). */
function devCheck(entry: Uint8Array, present: boolean, mb: Uint8Array, w: number): boolean {
  if (!present) return true;
  const at = w * 4;
  let i = 0;
  while (i < IFNAMSIZ && entry[i] !== 0 && entry[i] !== 1 && entry[i] === mb[at + i]) i++;
  const dn = i < IFNAMSIZ ? mb[at + i]! : 0;
  return dn !== entry[i] && entry[i] !== 1;
}

/** nft meta iifname/oifname/ibrname/obrname compared as nft-bridge.c emits it: the whole name, or the prefix for '+'. */
function nftNameDiffers(entry: Uint8Array, mb: Uint8Array, w: number): boolean {
  const at = w * 4;
  for (let i = 0; i < IFNAMSIZ; i++) {
    if (entry[i] === 1) return false;
    if (entry[i] !== mb[at + i]) return true;
    if (entry[i] === 0) return false;
  }
  return false;
}

function macDiffers(d: Uint8Array, at: number, addr: Uint8Array, mask: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (((d[at + i]! ^ addr[i]!) & mask[i]!) !== 0) return true;
  return false;
}

/**
 * The ethertype ebt_basic_match() sees: ETH_P_8021Q for an accelerated tag,
 * else eth_hdr(skb)->h_proto. nf_tables' link-layer load (nft) rebuilds the
 * tag and reads its own protocol (0x88a8 for an 802.1ad tag).
 */
export function ebtEthProto(pkt: Packet, nft: boolean): number {
  const nh = pkt.meta[M_NHOFF]!;
  const vp = pkt.meta[M_VLAN_PROTO]!;
  if (vp !== 0) return nft ? vp : ETH_P_8021Q;
  return nh >= 2 ? (pkt.data[nh - 2]! << 8) | pkt.data[nh - 1]! : 0;
}

/** ebt_basic_match() == 0 (legacy), or the nft-bridge.c expressions pass (nft). */
function basicMatch(e: Entry, pkt: Packet, nft: boolean): boolean {
  const r = e.rule;
  const m = pkt.meta;
  const mb = pkt.metaBytes;
  const d = pkt.data;
  const ethproto = ebtEthProto(pkt, nft);
  if (r.is8023) {
    if ((ethproto < ETH_P_802_3_MIN) === r.invProto) return false;
  } else if (!r.anyProto && (r.ethproto !== ethproto) !== r.invProto) return false;
  const hasIn = m[M_IIF] !== 0;
  const hasOut = m[M_OIF] !== 0;
  if (nft) {
    if (e.iif && nftNameDiffers(e.iif, mb, M_IIFNAME) !== r.invIif) return false;
    if (e.oif && nftNameDiffers(e.oif, mb, M_OIFNAME) !== r.invOif) return false;
    if (e.lin && nftNameDiffers(e.lin, mb, M_BRIINAME) !== r.invLogicalIn) return false;
    if (e.lout && nftNameDiffers(e.lout, mb, M_BRIONAME) !== r.invLogicalOut) return false;
  } else {
    if (e.iif && devCheck(e.iif, hasIn, mb, M_IIFNAME) !== r.invIif) return false;
    if (e.oif && devCheck(e.oif, hasOut, mb, M_OIFNAME) !== r.invOif) return false;
    if (e.lin && hasIn && mb[M_BRIINAME * 4] !== 0 && devCheck(e.lin, true, mb, M_BRIINAME) !== r.invLogicalIn) return false;
    if (e.lout && hasOut && mb[M_BRIONAME * 4] !== 0 && devCheck(e.lout, true, mb, M_BRIONAME) !== r.invLogicalOut) return false;
  }
  if (r.src && macDiffers(d, 6, r.src.addr, r.src.mask) !== r.invSrc) return false;
  if (r.dst && macDiffers(d, 0, r.dst.addr, r.dst.mask) !== r.invDst) return false;
  return true;
}

export function ebtReferenceTable(rs: EbtRuleset, table: EbtTableName, opts: EbtEngineOptions = {}): EbtReferenceEngine {
  const file = opts.file ?? '<ruleset>';
  const backend: Backend = opts.backend ?? 'nft';
  const nft = backend === 'nft';
  const nftBroute = nft && table === 'broute';
  const t = rs.tables.get(table);
  const env: EbtEnv = { ...newXtEnv('ip', opts), macOf: opts.macOf ?? (() => undefined), backend };
  let trace = false;
  // the describer of the traced run (TableEngine.run): a rule's event words the packet after the rule, as nft_trace_packet() reports it
  let describe: ((pkt: Packet) => string) | null = null;
  const event = (kind: TraceKind, chain: string, rule: number, pkt: Packet): TraceEvent => {
    const ev: TraceEvent = { kind, chain, rule };
    if (describe !== null) ev.packet = describe(pkt);
    events.push(ev);
    return ev;
  };
  let events: TraceEvent[] = [];

  const chains = new Map<string, Chain>();
  const astChains = t ? [...t.chains.values()] : [];
  for (const c of astChains) {
    chains.set(c.name, { name: c.name, builtin: c.builtin, entries: [], policy: ebtVerdict(c.policy), policyCounter: { packets: 0, bytes: 0 } });
  }
  const refused = (err: unknown, pos: EbtRule['pos'], name: string): never => {
    if (err instanceof NotModelled) throw new NfvmError('check', err.message, file, pos, name);
    throw err;
  };
  for (const c of astChains) {
    const chain = chains.get(c.name)!;
    c.rules.forEach((r, idx) => {
      const matches: EbtMatchFn[] = [];
      const watchers: EbtMatchFn[] = [];
      for (const m of r.matches) {
        const ref = findEbtModule(m.name)?.reference;
        if (ref === undefined || typeof ref === 'string' || !ref.mt) {
          throw new NfvmError('check', `${m.kind} ${m.name}: semantics not modelled yet`, file, m.pos, m.name);
        }
        try {
          (m.kind === 'watcher' ? watchers : matches).push(ref.mt(m.data, env));
        } catch (err) {
          refused(err, m.pos, m.name);
        }
      }
      let target: Target;
      const tg = r.target;
      if (tg.kind === 'verdict') target = { kind: 'verdict', verdict: ebtVerdict(tg.verdict) };
      else if (tg.kind === 'jump') {
        const to = chains.get(tg.chain);
        if (!to || to.builtin) throw new NfvmError('check', `jump to unknown chain ${tg.chain}`, file, tg.pos, tg.chain);
        target = { kind: 'jump', chain: to };
      } else {
        const ref = findEbtTarget(tg.name)?.reference;
        if (ref === undefined || typeof ref === 'string' || !ref.tg) {
          throw new NfvmError('check', `target ${tg.name}: semantics not modelled yet`, file, tg.pos, tg.name);
        }
        let fn: EbtTargetFn | undefined;
        try {
          fn = ref.tg(tg.data, env);
        } catch (err) {
          refused(err, tg.pos, tg.name);
        }
        target = { kind: 'ext', fn: fn! };
      }
      chain.entries.push({
        num: idx + 1, rule: r, matches, watchers, target,
        iif: devName(r.iif), oif: devName(r.oif), lin: devName(r.logicalIn), lout: devName(r.logicalOut),
        counter: { packets: 0, bytes: 0 },
      });
    });
  }
  // The jump stack holds at most one frame per user chain (loops are refused at load).
  const stackMax = astChains.length;
  const stackChain: Chain[] = [];
  const stackIdx: number[] = [];

  const par: EbtParam = {
    pkt: undefined as unknown as Packet, d: new Uint8Array(0), meta: new Int32Array(0), hook: 0, nh: 0, end: 0,
    hotdrop: false, env, chain: '', rule: 0,
  };

  /** ebtables-nft's DROP in the broute table: `meta broute set 1; accept`. */
  function brouteAccept(pkt: Packet): number {
    pkt.meta[M_FLAGS] |= F_BR_BROUTE;
    return NF_ACCEPT;
  }

  /** ebt_do_table(): returns NF_ACCEPT or NF_DROP. */
  function doTable(start: Chain, hook: number, pkt: Packet): number {
    par.pkt = pkt;
    par.d = pkt.data;
    par.meta = pkt.meta;
    par.hook = hook;
    par.nh = pkt.meta[M_NHOFF]!;
    par.end = pkt.len;
    par.hotdrop = false;
    let sp = 0;
    let chain = start;
    let i = 0;
    for (;;) {
      let verdict: number;
      if (i < chain.entries.length) {
        const e = chain.entries[i]!;
        if (!basicMatch(e, pkt, nft)) {
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
        if (par.hotdrop) return NF_DROP;
        e.counter.packets += 1;
        e.counter.bytes += pkt.meta[M_LEN]!;
        const ev = trace ? event(TraceKind.RULE, chain.name, e.num, pkt) : undefined;
        for (const w of e.watchers) w(par);
        const tg = e.target;
        if (tg.kind === 'jump') {
          if (sp >= stackMax) return NF_DROP;
          stackChain[sp] = chain;
          stackIdx[sp] = i + 1;
          sp++;
          chain = tg.chain;
          i = 0;
          continue;
        }
        if (tg.kind === 'verdict' && nftBroute && tg.verdict === EBT_DROP) return brouteAccept(pkt);
        verdict = tg.kind === 'verdict' ? tg.verdict : tg.fn(par);
        if (ev !== undefined && describe !== null && tg.kind !== 'verdict') ev.packet = describe(pkt);
        if (verdict === EBT_CONTINUE) {
          i++;
          continue;
        }
        if (verdict !== EBT_RETURN) return verdict === EBT_ACCEPT ? NF_ACCEPT : NF_DROP;
        if (sp === 0) {
          // ebt_do_table: WARN(sp == 0, "RETURN on base chain") and acts as EBT_CONTINUE;
          // nf_tables (ebtables-nft's `return`, or nft_target_eval_bridge's NFT_RETURN): the base chain's policy
          i = nft ? chain.entries.length : i + 1;
          continue;
        }
      } else {
        // the end of the chain: its policy
        verdict = chain.policy;
        if (verdict !== EBT_RETURN || sp === 0) {
          chain.policyCounter.packets += 1;
          chain.policyCounter.bytes += pkt.meta[M_LEN]!;
          if (trace) event(TraceKind.POLICY, chain.name, chain.entries.length + 1, pkt);
          if (verdict === EBT_ACCEPT) return NF_ACCEPT;
          if (verdict === EBT_DROP && nftBroute && !chain.builtin) return brouteAccept(pkt);
          if (verdict !== EBT_RETURN) return NF_DROP;
          // a RETURN policy with an empty stack cannot be loaded on a base chain; drop as the kernel's
          // fall-through would
          return NF_DROP;
        }
        if (trace) event(TraceKind.RETURN, chain.name, chain.entries.length + 1, pkt);
      }
      // letsreturn
      sp--;
      chain = stackChain[sp]!;
      i = stackIdx[sp]!;
    }
  }

  return {
    table,
    run(chainName: string, pkt: Packet, describeWith?: (pkt: Packet) => string): number {
      const chain = chains.get(chainName);
      const hook = EBT_BUILTIN_HOOK[chainName];
      if (!chain || !chain.builtin || hook === undefined) throw new RangeError(`table ${table} has no builtin chain ${chainName}`);
      describe = trace ? (describeWith ?? null) : null;
      try {
        return doTable(chain, hook, pkt);
      } finally {
        describe = null;
      }
    },
    counters() {
      const out = new Map<string, { rules: Count[]; policy: Count | undefined }>();
      for (const c of chains.values()) {
        out.set(c.name, {
          rules: c.entries.map((e) => ({ packets: e.counter.packets, bytes: e.counter.bytes })),
          policy: c.builtin ? { packets: c.policyCounter.packets, bytes: c.policyCounter.bytes } : undefined,
        });
      }
      return out;
    },
    zero() {
      for (const c of chains.values()) {
        for (const e of c.entries) e.counter.packets = e.counter.bytes = 0;
        c.policyCounter.packets = c.policyCounter.bytes = 0;
      }
    },
    setTrace(on: boolean) {
      trace = on;
      env.recording = on;
    },
    takeTrace(): TraceEvent[] {
      const ev = events;
      events = [];
      return ev;
    },
    takeActions(): TargetAction[] {
      const a = env.actions;
      env.actions = [];
      return a;
    },
    lastReject() {
      return undefined;
    },
    setChooser(c: Chooser | null) {
      env.rng.chooser = c;
    },
  };
}
