/**
 * The AST nodes the iptables-restore parser builds, in their compact form.
 *
 * A 100,000-rule dump holds hundreds of thousands of rules, matches,
 * targets and options, so each node carries its own source position
 * (`line`, `col`) and answers `pos` with itself instead of pointing at a
 * separate `{ line, col }` object, and what is the same for every known
 * match (not unknown, no raw words) lives on the prototype. The shapes are
 * those of core/ast.ts: every other layer reads them through those types.
 */
import type { SourcePos } from '../../core/errors.js';
import type { AddrMask, Counters, MatchNode, OptionNode, Rule, TargetNode } from '../../core/ast.js';

export const NO_STRINGS: readonly string[] = Object.freeze([]);
export const NO_OPTIONS: readonly OptionNode[] = Object.freeze([]);
/** The matches of a rule without any (frozen: the parser replaces it with a fresh array before adding one). */
export const NO_MATCHES = Object.freeze([]) as readonly MatchNode[] as MatchNode[];

/** Zero counters, shared: counters are replaced, never changed in place. */
export const ZERO_COUNTERS: Counters = Object.freeze({ packets: 0n, bytes: 0n });

const INV_SRC = 1;
const INV_DST = 2;
const INV_IIF = 4;
const INV_OIF = 8;
const INV_PROTO = 16;
const FRAG = 32;
const INV_FRAG = 64;

/**
 * A rule as the parser builds it: core/ast.ts's Rule with the position
 * inline and the IP part's flags in one integer.
 */
export class RuleNode implements Rule, SourcePos {
  counters: Counters | undefined = undefined;
  src: AddrMask | undefined = undefined;
  dst: AddrMask | undefined = undefined;
  iif = '';
  oif = '';
  proto = 0;
  /** invSrc, invDst, invIif, invOif, invProto, frag, invFrag as bits. */
  flags = 0;
  matches: MatchNode[] = NO_MATCHES;
  target: TargetNode = NO_TARGET;
  constructor(
    public line: number,
    public col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
  set pos(p: SourcePos) {
    this.line = p.line;
    this.col = p.col;
  }
  private bit(b: number, v: boolean): void {
    this.flags = v ? this.flags | b : this.flags & ~b;
  }
  get invSrc(): boolean {
    return (this.flags & INV_SRC) !== 0;
  }
  set invSrc(v: boolean) {
    this.bit(INV_SRC, v);
  }
  get invDst(): boolean {
    return (this.flags & INV_DST) !== 0;
  }
  set invDst(v: boolean) {
    this.bit(INV_DST, v);
  }
  get invIif(): boolean {
    return (this.flags & INV_IIF) !== 0;
  }
  set invIif(v: boolean) {
    this.bit(INV_IIF, v);
  }
  get invOif(): boolean {
    return (this.flags & INV_OIF) !== 0;
  }
  set invOif(v: boolean) {
    this.bit(INV_OIF, v);
  }
  get invProto(): boolean {
    return (this.flags & INV_PROTO) !== 0;
  }
  set invProto(v: boolean) {
    this.bit(INV_PROTO, v);
  }
  get frag(): boolean {
    return (this.flags & FRAG) !== 0;
  }
  set frag(v: boolean) {
    this.bit(FRAG, v);
  }
  get invFrag(): boolean {
    return (this.flags & INV_FRAG) !== 0;
  }
  set invFrag(v: boolean) {
    this.bit(INV_FRAG, v);
  }

  /** A copy with other addresses (one rule of a `-s a,b -d c,d` cross product). */
  withAddrs(src: AddrMask | undefined, dst: AddrMask | undefined): RuleNode {
    const r = new RuleNode(this.line, this.col);
    r.counters = this.counters;
    r.src = src;
    r.dst = dst;
    r.iif = this.iif;
    r.oif = this.oif;
    r.proto = this.proto;
    r.flags = this.flags;
    r.matches = this.matches;
    r.target = this.target;
    return r;
  }
}

/** A match nfvm has a module for. */
export class KnownMatch implements MatchNode, SourcePos {
  options: readonly OptionNode[] = NO_OPTIONS;
  constructor(
    readonly name: string,
    public data: unknown,
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
  get unknown(): boolean {
    return false;
  }
  get raw(): readonly string[] {
    return NO_STRINGS;
  }
}

/** A match nfvm has no module for: its words kept verbatim. */
export class UnknownMatch implements MatchNode, SourcePos {
  options: readonly OptionNode[] = NO_OPTIONS;
  data: unknown = undefined;
  constructor(
    readonly name: string,
    readonly raw: readonly string[],
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
  get unknown(): boolean {
    return true;
  }
}

/**
 * An OptionNode that is its own source position (one object per option
 * instead of two).
 */
export class Opt implements OptionNode, SourcePos {
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

/** `-j ACCEPT|DROP|QUEUE|RETURN`. */
export class VerdictTarget implements SourcePos {
  readonly kind = 'verdict';
  constructor(
    readonly name: 'ACCEPT' | 'DROP' | 'QUEUE' | 'RETURN',
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
}

/** `-j CHAIN` / `-g CHAIN`. */
export class JumpTarget implements SourcePos {
  constructor(
    readonly kind: 'jump' | 'goto',
    public chain: string,
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
}

/** A target extension with its parsed data. */
export class ExtTarget implements SourcePos {
  readonly kind = 'ext';
  constructor(
    readonly name: string,
    public data: unknown,
    readonly options: readonly OptionNode[],
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
}

/** A target nfvm keeps verbatim. */
export class UnknownTarget implements SourcePos {
  readonly kind = 'unknown';
  constructor(
    readonly name: string,
    readonly raw: readonly string[],
    readonly line: number,
    readonly col: number,
  ) {}
  get pos(): SourcePos {
    return this;
  }
}

/** No `-j`: shared by every rule without a target. */
export const NO_TARGET: TargetNode = Object.freeze({ kind: 'none' as const });
