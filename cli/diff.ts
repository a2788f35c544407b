/**
 * `nfvm diff OLD NEW [--snapshot DIR]`: the packets two rulesets of one family treat
 * differently on one node (cli/diff-run.ts searches them), each printed
 * as a packet spec with both traces side by side. Exit 1 when differences
 * were found, 0 when none were (within the space searched, which it
 * states), 2 on bad input.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NfvmError } from '../core/errors.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { backendOf, buildNode } from '../hooks/snapshot/read.js';
import { buildNodeModel, type NodeModel } from '../hooks/node.js';
import { fateText, type PathResult } from '../hooks/path/fate.js';
import { genericNodeOf } from '../fuzz/node.js';
import { parseDelta } from '../fuzz/delta.js';
import { ipsetNames } from '../compiler/ipset.js';
import type { Family, Ruleset } from '../core/ast.js';
import { parseBackend, parseCommand, parseFamily, UsageError, type CommandSpec } from './args.js';
import { inputName, readInput } from './io.js';
import { jsonDoc } from './json.js';
import { applyChanges, countOption, familyOfText, isDir, loadModel, modelInputs, modelOptions } from './model.js';
import { equivalentByConstruction, searchDifferences, type DiffResult, type SideRun } from './diff-run.js';
import { chainTexts } from '../fuzz/aim.js';

export const DIFF: CommandSpec = {
  name: 'diff',
  usage: `  nfvm diff OLD NEW [--snapshot DIR] [--family ip|ip6] [--packets N] [--seed N] [--max N] [--backend legacy|nft] [--optimize=0|1] [--json]
  nfvm diff OLD --apply CHANGE... [--noflush] [options as above]
      Find the packets whose fate differs between two IPv4 or two IPv6
      rulesets on the same node: the verdict (or the rule or policy that decided), the NAT
      rewrites, the mark, the output interface, the rules whose counters
      the packet touches. OLD and NEW are iptables-save files or snapshot
      directories (their iptables-save.txt, or ip6tables-save.txt with
      --family ip6 or when it is the only one); a file's family is its
      header's (ip6tables-save) or, without one, IPv6 when its rules name
      IPv6 addresses. The node is --snapshot DIR, else OLD when it is a
      directory, else a generic node (the interfaces the rulesets name,
      10.255.N.1/24 and fd00:255:N::1/64 on each, the host addresses of
      the chains only INPUT reaches, forwarding on, default routes).
      Searched: packets aimed at every rule that differs (through the jumps
      that reach its chain, at each edge of its addresses, ports and marks
      and just past it, with the protocols, ports, sources and states the
      rules on the way leave open), each new TCP/UDP one with its reply
      (state), repeated where a rate or count match is on the way, then --packets N (default
      2000) from both rulesets' constants and at random (--seed, default 1);
      random decisions (statistic) are enumerated. Each difference is printed
      as a packet spec (nfvm trace --packet takes it) with both traces side
      by side, those of the fate before those of the counters alone; at
      most --max (default 10). Equivalent rulesets by
      construction (the same canonical text, or rules reordered where the
      order cannot matter) are said so at once. Exit 1 when differences were
      found, 0 when none (nothing is claimed beyond the space searched).
      With --apply CHANGE (repeatable) NEW is OLD with each CHANGE applied
      as \`iptables-restore [--noflush]\` applies it (nfvm save --apply):
      what a change about to be made (a kube-proxy or Docker sync, a script)
      will do to the node's packets.
`,
  options: {
    snapshot: { type: 'string' },
    packets: { type: 'string' },
    seed: { type: 'string' },
    max: { type: 'string' },
    backend: { type: 'string' },
    optimize: { type: 'string' },
    family: { type: 'string' },
    json: { type: 'boolean' },
    apply: { type: 'string', multi: true },
    noflush: { type: 'boolean' },
  },
};

/** The file of a family's rules in a snapshot directory. */
const RULES_FILE: Readonly<Record<Family, string>> = { ip: 'iptables-save.txt', ip6: 'ip6tables-save.txt' };

