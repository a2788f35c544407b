/**
 * The interface every match and target module implements.
 *
 * A module mirrors one iptables extension (`extensions/libxt_NAME.c`) plus
 * the kernel's check of it (`net/netfilter/xt_NAME.c` checkentry and the
 * `.table`/`.hooks`/`.proto` restrictions of its `struct xt_match`):
 *
 *  - `options` declares the long options as `struct xt_option_entry` does:
 *    whether it takes an argument, may be inverted with `!`, may be repeated.
 *    The rule parser enforces those three generic rules with iptables'
 *    messages, so `parse` only sees well-formed calls;
 *  - `init` returns fresh data (the zeroed `xt_*_info` after `init()`);
 *  - `parse` applies one option (x6_parse);
 *  - `final` runs after the rule's last option (x6_fcheck): mandatory and
 *    mutually exclusive options;
 *  - `save` prints the options as iptables-save does (the `save()` hook),
 *    each with its leading space;
 *  - `check` is the kernel's checkentry, run at load time with the table and
 *    the hooks the rule is reachable from;
 *  - `lower` emits what iptables-nft would load for the extension through
 *    the vm/expr encoders (the VM engine), or is the reason nfvm refuses to;
 *  - `reference` is the kernel's match or target function (xt_NAME.c) over a
 *    packet, the meaning `--engine reference` runs, or the reason it is
 *    refused.
 *
 * A refused face makes the engine refuse a ruleset that uses the extension
 * with "match NAME: semantics not modelled yet" (or "target NAME: ...").
 */
import type { Family, MatchNode, Rule, TableName, TargetNode } from '../core/ast.js';
import type { LowerCtx } from './lower.js';
import type { MatchFn, TargetFn } from './xt.js';
import type { Backend } from '../core/netfilter.js';
import type { NfCtEnv } from '../vm/ct-env.js';
import type { Choices, Xorshift32 } from '../vm/random.js';
import type { IpSetStore } from '../vm/ipset.js';
import type { XtDup, XtFib, XtIcmp, XtIpvs, XtSockets } from './xt.js';
import type { XtState } from './xtstate.js';
import type { OsfFingers } from './osf.js';
import type { NfacctObjects } from './nfacct.js';

export interface OptSpec {
  /** The long option name without the leading dashes. */
  readonly name: string;
  /** getopt has_arg: 0 none, 1 required, 2 optional (attached with `=` only). */
  readonly arg: 0 | 1 | 2;
  /** XTOPT_INVERT: `! --opt` is allowed. */
  readonly invert?: boolean;
  /** XTOPT_MULTI: the option may be given more than once. */
  readonly multi?: boolean;
  /**
   * Further arguments the option takes from the following words (like
   * `--tcp-flags MASK COMP` or `--match-set NAME FLAGS`); each must not
   * start with `-` or `!`, as the extensions check with argv[optind].
   */
  readonly extra?: number;
  /**
   * Old-style parsers that peek at argv[optind] (libxt_rateest): the option
   * takes the next word as an optional value when it exists and does not
   * start with `-` or `!`; the module's `parse` gets it in `extra[0]`.
   */
  readonly optionalExtra?: boolean;
}

/** What an extension sees of the rule being parsed. */
export interface ExtContext {
  readonly family: Family;
  readonly table: TableName;
  /** The rule so far (the IP part is complete only in `final`). */
  readonly rule: Rule;
  /** Print a warning the way iptables prints one on stderr. */
  warn(message: string): void;
}

/** What the kernel's checkentry sees. */
export interface CheckContext {
  readonly family: Family;
  readonly table: TableName;
  /**
   * Bit mask of hooks (1 << Hook) the rule's chain is reachable from, as the
   * kernel's mark_source_chains computes `comefrom`; 0 for unreachable user chains.
   */
  readonly hookMask: number;
  readonly rule: Rule;
  /**
   * Named kernel objects rules may refer to (ipsets, nfacct objects), when
   * known. Undefined means "not modelled": references are then accepted.
   */
  readonly objects: KnownObjects | undefined;
  /**
   * The backend the ruleset is loaded into: a match iptables-nft lowers to a
   * native expression (limit) meets that expression's init, not the xt
   * checkentry.
   */
  readonly backend: Backend;
}

