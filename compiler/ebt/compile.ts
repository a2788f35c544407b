/**
 * The bridge-family compiler: one ebtables table → a VM Program, as
 * ebtables-nft (iptables 1.8.9, iptables/nft-bridge.c nft_bridge_add,
 * iptables/nft.c) builds its nf_tables rules. Per rule:
 *  1. `-i`, `-o`: `meta load iifname|oifname` + cmp of the name with its NUL,
 *     or of the prefix before a trailing `+`;
 *  2. `--logical-in`, `--logical-out`: `meta load bri_iifname|bri_oifname`, compared likewise;
 *  3. `-s`, `-d`: the MAC at link header +6 / +0; a whole-byte prefix mask
 *     loads only those bytes, any other mask loads 6 bytes and masks them;
 *  4. `-p`: 2 bytes at link header +12, `cmp eq|neq`; `-p LENGTH` `cmp lt|gte` 0x0600;
 *  5. each match in order (native expressions or nft_compat), then each
 *     watcher (`[ target name log rev 0 ]`), then `counter`;
 *  6. the target: `immediate reg 0 accept|drop|return`, `jump -> CHAIN`,
 *     nothing for CONTINUE, or the target through nft_compat.
 * A user chain with an ACCEPT or DROP policy ends in a policy rule
 * (`counter` + the verdict; ebt_add_policy_rule()); a base chain's policy
 * is its nf_tables policy. In the broute table a rule's DROP is
 * `meta set broute` and accept (the base chain's DROP policy stays a drop). With `policyRules` base chains are wrapped as
 * compiler/compile.ts does (engine/ebt-vm-table.ts counts the policy there).
 */
import type { EbtChain, EbtRule, EbtRuleset, EbtTableName } from '../../core/ebt-ast.js';
import { EBT_BUILTIN_HOOK } from '../../core/ebt-ast.js';
import { NfvmError } from '../../core/errors.js';
import {
  EBT_ACCEPT, EBT_CONTINUE, EBT_DROP, EBT_RETURN, NFPROTO_BRIDGE, NF_ACCEPT, NF_DROP,
} from '../../core/netfilter.js';
import { ProgramBuilder } from '../../vm/builder.js';
import {
  M_HOOK, M_NHOFF, NFT_CMP_EQ, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_NEQ, NFT_CONTINUE, NFT_JUMP,
  NFT_META_BRI_BROUTE, NFT_META_BRI_IIFNAME, NFT_META_BRI_OIFNAME, NFT_META_IIFNAME, NFT_META_OIFNAME, NFT_PAYLOAD_LL_HEADER,
  NFT_REG32_01, NFT_RETURN,
} from '../../vm/layout.js';
import { emitBitwise, emitCmp, emitCounter, emitImmediate, emitMetaGet, emitMetaSet, emitPayload, emitVerdict } from '../../vm/expr/index.js';
import { emitXtCompat } from '../../vm/expr/compat.js';
import type { Packet } from '../../vm/packet.js';
import type { Program } from '../../vm/program.js';
import { findEbtModule, findEbtTarget } from '../../ext/ebt/registry.js';
import {
  ebtVerdict, type EbtEngineOptions, type EbtEnv, type EbtMatchFn, type EbtModule, type EbtParam, type EbtTargetFn,
} from '../../ext/ebt/types.js';
import { NotModelled, newXtEnv } from '../../ext/xt.js';
import { bodyChain, declareChains, wrapBuiltin, RuleInfos } from '../compile.js';

export interface EbtCompileOptions {
  engine?: EbtEngineOptions;
  file?: string;
  /** Wrap builtin chains so that their policy is counted (compiler/compile.ts). */
  policyRules?: boolean;
  /** Run the load-time validator (default true). */
  validate?: boolean;
}

export interface EbtCompiledTable {
  program: Program;
  /** By Program rule index; a user chain's policy rule is kind 'policy'. */
  rules: RuleInfos;
  chainNames: string[];
  /** What the program's nft_compat functions record into (actions) and read (the node). */
  env: EbtEnv;
}

/** The nft_compat parameter block of one expression, refilled per packet. */
function newPar(env: EbtEnv): EbtParam {
  return {
    pkt: undefined as unknown as Packet, d: new Uint8Array(0), meta: new Int32Array(0), hook: 0, nh: 0, end: 0,
    hotdrop: false, env, chain: '', rule: 0,
  };
}

function fill(par: EbtParam, pkt: Packet): void {
  par.pkt = pkt;
  par.d = pkt.data;
  par.meta = pkt.meta;
  par.hook = pkt.meta[M_HOOK]!;
  par.nh = pkt.meta[M_NHOFF]!;
  par.end = pkt.len;
  par.hotdrop = false;
}

