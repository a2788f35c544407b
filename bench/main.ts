/**
 * nfvm benchmarks, run on the esbuild bundle (`npm run bench`), never
 * under vitest. Prints a table and writes bench/results/<date>.json.
 *
 *   parse   iptables-restore text → checked AST, for a 100,000-rule
 *           kube-proxy ruleset (target: under 1 s on one core)
 *   save    AST → iptables-save text
 */
import { Bench } from 'tinybench';
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { kubeProxyRuleset, kubeRuleCount } from './gen-kube.js';

const only = process.argv[2];
const results: Record<string, unknown>[] = [];

async function benchParse() {
  const opts = { services: 12_500, endpointsPerService: 2 };
  const text = kubeProxyRuleset(opts);
  const nrules = kubeRuleCount(opts);
  const rs = parseRestore(text);
  const bench = new Bench({ name: 'parse', time: 5000, iterations: 5, warmupIterations: 1 });
  bench.add(`parse+check ${nrules} rules (${(text.length / 1e6).toFixed(1)} MB)`, () => {
    parseRestore(text);
  });
  bench.add(`save ${nrules} rules`, () => {
    saveRuleset(rs);
  });
  await bench.run();
  for (const t of bench.tasks) {
    const r = t.result;
    if (!r || r.state !== 'completed') continue;
    const ms = r.latency.mean;
    results.push({ task: t.name, ms: +ms.toFixed(1), rulesPerSec: Math.round((nrules / ms) * 1000), usPerRule: +((ms * 1000) / nrules).toFixed(2), samples: r.latency.samplesCount });
  }
}

console.log(`nfvm bench — node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`);
if (!only || only === 'parse') await benchParse();
console.table(results);
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/${new Date().toISOString().slice(0, 10)}.json`, JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, results }, null, 2));
