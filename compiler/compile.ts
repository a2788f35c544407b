/**
 * The compiler: one table of the AST → a VM Program (nftables'
 * netlink_linearize over iptables-nft's rule layout). Per rule: the IP part,
 * each match in order, a counter, the target (kernel-facts §1.8). A match or
 * target without a lowering is refused with an NfvmError naming it
 * ("match X: semantics not modelled yet") at its source position.
 *
 * backend 'nft' emits exactly what iptables-nft 1.8.9 emits for what it
 * lowers natively (the golden tests of test/compile/cases compare the
 * disassembly with `nft --debug=netlink`); backend 'legacy' (the default)
 * adds the x_tables guards before layer-4 matches and keeps inverted port
 * pairs apart, so the program means what ipt_do_table() does.
 *
 * With `policyRules`, every builtin chain X becomes a base chain of two
 * rules, `jump X\0body` then `counter + policy verdict`, and X's rules go
 * into the user chain `X\0body`: a RETURN or chain end at the top level
 * then counts the policy like x_tables' underflow entry (engine/vm-table.ts uses it).
 */
import { ProgramBuilder } from '../vm/builder.js';
import type { Program } from '../vm/program.js';
import type { EngineOptions } from '../ext/types.js';
import { NFT_JUMP } from '../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, type Backend } from '../core/netfilter.js';
import { emitClassify, emitCounter, emitVerdict, linkClassify } from '../vm/expr/index.js';
import { validate } from '../vm/validate.js';
import { BUILTIN_HOOK, type Rule, type Ruleset, type TableName } from '../core/ast.js';
import { NfvmError, type SourcePos } from '../core/errors.js';
import { LowerCtx } from '../ext/lower.js';
import { lowerRule } from './lower/rule.js';
import { buildClassifier, findRuns } from './optimize/index.js';
import { RuleInfos } from './rule-info.js';
import { heapCheck } from '../core/heap.js';

export type { RuleInfo } from './rule-info.js';
export { RuleInfos } from './rule-info.js';

export interface CompileOptions {
  /** 'legacy' (default): x_tables semantics; 'nft': iptables-nft's exact bytecode. */
  backend?: Backend;
  /** The node (addrtype) and the seed; the seed is used by engine/vm-table.ts. */
  engine?: EngineOptions;
  /** File name for error messages. */
  file?: string;
  /** Wrap builtin chains so that policies are counted (see the header). */
  policyRules?: boolean;
  /** Run the load-time validator (default true). */
  validate?: boolean;
  /**
   * 1: a classifier prefilter in front of each long run of simple rules
   * (compiler/optimize; backend 'legacy' only, ignored for 'nft');
   * 0 (default): straight lowering.
   */
  optimize?: 0 | 1;
  /** Rules per classifier block (1..256, default 256; smaller blocks exercise the block summary in tests). */
  classifierBlock?: number;
}

/** What a Program rule index stands for. */
export interface CompiledTable {
  program: Program;
  /** By Program rule index. */
  rules: RuleInfos;
  /** iptables chain name by Program chain index. */
  chainNames: string[];
}

/** The name of the user chain that holds builtin chain `name`'s rules with `policyRules`. */
export function bodyChain(name: string): string {
  return `${name}\0body`;
}

/** What declareChains() and wrapBuiltin() read of a chain (iptables or ebtables). */
interface ChainDecl {
  name: string;
  builtin: boolean;
  policy: string | undefined;
  rules: readonly unknown[];
  pos: SourcePos | undefined;
}

/**
 * Declares the table's chains in order (the builder numbers them so); with
 * `wrap` each builtin chain is followed by its body chain, both named after
 * the builtin chain in `chainNames`.
 */
export function declareChains(b: ProgramBuilder, chains: Iterable<ChainDecl>, hookOf: Readonly<Record<string, number>>, wrap: boolean, chainNames: string[]): void {
  for (const ch of chains) {
    if (ch.builtin) {
      b.chain(ch.name, { hook: hookOf[ch.name], policy: ch.policy === 'DROP' ? NF_DROP : NF_ACCEPT });
      chainNames.push(ch.name);
      if (wrap) {
        b.chain(bodyChain(ch.name));
        chainNames.push(ch.name);
      }
    } else {
      b.chain(ch.name);
      chainNames.push(ch.name);
    }
  }
}

/** The rules wrapBuiltin() makes of builtin chain `ch`: the jump and the policy, or the policy alone. */
function wrapRules(ch: ChainDecl): number {
  return ch.rules.length !== 0 ? 2 : 1;
}