/**
 * The kernel objects that exist when a ruleset is loaded. The kernel refuses
 * a rule naming an ipset or nfacct object that does not exist; nfvm checks
 * this only for the kinds given here (a node snapshot or a test declares
 * them), since a bare iptables-save dump does not say which exist.
 */
export interface KnownObjects {
  readonly ipsets?: ReadonlySet<string>;
  readonly nfacct?: ReadonlySet<string>;
  /** cttimeout policies (`nfct timeout add NAME ...`), for `-j CT --timeout`. */
  readonly ctTimeouts?: ReadonlySet<string>;
  /** Their layer-3 and layer-4 protocol numbers, when known (nf_ct_set_timeout compares them with the rule's). */
  readonly ctTimeoutProtos?: ReadonlyMap<string, readonly [l3num: number, l4num: number]>;
  /** The cgroup v2 tree's directories, each as vm/cgroup.ts cgroupCanonical writes it (`/`, `/a/b`), for `-m cgroup --path`. */
  readonly cgroups?: ReadonlySet<string>;
}

export interface ExtModule<D> {
  /** Name as given to `-m`/`-j` and as printed by iptables-save. */
  readonly name: string;
  /** Only for this family; both when absent. */
  readonly family?: Family;
  /** Other names `-m`/`-j` accept for this module (the saved name stays `name`). */
  readonly aliases?: readonly string[];
  readonly options: readonly OptSpec[];
  /** Kernel `xt_match.table`/`xt_target.table` restriction. */
  readonly tables?: readonly TableName[];
  /** Kernel `.hooks` restriction: bit mask of allowed hooks (1 << Hook). */
  readonly hooks?: number;
  /** Kernel `.proto`: the rule must have `-p` this protocol, not inverted. */
  readonly proto?: number;
  init(ctx: ExtContext): D;
  /** @param extra the further words of an option declared with `extra`. */
  parse(data: D, opt: string, arg: string | undefined, invert: boolean, ctx: ExtContext, extra: readonly string[]): void;
  /** @param seen the option names given (for mandatory/exclusive checks). */
  final?(data: D, seen: ReadonlySet<string>, ctx: ExtContext): void;
  /**
   * For a module whose data is never changed after parsing and means the
   * same in any rule: an equal instance to keep instead of `data` (one
   * object for the many rules of a big ruleset that say the same thing).
   */
  share?(data: D): D;
  /** The saved options, each with a leading space (empty string for none). */
  save(data: D, ctx: { family: Family; rule: Rule }): string;
  /** Kernel checkentry: a reason when the kernel refuses the rule. */
  check?(data: D, ctx: CheckContext): string | undefined;
}

/** Why nfvm does not model a face of an extension: what state or data it would need. */
type Refusal = string;

/** A `-j NAME` target node of an extension module. */
export type ExtTargetNode<D = unknown> = Extract<TargetNode, { kind: 'ext' }> & { data: D };

