/**
 * One ebtables command line (`-A CHAIN rule...`, `-N`, `-P`, ...) into a
 * command: ebtables-nft's option loop (iptables/xtables-eb.c and the
 * bridge parts of xshared.c, 1.8.13) over getopt_long with every module's
 * options merged in.
 *
 * What differs from iptables: no `-m` (every match and watcher is loaded,
 * its options are recognised by name), a target's options count only after
 * its `-j`, `!` may stand before an option or, in ebtables' old style,
 * between the option and its value (`-p ! ARP`, `--ip-src ! 10.0.0.1`),
 * `-c PCNT BCNT` sets the counters, and every option may be given once.
 * Long options may be abbreviated to a unique prefix, as getopt_long allows.
 */
import { ExtError, NfvmError, type ErrorKind, type SourcePos } from '../../core/errors.js';
import type { OptionNode } from '../../core/ast.js';
import {
  EBT_BUILTIN_HOOK, type EbtMatchNode, type EbtRule, type EbtTableName, type EbtTarget, type EbtVerdict,
} from '../../core/ebt-ast.js';
import {
  NF_BR_BROUTING, NF_BR_FORWARD, NF_BR_LOCAL_IN, NF_BR_LOCAL_OUT, NF_BR_POST_ROUTING, NF_BR_PRE_ROUTING,
} from '../../core/netfilter.js';
import type { EbtModule, EbtOptSpec, EbtParseContext } from '../../ext/ebt/types.js';
import { allEbtMatches, findEbtTarget } from '../../ext/ebt/registry.js';
import { EBT_VERDICTS, ethertypeByName, parseMacMask, wholeNumber } from '../../ext/ebt/values.js';
import type { Arg } from '../parse/argv.js';
import { suggest } from '../parse/getopt.js';

export type EbtCommandName = 'A' | 'I' | 'D' | 'N' | 'X' | 'F' | 'P' | 'E' | 'Z';

export interface EbtCommand {
  cmd: EbtCommandName;
  table: EbtTableName | undefined;
  chain: string | undefined;
  /** -I position (1-based), -D rule number. */
  num: number | undefined;
  /** -P policy, -N's -P, -E new name. */
  policy: EbtVerdict | undefined;
  newName: string | undefined;
  /** -A/-I/-D with a rule specification. */
  rule: EbtRule | undefined;
  /** The target chain of `-j CHAIN` (checked against the table by the caller). */
  jumpPos: SourcePos | undefined;
  pos: SourcePos;
}

/** What the command is parsed against: the table and the chains that exist. */
export interface EbtParseEnv {
  file: string;
  line: number;
  /** The table of the command when it has no `-t` (ebtables-restore's current table). */
  table: EbtTableName | undefined;
  /** Whether `-t` may be given (not in ebtables-restore input). */
  allowTable: boolean;
  /** True when chain `name` exists in `table`. */
  chainExists(table: EbtTableName, name: string): boolean;
  readFile: ((path: string) => string) | undefined;
}

interface BaseOpt {
  readonly name: string;
  readonly arg: 0 | 1 | 2;
  readonly short: string;
}

/** ebt_original_options[] of xtables-eb.c: long name, has_arg, the getopt value. */
const BASE_OPTS: readonly BaseOpt[] = [
  { name: 'append', arg: 1, short: 'A' },
  { name: 'insert', arg: 1, short: 'I' },
  { name: 'delete', arg: 1, short: 'D' },
  { name: 'list', arg: 2, short: 'L' },
  { name: 'Lc', arg: 0, short: '4' },
  { name: 'Ln', arg: 0, short: '5' },
  { name: 'Lx', arg: 0, short: '6' },
  { name: 'Lmac2', arg: 0, short: '12' },
  { name: 'zero', arg: 2, short: 'Z' },
  { name: 'flush', arg: 2, short: 'F' },
  { name: 'policy', arg: 1, short: 'P' },
  { name: 'in-interface', arg: 1, short: 'i' },
  { name: 'in-if', arg: 1, short: 'i' },
  { name: 'logical-in', arg: 1, short: '2' },
  { name: 'logical-out', arg: 1, short: '3' },
  { name: 'out-interface', arg: 1, short: 'o' },
  { name: 'out-if', arg: 1, short: 'o' },
  { name: 'version', arg: 0, short: 'V' },
  { name: 'help', arg: 0, short: 'h' },
  { name: 'jump', arg: 1, short: 'j' },
  { name: 'set-counters', arg: 1, short: 'c' },
  { name: 'change-counters', arg: 1, short: 'C' },
  { name: 'proto', arg: 1, short: 'p' },
  { name: 'protocol', arg: 1, short: 'p' },
  { name: 'db', arg: 1, short: 'b' },
  { name: 'source', arg: 1, short: 's' },
  { name: 'src', arg: 1, short: 's' },
  { name: 'destination', arg: 1, short: 'd' },
  { name: 'dst', arg: 1, short: 'd' },
  { name: 'table', arg: 1, short: 't' },
  { name: 'modprobe', arg: 1, short: 'M' },
  { name: 'new-chain', arg: 1, short: 'N' },
  { name: 'rename-chain', arg: 1, short: 'E' },
  { name: 'delete-chain', arg: 2, short: 'X' },
  { name: 'atomic-init', arg: 0, short: '7' },
  { name: 'atomic-commit', arg: 0, short: '8' },
  { name: 'atomic-file', arg: 1, short: '9' },
  { name: 'atomic-save', arg: 0, short: '10' },
  { name: 'init-table', arg: 0, short: '11' },
  { name: 'concurrent', arg: 0, short: '13' },
];

