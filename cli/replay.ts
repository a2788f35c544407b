/**
 * `nfvm replay SNAPSHOT --pcap FILE [--iface NAME]`: every frame of the
 * capture in on its interface, in order, through the node; then the
 * ruleset with the counters the kernel would show, as `iptables-save -c`
 * prints it (counters start at zero, as after iptables-restore).
 *
 * Each frame arrives on the interface its capture names (the if_name of
 * its pcapng Interface Description Block, the ifindex of its LINUX_SLL2
 * header mapped through the snapshot's ip-link.json), or --iface; the
 * model's clock follows the frames' timestamps (the answers' rate limits
 * run on it). The node's own answers (ICMP errors and echo replies, TCP
 * resets, what REJECT sends) cross OUTPUT and POSTROUTING and are counted
 * by kind. A frame the capture saw leave the node (pcapng epb_flags
 * outbound, SLL/SLL2 PACKET_OUTGOING) was sent by it: it is not received
 * but paired with what the model sent out of that interface (hooks/outgoing.ts):
 * identical, identical but for fields the kernel randomises, differing
 * (the first field), or not emitted by the model.
 * On a terminal, stderr shows a progress line and, at the end, a summary
 * of what became of the frames; --json gives the summary with the counters.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { NfvmError } from '../core/errors.js';
import type { TableName } from '../core/ast.js';
import { saveChunks } from '../compiler/save.js';
import { nfacctList } from '../ext/nfacct.js';
import { saveEbtRuleset } from '../compiler/ebt/save.js';
import { isOutgoing, openCapture } from '../hooks/input/capture.js';
import { ebtablesWithCounters, type NodeModel, type NodeModelOptions, type TableCounters } from '../hooks/node.js';
import { conntrackEntry, conntrackLine, conntrackSummary, type CtEntryJson } from '../hooks/conntrack/index.js';
import { saveIpsets } from '../compiler/ipset.js';
import { formatIpvsStats } from '../hooks/ipvs/index.js';
import { xtProcFiles } from '../ext/xtstate.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { JsonStream, JsonText, jsonDoc, jsonPieces, rulesetJson } from './json.js';
import { linePieces, type Output } from './io.js';
import { MODEL_OPTIONS, MODEL_USAGE, checkIface, frameIface, loadModel, modelInputs, modelOptions, xfrmPolicyNote, type SnapshotSource } from './model.js';
import { Replayer, type ReplaySummary } from './replay-run.js';
import { ShardedReplay, sharedStateReason, type ShardedResult } from './replay-workers.js';

export type { ReplaySummary } from './replay-run.js';

export const REPLAY: CommandSpec = {
  name: 'replay',
  usage: `  nfvm replay SNAPSHOT --pcap FILE|- [--iface NAME] [--save iptables|ip6tables|ebtables|ipset|recent|hashlimit|ipvs|nfacct]
              ${MODEL_USAGE} [--workers N] [--conntrack] [--json]
      Feed every frame of the capture (pcap or pcapng; - reads it from
      stdin: tcpdump -w - | nfvm replay ...) in on interface NAME
      (default: each frame's pcapng interface, or its LINUX_SLL2 ifindex),
      in order, on the capture's clock, and print the ruleset with its
      counters as \`iptables-save -c\` would on the node (--save ip6tables:
      the ip6tables ruleset, as \`ip6tables-save -c\`; --save ebtables: the
      bridge tables, as \`ebtables-save -c\`; --save ipset: the
      node's sets after the run, as \`ipset save\`); --conntrack prints
      the conntrack table instead, as \`conntrack -L\` would at the last
      frame's time (its summary line on stderr). The node's answers (ICMP,
      TCP resets, REJECT's) cross OUTPUT and POSTROUTING. Frames the capture
      saw leave the node are not fed: each is compared with what the node
      sent. On a terminal: progress and a summary on stderr; --json: the
      summary with the counters. --workers N spreads the connections over
      N threads, each a node with its share of the conntrack table, and
      sums what they saw: the output is one node's. A ruleset or capture
      with state shared across connections (NAT, limit, quota, statistic,
      recent, SET, REJECT, answers of the node, fragments, a bridge, ...) is replayed
      on one thread, said on stderr (from stdin: an error, exit 2). Default:
      the cores available for a file of 4 MiB or more, else 1.
      --save recent prints the recent match's
      lists after the run, each as its /proc/net/xt_recent/NAME file reads
      (a "# /proc/net/xt_recent/NAME" line, then its entries); --save
      hashlimit the hashlimit tables as /proc/net/ipt_hashlimit/NAME (and
      ip6t_hashlimit) read. Timestamps and expiries are jiffies of the
      capture's clock at --hz (default 250): capture seconds times HZ.
      --save ipvs prints the IPVS virtual services (ipvsadm-save.txt) with
      the connections, packets and bytes each scheduled, as \`ipvsadm -L -n
      --stats\` would, then the IPVS connection table as \`ipvsadm -L -n
      -c\` would at the last frame's time. --save nfacct prints the
      extended accounting objects (nfacct.txt) after the run, as \`nfacct
      list\` would. --cpu N: the CPU the node handles every frame on (-m
      cpu, bpf's SKF_AD_CPU, NFQUEUE --queue-cpu-fanout; default 0).
`,
  options: {
    pcap: { type: 'string' }, iface: { type: 'string' }, save: { type: 'string' }, conntrack: { type: 'boolean' }, json: { type: 'boolean' },
    workers: { type: 'string' },
    ...MODEL_OPTIONS,
  },
};

/** The one-line summary: `nfvm replay: 5 frames in 0.01 s (500 frames/s): 2 delivered, ...`. */
export function summaryText(s: ReplaySummary): string {
  const fps = s.seconds > 0 ? Math.round(s.frames / s.seconds) : s.frames;
  const kd = Object.entries(s.kernelDrops);
  const kernel = kd.reduce((n, [, v]) => n + v, 0);
  const parts = [
    `${s.delivered} delivered`, `${s.forwarded} forwarded`, `${s.sent} sent`, `${s.dropped} dropped by rules`, `${s.rejected} rejected`,
    `${kernel} kernel drops${kd.length ? ` (${kd.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    `${s.notForThisHost} not for this host`, `${s.outgoing} outgoing skipped`,
  ];
  if (s.notIp) parts.push(`${s.notIp} not IP`);
  if (s.queued) parts.push(`${s.queued} queued`);
  if (s.stolen) parts.push(`${s.stolen} stolen`);
  if (s.bridged) parts.push(`${s.bridged} bridged`);
  if (s.tooLarge) parts.push(`${s.tooLarge} too large`);
  const lines = [`nfvm replay: ${s.frames} frames in ${s.seconds.toFixed(2)} s (${fps} frames/s): ${parts.join(', ')}`];
  const kinds = Object.entries(s.answers.byKind).sort(([x], [y]) => (x < y ? -1 : 1));
  lines.push(`nfvm replay: answers sent: ${s.answers.sent}${kinds.length ? ` (${kinds.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}` +
    `${s.answers.notSent ? `, ${s.answers.notSent} not sent (dropped in OUTPUT/POSTROUTING, no route, or delivered here)` : ''}`);
  if (s.clones.sent || s.clones.notSent) {
    lines.push(`nfvm replay: TEE clones sent: ${s.clones.sent}${s.clones.notSent ? `, ${s.clones.notSent} not sent (dropped in OUTPUT/POSTROUTING, no route to the gateway, or delivered here)` : ''}`);
  }
  const o = s.outgoingMatch;
  if (o) {
    const first = o.frames.find((x) => x.verdict === 'differs');
    lines.push(`nfvm replay: outgoing frames: ${o.identical} identical to what the node sent, ${o.kernelFields} identical but for fields the kernel fills itself, ` +
      `${o.differ} differ${first ? ` (first: frame ${first.frame}, ${first.fields[0]})` : ''}, ${o.notEmitted} not sent by the node; ${o.notCaptured} sent but not in the capture`);
  }
  for (const n of s.notes) lines.push(`nfvm replay: ${n}`);
  return lines.join('\n');
}

const MB = (b: number) => (b / 1e6).toFixed(1);

/** The progress line: share of the file read, frames/s, time left. */
function progressText(offset: number, size: number, frames: number, seconds: number): string {
  const fps = seconds > 0 ? Math.round(frames / seconds) : 0;
  if (size <= 0) return `nfvm replay: ${frames} frames, ${fps} frames/s`;
  const done = Math.min(1, offset / size);
  const eta = done > 0 ? Math.round((seconds * (1 - done)) / done) : 0;
  return `nfvm replay: ${(done * 100).toFixed(0)}% (${MB(offset)} of ${MB(size)} MB), ${fps} frames/s, ETA ${eta} s`;
}

/** Whether this code runs from the bundle (dist/cli.mjs), which a worker thread can load; not under a TypeScript loader. */
function bundled(): URL | undefined {
  const u = new URL(import.meta.url);
  return /\.m?js$/.test(u.pathname) ? u : undefined;
}

/** Without --workers, a capture smaller than this is replayed on one thread (starting workers costs more than they save). */
const DEFAULT_WORKERS_MIN_BYTES = 4 << 20;

/** The size of `file`, 0 when it cannot be read (openCapture says why). */
function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** --workers: a count from 1, default the cores available. */
function workerCount(v: string | undefined): number {
  if (v === undefined) return availableParallelism();
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new UsageError(`--workers takes a number from 1, not "${v}"`);
  return Number(v);
}

/** The conntrack table's entries: how many, and each as data, in listing order (made as they are read). */
interface CtListing {
  count: number;
  entries: () => Iterable<CtEntryJson>;
}

/** `conntrack -L` lines of the entries, each made as it is written. */
function* ctLines(entries: Iterable<CtEntryJson>): Generator<string> {
  for (const j of entries) yield conntrackLine(j, false);
}

/** What a replay gives the output: the summary, the counters, the conntrack listing. */
interface ReplayOutcome {
  summary: ReplaySummary;
  counters: ((family: 'ip' | 'ip6', table: TableName) => TableCounters | undefined) | undefined;
  noSockets: boolean;
  now: number;
  /** The capture's size (-1: a pipe), for the last progress line. */
  size: number;
  /** The conntrack table at the end, its entries made as they are written (a table may hold millions). */
  conntrack: () => CtListing;
  /** The model the frames went through when it is not the one loaded first (replayOne's second pass). */
  model?: NodeModel;
}

export function cmdReplay(argv: readonly string[]): Output {
  const a = parseCommand(REPLAY, argv);
  if (a.help) return REPLAY.usage;
  if (a.positionals.length !== 1) throw new UsageError('replay takes exactly one SNAPSHOT directory');
  const file = a.str('pcap');
  if (file === undefined) throw new UsageError('replay needs --pcap FILE');
  const save = a.str('save') ?? 'iptables';
  if (save !== 'iptables' && save !== 'ip6tables' && save !== 'ebtables' && save !== 'ipset' && save !== 'recent' && save !== 'hashlimit' && save !== 'ipvs' && save !== 'nfacct') {
    throw new UsageError(`--save takes iptables, ip6tables, ebtables, ipset, recent, hashlimit, ipvs or nfacct, not "${save}"`);
  }
  // Asked for, workers are used and a fallback is said; by default only for a file worth them (stdin cannot be
  // read again should its frames turn out to share state), silently.
  const explicit = a.str('workers') !== undefined;
  let workers = workerCount(a.str('workers'));
  if (!explicit && (file === '-' || fileSize(file) < DEFAULT_WORKERS_MIN_BYTES)) workers = 1;
  const dir = a.positionals[0]!;
  // --ipset and --apply read once; the snapshot as the command line has it is what the workers read again
  const inputs = modelInputs(a);
  const source: SnapshotSource = { dir: resolve(dir), ipsets: inputs.ipsets };
  let model = loadModel(dir, a, inputs);
  const iface = a.str('iface');
  checkIface(model, iface);
  const tty = process.stderr.isTTY === true;
  const script = bundled();
  if (!script) workers = 1;
  const family = save === 'ip6tables' ? 'ip6' : 'ip';
  const wantCt = a.flag('conntrack') || a.flag('json');
  if (workers > 1) {
    const why = sharedStateReason(model) ?? bridgeReason(model);
    if (why) {
      if (explicit) process.stderr.write(`nfvm replay: ${why}: state shared across connections, replaying on one thread\n`);
      workers = 1;
    }
  }
  let out: ReplayOutcome | undefined;
  if (workers > 1) {
    const r = replaySharded(model, source, { ...modelOptions(a), changes: inputs.changes }, file, iface, workers, script!, wantCt, tty);
    if (r.shared) {
      if (file === '-') throw new NfvmError('value', `${r.shared}: a replay split over ${workers} workers could differ from one node's, and stdin cannot be read again: replay with --workers 1`, '<stdin>', undefined, undefined);
      if (explicit) process.stderr.write(`nfvm replay: ${r.shared}: state shared across connections, replaying on one thread\n`);
    } else {
      out = {
        summary: r.summary, now: r.now, noSockets: r.noSockets, size: r.size,
        counters: (fam, table) => (fam === 'ip6' ? r.counters6 : r.counters4).get(table),
        conntrack: () => ({ count: r.conntrack.length, entries: () => r.conntrack }),
      };
    }
  }
  out ??= replayOne(model, file, iface, tty, () => loadModel(dir, a, inputs));
  if (out.model) model = out.model;
  const s = out.summary;
  if (out.noSockets) s.notes.push(`${dir}: no ss.txt in the snapshot: every TCP and UDP port is assumed closed`);
  const xfrmNote = xfrmPolicyNote(dir, model.node);
  if (xfrmNote !== undefined) s.notes.push(xfrmNote);
  if (tty) process.stderr.write(`\r\x1b[K${progressText(out.size, out.size, s.frames, s.seconds)}\n${summaryText(s)}\n`);
  if (save === 'ipset' && !a.flag('json') && !a.flag('conntrack')) return saveIpsets(model.ipsets);
  const procs = (prefix: string) => xtProcFiles(model.xt, prefix).map((f) => ({ path: f.procPath, lines: f.procLines(model.xt) }));
  if (save === 'recent' || save === 'hashlimit') {
    if (a.flag('conntrack')) throw new UsageError(`--conntrack prints the conntrack table, --save ${save} the ${save} tables: give one`);
    const files = save === 'recent' ? procs('/proc/net/xt_recent/') : [...procs('/proc/net/ipt_hashlimit/'), ...procs('/proc/net/ip6t_hashlimit/')];
    if (a.flag('json')) return jsonDoc({ schema: 1, snapshot: dir, pcap: file, engine: a.str('engine') ?? 'vm', summary: s, [save]: files });
    return files.map((f) => `# ${f.path}\n${f.lines.map((l) => `${l}\n`).join('')}`).join('');
  }
  if (save === 'ipvs') return saveIpvs(model, a.flag('json'), a.flag('conntrack'));
  if (save === 'nfacct') {
    if (a.flag('json') || a.flag('conntrack')) throw new UsageError(`--save nfacct prints the accounting objects as \`nfacct list\` does: without ${a.flag('json') ? '--json' : '--conntrack'}`);
    if (!model.nfacct) throw new NfvmError('io', 'no nfacct.txt in the snapshot (`nfacct list`)', model.node.dir, undefined, undefined);
    return nfacctList(model.nfacct);
  }
  if (save === 'ebtables') return saveEbtables(model, a.flag('json'), a.flag('conntrack'), { schema: 1, snapshot: dir, pcap: file, engine: a.str('engine') ?? 'vm', summary: s });
  if (!(family === 'ip6' ? model.rs6 : model.rs4)) throw new NfvmError('io', `no ${save}-save.txt in the snapshot`, model.node.dir, undefined, undefined);
  const ct = model.conntrackTable;
  if (!a.flag('json') && a.flag('conntrack')) {
    if (!ct) throw new UsageError('--conntrack: the node does not run conntrack (no ruleset of it loads it)');
    const listing = out.conntrack();
    if (tty) process.stderr.write(`${conntrackSummary(listing.count)}\n`);
    return linePieces(ctLines(listing.entries()));
  }
  const counters = out.counters;
  const rs = model.rulesetWithCounters(family, counters && ((t) => counters(family, t)))!;
  // the listing in pieces as it is written: a 1,000,000-rule node's is 140 MB of text, which is never held whole
  if (!a.flag('json')) return saveChunks(rs, { counters: true });
  const listing = ct ? out.conntrack() : undefined;
  return jsonPieces({
    schema: 1, snapshot: dir, pcap: file, family, backend: family === 'ip6' ? model.backend6 : model.backend,
    engine: a.str('engine') ?? 'vm', summary: s, tables: rulesetJson(rs), text: new JsonText(() => saveChunks(rs, { counters: true })),
    ...(listing ? { conntrack: new JsonStream(listing.entries) } : {}),
  });
}

/**
 * A node with a bridge replays on one thread: its forwarding database
 * learns from every connection's frames, and the ebtables counters live in
 * the one node.
 */
function bridgeReason(model: NodeModel): string | undefined {
  return model.bridge ? `bridge ${[...model.bridge.bridges.keys()].join(', ')} (its forwarding database learns from every connection's frames)` : undefined;
}

/**
 * `--save ipvs`: the virtual services with their counters as `ipvsadm -L -n
 * --stats` prints them, then the connection table as `ipvsadm -L -n -c`.
 */
function saveIpvs(model: NodeModel, json: boolean, conntrack: boolean): string {
  if (json || conntrack) throw new UsageError(`--save ipvs prints the IPVS services and connections as ipvsadm does: without ${json ? '--json' : '--conntrack'}`);
  const ipvs = model.ipvs;
  if (!ipvs) throw new NfvmError('io', 'no virtual service in the snapshot (ipvsadm-save.txt)', model.node.dir, undefined, undefined);
  return formatIpvsStats(ipvs.services) + ipvs.connList();
}

/** `--save ebtables`: the bridge tables after the replay with their counters, as `ebtables-save -c` prints them. */
function saveEbtables(model: NodeModel, json: boolean, conntrack: boolean, head: Record<string, unknown>): string {
  if (conntrack) throw new UsageError('--conntrack prints the conntrack table, --save ebtables the bridge tables: give one');
  const rs = ebtablesWithCounters(model);
  if (!rs) throw new NfvmError('io', 'no ebtables-save.txt in the snapshot', model.node.dir, undefined, undefined);
  const text = saveEbtRuleset(rs, { counters: true });
  return json ? jsonDoc({ ...head, family: 'bridge', backend: model.ebBackend, text }) : text;
}

/**
 * The capture through `model` on this thread. A capture whose frames can
 * say they left the node (pcapng, SLL) may show what the node sent, which
 * is then paired with what the model sent (hooks/outgoing.ts): that
 * needs every packet the model sends kept in a lookback until the first
 * outgoing frame, a copy per frame. A file is replayed without it until an
 * outgoing frame appears, and from the start again, on a model built
 * afresh (`fresh`), with it from then on; stdin, read once, keeps the
 * lookback from the start.
 */
function replayOne(model: NodeModel, file: string, iface: string | undefined, tty: boolean, fresh: () => NodeModel): ReplayOutcome {
  let cap = openCapture(file);
  const size = cap.size;
  let lazy = cap.directional && file !== '-';
  let rep = new Replayer(model, cap.directional && !lazy);
  const t0 = performance.now();
  let last = t0;
  let n = 0;
  try {
    for (let f = cap.next(); f; f = cap.next()) {
      if (lazy && isOutgoing(f)) {
        lazy = false;
        cap.close();
        cap = openCapture(file);
        model = fresh();
        rep = new Replayer(model, true);
        n = 0;
        continue;
      }
      n++;
      rep.frame(f, frameIface(model, f, iface, file, n), n);
      if (tty && (n & 255) === 0) {
        const now = performance.now();
        if (now - last >= 100) {
          last = now;
          process.stderr.write(`\r\x1b[K${progressText(f.offset, size, n, (now - t0) / 1000)}`);
        }
      }
    }
  } finally {
    cap.close();
  }
  const s = rep.finish();
  s.seconds = (performance.now() - t0) / 1000;
  const ct = model.conntrackTable;
  const now = rep.now ?? 0;
  return {
    summary: s, counters: undefined, noSockets: model.stack.noSocketTableUsed, now, size, model,
    conntrack: () => {
      const ids = ct ? ct.dump(now) : [];
      return {
        count: ids.length,
        entries: function* () {
          for (const e of ids) yield conntrackEntry(ct!, e);
        },
      };
    },
  };
}

/**
 * The capture spread over `workers` worker threads by connection
 * (replay-workers.ts): a file is read by every worker, each replaying its
 * share; stdin is read here and its frames handed to the workers.
 */
function replaySharded(
  model: NodeModel, source: SnapshotSource, opts: NodeModelOptions, file: string, iface: string | undefined, workers: number, script: URL, wantCt: boolean, tty: boolean,
): ShardedResult & { now: number; size: number } {
  const cap = openCapture(file);
  const size = cap.size;
  const devs = [...model.node.links.keys()];
  const ctMax = model.conntrackTable?.sysctl.max ?? 0;
  const t0 = performance.now();
  if (file !== '-') {
    const directional = cap.directional;
    cap.close();
    const sh = new ShardedReplay(workers, script, source, opts, directional, devs, ctMax, { path: file, iface, conntrack: wantCt });
    const tick = tty
      ? () => process.stderr.write(`\r\x1b[K${progressText(sh.progress[1]!, size, sh.progress[0]!, (performance.now() - t0) / 1000)}`)
      : undefined;
    const r = sh.finish(0, wantCt, tick);
    r.summary.seconds = (performance.now() - t0) / 1000;
    return { ...r, size };
  }
  const sh = new ShardedReplay(workers, script, source, opts, cap.directional, devs, ctMax);
  let last = t0;
  let n = 0;
  let now = 0;
  let seen = false;
  try {
    for (let f = cap.next(); f; f = cap.next()) {
      n++;
      sh.frame(f, frameIface(model, f, iface, file, n), n);
      if (!isOutgoing(f)) {
        now = f.tsSec * 1e9 + f.tsNsec;
        seen = true;
      }
      if (tty && (n & 255) === 0) {
        const t = performance.now();
        if (t - last >= 100) {
          last = t;
          process.stderr.write(`\r\x1b[K${progressText(f.offset, size, n, (t - t0) / 1000)}`);
        }
      }
    }
  } catch (e) {
    sh.terminate();
    throw e;
  } finally {
    cap.close();
  }
  const r = sh.finish(seen ? now : 0, wantCt);
  r.summary.seconds = (performance.now() - t0) / 1000;
  return { ...r, now, size };
}
