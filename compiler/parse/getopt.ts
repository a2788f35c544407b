/**
 * The getopt_long() model of the rule parser: iptables' option table
 * (`original_opts[]` and the short option string of xshared.c) and the long
 * option lookup as glibc does it: an exact name wins, a unique prefix is an
 * abbreviation, two different options sharing the prefix are ambiguous;
 * the options of loaded extensions are searched newest first (the order
 * xtables_merge_options gives them). Plus the "did you mean" hint.
 */
import type { OptSpec } from '../../ext/types.js';
import { allOptionNames } from '../../ext/registry.js';
import type { Arg } from './argv.js';
import type { CommandParse, Loaded } from './state.js';

interface BaseOpt extends OptSpec {
  readonly short: string;
}

/** iptables' `original_opts[]` (xshared.c). `short` is the getopt value. */
const BASE_OPTS: readonly BaseOpt[] = [
  { name: 'append', arg: 1, short: 'A' },
  { name: 'delete', arg: 1, short: 'D' },
  { name: 'check', arg: 1, short: 'C' },
  { name: 'insert', arg: 1, short: 'I' },
  { name: 'replace', arg: 1, short: 'R' },
  { name: 'list', arg: 2, short: 'L' },
  { name: 'list-rules', arg: 2, short: 'S' },
  { name: 'flush', arg: 2, short: 'F' },
  { name: 'zero', arg: 2, short: 'Z' },
  { name: 'new-chain', arg: 1, short: 'N' },
  { name: 'delete-chain', arg: 2, short: 'X' },
  { name: 'rename-chain', arg: 1, short: 'E' },
  { name: 'policy', arg: 1, short: 'P' },
  { name: 'source', arg: 1, short: 's' },
  { name: 'destination', arg: 1, short: 'd' },
  { name: 'src', arg: 1, short: 's' },
  { name: 'dst', arg: 1, short: 'd' },
  { name: 'protocol', arg: 1, short: 'p' },
  { name: 'in-interface', arg: 1, short: 'i' },
  { name: 'jump', arg: 1, short: 'j' },
  { name: 'table', arg: 1, short: 't' },
  { name: 'match', arg: 1, short: 'm' },
  { name: 'numeric', arg: 0, short: 'n' },
  { name: 'out-interface', arg: 1, short: 'o' },
  { name: 'verbose', arg: 0, short: 'v' },
  { name: 'wait', arg: 2, short: 'w' },
  { name: 'wait-interval', arg: 2, short: 'W' },
  { name: 'exact', arg: 0, short: 'x' },
  { name: 'fragments', arg: 0, short: 'f' },
  { name: 'version', arg: 0, short: 'V' },
  { name: 'help', arg: 2, short: 'h' },
  { name: 'line-numbers', arg: 0, short: '0' },
  { name: 'modprobe', arg: 1, short: 'M' },
  { name: 'set-counters', arg: 1, short: 'c' },
  { name: 'goto', arg: 1, short: 'g' },
  { name: 'ipv4', arg: 0, short: '4' },
  { name: 'ipv6', arg: 0, short: '6' },
];

/** Exact base option lookups, answered without allocating. */
const BASE_FOUND: ReadonlyMap<string, { base: BaseOpt }> = new Map(BASE_OPTS.map((o) => [o.name, { base: o }]));

/** getopt short option string of iptables: letter → has_arg. */
export const SHORT_OPTS: Readonly<Record<string, 0 | 1 | 2>> = (() => {
  const spec = 'A:C:D:R:I:L::S::M:F::Z::N:X::E:P:Vh::o:p:s:d:j:i:fbvw::W::nt:m:xc:g:46';
  const r: Record<string, 0 | 1 | 2> = Object.create(null);
  for (let i = 0; i < spec.length; ) {
    const c = spec[i]!;
    let n: 0 | 1 | 2 = 0;
    if (spec[i + 1] === ':') n = spec[i + 2] === ':' ? 2 : 1;
    r[c] = n;
    i += 1 + n;
  }
  return r;
})();

/** What a long option names: a base option, or an option of a loaded extension. */
interface Found {
  base?: BaseOpt;
  ext?: Loaded;
  spec?: OptSpec;
}

