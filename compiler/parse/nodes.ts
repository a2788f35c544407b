/**
 * The AST nodes the iptables-restore parser builds, in their compact form.
 *
 * A 100,000-rule dump holds hundreds of thousands of rules, matches,
 * targets and options, so each node carries its own source position
 * (`line`, `col`) and answers `pos` with itself instead of pointing at a
 * separate `{ line, col }` object, and empty lists and zero counters are
 * shared. The shapes are those of core/ast.ts: every other layer reads them
 * through those types.
 */
import type { SourcePos } from '../../core/errors.js';
import type { AddrMask, Counters, MatchNode, OptionNode, Rule, TargetNode } from '../../core/ast.js';

export const NO_STRINGS: readonly string[] = Object.freeze([]);
export const NO_OPTIONS: readonly OptionNode[] = Object.freeze([]);
/** The matches of a rule without any (frozen: the parser replaces it with a fresh array before adding one). */
export const NO_MATCHES = Object.freeze([]) as readonly MatchNode[] as MatchNode[];

/** Zero counters, shared: counters are replaced, never changed in place. */
export const ZERO_COUNTERS: Counters = Object.freeze({ packets: 0n, bytes: 0n });

/** A node that is its own source position. */
abstract class Located implements SourcePos {
  // declared, not class fields: a field definition here would run in the one
  // initializer every node kind shares, a megamorphic define on each node
  declare line: number;
  declare col: number;
  constructor(line: number, col: number) {
    this.line = line;
    this.col = col;
  }
  get pos(): SourcePos {
    return this;
  }
}

/**
 * A rule as the parser builds it: core/ast.ts's Rule with the position
 * inline. Every other field is an own property, so that a spread copy
 * (`{ ...rule }`) keeps the rule's meaning (it loses only `pos`, loudly).
 */
export class RuleNode extends Located implements Rule {
  counters: Counters | undefined = undefined;
  src: AddrMask | undefined = undefined;
  dst: AddrMask | undefined = undefined;
  invSrc = false;
  invDst = false;
  iif = '';
  oif = '';
  invIif = false;
  invOif = false;
  proto = 0;
  invProto = false;
  frag = false;
  invFrag = false;
  matches: MatchNode[] = NO_MATCHES;
  target: TargetNode = NO_TARGET;
  override get pos(): SourcePos {
    return this;
  }
  set pos(p: SourcePos) {
    this.line = p.line;
    this.col = p.col;
  }

  /** A copy with other addresses (one rule of a `-s a,b -d c,d` cross product). */
  withAddrs(src: AddrMask | undefined, dst: AddrMask | undefined): RuleNode {
    const r = new RuleNode(this.line, this.col);
    r.counters = this.counters;
    r.src = src;
    r.dst = dst;
    r.invSrc = this.invSrc;
    r.invDst = this.invDst;
    r.iif = this.iif;
    r.oif = this.oif;
    r.invIif = this.invIif;
    r.invOif = this.invOif;
    r.proto = this.proto;
    r.invProto = this.invProto;
    r.frag = this.frag;
    r.invFrag = this.invFrag;
    r.matches = this.matches;
    r.target = this.target;
    return r;
  }
}

/**
 * The options an extension was given, in the compact form its node keeps:
 * per option its name, its argument and `col * 2 + invert` (all on the
 * node's line), three slots each. `OptionNode`s are made from it only when
 * asked for (diagnostics, tracing): a 100,000-rule dump has hundreds of
 * thousands of options that nothing else reads.
 */
export type PackedOptions = (string | number | undefined)[];

/** The OptionNodes of packed options (a fresh list each time). */
function unpack(p: PackedOptions | undefined, line: number): readonly OptionNode[] {
  if (p === undefined) return NO_OPTIONS;
  const out: OptionNode[] = [];
  for (let k = 0; k < p.length; k += 3) {
    const f = p[k + 2] as number;
    out.push(new Opt(p[k] as string, (f & 1) !== 0, p[k + 1] as string | undefined, line, f >>> 1));
  }
  return out;
}

/**
 * A match or target extension with options: `options` is built from
 * `packed` on demand. Setting `options` (a caller assembling a node) packs
 * them; their line is taken to be the node's.
 */
abstract class WithOptions extends Located {
  declare packed: PackedOptions | undefined;
  constructor(line: number, col: number) {
    super(line, col);
    this.packed = undefined;
  }
  get options(): readonly OptionNode[] {
    return unpack(this.packed, this.line);
  }
  set options(list: readonly OptionNode[]) {
    if (list.length === 0) {
      this.packed = undefined;
      return;
    }
    const p: PackedOptions = [];
    for (const o of list) p.push(o.name, o.arg, o.pos.col * 2 + (o.invert ? 1 : 0));
    this.packed = p;
  }
}

/** A match nfvm has a module for. */
export class KnownMatch extends WithOptions implements MatchNode {
  declare readonly name: string;
  declare data: unknown;
  constructor(name: string, data: unknown, line: number, col: number) {
    super(line, col);
    this.name = name;
    this.data = data;
  }
  get unknown(): false {
    return false;
  }
  get raw(): readonly string[] {
    return NO_STRINGS;
  }
}

/** A match nfvm has no module for: its words kept verbatim. */
export class UnknownMatch extends WithOptions implements MatchNode {
  declare readonly name: string;
  declare readonly raw: readonly string[];
  declare data: unknown;
  constructor(name: string, raw: readonly string[], line: number, col: number) {
    super(line, col);
    this.name = name;
    this.raw = raw;
    this.data = undefined;
  }
  get unknown(): true {
    return true;
  }
}

/**
 * An OptionNode that is its own source position (one object per option
 * instead of two).
 */
export class Opt extends Located implements OptionNode {
  constructor(
    readonly name: string,
    readonly invert: boolean,
    readonly arg: string | undefined,
    line: number,
    col: number,
  ) {
    super(line, col);
  }
}

/** `-j ACCEPT|DROP|QUEUE|RETURN`. */
export class VerdictTarget extends Located {
  readonly kind = 'verdict';
  constructor(
    readonly name: 'ACCEPT' | 'DROP' | 'QUEUE' | 'RETURN',
    line: number,
    col: number,
  ) {
    super(line, col);
  }
}

/** `-j CHAIN` / `-g CHAIN`. */
export class JumpTarget extends Located {
  constructor(
    readonly kind: 'jump' | 'goto',
    public chain: string,
    line: number,
    col: number,
  ) {
    super(line, col);
  }
}

/** A target extension with its parsed data. */
export class ExtTarget extends WithOptions {
  readonly kind = 'ext';
  declare readonly name: string;
  declare data: unknown;
  constructor(name: string, data: unknown, packed: PackedOptions | undefined, line: number, col: number) {
    super(line, col);
    this.name = name;
    this.data = data;
    this.packed = packed;
  }
}

/** A target nfvm keeps verbatim. */
export class UnknownTarget extends Located {
  readonly kind = 'unknown';
  constructor(
    readonly name: string,
    readonly raw: readonly string[],
    line: number,
    col: number,
  ) {
    super(line, col);
  }
}

/** No `-j`: shared by every rule without a target. */
export const NO_TARGET: TargetNode = Object.freeze({ kind: 'none' as const });
