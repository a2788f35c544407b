/**
 * The iptables-restore file parser: `iptables-save` / `ip6tables-save`
 * text (and anything iptables-restore accepts) into a `Ruleset`.
 *
 * It follows the line loop of iptables' legacy `iptables-restore.c`
 * (1.8.x): `#` comment lines, `*table` opens a table (flushing what an
 * earlier block of the same table held), `:CHAIN POLICY [p:b]` declares a
 * chain, `COMMIT` (exactly) closes the table, every other line in a table is
 * an iptables command (`-A`, `-I`, `-D`, `-R`, `-N`, `-X`, `-F`, `-P`, `-E`,
 * `-Z`) optionally prefixed by `[packets:bytes]`. Commands are applied in
 * order, as libiptc applies them to its in-memory table, and the kernel's
 * checks run when the table is committed (see ../check.ts).
 */
import type { Backend } from '../../core/netfilter.js';
import { NfvmError, type SourcePos } from '../../core/errors.js';
import {
  TABLE_CHAINS,
  TABLE_NAMES,
  type Chain,
  type Counters,
  type Family,
  type Rule,
  type Ruleset,
  type Table,
  type TableName,
} from '../../core/ast.js';
import { flat, releaseReusedArgs, splitArgsReused } from './argv.js';
import { parseCommand, type Command, type RuleParseEnv } from './rule.js';
import { XT_EXTENSION_MAXNAMELEN } from './base.js';
import { findTarget } from '../../ext/registry.js';
import { checkTable } from '../check.js';
import type { KnownObjects } from '../../ext/types.js';
import { saveRule } from '../save.js';
import { ZERO_COUNTERS } from './nodes.js';
import { heapCheck } from '../../core/heap.js';

export interface ParseOptions {
  family?: Family;
  /** The file name used in error messages. */
  file?: string;
  /**
   * `iptables-restore -c`: counters on chain lines must be well formed
   * (without it iptables-restore does not read them). Counters are kept in
   * the AST either way.
   */
  counters?: boolean;
  /** Run the kernel's load-time checks at each COMMIT (default true). */
  check?: boolean;
  /** The ipsets and nfacct objects that exist (default: not modelled, any name is accepted). */
  objects?: KnownObjects;
  /** The backend the checks are the kernel's for (default legacy: every xt checkentry). */
  backend?: Backend;
  /**
   * The tables the kernel holds before this input (iptables-restore reads
   * each table it names from the kernel): a table the input does not name
   * stays as the base has it. The base itself is not changed; its chains
   * and rules are shared where the input leaves them alone.
   */
  base?: Ruleset;
  /**
   * iptables-restore --noflush: a table block goes on from the table as it
   * stands (the base's, or an earlier block's), and a chain line naming one
   * of its user chains flushes that chain. Without it a block starts from the
   * table flushed: no rule, no user chain, the builtin chains' policies
   * kept (iptables-restore.c). Either way the rules a block leaves alone keep
   * their counters (libiptc's counter map), its new rules count from 0 (or
   * the -c values), and, with the legacy backend, a block that changed
   * anything zeroes the policy counters it did not set (libiptc reads them
   * as COUNTER_MAP_ZEROED); iptables-nft keeps them.
   */
  noflush?: boolean;
}

/** MAX_ARGC of iptables-restore (iptables/xshared.h): the words of one command line, its preamble included. */
const MAX_ARGC = 255;

/** Upper bound on input lines, so a hostile input cannot exhaust memory through the AST. */
const MAX_LINES = 5_000_000;

export function parseRestore(text: string, opts: ParseOptions = {}): Ruleset {
  try {
    return parseText(text, opts);
  } finally {
    releaseReusedArgs();
  }
}

