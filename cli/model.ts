/**
 * The node model as trace and replay load it: the snapshot directory, the
 * model options they share (--engine, --backend, --optimize, --seed), and
 * the packets they feed it (a packet spec, a captured frame).
 */
import { readdirSync, statSync } from 'node:fs';
import { NfvmError } from '../core/errors.js';
import { readSnapshot } from '../hooks/snapshot/read.js';
import { buildNodeModel, type CtSpec, type EngineKind, type NodeModel, type NodeModelOptions } from '../hooks/node.js';
import { replySpec, specPacket, type PacketSpec } from '../hooks/input/spec.js';
import type { Fate } from '../hooks/path/fate.js';
import { CaptureError, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, type Frame } from '../hooks/input/capture.js';
import type { Backend } from '../core/netfilter.js';
import type { Packet } from '../vm/packet.js';
import { UsageError, type OptionSpec, type ParsedArgs } from './args.js';
import { formatMac, parseMac } from '../core/addr.js';
import { M_MACOFF } from '../vm/layout.js';
import { inputName, readInput } from './io.js';
import { parseIpsetSave } from '../compiler/ipset.js';
import { XT_HZ_DEFAULT } from '../ext/xtstate.js';

/** The options of the model, for a command's option table. */
export const MODEL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  engine: { type: 'string' },
  backend: { type: 'string' },
  optimize: { type: 'string' },
  seed: { type: 'string' },
  ipset: { type: 'string' },
  hz: { type: 'string' },
};

export const MODEL_USAGE = '[--engine vm|interp|reference] [--backend legacy|nft] [--optimize=0|1] [--seed N] [--ipset FILE] [--hz N]';

/** Whether `p` is a directory (a snapshot) rather than a file; false when it does not exist. */
export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A count option (`--packets`, `--seed`, `--max`...): `dflt` when absent, else a decimal number from 0 to `max`. */
export function countOption(v: string | undefined, name: string, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,10}$/.test(v) || Number(v) > max) throw new UsageError(`--${name} takes a number from 0 to ${max}, not "${v}"`);
  return Number(v);
}

/** The files that make a directory a snapshot (a ruleset or the ip -j output). */
function isSnapshotFile(name: string): boolean {
  return name === 'iptables-save.txt' || name === 'ip6tables-save.txt' || /^ip6?-(addr|link|route|rule)\.json$/.test(name);
}

/**
 * Reads the snapshot and builds the node for the trace and replay commands;
 * `replace` gives texts that stand for some of its files (diff: the node
 * with another ruleset; `parsed`, that ruleset already parsed).
 */
export function loadModel(dir: string, a: ParsedArgs, replace?: ReadonlyMap<string, string>, parsed?: NodeModelOptions['parsed']): NodeModel {
  const opts = { ...modelOptions(a), parsed };
  const node = readSnapshot(dir, replace);
  if (!readdirSync(dir).some(isSnapshotFile)) {
    throw new NfvmError('value', 'not a node snapshot (no iptables-save.txt, ip6tables-save.txt or ip-*.json in it; `nfvm snapshot DIR` takes one)', dir, undefined, undefined);
  }
  // --ipset FILE: the node's sets from `ipset save` text instead of the snapshot's ipset-save.txt
  const sets = a.str('ipset');
  if (sets !== undefined) {
    node.ipsets = { file: inputName(sets), text: readInput(sets) };
    parseIpsetSave(node.ipsets.text, node.ipsets.file);
  }
  return buildNodeModel(node, opts);
}

/** The model options (--engine, --backend, --optimize, --seed) of a command line, checked. */
export function modelOptions(a: ParsedArgs): NodeModelOptions {
  const engine = a.str('engine') ?? 'vm';
  if (engine !== 'vm' && engine !== 'interp' && engine !== 'reference') throw new UsageError(`unknown engine "${engine}" (expected vm, interp or reference)`);
  const backend = a.str('backend');
  if (backend !== undefined && backend !== 'legacy' && backend !== 'nft') throw new UsageError(`unknown backend "${backend}" (expected legacy or nft)`);
  const optimize = a.str('optimize');
  if (optimize !== undefined && optimize !== '0' && optimize !== '1') throw new UsageError(`--optimize takes 0 or 1, not "${optimize}"`);
  let seed = 1;
  const s = a.str('seed');
  if (s !== undefined) {
    if (!/^\d{1,10}$/.test(s) || Number(s) > 0xffffffff) throw new UsageError(`--seed takes a number, not "${s}"`);
    seed = Number(s);
  }
  let hz = XT_HZ_DEFAULT;
  const h = a.str('hz');
  if (h !== undefined) {
    if (!/^\d{1,5}$/.test(h) || Number(h) < 1 || Number(h) > 10000) throw new UsageError(`--hz takes CONFIG_HZ, a number from 1 to 10000, not "${h}"`);
    hz = Number(h);
  }
  return { engine: engine as EngineKind, backend: backend as Backend | undefined, seed, optimize: optimize === '0' ? 0 : 1, hz };
}

/**
 * The packet of a spec as it arrives: on its iif (destination MAC = the
 * device's unless given) or from local. When the node runs conntrack for
 * its family the packet comes without a conntrack and the spec's `ct`
 * clause describes its connection (`ct`, for NodeModel.receive/send);
 * otherwise the clause's state is the packet's as given.
 */
