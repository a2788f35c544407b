/**
 * The state of parsing one command line: what iptables' do_parse() keeps in
 * its locals and in `struct iptables_command_state` while getopt walks the
 * arguments, plus the located errors every part of the parser raises.
 */
import { NfvmError, ExtError, type SourcePos } from '../../core/errors.js';
import type { AddrMask, Family, TableName } from '../../core/ast.js';
import type { ExtContext, MatchModule, TargetModule } from '../../ext/types.js';
import type { Arg } from './argv.js';
import { RuleNode, type KnownMatch, type PackedOptions, type UnknownMatch } from './nodes.js';

export type CommandName = 'A' | 'I' | 'D' | 'R' | 'N' | 'X' | 'F' | 'P' | 'E' | 'Z';

export interface RuleParseEnv {
  file: string;
  family: Family;
  table: TableName;
  line: number;
  warn(pos: SourcePos, message: string): void;
}

/** A loaded extension instance during parsing (the `struct xtables_match` clone). */
export interface Loaded {
  kind: 'match' | 'target' | 'unknown-match' | 'unknown-target';
  mod: MatchModule | TargetModule | undefined;
  name: string;
  data: unknown;
  seen: SeenNames;
  /** The options given so far, packed as the AST keeps them (undefined until the first). */
  options: PackedOptions | undefined;
  raw: string[];
  /** Column of the `-m`/`-j` (or of the option that loaded it implicitly). */
  col: number;
  node: KnownMatch | UnknownMatch | undefined;
}

/**
 * The option names an extension was given on a line (what x6_fcheck and
 * the modules' final checks test): a few names, kept in an array, since
 * one is made per extension per rule.
 */
export class SeenNames implements ReadonlySet<string> {
  private names: string[] | undefined;
  get size(): number {
    return this.names ? this.names.length : 0;
  }
  has(name: string): boolean {
    return this.names !== undefined && this.names.includes(name);
  }
  add(name: string): void {
    if (this.names === undefined) this.names = [name];
    else if (!this.names.includes(name)) this.names.push(name);
  }
  values(): SetIterator<string> {
    return (this.names ?? []).values();
  }
  keys(): SetIterator<string> {
    return this.values();
  }
  entries(): SetIterator<[string, string]> {
    return new Set(this.names).entries();
  }
  forEach(fn: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const n of this.names ?? []) fn.call(thisArg, n, n, this);
  }
  [Symbol.iterator](): SetIterator<string> {
    return this.values();
  }
}

/**
 * A set of option letters (the base options seen on a line): bits, not a
 * Set, since one is made per rule.
 */
export class Letters {
  private lo = 0;
  private hi = 0;
  private top = 0;
  has(letter: string): boolean {
    const i = letter.charCodeAt(0) - 48;
    return i < 0 || i >= 96 ? false : i < 32 ? (this.lo & (1 << i)) !== 0 : i < 64 ? (this.hi & (1 << (i - 32))) !== 0 : (this.top & (1 << (i - 64))) !== 0;
  }
  add(letter: string): void {
    const i = letter.charCodeAt(0) - 48;
    if (i < 0 || i >= 96) throw new RangeError(`not an option letter: ${letter}`);
    if (i < 32) this.lo |= 1 << i;
    else if (i < 64) this.hi |= 1 << (i - 32);
    else this.top |= 1 << (i - 64);
  }
}

const NO_ADDRS: readonly AddrMask[] = Object.freeze([]);

export class CommandParse implements ExtContext {
  readonly file: string;
  readonly family: Family;
  readonly line: number;
  /** The next argument to read (getopt's optind). */
  i = 0;
  readonly rule: RuleNode;
  /** The `-s` / `-d` addresses (replaced, never added to: none is a shared empty list). */
  srcList: readonly AddrMask[] = NO_ADDRS;
  dstList: readonly AddrMask[] = NO_ADDRS;
  cmd: CommandName | undefined;
  chain: string | undefined;
  chainPos: SourcePos | undefined;
  chainArg: Arg | undefined;
  policyArg: Arg | undefined;
  rulenum: number | undefined;
  policy: string | undefined;
  newName: string | undefined;
  cmdArg: Arg | undefined;
  /** A lone `!` was read: it applies to the next option. */
  invert = false;
  /** `-p` as written (lower case), for the implicit protocol match. */
  protoText: string | undefined;
  protoUsed = false;
  readonly seenBase = new Letters();
  readonly ifaceArg: { i?: Arg; o?: Arg } = {};
  /** Loaded extensions, newest first (the getopt search order after the base options). */
  readonly loaded: Loaded[] = [];
  target: Loaded | undefined;
  jumpName: string | undefined;
  jumpArg: Arg | undefined;
  isGoto = false;
  /** `-6` in iptables-restore or `-4` in ip6tables-restore: the line is ignored. */
  ignored = false;
  /** The argument after `--` (getopt stops there): what follows is refused after the loop. */
  rest: Arg | undefined;
  readonly ctx: ExtContext;

  constructor(
    readonly args: readonly Arg[],
    readonly env: RuleParseEnv,
    readonly ruleStart: SourcePos,
  ) {
    this.file = env.file;
    this.family = env.family;
    this.line = env.line;
    this.rule = new RuleNode(ruleStart.line, ruleStart.col);
    // the parse is its extensions' context (one object less per rule)
    this.ctx = this;
  }

  get table(): TableName {
    return this.env.table;
  }

  warn(message: string): void {
    this.env.warn(this.ruleStart, message);
  }

  /** The position of an argument (the rule's start when there is none). */
  at(a: Arg | undefined): SourcePos {
    return a ? { line: this.line, col: a.col } : this.ruleStart;
  }

  err(a: Arg | undefined, reason: string, kind: 'option' | 'value' | 'syntax' = 'option'): never {
    throw new NfvmError(kind, reason, this.file, this.at(a), a?.text);
  }

  /** An extension's ExtError, located at the argument being parsed. */
  rethrow(e: unknown, a: Arg | undefined): never {
    if (e instanceof ExtError) throw new NfvmError(e.kind, e.message, this.file, this.at(a), a?.text);
    throw e;
  }

  /** An optional following non-option argument is there (iptables' xs_has_arg). */
  hasNextArg(): boolean {
    const args = this.args;
    return this.i < args.length && !args[this.i]!.text.startsWith('-') && args[this.i]!.text !== '!';
  }
}
