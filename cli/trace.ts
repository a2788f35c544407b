/**
 * `nfvm trace SNAPSHOT --packet SPEC` (or `--pcap FILE [--index N]`): one
 * packet through the node, every rule and policy it meets as kernel TRACE
 * lines (ip_tables.c trace_packet() + nf_log_syslog), each followed by the
 * rule as iptables-save prints it, the routing decisions as `# ` notes, the
 * packets the node's stack sends in answer (their own TRACE lines through
 * OUTPUT and POSTROUTING, and their fate), then its fate in words.
 * `--all-branches` runs it through every outcome of its random decisions
 * and lists each outcome with its probability. `--json` prints the same as
 * one JSON document.
 */
import { NfvmError } from '../core/errors.js';
import { fateText, type AnswerResult, type Fate, type PathResult, type PathStep } from '../hooks/path/fate.js';
import { parseSpec } from '../hooks/input/spec.js';
import { conntrackList, conntrackListJson, conntrackSummary } from '../hooks/conntrack/index.js';
import { isOutgoing, loadFrame, readCaptureFile, type Frame } from '../hooks/input/capture.js';
import { DEFAULT_MAX_BRANCHES, exploreBranches, type Exploration } from '../hooks/branches.js';
import type { NodeModel } from '../hooks/node.js';
import { Packet } from '../vm/packet.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { useColour } from './io.js';
import { jsonDoc } from './json.js';
import { MODEL_OPTIONS, MODEL_USAGE, checkIface, frameIface, loadModel, modelInputs, noSocketsWarning, replyTo, specInput, xfrmPolicyNote } from './model.js';

export const TRACE: CommandSpec = {
  name: 'trace',
  usage: `  nfvm trace SNAPSHOT (--packet SPEC [--packet SPEC|reply ...] [--time T] | --pcap FILE [--index N] [--iface NAME])
             [--all-branches [--max-branches N]] ${MODEL_USAGE} [--conntrack] [--json]
      Send packets through the node of snapshot directory SNAPSHOT and print
      every rule and policy each meets as kernel TRACE lines, each with the
      rule as iptables-save prints it, the routing decisions, the packet's
      connection at each hook and each NAT rewrite as "# " notes, the
      packets the node sends in answer (ICMP errors and echo replies, TCP
      resets, what REJECT sends: their TRACE lines through OUTPUT and
      POSTROUTING and where they go), then its fate (DNAT to ADDR:PORT,
      forwarded out DEV via GW; delivered locally [to a listening socket];
      dropped by TABLE:CHAIN rule N; rejected ... with
      icmp-port-unreachable; ...). SPEC is a packet spec (README "Packet
      input"): "iif DEV" makes it arrive on DEV (the destination MAC defaults
      to DEV's), "from local" sends it from the node. Several --packet go
      through the same node in order, 1 ms apart, sharing its conntrack
      table; "--packet reply" is the answer to the packet before as it left
      the node (arriving on the device it left by). --conntrack prints the
      table afterwards as conntrack -L does. --index picks the Nth frame of
      the capture (from 1); a frame the capture saw leave the node is not
      traced. --all-branches: every outcome of the random decisions
      (statistic --mode random, NAT port choices are seeded) of the last
      packet, and of those before it, with its probability, exploring at
      most --max-branches branches (default ${DEFAULT_MAX_BRANCHES}).
      --time T sets the clock of the first packet (the others follow 1 ms
      apart; default the epoch): the time match reads it, and limit,
      hashlimit and recent count jiffies on it (--hz, default 250). T is UTC
      as YYYY-MM-DDThh:mm[:ss[.frac]][Z], or @SECONDS since the epoch
      (fraction allowed). A --pcap frame runs at its own timestamp.
      --cpu N: the CPU the node handles the packets on (-m cpu, bpf's
      SKF_AD_CPU, NFQUEUE --queue-cpu-fanout; default 0).
`,
  options: {
    packet: { type: 'string', multi: true },
    pcap: { type: 'string' },
    index: { type: 'string' },
    iface: { type: 'string' },
    conntrack: { type: 'boolean' },
    json: { type: 'boolean' },
    'all-branches': { type: 'boolean' },
    'max-branches': { type: 'string' },
    time: { type: 'string' },
    ...MODEL_OPTIONS,
  },
};

function colours(on: boolean) {
  const c = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: c('32'), red: c('1;31'), dim: c('2'), cyan: c('36'), yellow: c('33') };
}

type Paint = ReturnType<typeof colours>;