/** The short options of ebtables' getopt string with has_arg. */
const SHORT: Readonly<Record<string, 0 | 1 | 2>> = Object.assign(Object.create(null), {
  A: 1, D: 1, C: 1, I: 1, N: 1, E: 1, X: 2, L: 2, Z: 2, F: 2, P: 1, V: 0, h: 0, i: 1, o: 1, j: 1, c: 1, p: 1, s: 1,
  d: 1, t: 1, M: 1,
});

/** What the rule-spec options print as in messages. */
const SHORT_NAME: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  i: '-i', o: '-o', '2': '--logical-in', '3': '--logical-out', p: '-p', s: '-s', d: '-d', j: '-j', c: '-c',
});

/** IFNAMSIZ: interface names are shorter. */
const IFNAMSIZ = 16;
/** EBT_CHAIN_MAXNAMELEN. */
const EBT_CHAIN_MAXNAMELEN = 32;

type Found = { base: BaseOpt } | { mod: EbtModule; spec: EbtOptSpec };

/** The hooks `-i`/`--logical-in` and `-o`/`--logical-out` may be used from. */
const IN_HOOKS = (1 << NF_BR_PRE_ROUTING) | (1 << NF_BR_LOCAL_IN) | (1 << NF_BR_FORWARD) | (1 << NF_BR_BROUTING);
const OUT_HOOKS = (1 << NF_BR_LOCAL_OUT) | (1 << NF_BR_FORWARD) | (1 << NF_BR_POST_ROUTING);

export function emptyEbtRule(pos: SourcePos): EbtRule {
  return {
    pos,
    counters: undefined,
    anyProto: true,
    is8023: false,
    ethproto: 0,
    invProto: false,
    src: undefined,
    invSrc: false,
    dst: undefined,
    invDst: false,
    iif: '',
    invIif: false,
    logicalIn: '',
    invLogicalIn: false,
    oif: '',
    invOif: false,
    logicalOut: '',
    invLogicalOut: false,
    matches: [],
    target: { kind: 'verdict', verdict: 'CONTINUE', pos: undefined },
  };
}

class EbtCommandParse {
  cmd: EbtCommandName | undefined;
  table: EbtTableName | undefined;
  chain: string | undefined;
  num: number | undefined;
  policy: EbtVerdict | undefined;
  newName: string | undefined;
  readonly rule: EbtRule;
  /** The target module after `-j NAME`, with its data and options. */
  target: { mod: EbtModule; data: unknown; pos: SourcePos; options: OptionNode[]; seen: Set<string> } | undefined;
  jumpPos: SourcePos | undefined;
  /** Match and watcher instances by module name, in first-use order. */
  readonly instances = new Map<string, { node: EbtMatchNode; seen: Set<string> }>();
  /** The rule-spec options given (for "Multiple use of same option"). */
  readonly given = new Set<string>();
  invert = false;
  invertArg: Arg | undefined;
  counterArgs = false;

  constructor(
    readonly env: EbtParseEnv,
    readonly pos: SourcePos,
  ) {
    this.table = env.table;
    this.rule = emptyEbtRule(pos);
  }

  err(a: Arg | undefined, reason: string, kind: ErrorKind = 'option', token?: string): never {
    const pos = a ? { line: this.env.line, col: a.col } : this.pos;
    throw new NfvmError(kind, reason, this.env.file, pos, token ?? a?.text);
  }

