/**
 * `nfvm replay --workers N`: the capture's frames spread over N worker
 * threads by connection (hooks/input/rss.ts: both directions of a
 * connection, and the ICMP errors about it, to one worker, in capture
 * order), each worker a node model of its own (engines, conntrack
 * partition) running the bundled code; their counters, summaries and
 * conntrack tables merged at the end into what one node replaying the
 * whole capture shows.
 *
 * That holds while no state is shared between connections. What shares it
 * is refused before the start when the ruleset says so (sharedStateReason:
 * NAT, rate limits, counters across packets, random draws, sets written by
 * rules, expectations), and detected during the run otherwise: a fragment
 * or an unreadable ICMP error (their connection is unknown before
 * nf_defrag / conntrack see them), an answer of the node's stack (rate
 * limits and IP IDs common to all connections), a draw from the node's
 * random source, a conntrack table that could have been full
 * (nf_conntrack_max), outgoing frames past the lookback. The caller then
 * replays on one thread.
 *
 * The main thread reads the capture, hashes each frame and copies it into
 * its worker's batch; a batch is handed over (transferred) when full, at
 * most MAX_INFLIGHT batches per worker wait, so memory stays flat. The
 * main thread stays synchronous: it waits on a shared counter
 * (Atomics.wait) and takes the results with receiveMessageOnPort().
 */
import { MessageChannel, Worker, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { NfvmError, type ErrorKind } from '../core/errors.js';
import type { Ruleset } from '../core/ast.js';
import type { Count } from '../engine/engine.js';
import { buildNodeModel, type NodeModel, type NodeModelOptions, type TableCounters } from '../hooks/node.js';
import { readSource, type SnapshotSource } from './model.js';
import { CaptureError, StreamFrame, isOutgoing, openCapture, type Frame } from '../hooks/input/capture.js';
import { frameConnectionHash, shardOf, SHARD_UNKNOWN } from '../hooks/input/rss.js';
import { conntrackEntry, type CtEntryJson } from '../hooks/conntrack/print.js';
import { Xorshift32 } from '../vm/random.js';
import { MIN_CHAINLEN } from '../hooks/conntrack/core.js';
import { Replayer, type ReplaySummary } from './replay-run.js';
import { frameIface } from './model.js';

/** Bytes of frames handed to a worker at a time. */
const BATCH = 256 << 10;
/** Batches a worker may have waiting before the reader waits for it. */
const MAX_INFLIGHT = 4;
/** The record header of a frame in a batch. */
const REC = 40;
/** Births per frame a worker's conntrack may give (the frame and its answers). */
const BIRTHS_PER_FRAME = 64;

/** Matches whose state spans connections, by name: a run split by connection would not see it whole. */
const SHARED_MATCHES: ReadonlyMap<string, string> = new Map([
  ['statistic', 'statistic (nth counters and random draws shared by every connection)'],
  ['quota', 'quota (one byte count for every connection)'],
  ['limit', 'limit (one token bucket for every connection)'],
  ['hashlimit', 'hashlimit (buckets shared by the connections of a group)'],
  ['recent', 'recent (address lists every connection writes)'],
  ['connlimit', 'connlimit (counts the connections of an address or network)'],
  ['nfacct', 'nfacct (one counter for every connection)'],
  ['rateest', 'rateest (rates measured over every connection)'],
  ['helper', 'helper (expectations relate one connection to another)'],
]);

/** Targets whose state spans connections. */
const SHARED_TARGETS: ReadonlyMap<string, string> = new Map([
  ['SET', 'SET (sets that rules write and every connection reads)'],
  ['RATEEST', 'RATEEST (rates measured over every connection)'],
  ['IDLETIMER', 'IDLETIMER (one timer for every connection)'],
  ['LED', 'LED (one trigger for every connection)'],
  // CT only with --helper: --notrack, --zone, --ctevents and --timeout concern the connection itself
  ['CT', 'CT --helper (helpers set up expectations relating connections)'],
  ['SYNPROXY', 'SYNPROXY (cookies and the node\'s answers)'],
  ['TEE', 'TEE (clones sent by the node)'],
  ['REJECT', 'REJECT (the node\'s answers share rate limits and IP IDs across connections)'],
]);

/**
 * Why the rulesets of `model` make a replay split by connection differ
 * from one node's, or undefined: NAT (port choice across connections, the
 * reply direction carrying other addresses), a shared-state match or target.
 */
export function sharedStateReason(model: NodeModel): string | undefined {
  // A set only matched against (SET, which writes one, is refused below) holds no state; its element
  // counters and timeouts do (updated by every connection's packets, expiring on the node's one clock).
  const live = model.ipsets.sets.find((s) => s.opts.counters || s.opts.timeout !== undefined);
  if (live) return `ipset ${live.name} (its ${live.opts.counters ? 'counters' : 'timeouts'} are shared by every connection)`;
  if (model.ipvs) return 'IPVS (its schedulers and connection table are shared by every connection)';
  for (const rs of [model.rs4, model.rs6]) {
    if (!rs) continue;
    if (rs.tables.has('nat') && model.conntrackModule) return 'the nat table (NAT rewrites a connection\'s reply addresses and chooses ports across connections)';
    const r = rulesetReason(rs);
    if (r) return r;
  }
  return undefined;
}

function rulesetReason(rs: Ruleset): string | undefined {
  for (const [tname, table] of rs.tables) {
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        for (const m of rule.matches) {
          const why = SHARED_MATCHES.get(m.name);
          if (why) return `${tname}:${chain.name}: -m ${why}`;
        }
        const t = rule.target;
        if (t.kind === 'ext' || t.kind === 'unknown') {
          const why = SHARED_TARGETS.get(t.name);
          if (why && (t.name !== 'CT' || t.kind !== 'ext' || (t.data as { helper?: string } | undefined)?.helper !== '')) return `${tname}:${chain.name}: -j ${why}`;
        }
      }
    }
  }
  return undefined;
}