function parseText(text: string, opts: ParseOptions): Ruleset {
  const family = opts.family ?? 'ip';
  const file = opts.file ?? '<input>';
  const countersMode = opts.counters ?? false;
  const doCheck = opts.check ?? true;
  const base = opts.base;
  if (base && base.family !== family) {
    throw new NfvmError('value', `the ruleset the input is applied to is ${base.family === 'ip' ? 'IPv4' : 'IPv6'}, the input ${family === 'ip' ? 'IPv4' : 'IPv6'}`, file, undefined, undefined);
  }
  const noflush = opts.noflush === true;
  const legacy = (opts.backend ?? 'legacy') === 'legacy';
  const rs: Ruleset = {
    family,
    tables: new Map(base?.tables),
    header: base?.header,
    unknownExtensions: base ? [...base.unknownExtensions] : [],
    warnings: [],
  };
  const unknownSeen = new Set<string>(rs.unknownExtensions);
  // the table a --noflush block goes on from (the base's, or an earlier block's): its chains are shared with the
  // open table until one is changed, which copies it first (own())
  let shared: Table | undefined;
  // the open table block as libiptc's handle sees it: whether it changed anything (handle->changed: a block
  // that did not is not committed), the builtin chains whose policy counters it set, the rules it added (their
  // counters set: COUNTER_MAP_SET)
  let changed = false;
  // iptables-nft-restore without --noflush deletes the table: it exists again once a chain line or a command
  // other than a table-wide -Z made something in it (a block that made nothing leaves no table)
  let created = false;
  // the block's table existed before it (an iptables-nft block that makes nothing does not create one)
  let existed = false;
  const setPolicy = new Set<string>();
  // the rules a --noflush block added to the table it goes on from (COUNTER_MAP_SET; the others are the kernel's)
  const added = new Set<Rule>();
  // with a base: the positions of the input's rules (a check failing at COMMIT on a rule of the base is reported there)
  const inputPos = new Set<SourcePos>();
  // one parse environment for every command line: its table and line follow the input
  const env: RuleParseEnv = {
    file,
    family,
    table: 'filter',
    line: 0,
    warn: (p: SourcePos, message: string) => rs.warnings.push({ file, pos: p, message }),
  };
  let table: Table | undefined;
  // the chain (and its table) of the last -A (see applyCommand)
  let lastA: Chain | undefined;
  let lastATable: Table | undefined;
  let lineNo = 0;
  let pos = 0;
  function fail(line: number, col: number, reason: string, token?: string, kind: 'syntax' | 'check' | 'option' = 'syntax'): never {
    throw new NfvmError(kind, reason, file, { line, col }, token);
  }

  while (pos <= text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    if (pos === text.length && nl === pos) break;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    if (lineNo > MAX_LINES) fail(lineNo, 1, `input has more than ${MAX_LINES} lines`);
    heapCheck('parsing the ruleset', file, lineNo);
    if (line.length === 0) continue;
    if (line.endsWith('\r')) {
      fail(lineNo, line.length, 'carriage return at end of line (CRLF line endings are not accepted by iptables-restore)', '\\r');
    }
    if (line.indexOf('\0') >= 0) fail(lineNo, line.indexOf('\0') + 1, 'NUL byte in input', '\\0');
    if (line[0] === '#') {
      if (rs.header === undefined && /^# Generated by /.test(line)) rs.header = line;
      continue;
    }
    if (table && line.startsWith('COMMIT') && line.length === 6) {
      // iptables-restore compares the line with "COMMIT\n": without the newline it is parsed as a command
      if (pos > text.length) fail(lineNo, 1, "COMMIT at the end of the input needs a newline (iptables-restore reads it as a command: Bad argument `COMMIT')", line);
      if (legacy && changed) zeroPolicies(table);
      if (!legacy && !created && (!noflush || !existed)) rs.tables.delete(table.name);
      if (doCheck) checkCommit(table, lineNo);
      table = undefined;
      continue;
    }
    if (line[0] === '*') {
      if (table) fail(lineNo, 1, `COMMIT expected before table "${line.slice(1).trim()}"`, line);
      const m = /^\*([^ \t]*)/.exec(line)!;
      const name = m[1]!;
      if (!name) fail(lineNo, 1, 'table name invalid', line);
      if (!(TABLE_NAMES as readonly string[]).includes(name)) {
        fail(lineNo, 2, `can't initialize ${family === 'ip' ? 'iptables' : 'ip6tables'} table \`${name}': Table does not exist (do you need to insmod?)`, name);
      }
      const tname = name as TableName;
      // the table as the kernel holds it (the base's, or what an earlier block committed): gone on with
      // (--noflush) or flushed (its rules and user chains gone, the builtin chains' policies kept), where it
      // stands among the tables
      const kept = rs.tables.get(tname);
      const at = { line: lineNo, col: 1 };
      // (iptables-nft-restore deletes the table it flushes: the policies start again from ACCEPT)
      table = kept === undefined || (!noflush && !legacy) ? newTable(tname, at) : noflush ? { name: tname, chains: new Map(kept.chains), pos: at } : flushed(kept, at);
      shared = noflush ? kept : undefined;
      rs.tables.set(tname, table);
      changed = !noflush;
      created = false;
      existed = kept !== undefined;
      setPolicy.clear();
      added.clear();
      continue;
    }
    if (!table) {
      // iptables-restore skips only empty lines: blanks are "line N failed" too
      if (/^[ \t]*$/.test(line)) return fail(lineNo, 1, `line ${lineNo} failed: a line of only blanks outside a table (iptables-restore skips only empty lines)`, line);
      return fail(lineNo, 1, 'unexpected input outside a table (expected "*table")', line.slice(0, 40));
    }
    if (line[0] === ':') {
      parseChainLine(table, line, lineNo);
      continue;
    }
    // a rule (command) line
    let rest = line;
    let col = 1;
    let counters: Counters | undefined;
    if (line[0] === '[') {
      // tokenize_rule_counters(): strtok(buffer + 1, ":") then strtok(NULL, "]") over the whole line
      const close = line.indexOf(']');
      if (close < 0) fail(lineNo, 1, `Bad line ${lineNo}: need ]`, line);
      const pc = strtok(line, 1, ':');
      if (!pc) return fail(lineNo, 2, `Bad line ${lineNo}: need :`, line);
      const bc = strtok(line, pc.next, ']');
      if (!bc) return fail(lineNo, 1, `Bad line ${lineNo}: need ]`, line);
      const inner = line.slice(1, close);
      counters = parseCounterPair(pc.token, bc.token);
      if (!counters && countersMode) fail(lineNo, 2, `invalid counters "[${inner}]"`, inner);
      rest = line.slice(close + 1);
      col = close + 2;
    }
    // the arguments are dead once parseCommand() returns (nothing keeps an Arg): their objects are reused
    const args = splitArgsReused(rest, lineNo, file, col);
    // a line of blanks (or only counters) is an empty command to iptables-restore
    if (args.length === 0) fail(lineNo, 1, 'no command specified (a line of only blanks or counters; iptables-restore skips only empty lines)', line);
    env.table = table.name;
    env.line = lineNo;
    // add_argv(): the program name, `-t TABLE` (and `--set-counters P B` with -c) come first; MAX_ARGC is 255
    const preamble = 3 + (counters && countersMode ? 3 : 0);
    if (preamble + args.length >= MAX_ARGC) {
      const over = args[MAX_ARGC - 1 - preamble]!;
      fail(lineNo, over.col, 'Parser cannot handle more arguments', over.text);
    }
    const cmd = parseCommand(args, env, { line: lineNo, col: args[0]!.col });
    if (cmd.cmd === 'none') continue;
    for (const r of cmd.rules) {
      if (base) notePositions(r);
      if (shared) added.add(r);
      // applied to a base, the counters of a rule line count only with -c (iptables-restore passes them as -c)
      if (counters && !r.counters && (countersMode || !base)) r.counters = { ...counters };
      for (const m of r.matches) if (m.unknown && !unknownSeen.has('match ' + m.name)) {
        unknownSeen.add('match ' + m.name);
        rs.unknownExtensions.push('match ' + m.name);
      }
      if (r.target.kind === 'unknown' && !unknownSeen.has('target ' + r.target.name)) {
        unknownSeen.add('target ' + r.target.name);
        rs.unknownExtensions.push('target ' + r.target.name);
      }
    }
    applyCommand(table, cmd, file, family);
  }
  if (table) {
    fail(lineNo + 1, 1, `COMMIT expected at line ${lineNo + 1} (table "${table.name}" is not committed)`, undefined);
  }
  return rs;

  function parseChainLine(t: Table, line: string, ln: number) {
    // the line's blank-separated words after the ':' (at most the three iptables-restore reads), as
    // [start, end) offsets: a kube-proxy dump has tens of thousands of chain lines, so no object per word
    let s0 = -1, e0 = -1, s1 = -1, e1 = -1, s2 = -1, e2 = -1;
    for (let i = 1, n = line.length, k = 0; i < n && k < 3; ) {
      const c = line.charCodeAt(i);
      if (c === 32 || c === 9) {
        i++;
        continue;
      }
      const start = i;
      while (i < n && line.charCodeAt(i) !== 32 && line.charCodeAt(i) !== 9) i++;
      if (k === 0) (s0 = start), (e0 = i);
      else if (k === 1) (s1 = start), (e1 = i);
      else (s2 = start), (e2 = i);
      k++;
    }
    if (s0 < 0) return fail(ln, 2, 'chain name invalid', line);
    const nameText = line.slice(s0, e0);
    if (nameText.length >= XT_EXTENSION_MAXNAMELEN) {
      fail(ln, s0 + 1, `Invalid chain name \`${nameText}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, nameText);
    }
    if (s1 < 0) return fail(ln, line.length + 1, 'policy invalid', undefined);
    const pol = line.slice(s1, e1);
    // zero counters (what iptables-save prints for nearly every chain) are shared: replaced, never changed in place
    let ctrs: Counters = ZERO_COUNTERS;
    if (s2 >= 0 && !(e2 - s2 === 5 && line.startsWith('[0:0]', s2))) {
      const ctext = line.slice(s2, e2);
      const cm = /^\[([^:\]]*):([^\]]*)\]$/.exec(ctext);
      const c = cm ? parseCounterPair(cm[1]!, cm[2]!) : undefined;
      // applied to a base, a policy's counters count only with -c (iptables-restore sets 0 otherwise)
      if (c && (countersMode || !base)) ctrs = c;
      else if (countersMode && pol !== '-') fail(ln, s2 + 1, `invalid policy counters for chain '${nameText}'`, ctext);
    } else if (s2 < 0 && countersMode && pol !== '-') {
      // iptables-restore -c reads counters only after a policy (not after `-`), for any chain
      fail(ln, line.length + 1, `invalid policy counters for chain '${nameText}'`, undefined);
    }
    // the chain's own (flat) name, hashed once for the lookup and the insertion
    const cname = flat(nameText);
    const found = t.chains.get(cname);
    if (found && found.builtin) {
      if (pol !== '-' && pol !== 'ACCEPT' && pol !== 'DROP') {
        fail(ln, s1 + 1, `Can't set policy \`${pol}' on \`${nameText}': Bad policy name`, pol, 'check');
      }
      const existing = own(t, found);
      if (pol !== '-') {
        // TC_SET_POLICY: the policy, its counters set (COUNTER_MAP_SET)
        existing.policy = pol as 'ACCEPT' | 'DROP';
        existing.policyCounters = ctrs;
        setPolicy.add(cname);
        changed = true;
      } else if (!legacy) {
        // iptables-nft-restore sets a builtin chain's counters from its line, policy or not (0 without -c)
        existing.policyCounters = ctrs;
      }
      existing.pos = lineStart(ln);
      created = true;
      return;
    }
    if (found && (noflush || !legacy)) {
      // iptables-restore --noflush (iptables-nft-restore either way): the user chain exists, it is flushed
      if (pol !== '-') fail(ln, s1 + 1, `Can't set policy \`${pol}' on \`${nameText}': Bad built-in chain name`, pol, 'check');
      const existing = own(t, found);
      existing.rules = [];
      existing.pos = lineStart(ln);
      changed = true;
      created = true;
      return;
    }
    if (found) fail(ln, s0 + 1, `error creating chain '${nameText}': File exists`, nameText, 'check');
    checkNewChainName(nameText, ln, s0 + 1);
    if (pol !== '-') {
      fail(ln, s1 + 1, `Can't set policy \`${pol}' on \`${nameText}': Bad built-in chain name`, pol, 'check');
    }
    t.chains.set(cname, { name: cname, builtin: false, policy: undefined, policyCounters: ZERO_COUNTERS, rules: [], pos: lineStart(ln) });
    changed = true;
    created = true;
  }

  /**
   * The open table's own copy of chain `ch`, made on its first change when
   * `ch` is the shared table's (its rules list copied, the rules shared);
   * the chain itself otherwise.
   */
  function own(t: Table, ch: Chain): Chain {
    if (shared === undefined || shared.chains.get(ch.name) !== ch) return ch;
    const copy: Chain = { ...ch, rules: ch.rules.slice() };
    t.chains.set(copy.name, copy);
    if (lastA === ch) lastA = copy;
    return copy;
  }

  /**
   * Table `kept` as iptables-restore without --noflush starts its block:
   * every chain flushed, the user chains deleted; the builtin chains keep
   * their policies (and counters, until the commit).
   */
  function flushed(kept: Table, p: SourcePos): Table {
    const t: Table = { name: kept.name, chains: new Map(), pos: p };
    for (const ch of kept.chains.values()) if (ch.builtin) t.chains.set(ch.name, { ...ch, rules: [] });
    return t;
  }

  /**
   * libiptc's commit of a legacy table that changed: a builtin chain's
   * policy counters were read into COUNTER_MAP_ZEROED (__iptcc_p_del_policy),
   * so after the replacement they count only what passed since the table
   * was read (nothing, for the model), unless the block set them (a policy
   * line: COUNTER_MAP_SET). iptables-nft keeps them.
   */
  function zeroPolicies(t: Table): void {
    for (const ch of [...t.chains.values()]) {
      if (ch.builtin && !setPolicy.has(ch.name) && ch.policyCounters !== ZERO_COUNTERS) own(t, ch).policyCounters = ZERO_COUNTERS;
    }
  }

  /** The positions of an input rule, its matches' and its target's (a failing check names one of them). */
  function notePositions(r: Rule): void {
    inputPos.add(r.pos);
    for (const m of r.matches) inputPos.add(m.pos);
    if (r.target.kind !== 'none') inputPos.add(r.target.pos);
  }

  /**
   * The kernel's checks of the table at COMMIT. Over a base's table a check
   * may fail on one of the base's rules, which the change made wrong (a
   * chain it jumps to now reached from another hook, a loop): the failure is
   * reported at the COMMIT line, where iptables-restore reports it.
   */
  function checkCommit(t: Table, commitLine: number): void {
    try {
      checkTable(rs, t, file, opts.objects, opts.backend);
    } catch (e) {
      if (!base || !(e instanceof NfvmError) || e.pos === undefined || inputPos.has(e.pos)) throw e;
      throw new NfvmError(e.kind, `${e.reason} (a rule the input did not change, at line ${e.pos.line} of what it is applied to; iptables-restore: line ${commitLine} failed)`, file, { line: commitLine, col: 1 }, e.token);
    }
  }

  function checkNewChainName(name: string, ln: number, col: number) {
    if (name === 'ACCEPT' || name === 'DROP' || name === 'QUEUE' || name === 'RETURN') {
      fail(ln, col, `error creating chain '${name}': File exists`, name, 'check');
    }
  }

  function applyCommand(t: Table, c: Command, f: string, fam: Family) {
    changed = true;
    if (c.cmd !== 'Z' || c.chain !== undefined) created = true;
    if (c.cmd === 'A' && c.chain !== undefined) {
      // the common command, without the closures the others share; a dump appends to one chain
      // line after line, so the last -A's chain is tried before the table's map (a string compare, no hashing)
      const found = lastA !== undefined && lastATable === t && lastA.name === c.chain ? lastA : t.chains.get(c.chain);
      if (found) {
        for (const r of c.rules) checkJump(t, r, f, fam);
        // (the last -A's chain is the table's own already)
        const ch = found === lastA ? found : own(t, found);
        appendRules(ch, c.rules);
        lastA = ch;
        lastATable = t;
        return;
      }
    }
    // the other commands may delete or rename chains
    lastA = undefined;
    const cpos = c.chainPos ?? c.pos;
    function bad(reason: string, p: SourcePos = cpos, token = c.chain): never {
      throw new NfvmError('check', reason, f, p, token);
    }
    // the named chain, the table's own (the command changes it)
    const getChain = (): Chain => {
      const ch = c.chain === undefined ? undefined : t.chains.get(c.chain);
      if (!ch) return bad(`chain "${c.chain}" does not exist in table ${t.name}`);
      return own(t, ch);
    };
    const checkTargets = (rules: Rule[]) => {
      for (const r of rules) checkJump(t, r, f, fam);
    };
    switch (c.cmd) {
      case 'A': {
        const ch = getChain();
        checkTargets(c.rules);
        ch.rules.push(...c.rules);
        return;
      }
      case 'I': {
        const ch = getChain();
        checkTargets(c.rules);
        const n = c.rulenum ?? 1;
        if (n > ch.rules.length + 1) bad(`Index of insertion too big (chain ${ch.name} has ${ch.rules.length} rules)`);
        ch.rules.splice(n - 1, 0, ...c.rules);
        return;
      }
      case 'R': {
        const ch = getChain();
        checkTargets(c.rules);
        if (c.rules.length !== 1) bad('-R requires a single source and destination');
        const n = c.rulenum!;
        if (n > ch.rules.length) bad(`Index of replacement too big (chain ${ch.name} has ${ch.rules.length} rules)`);
        ch.rules[n - 1] = c.rules[0]!;
        return;
      }
      case 'D': {
        const ch = getChain();
        if (c.rulenum !== undefined) {
          if (c.rulenum > ch.rules.length) bad(`Index of deletion too big (chain ${ch.name} has ${ch.rules.length} rules)`);
          ch.rules.splice(c.rulenum - 1, 1);
          return;
        }
        for (const r of c.rules) {
          const want = saveRule(fam, ch.name, r, false);
          const idx = ch.rules.findIndex((x) => saveRule(fam, ch.name, x, false) === want);
          if (idx < 0) bad('Bad rule (does a matching rule exist in that chain?)', c.pos, undefined);
          ch.rules.splice(idx, 1);
        }
        return;
      }
      case 'N': {
        const name = flat(c.chain!);
        // the name itself was checked by the parser (assert_valid_chain_name)
        if (t.chains.has(name)) bad(`Chain already exists`);
        t.chains.set(name, { name, builtin: false, policy: undefined, policyCounters: ZERO_COUNTERS, rules: [], pos: c.pos });
        return;
      }
      case 'X': {
        const victims = c.chain === undefined ? [...t.chains.values()].filter((x) => !x.builtin) : [getChain()];
        if (c.chain === undefined) lastA = undefined;
        for (const v of victims) {
          if (v.builtin) bad(`Can't delete built-in chain ${v.name}`);
          if (c.chain !== undefined && v.rules.length) bad(`chain ${v.name} is not empty`);
        }
        const dying = new Set(victims.map((v) => v.name));
        for (const ch of t.chains.values()) {
          if (dying.has(ch.name)) continue;
          for (const r of ch.rules) {
            if ((r.target.kind === 'jump' || r.target.kind === 'goto') && dying.has(r.target.chain)) {
              bad(`chain ${r.target.chain} is still referenced (from ${ch.name})`);
            }
          }
        }
        for (const v of victims) t.chains.delete(v.name);
        return;
      }
      case 'F': {
        if (c.chain === undefined) for (const ch of [...t.chains.values()]) own(t, ch).rules = [];
        else getChain().rules = [];
        return;
      }
      case 'Z': {
        const chs = c.chain === undefined ? [...t.chains.values()].map((x) => own(t, x)) : [getChain()];
        // TC_ZERO_ENTRIES / TC_ZERO_COUNTER: what the kernel counted is zeroed (COUNTER_MAP_ZEROED); counters
        // this block set stay (COUNTER_MAP_SET: every rule of a block that does not go on from a table, the ones
        // it added otherwise). A zeroed rule is a copy (rules are shared with the base). (iptables-nft zeroes them all)
        const zero = (r: Rule): Rule => (r.counters && (!legacy || (shared !== undefined && !added.has(r))) ? withRule(r, { counters: undefined }) : r);
        for (const ch of chs) {
          if (c.rulenum !== undefined) {
            const r = ch.rules[c.rulenum - 1];
            if (!r) bad('Index of zero too big');
            ch.rules[c.rulenum - 1] = zero(r);
            continue;
          }
          if (!legacy || !setPolicy.has(ch.name)) ch.policyCounters = ZERO_COUNTERS;
          ch.rules = ch.rules.map(zero);
        }
        return;
      }
      case 'P': {
        const ch = getChain();
        if (!ch.builtin) bad(`Can't set policy \`${c.policy}' on \`${ch.name}': Bad built-in chain name`);
        if (c.policy !== 'ACCEPT' && c.policy !== 'DROP') bad(`Can't set policy \`${c.policy}' on \`${ch.name}': Bad policy name`);
        // TC_SET_POLICY without counters: COUNTER_MAP_NOMAP, they start from 0 (iptables-nft zeroes them too)
        ch.policy = c.policy as 'ACCEPT' | 'DROP';
        ch.policyCounters = ZERO_COUNTERS;
        setPolicy.add(ch.name);
        return;
      }
      case 'E': {
        const ch = getChain();
        const nn = flat(c.newName!);
        if (ch.builtin) bad(`Can't rename built-in chain ${ch.name}`);
        if (nn.length >= XT_EXTENSION_MAXNAMELEN) bad(`Invalid chain name \`${nn}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`);
        if (t.chains.has(nn)) bad('File exists');
        if (findTarget(nn, fam)) bad('chain name may not clash with target name');
        const entries = [...t.chains.entries()].map(([k, v]) => (k === ch.name ? ([nn, v] as const) : ([k, v] as const)));
        ch.name = nn;
        t.chains = new Map(entries);
        const renamed = (r: Rule): boolean => (r.target.kind === 'jump' || r.target.kind === 'goto') && r.target.chain === c.chain;
        for (const found of [...t.chains.values()]) {
          if (!found.rules.some(renamed)) continue;
          const x = own(t, found);
          x.rules = x.rules.map((r) => {
            const tg = r.target;
            if ((tg.kind !== 'jump' && tg.kind !== 'goto') || tg.chain !== c.chain) return r;
            // the same rule to libiptc, its counters' map kept
            const copy = withRule(r, { target: { kind: tg.kind, chain: nn, pos: tg.pos } });
            if (added.has(r)) added.add(copy);
            return copy;
          });
        }
        return;
      }
    }
  }
}

