/**
 * `nfvm trace SNAPSHOT --packet SPEC` (or `--pcap FILE [--index N]`): one
 * packet through the node, every rule and policy it meets as kernel TRACE
 * lines (ip_tables.c trace_packet() + nf_log_syslog), the routing decisions
 * as `# ` notes, then its fate in words. `--json` prints the same as one
 * JSON document.
 */
import { parseArgs } from 'node:util';
import { NfvmError } from '../core/errors.js';
import { readSnapshot } from '../hooks/snapshot/read.js';
import { buildNodeModel, captureCt, type EngineKind, type NodeModel } from '../hooks/node.js';
import { fateText, type PathResult } from '../hooks/path/fate.js';
import { parseSpec, specPacket, type PacketSpec } from '../hooks/input/spec.js';
import { loadFrame, readCaptureFile, type Frame } from '../hooks/input/capture.js';
import { Packet } from '../vm/packet.js';
import type { Backend } from '../core/netfilter.js';
import { parseMac } from '../core/addr.js';

/** A usage problem (exit 2, `nfvm: message`). */
export class CliUsageError extends Error {
  override name = 'CliUsageError';
}

export const TRACE_USAGE = `  nfvm trace SNAPSHOT (--packet SPEC | --pcap FILE [--index N] [--iface NAME])
             [--engine vm|reference] [--backend legacy|nft] [--optimize=0|1] [--json]
      Send one packet through the node of snapshot directory SNAPSHOT and
      print every rule and policy it meets as kernel TRACE lines, the routing
      decisions as "# " notes, then its fate (delivered locally, forwarded
      out DEV via GW, dropped by TABLE:CHAIN rule N, ...). SPEC is a packet
      spec (README "Packet input"): "iif DEV" makes it arrive on DEV (the
      destination MAC defaults to DEV's), "from local" sends it from the node.
      --index picks the Nth frame of the capture (from 1).
`;

export interface ModelFlags {
  engine?: string;
  backend?: string;
  optimize?: string;
  seed?: string;
}

export const MODEL_OPTIONS = {
  engine: { type: 'string' },
  backend: { type: 'string' },
  optimize: { type: 'string' },
  seed: { type: 'string' },
} as const;

/** Reads the snapshot and builds the node for the trace and replay commands. */
export function loadModel(dir: string, f: ModelFlags): NodeModel {
  const engine = f.engine ?? 'vm';
  if (engine !== 'vm' && engine !== 'reference') throw new CliUsageError(`unknown engine "${engine}" (expected vm or reference)`);
  if (f.backend !== undefined && f.backend !== 'legacy' && f.backend !== 'nft') throw new CliUsageError(`unknown backend "${f.backend}" (expected legacy or nft)`);
  if (f.optimize !== undefined && f.optimize !== '0' && f.optimize !== '1') throw new CliUsageError(`--optimize takes 0 or 1, not "${f.optimize}"`);
  let seed = 1;
  if (f.seed !== undefined) {
    if (!/^\d{1,10}$/.test(f.seed) || Number(f.seed) > 0xffffffff) throw new CliUsageError(`--seed takes a number, not "${f.seed}"`);
    seed = Number(f.seed);
  }
  const node = readSnapshot(dir);
  return buildNodeModel(node, { engine: engine as EngineKind, backend: f.backend as Backend | undefined, seed, optimize: f.optimize === '0' ? 0 : 1 });
}

/** The packet of a spec as it arrives: on its iif (destination MAC = the device's unless given) or from local. */
export function specInput(model: NodeModel, spec: PacketSpec): { pkt: Packet; iif: string } {
  if (!spec.fromLocal) {
    if (spec.iif === '') throw new NfvmError('value', 'say where the packet comes from: "iif DEV" or "from local"', 'packet spec', { line: 1, col: 1 }, undefined);
    const link = model.node.links.get(spec.iif);
    if (!link) {
      const p = spec.pos.get('iif');
      throw new NfvmError('value', `no interface ${spec.iif} in the snapshot (it has ${[...model.node.links.keys()].join(', ')})`, 'packet spec', p, spec.iif);
    }
    if (!spec.dstMac && link.mac && link.mac !== '00:00:00:00:00:00') spec.dstMac = parseMac(link.mac);
  } else if (spec.oif && !model.node.links.has(spec.oif)) {
    throw new NfvmError('value', `no interface ${spec.oif} in the snapshot`, 'packet spec', spec.pos.get('oif'), spec.oif);
  }
  const ifx = (name: string) => model.node.links.get(name)?.ifindex ?? 0;
  const pkt = specPacket(spec, { ifindex: ifx });
  if (spec.ct === '') captureCt(model, pkt);
  return { pkt, iif: spec.fromLocal ? '' : spec.iif };
}