/** nft_match_eval(): 1 matched, 0 not, -1 hotdrop. */
function compatMatch(mt: EbtMatchFn, env: EbtEnv): (pkt: Packet) => number {
  const par = newPar(env);
  return (pkt) => {
    fill(par, pkt);
    const r = mt(par);
    return par.hotdrop ? -1 : r ? 1 : 0;
  };
}

/** nft_target_eval_bridge(): the EBT_* verdict as an nf_tables one. */
function compatTarget(tg: EbtTargetFn, env: EbtEnv): (pkt: Packet) => number {
  const par = newPar(env);
  return (pkt) => {
    fill(par, pkt);
    const v = tg(par);
    if (par.hotdrop) return NF_DROP;
    switch (v) {
      case EBT_ACCEPT: return NF_ACCEPT;
      case EBT_DROP: return NF_DROP;
      case EBT_CONTINUE: return NFT_CONTINUE;
      case EBT_RETURN: return NFT_RETURN;
      default: return v;
    }
  };
}

/** The bytes of an interface name as add_iface compares them: with the NUL, or the prefix before `+`. */
function ifaceBytes(name: string): number[] {
  const prefix = name.endsWith('+');
  const bytes = [...(prefix ? name.slice(0, -1) : name)].map((ch) => ch.charCodeAt(0) & 0xff);
  if (!prefix) bytes.push(0);
  return bytes;
}