/** The ruleset text of OLD or NEW in `family`: a file, or a snapshot directory's iptables-save.txt / ip6tables-save.txt. */
function rulesText(p: string, family: Family, text?: string): { file: string; text: string } {
  if (isDir(p)) return { file: join(p, RULES_FILE[family]), text: readInput(join(p, RULES_FILE[family])) };
  return { file: inputName(p), text: text ?? readInput(p) };
}

/** The family compared: --family, else OLD's (a file's text; a directory: IPv4 when it has iptables-save.txt). */
function familyOf(oldPath: string, opt: string | undefined, oldText: () => string): Family {
  if (opt !== undefined) return parseFamily(opt);
  if (isDir(oldPath)) return existsSync(join(oldPath, RULES_FILE.ip)) || !existsSync(join(oldPath, RULES_FILE.ip6)) ? 'ip' : 'ip6';
  return familyOfText(oldText());
}

const trunc = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A side's trace lines: each TRACE step with its rule, the notes, the fate (every packet of the unit). */
function sideLines(s: SideRun, specs: readonly string[]): string[] {
  const out: string[] = [];
  s.results.forEach((r: PathResult, i) => {
    if (specs.length > 1) out.push(`[${i + 1}] ${specs[i]}`);
    for (const st of r.steps) {
      if (st.kind === 'trace') out.push(`${st.table}:${st.chain}:${st.type}:${st.num} ${st.rule}`);
      else if (st.kind === 'nat' || st.kind === 'route') out.push(`# ${st.text}`);
    }
    out.push(`=> ${fateText(r.fate)}${s.marks[i] ? ` (mark 0x${s.marks[i].toString(16)})` : ''}`);
  });
  return out;
}

function sideBySide(left: string[], right: string[], width: number): string[] {
  const w = Math.min(width, Math.max(10, ...left.map((l) => l.length)));
  const out: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) out.push(`  ${trunc(left[i] ?? '', w).padEnd(w)} | ${right[i] ?? ''}`);
  return out;
}

/** Outcome i of a side's `s.length` (none past the side's last: the other side has more outcomes). */
function probabilityNote(s: readonly SideRun[], i: number): string {
  const run = s[i];
  return s.length > 1 && run !== undefined ? ` (outcome ${i + 1} of ${s.length}, probability ${run.probability.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')})` : '';
}

function formatText(r: DiffResult, oldName: string, newName: string, node: string): string {
  const out: string[] = [`# nfvm diff: ${oldName} (OLD) against ${newName} (NEW) on ${node}`];
  r.differences.forEach((d, n) => {
    out.push('', `difference ${n + 1}: ${d.packets.map((p) => `--packet "${p}"`).join(' ')}`, `  differs in: ${d.differs.join(', ')}`);
    const k = Math.max(d.old.length, d.new.length);
    for (let i = 0; i < k; i++) {
      // outcomes both sides share (same aspects, same probability) are left out
      const o = d.old[i];
      const n2 = d.new[i];
      if (o && n2 && Math.abs(o.probability - n2.probability) < 1e-9 && JSON.stringify(o.aspects) === JSON.stringify(n2.aspects)) continue;
      const l = d.old[i] ? sideLines(d.old[i]!, d.packets) : ['(no such outcome)'];
      const rr = d.new[i] ? sideLines(d.new[i]!, d.packets) : ['(no such outcome)'];
      out.push(...sideBySide([`OLD${probabilityNote(d.old, i)}`, ...l], [`NEW${probabilityNote(d.new, i)}`, ...rr], 100));
    }
  });
  out.push('', searchedText(r), r.differences.length ? `${r.differences.length} difference${r.differences.length === 1 ? '' : 's'} found` : 'no difference found in the space searched (not a proof of equivalence beyond it)');
  return out.join('\n') + '\n';
}