/** A worker's setup (workerData). */
interface WorkerSetup {
  nfvmReplayWorker: 1;
  index: number;
  snapshot: SnapshotSource;
  opts: NodeModelOptions;
  directional: boolean;
  devs: string[];
  signal: SharedArrayBuffer;
  port: MessagePort;
  /** Set when the worker reads the capture file itself and replays the frames of its share (FileShare). */
  file: FileShare | undefined;
}

/**
 * A worker that reads the capture itself: every worker reads the whole
 * file, hashes each frame (frameConnectionHash) and replays those of its
 * share; no frame crosses threads. A pipe cannot be read by several
 * readers: stdin goes through the main thread's batches.
 */
interface FileShare {
  path: string;
  iface: string | undefined;
  workers: number;
  /** The conntrack table is wanted in the result. */
  conntrack: boolean;
  /** Float64Array over it: [0] frames read, [1] bytes read (worker 0 writes it, for the progress line). */
  progress: SharedArrayBuffer;
}

/** One conntrack of a worker's table as listed, with its birth number. */
interface CtRow {
  born: number;
  json: CtEntryJson;
}

/** What a worker sends back at the end. */
interface WorkerResult {
  summary: ReplaySummary;
  counters4: [string, [string, { rules: Count[]; policy: Count | undefined }][]][];
  counters6: [string, [string, { rules: Count[]; policy: Count | undefined }][]][];
  noSockets: boolean;
  /** Why its share could differ from the whole capture's, '' when it cannot. */
  shared: string;
  ctPeak: number;
  /** The longest conntrack hash chain it made. */
  ctChain: number;
  conntrack: CtRow[];
  /** A worker reading the file: the time of the last frame received (ns; 0 when none was). */
  now: number;
}

