/**
 * The table of every match and target module nfvm knows. Adding an
 * extension is one file under `ext/match/` or `ext/target/` plus one line
 * here.
 */
import type { Family } from '../core/ast.js';
import type { MatchModule, TargetModule } from './types.js';
import { MATCHES } from './match/index.js';
import { TARGETS } from './target/index.js';

const matchByName = new Map<string, MatchModule[]>();
const targetByName = new Map<string, TargetModule[]>();

function index<M extends { name: string; aliases?: readonly string[] }>(mods: readonly M[], into: Map<string, M[]>) {
  for (const m of mods) {
    for (const n of [m.name, ...(m.aliases ?? [])]) {
      const list = into.get(n) ?? [];
      list.push(m);
      into.set(n, list);
    }
  }
}
index(MATCHES, matchByName);
index(TARGETS, targetByName);

/** name → module for one family (the first module of that name valid for the family). */
function perFamily<M extends { family?: Family }>(byName: Map<string, M[]>, family: Family): Map<string, M> {
  const out = new Map<string, M>();
  for (const [name, mods] of byName) {
    const m = mods.find((x) => x.family === undefined || x.family === family);
    if (m) out.set(name, m);
  }
  return out;
}
const matchIp = perFamily(matchByName, 'ip');
const matchIp6 = perFamily(matchByName, 'ip6');
const targetIp = perFamily(targetByName, 'ip');
const targetIp6 = perFamily(targetByName, 'ip6');

export function findMatch(name: string, family: Family): MatchModule | undefined {
  return (family === 'ip' ? matchIp : matchIp6).get(name);
}

export function findTarget(name: string, family: Family): TargetModule | undefined {
  return (family === 'ip' ? targetIp : targetIp6).get(name);
}

export function allMatches(): readonly MatchModule[] {
  return MATCHES;
}

export function allTargets(): readonly TargetModule[] {
  return TARGETS;
}

let optionNames: string[] | undefined;
/** Every long option of every module (for "did you mean" hints). */
export function allOptionNames(): readonly string[] {
  if (!optionNames) {
    const s = new Set<string>();
    for (const m of [...MATCHES, ...TARGETS]) for (const o of m.options) s.add(o.name);
    optionNames = [...s];
  }
  return optionNames;
}

/**
 * Kernel targets nfvm has no module for. `-j NAME` with one of these is
 * kept verbatim (and reported) instead of being taken for a jump to a
 * missing chain.
 */
export const KNOWN_FOREIGN_TARGETS: ReadonlySet<string> = new Set([
  'ARPMANGLE', 'CLUSTERIP', 'MIRROR',
  'SAME', 'ULOG', 'IPV4OPTSSTRIP',
  'ROUTE', 'FLOWOFFLOAD', 'IMQ', 'TARPIT', 'DELUDE', 'CHAOS', 'STEAL', 'SYSRQ', 'ACCOUNT', 'XOR',
  'LOGMARK', 'DHCPMAC', 'ECHO', 'IPMARK', 'TRACE_LOG',
]);
