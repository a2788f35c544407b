/**
 * The typed AST of an ebtables ruleset (the bridge family): what the kernel
 * holds after `ebtables-restore` or a list of `ebtables` commands.
 *
 * Rule fields mirror `struct ebt_entry` (include/uapi/linux/netfilter_bridge/ebtables.h)
 * as ebtables-nft fills `struct ebt_entry` in its command state: the
 * protocol (`ethproto` with EBT_NOPROTO/EBT_802_3), source and destination
 * MAC with masks, the four interface names, each with its inversion flag,
 * then the matches and watchers in the order they were given, then the
 * target.
 */
import type { SourcePos } from './errors.js';
import type { Counters, OptionNode } from './ast.js';

export type EbtTableName = 'filter' | 'nat' | 'broute';
export const EBT_TABLE_NAMES: readonly EbtTableName[] = ['filter', 'nat', 'broute'];

/** Builtin chains of each table in hook order (ebtable_filter.c, ebtable_nat.c, ebtable_broute.c). */
export const EBT_TABLE_CHAINS: Readonly<Record<EbtTableName, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'],
  broute: ['BROUTING'],
};

/** Builtin chain name → NF_BR_* hook number. */
export const EBT_BUILTIN_HOOK: Readonly<Record<string, number>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, number>, {
    PREROUTING: 0,
    INPUT: 1,
    FORWARD: 2,
    OUTPUT: 3,
    POSTROUTING: 4,
    BROUTING: 5,
  }),
);

/** The standard verdicts of ebtables: a policy, a `-j` verdict or an extension's `--*-target`. */
export type EbtVerdict = 'ACCEPT' | 'DROP' | 'CONTINUE' | 'RETURN';

export interface MacMask {
  addr: Uint8Array;
  mask: Uint8Array;
}

/** One match or watcher instance: an ebtables module with the options given for it. */
export interface EbtMatchNode<D = unknown> {
  name: string;
  kind: 'match' | 'watcher';
  data: D;
  /** Position of its first option. */
  pos: SourcePos;
  options: OptionNode[];
}

export type EbtTarget =
  | { kind: 'verdict'; verdict: EbtVerdict; pos: SourcePos | undefined }
  | { kind: 'jump'; chain: string; pos: SourcePos }
  | { kind: 'ext'; name: string; data: unknown; pos: SourcePos; options: OptionNode[] };

export interface EbtRule {
  pos: SourcePos;
  counters: Counters | undefined;
  /** EBT_NOPROTO: no `-p`. */
  anyProto: boolean;
  /** EBT_802_3: `-p LENGTH` (type/length field below 0x0600). */
  is8023: boolean;
  /** The ethertype of `-p` (host order), when neither flag is set. */
  ethproto: number;
  invProto: boolean;
  src: MacMask | undefined;
  invSrc: boolean;
  dst: MacMask | undefined;
  invDst: boolean;
  /** Interface names as written ('' for none); a trailing `+` is a prefix wildcard. */
  iif: string;
  invIif: boolean;
  logicalIn: string;
  invLogicalIn: boolean;
  oif: string;
  invOif: boolean;
  logicalOut: string;
  invLogicalOut: boolean;
  matches: EbtMatchNode[];
  target: EbtTarget;
}

export interface EbtChain {
  name: string;
  builtin: boolean;
  /** ACCEPT or DROP for builtin chains; user chains may also have RETURN. */
  policy: EbtVerdict;
  policyCounters: Counters;
  rules: EbtRule[];
  pos: SourcePos | undefined;
}

export interface EbtTable {
  name: EbtTableName;
  /** Chains by name: builtins in hook order, then user chains as created. */
  chains: Map<string, EbtChain>;
  pos: SourcePos | undefined;
}

export interface EbtRuleset {
  family: 'bridge';
  tables: Map<EbtTableName, EbtTable>;
}