  hook(): number {
    const h = this.chain === undefined ? undefined : EBT_BUILTIN_HOOK[this.chain];
    if (h === undefined) return -1;
    // a builtin name is a builtin chain only in the table that has it
    const t = this.table ?? 'filter';
    const ok = (t === 'filter' && h >= 1 && h <= 3) || (t === 'nat' && (h === 0 || h === 3 || h === 4)) || (t === 'broute' && h === 5);
    return ok ? h : -1;
  }

  ctx(): EbtParseContext {
    return { table: this.table ?? 'filter', chain: this.chain ?? '', hook: this.hook(), rule: this.rule, readFile: this.env.readFile };
  }
}

/** The option `--name` names (exact, else a unique prefix), or undefined when unknown or ambiguous. */
function lookupLong(p: EbtCommandParse, name: string): Found | undefined {
  const mods: EbtModule[] = [...allEbtMatches()];
  if (p.target) mods.push(p.target.mod);
  for (const b of BASE_OPTS) if (b.name === name) return { base: b };
  for (const m of mods) for (const s of m.options) if (s.name === name) return { mod: m, spec: s };
  const cands: Found[] = [];
  for (const b of BASE_OPTS) if (b.name.startsWith(name)) cands.push({ base: b });
  for (const m of mods) for (const s of m.options) if (s.name.startsWith(name)) cands.push({ mod: m, spec: s });
  if (cands.length === 0) return undefined;
  const first = cands[0]!;
  // glibc: candidates that are all the same option (same value) are not ambiguous
  if (cands.every((c) => 'base' in c && 'base' in first && c.base.short === first.base.short && c.base.arg === first.base.arg)) return first;
  if (cands.length === 1) return first;
  const names = [...new Set(cands.map((c) => ('base' in c ? c.base.name : c.spec.name)))];
  return p.err(undefined, `option "--${name}" is ambiguous; possibilities: ${names.map((n) => `--${n}`).join(' ')}`);
}

function allOptionNames(): string[] {
  const names = BASE_OPTS.map((b) => b.name);
  for (const m of allEbtMatches()) for (const s of m.options) names.push(s.name);
  return names;
}

/** `ebt_check_inverse2()`: an old-style `!` between the option and its value. */
function valueWithInverse(p: EbtCommandParse, args: readonly Arg[], i: number, a: Arg): { value: Arg; next: number } {
  let v = args[i];
  if (v === undefined) p.err(a, `option "${a.text}" requires an argument`);
  if (v.text === '!' && !v.quoted) {
    if (p.invert) p.err(v, "Double use of '!' not allowed");
    p.invert = true;
    p.invertArg = v;
    v = args[i + 1];
    if (v === undefined) p.err(a, `option "${a.text}" requires an argument`);
    return { value: v, next: i + 2 };
  }
  return { value: v, next: i + 1 };
}

function iface(p: EbtCommandParse, a: Arg, v: Arg): string {
  if (Buffer.byteLength(v.text) >= IFNAMSIZ) p.err(v, `interface name \`${v.text}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`, 'value');
  return v.text;
}

/** `-p`: LENGTH, a hex number of at least 0x0600, or an /etc/ethertypes name. */
function parseProto(p: EbtCommandParse, v: Arg): void {
  const r = p.rule;
  r.anyProto = false;
  if (v.text.toLowerCase() === 'length') {
    r.is8023 = true;
    return;
  }
  const n = wholeNumber(v.text, 16);
  if (n !== undefined) {
    if (n > 0xffff) p.err(v, 'Problem with the specified protocol', 'value');
    if (n < 0x0600) p.err(v, 'Sorry, protocols have values above or equal to 0x0600', 'value');
    r.ethproto = n;
    return;
  }
  const e = ethertypeByName(v.text);
  if (e === undefined) p.err(v, `Problem with the specified Ethernet protocol '${v.text}', perhaps /etc/ethertypes is missing`, 'value');
  r.ethproto = e;
}

function parseCounter(p: EbtCommandParse, v: Arg | undefined, what: string, a: Arg): bigint {
  if (v === undefined) p.err(a, '-c requires a packet and a byte counter');
  if (!/^[0-9]+$/.test(v.text) || BigInt(v.text) > 0xffffffffffffffffn) p.err(v, `${what} counter '${v.text}' invalid`, 'value');
  return BigInt(v.text);
}

