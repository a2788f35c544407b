/**
 * `nfvm trace SNAPSHOT --packet SPEC` (or `--pcap FILE [--index N]`): one
 * packet through the node, every rule and policy it meets as kernel TRACE
 * lines (ip_tables.c trace_packet() + nf_log_syslog), each followed by the
 * rule as iptables-save prints it, the routing decisions as `# ` notes, then
 * its fate in words. `--json` prints the same as one JSON document.
 */
import { NfvmError } from '../core/errors.js';
import { fateText, type PathResult } from '../hooks/path/fate.js';
import { parseSpec } from '../hooks/input/spec.js';
import { isOutgoing, loadFrame, readCaptureFile, type Frame } from '../hooks/input/capture.js';
import { Packet } from '../vm/packet.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { useColour } from './io.js';
import { jsonDoc } from './json.js';
import { MODEL_OPTIONS, MODEL_USAGE, checkIface, frameIface, loadModel, specInput } from './model.js';
import type { CtSpec } from '../hooks/node.js';

export const TRACE: CommandSpec = {
  name: 'trace',
  usage: `  nfvm trace SNAPSHOT (--packet SPEC | --pcap FILE [--index N] [--iface NAME])
             ${MODEL_USAGE} [--json]
      Send one packet through the node of snapshot directory SNAPSHOT and
      print every rule and policy it meets as kernel TRACE lines, each with
      the rule as iptables-save prints it, the routing decisions as "# "
      notes, then its fate (delivered locally, forwarded out DEV via GW,
      dropped by TABLE:CHAIN rule N, rejected ... with icmp-port-unreachable,
      ...). SPEC is a packet spec (README "Packet input"): "iif DEV" makes it
      arrive on DEV (the destination MAC defaults to DEV's), "from local"
      sends it from the node. --index picks the Nth frame of the capture
      (from 1); a frame the capture saw leave the node is not traced.
`,
  options: {
    packet: { type: 'string' },
    pcap: { type: 'string' },
    index: { type: 'string' },
    iface: { type: 'string' },
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

export function cmdTrace(argv: readonly string[]): string {
  const a = parseCommand(TRACE, argv);
  if (a.help) return TRACE.usage;
  if (a.positionals.length !== 1) throw new UsageError('trace takes exactly one SNAPSHOT directory');
  const spec = a.str('packet');
  const pcap = a.str('pcap');
  if ((spec === undefined) === (pcap === undefined)) throw new UsageError('trace needs one of --packet SPEC or --pcap FILE');
  let index = 1;
  const ix = a.str('index');
  if (ix !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(ix)) throw new UsageError(`--index takes a frame number from 1, not "${ix}"`);
    if (pcap === undefined) throw new UsageError('--index goes with --pcap');
    index = Number(ix);
  }
  const model = loadModel(a.positionals[0]!, a);
  const json = a.flag('json');
  const doc = (header: string, r: PathResult | undefined, text: string) =>
    jsonDoc({ schema: 1, packet: header, backend: model.backend, engine: a.str('engine') ?? 'vm', steps: r?.steps ?? [], fate: r?.fate ?? null, text });
  let pkt: Packet;
  let iif: string;
  let oif = '';
  let header: string;
  let ct: CtSpec | undefined;
  if (spec !== undefined) {
    const parsed = parseSpec(spec);
    ({ pkt, iif, ct } = specInput(model, parsed));
    oif = parsed.oif;
    header = spec;
  } else {
    const frame = nthFrame(pcap!, index);
    iif = frameIface(model, frame, a.str('iface'), pcap!);
    checkIface(model, iif);
    if (isOutgoing(frame)) {
      header = `${pcap} frame ${index} out on ${iif}`;
      const text = `not traced: the capture saw this frame leave ${iif} (sent by the node), it is not input to the receive path`;
      return json ? doc(header, undefined, text) : `# packet: ${header}\n${text}\n`;
    }
    pkt = new Packet(Math.max(65536 + 64, frame.data.length));
    loadFrame(pkt, frame);
    model.captureCt(pkt);
    header = `${pcap} frame ${index} in on ${iif}`;
  }
  model.setTrace(true);
  const r = iif === '' ? model.send(pkt, oif, { ct }) : model.receive(pkt, iif, { ct });
  if (json) return doc(header, r, fateText(r.fate));
  return formatTrace(r, header, useColour(false));
}