interface EndMessage {
  end: true;
  now: number;
  conntrack: boolean;
  /** The devices the capture saw frames leave by. */
  outDevs: string[];
}

/** Whether this thread is a replay worker (cli/main.ts runs replayWorker() instead of the command line). */
export function isReplayWorker(): boolean {
  return (workerData as Partial<WorkerSetup> | null)?.nfvmReplayWorker === 1;
}

function tableCounters(m: Map<string, TableCounters extends Map<string, infer V> ? V : never>): [string, { rules: Count[]; policy: Count | undefined }][] {
  return [...m].map(([c, v]) => [c, { rules: v.rules.map((x) => ({ packets: x.packets, bytes: x.bytes })), policy: v.policy && { packets: v.policy.packets, bytes: v.policy.bytes } }]);
}

/**
 * The state of the node's random source started at `state` after `n`
 * draws: what it is when conntrack's chain length limit was its only user.
 */
function afterDraws(state: number, n: number): number {
  const r = new Xorshift32();
  r.state[0] = state;
  for (let i = 0; i < n; i++) r.next();
  return r.state[0]!;
}

/** The worker thread: a node model fed the batches of frames it is given. */
export function replayWorker(): void {
  const d = workerData as WorkerSetup;
  const sig = new Int32Array(d.signal);
  const port = d.port;
  const done = () => {
    Atomics.store(sig, 2 * d.index + 1, 1);
    Atomics.notify(sig, 2 * d.index + 1);
  };
  let rep: Replayer;
  let rng0 = 0;
  try {
    const model = buildNodeModel(readSource(d.snapshot), d.opts);
    rep = new Replayer(model, d.directional);
    rng0 = model.random.state[0]!;
  } catch (e) {
    port.postMessage({ error: errorData(e) });
    done();
    return;
  }
  const f = new StreamFrame();
  let ct = rep.model.conntrackTable;
  /** What the worker sends at the end of its frames. */
  const resultOf = (end: EndMessage, readShared: string): WorkerResult => {
    const model = rep.model;
    const s = rep.finish(end.outDevs);
    // What the reading found first, then what replaying did.
    let shared = readShared;
    if (!shared && rep.answered) shared = 'the node\'s stack answered frames (its rate limits and IP IDs are shared by all connections)';
    else if (!shared && model.random.state[0] !== afterDraws(rng0, ct ? ct.chainDraws : 0)) shared = 'the node drew from its random source (one sequence for every connection)';
    else if (!shared && rep.lookback && rep.lookback.matcher.overflow) shared = 'outgoing frames waited past the lookback of what the node sent';
    const rows: CtRow[] = [];
    if (ct && end.conntrack) for (const e of ct.dump(end.now)) {
      const json = conntrackEntry(ct, e);
      rows.push({ born: ct.born[e]!, json });
    }
    const counters = (engines: NodeModel['engines']) => [...engines].map(([t, e]) => [t, tableCounters(e.counters())] as [string, [string, { rules: Count[]; policy: Count | undefined }][]]);
    return {
      summary: s, counters4: counters(model.engines), counters6: counters(model.engines6), noSockets: model.stack.noSocketTableUsed,
      shared, ctPeak: ct ? ct.peak : 0, ctChain: ct ? ct.longestChain : 0, conntrack: rows, now: end.now,
    };
  };
  if (d.file) {
    try {
      const fresh = () => {
        const model = buildNodeModel(readSource(d.snapshot), d.opts);
        rng0 = model.random.state[0]!;
        return new Replayer(model, true);
      };
      const r = replayShare(d.file, d.index, rep, fresh);
      rep = r.rep;
      ct = rep.model.conntrackTable;
      port.postMessage(resultOf(r.end, r.shared));
    } catch (e) {
      port.postMessage({ error: errorData(e) });
    }
    done();
    port.close();
    return;
  }
  port.on('message', (msg: ArrayBuffer | EndMessage) => {
    try {
      if (msg instanceof ArrayBuffer) {
        const bytes = new Uint8Array(msg);
        const dv = new DataView(msg);
        const end = dv.getUint32(0, true);
        let at = 8;
        while (at < end) {
          const n = dv.getFloat64(at, true);
          const caplen = dv.getUint32(at + 28, true);
          f.reset(bytes, at + REC, caplen, dv.getInt32(at + 16, true), 0);
          f.tsSec = dv.getFloat64(at + 8, true);
          f.tsNsec = dv.getUint32(at + 20, true);
          f.flags = dv.getUint32(at + 24, true);
          f.pkttype = dv.getInt16(at + 32, true);
          f.protocol = dv.getInt32(at + 36, true) === -1 ? -1 : dv.getInt32(at + 36, true);
          const dev = d.devs[dv.getUint16(at + 34, true)]!;
          if (ct) ct.births = n * BIRTHS_PER_FRAME;
          rep.frame(f, dev, n);
          at += REC + ((caplen + 7) & ~7);
        }
        Atomics.add(sig, 2 * d.index, 1);
        Atomics.notify(sig, 2 * d.index);
        return;
      }
      const result = resultOf(msg, '');
      port.postMessage(result);
      done();
      port.close();
    } catch (e) {
      port.postMessage({ error: errorData(e) });
      done();
      port.close();
    }
  });
}

