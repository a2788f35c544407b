/**
 * `nfvm fuzz SNAPSHOT_OR_RULES`: packets drawn towards the ruleset's own
 * constants run through every engine (fuzz/engines.ts: the x_tables
 * evaluator, the VM's execution tier and interpreter, optimized and
 * straight programs); a divergence is printed as a shrunk packet spec.
 * Then the rules no packet reached, each with the earlier rule that
 * shadows it when the rule model can tell (fuzz/shape.ts), and what the
 * run covered. `--random-rulesets N` fuzzes nfvm on rulesets it generates.
 */
import { join } from 'node:path';
import type { Ruleset, TableName } from '../core/ast.js';
import { TABLE_CHAINS } from '../core/ast.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { parseIpsetSave } from '../compiler/ipset.js';
import type { EngineOptions } from '../engine/engine.js';
import { readSnapshot } from '../hooks/snapshot/read.js';
import { constantsOf, constantsSummary } from '../fuzz/constants.js';
import { fuzzTable, type Divergence, type TablePacket } from '../fuzz/engines.js';
import { drawPacket } from '../fuzz/packet.js';
import { chance, pick, seededRand } from '../fuzz/rand.js';
import { fuzzRandomRulesets } from '../fuzz/random-rulesets.js';
import { shadowOf, shapeOf, shapes, type RuleShape } from '../fuzz/shape.js';
import { aimedPackets, callersOf, chainTexts, pathsTo } from '../fuzz/aim.js';
import { parseBackend, parseCommand, parseFamily, UsageError, type CommandSpec } from './args.js';
import { inputName, readInput } from './io.js';
import { jsonDoc } from './json.js';
import { countOption, familyOfText, isDir } from './model.js';
import { formatAddr } from '../hooks/route/addr.js';

export const FUZZ: CommandSpec = {
  name: 'fuzz',
  usage: `  nfvm fuzz SNAPSHOT_OR_RULES [--family ip|ip6] [--packets N] [--seed N] [--time T] [--backend legacy|nft] [--json]
  nfvm fuzz --random-rulesets N [--packets N] [--seed N] [--time T] [--json]
      Run packets drawn towards the ruleset's own constants (every prefix
      edge and the addresses just outside it, port-range edges, marks with
      and without the bits their masks test, interfaces, protocols,
      conntrack states, ipset members) through every engine: the x_tables
      evaluator, the VM's execution tier and its interpreter, each on the
      optimized and the straight program. A packet they disagree on is a
      divergence, printed as a packet spec shrunk towards the defaults
      (nfvm trace --packet takes it). Then the rules no packet reached,
      with the earlier rule that shadows each when that can be told, and
      the coverage. SNAPSHOT_OR_RULES is a snapshot directory (its
      iptables-save.txt, or ip6tables-save.txt with --family ip6 or when
      it is the only one, and ipset-save.txt) or an iptables-save or
      ip6tables-save file (IPv6 by its header, or when its rules name IPv6
      addresses).
      --packets N per table (default 10000; with --random-rulesets, per
      ruleset, default 16); --seed N (default 1); --time T stops after T
      (60s, 2m, 500ms). --random-rulesets N: nfvm fuzzed on N rulesets it
      generates (each with a minimal ruleset when it diverges).
      Exit 1 when a divergence was found.
`,
  options: {
    packets: { type: 'string' },
    seed: { type: 'string' },
    time: { type: 'string' },
    json: { type: 'boolean' },
    backend: { type: 'string' },
    family: { type: 'string' },
    'random-rulesets': { type: 'string' },
  },
};

/** An address's words (hooks/route/addr.ts IpAddr) as bytes, network order. */
function wordBytes(w: Uint32Array): Uint8Array {
  const b = new Uint8Array(4 * w.length);
  w.forEach((x, i) => b.set([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255], 4 * i));
  return b;
}