function stepLines(steps: readonly PathStep[], c: Paint, colour: boolean, indent = ''): string[] {
  const out: string[] = [];
  for (const s of steps) {
    if (s.kind === 'trace') {
      const loc = `TRACE: ${s.table}:${s.chain}:${s.type}:${s.num}`;
      out.push(indent + (colour ? (s.type === 'rule' ? c.cyan(loc) : c.dim(loc)) + s.line.slice(loc.length) : s.line));
      if (s.rule) out.push(`${indent}    ${s.rule}`);
    } else out.push(indent + c.dim(`# ${s.text}`));
  }
  return out;
}

function paintFate(r: { fate: PathResult['fate'] }, text: string, c: Paint): string {
  const f = r.fate;
  return f.kind === 'dropped' || f.kind === 'rejected' ? c.red(text) : f.kind === 'delivered' || f.kind === 'forwarded' || f.kind === 'sent' ? c.green(text) : c.yellow(text);
}

/** An answer as text: `# answer: WHY`, its steps, `answer KIND: FATE`. */
/** `answer tcp-reset: sent out eth0 ...`, or for TEE's copy `clone tee-clone: ...`. */
function answerFate(a: AnswerResult): string {
  return `${a.clone ? 'clone' : 'answer'} ${a.kind}: ${fateText(a.fate)}`;
}

function answerLines(a: AnswerResult, c: Paint, colour: boolean): string[] {
  const indent = '  '.repeat(a.depth - 1);
  return [
    indent + c.dim(`# ${a.clone ? 'clone' : 'answer'}: ${a.why}`),
    ...stepLines(a.steps, c, colour, indent),
    indent + paintFate(a, answerFate(a), c),
  ];
}

/**
 * The trace as text: `# packet:`, TRACE lines each followed by its rule
 * (indented), `# ` notes, the answers the node sent (they leave while the
 * packet is being handled, so before its fate), the fate.
 */
export function formatTrace(r: PathResult, header: string, colour: boolean): string {
  const c = colours(colour);
  const out: string[] = [c.dim(`# packet: ${header}`), ...stepLines(r.steps, c, colour)];
  for (const a of r.answers) out.push(...answerLines(a, c, colour));
  out.push(paintFate(r, fateText(r.fate), c));
  return out.join('\n') + '\n';
}

/** A probability as few decimals as say it (0.5, 0.3333, 1). */
function prob(p: number): string {
  const s = p.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  return s === '0' && p > 0 ? p.toExponential(2) : s;
}

function stepId(s: PathStep): string | undefined {
  return s.kind === 'trace' ? `${s.table}:${s.chain}:${s.type}:${s.num}` : undefined;
}

/** The TRACE steps an outcome does not share with every other: what tells the outcomes apart. */
function distinguishing(x: Exploration): PathStep[][] {
  const all = x.outcomes.map((o) => new Set(o.result.steps.map(stepId).filter((k) => k !== undefined)));
  return x.outcomes.map((o) => o.result.steps.filter((s) => {
    const k = stepId(s);
    return k !== undefined && !all.every((set) => set.has(k));
  }));
}

export function formatBranches(x: Exploration, header: string, colour: boolean): string {
  const c = colours(colour);
  const n = x.outcomes.length;
  const out: string[] = [c.dim(`# packet: ${header}`)];
  out.push(c.dim(`# all branches: ${n} outcome${n === 1 ? '' : 's'}, ${x.decisions} random decision${x.decisions === 1 ? '' : 's'} on the longest branch, ${x.branches} branch${x.branches === 1 ? '' : 'es'} explored`));
  if (x.cut) out.push(c.yellow(`# exploration cut at ${x.branches} branches: the outcomes below cover probability ${prob(x.covered)}, the rest is unexplored`));
  if (x.unbranched) out.push(c.dim(`# ${x.unbranched} random draw${x.unbranched === 1 ? '' : 's'} fed no decision nfvm enumerates (the seeded value was used)`));
  const diff = distinguishing(x);
  x.outcomes.forEach((o, i) => {
    out.push(`outcome ${i + 1} of ${n}: probability ${prob(o.probability)}${o.branches > 1 ? ` (${o.branches} branches)` : ''}`);
    out.push(...stepLines(diff[i]!, c, colour, '  '));
    for (const a of o.result.answers) out.push('  ' + paintFate(a, answerFate(a), c));
    out.push('  ' + paintFate(o.result, fateText(o.result.fate), c));
  });
  return out.join('\n') + '\n';
}

function answersJson(r: PathResult) {
  return r.answers.map((a) => ({ kind: a.kind, why: a.why, depth: a.depth, steps: a.steps, fate: a.fate, text: fateText(a.fate), packet: Buffer.from(a.packet).toString('hex'), kernelFields: a.kernelFields, ...(a.clone ? { clone: true } : {}) }));
}

