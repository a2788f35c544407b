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

/** The bits of RuleNode.flags. */
const enum F {
  INV_SRC = 1,
  INV_DST = 2,
  INV_IIF = 4,
  INV_OIF = 8,
  INV_PROTO = 16,
  FRAG = 32,
  INV_FRAG = 64,
}

/**
 * A rule as the parser builds it: core/ast.ts's Rule with the position
 * inline and its seven flags (the inversions, -f) as bits of one number,
 * read and written through accessors. A spread copy (`{ ...rule }`) would
 * lose `pos` and the flags: copy a rule with withAddrs().
 */
export class RuleNode extends Located implements Rule {
  counters: Counters | undefined = undefined;
  src: AddrMask | undefined = undefined;
  dst: AddrMask | undefined = undefined;
  iif = '';
  oif = '';
  proto = 0;
  flags = 0;
  matches: MatchNode[] = NO_MATCHES;
  target: TargetNode = NO_TARGET;
  override get pos(): SourcePos {
    return this;
  }
  set pos(p: SourcePos) {
    this.line = p.line;
    this.col = p.col;
  }
  private bit(b: F, on: boolean): void {
    this.flags = on ? this.flags | b : this.flags & ~b;
  }
  get invSrc(): boolean {
    return (this.flags & F.INV_SRC) !== 0;
  }
  set invSrc(v: boolean) {
    this.bit(F.INV_SRC, v);
  }
  get invDst(): boolean {
    return (this.flags & F.INV_DST) !== 0;
  }
  set invDst(v: boolean) {
    this.bit(F.INV_DST, v);
  }
  get invIif(): boolean {
    return (this.flags & F.INV_IIF) !== 0;
  }
  set invIif(v: boolean) {
    this.bit(F.INV_IIF, v);
  }
  get invOif(): boolean {
    return (this.flags & F.INV_OIF) !== 0;
  }
  set invOif(v: boolean) {
    this.bit(F.INV_OIF, v);
  }
  get invProto(): boolean {
    return (this.flags & F.INV_PROTO) !== 0;
  }
  set invProto(v: boolean) {
    this.bit(F.INV_PROTO, v);
  }
  get frag(): boolean {
    return (this.flags & F.FRAG) !== 0;
  }
  set frag(v: boolean) {
    this.bit(F.FRAG, v);
  }
  get invFrag(): boolean {
    return (this.flags & F.INV_FRAG) !== 0;
  }
  set invFrag(v: boolean) {
    this.bit(F.INV_FRAG, v);
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

/**
 * The options an extension was given, in the compact form its node keeps:
 * per option its name, its argument and `col * 2 + invert` (all on the
 * node's line), three slots each. The node holds its first option in its
 * own fields and the rest in an array. `OptionNode`s are made only when
 * asked for (diagnostics, tracing): a 100,000-rule dump has hundreds of
 * thousands of options that nothing else reads.
 */
export type PackedOptions = (string | number | undefined)[];

/**
 * A match or target extension with options: `options` is built from the
 * packed form on demand. Setting `options` (a caller assembling a node)
 * packs them; their line is taken to be the node's.
 */
abstract class WithOptions extends Located {
  /** The first option's name (undefined: no options), argument and `col * 2 + invert`. */
  declare o1: string | undefined;
  declare o1arg: string | undefined;
  declare o1f: number;
  /** The further options, packed. */
  declare more: PackedOptions | undefined;
  constructor(line: number, col: number) {
    super(line, col);
    this.o1 = undefined;
    this.o1arg = undefined;
    this.o1f = 0;
    this.more = undefined;
  }
  /** Takes the options of a packed list (the parser's). */
  setPacked(p: PackedOptions | undefined): void {
    if (p === undefined || p.length === 0) {
      this.o1 = undefined;
      this.o1arg = undefined;
      this.o1f = 0;
      this.more = undefined;
      return;
    }
    this.o1 = p[0] as string;
    this.o1arg = p[1] as string | undefined;
    this.o1f = p[2] as number;
    this.more = p.length > 3 ? p.slice(3) : undefined;
  }
  get options(): readonly OptionNode[] {
    if (this.o1 === undefined) return NO_OPTIONS;
    const out: OptionNode[] = [new Opt(this.o1, (this.o1f & 1) !== 0, this.o1arg, this.line, this.o1f >>> 1)];
    const p = this.more;
    if (p) {
      for (let k = 0; k < p.length; k += 3) {
        const f = p[k + 2] as number;
        out.push(new Opt(p[k] as string, (f & 1) !== 0, p[k + 1] as string | undefined, this.line, f >>> 1));
      }
    }
    return out;
  }
  set options(list: readonly OptionNode[]) {
    const p: PackedOptions = [];
    for (const o of list) p.push(o.name, o.arg, o.pos.col * 2 + (o.invert ? 1 : 0));
    this.setPacked(p);
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
    this.setPacked(packed);
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
