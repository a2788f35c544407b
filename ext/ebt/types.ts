/**
 * The interface of an ebtables module (iptables' `extensions/libebt_NAME.c`
 * with the kernel's `net/bridge/netfilter/ebt_NAME.c` checks): a match
 * (`ip`, `vlan`, ...), a watcher (`log`, `nflog`: they see the frame and
 * never decide) or a target (`mark`, `dnat`, ...).
 *
 * ebtables loads every module at once: an option belongs to the module that
 * declares it, with no `-m`. A target's options count only after its `-j`.
 *
 *  - `options`: the long options (getopt has_arg and whether `!` may
 *    precede them, before the option or, in ebtables' old style, after it);
 *  - `init`/`parse`/`final`: the zeroed info, one option, and the
 *    `final_check` (which reads the rule's `-p` and the chain's hook);
 *  - `save`: the options as ebtables-save prints them (a match: each with a
 *    leading space; a target: the text after `-j NAME `);
 *  - `check`: the kernel's checkentry (table and hooks);
 *  - `lower` / `reference`: the nf_tables lowering and the kernel's
 *    function, or the reason nfvm refuses them.
 */
import type { EbtRule, EbtTableName, EbtVerdict } from '../../core/ebt-ast.js';

export interface EbtOptSpec {
  readonly name: string;
  /** getopt has_arg: 0 none, 1 required. */
  readonly arg: 0 | 1;
  /** `!` may invert the option. */
  readonly invert?: boolean;
}

/** What a module's parser and final_check see. */
export interface EbtParseContext {
  readonly table: EbtTableName;
  readonly chain: string;
  /** NF_BR_* hook of the chain, or -1 for a user chain. */
  readonly hook: number;
  /** The rule so far (complete in `final`). */
  readonly rule: EbtRule;
  /** Reads a file an option names (`--among-src-file`); undefined where no file may be read. */
  readonly readFile: ((path: string) => string) | undefined;
}

/** Why nfvm does not model a face of a module. */
type Refusal = string;

export interface EbtModule<D = any> {
  readonly kind: 'match' | 'watcher' | 'target';
  /** The name (`-j NAME` for targets, the saved module name for matches). */
  readonly name: string;
  readonly options: readonly EbtOptSpec[];
  /** Kernel `.table` restriction. */
  readonly tables?: readonly EbtTableName[];
  /** Kernel `.hooks` restriction (bit mask of 1 << NF_BR_*). */
  readonly hooks?: number;
  init(): D;
  parse(d: D, opt: string, arg: string | undefined, invert: boolean, ctx: EbtParseContext): void;
  final?(d: D, seen: ReadonlySet<string>, ctx: EbtParseContext): void;
  save(d: D): string;
  /** Kernel checkentry: a reason when the kernel refuses the rule. */
  check?(d: D, ctx: EbtParseContext): string | undefined;
  /** The verdict a target returns after acting (`--mark-target` etc.), for the traversal. */
  verdictOf?(d: D): EbtVerdict;
  readonly lower: Refusal;
  readonly reference: Refusal;
}
