/**
 * VM against the x_tables evaluator (--engine reference) on real-shaped rulesets: ClassBench
 * acl1/fw1/ipc1 at 1k (their traces) and 10k rules (headers synthesised
 * from the filters), and kube-proxy NAT rulesets of 1,000 and 10,000
 * Services (generated). Reports ns/packet and Mpps for both engines side by
 * side, and the ratio. Packets are decoded once into a pool of Packet
 * objects; each iteration runs a batch through one builtin chain.
 */
import { Bench } from 'tinybench';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRestore } from '../compiler/parse/restore.js';
import type { Ruleset, TableName } from '../core/ast.js';
import { vmTable } from '../engine/vm-table.js';
import { referenceTable } from '../engine/reference/index.js';
import type { TableEngine } from '../engine/engine.js';
import { LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../vm/packet.js';
import { M_CT_DIR, M_CT_STATE, M_HOOK, M_NFPROTO } from '../vm/layout.js';
import { CLASSBENCH_SETS, filtersToRestore, headerFrame, parseFilters, parseTrace, synthHeaders, type CbHeader } from './classbench.js';
import { clusterIpHeaders, kubeProxyRuleset } from './gen-kube.js';

export interface EngineRow {
  set: string;
  rules: number;
  packets: number;
  vmNs: number;
  refNs: number;
  ratio: number;
  vmMpps: number;
  refMpps: number;
  /** Bytecode (code words) per rule, and with the constant pool (classifier data, long constants). */
  codeBytesPerRule: number;
  totalBytesPerRule: number;
}

const CORPUS = process.env.NFVM_CORPUS ?? join(process.cwd(), '..', 'shared', 'corpus');

function poolOf(frames: Uint8Array[], hook: number, iif: string, ct: boolean): Packet[] {
  return frames.map((f) => {
    const p = new Packet(f.length + 64);
    p.setFrame(f);
    decodePacket(p, LINKTYPE_RAW);
    p.meta[M_NFPROTO] = 2;
    p.meta[M_HOOK] = hook;
    setDevice(p, 'in', 2, iif);
    if (ct) {
      p.meta[M_CT_STATE] = 8; // NEW
      p.meta[M_CT_DIR] = 0;
    }
    return p;
  });
}

async function measure(name: string, rs: Ruleset, table: TableName, chain: string, pkts: Packet[], rules: number, time: number, optimize: 0 | 1): Promise<EngineRow> {
  const vm = vmTable(rs, table, { seed: 1, localAddrs: [Uint8Array.of(10, 0, 0, 1)], optimize });
  const prog = vm.compiled.program;
  const engines: [string, TableEngine][] = [
    ['vm', vm],
    ['reference', referenceTable(rs, table, { seed: 1, localAddrs: [Uint8Array.of(10, 0, 0, 1)] })],
  ];
  const ns: Record<string, number> = {};
  let sink = 0;
  for (const [ename, e] of engines) {
    const bench = new Bench({ time, warmupTime: Math.min(500, time / 2) });
    bench.add(`${name} ${ename}`, () => {
      for (let i = 0; i < pkts.length; i++) sink ^= e.run(chain, pkts[i]!);
    });
    await bench.run();
    const r = bench.tasks[0]!.result;
    ns[ename] = r && r.state === 'completed' ? (r.latency.mean * 1e6) / pkts.length : NaN;
  }
  if (sink === 0.5) console.log(sink);
  return {
    set: name,
    rules,
    packets: pkts.length,
    vmNs: +ns.vm!.toFixed(1),
    refNs: +ns.reference!.toFixed(1),
    ratio: +(ns.reference! / ns.vm!).toFixed(1),
    vmMpps: +(1000 / ns.vm!).toFixed(2),
    refMpps: +(1000 / ns.reference!).toFixed(3),
    codeBytesPerRule: +((prog.code.length * 4) / rules).toFixed(1),
    totalBytesPerRule: +(((prog.code.length + prog.pool.length) * 4) / rules).toFixed(1),
  };
}

/** `optimize`: the VM's program (1, the default: with classifier prefilters; 0: straight lowering). */
/** `only`: the ClassBench sets to run (default all), without the kube-proxy rows when given. */
export async function benchEngines(time = 1500, optimize: 0 | 1 = 1, only?: readonly string[]): Promise<EngineRow[]> {
  const rows: EngineRow[] = [];
  for (const { name, rules: rulesPath, trace: tracePath } of CLASSBENCH_SETS) {
    if (only && !only.includes(name)) continue;
    const p = join(CORPUS, rulesPath);
    if (!existsSync(p)) {
      console.warn(`[skip] ${name}: ${p} not found (set NFVM_CORPUS)`);
      continue;
    }
    const filters = parseFilters(readFileSync(p, 'utf8'));
    const rs = parseRestore(filtersToRestore(filters));
    let headers: CbHeader[] = tracePath && existsSync(join(CORPUS, tracePath)) ? parseTrace(readFileSync(join(CORPUS, tracePath), 'utf8')) : synthHeaders(filters, 2000, 7);
    headers = headers.slice(0, 2000);
    const pkts = poolOf(headers.map(headerFrame), 2, 'eth0', false);
    rows.push(await measure(name, rs, 'filter', 'FORWARD', pkts, filters.length, time, optimize));
  }
  for (const services of only ? [] : [1000, 10000]) {
    const text = kubeProxyRuleset({ services, endpointsPerService: 2 });
    const rs = parseRestore(text);
    const nrules = [...rs.tables.get('nat')!.chains.values()].reduce((s, c) => s + c.rules.length, 0);
    const frames = clusterIpHeaders(services, 500).map(headerFrame);
    rows.push(await measure(`kube-proxy ${services} svc`, rs, 'nat', 'PREROUTING', poolOf(frames, 0, 'eth0', true), nrules, time, optimize));
  }
  return rows;
}