/**
 * A wrapped builtin chain's two rules: the jump to its body chain, then the
 * policy with its counter (x_tables' underflow entry). A chain without rules
 * has the policy rule alone: the jump would enter an empty body and return
 * (a packet of a kube-proxy node in nftables mode meets two such chains,
 * mangle FORWARD and POSTROUTING). Returns the next counter index.
 */
export function wrapBuiltin(b: ProgramBuilder, ch: ChainDecl, rules: RuleInfos, counter: number): number {
  if (wrapRules(ch) === 2) {
    b.rule(ch.name, ch.pos);
    emitVerdict(b, NFT_JUMP, bodyChain(ch.name));
    rules.push(ch.name, 0, 'wrap', -1, false);
  }
  b.rule(ch.name, ch.pos);
  emitCounter(b);
  emitVerdict(b, ch.policy === 'DROP' ? NF_DROP : NF_ACCEPT);
  rules.push(ch.name, ch.rules.length + 1, 'policy', counter, true);
  return counter + 1;
}

export function compileTable(rs: Ruleset, tableName: TableName, opts: CompileOptions = {}): CompiledTable {
  const table = rs.tables.get(tableName);
  const file = opts.file ?? '<input>';
  if (!table) throw new NfvmError('check', `table ${tableName} is not in the ruleset`, file, undefined, tableName);
  const b = new ProgramBuilder(rs.family === 'ip6' ? NFPROTO_IPV6 : NFPROTO_IPV4, tableName);
  const c = new LowerCtx(b, rs.family, opts.backend ?? 'legacy', file, opts.engine ?? {});
  const chainNames: string[] = [];
  let counters = 0;
  const wrap = opts.policyRules === true;
  const optimize = opts.optimize === 1 && c.legacy;
  let classifiers = 0;

  // Chains first (the builder numbers them in declaration order).
  declareChains(b, table.chains.values(), BUILTIN_HOOK, wrap, chainNames);
  let nrules = 0;
  for (const ch of table.chains.values()) nrules += ch.rules.length + (ch.builtin && wrap ? wrapRules(ch) : 0);
  b.expectRules(nrules);
  const rules = new RuleInfos(nrules);
  const compiling = `compiling table ${tableName}`;
  for (const ch of table.chains.values()) {
    // the chain's index, looked up once and not per rule
    const into = b.chainIndex(ch.builtin && wrap ? bodyChain(ch.name) : ch.name)!;
    if (ch.builtin && wrap) counters = wrapBuiltin(b, ch, rules, counters);
    const runs = optimize ? findRuns(ch.rules, rs.family) : [];
    let run = 0;
    ch.rules.forEach((rule, i) => {
      c.rule = rule;
      heapCheck(compiling, file, rule.pos.line);
      const index = b.rule(into, rule.pos);
      if (run < runs.length && runs[run]!.start === i) {
        const { start, end } = runs[run++]!;
        emitClassify(b, buildClassifier(ch.rules.slice(start, end), rs.family, index, opts.classifierBlock), classifiers++);
      }
      lowerRule(c, rule);
      rules.push(ch.name, i + 1, 'rule', counters++, unconditional(rule) && rule.target.kind === 'verdict');
    });
  }
  // Rule indexes follow b.rule() calls; re-sort the infos to match.
  const program = b.finish({ validate: opts.validate !== false && classifiers === 0 });
  if (classifiers > 0) {
    // the classifiers' jump targets are code offsets, known once finish() laid the code out
    linkClassify(program);
    if (opts.validate !== false) validate(program);
  }
  return { program, rules: orderByIndex(rules, program), chainNames };
}

/** The builder numbers rules in b.rule() order, which is the order they were pushed. */
function orderByIndex(rules: RuleInfos, program: Program): RuleInfos {
  if (rules.length !== program.nrules) throw new Error('compile: rule bookkeeping out of step');
  return rules;
}

const zero = (a: Uint8Array | undefined): boolean => a === undefined || a.every((x) => x === 0);

/** No IP part and no match (ipt_entry's unconditional()). */
export function unconditional(r: Rule): boolean {
  // the matches and scalars first: an address's bytes may be made when asked for (a Uint8Array per call)
  return (
    r.matches.length === 0 && r.iif === '' && r.oif === '' && !r.invIif && !r.invOif && r.proto === 0 && !r.invProto &&
    !r.frag && !r.invFrag && !r.invSrc && !r.invDst &&
    zero(r.src?.mask) && zero(r.src?.addr) && zero(r.dst?.mask) && zero(r.dst?.addr)
  );
}