/**
 * The frames of worker `index`'s share of the capture file, replayed by
 * `rep` as they come: every frame is read and hashed, the others skipped.
 * Every worker sees every frame, so each knows what the reader of a
 * batched replay would tell it: the devices frames left by, the time of
 * the last frame received, a frame no connection can be told for.
 */
function replayShare(sh: FileShare, index: number, first: Replayer, fresh: () => Replayer): { end: EndMessage; shared: string; rep: Replayer } {
  let rep = first;
  let model = rep.model;
  let ct = model.conntrackTable;
  let cap = openCapture(sh.path);
  // As replayOne() (cli/replay.ts): without the lookback of what the node sent until a frame shows it leaving.
  let lazy = rep.lookback !== undefined;
  if (lazy) rep = new Replayer(model, false);
  const progress = index === 0 ? new Float64Array(sh.progress) : undefined;
  const outDevs = new Set<string>();
  const n = sh.workers;
  let shared = '';
  let frames = 0;
  let now = 0;
  let seen = false;
  try {
    for (let f = cap.next(); f; f = cap.next()) {
      if (lazy && isOutgoing(f)) {
        lazy = false;
        cap.close();
        cap = openCapture(sh.path);
        rep = fresh();
        model = rep.model;
        ct = model.conntrackTable;
        frames = 0;
        shared = '';
        outDevs.clear();
        now = 0;
        seen = false;
        continue;
      }
      frames++;
      const dev = frameIface(model, f, sh.iface, sh.path, frames);
      if (isOutgoing(f)) outDevs.add(dev);
      else {
        now = f.tsSec * 1e9 + f.tsNsec;
        seen = true;
      }
      if (progress && (frames & 1023) === 0) {
        progress[0] = frames;
        progress[1] = f.offset;
      }
      const h = frameConnectionHash(f.bytes, f.at, f.caplen, f.linktype, f.protocol);
      let w = 0;
      if (h === SHARD_UNKNOWN) {
        if (!shared) shared = unknownShard(frames);
      } else w = shardOf(h, n);
      if (w !== index) continue;
      if (ct) ct.births = frames * BIRTHS_PER_FRAME;
      rep.frame(f, dev, frames);
    }
  } finally {
    cap.close();
  }
  return { end: { end: true, now: seen ? now : 0, conntrack: sh.conntrack, outDevs: [...outDevs] }, shared, rep };
}

function unknownShard(n: number): string {
  return `frame ${n} is an IP fragment or an ICMP error nfvm cannot place (its connection is known only after nf_defrag or conntrack)`;
}