/** The Nth frame (from 1) of a capture. */
function nthFrame(file: string, index: number): Frame {
  let n = 0;
  for (const f of readCaptureFile(file)) if (++n === index) return f;
  throw new NfvmError('value', `frame ${index} requested, the capture has ${n}`, file, undefined, String(index));
}

/** One traced packet: what it was, what became of it. */
interface Traced {
  header: string;
  result: PathResult;
}

/** The virtual clock of `trace`: the packets of one run are a millisecond apart, from --time (default 0). */
const TRACE_STEP_NS = 1e6;

/**
 * `--time`: `YYYY-MM-DDThh:mm[:ss[.frac]][Z]` (UTC) or `@SECONDS[.frac]`
 * since the epoch, as nanoseconds since the epoch.
 */
export function parseTraceTime(t: string): number {
  const frac = (f: string | undefined) => (f ? Math.round(Number(`0${f}`) * 1e9) : 0);
  const at = /^@(\d{1,11})(\.\d{1,9})?$/.exec(t);
  if (at) return Number(at[1]) * 1e9 + frac(at[2]);
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?Z?$/.exec(t);
  if (m) {
    const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
    const ms = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(ms);
    if (y >= 1970 && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && h < 24 && mi < 60 && s < 60) return ms * 1e6 + frac(m[7]);
  }
  throw new UsageError(`--time takes YYYY-MM-DDThh:mm[:ss[.frac]][Z] (UTC) or @SECONDS since the epoch, not "${t}"`);
}

