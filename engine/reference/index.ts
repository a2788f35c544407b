/**
 * The x_tables evaluator: the meaning of a ruleset (`--engine reference`),
 * x_tables' own traversal over the AST. It shares nothing with the compiler
 * or the bytecode VM except the parser's AST, the packet (vm/packet.ts) and
 * generator (vm/random.ts); traverse.ts is ipt_do_table()/ip6t_do_table(),
 * and each rule's matches and target are the `reference` faces of their
 * extension modules (ext/match/NAME.ts, ext/target/NAME.ts: ports of the
 * kernel's xt_* functions). A module whose face is a refusal makes the
 * ruleset refused ("match X: semantics not modelled yet").
 *
 * Packets that the kernel would have dropped before any netfilter hook
 * (ip_rcv_core() / ipv6_rcv(): not the table's family, a header shorter
 * than the fixed one, a wrong version, IPv4 ihl < 5 or tot_len outside
 * [ihl*4, frame], IPv6 payload length past the frame) never reach the
 * table: run() returns NF_DROP and counts and traces nothing.
 */
import { BUILTIN_HOOK, type Rule, type Ruleset, type TableName } from '../../core/ast.js';
import { NfvmError } from '../../core/errors.js';
import type { Count, TableEngine, TraceEvent } from '../engine.js';
import type { EngineOptions } from '../../ext/types.js';
import { M_LEN, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NF_DROP, NFPROTO_IPV4, NFPROTO_IPV6, type Backend } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { Chooser } from '../../vm/random.js';
import { findMatch, findTarget } from '../../ext/registry.js';
import {
  doTable, standardVerdict, type RefChain, type RefEntry, type RefTarget, type TraverseState,
} from './traverse.js';
import { NotModelled, newXtEnv, parseInterface, type MatchFn, type TargetAction, type XtEnv } from '../../ext/xt.js';

export type { TargetAction } from '../../ext/xt.js';

export interface ReferenceOptions extends EngineOptions {
  /** File name for refusals ("semantics not modelled yet"). */
  file?: string;
  /**
   * The backend the ruleset was loaded with (default 'legacy'): with 'nft', the matches
   * iptables-nft lowers to nf_tables expressions mean what those expressions do (ext/types.ts).
   */
  backend?: Backend;
}

/** The TableEngine contract plus the target actions the reference records. */
export interface ReferenceTableEngine extends TableEngine {
  /**
   * LOG / NFLOG / TRACE / REJECT / NAT actions recorded since the last call
   * (recorded only while tracing is on, like the trace), then cleared.
   */
  takeActions(): TargetAction[];
}


function isZero(a: Uint8Array | undefined): boolean {
  return !a || a.every((b) => b === 0);
}

/** The IP part of `struct ipt_entry` is all zero and there are no matches (unconditional()). */
function unconditional(r: Rule): boolean {
  return (
    isZero(r.src?.addr) && isZero(r.src?.mask) && isZero(r.dst?.addr) && isZero(r.dst?.mask) &&
    !r.invSrc && !r.invDst && r.iif === '' && r.oif === '' && !r.invIif && !r.invOif &&
    r.proto === 0 && !r.invProto && !r.frag && !r.invFrag && r.matches.length === 0
  );
}

function validL3(pkt: Packet, family: 'ip' | 'ip6'): boolean {
  const m = pkt.meta;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  const len = m[M_LEN]!;
  if (nh + len > pkt.len) return false;
  if (family === 'ip') {
    if (m[M_NFPROTO] !== NFPROTO_IPV4 || len < 20 || d[nh]! >> 4 !== 4) return false;
    const ihl = d[nh]! & 0x0f;
    const totLen = (d[nh + 2]! << 8) | d[nh + 3]!;
    return ihl >= 5 && totLen >= ihl * 4 && totLen <= len;
  }
  if (m[M_NFPROTO] !== NFPROTO_IPV6 || len < 40 || d[nh]! >> 4 !== 6) return false;
  return ((d[nh + 4]! << 8) | d[nh + 5]!) + 40 <= len;
}

