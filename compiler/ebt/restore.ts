/**
 * ebtables-save text (and what ebtables-restore takes) into an
 * `EbtRuleset`, and lists of `ebtables` commands applied in order.
 *
 * The restore format (ebtables-nft 1.8.x, iptables/xtables-restore.c in
 * bridge mode): `#` comments, `*TABLE` selects a table (filter, nat,
 * broute: created with its builtin chains on first use), `:CHAIN POLICY`
 * sets a builtin chain's policy or creates a user chain with its own
 * policy, `COMMIT` is optional (a new `*` line ends the table), every other
 * line is an ebtables command without `-t`, optionally after
 * `[packets:bytes]`. Commands apply as the kernel would hold the result:
 * a jump to a chain that does not exist, a builtin chain with policy
 * RETURN, a chain deleted while referenced are refused with the line and
 * column.
 */
import { NfvmError, type SourcePos } from '../../core/errors.js';
import {
  EBT_TABLE_CHAINS, EBT_TABLE_NAMES, type EbtChain, type EbtRuleset, type EbtTable, type EbtTableName,
} from '../../core/ebt-ast.js';
import type { Counters } from '../../core/ast.js';
import { findEbtTarget } from '../../ext/ebt/registry.js';
import { EBT_VERDICTS } from '../../ext/ebt/values.js';
import { splitArgs, type Arg } from '../parse/argv.js';
import { parseEbtCommand, type EbtCommand, type EbtParseEnv } from './rule.js';
import { heapCheck } from '../../core/heap.js';

export interface EbtParseOptions {
  /** The file name in error messages. */
  file?: string;
  /** Reads the file an option names (`--among-src-file`); without it such options are refused. */
  readFile?: (path: string) => string;
}

/** Upper bound on input lines (the AST of a hostile input stays bounded). */
const MAX_LINES = 5_000_000;
/** MAX_ARGC of the restore line splitter. */
const MAX_ARGC = 255;

export function emptyEbtRuleset(): EbtRuleset {
  return { family: 'bridge', tables: new Map() };
}

function newChain(name: string, builtin: boolean, pos: SourcePos | undefined): EbtChain {
  return { name, builtin, policy: 'ACCEPT', policyCounters: { packets: 0n, bytes: 0n }, rules: [], pos };
}

/** The table, created with its builtin chains (policy ACCEPT) on first use, as the kernel module registers it. */
export function ebtTable(rs: EbtRuleset, name: EbtTableName, pos?: SourcePos): EbtTable {
  let t = rs.tables.get(name);
  if (!t) {
    t = { name, chains: new Map(), pos };
    for (const c of EBT_TABLE_CHAINS[name]) t.chains.set(c, newChain(c, true, undefined));
    rs.tables.set(name, t);
  }
  return t;
}

class Applier {
  constructor(
    readonly rs: EbtRuleset,
    readonly file: string,
  ) {}

  err(pos: SourcePos | undefined, reason: string, token?: string): never {
    throw new NfvmError('check', reason, this.file, pos, token);
  }

  chain(t: EbtTable, name: string | undefined, pos: SourcePos): EbtChain {
    const c = name === undefined ? undefined : t.chains.get(name);
    if (!c) this.err(pos, `Chain '${name}' does not exist`, name);
    return c;
  }

