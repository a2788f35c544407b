/**
 * Load-time checks the kernel performs when a table is committed
 * (x_tables `translate_table()` in net/netfilter/ip_tables.c and
 * ip6_tables.c, `xt_check_match()`/`xt_check_target()` in x_tables.c):
 *
 *  - `mark_source_chains()`: walk every chain reachable from each builtin
 *    chain, record the hooks it is reachable from (`comefrom`), and refuse a
 *    loop (ELOOP);
 *  - per match/target: the `.table`, `.hooks` and `.proto` restrictions of
 *    the extension, then its `checkentry()`, with the hook mask of the rule's
 *    chain (0 for a user chain no builtin chain reaches: such rules pass the
 *    hook checks, as in the kernel).
 *
 * Errors carry the position of the offending rule (iptables-restore itself
 * only says "line N failed" for the COMMIT line).
 */
import type { Backend } from '../core/netfilter.js';
import { NfvmError } from '../core/errors.js';
import { BUILTIN_HOOK, type Rule, type Ruleset, type Table } from '../core/ast.js';
import { findMatch, findTarget } from '../ext/registry.js';
import type { CheckContext, ExtModule, KnownObjects } from '../ext/types.js';

const HOOK_NAMES = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

function hookMaskNames(mask: number): string {
  const r: string[] = [];
  for (let h = 0; h < 5; h++) if (mask & (1 << h)) r.push(HOOK_NAMES[h]!);
  return r.join('/');
}

/**
 * Hooks each chain is reachable from, as a mask per chain in the table's
 * chain order; throws on a loop. Like the kernel's mark_source_chains(),
 * only what a builtin chain reaches is walked, so a loop among unreachable
 * user chains loads (as it does with x_tables).
 */
export function reachability(t: Table, file: string): Int32Array {
  // chains as integers, edges as one (destination, rule) list in chain order (CSR): tables of
  // hundreds of thousands of chains exist (kube-proxy), so no array per chain and no per-visit allocation
  const chains = [...t.chains.values()];
  const n = chains.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(chains[i]!.name, i);
  let nedges = 0;
  for (let i = 0; i < n; i++) {
    for (const rule of chains[i]!.rules) {
      const k = rule.target.kind;
      if (k === 'jump' || k === 'goto') nedges++;
    }
  }
  // chain i's edges are edgeDest[first[i], first[i + 1]), edgeRule (chain-relative rule number) alongside
  const first = new Int32Array(n + 1);
  const edgeDest = new Int32Array(nedges);
  const edgeRule = new Int32Array(nedges);
  let e = 0;
  for (let i = 0; i < n; i++) {
    first[i] = e;
    const rules = chains[i]!.rules;
    for (let r = 0; r < rules.length; r++) {
      const tg = rules[r]!.target;
      if (tg.kind !== 'jump' && tg.kind !== 'goto') continue;
      const j = index.get(tg.chain);
      if (j === undefined) continue;
      edgeDest[e] = j;
      edgeRule[e] = r;
      e++;
    }
  }
  first[n] = e;
  const mask = new Int32Array(n);
  // per hook walk: 0 unvisited, 1 on the current path, 2 done
  const state = new Uint8Array(n);
  const stackChain = new Int32Array(n + 1);
  const stackEdge = new Int32Array(n + 1);
  for (let b = 0; b < n; b++) {
    const c = chains[b]!;
    if (!c.builtin) continue;
    const bit = 1 << BUILTIN_HOOK[c.name]!;
    state.fill(0);
    let sp = 0;
    stackChain[0] = b;
    stackEdge[0] = first[b]!;
    state[b] = 1;
    mask[b]! |= bit;
    while (sp >= 0) {
      const ci = stackChain[sp]!;
      const ei = stackEdge[sp]!;
      if (ei >= first[ci + 1]!) {
        state[ci] = 2;
        sp--;
        continue;
      }
      stackEdge[sp] = ei + 1;
      const di = edgeDest[ei]!;
      if (state[di] === 1) {
        const path: string[] = [];
        for (let k = 0; k <= sp; k++) path.push(chains[stackChain[k]!]!.name);
        const from = path.indexOf(chains[di]!.name);
        const rule = chains[ci]!.rules[edgeRule[ei]!]!;
        const pos = rule.target.kind === 'jump' || rule.target.kind === 'goto' ? rule.target.pos : rule.pos;
        throw new NfvmError(
          'check',
          `chain loop ${[...path.slice(from), chains[di]!.name].join(' -> ')} (the kernel refuses the table: Too many levels of symbolic links)`,
          file,
          pos,
          chains[di]!.name,
        );
      }
      mask[di]! |= bit;
      if (state[di] === 2) continue;
      state[di] = 1;
      sp++;
      stackChain[sp] = di;
      stackEdge[sp] = first[di]!;
    }
  }
  return mask;
}

export function checkTable(rs: Ruleset, t: Table, file: string, objects?: KnownObjects, backend: Backend = 'legacy'): void {
  const masks = reachability(t, file);
  let i = 0;
  for (const c of t.chains.values()) {
    const hookMask = masks[i++]!;
    if (c.rules.length === 0) continue;
    // one context per chain: the rule is the only field that changes
    const ctx: { -readonly [K in keyof CheckContext]: CheckContext[K] } = { family: rs.family, table: t.name, hookMask, rule: c.rules[0]!, objects, backend };
    for (const r of c.rules) {
      ctx.rule = r;
      checkRule(rs, r, ctx, file);
    }
  }
}

function checkRule(rs: Ruleset, r: Rule, ctx: CheckContext, file: string) {
  const prefix = rs.family === 'ip' ? 'ip_tables' : 'ip6_tables';
  for (const m of r.matches) {
    if (m.unknown) continue;
    const mod = findMatch(m.name, rs.family)!;
    const why = checkExt(mod, 'match', m.data, ctx, prefix);
    if (why) throw new NfvmError('check', why, file, m.pos, m.name);
  }
  if (r.target.kind === 'ext') {
    const mod = findTarget(r.target.name, rs.family)!;
    const why = checkExt(mod, 'target', r.target.data, ctx, prefix);
    if (why) throw new NfvmError('check', why, file, r.target.pos, r.target.name);
  }
}

function checkExt(mod: ExtModule<unknown>, what: string, data: unknown, ctx: CheckContext, prefix: string): string | undefined {
  if (mod.tables && !mod.tables.includes(ctx.table)) {
    return `${prefix}: ${mod.name} ${what}: only valid in ${mod.tables.join('/')} table, not ${ctx.table}`;
  }
  if (mod.hooks !== undefined && (ctx.hookMask & ~mod.hooks) !== 0) {
    return `${prefix}: ${mod.name} ${what}: used from hooks ${hookMaskNames(ctx.hookMask)}, but only valid from ${hookMaskNames(mod.hooks)}`;
  }
  if (mod.proto !== undefined && (ctx.rule.proto !== mod.proto || ctx.rule.invProto)) {
    return `${prefix}: ${mod.name} ${what}: only valid for protocol ${mod.proto} (the rule needs -p ${mod.name === 'icmp6' ? 'ipv6-icmp' : mod.name === 'icmp' ? 'icmp' : mod.name})`;
  }
  return mod.check?.(data, ctx);
}