export function specInput(model: NodeModel, spec: PacketSpec): { pkt: Packet; iif: string; ct: CtSpec | undefined } {
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
  let ct: CtSpec | undefined;
  if (model.tracks(pkt)) {
    model.captureCt(pkt);
    if (spec.ct !== '') ct = { state: spec.ct, reply: spec.ctReply, mark: spec.ctMark };
  }
  return { pkt, iif: spec.fromLocal ? '' : spec.iif, ct };
}

/**
 * The interface a captured frame (number `n`, from 1) arrived on or left
 * by: --iface when given; else the if_name of its pcapng Interface
 * Description Block; else, in a LINUX_SLL2 capture, the device of its
 * ifindex (the snapshot's ip-link.json ifindexes). A plain LINUX_SLL frame
 * carries no interface. An interface the snapshot lacks, or none at all,
 * is an error located at the frame.
 */
export function frameIface(model: NodeModel, f: Frame, iface: string | undefined, file: string, n: number): string {
  if (iface !== undefined) return iface;
  const links = model.node.links;
  const has = () => [...links.keys()].join(', ');
  if (f.ifName) {
    if (!links.has(f.ifName)) throw new CaptureError('value', `frame ${n} is on capture interface ${f.ifName}, which the snapshot does not have (it has ${has()}); --iface NAME picks one`, file, f.offset, f.ifName);
    return f.ifName;
  }
  if (f.linktype === LINKTYPE_LINUX_SLL2) {
    const l = model.node.linksByIndex.get(f.sllIfindex);
    if (!l) {
      const idx = [...links.values()].map((x) => `${x.ifindex} ${x.name}`).join(', ');
      throw new CaptureError('value', `frame ${n} is on ifindex ${f.sllIfindex} (LINUX_SLL2), which no interface of the snapshot has (ip-link.json: ${idx}); --iface NAME picks one`, file, f.offset, String(f.sllIfindex));
    }
    return l.name;
  }
  if (f.linktype === LINKTYPE_LINUX_SLL) {
    throw new CaptureError('value', `frame ${n}: a LINUX_SLL (cooked) capture does not say which interface a frame is on (LINUX_SLL2 does: tcpdump -y LINUX_SLL2): give --iface NAME`, file, f.offset);
  }
  throw new CaptureError('value', `frame ${n}: the capture does not say which interface the frame is on (no pcapng interface name): give --iface NAME`, file, f.offset);
}

/** Says once, on stderr, that the snapshot has no ss.txt when a packet needed its sockets. */
export function noSocketsWarning(used: boolean, dir: string): void {
  if (used) process.stderr.write(`nfvm: ${dir}: no ss.txt in the snapshot: every TCP and UDP port is assumed closed (\`nfvm snapshot\` captures the listening sockets)\n`);
}

/** Checks that --iface names a device of the snapshot. */
export function checkIface(model: NodeModel, iface: string | undefined): void {
  if (iface !== undefined && !model.node.links.has(iface)) {
    throw new UsageError(`no interface ${iface} in the snapshot (it has ${[...model.node.links.keys()].join(', ')})`);
  }
}

/**
 * `--packet reply`: the answer to the packet before (number i, from 0),
 * arriving where that one left: from local when it was delivered; on the
 * bridge port a frame left by (bridged, or sent out of a bridge device
 * through br_dev_xmit), from the address it went to and to the one it came
 * from, as that port receives it; else on the device it was forwarded or
 * sent out of.
 */
export function replyTo(prev: { pkt: Packet; fate: Fate }, i: number): string {
  const f = prev.fate;
  const none = (why: string) => new UsageError(`--packet reply (packet ${i + 1}): ${why}`);
  let where: string;
  if (f.kind === 'bridged') {
    const left = f.ports.filter((p) => p.fate === undefined).map((p) => p.port);
    if (left.length === 1) {
      const d = prev.pkt.data;
      const mac = prev.pkt.meta[M_MACOFF]!;
      where = `iif ${left[0]} src-mac ${formatMac(d.subarray(mac, mac + 6))} dst-mac ${formatMac(d.subarray(mac + 6, mac + 12))}`;
    } else if (left.length === 0 && f.local?.kind === 'delivered') where = 'from local';
    else if (left.length === 0) throw none('the frame before it left no bridge port, nothing answers it');
    else throw none(`the frame before it was flooded out of ${left.join(', ')}: give the answer as a spec with the port it arrives on (iif PORT)`);
  } else if ((f.kind === 'forwarded' || f.kind === 'sent') && f.bridge) {
    if (f.bridge.ports.length !== 1) throw none(`the packet before it was flooded out of ${f.bridge.ports.join(', ')} (${f.dev}): give the answer as a spec with the port it arrives on (iif PORT)`);
    where = `iif ${f.bridge.ports[0]} src-mac ${f.bridge.dstMac} dst-mac ${f.bridge.srcMac}`;
  } else if (f.kind === 'forwarded' || f.kind === 'sent') where = `iif ${f.dev}`;
  else if (f.kind === 'delivered') where = 'from local';
  else throw none(`the packet before it was ${f.kind}, nothing answers it`);
  const spec = replySpec(prev.pkt);
  if (spec === undefined) throw none('the packet before it has no answer (an ICMP error, a TCP RST, a fragment)');
  return `${spec} ${where}`;
}