/**
 * Appends a command's rules to a chain. Up to SMALL_CHAIN rules a chain's
 * list is made anew at its exact size: a push gives an array room for 16
 * more elements, and most chains of a kube-proxy dump (tens of thousands)
 * hold two or three rules.
 */
function appendRules(ch: Chain, rules: readonly Rule[]): void {
  const have = ch.rules;
  if (rules.length === 1 && have.length < SMALL_CHAIN) {
    const r = rules[0]!;
    switch (have.length) {
      case 0: ch.rules = [r]; return;
      case 1: ch.rules = [have[0]!, r]; return;
      case 2: ch.rules = [have[0]!, have[1]!, r]; return;
      default: ch.rules = [have[0]!, have[1]!, have[2]!, r]; return;
    }
  }
  for (const r of rules) have.push(r);
}

/** Chains up to this many rules get exact-size lists (appendRules). */
const SMALL_CHAIN = 4;

/** A copy of rule `r` (its class kept: RuleNode's flags and positions) with `change` made. */
function withRule(r: Rule, change: Partial<Pick<Rule, 'counters' | 'target'>>): Rule {
  return Object.assign(Object.create(Object.getPrototypeOf(r) as object) as Rule, r, change);
}

/** The position of a line's first column. */
function lineStart(line: number): SourcePos {
  return { line, col: 1 };
}