export type MatchModule<D = any> = ExtModule<D> & {
  readonly kind: 'match';
  /** The VM lowering of one `-m NAME` node, or why it is refused. */
  readonly lower: ((c: LowerCtx, m: MatchNode<D>) => void) | Refusal;
  /**
   * The kernel's match function for the parsed data (called once per rule), or why it is refused.
   * `backend` is the one the ruleset was loaded with: where iptables-nft lowers the match to
   * nf_tables expressions that mean something else than the x_tables match (tcp, udp), the
   * function is those expressions' meaning for 'nft'. `xt` is the node's clock and named
   * tables (ext/xtstate.ts): a checkentry that creates or joins a named table does it here.
   */
  readonly reference: ((data: D, family: Family, backend: Backend, engine: EngineOptions) => MatchFn) | Refusal;
  /**
   * For a match that draws a random number (statistic --mode random): the
   * outcomes of the decision the draw feeds, as raw draws and their
   * probabilities (vm/random.ts Choices); undefined when the data draws
   * nothing. Both engines' draws of the rule are then forced to each
   * outcome in turn when every branch is explored.
   */
  readonly random?: (data: D) => Choices | undefined;
  /**
   * The match only reads the packet and the node: no state of its own, no
   * counters, no random draw, and never a hotdrop (its kernel match
   * function only returns true or false: conntrack_mt() of xt_conntrack.c,
   * state_mt() of xt_state.c, mark_mt() and connmark_mt() of xt_mark.c and
   * xt_connmark.c, addrtype_mt_v0/v1() of xt_addrtype.c, pkttype_mt() of
   * xt_pkttype.c, iprange_mt4/6() of xt_iprange.c, mac_mt() of xt_mac.c,
   * length_mt()/length_mt6() of xt_length.c, ttl_mt()/hl_mt6() of xt_hl.c,
   * physdev_mt() of xt_physdev.c, comment_mt() of xt_comment.c). The
   * optimizer's classifier may then pass over a rule whose other tests fail
   * without running this one (compiler/optimize: it counts as a test of
   * every packet).
   */
  readonly pure?: true;
};
export type TargetModule<D = any> = ExtModule<D> & {
  readonly kind: 'target';
  /** The VM lowering of one `-j NAME` node, or why it is refused. */
  readonly lower: ((c: LowerCtx, t: ExtTargetNode<D>) => void) | Refusal;
  /** The kernel's target function for the parsed data (called once per rule), or why it is refused. */
  readonly reference: ((data: D, family: Family, engine: EngineOptions) => TargetFn) | Refusal;
  /**
   * For targets saved under another name than `name` (e.g. the `-j NOTRACK`
   * that iptables saves as `-j CT --notrack`): the saved `-j` name.
   */
  saveName?(data: D): string;
};

export type { MatchNode };

/**
 * What the node tells both engines: the seed they draw randomness from in the
 * same order (statistic --mode random), its addresses (addrtype) and its
 * conntrack (vm/ct-env.ts). The lowering and the reference faces of the
 * extensions read it.
 */
export interface EngineOptions {
  /** Seed of the pseudo-random generator (`statistic --mode random`), default 1. */
  seed?: number;
  /**
   * The node's one random source: every engine given it draws from its
   * state (and honours its forced-choice hook) instead of a generator of
   * its own seeded with `seed`.
   */
  random?: Xorshift32;
  /** The node's local addresses, for `addrtype` (LOCAL), and its broadcast addresses. */
  localAddrs?: readonly Uint8Array[];
  broadcastAddrs?: readonly Uint8Array[];
  /** The node's conntrack table and NAT core: the NAT and CT targets act through it, the conntrack matches read it. */
  ct?: NfCtEnv;
  /** The node's ipsets: the set match and the SET target look up and change them. */
  ipsets?: IpSetStore;
  /**
   * The node's clock and the named tables of the rate and state matches (recent lists,
   * hashlimit htables, rate estimators), shared by every engine of the node; an engine
   * without one makes its own.
   */
  xt?: XtState;
  /** The node's FIB (rpfilter's reverse-path lookup); without it every lookup fails. */
  fib?: XtFib;
  /** The node's sockets (the socket match); without them no packet finds one. */
  sockets?: XtSockets;
  /** The node's IPVS connection table (the ipvs match). */
  ipvs?: XtIpvs;
  /** The node's packet duplication (TEE's nf_dup_ipv4/ipv6); without it a TEE clone goes nowhere. */
  dup?: XtDup;
  /** The node's ICMP errors from targets (NPT's parameter problem); without it none is sent. */
  icmp?: XtIcmp;
  /** The OS fingerprints the node loaded (the snapshot's pf.os): the osf match is refused without them. */
  osf?: OsfFingers;
  /**
   * The node has no IPsec state (the snapshot's empty `ip xfrm state` list):
   * no packet is decapsulated (no sec_path) and none gets an xfrm bundle
   * (a bundle is made of states), which is all `-m policy` needs; without it
   * the match is refused.
   */
  xfrmNoStates?: boolean;
  /**
   * The node's cttimeout policies (the snapshot's nfct-timeout.txt) by name:
   * the number CT's template carries (1-based), and why the model cannot run
   * the policy, if it cannot. Without them `-j CT --timeout` is refused.
   */
  ctTimeouts?: ReadonlyMap<string, { readonly index: number; readonly unusable: string | undefined }>;
  /** The node's extended accounting objects (the snapshot's nfacct.txt): the nfacct match is refused without them. */
  nfacct?: NfacctObjects;
}
