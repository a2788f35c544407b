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
import { EBT_ACCEPT, EBT_CONTINUE, EBT_DROP, EBT_RETURN, type Backend } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { ProgramBuilder } from '../../vm/builder.js';
import type { XtEnv } from '../xt.js';
import type { EngineOptions } from '../types.js';

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

/**
 * What an ebtables match, watcher or target sees (struct xt_action_param as
 * ebt_do_table() fills it). Offsets are absolute frame offsets: the MAC
 * header is at 0, `nh` is skb->data (after an accelerated VLAN tag), `end`
 * the end of the frame; the port and bridge names are in the packet's
 * metadata (M_IIFNAME, M_BRIINAME, ...).
 */
export interface EbtParam {
  pkt: Packet;
  d: Uint8Array;
  meta: Int32Array;
  /** NF_BR_* hook. */
  hook: number;
  nh: number;
  end: number;
  hotdrop: boolean;
  env: EbtEnv;
  /** The rule being evaluated (for recorded actions). */
  chain: string;
  rule: number;
}

/** The node facts an ebtables module may need beyond the packet, and the recorder. */
export interface EbtEnv extends XtEnv {
  /** dev->dev_addr of a device by name (dnat's pkt_type, redirect), undefined when unknown. */
  macOf: (ifname: string) => Uint8Array | undefined;
  /** 'legacy': ebt_do_table with the ebt_* functions; 'nft': what ebtables-nft loads instead. */
  backend: Backend;
}

/** Options of the bridge engines. */
export interface EbtEngineOptions extends EngineOptions {
  /** The devices' MAC addresses (dnat, redirect). */
  macOf?: (ifname: string) => Uint8Array | undefined;
  /** The backend the ruleset was loaded with (default 'nft', the only one this kernel loads). */
  backend?: Backend;
  /** File name for refusals. */
  file?: string;
}

export type EbtMatchFn = (p: EbtParam) => boolean;
/** Returns an EBT_* verdict (EBT_ACCEPT, EBT_DROP, EBT_CONTINUE, EBT_RETURN). */
export type EbtTargetFn = (p: EbtParam) => number;

/**
 * The reference face: the kernel's function made from the module's data
 * (its checkentry done): `mt` for matches and watchers (a watcher's
 * result is ignored), `tg` for targets (the kernel's xt_match.match and
 * xt_target.target).
 */
export interface EbtReference<D> {
  readonly mt?: (d: D, env: EbtEnv) => EbtMatchFn;
  readonly tg?: (d: D, env: EbtEnv) => EbtTargetFn;
}

/**
 * What ebtables-nft (iptables 1.8.9) loads for a module: its native
 * expressions (`native`: add_nft_limit, add_nft_among), or, without them,
 * the module itself through nft_compat (`[ match name NAME rev REV ]`,
 * `[ target name NAME rev REV ]`), the same ebt_NAME.c function the
 * reference runs.
 */
export interface EbtLower<D> {
  readonly rev: number;
  readonly native?: (b: ProgramBuilder, d: D, env: EbtEnv) => void;
}

/** EbtVerdict name → EBT_* verdict. */
export function ebtVerdict(v: EbtVerdict): number {
  return v === 'ACCEPT' ? EBT_ACCEPT : v === 'DROP' ? EBT_DROP : v === 'CONTINUE' ? EBT_CONTINUE : EBT_RETURN;
}

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
  readonly lower: Refusal | EbtLower<D>;
  readonly reference: Refusal | EbtReference<D>;
}
