/**
 * Extensions on a rule line: `-m NAME` and `-j NAME` load a fresh instance
 * of the module (ext/registry.ts), an unknown `-m foo` or a known foreign
 * target is kept verbatim; an unknown option after `-p tcp|udp|...` loads
 * the protocol's match implicitly (command_default → load_proto); each
 * extension option goes through the generic checks of the x6 parser (once
 * unless XTOPT_MULTI, `!` only with XTOPT_INVERT, the extra words) before
 * the module's own parse; after the last option every extension's final
 * check (x6_fcheck) runs in load order.
 */
import type { MatchNode } from '../../core/ast.js';
import type { OptSpec } from '../../ext/types.js';
import { findMatch, findTarget, KNOWN_FOREIGN_TARGETS } from '../../ext/registry.js';
import { protoName } from '../../ext/protocols.js';
import { flat, type Arg } from './argv.js';
import { SeenNames, type CommandParse, type Loaded } from './state.js';
import { KnownMatch, UnknownMatch } from './nodes.js';

/** `-m NAME` (or an implicit protocol match): a fresh instance of the module, or an unknown match kept verbatim. */
export function loadMatch(cp: CommandParse, name: string, a: Arg, col: number): Loaded {
  const mod = findMatch(name, cp.family);
  if (!mod && findMatch(name, cp.family === 'ip' ? 'ip6' : 'ip')) {
    // a module of the other family only (ttl vs hl, icmp vs icmp6, realm): iptables cannot load it
    cp.err(a, `Couldn't load match \`${name}': it exists only for ${cp.family === 'ip' ? 'IPv6 (ip6tables)' : 'IPv4 (iptables)'}`, 'value');
  }
  let l: Loaded;
  if (mod) {
    let data: unknown;
    try {
      data = mod.init(cp.ctx);
    } catch (e) {
      return cp.rethrow(e, a);
    }
    l = { kind: 'match', mod, name: mod.name, data, seen: new SeenNames(), options: undefined, raw: NO_RAW, col, node: undefined };
    l.node = new KnownMatch(l.name, data, cp.line, col);
  } else {
    l = { kind: 'unknown-match', mod: undefined, name, data: undefined, seen: new SeenNames(), options: undefined, raw: [], col, node: undefined };
    l.node = new UnknownMatch(name, l.raw, cp.line, col);
  }
  // the rule's matches are cp.loaded in load order: finishExtensions() makes the AST's list
  cp.loaded.unshift(l);
  return l;
}

/** `-j NAME` of a target module (a fresh instance), or of a kernel target nfvm keeps verbatim; else nothing (a chain). */
export function loadTarget(cp: CommandParse, name: string, a: Arg, col: number): void {
  const mod = findTarget(name, cp.family);
  if (mod) {
    let data: unknown;
    try {
      data = mod.init(cp.ctx);
    } catch (e) {
      cp.rethrow(e, a);
    }
    cp.target = { kind: 'target', mod, name: mod.name, data, seen: new SeenNames(), options: undefined, raw: NO_RAW, col, node: undefined };
  } else if (KNOWN_FOREIGN_TARGETS.has(name)) {
    cp.target = { kind: 'unknown-target', mod: undefined, name, data: undefined, seen: new SeenNames(), options: undefined, raw: [], col, node: undefined };
  }
}

/**
 * Loads the match of the rule's `-p` protocol for an option nobody knows.
 * @param optName the unknown option; while an unknown `-m foo` is loaded,
 * the protocol match is loaded only for an option it has (foo may own the
 * rest), so that the printed form parses back to the same rule.
 */
export function tryImplicitProto(cp: CommandParse, optName?: string): boolean {
  if (cp.protoText === undefined || cp.protoUsed) return false;
  let name: string | undefined = cp.protoText;
  const n = /^[0-9]+$/.test(name) ? Number(name) : undefined;
  if (n !== undefined) name = protoName(n);
  if (name === undefined) return false;
  if (name === 'ipv6-icmp' || name === 'icmpv6') name = 'icmp6';
  const mod = findMatch(name, cp.family);
  if (!mod) return false;
  if (optName !== undefined && cp.loaded.some((l) => l.kind === 'unknown-match') && !mod.options.some((o) => o.name.startsWith(optName))) return false;
  cp.protoUsed = true;
  const a = cp.args[cp.i - 1];
  loadMatch(cp, mod.name, a!, a ? a.col : cp.ruleStart.col);
  return true;
}