/** A base option with its value (after the old-style `!`, if the option takes one). */
function handleBase(p: EbtCommandParse, b: BaseOpt, a: Arg, args: readonly Arg[], i: number, attached: string | undefined): number {
  const letter = b.short;
  const command = 'ADINXFPEZ'.includes(letter) && letter.length === 1;
  if (command) {
    if (p.invert) p.err(p.invertArg, 'unexpected ! flag before command');
    if (letter === 'P' && p.cmd === 'N') {
      // `-N CHAIN -P POLICY`: the new chain's policy
      const v = attached !== undefined ? { text: attached, col: a.col, quoted: false } : args[i];
      if (!v) p.err(a, 'No policy specified');
      p.policy = policyName(p, v);
      return attached !== undefined ? i : i + 1;
    }
    if (p.cmd) p.err(a, 'Multiple commands are not allowed', 'option');
    p.cmd = letter as EbtCommandName;
    const optional = b.arg === 2;
    let v: Arg | undefined = attached !== undefined ? { text: attached, col: a.col, quoted: false } : undefined;
    let next = i;
    if (v === undefined && args[i] && !(optional && (args[i]!.text.startsWith('-') || args[i]!.text === '!'))) {
      v = args[i];
      next = i + 1;
    }
    if (v === undefined && !optional) p.err(a, `option "${a.text}" requires an argument`);
    p.chain = v?.text;
    if (v && p.chain!.length >= EBT_CHAIN_MAXNAMELEN) p.err(v, `Chain name length can't exceed ${EBT_CHAIN_MAXNAMELEN - 1}`, 'value');
    // -I CHAIN [n], -D CHAIN [n[:m]] take a rule number; -P CHAIN POLICY, -E OLD NEW a second word
    const w = args[next];
    if ((letter === 'I' || letter === 'D') && w && /^[0-9]+$/.test(w.text)) {
      p.num = Number(w.text);
      next++;
    } else if (letter === 'P') {
      if (!w) p.err(a, 'No policy specified');
      p.policy = policyName(p, w);
      next++;
    } else if (letter === 'E') {
      if (!w) p.err(a, 'No new chain name specified');
      p.newName = w.text;
      next++;
    }
    return next;
  }
  if (letter === 't') {
    const v = attached !== undefined ? { text: attached, col: a.col, quoted: false } : args[i];
    if (!v) p.err(a, 'option "-t" requires an argument');
    if (!p.env.allowTable) p.err(a, 'table can not be specified in a restore file');
    if (v.text !== 'filter' && v.text !== 'nat' && v.text !== 'broute') p.err(v, `Table '${v.text}' does not exist`, 'value');
    p.table = v.text;
    return attached !== undefined ? i : i + 1;
  }
  if ('ps'.includes(letter) || letter === 'd' || letter === 'i' || letter === 'o' || letter === '2' || letter === '3' || letter === 'j' || letter === 'c') {
    if (p.given.has(letter)) p.err(a, 'Multiple use of same option not allowed');
    p.given.add(letter);
    if (letter === 'c') {
      if (p.invert) p.err(p.invertArg, `unexpected ! flag before -c`);
      const pc = parseCounter(p, attached !== undefined ? { text: attached, col: a.col, quoted: false } : args[i], 'Packet', a);
      const j = attached !== undefined ? i : i + 1;
      const bc = parseCounter(p, args[j], 'Byte', a);
      p.rule.counters = { packets: pc, bytes: bc };
      return j + 1;
    }
    let value: Arg;
    let next: number;
    if (attached !== undefined) {
      value = { text: attached, col: a.col, quoted: false };
      next = i;
    } else {
      ({ value, next } = valueWithInverse(p, args, i, a));
    }
    const inv = p.invert;
    p.invert = false;
    const r = p.rule;
    const hook = p.hook();
    switch (letter) {
      case 'j':
        if (inv) p.err(p.invertArg, 'cannot invert -j');
        setTarget(p, value);
        break;
      case 'p':
        parseProto(p, value);
        r.invProto = inv;
        break;
      case 's':
      case 'd': {
        const m = parseMacMask(value.text);
        if (!m) p.err(value, `Problem with specified ${letter === 's' ? 'source' : 'destination'} mac '${value.text}'`, 'value');
        if (letter === 's') {
          r.src = m;
          r.invSrc = inv;
        } else {
          r.dst = m;
          r.invDst = inv;
        }
        break;
      }
      case 'i':
      case '2':
        if (hook >= 0 && !(IN_HOOKS & (1 << hook))) {
          p.err(a, `Use ${SHORT_NAME[letter]} only in INPUT, FORWARD, PREROUTING and BROUTING chains`, 'check');
        }
        if (letter === 'i') {
          r.iif = iface(p, a, value);
          r.invIif = inv;
        } else {
          r.logicalIn = iface(p, a, value);
          r.invLogicalIn = inv;
        }
        break;
      default:
        if (hook >= 0 && !(OUT_HOOKS & (1 << hook))) {
          p.err(a, `Use ${SHORT_NAME[letter]} only in OUTPUT, FORWARD and POSTROUTING chains`, 'check');
        }
        if (letter === 'o') {
          r.oif = iface(p, a, value);
          r.invOif = inv;
        } else {
          r.logicalOut = iface(p, a, value);
          r.invLogicalOut = inv;
        }
    }
    return next;
  }
  return p.err(a, `option "${a.text}" is not allowed here`);
}

