/**
 * Parsing one rule command: the argument vector of an iptables-restore line
 * (`-A INPUT -p tcp --dport 22 -j ACCEPT`) into a command and its rules.
 *
 * This is iptables' `do_parse()` (iptables/xshared.c, 1.8.x) driven by a
 * model of glibc `getopt_long()`:
 *  - short options may be clustered and take their argument attached
 *    (`-ptcp`), long options take `--opt=value` or `--opt value`;
 *  - a long option may be abbreviated to any unique prefix; an exact name
 *    wins; two different options sharing the prefix make it ambiguous;
 *  - options of extensions exist only after `-m NAME`/`-j NAME` loaded them;
 *    the newest loaded extension is searched first (xtables_merge_options
 *    puts new options before old ones);
 *  - an unknown option after `-p tcp|udp|icmp|...` loads the protocol's match
 *    implicitly and is parsed again (command_default → load_proto);
 *  - a lone `!` inverts the next option; iptables 1.8 has no intrapositioned
 *    `--opt ! value` for these extensions (the `!` is taken as the value).
 *
 * This file is the argument loop and the command it returns; getopt.ts
 * holds the option table and the long option lookup, base.ts the base
 * options and commands, extension.ts the loading and options of extensions,
 * state.ts what the parse keeps while it walks the arguments.
 */
import { NfvmError, type SourcePos } from '../../core/errors.js';
import type { Rule, TargetNode } from '../../core/ast.js';
import { ExtTarget, JumpTarget, UnknownTarget, VerdictTarget } from './nodes.js';
import type { Arg } from './argv.js';
import { SHORT_OPTS, lookupLong, unknownOption } from './getopt.js';
import { handleBase, XT_EXTENSION_MAXNAMELEN } from './base.js';
import { applyExtOption, finishExtensions, tryImplicitProto } from './extension.js';
import { CommandParse, type CommandName, type RuleParseEnv } from './state.js';

export type { CommandName, RuleParseEnv } from './state.js';

export interface Command {
  /** 'none': a line of the other family (`-6` in iptables-restore), which iptables-restore ignores. */
  cmd: CommandName | 'none';
  /** The chain the command names (absent for `-F`/`-X`/`-Z` of the whole table). */
  chain: string | undefined;
  /** `-I chain N`, `-R chain N`, `-D chain N` (1-based). */
  rulenum: number | undefined;
  /** `-P chain TARGET` */
  policy: string | undefined;
  /** `-E old new` */
  newName: string | undefined;
  /** The rule(s): more than one when `-s`/`-d` list several addresses. */
  rules: Rule[];
  pos: SourcePos;
  /** Position of the chain name argument. */
  chainPos: SourcePos | undefined;
}

/** getopt's options in do_parse's optflags[] order: generic_opt_check() reports the first illegal one. */
const OPTFLAGS = ['n', 's', 'd', 'p', 'j', 'v', 'x', 'i', 'o', '0', 'c', 'f'] as const;
/** commands_v_options[][]: the options each command refuses ('x'); -A/-I/-R take all but -n, -x, --line-numbers. */
const ILLEGAL: Record<string, string> = {
  A: 'nx0', I: 'nx0', R: 'nx0', D: 'nx0c', DNUM: 'nsdpjxio0cf',
  F: 'nsdpjxio0cf', Z: 'nsdpjxio0cf', N: 'nsdpjxio0cf', X: 'nsdpjxio0cf', E: 'nsdpjxio0cf', P: 'nsdpjxio0f',
};

/**
 * The checks do_parse() makes after its getopt loop, in its order: DROP in
 * nat, the extensions' final checks, arguments after `--`, a missing
 * command, a dangling `!`, -R with several addresses, the options the
 * command does not take (generic_opt_check), the chain name's length, and
 * -o / -i where packets only come in / go out (by chain name).
 */