/**
 * A `-j CHAIN`/`-g CHAIN` rule entering the table: the chain must exist and
 * be a user chain; the target then names the chain's own (flat) string.
 */
function checkJump(t: Table, r: Rule, f: string, fam: Family): void {
  const tg = r.target;
  if (tg.kind !== 'jump' && tg.kind !== 'goto') return;
  const dest = t.chains.get(tg.chain);
  if (dest === undefined) {
    if (tg.kind === 'goto') throw new NfvmError('check', `goto '${tg.chain}' is not a chain`, f, tg.pos, tg.chain);
    const hint = findTarget(tg.chain, fam === 'ip' ? 'ip6' : 'ip') ? ` (target ${tg.chain} exists only for ${fam === 'ip' ? 'IPv6' : 'IPv4'})` : '';
    // xtables_find_target(XTF_LOAD_MUST_SUCCEED)'s words, then what nfvm knows of the name
    throw new NfvmError('check', `Couldn't load target \`${tg.chain}':No such file or directory (no chain ${tg.chain} in table ${t.name} and no target of that name${hint})`, f, tg.pos, tg.chain);
  }
  if (dest.builtin) throw new NfvmError('check', `cannot jump to builtin chain ${tg.chain}`, f, tg.pos, tg.chain);
  // the chain's own (flat) name: later stages look the target up several times per rule
  tg.chain = dest.name;
}

function newTable(name: TableName, pos: SourcePos): Table {
  const chains = new Map<string, Chain>();
  for (const c of TABLE_CHAINS[name]) {
    chains.set(c, { name: c, builtin: true, policy: 'ACCEPT', policyCounters: ZERO_COUNTERS, rules: [], pos: undefined });
  }
  return { name, chains, pos };
}

/** strtok(): the token of `s` from `at` after skipping `delim`s, up to the next `delim` (undefined when none is left). */
function strtok(s: string, at: number, delim: string): { token: string; next: number } | undefined {
  while (at < s.length && s[at] === delim) at++;
  if (at >= s.length) return undefined;
  const end = s.indexOf(delim, at);
  return end < 0 ? { token: s.slice(at), next: s.length } : { token: s.slice(at, end), next: end + 1 };
}

/** `[p:b]` counter values as `sscanf("%llu")` reads them. */
function parseCounterPair(p: string, b: string): Counters | undefined {
  if (!/^[0-9]+$/.test(p) || !/^[0-9]+$/.test(b)) return undefined;
  const pv = BigInt(p);
  const bv = BigInt(b);
  if (pv > 0xffffffffffffffffn || bv > 0xffffffffffffffffn) return undefined;
  return { packets: pv, bytes: bv };
}