function policyName(p: EbtCommandParse, v: Arg): EbtVerdict {
  if (v.text === 'ACCEPT' || v.text === 'DROP' || v.text === 'RETURN') return v.text;
  return p.err(v, `Wrong policy '${v.text}'`, 'value');
}

/** `-j`: a standard verdict, a target module, or a user chain. */
function setTarget(p: EbtCommandParse, v: Arg): void {
  const pos = { line: p.env.line, col: v.col };
  const std = EBT_VERDICTS.find((s) => s === v.text);
  if (std) {
    p.rule.target = { kind: 'verdict', verdict: std, pos };
    return;
  }
  const mod = findEbtTarget(v.text);
  if (mod) {
    p.target = { mod, data: mod.init(), pos, options: [], seen: new Set() };
    return;
  }
  p.rule.target = { kind: 'jump', chain: v.text, pos };
  p.jumpPos = pos;
}

/** One option of a module: the instance (created on first use), invert and repeat rules, the module's parser. */
function handleModuleOption(p: EbtCommandParse, mod: EbtModule, spec: EbtOptSpec, a: Arg, args: readonly Arg[], i: number, attached: string | undefined): number {
  let value: Arg | undefined;
  let next = i;
  if (spec.arg === 1) {
    if (attached !== undefined) value = { text: attached, col: a.col, quoted: false };
    else ({ value, next } = valueWithInverse(p, args, i, a));
  } else if (attached !== undefined) {
    p.err(a, `option "--${spec.name}" doesn't allow an argument`);
  } else if (args[i]?.text === '!' && spec.invert) {
    // `--arp-gratuitous !`: the old style puts the ! after a flag too
    p.invert = true;
    next = i + 1;
  }
  const inv = p.invert;
  if (inv && !spec.invert) p.err(p.invertArg ?? a, `Unexpected \`!' after --${spec.name}`);
  p.invert = false;
  const optPos = { line: p.env.line, col: a.col };
  let seen: Set<string>;
  let data: unknown;
  let options: OptionNode[];
  if (mod.kind === 'target') {
    seen = p.target!.seen;
    data = p.target!.data;
    options = p.target!.options;
  } else {
    let inst = p.instances.get(mod.name);
    if (!inst) {
      inst = { node: { name: mod.name, kind: mod.kind, data: mod.init(), pos: optPos, options: [] }, seen: new Set() };
      p.instances.set(mod.name, inst);
      p.rule.matches.push(inst.node);
    }
    seen = inst.seen;
    data = inst.node.data;
    options = inst.node.options;
  }
  if (seen.has(spec.name)) p.err(a, 'Multiple use of same option not allowed');
  seen.add(spec.name);
  options.push({ name: spec.name, invert: inv, arg: value?.text, pos: optPos });
  try {
    mod.parse(data, spec.name, value?.text, inv, p.ctx());
  } catch (e) {
    if (e instanceof ExtError) p.err(value ?? a, e.message, e.kind);
    throw e;
  }
  return next;
}