function afterLoop(cp: CommandParse, ruleStart: SourcePos): void {
  if (cp.env.table === 'nat' && (cp.jumpName === 'DROP' || cp.policy === 'DROP')) {
    cp.err(cp.jumpName === 'DROP' ? cp.jumpArg : cp.policyArg, 'The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.', 'value');
  }
  finishExtensions(cp);
  if (cp.rest) cp.err(cp.rest, 'unknown arguments found on commandline', 'syntax');
  if (cp.cmd === undefined) throw new NfvmError('syntax', 'no command specified', cp.file, ruleStart, undefined);
  if (cp.invert) cp.err(cp.args[cp.args.length - 1], 'nothing appropriate following !');
  if (cp.cmd === 'R' && (cp.srcList.length > 1 || cp.dstList.length > 1)) cp.err(cp.cmdArg, 'Replacement rule does not specify a unique address');
  const illegal = ILLEGAL[cp.cmd === 'D' && cp.rulenum !== undefined ? 'DNUM' : cp.cmd]!;
  for (const o of OPTFLAGS) {
    const seen = o === 'j' ? cp.seenBase.has('j') || cp.seenBase.has('g') : cp.seenBase.has(o);
    if (seen && illegal.includes(o)) cp.err(cp.cmdArg, `Illegal option \`-${o}' with this command`);
  }
  if (cp.chain !== undefined && cp.chain.length >= XT_EXTENSION_MAXNAMELEN) {
    cp.err(cp.chainArg, `chain name \`${cp.chain}' too long (must be under ${XT_EXTENSION_MAXNAMELEN} chars)`, 'value');
  }
  if (cp.cmd === 'A' || cp.cmd === 'I' || cp.cmd === 'R' || cp.cmd === 'D') {
    if ((cp.chain === 'PREROUTING' || cp.chain === 'INPUT') && cp.seenBase.has('o')) cp.err(cp.ifaceArg.o, `Can't use -o with ${cp.chain}`);
    if ((cp.chain === 'POSTROUTING' || cp.chain === 'OUTPUT') && cp.seenBase.has('i')) cp.err(cp.ifaceArg.i, `Can't use -i with ${cp.chain}`);
  }
}

/** The standard verdicts' names as constants (not the input's copies, one per rule). */
const VERDICT_NAMES = { ACCEPT: 'ACCEPT', DROP: 'DROP', QUEUE: 'QUEUE', RETURN: 'RETURN' } as const;