  /** Applies one parsed command to the ruleset. */
  apply(c: EbtCommand, defaultTable: EbtTableName): void {
    const t = ebtTable(this.rs, c.table ?? defaultTable, c.pos);
    switch (c.cmd) {
      case 'A':
      case 'I': {
        const ch = this.chain(t, c.chain, c.pos);
        const r = c.rule!;
        if (r.target.kind === 'jump') {
          const to = r.target.chain;
          if (!t.chains.has(to) || t.chains.get(to)!.builtin) this.err(r.target.pos, `Chain '${to}' does not exist`, to);
        }
        if (c.cmd === 'A') ch.rules.push(r);
        else {
          const at = (c.num ?? 1) - 1;
          if (at < 0 || at > ch.rules.length) this.err(c.pos, 'Index out of range', String(c.num));
          ch.rules.splice(at, 0, r);
        }
        return;
      }
      case 'D': {
        const ch = this.chain(t, c.chain, c.pos);
        if (c.num !== undefined) {
          if (c.num < 1 || c.num > ch.rules.length) this.err(c.pos, 'Index out of range', String(c.num));
          ch.rules.splice(c.num - 1, 1);
          return;
        }
        const want = ruleKey(c.rule!);
        const at = ch.rules.findIndex((r) => ruleKey(r) === want);
        if (at < 0) this.err(c.pos, 'Illegal target name or rule does not exist');
        ch.rules.splice(at, 1);
        return;
      }
      case 'N': {
        const name = c.chain!;
        if (t.chains.has(name)) this.err(c.pos, `Chain '${name}' already exists`, name);
        checkChainName(this, name, c.pos);
        const ch = newChain(name, false, c.pos);
        if (c.policy) ch.policy = c.policy;
        t.chains.set(name, ch);
        return;
      }
      case 'P': {
        const ch = this.chain(t, c.chain, c.pos);
        if (ch.builtin && c.policy === 'RETURN') this.err(c.pos, 'Policy RETURN only allowed for user defined chains');
        ch.policy = c.policy!;
        return;
      }
      case 'F':
        for (const ch of c.chain === undefined ? t.chains.values() : [this.chain(t, c.chain, c.pos)]) ch.rules = [];
        return;
      case 'Z':
        for (const ch of c.chain === undefined ? t.chains.values() : [this.chain(t, c.chain, c.pos)]) {
          ch.policyCounters = { packets: 0n, bytes: 0n };
          for (const r of ch.rules) if (r.counters) r.counters = { packets: 0n, bytes: 0n };
        }
        return;
      case 'X': {
        const victims = c.chain === undefined ? [...t.chains.values()].filter((x) => !x.builtin) : [this.chain(t, c.chain, c.pos)];
        for (const v of victims) {
          if (v.builtin) this.err(c.pos, `Chain '${v.name}' is a builtin chain`, v.name);
          const names = new Set(victims.map((x) => x.name));
          for (const other of t.chains.values()) {
            if (names.has(other.name)) continue;
            if (other.rules.some((r) => r.target.kind === 'jump' && r.target.chain === v.name)) {
              this.err(c.pos, `Chain '${v.name}' is referenced`, v.name);
            }
          }
        }
        for (const v of victims) t.chains.delete(v.name);
        return;
      }
      case 'E': {
        const ch = this.chain(t, c.chain, c.pos);
        if (ch.builtin) this.err(c.pos, 'Builtin chains can not be renamed');
        const nn = c.newName!;
        if (t.chains.has(nn)) this.err(c.pos, `Chain '${nn}' already exists`, nn);
        checkChainName(this, nn, c.pos);
        const renamed = new Map<string, EbtChain>();
        for (const [k, v] of t.chains) renamed.set(k === ch.name ? nn : k, v);
        for (const v of t.chains.values()) {
          for (const r of v.rules) if (r.target.kind === 'jump' && r.target.chain === ch.name) r.target = { ...r.target, chain: nn };
        }
        ch.name = nn;
        t.chains = renamed;
        return;
      }
    }
  }
}

/** ebtables' chain name rules: not a target or verdict name, no leading `-`, shorter than EBT_CHAIN_MAXNAMELEN. */
function checkChainName(a: Applier, name: string, pos: SourcePos): void {
  if (name.length >= 32) a.err(pos, "Chain name length can't exceed 31", name);
  if (name.startsWith('-')) a.err(pos, `No chain name specified`, name);
  if (EBT_VERDICTS.includes(name as never) || findEbtTarget(name)) a.err(pos, 'Target with name ' + name + ' exists', name);
  if (/\s/.test(name)) a.err(pos, `Use of ' ' not allowed in chain names`, name);
}

/** A rule's identity for `-D rule`: its specification with counters left out. */
function ruleKey(r: EbtCommand['rule'] & object): string {
  return JSON.stringify({ ...r, pos: undefined, counters: undefined, matches: r.matches.map((m) => ({ ...m, pos: undefined, options: undefined })), target: { ...r.target, pos: undefined, options: undefined } }, (_k, v) =>
    v instanceof Uint8Array ? Array.from(v) : typeof v === 'bigint' ? String(v) : v,
  );
}

/** `[packets:bytes]` in front of a command. */
function leadingCounters(text: string): { counters: Counters; rest: number } | undefined {
  const m = /^\[([0-9]+):([0-9]+)\]\s*/.exec(text);
  if (!m) return undefined;
  return { counters: { packets: BigInt(m[1]!), bytes: BigInt(m[2]!) }, rest: m[0].length };
}

