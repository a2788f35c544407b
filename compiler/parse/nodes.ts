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

/** A match nfvm has a module for. */
export class KnownMatch extends Located implements MatchNode {
  options: readonly OptionNode[] = NO_OPTIONS;
  readonly unknown = false;
  readonly raw: readonly string[] = NO_STRINGS;
  constructor(
    readonly name: string,
    public data: unknown,
    line: number,
    col: number,
  ) {
    super(line, col);
  }
}

/** A match nfvm has no module for: its words kept verbatim. */
export class UnknownMatch extends Located implements MatchNode {
  options: readonly OptionNode[] = NO_OPTIONS;
  data: unknown = undefined;
  readonly unknown = true;
  constructor(
    readonly name: string,
    readonly raw: readonly string[],
    line: number,
    col: number,
  ) {
    super(line, col);
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
export class ExtTarget extends Located {
  readonly kind = 'ext';
  constructor(
    readonly name: string,
    public data: unknown,
    readonly options: readonly OptionNode[],
    line: number,
    col: number,
  ) {
    super(line, col);
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
