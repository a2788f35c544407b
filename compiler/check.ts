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
import { NfvmError } from './errors.js';
import { BUILTIN_HOOK, type Chain, type Rule, type Ruleset, type Table } from './ast.js';
import { findMatch, findTarget } from './ext/registry.js';
import type { CheckContext, ExtModule, KnownObjects } from './ext/types.js';

const HOOK_NAMES = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

export function hookMaskNames(mask: number): string {
  const r: string[] = [];
  for (let h = 0; h < 5; h++) if (mask & (1 << h)) r.push(HOOK_NAMES[h]!);
  return r.join('/');
}

/** Hooks each chain is reachable from; throws on a loop. */
export function reachability(t: Table, file: string): Map<string, number> {
  const masks = new Map<string, number>();
  for (const c of t.chains.values()) masks.set(c.name, 0);
  // iterative DFS with an explicit stack: chain graphs from untrusted input may be deep
  for (const c of t.chains.values()) {
    if (!c.builtin) continue;
    const hook = BUILTIN_HOOK[c.name]!;
    const bit = 1 << hook;
    const onPath = new Set<string>();
    const visitedThisHook = new Set<string>();
    type Frame = { chain: Chain; idx: number };
    const stack: Frame[] = [{ chain: c, idx: 0 }];
    onPath.add(c.name);
    masks.set(c.name, masks.get(c.name)! | bit);
    while (stack.length) {
      const f = stack[stack.length - 1]!;
      if (f.idx >= f.chain.rules.length) {
        onPath.delete(f.chain.name);
        stack.pop();
        continue;
      }
      const r = f.chain.rules[f.idx++]!;
      if (r.target.kind !== 'jump' && r.target.kind !== 'goto') continue;
      const dest = t.chains.get(r.target.chain);
      if (!dest) continue;
      if (onPath.has(dest.name)) {
        const path = stack.map((s) => s.chain.name);
        const from = path.indexOf(dest.name);
        throw new NfvmError(
          'check',
          `chain loop ${[...path.slice(from), dest.name].join(' -> ')} (the kernel refuses the table: Too many levels of symbolic links)`,
          file,
          r.target.pos,
          dest.name,
        );
      }
      masks.set(dest.name, masks.get(dest.name)! | bit);
      if (visitedThisHook.has(dest.name)) continue;
      visitedThisHook.add(dest.name);
      onPath.add(dest.name);
      stack.push({ chain: dest, idx: 0 });
    }
  }
  return masks;
}

export function checkTable(rs: Ruleset, t: Table, file: string, objects?: KnownObjects): void {
  const masks = reachability(t, file);
  for (const c of t.chains.values()) {
    const hookMask = masks.get(c.name)!;
    for (const r of c.rules) checkRule(rs, t, r, hookMask, file, objects);
  }
}

function checkRule(rs: Ruleset, t: Table, r: Rule, hookMask: number, file: string, objects: KnownObjects | undefined) {
  const ctx: CheckContext = { family: rs.family, table: t.name, hookMask, rule: r, objects };
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