export function cmdTrace(argv: readonly string[]): string {
  const a = parseCommand(TRACE, argv);
  if (a.help) return TRACE.usage;
  if (a.positionals.length !== 1) throw new UsageError('trace takes exactly one SNAPSHOT directory');
  const specs = a.all('packet');
  const pcap = a.str('pcap');
  if ((specs.length === 0) === (pcap === undefined)) throw new UsageError('trace needs --packet SPEC (one or more) or --pcap FILE');
  if (specs[0] === 'reply') throw new UsageError('--packet reply answers the packet before it: it cannot come first');
  let index = 1;
  const ix = a.str('index');
  if (ix !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(ix)) throw new UsageError(`--index takes a frame number from 1, not "${ix}"`);
    if (pcap === undefined) throw new UsageError('--index goes with --pcap');
    index = Number(ix);
  }
  const allBranches = a.flag('all-branches');
  let maxBranches = DEFAULT_MAX_BRANCHES;
  const mb = a.str('max-branches');
  if (mb !== undefined) {
    if (!allBranches) throw new UsageError('--max-branches goes with --all-branches');
    if (!/^[1-9]\d{0,6}$/.test(mb)) throw new UsageError(`--max-branches takes a number from 1 to 9999999, not "${mb}"`);
    maxBranches = Number(mb);
  }
  let t0 = 0;
  const tm = a.str('time');
  if (tm !== undefined) {
    if (pcap !== undefined) throw new UsageError('--time goes with --packet (a --pcap frame runs at its own timestamp)');
    t0 = parseTraceTime(tm);
  }
  const dir = a.positionals[0]!;
  // The specs' syntax and the capture's frame are checked before the node is loaded (seconds on a big ruleset).
  for (const s of specs) if (s !== 'reply') parseSpec(s);
  const frame0 = pcap !== undefined ? nthFrame(pcap, index) : undefined;
  const inputs = modelInputs(a);
  const model = loadModel(dir, a, inputs);
  const json = a.flag('json');
  const engine = a.str('engine') ?? 'vm';
  let outgoing: string | undefined;
  if (pcap !== undefined) {
    const frame = frame0!;
    const iif = frameIface(model, frame, a.str('iface'), pcap, index);
    checkIface(model, iif);
    if (isOutgoing(frame)) outgoing = `${pcap} frame ${index} out on ${iif}`;
  } else {
    // Each spec is checked against the node once, before anything runs (a reply's when it is made).
    for (const s of specs) if (s !== 'reply') specInput(model, parseSpec(s));
  }
  if (outgoing !== undefined) {
    const text = `not traced: the capture saw this frame leave ${outgoing.slice(outgoing.lastIndexOf(' ') + 1)} (sent by the node), it is not input to the receive path`;
    return json ? jsonDoc({ schema: 1, packet: outgoing, backend: model.backend, engine, steps: [], fate: null, text, answers: [], packets: [{ packet: outgoing, steps: [], fate: null, text, answers: [] }] })
      : `# packet: ${outgoing}\n${text}\n`;
  }
  /** Every packet of the run through `m`, in order. */
  const run = (m: NodeModel): Traced[] => {
    const traced: Traced[] = [];
    if (pcap !== undefined) {
      const frame = nthFrame(pcap, index);
      const iif = frameIface(m, frame, a.str('iface'), pcap, index);
      const pkt = new Packet(Math.max(65536 + 64, frame.data.length));
      loadFrame(pkt, frame);
      m.captureCt(pkt);
      const r = m.receive(pkt, iif, { now: frame.tsSec * 1e9 + frame.tsNsec });
      traced.push({ header: `${pcap} frame ${index} in on ${iif}`, result: r });
      return traced;
    }
    let prev: { pkt: Packet; fate: Fate } | undefined;
    specs.forEach((text, i) => {
      const spec = text === 'reply' ? replyTo(prev!, i) : text;
      const parsed = parseSpec(spec);
      const { pkt, iif, ct } = specInput(m, parsed);
      const input = { now: t0 + i * TRACE_STEP_NS, ct };
      const r = iif === '' ? m.send(pkt, parsed.oif, input) : m.receive(pkt, iif, input);
      traced.push({ header: text === 'reply' ? `reply: ${spec}` : spec, result: r });
      prev = { pkt, fate: r.fate };
    });
    return traced;
  };
  const lastNow = pcap !== undefined ? model.conntrackModule?.now ?? 0 : t0 + (specs.length - 1) * TRACE_STEP_NS;
  const ctListing = (m: NodeModel) => {
    const ct = m.conntrackTable;
    if (json) return ct ? { conntrack: conntrackListJson(ct, pcap !== undefined ? m.conntrackModule?.now ?? 0 : lastNow) } : {};
    if (!a.flag('conntrack')) return '';
    if (!ct) return '# conntrack -L: the node does not run conntrack\n';
    const listing = conntrackList(ct, pcap !== undefined ? m.conntrackModule?.now ?? 0 : lastNow);
    return `# conntrack -L\n${listing.map((l) => `${l}\n`).join('')}# ${conntrackSummary(listing.length)}\n`;
  };
  model.setTrace(true);
  if (!allBranches) {
    const traced = run(model);
    noSocketsWarning(model.stack.noSocketTableUsed, dir);
    const xfrmNote = xfrmPolicyNote(dir, model.node);
    if (xfrmNote !== undefined) process.stderr.write(`nfvm: ${xfrmNote}\n`);
    if (json) {
      const one = (t: Traced) => ({ packet: t.header, steps: t.result.steps, fate: t.result.fate, text: fateText(t.result.fate), answers: answersJson(t.result) });
      const last = one(traced.at(-1)!);
      return jsonDoc({
        schema: 1, packet: last.packet, backend: model.backend, engine, steps: last.steps, fate: last.fate, text: last.text, answers: last.answers,
        packets: traced.map(one), ...(ctListing(model) as object),
      });
    }
    const colour = useColour(false);
    const parts = traced.map((t) => formatTrace(t.result, t.header, colour));
    const listing = ctListing(model) as string;
    if (listing) parts.push(listing);
    return parts.join('\n');
  }
  // Each branch runs every packet from the state the node had before the
  // first: restored (the VM engines and conntrack), or a model built afresh
  // (the reference engine keeps match state in closures). The outcome is the
  // last packet's.
  const restore = model.checkpoint();
  let noSockets = false;
  const header = specs.length > 1 ? specs.map((s, i) => (s === 'reply' ? `(${i + 1}) reply` : `(${i + 1}) ${s}`)).join(', then ') : pcap !== undefined ? `${pcap} frame ${index}` : specs[0]!;
  const x = exploreBranches((chooser) => {
    let m = model;
    if (restore) restore();
    else {
      m = loadModel(dir, a, inputs);
      m.setTrace(true);
    }
    noSockets ||= m.stack.noSocketTableUsed;
    m.setChooser(chooser);
    try {
      return run(m).at(-1)!.result;
    } finally {
      m.setChooser(null);
      noSockets ||= m.stack.noSocketTableUsed;
    }
  }, maxBranches);
  noSocketsWarning(noSockets, dir);
  if (json) {
    const diff = distinguishing(x);
    return jsonDoc({
      schema: 1, packet: header, backend: model.backend, engine,
      branches: { explored: x.branches, cut: x.cut, covered: x.covered, decisions: x.decisions, unbranched: x.unbranched },
      outcomes: x.outcomes.map((o, i) => ({
        probability: o.probability, branches: o.branches, fate: o.result.fate, text: fateText(o.result.fate),
        distinguishing: diff[i]!, steps: o.result.steps, answers: answersJson(o.result),
      })),
    });
  }
  return formatBranches(x, header, useColour(false));
}