/** `60s`, `2m`, `500ms`, `1h`, or plain seconds, as milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new UsageError(`--time takes a duration (60s, 2m, 500ms), not "${v}"`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 1000);
}

const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

interface DeadRule {
  table: string;
  chain: string;
  num: number;
  rule: string;
  shadowedBy?: { num: number; rule: string };
}

function progressLine(tty: boolean, s: string): void {
  if (tty) process.stderr.write(`\r${s}\x1b[K`);
}

function divergenceText(d: Divergence): string[] {
  const out = [`divergence in ${d.table}:${d.chain}: --packet "${d.packet}"`];
  for (const [name, r] of Object.entries(d.results)) out.push(`  ${name.padEnd(24)} ${r}`);
  if (d.ruleset) out.push('  minimal ruleset:', ...d.ruleset.trimEnd().split('\n').map((l) => `    ${l}`));
  return out;
}

function randomRulesets(n: number, a: ReturnType<typeof parseCommand>, json: boolean, tty: boolean): { out: string; code: number } {
  const seed = countOption(a.str('seed'), 'seed', 1, 0xffffffff);
  const packets = countOption(a.str('packets'), 'packets', 16, 100000);
  const time = a.str('time');
  const deadline = time === undefined ? Infinity : Date.now() + parseDuration(time);
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const r = fuzzRandomRulesets(n, seed, packets, deadline, (done) => {
    if (tty && done % 100 === 0) progressLine(true, `nfvm fuzz: ${done}/${n} rulesets`);
  });
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const wall = (Date.now() - t0) / 1000;
  const perMin = Math.round((r.rulesets / Math.max(cpuS, 1e-9)) * 60);
  const summary = `nfvm fuzz: ${r.rulesets} generated rulesets, ${r.packets} packets in ${cpuS.toFixed(2)} s CPU (${perMin} rulesets/min, ${Math.round(r.packets / Math.max(cpuS, 1e-9))} packets/s), ${r.divergences.length} divergence${r.divergences.length === 1 ? '' : 's'}; rules a packet matched: ${r.rulesHit} of ${r.rules}`;
  if (tty) process.stderr.write(`\r${summary}\x1b[K\n`);
  const code = r.divergences.length ? 1 : 0;
  if (json) {
    return { code, out: jsonDoc({ schema: 1, randomRulesets: { rulesets: r.rulesets, packets: r.packets, cpuSeconds: cpuS, seconds: wall, rulesetsPerMinute: perMin, rules: r.rules, rulesHit: r.rulesHit }, divergences: r.divergences }) };
  }
  const lines = r.divergences.flatMap(divergenceText);
  lines.push(summary.replace(/^nfvm fuzz: /, ''));
  return { code, out: lines.join('\n') + '\n' };
}

export function cmdFuzz(argv: readonly string[]): { out: string; code: number } {
  const a = parseCommand(FUZZ, argv);
  if (a.help) return { out: FUZZ.usage, code: 0 };
  const json = a.flag('json');
  const tty = process.stderr.isTTY === true && !json;
  const rr = a.str('random-rulesets');
  if (rr !== undefined) {
    if (a.positionals.length) throw new UsageError('--random-rulesets generates its rulesets: give no SNAPSHOT_OR_RULES');
    return randomRulesets(countOption(rr, 'random-rulesets', 0, 100_000_000), a, json, tty);
  }
  if (a.positionals.length !== 1) throw new UsageError('fuzz takes one SNAPSHOT_OR_RULES (a snapshot directory or an iptables-save file), or --random-rulesets N');
  const src = a.positionals[0]!;
  const backend = parseBackend(a.str('backend'));
  const seed = countOption(a.str('seed'), 'seed', 1, 0xffffffff);
  const perTable = countOption(a.str('packets'), 'packets', 10000, 100_000_000);
  const time = a.str('time');
  const deadline = time === undefined ? Infinity : Date.now() + parseDuration(time);
  let rs: Ruleset;
  let file: string;
  const opts: EngineOptions & { backend?: 'legacy' | 'nft'; file?: string } = { seed, backend: backend as 'legacy' | 'nft' | undefined };
  let ipsetText = '';
  let ifaces: string[] = [];
  let local6: string[] = [];
  const famOpt = a.str('family');
  if (isDir(src)) {
    const node = readSnapshot(src);
    const family = famOpt !== undefined ? parseFamily(famOpt) : node.iptables || !node.ip6tables ? 'ip' : 'ip6';
    const txt = family === 'ip6' ? node.ip6tables : node.iptables;
    file = join(src, family === 'ip6' ? 'ip6tables-save.txt' : 'iptables-save.txt');
    if (!txt) throw new UsageError(`${src}: no ${family === 'ip6' ? 'ip6tables-save.txt' : 'iptables-save.txt'} in the snapshot`);
    rs = parseRestore(txt.text, { file, family });
    opts.backend ??= txt.backend;
    if (node.ipsets) {
      ipsetText = node.ipsets.text;
      opts.ipsets = parseIpsetSave(node.ipsets.text, node.ipsets.file);
    }
    ifaces = [...node.links.keys()];
    opts.localAddrs = node.addresses.filter((x) => x.family === (family === 'ip6' ? 6 : 4)).map((x) => wordBytes(x.local.w));
    local6 = node.addresses.filter((x) => x.family === 6 && x.dev !== 'lo').map((x) => formatAddr(x.local));
  } else {
    file = inputName(src);
    const text = readInput(src);
    const family = famOpt !== undefined ? parseFamily(famOpt) : familyOfText(text);
    rs = parseRestore(text, { file, family });
    // a node's local table holds at least lo's 127.0.0.1 (::1)
    opts.localAddrs = [family === 'ip6' ? Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1) : Uint8Array.of(127, 0, 0, 1)];
  }
  opts.file = file;
  const v6 = rs.family === 'ip6';
  const k = constantsOf([rs], [ipsetText]);
  const rand = seededRand(seed);
  // and, for a file, an interface no rule names (the packets the interface matches let through)
  const ifs = [...new Set([...ifaces, ...k.ifaces, ...(ifaces.length ? [] : ['nfvm0'])])];
  const cpu0 = process.cpuUsage();
  const divergences: Divergence[] = [];
  const hitsBy = new Map<string, number[]>();
  let packets = 0;
  const tables = [...rs.tables.keys()] as TableName[];
  const texts = chainTexts(rs);
  const callers = callersOf(texts);
  const view = { ifaces: ifs.length ? ifs : ['eth0'], local: v6 ? [] : (opts.localAddrs ?? []).map((b) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0), local6 };
  for (const table of tables) {
    const chains = TABLE_CHAINS[table];
    const list: TablePacket[] = [];
    // half the packets aimed at the rules (through the jumps to their chain, at the edges of their ranges)
    const aimed: TablePacket[] = [];
    for (const [key, rules] of texts) {
      const [t, chain] = key.split('\0') as [TableName, string];
      if (t !== table) continue;
      rules.forEach((text, i) => {
        if (aimed.length >= perTable / 2) return;
        const target = shapeOf(table, chain, i + 1, text.slice(`-A ${chain}`.length), rs.family);
        for (const { hook, path } of pathsTo(table, chain, callers, rs.family, 2)) {
          const h = HOOKS.indexOf(hook);
          for (const p of aimedPackets(path, target, hook, view, v6)) {
            aimed.push({ ...p, chain: hook, local: false, ct: 'new', iif: h <= 2 ? p.iif || view.ifaces[0]! : '', oif: h >= 2 ? p.oif || pick(rand, view.ifaces) : '' });
          }
        }
      });
    }
    list.push(...aimed.slice(0, Math.floor(perTable / 2)));
    while (list.length < perTable) {
      const chain = pick(rand, chains);
      const hook = HOOKS.indexOf(chain);
      const p = drawPacket(rand, k, { ifaces: ifs, ct: true, local: false, v6 });
      const oif = ifs.length ? pick(rand, ifs) : '';
      list.push({ ...p, chain, iif: hook <= 2 ? p.iif || (ifs.length ? pick(rand, ifs) : '') : '', oif: hook >= 2 && chance(rand, 0.95) ? oif : '' });
    }
    progressLine(tty, `nfvm fuzz: table ${table}: 0/${perTable} packets`);
    const r = fuzzTable(rs, table, opts, list, undefined, deadline, (done) => progressLine(tty, `nfvm fuzz: table ${table}: ${done}/${perTable} packets`));
    packets += r.packets;
    divergences.push(...r.divergences);
    for (const [chain, h] of r.hits) hitsBy.set(`${table}\0${chain}`, h);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  // rules no packet reached, and what shadows them
  const all = shapes(rs);
  const byChain = new Map<string, RuleShape[]>();
  for (const s of all) byChain.set(`${s.table}\0${s.chain}`, [...(byChain.get(`${s.table}\0${s.chain}`) ?? []), s]);
  const dead: DeadRule[] = [];
  let total = 0;
  for (const s of all) {
    total++;
    const h = hitsBy.get(`${s.table}\0${s.chain}`)?.[s.num - 1] ?? 0;
    if (h > 0) continue;
    const sh = shadowOf(byChain.get(`${s.table}\0${s.chain}`)!, s);
    dead.push({ table: s.table, chain: s.chain, num: s.num, rule: s.text, ...(sh ? { shadowedBy: { num: sh.num, rule: sh.text } } : {}) });
  }
  const covered = total - dead.length;
  const pct = total ? ((100 * covered) / total).toFixed(1) : '100';
  const coverage = `rules a packet reached: ${covered} of ${total} (${pct}%); packets drawn from ${constantsSummary(k)} (85% of each field from them, the rest at random)`;
  const summary = `nfvm fuzz: ${packets} packets in ${cpuS.toFixed(2)} s CPU (${Math.round(packets / Math.max(cpuS, 1e-9))} packets/s through every engine), ${divergences.length} divergence${divergences.length === 1 ? '' : 's'}, ${covered} of ${total} rules covered`;
  if (tty) process.stderr.write(`\r${summary}\x1b[K\n`);
  const code = divergences.length ? 1 : 0;
  if (json) {
    return { code, out: jsonDoc({ schema: 1, file, seed, packets, cpuSeconds: cpuS, divergences, unreached: dead, coverage: { rules: total, reached: covered, constants: k, text: coverage } }) };
  }
  const lines = [`# nfvm fuzz: ${file}, tables ${tables.join(', ')}, ${perTable} packets per table, seed ${seed}`];
  if (divergences.length === 0) lines.push('no divergence between the engines');
  for (const d of divergences) lines.push(...divergenceText(d));
  if (dead.length) {
    lines.push(`rules no packet reached (${dead.length}):`);
    for (const d of dead) lines.push(`  ${d.table}:${d.chain} rule ${d.num}: ${d.rule}${d.shadowedBy ? `\n      shadowed by rule ${d.shadowedBy.num}: ${d.shadowedBy.rule}` : ''}`);
  }
  lines.push(coverage, summary.replace(/^nfvm fuzz: /, ''));
  return { code, out: lines.join('\n') + '\n' };
}