/**
 * The loaded matches in getopt's table order, one per module.
 * xtables_merge_options puts a module's options first when it is loaded
 * the first time; a second `-m NAME` is a clone (xtables_find_match) whose
 * options are not merged again, and an option of that module goes to its
 * newest instance (command_default skips the older ones: `completed`). So
 * in `-m connmark --mark 1 -m mark --mark 2 -m connmark --mark 3` the last
 * --mark is mark's, which iptables refuses as given twice.
 */
function matchOrder(loaded: readonly Loaded[]): readonly Loaded[] {
  let clone = false;
  for (let i = 0; i < loaded.length && !clone; i++) {
    const m = loaded[i]!.mod;
    if (m) for (let j = i + 1; j < loaded.length; j++) if (loaded[j]!.mod === m) clone = true;
  }
  if (!clone) return loaded;
  const oldest = new Map<object, number>();
  const newest = new Map<object, Loaded>();
  loaded.forEach((l, i) => {
    if (!l.mod) return;
    oldest.set(l.mod, i);
    if (!newest.has(l.mod)) newest.set(l.mod, l);
  });
  return [...oldest].sort((a, b) => a[1] - b[1]).map(([m]) => newest.get(m)!);
}

/** Providers in getopt search order: extensions newest first, target among them by load time. */
function extProviders(p: CommandParse, matches: readonly Loaded[]): Loaded[] {
  const r: Loaded[] = [];
  if (p.target) r.push(p.target);
  for (const l of matches) r.push(l);
  return r;
}

/** The option `--name` stands for, or undefined when it is unknown or ambiguous. */
export function lookupLong(p: CommandParse, name: string): Found | undefined {
  const exact = BASE_FOUND.get(name);
  if (exact) return exact;
  const target = p.target;
  if (target?.mod) for (const s of target.mod.options) if (s.name === name) return { ext: target, spec: s };
  const matches = matchOrder(p.loaded);
  for (const l of matches) {
    if (!l.mod) continue;
    for (const s of l.mod.options) if (s.name === name) return { ext: l, spec: s };
  }
  const provs = extProviders(p, matches);
  const cands: Found[] = [];
  // while an unknown `-m foo`/`-j FOO` is loaded it owns the options nobody spells out in full:
  // `-m recent --set` (recent unknown) must not become an abbreviation of --set-counters
  const unknownLoaded = p.loaded.some((l) => l.kind === 'unknown-match') || target?.kind === 'unknown-target';
  if (!unknownLoaded) for (const o of BASE_OPTS) if (o.name.startsWith(name)) cands.push({ base: o });
  for (const l of provs) {
    if (!l.mod) continue;
    for (const s of l.mod.options) if (s.name.startsWith(name)) cands.push({ ext: l, spec: s });
  }
  if (cands.length === 0) return undefined;
  if (cands.length === 1) return cands[0];
  // glibc: not ambiguous when every candidate is the same option (same short value)
  const first = cands[0]!;
  if (first.base && cands.every((c) => c.base && c.base.short === first.base!.short && c.base.arg === first.base!.arg)) return first;
  // ambiguous: getopt returns '?', iptables then reports the option as unknown
  return undefined;
}

/** iptables' "unknown option" error, with the closest option name as a hint. */
export function unknownOption(p: CommandParse, a: Arg, shown: string): never {
  const word = shown.replace(/^--/, '');
  // an extension's option given without its -m/-p is not a misspelling
  if (shown.startsWith('--') && allOptionNames().includes(word)) {
    return p.err(a, `unknown option "${shown}" (an extension's option: its match is loaded by -m NAME or -p PROTO first)`);
  }
  const suggestion = suggest(word, [...BASE_OPTS.map((o) => o.name), ...allOptionNames()]);
  return p.err(a, `unknown option "${shown}"` + (suggestion ? ` (did you mean --${suggestion}?)` : ''));
}

/** The closest known option name, for "did you mean" hints (edit distance ≤ 2). */
export function suggest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(word, n, bestD);
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return best;
}

function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, sub);
      cur.push(v);
    }
    prev = cur;
  }
  return prev[b.length]!;
}
