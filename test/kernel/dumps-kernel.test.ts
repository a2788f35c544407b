/**
 * The real-dump conformance test against the Linux kernel.
 *
 * For every dump of the corpus (test/helpers/dumps.ts): a fresh network
 * namespace, `iptables-legacy-restore [-c] < dump` in it (ip6tables-legacy-*
 * for IPv6 dumps), `iptables-legacy-save [-c]`, and the namespace deleted
 * again (in a `finally`, also on failure). nfvm's
 * `saveRuleset(parseRestore(dump))` must print the same lines per table
 * (`#` lines ignored, table order irrelevant: the kernel lists tables in the
 * order they were registered).
 *
 * The installed tools are iptables 1.8.9; nfvm prints what iptables 1.8.13
 * prints. NORMALISATIONS turns the 1.8.9 forms that changed into the 1.8.13
 * ones, each naming the iptables change; nothing else is adjusted.
 *
 * A dump the kernel refuses must be listed in KERNEL_REFUSALS (helpers/dumps.ts):
 * either a syntax error (then nfvm must reject it too: EXPECTED_REJECTIONS)
 * or a missing kernel feature (then nfvm must still parse it).
 *
 * Runs only as root with iptables-legacy-restore and `ip` installed; skips
 * with a message otherwise. Namespaces run two at a time (the machine has
 * two cores).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HAVE_CORPUS, noteMissingCorpus } from '../helpers/corpus.js';
import { discoverDumps, splitTables, EXPECTED_REJECTIONS, KERNEL_REFUSALS, DUMP_DIRS, type Dump } from '../helpers/dumps.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { saveRuleset } from '../../compiler/save.js';

const CONCURRENCY = 2;

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const HAVE_TOOLS = have('iptables-legacy-restore') && have('ip6tables-legacy-restore') && have('ip');
/** A network namespace can be made and iptables-legacy works in it (ip_tables in the kernel). */
function preflight(): string | undefined {
  const ns = `nfvm-dump-pre-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  try {
    for (const tool of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
      const r = spawnSync('ip', ['netns', 'exec', ns, tool], { encoding: 'utf8' });
      if (r.status !== 0) return `${tool} failed in a namespace: ${r.stderr.trim()}`;
    }
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
noteMissingCorpus('kernel dump conformance');
const WHY_NOT = !HAVE_CORPUS
  ? 'no corpus'
  : !IS_ROOT || !HAVE_TOOLS
    ? `needs root and iptables-legacy-restore/ip6tables-legacy-restore/ip (root=${IS_ROOT}, tools=${HAVE_TOOLS})`
    : preflight();
const ENABLED = WHY_NOT === undefined;
if (HAVE_CORPUS && !ENABLED) console.warn(`[skip] kernel dump conformance: ${WHY_NOT}`);

/**
 * 1.8.9 → 1.8.13 printing differences, applied to each line the installed
 * iptables-legacy-save prints. Keep this minimal: each entry names the
 * iptables change that makes 1.8.13 print differently.
 */
export const NORMALISATIONS: readonly { name: string; change: string; apply(line: string): string }[] = [
  {
    name: '-p NAME (an /etc/protocols name) → the xtables_chain_protos name or the number',
    change:
      'iptables 1.8.11, "iptables-save: Avoid /etc/protocols lookups" (Phil Sutter, January 2024; with ' +
      '"libxtables: Add dccp and ipcomp to xtables_chain_protos"): ' +
      'save_rule_details() calls proto_to_name(proto, true), so iptables-save prints only the names of ' +
      'xtables_chain_protos[] and the number for every other protocol; 1.8.9 printed getprotobynumber() names (`-p gre`, 1.8.13 `-p 47`)',
    apply: (line) =>
      line.replace(/( -p )([A-Za-z][A-Za-z0-9._-]*)(?= |$)/, (m, pre: string, name: string) => {
        const n = etcProtocols().get(name);
        if (n === undefined) return m;
        return pre + (CHAIN_PROTOS.find(([, num]) => num === n)?.[0] ?? String(n));
      }),
  },
];

/** xtables_chain_protos[] of iptables 1.8.13 (libxtables/xtables.c), in order: the names iptables-save prints. */
const CHAIN_PROTOS: ReadonlyArray<readonly [string, number]> = [
  ['tcp', 6], ['sctp', 132], ['udp', 17], ['udplite', 136], ['icmp', 1], ['ipv6-icmp', 58], ['icmpv6', 58],
  ['esp', 50], ['ah', 51], ['mobility-header', 135], ['ipv6-mh', 135], ['mh', 135], ['dccp', 33], ['ipcomp', 108], ['all', 0],
];

let etcProtocolsCache: Map<string, number> | undefined;
/** This machine's /etc/protocols (what the installed iptables-save's getprotobynumber() reads). */
function etcProtocols(): Map<string, number> {
  if (etcProtocolsCache) return etcProtocolsCache;
  const m = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync('/etc/protocols', 'utf8');
  } catch {
    // no /etc/protocols: iptables 1.8.9 printed numbers too
  }
  for (const line of text.split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length >= 2 && /^\d+$/.test(f[1]!)) m.set(f[0]!, Number(f[1]));
  }
  return (etcProtocolsCache = m);
}

/** How many kernel lines each normalisation changed (for the summary). */
const normalised = new Map<string, number>();
function normalise(line: string): string {
  for (const n of NORMALISATIONS) {
    const out = n.apply(line);
    if (out !== line) normalised.set(n.name, (normalised.get(n.name) ?? 0) + 1);
    line = out;
  }
  return line;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.on('error', () => {}); // the tool may exit before reading all input
    p.stdin.end(input ?? '');
  });
}

interface KernelResult {
  /** iptables-restore succeeded. */
  loaded: boolean;
  restoreStderr: string;
  /** iptables-save output (also after a refusal: tables committed before the failing one stay). */
  save: string;
}

let nsSeq = 0;
async function kernelRoundTrip(d: Dump): Promise<KernelResult> {
  const ns = `nfvm-dump-${process.pid}-${++nsSeq}-${randomBytes(3).toString('hex')}`;
  const pre = d.family === 'ip6' ? 'ip6tables' : 'iptables';
  const c = d.counters ? ['-c'] : [];
  const add = await run('ip', ['netns', 'add', ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns} failed: ${add.stderr}`);
  try {
    const r = await run('ip', ['netns', 'exec', ns, `${pre}-legacy-restore`, ...c], d.text);
    const s = await run('ip', ['netns', 'exec', ns, `${pre}-legacy-save`, ...c]);
    if (s.code !== 0) throw new Error(`${pre}-legacy-save failed in ${ns}: ${s.stderr}`);
    return { loaded: r.code === 0, restoreStderr: r.stderr.trim(), save: s.stdout };
  } finally {
    const del = await run('ip', ['netns', 'del', ns]);
    if (del.code !== 0) console.warn(`ip netns del ${ns} failed: ${del.stderr}`);
  }
}