interface ErrorData {
  nfvm: boolean;
  kind: ErrorKind;
  message: string;
  /** An NfvmError's parts, to raise it again as it was. */
  reason?: string;
  file?: string;
  pos?: NfvmError['pos'];
  token?: string | undefined;
  /** A CaptureError's byte offset. */
  offset?: number;
}

function errorData(e: unknown): ErrorData {
  if (e instanceof CaptureError) return { nfvm: true, kind: e.kind, message: e.message, reason: e.reason, file: e.file, offset: e.offset, token: e.token };
  if (e instanceof NfvmError) return { nfvm: true, kind: e.kind, message: e.message, reason: e.reason, file: e.file, pos: e.pos, token: e.token };
  return { nfvm: false, kind: 'io', message: (e as Error)?.stack ?? String(e) };
}

/** The error a worker sent, as the main thread raises it. */
function raised(e: ErrorData | undefined, fallback: string): Error {
  if (!e) return new Error(fallback);
  if (!e.nfvm) return new Error(e.message);
  if (e.offset !== undefined) return new CaptureError(e.kind, e.reason!, e.file!, e.offset, e.token);
  if (e.reason !== undefined) return new NfvmError(e.kind, e.reason, e.file!, e.pos, e.token);
  return new NfvmError(e.kind, e.message, '', undefined, undefined);
}

/** The merged result of a sharded replay. */
export interface ShardedResult {
  summary: ReplaySummary;
  counters4: Map<string, TableCounters>;
  counters6: Map<string, TableCounters>;
  noSockets: boolean;
  /** Why the result could differ from one node's, '' when it cannot. */
  shared: string;
  /** The conntrack table (when asked for), in the order one node lists it; the caller makes its lines (conntrackLine). */
  conntrack: CtEntryJson[];
  /** The time of the last frame received (ns), as the workers saw it. */
  now: number;
}

/** The reader's side: N workers, a batch being filled for each. */
export class ShardedReplay {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly sig: Int32Array;
  private readonly batch: Uint8Array[] = [];
  private readonly dv: DataView[] = [];
  private readonly fill: number[] = [];
  private readonly sent: number[] = [];
  private readonly devIndex = new Map<string, number>();
  /** Why the run cannot stand for one node's, found while reading ('' while none). */
  shared = '';
  /** The devices outgoing frames were seen on. */
  private readonly outDevs = new Set<string>();
  /** The workers read the capture themselves. */
  private readonly reading: boolean;
  /** [0] frames, [1] bytes of the capture read by worker 0 (when the workers read it). */
  readonly progress: Float64Array;

  constructor(
    readonly n: number,
    script: URL,
    snapshot: SnapshotSource,
    opts: NodeModelOptions,
    directional: boolean,
    devs: string[],
    private readonly ctMax: number,
    /** The capture file each worker reads itself (FileShare); undefined: the caller reads it and hands frames over (frame()). */
    file?: { path: string; iface: string | undefined; conntrack: boolean },
  ) {
    devs.forEach((d, i) => this.devIndex.set(d, i));
    const signal = new SharedArrayBuffer(8 * n);
    this.sig = new Int32Array(signal);
    const progress = new SharedArrayBuffer(16);
    this.progress = new Float64Array(progress);
    this.reading = file !== undefined;
    for (let i = 0; i < n; i++) {
      const ch = new MessageChannel();
      const share: FileShare | undefined = file && { ...file, workers: n, progress };
      const setup: WorkerSetup = { nfvmReplayWorker: 1, index: i, snapshot, opts, directional, devs, signal, port: ch.port2, file: share };
      const w = new Worker(script, { workerData: setup, transferList: [ch.port2], stdout: false, stderr: false });
      w.unref();
      this.workers.push(w);
      this.ports.push(ch.port1);
      this.newBatch(i);
      this.sent.push(0);
    }
  }