/** The interface a captured frame arrives on: --iface, the pcapng interface name, the SLL2 ifindex. */
export function frameIface(model: NodeModel, f: Frame, iface: string | undefined, file: string): string {
  if (iface !== undefined) return iface;
  if (f.ifName) return f.ifName;
  if (f.sllIfindex > 0) {
    const l = model.node.linksByIndex.get(f.sllIfindex);
    if (l) return l.name;
  }
  throw new NfvmError('value', 'the capture does not say which interface the frame came in on: give --iface NAME', file, undefined, undefined);
}

function colours(on: boolean) {
  const c = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: c('32'), red: c('1;31'), dim: c('2'), cyan: c('36'), yellow: c('33') };
}

function useColour(json: boolean): boolean {
  if (json || process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return process.stdout.isTTY === true && process.env.TERM !== 'dumb';
}

export function formatTrace(r: PathResult, header: string, colour: boolean): string {
  const c = colours(colour);
  const out: string[] = [c.dim(`# packet: ${header}`)];
  for (const s of r.steps) {
    if (s.kind === 'trace') {
      const loc = `TRACE: ${s.table}:${s.chain}:${s.type}:${s.num}`;
      out.push(colour ? (s.type === 'rule' ? c.cyan(loc) : c.dim(loc)) + s.line.slice(loc.length) : s.line);
    } else out.push(c.dim(`# ${s.text}`));
  }
  const f = r.fate;
  const text = fateText(f);
  out.push(f.kind === 'dropped' ? c.red(text) : f.kind === 'delivered' || f.kind === 'forwarded' || f.kind === 'sent' ? c.green(text) : c.yellow(text));
  return out.join('\n') + '\n';
}

export function cmdTrace(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      packet: { type: 'string' },
      pcap: { type: 'string' },
      index: { type: 'string' },
      iface: { type: 'string' },
      json: { type: 'boolean' },
      ...MODEL_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new CliUsageError('trace takes exactly one SNAPSHOT directory');
  if ((values.packet === undefined) === (values.pcap === undefined)) throw new CliUsageError('trace needs one of --packet SPEC or --pcap FILE');
  let index = 1;
  if (values.index !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(values.index)) throw new CliUsageError(`--index takes a frame number from 1, not "${values.index}"`);
    index = Number(values.index);
  }
  if (values.index !== undefined && values.pcap === undefined) throw new CliUsageError('--index goes with --pcap');
  const model = loadModel(positionals[0]!, values);
  let pkt: Packet;
  let iif: string;
  let header: string;
  if (values.packet !== undefined) {
    const spec = parseSpec(values.packet);
    ({ pkt, iif } = specInput(model, spec));
    header = values.packet;
  } else {
    const file = values.pcap!;
    let n = 0;
    let frame: Frame | undefined;
    for (const f of readCaptureFile(file)) {
      if (++n === index) {
        frame = f;
        break;
      }
    }
    if (!frame) throw new NfvmError('value', `frame ${index} requested, the capture has ${n}`, file, undefined, String(index));
    pkt = new Packet(Math.max(65536 + 64, frame.data.length));
    loadFrame(pkt, frame);
    captureCt(model, pkt);
    iif = frameIface(model, frame, values.iface, file);
    if (!model.node.links.has(iif)) throw new CliUsageError(`no interface ${iif} in the snapshot`);
    header = `${file} frame ${index} in on ${iif}`;
  }
  model.setTrace(true);
  const r = iif === '' ? model.send(pkt) : model.receive(pkt, iif);
  if (values.json) {
    return JSON.stringify({ schema: 1, packet: header, backend: model.backend, engine: values.engine ?? 'vm', steps: r.steps, fate: r.fate, text: fateText(r.fate) }, null, 2) + '\n';
  }
  return formatTrace(r, header, useColour(false));
}