/** Parses ebtables-save / ebtables-restore text. */
export function parseEbtRestore(text: string, opts: EbtParseOptions = {}): EbtRuleset {
  const file = opts.file ?? '<input>';
  const rs = emptyEbtRuleset();
  const ap = new Applier(rs, file);
  let table: EbtTableName | undefined;
  const lines = text.split('\n');
  if (lines.length > MAX_LINES) throw new NfvmError('io', `more than ${MAX_LINES} lines`, file, undefined, undefined);
  lines.forEach((raw, idx) => {
    const line = raw.replace(/\r$/, '');
    const lineNo = idx + 1;
    heapCheck('parsing the ebtables ruleset', file, lineNo);
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const col = line.length - line.trimStart().length + 1;
    const pos = { line: lineNo, col };
    if (trimmed.startsWith('*')) {
      const name = trimmed.slice(1).trim();
      if (!EBT_TABLE_NAMES.includes(name as EbtTableName)) throw new NfvmError('syntax', `table '${name}' does not exist`, file, pos, name);
      table = name as EbtTableName;
      ebtTable(rs, table, pos);
      return;
    }
    if (table === undefined) throw new NfvmError('syntax', 'no table specified (a *filter, *nat or *broute line first)', file, pos, trimmed);
    if (trimmed === 'COMMIT') {
      table = undefined;
      return;
    }
    if (trimmed.startsWith(':')) {
      const words = splitArgs(trimmed.slice(1), lineNo, file, col + 1);
      const [name, policy] = words;
      if (!name || !policy || words.length > 2) throw new NfvmError('syntax', 'a chain line is `:CHAIN POLICY`', file, pos, trimmed);
      const t = ebtTable(rs, table, pos);
      const existing = t.chains.get(name.text);
      const p = policy.text;
      if (!(EBT_VERDICTS as readonly string[]).includes(p) || p === 'CONTINUE') {
        throw new NfvmError('value', `Wrong policy '${p}'`, file, { line: lineNo, col: policy.col }, p);
      }
      if (existing?.builtin) {
        if (p === 'RETURN') throw new NfvmError('check', 'Policy RETURN only allowed for user defined chains', file, { line: lineNo, col: policy.col }, p);
        existing.policy = p as 'ACCEPT' | 'DROP';
        return;
      }
      if (existing) throw new NfvmError('check', `Chain '${name.text}' already exists`, file, { line: lineNo, col: name.col }, name.text);
      checkChainName(ap, name.text, { line: lineNo, col: name.col });
      t.chains.set(name.text, { ...newChain(name.text, false, pos), policy: p as 'ACCEPT' | 'DROP' | 'RETURN' });
      return;
    }
    const lc = leadingCounters(trimmed);
    const body = lc ? line.slice(col - 1 + lc.rest) : line;
    const args = splitArgs(body, lineNo, file, lc ? col + lc.rest : 1);
    if (args.length > MAX_ARGC) throw new NfvmError('syntax', 'too many arguments', file, pos, undefined);
    const env: EbtParseEnv = { file, line: lineNo, table, allowTable: false, chainExists: (tb, n) => !!rs.tables.get(tb)?.chains.has(n), readFile: opts.readFile };
    const cmd = parseEbtCommand(args, env, pos);
    if (lc && cmd.rule) cmd.rule.counters = lc.counters;
    ap.apply(cmd, table);
  });
  return rs;
}

/**
 * Applies `ebtables` command lines (`-t nat -A CHAIN ...`, without the
 * program name) to a ruleset, in order. Returns the ruleset.
 */
export function applyEbtCommands(rs: EbtRuleset, lines: readonly { args: Arg[]; line: number }[], opts: EbtParseOptions = {}): EbtRuleset {
  const file = opts.file ?? '<input>';
  const ap = new Applier(rs, file);
  for (const { args, line } of lines) {
    const pos = { line, col: args[0]?.col ?? 1 };
    const env: EbtParseEnv = { file, line, table: undefined, allowTable: true, chainExists: (tb, n) => !!rs.tables.get(tb)?.chains.has(n), readFile: opts.readFile };
    const cmd = parseEbtCommand(args, env, pos);
    ap.apply(cmd, 'filter');
  }
  return rs;
}