  private newBatch(i: number, size = BATCH): void {
    const b = new Uint8Array(size);
    this.batch[i] = b;
    this.dv[i] = new DataView(b.buffer);
    this.fill[i] = 8;
  }

  /** Frame number `n` of the capture, on or leaving `dev`: to the worker of its connection. */
  frame(f: Frame, dev: string, n: number): void {
    if (isOutgoing(f)) this.outDevs.add(dev);
    const data = f instanceof StreamFrame ? f.bytes : f.data;
    const at = f instanceof StreamFrame ? f.at : 0;
    const caplen = f instanceof StreamFrame ? f.caplen : f.data.length;
    let w = 0;
    const h = frameConnectionHash(data, at, caplen, f.linktype, f.protocol);
    if (h === SHARD_UNKNOWN) {
      if (!this.shared) this.shared = unknownShard(n);
    } else w = shardOf(h, this.n);
    const need = REC + ((caplen + 7) & ~7);
    if (this.fill[w]! + need > this.batch[w]!.length) {
      this.flush(w);
      // A frame larger than a batch travels in one of its own.
      if (8 + need > BATCH) this.newBatch(w, 8 + need);
    }
    const dv = this.dv[w]!;
    const p = this.fill[w]!;
    dv.setFloat64(p, n, true);
    dv.setFloat64(p + 8, f.tsSec, true);
    dv.setInt32(p + 16, f.linktype, true);
    dv.setUint32(p + 20, f.tsNsec, true);
    dv.setUint32(p + 24, f.flags >>> 0, true);
    dv.setUint32(p + 28, caplen, true);
    dv.setInt16(p + 32, f.pkttype, true);
    dv.setUint16(p + 34, this.devIndex.get(dev)!, true);
    dv.setInt32(p + 36, f.protocol, true);
    const b = this.batch[w]!;
    const to = p + REC;
    if (caplen <= 256) for (let i = 0; i < caplen; i++) b[to + i] = data[at + i]!;
    else b.set(data.subarray(at, at + caplen), to);
    this.fill[w] = p + need;
  }

  private flush(w: number): void {
    const b = this.batch[w]!;
    this.dv[w]!.setUint32(0, this.fill[w]!, true);
    this.ports[w]!.postMessage(b.buffer, [b.buffer as ArrayBuffer]);
    this.sent[w]!++;
    this.newBatch(w);
    // Wait while the worker has MAX_INFLIGHT batches in hand.
    for (;;) {
      const done = Atomics.load(this.sig, 2 * w);
      if (this.sent[w]! - done <= MAX_INFLIGHT) break;
      this.check(w);
      Atomics.wait(this.sig, 2 * w, done, 200);
    }
  }

  /** Throws the error of worker `w` if it has stopped early. */
  private check(w: number): void {
    if (Atomics.load(this.sig, 2 * w + 1) !== 1) return;
    const m = receiveMessageOnPort(this.ports[w]!);
    const msg = m?.message as { error?: ErrorData } | undefined;
    this.terminate();
    throw raised(msg?.error, `replay worker ${w} stopped`);
  }

  /** Sends the last batches and the end, waits for every worker, merges their results. */
  finish(now: number, conntrack: boolean, tick?: () => void): ShardedResult {
    if (!this.reading) {
      for (let w = 0; w < this.n; w++) {
        this.flush(w);
        const end: EndMessage = { end: true, now, conntrack, outDevs: [...this.outDevs] };
        this.ports[w]!.postMessage(end);
      }
    }
    const results: WorkerResult[] = [];
    for (let w = 0; w < this.n; w++) {
      while (Atomics.load(this.sig, 2 * w + 1) !== 1) {
        Atomics.wait(this.sig, 2 * w + 1, 0, tick ? 100 : 200);
        tick?.();
      }
      const m = receiveMessageOnPort(this.ports[w]!);
      const msg = m?.message as WorkerResult | { error: ErrorData } | undefined;
      if (!msg || 'error' in msg) {
        this.terminate();
        throw raised(msg && 'error' in msg ? msg.error : undefined, `replay worker ${w} sent nothing`);
      }
      results.push(msg);
    }
    this.terminate();
    return this.merge(results);
  }