function searchedText(r: DiffResult): string {
  const s = r.searched;
  return `searched: ${s.directed} packet runs aimed at the ${s.changedRules} rule${s.changedRules === 1 ? '' : 's'} that differ (each alone and two of one chain at once, and the edges of their addresses, ports and marks), ${s.drawn} drawn from both rulesets' constants (${s.constants}) and at random; ${s.flows} of them a packet and its reply; random decisions enumerated${s.alike ? `; ${s.alike} more packet${s.alike === 1 ? '' : 's'} differed as one reported does (the same fates and rules on each side)` : ''}`;
}

function sideJson(s: readonly SideRun[]) {
  return s.map((o) => ({
    probability: o.probability,
    packets: o.results.map((r, i) => ({ fate: r.fate, text: fateText(r.fate), mark: o.marks[i], steps: r.steps })),
  }));
}

export function cmdDiff(argv: readonly string[]): { out: string; code: number } {
  const a = parseCommand(DIFF, argv);
  if (a.help) return { out: DIFF.usage, code: 0 };
  const changes = a.all('apply');
  if (a.flag('noflush') && !changes.length) throw new UsageError('diff: --noflush says how --apply CHANGE applies: give one');
  if (changes.length && a.positionals.length !== 1) throw new UsageError('diff --apply takes OLD alone (NEW is OLD with each CHANGE applied)');
  if (!changes.length && a.positionals.length !== 2) throw new UsageError('diff takes OLD and NEW (iptables-save files or snapshot directories)');
  const [oldPath, newPath = ''] = a.positionals as [string, string?];
  const packets = countOption(a.str('packets'), 'packets', 2000, 10_000_000);
  const seed = countOption(a.str('seed'), 'seed', 1, 0xffffffff);
  const max = countOption(a.str('max'), 'max', 10, 100000);
  const json = a.flag('json');
  let oldText: string | undefined;
  const family = familyOf(oldPath, a.str('family'), () => (oldText = readInput(oldPath)));
  const file = RULES_FILE[family];
  const oldR = rulesText(oldPath, family, oldText);
  // with --apply NEW is OLD changed, as iptables-save text under OLD's header (which names the backend)
  const newR = changes.length
    ? { file: `${oldR.file} + ${changes.map(inputName).join(' + ')}`, text: applyChanges(oldR, changes.map((c) => ({ file: inputName(c), text: readInput(c) })), family, parseBackend(a.str('backend')), a.flag('noflush')) }
    : rulesText(newPath, family);
  if (!changes.length && !isDir(newPath) && familyOfText(newR.text) !== family) {
    throw new UsageError(`OLD is an ${family === 'ip' ? 'IPv4' : 'IPv6'} ruleset and NEW an ${family === 'ip' ? 'IPv6' : 'IPv4'} one (--family says which to compare)`);
  }
  const rsOf = (m: NodeModel) => (family === 'ip6' ? m.rs6 : m.rs4);
  const cpu0 = process.cpuUsage();
  const snap = a.str('snapshot') ?? (isDir(oldPath) ? oldPath : undefined);
  if (snap !== undefined && !isDir(snap)) throw new NfvmError('io', 'not a snapshot directory', snap, undefined, undefined);
  let mOld: NodeModel;
  let mNew: NodeModel;
  let node: string;
  // a ruleset's errors name its own file (the model reads it as the snapshot's iptables-save.txt)
  const located = (r: { file: string; text: string }, load: () => NodeModel) => {
    try {
      return load();
    } catch (e) {
      if (e instanceof NfvmError) parseRestore(r.text, { file: r.file, family });
      throw e;
    }
  };
  // NEW shares OLD's parsed chains where their lines are the same (fuzz/delta.ts)
  const deltaOf = (m: NodeModel) => {
    const rs = rsOf(m);
    const d = rs && parseDelta(rs, oldR.text, newR.text, { file: newR.file, objects: { ipsets: ipsetNames(m.ipsets) }, backend: family === 'ip6' ? m.backend6 : m.backend });
    return d ? (family === 'ip6' ? { rs4: m.rs4, rs6: d.rs } : { rs4: d.rs, rs6: m.rs6 }) : undefined;
  };
  if (snap !== undefined) {
    // the sets read once for both; --apply made NEW already, so the models take no change of their own
    const inputs = { ipsets: modelInputs(a).ipsets };
    mOld = located(oldR, () => loadModel(snap, a, inputs, new Map([[file, oldR.text]])));
    mNew = located(newR, () => loadModel(snap, a, inputs, new Map([[file, newR.text]]), deltaOf(mOld)));
    node = `the node of ${snap}`;
  } else {
    // the backend the model takes (the option, else the header's), for the checks
    const backendOpt = modelOptions(a).backend;
    const backend = (t: string) => backendOpt ?? backendOf(t) ?? 'legacy';
    const rsOld = parseRestore(oldR.text, { file: oldR.file, family, backend: backend(oldR.text) });
    const delta = backend(oldR.text) === backend(newR.text) ? parseDelta(rsOld, oldR.text, newR.text, { file: newR.file, backend: backend(newR.text) }) : undefined;
    const rsNew = delta?.rs ?? parseRestore(newR.text, { file: newR.file, family, backend: backend(newR.text) });
    const g = genericNodeOf([rsOld, rsNew]);
    const model = (rules: string, rs: Ruleset) => buildNodeModel(buildNode('', new Map([...g.files, [file, rules]])), { ...modelOptions(a), engine: 'vm', parsed: family === 'ip6' ? { rs6: rs } : { rs4: rs } });
    mOld = model(oldR.text, rsOld);
    mNew = model(newR.text, rsNew);
    node = `a generic node (lo, ${g.ifaces.join(', ')}: 10.255.N.1/24 and fd00:255:N::1/64 each, default routes by ${g.ifaces[0]}, forwarding on)`;
  }
  const loadCpu = process.cpuUsage(cpu0);
  const loadS = (loadCpu.user + loadCpu.system) / 1e6;
  const ta = chainTexts(rsOf(mOld));
  const tb = chainTexts(rsOf(mNew), { rs: rsOf(mOld), texts: ta });
  const same = equivalentByConstruction(rsOf(mOld), rsOf(mNew), ta, tb);
  if (same !== undefined) {
    const text = `equivalent by construction: ${same}`;
    return { out: json ? jsonDoc({ schema: 1, old: oldR.file, new: newR.file, node, equivalent: same, differences: [], text }) : `# nfvm diff: ${oldR.file} (OLD) against ${newR.file} (NEW)\n${text}\n`, code: 0 };
  }
  const tty = process.stderr.isTTY === true && !json;
  const t0 = process.hrtime.bigint();
  const cpu1 = process.cpuUsage();
  const r = searchDifferences(mOld, mNew, {
    packets, seed, maxDifferences: max, family,
    progress: tty ? (done, total, found) => process.stderr.write(`\rnfvm diff: ${done}/${total} packet runs, ${found} difference${found === 1 ? '' : 's'}\x1b[K`) : undefined,
  }, ta, tb);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const searchCpu = process.cpuUsage(cpu1);
  const searchS = (searchCpu.user + searchCpu.system) / 1e6;
  const runs = r.searched.directed + r.searched.drawn;
  const summary = `nfvm diff: ${runs} packet runs in ${searchS.toFixed(2)} s CPU (${Math.round(runs / Math.max(searchS, 1e-9))}/s; loading both models ${loadS.toFixed(2)} s CPU), ${r.differences.length} difference${r.differences.length === 1 ? '' : 's'}`;
  if (tty) process.stderr.write(`\r${summary}\x1b[K\n`);
  const code = r.differences.length ? 1 : 0;
  if (json) {
    return {
      code,
      out: jsonDoc({
        schema: 1, old: oldR.file, new: newR.file, node, searched: { ...r.searched, text: searchedText(r), seconds: secs, cpuSeconds: searchS, loadCpuSeconds: loadS },
        differences: r.differences.map((d) => ({ packets: d.packets, differs: d.differs, old: sideJson(d.old), new: sideJson(d.new) })),
      }),
    };
  }
  return { code, out: formatText(r, oldR.file, newR.file, node) };
}
