/**
 * Parsing one rule command: the argument vector of an iptables-restore line
 * (`-A INPUT -p tcp --dport 22 -j ACCEPT`) into a command and its rules.
 *
 * This is iptables' `do_parse()` (iptables/xshared.c, 1.8.x) driven by a
 * model of glibc `getopt_long()`:
 *  - short options may be clustered and take their argument attached
 *    (`-ptcp`), long options take `--opt=value` or `--opt value`;
 *  - a long option may be abbreviated to any unique prefix; an exact name
 *    wins; two different options sharing the prefix make it ambiguous;
 *  - options of extensions exist only after `-m NAME`/`-j NAME` loaded them;
 *    the newest loaded extension is searched first (xtables_merge_options
 *    puts new options before old ones);
 *  - an unknown option after `-p tcp|udp|icmp|...` loads the protocol's match
 *    implicitly and is parsed again (command_default → load_proto);
 *  - a lone `!` inverts the next option; iptables 1.8 has no intrapositioned
 *    `--opt ! value` for these extensions (the `!` is taken as the value).
 */
import { NfvmError, ExtError, type SourcePos } from '../../core/errors.js';
import type { Arg } from './argv.js';
import type { Family, MatchNode, OptionNode, Rule, TableName, TargetNode, AddrMask } from '../../core/ast.js';
import type { ExtContext, MatchModule, OptSpec, TargetModule } from '../../ext/types.js';
import { findMatch, findTarget, KNOWN_FOREIGN_TARGETS, allOptionNames } from '../../ext/registry.js';
import { parseAddrMask, parseProtocol, protoName, strtoumax } from '../../ext/util.js';

export type CommandName = 'A' | 'I' | 'D' | 'R' | 'N' | 'X' | 'F' | 'P' | 'E' | 'Z';