  terminate(): void {
    for (const p of this.ports) p.close();
    for (const w of this.workers) void w.terminate();
  }

  private merge(rs: WorkerResult[]): ShardedResult {
    const s = rs[0]!.summary;
    const kernel = new Map<string, number>(Object.entries(s.kernelDrops));
    const byKind = new Map<string, number>(Object.entries(s.answers.byKind));
    for (const r of rs.slice(1)) {
      const t = r.summary;
      for (const k of ['frames', 'delivered', 'forwarded', 'sent', 'dropped', 'rejected', 'queued', 'stolen', 'bridged', 'notForThisHost', 'outgoing', 'notIp', 'tooLarge'] as const) s[k] += t[k];
      for (const [k, v] of Object.entries(t.kernelDrops)) kernel.set(k, (kernel.get(k) ?? 0) + v);
      s.answers.sent += t.answers.sent;
      s.answers.notSent += t.answers.notSent;
      s.clones.sent += t.clones.sent;
      s.clones.notSent += t.clones.notSent;
      for (const [k, v] of Object.entries(t.answers.byKind)) byKind.set(k, (byKind.get(k) ?? 0) + v);
      const o = t.outgoingMatch;
      if (o) {
        const m = (s.outgoingMatch ??= { identical: 0, kernelFields: 0, differ: 0, notEmitted: 0, notCaptured: 0, frames: [] });
        m.identical += o.identical;
        m.kernelFields += o.kernelFields;
        m.differ += o.differ;
        m.notEmitted += o.notEmitted;
        m.notCaptured += o.notCaptured;
        m.frames = [...m.frames, ...o.frames].sort((a, b) => a.frame - b.frame).slice(0, 100);
      }
    }
    s.kernelDrops = Object.fromEntries([...kernel].sort(([x], [y]) => (x < y ? -1 : 1)));
    s.answers.byKind = Object.fromEntries(byKind);
    let shared = this.shared || rs.find((r) => r.shared)?.shared || '';
    const peaks = rs.reduce((n, r) => n + r.ctPeak, 0);
    if (!shared && this.ctMax && peaks >= this.ctMax) shared = `the workers' conntrack tables together reached nf_conntrack_max (${this.ctMax}), where one table drops or evicts`;
    // The chain length limit draws from the node's random source at every confirm; it decides nothing while chains stay short.
    if (!shared && rs.reduce((n, r) => n + r.ctChain, 0) >= MIN_CHAINLEN) shared = 'the conntrack hash chains grew long enough for the random chain length limit to matter';
    const sum = (key: 'counters4' | 'counters6') => {
      const out = new Map<string, TableCounters>();
      for (const r of rs) {
        for (const [table, chains] of r[key]) {
          let t = out.get(table);
          if (!t) out.set(table, (t = new Map()));
          for (const [chain, c] of chains) {
            const have = t.get(chain);
            if (!have) {
              t.set(chain, c);
              continue;
            }
            c.rules.forEach((x, i) => {
              have.rules[i]!.packets += x.packets;
              have.rules[i]!.bytes += x.bytes;
            });
            if (have.policy && c.policy) {
              have.policy.packets += c.policy.packets;
              have.policy.bytes += c.policy.bytes;
            }
          }
        }
      }
      return out;
    };
    const rows = rs.flatMap((r) => r.conntrack).sort((a, b) => a.born - b.born);
    return {
      summary: s, counters4: sum('counters4'), counters6: sum('counters6'), noSockets: rs.some((r) => r.noSockets), shared,
      conntrack: rows.map((r) => r.json), now: rs[0]!.now,
    };
  }
}