export function compileEbtTable(rs: EbtRuleset, tableName: EbtTableName, opts: EbtCompileOptions = {}): EbtCompiledTable {
  const file = opts.file ?? '<input>';
  const table = rs.tables.get(tableName);
  if (!table) throw new NfvmError('check', `table ${tableName} is not in the ruleset`, file, undefined, tableName);
  const engine = opts.engine ?? {};
  const env: EbtEnv = { ...newXtEnv('ip', engine), macOf: engine.macOf ?? (() => undefined), backend: 'nft' };
  const b = new ProgramBuilder(NFPROTO_BRIDGE, tableName);
  const wrap = opts.policyRules === true;
  const rules = new RuleInfos();
  const chainNames: string[] = [];
  let counters = 0;

  /**
   * A DROP verdict (a rule's or a user chain's policy rule): in the broute
   * table ebtables-nft's add_meta_broute() + accept (nft-bridge.c
   * _add_action()): route the frame.
   */
  const emitDrop = (): void => {
    if (tableName !== 'broute') return emitVerdict(b, NF_DROP);
    emitImmediate(b, NFT_REG32_01, [1]);
    emitMetaSet(b, NFT_META_BRI_BROUTE, NFT_REG32_01);
    emitVerdict(b, NF_ACCEPT);
  };

  const withReg = (len: number, f: (r: number) => void): void => {
    const r = b.getRegister(len);
    try {
      f(r);
    } finally {
      b.releaseRegister(len);
    }
  };
  const iface = (key: number, name: string, inv: boolean): void => {
    if (name === '') return;
    // `! -i +`: add_iface compares the name with an impossible one, so the rule never matches
    const bytes = name === '+' && inv ? [...'INVAL/D'].map((ch) => ch.charCodeAt(0)).concat(0) : ifaceBytes(name);
    if (name === '+' && inv) inv = false;
    withReg(16, (r) => {
      emitMetaGet(b, r, key);
      if (bytes.length) emitCmp(b, inv ? NFT_CMP_NEQ : NFT_CMP_EQ, r, bytes);
    });
  };
  const mac = (offset: number, m: { addr: Uint8Array; mask: Uint8Array } | undefined, inv: boolean): void => {
    if (!m) return;
    const op = inv ? NFT_CMP_NEQ : NFT_CMP_EQ;
    let whole = 0;
    while (whole < 6 && m.mask[whole] === 0xff) whole++;
    const prefix = m.mask.every((v, i) => (i < whole ? v === 0xff : v === 0));
    if (prefix && whole === 0) return;
    withReg(6, (r) => {
      if (prefix) {
        emitPayload(b, r, NFT_PAYLOAD_LL_HEADER, offset, whole);
        emitCmp(b, op, r, m.addr.subarray(0, whole));
        return;
      }
      emitPayload(b, r, NFT_PAYLOAD_LL_HEADER, offset, 6);
      emitBitwise(b, r, r, m.mask, new Uint8Array(6));
      emitCmp(b, op, r, m.addr.map((v, i) => v & m.mask[i]!));
    });
  };
  const moduleOf = (name: string, pos: EbtRule['pos'], kind: string, m: EbtModule | undefined): EbtModule => {
    if (!m || typeof m.lower === 'string' || typeof m.reference === 'string') {
      const why = m && typeof m.lower === 'string' ? m.lower : 'semantics not modelled yet';
      throw new NfvmError('check', `${kind} ${name}: ${why}`, file, pos, name);
    }
    return m;
  };
  const refused = (err: unknown, pos: EbtRule['pos'], name: string): never => {
    if (err instanceof NotModelled) throw new NfvmError('check', err.message, file, pos, name);
    throw err;
  };

  const lowerRule = (r: EbtRule): void => {
    iface(NFT_META_IIFNAME, r.iif, r.invIif);
    iface(NFT_META_OIFNAME, r.oif, r.invOif);
    iface(NFT_META_BRI_IIFNAME, r.logicalIn, r.invLogicalIn);
    iface(NFT_META_BRI_OIFNAME, r.logicalOut, r.invLogicalOut);
    mac(6, r.src, r.invSrc);
    mac(0, r.dst, r.invDst);
    if (r.is8023) {
      withReg(2, (reg) => {
        emitPayload(b, reg, NFT_PAYLOAD_LL_HEADER, 12, 2);
        emitCmp(b, r.invProto ? NFT_CMP_GTE : NFT_CMP_LT, reg, [0x06, 0x00]);
      });
    } else if (!r.anyProto) {
      withReg(2, (reg) => {
        emitPayload(b, reg, NFT_PAYLOAD_LL_HEADER, 12, 2);
        emitCmp(b, r.invProto ? NFT_CMP_NEQ : NFT_CMP_EQ, reg, [(r.ethproto >> 8) & 0xff, r.ethproto & 0xff]);
      });
    }
    const ordered = [...r.matches.filter((m) => m.kind === 'match'), ...r.matches.filter((m) => m.kind === 'watcher')];
    for (const m of ordered) {
      const mod = moduleOf(m.name, m.pos, m.kind, findEbtModule(m.name));
      const low = mod.lower as Exclude<EbtModule['lower'], string>;
      if (low.native) {
        low.native(b, m.data, env);
        continue;
      }
      const ref = mod.reference as Exclude<EbtModule['reference'], string>;
      try {
        if (m.kind === 'match') emitXtCompat(b, { kind: 'match', name: m.name, rev: low.rev, fn: compatMatch(ref.mt!(m.data, env), env) });
        else {
          const w = ref.mt!(m.data, env);
          const par = newPar(env);
          emitXtCompat(b, {
            kind: 'target', name: m.name, rev: low.rev,
            fn: (pkt) => {
              fill(par, pkt);
              w(par);
              return NFT_CONTINUE;
            },
          });
        }
      } catch (err) {
        refused(err, m.pos, m.name);
      }
    }
    emitCounter(b);
    const t = r.target;
    if (t.kind === 'verdict') {
      if (t.verdict === 'ACCEPT') emitVerdict(b, NF_ACCEPT);
      else if (t.verdict === 'DROP') emitDrop();
      else if (t.verdict === 'RETURN') emitVerdict(b, NFT_RETURN);
    } else if (t.kind === 'jump') {
      const to = table.chains.get(t.chain);
      if (!to || to.builtin) throw new NfvmError('check', `jump to unknown chain ${t.chain}`, file, t.pos, t.chain);
      emitVerdict(b, NFT_JUMP, t.chain);
    } else {
      const mod = moduleOf(t.name, t.pos, 'target', findEbtTarget(t.name));
      const low = mod.lower as Exclude<EbtModule['lower'], string>;
      const ref = mod.reference as Exclude<EbtModule['reference'], string>;
      try {
        emitXtCompat(b, { kind: 'target', name: t.name, rev: low.rev, fn: compatTarget(ref.tg!(t.data, env), env) });
      } catch (err) {
        refused(err, t.pos, t.name);
      }
    }
  };

  declareChains(b, table.chains.values(), EBT_BUILTIN_HOOK, wrap, chainNames);
  for (const ch of table.chains.values()) lowerChain(ch);

  function lowerChain(ch: EbtChain): void {
    const into = ch.builtin && wrap ? bodyChain(ch.name) : ch.name;
    if (ch.builtin && wrap) counters = wrapBuiltin(b, ch, rules, counters);
    ch.rules.forEach((r, i) => {
      b.rule(into, r.pos);
      lowerRule(r);
      rules.push(ch.name, i + 1, 'rule', counters++, false);
    });
    if (!ch.builtin && (ch.policy === 'ACCEPT' || ch.policy === 'DROP')) {
      b.rule(into, ch.pos);
      emitCounter(b);
      if (ebtVerdict(ch.policy) === EBT_ACCEPT) emitVerdict(b, NF_ACCEPT);
      else emitDrop();
      rules.push(ch.name, ch.rules.length + 1, 'policy', counters++, true);
    }
  }

  const program = b.finish({ validate: opts.validate !== false });
  if (rules.length !== program.nrules) throw new Error('compile: rule bookkeeping out of step');
  return { program, rules, chainNames, env };
}