export interface Command {
  cmd: CommandName;
  /** The chain the command names (absent for `-F`/`-X`/`-Z` of the whole table). */
  chain: string | undefined;
  /** `-I chain N`, `-R chain N`, `-D chain N` (1-based). */
  rulenum: number | undefined;
  /** `-P chain TARGET` */
  policy: string | undefined;
  /** `-E old new` */
  newName: string | undefined;
  /** The rule(s): more than one when `-s`/`-d` list several addresses. */
  rules: Rule[];
  pos: SourcePos;
  /** Position of the chain name argument. */
  chainPos: SourcePos | undefined;
}

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
const SHORT_OPTS: Readonly<Record<string, 0 | 1 | 2>> = (() => {
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

/** XT_EXTENSION_MAXNAMELEN: chain, match and target names are at most 28 characters. */
export const XT_EXTENSION_MAXNAMELEN = 29;
/** IFNAMSIZ: interface names are at most 15 characters. */
export const IFNAMSIZ = 16;

/** A loaded extension instance during parsing (the `struct xtables_match` clone). */
interface Loaded {
  kind: 'match' | 'target' | 'unknown-match' | 'unknown-target';
  mod: MatchModule | TargetModule | undefined;
  name: string;
  data: unknown;
  seen: Set<string>;
  options: OptionNode[];
  raw: string[];
  pos: SourcePos;
  node: MatchNode | undefined;
}

export interface RuleParseEnv {
  file: string;
  family: Family;
  table: TableName;
  line: number;
  warn(pos: SourcePos, message: string): void;
}

const INVERTIBLE_BASE = new Set(['s', 'd', 'p', 'i', 'o', 'f']);

export function parseCommand(args: readonly Arg[], env: RuleParseEnv, ruleStart: SourcePos): Command {
  const { file, family, line } = env;
  const at = (a: Arg | undefined): SourcePos => (a ? { line, col: a.col } : ruleStart);
  const err = (a: Arg | undefined, reason: string, kind: 'option' | 'value' | 'syntax' = 'option'): never => {
    throw new NfvmError(kind, reason, file, at(a), a?.text);
  };

  const rule: Rule = {
    pos: ruleStart,
    counters: undefined,
    src: undefined,
    dst: undefined,
    invSrc: false,
    invDst: false,
    iif: '',
    oif: '',
    invIif: false,
    invOif: false,
    proto: 0,
    invProto: false,
    frag: false,
    invFrag: false,
    matches: [],
    target: { kind: 'none' },
  };
  let srcList: AddrMask[] = [];
  let dstList: AddrMask[] = [];
  let cmd: CommandName | undefined;
  let chain: string | undefined;
  let chainPos: SourcePos | undefined;
  let rulenum: number | undefined;
  let policy: string | undefined;
  let newName: string | undefined;
  let cmdArg: Arg | undefined;
  let invert = false;
  let protoText: string | undefined;
  let protoUsed = false;
  const seenBase = new Set<string>();
  const ifaceArg: { i?: Arg; o?: Arg } = {};
  /** Loaded extensions, newest first (the getopt search order after the base options). */
  const loaded: Loaded[] = [];
  let target: Loaded | undefined;
  let jumpName: string | undefined;
  let jumpArg: Arg | undefined;
  let isGoto = false;

  const ctx: ExtContext = {
    family,
    table: env.table,
    rule,
    warn: (m) => env.warn(ruleStart, m),
  };

  const loadMatch = (name: string, a: Arg, pos: SourcePos): Loaded => {
    const mod = findMatch(name, family);
    if (!mod && findMatch(name, family === 'ip' ? 'ip6' : 'ip')) {
      // a module of the other family only (ttl vs hl, icmp vs icmp6, realm): iptables cannot load it
      err(a, `Couldn't load match \`${name}': it exists only for ${family === 'ip' ? 'IPv6 (ip6tables)' : 'IPv4 (iptables)'}`, 'value');
    }
    let l: Loaded;
    if (mod) {
      let data: unknown;
      try {
        data = mod.init(ctx);
      } catch (e) {
        return rethrow(e, a);
      }
      l = { kind: 'match', mod, name: mod.name, data, seen: new Set(), options: [], raw: [], pos, node: undefined };
    } else {
      l = { kind: 'unknown-match', mod: undefined, name, data: undefined, seen: new Set(), options: [], raw: [], pos, node: undefined };
    }
    const node: MatchNode = { name: l.name, data: l.data, pos, unknown: !mod, raw: mod ? NO_STRINGS : l.raw, options: NO_OPTIONS };
    l.node = node;
    rule.matches.push(node);
    loaded.unshift(l);
    return l;
  };

  const rethrow = (e: unknown, a: Arg | undefined): never => {
    if (e instanceof ExtError) throw new NfvmError(e.kind, e.message, file, at(a), a?.text);
    throw e;
  };

  /** A base option may appear once; `!` only before the invertible ones. */
  const setBase = (letter: string, a: Arg) => {
    if (seenBase.has(letter)) {
      err(a, `multiple -${letter} flags not allowed`);
    }
    seenBase.add(letter);
    if (invert && !INVERTIBLE_BASE.has(letter)) {
      err(a, `cannot have ! before -${letter}`);
    }
  };

  const setCommand = (c: CommandName, a: Arg) => {
    if (cmd !== undefined) err(a, `Cannot use -${c} with -${cmd}`);
    if (invert) err(a, `cannot have ! before -${c}`);
    cmd = c;
    cmdArg = a;
  };

  /** Takes an optional following non-option argument (iptables' xs_has_arg). */
  let i = 0;
  const hasNextArg = () => i < args.length && !args[i]!.text.startsWith('-') && args[i]!.text !== '!';

  const handleBase = (letter: string, value: string | undefined, a: Arg, valArg: Arg | undefined) => {
    const vpos = valArg ?? a;
    // `-d ! ADDR` (iptables before 1.4.3): iptables 1.8 takes `!` as the value and then refuses it or ADDR
    if (value === '!' && 'sdpio'.includes(letter) && hasNextArg()) {
      const w = args[i]!.text;
      err(vpos, `intrapositioned negation \`-${letter} ! ${w}' is not accepted by iptables 1.8 (it reads \`!' as the value); write \`! -${letter} ${w}'`, 'syntax');
    }
    switch (letter) {
      case 'A':
      case 'D':
      case 'I':
      case 'R':
      case 'N':
      case 'P':
      case 'E':
        setCommand(letter, a);
        chain = value!;
        chainPos = at(vpos);
        if (letter === 'I' || letter === 'D') {
          if (hasNextArg()) rulenum = parseRulenum(args[i++]!);
        } else if (letter === 'R') {
          if (!hasNextArg()) err(a, '-R requires a rule number');
          rulenum = parseRulenum(args[i++]!);
        } else if (letter === 'P') {
          if (!hasNextArg()) err(a, '-P requires a chain and a policy');
          policy = args[i++]!.text;
        } else if (letter === 'E') {
          if (!hasNextArg()) err(a, '-E requires old-chain-name and new-chain-name');
          newName = args[i++]!.text;
        }
        return;
      case 'F':
      case 'X':
      case 'Z':
        setCommand(letter, a);
        if (value !== undefined) {
          chain = value;
          chainPos = at(vpos);
        } else if (hasNextArg()) {
          chainPos = at(args[i]);
          chain = args[i++]!.text;
        }
        if (letter === 'Z' && hasNextArg()) rulenum = parseRulenum(args[i++]!);
        return;
      case 'C':
      case 'L':
      case 'S':
        return err(a, `-${letter} cannot be used in a restore file`);
      case 's':
      case 'd': {
        setBase(letter, a);
        const list: AddrMask[] = [];
        for (const part of value!.split(',')) {
          try {
            list.push(parseAddrMask(family, part));
          } catch (e) {
            rethrow(e, vpos);
          }
        }
        if (letter === 's') {
          srcList = list;
          rule.invSrc = invert;
        } else {
          dstList = list;
          rule.invDst = invert;
        }
        if (invert && list.length > 1) err(a, '! not allowed with multiple source or destination IP addresses');
        return;
      }
      case 'p': {
        setBase(letter, a);
        let p: number;
        try {
          p = parseProtocol(value!);
        } catch (e) {
          return rethrow(e, vpos);
        }
        if (p === 0 && invert) err(vpos, 'rule would never match protocol', 'value');
        rule.proto = p;
        rule.invProto = invert;
        protoText = value!.toLowerCase();
        return;
      }
      case 'i':
      case 'o': {
        setBase(letter, a);
        ifaceArg[letter] = a;
        const name = value!;
        if (name.length + 1 > IFNAMSIZ) {
          err(vpos, `interface name \`${name}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`, 'value');
        }
        if (!name.endsWith('+') && /[/ ]/.test(name)) {
          env.warn(at(vpos), `Warning: weird character in interface \`${name}' ('/' and ' ' are not allowed by the kernel).`);
        }
        if (letter === 'i') {
          rule.iif = name;
          rule.invIif = invert;
        } else {
          rule.oif = name;
          rule.invOif = invert;
        }
        return;
      }
      case 'f':
        if (family !== 'ip') err(a, 'unknown option "-f"');
        setBase(letter, a);
        rule.frag = true;
        rule.invFrag = invert;
        return;
      case 'j':
      case 'g': {
        if (seenBase.has('j') || seenBase.has('g')) err(a, `multiple -${letter} flags not allowed`);
        setBase(letter, a);
        const name = value!;
        if (name.length < 1) err(vpos, 'Invalid target name (too short)', 'value');
        if (name.length >= XT_EXTENSION_MAXNAMELEN) err(vpos, `Invalid target name \`${name}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, 'value');
        if (/\s/.test(name)) err(vpos, `Invalid target name \`${name}'`, 'value');
        jumpName = name;
        jumpArg = vpos;
        isGoto = letter === 'g';
        if (letter === 'j') {
          const mod = findTarget(name, family);
          if (mod) {
            let data: unknown;
            try {
              data = mod.init(ctx);
            } catch (e) {
              rethrow(e, vpos);
            }
            target = { kind: 'target', mod, name: mod.name, data, seen: new Set(), options: [], raw: [], pos: at(a), node: undefined };
          } else if (KNOWN_FOREIGN_TARGETS.has(name)) {
            target = { kind: 'unknown-target', mod: undefined, name, data: undefined, seen: new Set(), options: [], raw: [], pos: at(a), node: undefined };
          }
        }
        return;
      }
      case 'm': {
        if (invert) err(a, 'unexpected ! flag before --match');
        const name = value!;
        if (name.length >= XT_EXTENSION_MAXNAMELEN) err(vpos, `Invalid match name \`${name}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, 'value');
        loadMatch(name, vpos, at(a));
        return;
      }
      case 'c': {
        setBase(letter, a);
        const v = value!;
        let pc = v;
        let bc: string | undefined;
        const comma = v.indexOf(',');
        if (comma >= 0) {
          pc = v.slice(0, comma);
          bc = v.slice(comma + 1);
        } else if (hasNextArg()) {
          bc = args[i++]!.text;
        }
        if (bc === undefined) err(a, '-c does not take the counter value [packets, bytes]');
        const p = strtoumax(pc);
        if (p.end === 0 || pc.length === 0) err(vpos, '-c packet counter not numeric', 'value');
        const b = strtoumax(bc!);
        if (b.end === 0 || bc!.length === 0) err(vpos, '-c byte counter not numeric', 'value');
        rule.counters = { packets: p.value, bytes: b.value };
        return;
      }
      case 't':
        return err(a, 'The -t option cannot be used in a restore file');
      case '4':
        if (family === 'ip6') err(a, 'This is the IPv6 version of ip6tables.');
        return;
      case '6':
        if (family === 'ip') err(a, 'This is the IPv4 version of iptables.');
        return;
      case 'n':
      case 'v':
      case 'x':
      case '0':
      case 'w':
      case 'W':
      case 'M':
        return;
      case 'V':
      case 'h':
        return err(a, `-${letter} cannot be used in a restore file`);
      case 'b':
        return err(a, 'unknown option "-b"');
      default:
        return err(a, `unknown option "-${letter}"`);
    }
  };

  const parseRulenum = (a: Arg): number => {
    const v = /^[0-9]+$/.test(a.text) ? Number(a.text) : NaN;
    if (!(v >= 1) || v > 0x7fffffff) err(a, `Invalid rule number \`${a.text}'`, 'value');
    return v;
  };

  /** Providers in getopt search order: extensions newest first, target among them by load time. */
  const extProviders = (): Loaded[] => {
    const r: Loaded[] = [];
    if (target) r.push(target);
    for (const l of loaded) r.push(l);
    return r;
  };

  interface Found {
    base?: BaseOpt;
    ext?: Loaded;
    spec?: OptSpec;
  }

  const lookupLong = (name: string, a: Arg): Found | undefined => {
    const exact = BASE_FOUND.get(name);
    if (exact) return exact;
    if (target?.mod) for (const s of target.mod.options) if (s.name === name) return { ext: target, spec: s };
    for (const p of loaded) {
      if (!p.mod) continue;
      for (const s of p.mod.options) if (s.name === name) return { ext: p, spec: s };
    }
    const provs = extProviders();
    const cands: Found[] = [];
    // while an unknown `-m foo`/`-j FOO` is loaded it owns the options nobody spells out in full:
    // `-m recent --set` (recent unknown) must not become an abbreviation of --set-counters
    const unknownLoaded = loaded.some((l) => l.kind === 'unknown-match') || target?.kind === 'unknown-target';
    if (!unknownLoaded) for (const o of BASE_OPTS) if (o.name.startsWith(name)) cands.push({ base: o });
    for (const p of provs) {
      if (!p.mod) continue;
      for (const s of p.mod.options) if (s.name.startsWith(name)) cands.push({ ext: p, spec: s });
    }
    if (cands.length === 0) return undefined;
    if (cands.length === 1) return cands[0];
    // glibc: not ambiguous when every candidate is the same option (same short value)
    const first = cands[0]!;
    if (first.base && cands.every((c) => c.base && c.base.short === first.base!.short && c.base.arg === first.base!.arg)) return first;
    // ambiguous: getopt returns '?', iptables then reports the option as unknown
    void a;
    return undefined;
  };

  /**
   * @param optName the unknown option; while an unknown `-m foo` is loaded,
   * the protocol match is loaded only for an option it has (foo may own the
   * rest), so that the printed form parses back to the same rule.
   */
  const tryImplicitProto = (optName?: string): boolean => {
    if (protoText === undefined || protoUsed) return false;
    let name: string | undefined = protoText;
    const n = /^[0-9]+$/.test(name) ? Number(name) : undefined;
    if (n !== undefined) name = protoName(n);
    if (name === undefined) return false;
    if (name === 'ipv6-icmp' || name === 'icmpv6') name = 'icmp6';
    const mod = findMatch(name, family);
    if (!mod) return false;
    if (optName !== undefined && loaded.some((l) => l.kind === 'unknown-match') && !mod.options.some((o) => o.name.startsWith(optName))) return false;
    protoUsed = true;
    loadMatch(mod.name, args[i - 1]!, at(args[i - 1]));
    return true;
  };

  const unknownOption = (a: Arg, shown: string): never => {
    const suggestion = suggest(shown.replace(/^--/, ''), [...BASE_OPTS.map((o) => o.name), ...allOptionNames()]);
    return err(a, `unknown option "${shown}"` + (suggestion ? ` (did you mean --${suggestion}?)` : ''));
  };

  while (i < args.length) {
    const a = args[i++]!;
    const t = a.text;
    if (t === '!' ) {
      if (invert) err(a, 'multiple consecutive ! not allowed');
      invert = true;
      continue;
    }
    if (t.startsWith('--') && t.length > 2) {
      const eq = t.indexOf('=');
      const name = eq >= 0 ? t.slice(2, eq) : t.slice(2);
      const attached = eq >= 0 ? t.slice(eq + 1) : undefined;
      let found = lookupLong(name, a);
      while (!found) {
        // command_default: load the protocol match and parse the option again
        if (tryImplicitProto(name)) {
          found = lookupLong(name, a);
          continue;
        }
        // an unknown `-m foo` swallows the options nobody else knows
        const unk = loaded.find((l) => l.kind === 'unknown-match') ?? (target?.kind === 'unknown-target' ? target : undefined);
        if (unk) {
          if (invert) unk.raw.push('!');
          unk.raw.push(t);
          if (attached === undefined) while (i < args.length && !args[i]!.text.startsWith('--') && args[i]!.text !== '!' && !/^-[a-zA-Z]$/.test(args[i]!.text)) unk.raw.push(args[i++]!.text);
          invert = false;
          break;
        }
        return unknownOption(a, `--${name}`);
      }
      if (!found) continue;
      const spec = found.base ?? found.spec!;
      let value: string | undefined;
      let valArg: Arg | undefined;
      if (spec.arg === 0) {
        if (attached !== undefined) err(a, `option '--${spec.name}' doesn't allow an argument`);
      } else if (spec.arg === 1) {
        if (attached !== undefined) {
          value = attached;
          valArg = { text: attached, col: a.col + eq + 1, quoted: a.quoted };
        } else {
          if (i >= args.length) {
            err(a, found.ext ? `${found.ext.name}: option "--${spec.name}" requires an argument.` : `option "--${name}" requires an argument`);
          }
          valArg = args[i++]!;
          value = valArg.text;
        }
      } else {
        value = attached;
      }
      if (found.base) {
        handleBase(found.base.short, value, a, valArg);
      } else {
        applyExtOption(found.ext!, spec, value, a, valArg);
      }
      invert = false;
      continue;
    }
    if (t.startsWith('-') && t.length > 1 && t !== '--') {
      // a cluster of short options
      let k = 1;
      while (k < t.length) {
        const letter = t[k]!;
        const has = SHORT_OPTS[letter];
        if (has === undefined) {
          if (tryImplicitProto()) {
            // getopt would retry the same argument; extensions have no short options, so it is still unknown
          }
          return unknownOption(a, `-${letter}`);
        }
        let value: string | undefined;
        let valArg: Arg | undefined;
        if (has === 0) {
          k++;
        } else if (k + 1 < t.length) {
          value = t.slice(k + 1);
          valArg = { text: value, col: a.col + k + 1, quoted: a.quoted };
          k = t.length;
        } else {
          k = t.length;
          if (has === 1) {
            if (i >= args.length) err(a, `option "-${letter}" requires an argument`);
            valArg = args[i++]!;
            value = valArg.text;
          }
        }
        handleBase(letter, value, a, valArg);
        invert = false;
      }
      continue;
    }
    err(a, `Bad argument \`${t}'`, 'syntax');
  }
  if (invert) err(args[args.length - 1], 'nothing appropriate following !');
  if (cmd === undefined) {
    throw new NfvmError('syntax', 'no command specified', file, ruleStart, undefined);
  }

  // the AST keeps exact-size arrays (a 100,000-rule dump stays small)
  for (const l of loaded) if (l.node) l.node.options = compact(l.options);
  rule.matches = rule.matches.length ? rule.matches.slice() : rule.matches;

  // x6_fcheck of every extension, in load order
  const ordered = [...loaded].reverse();
  if (target) ordered.push(target);
  for (const l of ordered) {
    if (!l.mod) continue;
    try {
      l.mod.final?.(l.data, l.seen, ctx);
    } catch (e) {
      rethrow(e, undefined);
    }
  }

  // the target
  const isRuleCmd = cmd === 'A' || cmd === 'I' || cmd === 'R' || (cmd === 'D' && rulenum === undefined);
  if (!isRuleCmd) {
    const extra = rule.matches.length > 0 || seenBase.size > 0;
    if (extra && cmd !== 'D') err(cmdArg, `Illegal option with this command (-${cmd})`);
  } else {
    // iptables refuses an output interface where packets only come in, and the reverse (by chain name)
    if ((chain === 'PREROUTING' || chain === 'INPUT') && seenBase.has('o')) err(ifaceArg.o, `Can't use -o with ${chain}`);
    if ((chain === 'POSTROUTING' || chain === 'OUTPUT') && seenBase.has('i')) err(ifaceArg.i, `Can't use -i with ${chain}`);
  }
  let tnode: TargetNode = { kind: 'none' };
  if (jumpName !== undefined) {
    const tpos = at(jumpArg);
    if (target && target.kind === 'target') {
      tnode = { kind: 'ext', name: target.name, data: target.data, pos: tpos, options: compact(target.options) };
    } else if (target && target.kind === 'unknown-target') {
      tnode = { kind: 'unknown', name: target.name, raw: target.raw, pos: tpos };
    } else if (jumpName === 'ACCEPT' || jumpName === 'DROP' || jumpName === 'QUEUE' || jumpName === 'RETURN') {
      if (isGoto) err(jumpArg, `goto '${jumpName}' is not a chain`, 'value');
      tnode = { kind: 'verdict', name: jumpName, pos: tpos };
    } else {
      tnode = { kind: isGoto ? 'goto' : 'jump', chain: jumpName, pos: tpos };
    }
  }
  rule.target = tnode;

  // -s/-d lists expand to the cross product, source-major (xtables' generate_entry loop order)
  const rules: Rule[] = [];
  const srcs = srcList.length ? srcList : [undefined];
  const dsts = dstList.length ? dstList : [undefined];
  if (srcs.length === 1 && dsts.length === 1) {
    rule.src = srcs[0];
    rule.dst = dsts[0];
    rules.push(rule);
  } else {
    for (const s of srcs) {
      for (const d of dsts) {
        rules.push({ ...rule, src: s, dst: d });
      }
    }
  }
  return { cmd, chain, rulenum, policy, newName, rules, pos: ruleStart, chainPos };

  function applyExtOption(l: Loaded, spec: OptSpec, value: string | undefined, a: Arg, valArg: Arg | undefined) {
    const mod = l.mod!;
    if (l.seen.has(spec.name) && !spec.multi) {
      err(a, `${mod.name}: option "--${spec.name}" can only be used once.`);
    }
    if (invert && !spec.invert) {
      err(a, `${mod.name}: option "--${spec.name}" cannot be inverted.`);
    }
    const extra: string[] = [];
    for (let k = 0; k < (spec.extra ?? 0); k++) {
      const nx = args[i];
      if (!nx || nx.text.startsWith('-') || nx.text.startsWith('!')) {
        err(a, `${mod.name}: option "--${spec.name}" requires ${1 + (spec.extra ?? 0)} arguments.`);
      }
      extra.push(nx!.text);
      i++;
    }
    if (spec.optionalExtra && args[i] && !args[i]!.text.startsWith('-') && !args[i]!.text.startsWith('!')) {
      extra.push(args[i]!.text);
      i++;
    }
    try {
      mod.parse(l.data, spec.name, value, invert, ctx, extra);
    } catch (e) {
      rethrow(e, valArg ?? a);
    }
    l.seen.add(spec.name);
    l.options.push(new Opt(spec.name, invert, value, line, a.col));
  }
}

/**
 * An OptionNode that is its own source position (one object per option
 * instead of two: a 100,000-rule dump holds hundreds of thousands).
 */
class Opt implements OptionNode, SourcePos {
  constructor(
    readonly name: string,
    readonly invert: boolean,
    readonly arg: string | undefined,
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
}

const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_OPTIONS: readonly OptionNode[] = Object.freeze([]);

function compact(a: OptionNode[]): readonly OptionNode[] {
  return a.length === 0 ? NO_OPTIONS : a.slice();
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