export function parseCommand(args: readonly Arg[], env: RuleParseEnv, ruleStart: SourcePos): Command {
  const cp = new CommandParse(args, env, ruleStart);
  while (cp.i < cp.args.length && !cp.ignored) {
    const a = cp.args[cp.i++]!;
    const t = a.text;
    if (t === '--') {
      // getopt_long stops at `--`; do_parse refuses what is left
      cp.rest = cp.args[cp.i];
      break;
    }
    if (t === '!' ) {
      if (cp.invert) cp.err(a, 'multiple consecutive ! not allowed');
      cp.invert = true;
      continue;
    }
    if (t.startsWith('--') && t.length > 2) {
      const eq = t.indexOf('=');
      const name = eq >= 0 ? t.slice(2, eq) : t.slice(2);
      const attached = eq >= 0 ? t.slice(eq + 1) : undefined;
      let found = lookupLong(cp, name);
      while (!found) {
        // command_default: load the protocol match and parse the option again
        if (tryImplicitProto(cp, name)) {
          found = lookupLong(cp, name);
          continue;
        }
        // an unknown `-m foo` swallows the options nobody else knows
        const unk = cp.loaded.find((l) => l.kind === 'unknown-match') ?? (cp.target?.kind === 'unknown-target' ? cp.target : undefined);
        if (unk) {
          if (cp.invert) unk.raw.push('!');
          unk.raw.push(t);
          if (attached === undefined) while (cp.i < cp.args.length && !cp.args[cp.i]!.text.startsWith('--') && cp.args[cp.i]!.text !== '!' && !/^-[a-zA-Z]$/.test(cp.args[cp.i]!.text)) unk.raw.push(cp.args[cp.i++]!.text);
          cp.invert = false;
          break;
        }
        return unknownOption(cp, a, `--${name}`);
      }
      if (!found) continue;
      const spec = found.base ?? found.spec!;
      let value: string | undefined;
      let valArg: Arg | undefined;
      if (spec.arg === 0) {
        if (attached !== undefined) cp.err(a, `option '--${spec.name}' doesn't allow an argument`);
      } else if (spec.arg === 1) {
        if (attached !== undefined) {
          value = attached;
          valArg = { text: attached, col: a.col + eq + 1, quoted: a.quoted };
        } else {
          // getopt returns ':' and command_default() names the word as written
          if (cp.i >= cp.args.length) cp.err(a, `option "${t}" requires an argument`);
          valArg = cp.args[cp.i++]!;
          value = valArg.text;
        }
      } else {
        value = attached;
      }
      if (found.base) {
        handleBase(cp, found.base.short, value, a, valArg);
      } else {
        applyExtOption(cp, found.ext!, spec, value, a, valArg);
      }
      cp.invert = false;
      continue;
    }
    if (t.startsWith('-') && t.length > 1 && t !== '--') {
      // a cluster of short options
      let k = 1;
      while (k < t.length) {
        const letter = t[k]!;
        const has = SHORT_OPTS[letter];
        if (has === undefined) {
          if (tryImplicitProto(cp)) {
            // getopt would retry the same argument; extensions have no short options, so it is still unknown
          }
          return unknownOption(cp, a, `-${letter}`);
        }
        let value: string | undefined;
        let valArg: Arg | undefined;
        if (has === 0) {
          k++;
        } else if (k + 1 < t.length) {
          value = t.slice(k + 1);
          valArg = { text: value, col: a.col + k + 1, quoted: a.quoted };
          k = t.length;
        } else {
          k = t.length;
          if (has === 1) {
            if (cp.i >= cp.args.length) cp.err(a, `option "-${letter}" requires an argument`);
            valArg = cp.args[cp.i++]!;
            value = valArg.text;
          }
        }
        handleBase(cp, letter, value, a, valArg);
        cp.invert = false;
      }
      continue;
    }
    cp.err(a, `Bad argument \`${t}'`, 'syntax');
  }
  if (cp.ignored) return { cmd: 'none', chain: undefined, rulenum: undefined, policy: undefined, newName: undefined, rules: [], pos: ruleStart, chainPos: undefined };
  afterLoop(cp, ruleStart);

  // the target
  const rule = cp.rule;
  if (cp.jumpName !== undefined) {
    const ja = cp.jumpArg;
    const line = ja ? cp.line : ruleStart.line;
    const col = ja ? ja.col : ruleStart.col;
    if (cp.target && cp.target.kind === 'target') {
      rule.target = new ExtTarget(cp.target.name, cp.target.data, cp.target.options, line, col) as TargetNode;
    } else if (cp.target && cp.target.kind === 'unknown-target') {
      rule.target = new UnknownTarget(cp.target.name, cp.target.raw, line, col) as TargetNode;
    } else if (cp.jumpName === 'ACCEPT' || cp.jumpName === 'DROP' || cp.jumpName === 'QUEUE' || cp.jumpName === 'RETURN') {
      if (cp.isGoto) cp.err(cp.jumpArg, `goto '${cp.jumpName}' is not a chain`, 'value');
      rule.target = new VerdictTarget(VERDICT_NAMES[cp.jumpName], line, col) as TargetNode;
    } else {
      rule.target = new JumpTarget(cp.isGoto ? 'goto' : 'jump', cp.jumpName, line, col) as TargetNode;
    }
  }

  // -s/-d lists expand to the cross product, source-major (xtables' generate_entry loop order)
  let rules: Rule[];
  const ns = cp.srcList.length;
  const nd = cp.dstList.length;
  if (ns <= 1 && nd <= 1) {
    rule.src = cp.srcList[0];
    rule.dst = cp.dstList[0];
    rules = [rule];
  } else {
    rules = [];
    const srcs = ns ? cp.srcList : [undefined];
    const dsts = nd ? cp.dstList : [undefined];
    for (const s of srcs) {
      for (const d of dsts) {
        rules.push(rule.withAddrs(s, d));
      }
    }
  }
  return { cmd: cp.cmd!, chain: cp.chain, rulenum: cp.rulenum, policy: cp.policy, newName: cp.newName, rules, pos: ruleStart, chainPos: cp.chainPos };
}
