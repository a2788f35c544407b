/**
 * `nfvm trace SNAPSHOT --packet SPEC` (or `--pcap FILE [--index N]`): one
 * packet through the node, every rule and policy it meets as kernel TRACE
 * lines (ip_tables.c trace_packet() + nf_log_syslog), each followed by the
 * rule as iptables-save prints it, the routing decisions as `# ` notes, then
 * its fate in words. `--json` prints the same as one JSON document.
 */
import { NfvmError } from '../core/errors.js';
import { fateText, type Fate, type PathResult } from '../hooks/path/fate.js';
import { parseSpec, replySpec } from '../hooks/input/spec.js';
import { conntrackList, conntrackListJson, conntrackSummary } from '../hooks/conntrack/index.js';
import { isOutgoing, loadFrame, readCaptureFile, type Frame } from '../hooks/input/capture.js';
import { Packet } from '../vm/packet.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { useColour } from './io.js';
import { jsonDoc } from './json.js';
import { MODEL_OPTIONS, MODEL_USAGE, checkIface, frameIface, loadModel, specInput } from './model.js';

export const TRACE: CommandSpec = {
  name: 'trace',
  usage: `  nfvm trace SNAPSHOT (--packet SPEC [--packet SPEC|reply ...] | --pcap FILE [--index N] [--iface NAME])
             ${MODEL_USAGE} [--conntrack] [--json]
      Send packets through the node of snapshot directory SNAPSHOT and print
      every rule and policy each meets as kernel TRACE lines, each with the
      rule as iptables-save prints it, the routing decisions, the packet's
      connection at each hook and each NAT rewrite as "# " notes, then its
      fate (DNAT to ADDR:PORT, forwarded out DEV via GW; delivered locally;
      dropped by TABLE:CHAIN rule N; rejected ... with icmp-port-unreachable;
      ...). SPEC is a packet spec (README "Packet input"): "iif DEV" makes it
      arrive on DEV (the destination MAC defaults to DEV's), "from local"
      sends it from the node. Several --packet go through the same node in
      order, 1 ms apart, sharing its conntrack table; "--packet reply" is the
      answer to the packet before as it left the node (arriving on the
      device it left by). --conntrack prints the table afterwards as
      conntrack -L does. --index picks the Nth frame of the capture (from 1);
      a frame the capture saw leave the node is not traced.
`,
  options: {
    packet: { type: 'string', multi: true },
    pcap: { type: 'string' },
    index: { type: 'string' },
    iface: { type: 'string' },
    conntrack: { type: 'boolean' },
    json: { type: 'boolean' },
    ...MODEL_OPTIONS,
  },
};

function colours(on: boolean) {
  const c = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: c('32'), red: c('1;31'), dim: c('2'), cyan: c('36'), yellow: c('33') };
}

/** The trace as text: `# packet:`, TRACE lines each followed by its rule (indented), `# ` notes, the fate. */
export function formatTrace(r: PathResult, header: string, colour: boolean): string {
  const c = colours(colour);
  const out: string[] = [c.dim(`# packet: ${header}`)];
  for (const s of r.steps) {
    if (s.kind === 'trace') {
      const loc = `TRACE: ${s.table}:${s.chain}:${s.type}:${s.num}`;
      out.push(colour ? (s.type === 'rule' ? c.cyan(loc) : c.dim(loc)) + s.line.slice(loc.length) : s.line);
      if (s.rule) out.push(`    ${s.rule}`);
    } else out.push(c.dim(`# ${s.text}`));
  }
  const f = r.fate;
  const text = fateText(f);
  out.push(f.kind === 'dropped' || f.kind === 'rejected' ? c.red(text) : f.kind === 'delivered' || f.kind === 'forwarded' || f.kind === 'sent' ? c.green(text) : c.yellow(text));
  return out.join('\n') + '\n';
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
  result: PathResult | undefined;
  text: string;
}

/** The virtual clock of `trace`: the packets of one run are a millisecond apart, from 0. */
const TRACE_STEP_NS = 1e6;

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
  const model = loadModel(a.positionals[0]!, a);
  const json = a.flag('json');
  model.setTrace(true);
  const traced: Traced[] = [];
  if (pcap !== undefined) {
    const frame = nthFrame(pcap, index);
    const iif = frameIface(model, frame, a.str('iface'), pcap);
    checkIface(model, iif);
    if (isOutgoing(frame)) {
      const text = `not traced: the capture saw this frame leave ${iif} (sent by the node), it is not input to the receive path`;
      traced.push({ header: `${pcap} frame ${index} out on ${iif}`, result: undefined, text });
    } else {
      const pkt = new Packet(Math.max(65536 + 64, frame.data.length));
      loadFrame(pkt, frame);
      model.captureCt(pkt);
      const r = model.receive(pkt, iif, { now: frame.tsSec * 1e9 + frame.tsNsec });
      traced.push({ header: `${pcap} frame ${index} in on ${iif}`, result: r, text: fateText(r.fate) });
    }
  } else {
    let prev: { pkt: Packet; fate: Fate } | undefined;
    specs.forEach((text, i) => {
      let spec = text;
      if (text === 'reply') spec = replyTo(prev!, i);
      const parsed = parseSpec(spec);
      const { pkt, iif, ct } = specInput(model, parsed);
      const input = { now: i * TRACE_STEP_NS, ct };
      const r = iif === '' ? model.send(pkt, parsed.oif, input) : model.receive(pkt, iif, input);
      traced.push({ header: text === 'reply' ? `reply: ${spec}` : spec, result: r, text: fateText(r.fate) });
      prev = { pkt, fate: r.fate };
    });
  }
  const ct = model.conntrackTable;
  const lastNow = pcap !== undefined ? model.conntrackModule?.now ?? 0 : (specs.length - 1) * TRACE_STEP_NS;
  const listing = a.flag('conntrack') && ct ? conntrackList(ct, lastNow) : [];
  if (json) {
    const one = (t: Traced) => ({ packet: t.header, steps: t.result?.steps ?? [], fate: t.result?.fate ?? null, text: t.text });
    const last = one(traced.at(-1)!);
    return jsonDoc({
      schema: 1, ...last, backend: model.backend, engine: a.str('engine') ?? 'vm', packets: traced.map(one),
      ...(ct ? { conntrack: conntrackListJson(ct, lastNow) } : {}),
    });
  }
  const colour = useColour(false);
  const parts = traced.map((t) => (t.result ? formatTrace(t.result, t.header, colour) : `# packet: ${t.header}\n${t.text}\n`));
  if (a.flag('conntrack')) parts.push(ct ? `# conntrack -L\n${listing.map((l) => `${l}\n`).join('')}# ${conntrackSummary(listing.length)}\n` : '# conntrack -L: the node does not run conntrack\n');
  return parts.join('\n');
}

/** `--packet reply`: the answer to the packet before, arriving where that one left (from local when it was delivered). */
function replyTo(prev: { pkt: Packet; fate: Fate }, i: number): string {
  const f = prev.fate;
  const where = f.kind === 'forwarded' || f.kind === 'sent' ? `iif ${f.dev}` : f.kind === 'delivered' ? 'from local' : undefined;
  if (where === undefined) throw new UsageError(`--packet reply (packet ${i + 1}): the packet before it was ${f.kind}, nothing answers it`);
  const spec = replySpec(prev.pkt);
  if (spec === undefined) throw new UsageError(`--packet reply (packet ${i + 1}): the packet before it has no answer (an ICMP error, a TCP RST, a fragment)`);
  return `${spec} ${where}`;
}