/** Parses one ebtables command (the words after `ebtables`, or a restore line). */
export function parseEbtCommand(args: readonly Arg[], env: EbtParseEnv, pos: SourcePos): EbtCommand {
  const p: EbtCommandParse = new EbtCommandParse(env, pos);
  let i = 0;
  while (i < args.length) {
    const a = args[i]!;
    i++;
    if (a.text === '!' && !a.quoted) {
      if (p.invert) p.err(a, "Double use of '!' not allowed");
      p.invert = true;
      p.invertArg = a;
      continue;
    }
    if (a.text.startsWith('--') && a.text.length > 2) {
      const eq = a.text.indexOf('=');
      const name = eq < 0 ? a.text.slice(2) : a.text.slice(2, eq);
      const attached = eq < 0 ? undefined : a.text.slice(eq + 1);
      let f: Found | undefined;
      try {
        f = lookupLong(p, name);
      } catch (e) {
        if (e instanceof NfvmError) p.err(a, e.reason);
        throw e;
      }
      if (!f) {
        const targetOpt = allTargetOptionNames().includes(name);
        if (targetOpt) p.err(a, `unknown option "--${name}" (a target's option: it follows its -j)`);
        const s = suggest(name, allOptionNames());
        p.err(a, `unknown option "--${name}"` + (s ? ` (did you mean --${s}?)` : ''));
      }
      if ('base' in f) {
        if (f.base.arg === 0 && attached === undefined) {
          p.err(a, `option "--${f.base.name}" is not supported here`);
        }
        i = handleBase(p, f.base, a, args, i, attached);
      } else {
        i = handleModuleOption(p, f.mod, f.spec, a, args, i, attached);
      }
      continue;
    }
    if (a.text.startsWith('-') && a.text.length >= 2 && !a.text.startsWith('--')) {
      const letter = a.text[1]!;
      const has = SHORT[letter];
      if (has === undefined) p.err(a, `unknown option "${a.text}"`);
      const b = BASE_OPTS.find((o) => o.short === letter) ?? { name: letter, arg: has, short: letter };
      const attached = a.text.length > 2 ? a.text.slice(2) : undefined;
      if ('VhLM'.includes(letter)) p.err(a, `option "${a.text}" is not supported here`);
      i = handleBase(p, b, { ...a, text: a.text.slice(0, 2) }, args, i, attached);
      continue;
    }
    p.err(a, `Bad argument : '${a.text}'`, 'syntax');
  }
  if (p.invert) p.err(p.invertArg, "Bad use of '!'");
  if (!p.cmd) p.err(undefined, 'no command specified (-A, -I, -D, -N, -P, -F, -X, -E or -Z)', 'syntax');
  const ruleCmd = p.cmd === 'A' || p.cmd === 'I' || (p.cmd === 'D' && p.num === undefined);
  if (ruleCmd) finishRule(p);
  else if (p.given.size > 0 || p.instances.size > 0 || p.target) p.err(undefined, `-${p.cmd} takes no rule specification`, 'option');
  if (p.cmd !== 'Z' && p.cmd !== 'F' && p.cmd !== 'X' && p.chain === undefined) p.err(undefined, `-${p.cmd} requires a chain`, 'option');
  return {
    cmd: p.cmd,
    table: p.table,
    chain: p.chain,
    num: p.num,
    policy: p.policy,
    newName: p.newName,
    rule: ruleCmd ? p.rule : undefined,
    jumpPos: p.jumpPos,
    pos,
  };
}

function allTargetOptionNames(): string[] {
  const out: string[] = [];
  for (const name of ['mark', 'dnat', 'snat', 'redirect', 'arpreply']) for (const s of findEbtTarget(name)?.options ?? []) out.push(s.name);
  return out;
}

/** The modules' final checks, the target's, and the kernel's table/hook checks. */
function finishRule(p: EbtCommandParse): void {
  const ctx = p.ctx();
  const located = (pos: SourcePos, run: () => void) => {
    try {
      run();
    } catch (e) {
      if (e instanceof ExtError) throw new NfvmError(e.kind, e.message, p.env.file, pos, undefined);
      throw e;
    }
  };
  for (const m of p.rule.matches) {
    const inst = p.instances.get(m.name)!;
    const mod = allEbtMatches().find((x) => x.name === m.name)!;
    if (mod.final) located(m.pos, () => mod.final!(m.data, inst.seen, ctx));
  }
  const t = p.target;
  if (t) {
    const mod = t.mod;
    if (mod.final) located(t.pos, () => mod.final!(t.data, t.seen, ctx));
    if (mod.tables && !mod.tables.includes(ctx.table)) {
      throw new NfvmError('check', `target ${mod.name}: not allowed in table ${ctx.table}`, p.env.file, t.pos, mod.name);
    }
    const why = mod.check?.(t.data, ctx);
    if (why) throw new NfvmError('check', `target ${mod.name}: not allowed in chain ${ctx.chain} (${why})`, p.env.file, t.pos, mod.name);
    const target: EbtTarget = { kind: 'ext', name: mod.name, data: t.data, pos: t.pos, options: t.options };
    p.rule.target = target;
  }
}