export function referenceTable(rs: Ruleset, table: TableName, opts: ReferenceOptions = {}): ReferenceTableEngine {
  const family = rs.family;
  const file = opts.file ?? '<ruleset>';
  const backend = opts.backend ?? 'legacy';
  const t = rs.tables.get(table);
  const env: XtEnv = newXtEnv(family, opts);
  const xt = env.xt;
  // what the extensions' checkentry reaches: the options, with the node's clock and named tables
  const eng = { ...opts, xt };
  const st: TraverseState = { env, stackSize: 1, trace: false, events: [], nftPktinfo: backend === 'nft', describe: null };

  const chains = new Map<string, RefChain>();
  const policies = new Map<string, Count>();
  const astChains = t ? [...t.chains.values()] : [];
  for (const c of astChains) {
    chains.set(c.name, { name: c.name, builtin: c.builtin, entries: [] });
    if (!c.builtin) st.stackSize++;
  }

  const entry = (chain: RefChain, num: number, r: Rule | undefined, target: RefTarget, matches: MatchFn[], counter: Count): RefEntry => {
    const i = parseInterface(r?.iif ?? '');
    const o = parseInterface(r?.oif ?? '');
    const isStandardNegative = target.kind === 'verdict' || target.kind === 'return';
    return {
      chain, num, family,
      src: r?.src?.addr, smsk: r?.src?.mask, dst: r?.dst?.addr, dmsk: r?.dst?.mask,
      invSrc: r?.invSrc ?? false, invDst: r?.invDst ?? false,
      iniface: i.name, inifaceMask: i.mask, outiface: o.name, outifaceMask: o.mask,
      invIn: r?.invIif ?? false, invOut: r?.invOif ?? false,
      proto: r?.proto ?? 0, invProto: r?.invProto ?? false,
      frag: r?.frag ?? false, invFrag: r?.invFrag ?? false,
      matches, target,
      tailLike: isStandardNegative && (r === undefined || unconditional(r)),
      counter,
    };
  };

  for (const c of astChains) {
    const chain = chains.get(c.name)!;
    c.rules.forEach((r, idx) => {
      const matches = r.matches.map((m): MatchFn => {
        const make = m.unknown ? undefined : findMatch(m.name, family)?.reference;
        if (make === undefined || typeof make === 'string') throw new NfvmError('check', `match ${m.name}: semantics not modelled yet`, file, m.pos, m.name);
        try {
          return make(m.data, family, backend, eng);
        } catch (err) {
          if (err instanceof NotModelled) throw new NfvmError('check', err.message, file, m.pos, m.name);
          throw err;
        }
      });
      let target: RefTarget;
      const tg = r.target;
      switch (tg.kind) {
        case 'none': target = { kind: 'next' }; break;
        case 'verdict': target = tg.name === 'RETURN' ? { kind: 'return' } : { kind: 'verdict', verdict: standardVerdict(tg.name) }; break;
        case 'jump':
        case 'goto': {
          const to = chains.get(tg.chain);
          if (!to) throw new NfvmError('check', `jump to unknown chain ${tg.chain}`, file, tg.pos, tg.chain);
          target = { kind: 'jump', chain: to, goto: tg.kind === 'goto' };
          break;
        }
        case 'ext': {
          const make = findTarget(tg.name, family)?.reference;
          if (make === undefined || typeof make === 'string') throw new NfvmError('check', `target ${tg.name}: semantics not modelled yet`, file, tg.pos, tg.name);
          try {
            target = { kind: 'ext', fn: make(tg.data, family, eng) };
          } catch (err) {
            if (err instanceof NotModelled) throw new NfvmError('check', err.message, file, tg.pos, tg.name);
            throw err;
          }
          break;
        }
        case 'unknown':
          throw new NfvmError('check', `target ${tg.name}: semantics not modelled yet`, file, tg.pos, tg.name);
      }
      chain.entries.push(entry(chain, idx + 1, r, target, matches, { packets: 0, bytes: 0 }));
    });
    const n = c.rules.length + 1;
    if (c.builtin) {
      const policy: Count = { packets: 0, bytes: 0 };
      policies.set(c.name, policy);
      chain.entries.push(entry(chain, n, undefined, { kind: 'verdict', verdict: standardVerdict(c.policy ?? 'ACCEPT') }, [], policy));
    } else {
      chain.entries.push(entry(chain, n, undefined, { kind: 'return' }, [], { packets: 0, bytes: 0 }));
    }
  }

  return {
    table,
    run(chainName: string, pkt: Packet, describe?: (pkt: Packet) => string): number {
      const chain = chains.get(chainName);
      const hook = BUILTIN_HOOK[chainName];
      if (!chain || !chain.builtin || hook === undefined) throw new RangeError(`table ${table} has no builtin chain ${chainName}`);
      env.reject = undefined;
      if (!validL3(pkt, family)) return NF_DROP;
      st.describe = st.trace ? (describe ?? null) : null;
      try {
        return doTable(st, chain, hook, pkt, family);
      } finally {
        st.describe = null;
      }
    },
    counters() {
      const out = new Map<string, { rules: Count[]; policy: Count | undefined }>();
      for (const c of chains.values()) {
        const rules = c.entries.slice(0, -1).map((e) => ({ packets: e.counter.packets, bytes: e.counter.bytes }));
        const p = policies.get(c.name);
        out.set(c.name, { rules, policy: p ? { packets: p.packets, bytes: p.bytes } : undefined });
      }
      return out;
    },
    zero() {
      for (const c of chains.values()) for (const e of c.entries) e.counter.packets = e.counter.bytes = 0;
    },
    setTrace(on: boolean) {
      st.trace = on;
      env.recording = on;
    },
    takeTrace(): TraceEvent[] {
      const ev = st.events;
      st.events = [];
      return ev;
    },
    takeActions(): TargetAction[] {
      const a = env.actions;
      env.actions = [];
      return a;
    },
    lastReject() {
      return env.reject;
    },
    setChooser(c: Chooser | null) {
      env.rng.chooser = c;
    },
  };
}