async function pool<T, R>(items: readonly T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

interface Outcome {
  dump: Dump;
  kernel: KernelResult | undefined;
  kernelError: string | undefined;
  nfvm: string | undefined;
  nfvmError: string | undefined;
  /** Per table, the first differing lines (kernel vs nfvm), empty when equal. */
  diffs: string[];
}

function nfvmSave(d: Dump): { out?: string; err?: string } {
  try {
    return { out: saveRuleset(parseRestore(d.text, { family: d.family, counters: d.counters, file: d.id }), { counters: d.counters, comments: false }) };
  } catch (e) {
    return { err: (e as Error).message };
  }
}

/** Line-level comparison per table, after the 1.8.9 → 1.8.13 normalisations. */
export function compareSaves(kernelSave: string, nfvmOut: string, maxPerTable = 6): string[] {
  const k = splitTables(kernelSave);
  const n = splitTables(nfvmOut);
  const diffs: string[] = [];
  for (const t of new Set([...k.keys(), ...n.keys()])) {
    const kl = k.get(t)?.map(normalise);
    const nl = n.get(t);
    if (!kl || !nl) {
      diffs.push(`table ${t}: ${kl ? 'missing in nfvm output' : 'not in the kernel'}`);
      continue;
    }
    const shown: string[] = [];
    const len = Math.max(kl.length, nl.length);
    for (let i = 0; i < len && shown.length < maxPerTable; i++) {
      if (kl[i] !== nl[i]) shown.push(`  kernel: ${kl[i] ?? '(end)'}\n  nfvm:   ${nl[i] ?? '(end)'}`);
    }
    if (shown.length) diffs.push(`table ${t} (${kl.length} kernel lines, ${nl.length} nfvm lines):\n${shown.join('\n')}`);
  }
  return diffs;
}

const dumps = ENABLED ? discoverDumps().dumps : [];
const outcomes = new Map<string, Outcome>();
let elapsedMs = 0;

describe.skipIf(!ENABLED)('real dumps against the kernel (iptables-legacy 1.8.9, normalised to 1.8.13)', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const rs = await pool(dumps, CONCURRENCY, async (d): Promise<Outcome> => {
      let kernel: KernelResult | undefined;
      let kernelError: string | undefined;
      try {
        kernel = await kernelRoundTrip(d);
      } catch (e) {
        kernelError = (e as Error).message;
      }
      const { out, err } = nfvmSave(d);
      const diffs = kernel?.loaded && out !== undefined ? compareSaves(kernel.save, out) : [];
      return { dump: d, kernel, kernelError, nfvm: out, nfvmError: err, diffs };
    });
    for (const o of rs) outcomes.set(o.dump.id, o);
    elapsedMs = Date.now() - t0;
  }, 600_000);

  afterAll(() => {
    if (!outcomes.size) return;
    const all = [...outcomes.values()];
    const loaded = all.filter((o) => o.kernel?.loaded);
    const compared = loaded.filter((o) => o.nfvm !== undefined);
    const equal = compared.filter((o) => o.diffs.length === 0);
    const refused = all.filter((o) => o.kernel && !o.kernel.loaded);
    const lines: string[] = [];
    lines.push(`kernel dump conformance: ${all.length} dumps, ${compared.length} compared, ${equal.length} equal, ${compared.length - equal.length} differing, ` +
      `${refused.length} refused by the kernel, ${loaded.length - compared.length} loaded by the kernel but rejected by nfvm; ${(elapsedMs / 1000).toFixed(1)} s`);
    for (const dir of DUMP_DIRS) {
      const inDir = all.filter((o) => o.dump.dir === dir);
      const c = inDir.filter((o) => o.kernel?.loaded && o.nfvm !== undefined);
      lines.push(`  ${dir}: ${inDir.length} dumps, ${c.filter((o) => o.diffs.length === 0).length}/${c.length} compared equal, ${inDir.filter((o) => o.kernel && !o.kernel.loaded).length} refused by the kernel`);
    }
    for (const [name, n] of normalised) lines.push(`  normalised ${n} kernel lines: ${name}`);
    for (const o of refused) {
      lines.push(`  refused: ${o.dump.id}: ${o.kernel!.restoreStderr.split('\n')[0]} | nfvm: ${o.nfvmError ?? 'parses'}`);
    }
    for (const o of compared) if (o.diffs.length) lines.push(`  differs: ${o.dump.id}\n    ${o.diffs.join('\n').split('\n').join('\n    ')}`);
    for (const o of loaded) if (o.nfvm === undefined) lines.push(`  nfvm rejects a dump the kernel loads: ${o.dump.id}: ${o.nfvmError}`);
    console.log(lines.join('\n'));
  });

  for (const d of dumps) {
    it(`${d.id}${d.family === 'ip6' ? ' (ip6)' : ''}${d.counters ? ' (-c)' : ''}`, () => {
      const o = outcomes.get(d.id);
      expect(o, 'the kernel run did not happen').toBeDefined();
      expect(o!.kernelError, 'kernel run').toBeUndefined();
      const k = o!.kernel!;
      const expectedRejection = EXPECTED_REJECTIONS[d.id];
      const refusal = KERNEL_REFUSALS[d.id];
      if (!k.loaded) {
        expect(refusal, `the kernel refuses ${d.id} but KERNEL_REFUSALS does not list it:\n${k.restoreStderr}`).toBeDefined();
        expect(k.restoreStderr).toMatch(refusal!.kernel);
        if (expectedRejection) {
          expect(o!.nfvmError, 'nfvm must reject a dump iptables-restore refuses for syntax').toBeDefined();
        } else {
          expect(o!.nfvmError, 'nfvm must parse a dump the kernel refuses only for a missing feature').toBeUndefined();
        }
        return;
      }
      expect(refusal, `KERNEL_REFUSALS lists ${d.id} but the kernel loads it`).toBeUndefined();
      expect(o!.nfvmError, 'nfvm rejects a dump the kernel loads').toBeUndefined();
      expect(o!.diffs.join('\n'), 'kernel and nfvm saves differ').toBe('');
    });
  }
});