/** One option of a loaded extension: the generic checks (once, `!`, extra words), then the module's parse. */
export function applyExtOption(cp: CommandParse, l: Loaded, spec: OptSpec, raw: string | undefined, a: Arg, valArg: Arg | undefined): void {
  const mod = l.mod!;
  // the option and the module's data keep the argument: a long one (a comment, a log prefix) as a flat copy, not a slice of the input
  const value = raw === undefined ? undefined : flat(raw);
  if (l.seen.has(spec.name) && !spec.multi) {
    cp.err(a, `${mod.name}: option "--${spec.name}" can only be used once.`);
  }
  if (cp.invert && !spec.invert) {
    cp.err(a, `${mod.name}: option "--${spec.name}" cannot be inverted.`);
  }
  // most options have no further words: they share one empty list (extra is readonly to the modules)
  const extra: string[] = spec.extra || spec.optionalExtra ? [] : NO_EXTRA;
  for (let k = 0; k < (spec.extra ?? 0); k++) {
    const nx = cp.args[cp.i];
    if (!nx || nx.text.startsWith('-') || nx.text.startsWith('!')) {
      cp.err(a, `${mod.name}: option "--${spec.name}" requires ${1 + (spec.extra ?? 0)} arguments.`);
    }
    extra.push(nx!.text);
    cp.i++;
  }
  if (spec.optionalExtra && cp.args[cp.i] && !cp.args[cp.i]!.text.startsWith('-') && !cp.args[cp.i]!.text.startsWith('!')) {
    extra.push(cp.args[cp.i]!.text);
    cp.i++;
  }
  try {
    mod.parse(l.data, spec.name, value, cp.invert, cp.ctx, extra);
  } catch (e) {
    cp.rethrow(e, valArg ?? a);
  }
  l.seen.add(spec.name);
  // the option's words as packed options (nodes.ts); a short argument is shared with every other use of its spelling
  const arg = value !== undefined && value.length <= SHORT_ARG ? shortArg(value) : value;
  const f = a.col * 2 + (cp.invert ? 1 : 0);
  if (l.options === undefined) l.options = [spec.name, arg, f];
  else l.options.push(spec.name, arg, f);
}

/** Arguments up to this length are shared (ports, states, marks: a few spellings repeated over a whole dump). */
const SHORT_ARG = 12;
/** At most this many spellings are kept for sharing. */
const SHORT_ARGS_MAX = 4096;
const shortArgs = new Map<string, string>();

function shortArg(s: string): string {
  const have = shortArgs.get(s);
  if (have !== undefined) return have;
  if (shortArgs.size < SHORT_ARGS_MAX) shortArgs.set(s, s);
  return s;
}

/** After the last option: the AST's option lists, then every extension's final check (x6_fcheck), in load order. */
export function finishExtensions(cp: CommandParse): void {
  for (const l of cp.loaded) if (l.node) l.node.setPacked(l.options);
  // exact-size, in load order, and a rule without matches gets its own empty array (callers may add to a parsed rule)
  const ld = cp.loaded;
  const n = ld.length;
  if (n === 0) cp.rule.matches = [];
  else if (n === 1) cp.rule.matches = [ld[0]!.node!];
  else if (n === 2) cp.rule.matches = [ld[1]!.node!, ld[0]!.node!];
  else if (n === 3) cp.rule.matches = [ld[2]!.node!, ld[1]!.node!, ld[0]!.node!];
  else {
    const matches: MatchNode[] = [];
    for (let k = n - 1; k >= 0; k--) matches.push(ld[k]!.node!);
    cp.rule.matches = matches.slice();
  }
  // load order: cp.loaded is newest first
  for (let k = cp.loaded.length - 1; k >= -1; k--) {
    const l = k >= 0 ? cp.loaded[k]! : cp.target;
    if (!l?.mod) continue;
    try {
      l.mod.final?.(l.data, l.seen, cp.ctx);
    } catch (e) {
      cp.rethrow(e, undefined);
    }
    if (l.mod.share) {
      l.data = l.mod.share(l.data);
      if (l.node) l.node.data = l.data;
    }
  }
}

/** The further words of an option that takes none: never written. */
const NO_EXTRA = Object.freeze([]) as readonly string[] as string[];

/** The raw words of a known extension: never written. */
const NO_RAW: string[] = [];
