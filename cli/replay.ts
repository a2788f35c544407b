/**
 * `nfvm replay SNAPSHOT --pcap FILE [--iface NAME]`: every frame of the
 * capture in on its interface, in order, through the node; then the
 * ruleset with the counters the kernel would show, as `iptables-save -c`
 * prints it (counters start at zero, as after iptables-restore).
 *
 * A frame the capture saw leave the node (pcapng epb_flags outbound,
 * SLL/SLL2 PACKET_OUTGOING) was sent by it: it is counted, not received.
 * On a terminal, stderr shows a progress line and, at the end, a summary
 * of what became of the frames; --json gives the summary with the counters.
 */
import { statSync } from 'node:fs';
import { NfvmError } from '../core/errors.js';
import { saveRuleset } from '../compiler/save.js';
import type { Fate } from '../hooks/path/fate.js';
import { isOutgoing, loadFrame, readCaptureFile } from '../hooks/input/capture.js';
import { Packet, resetMeta } from '../vm/packet.js';
import type { PacketInput } from '../hooks/node.js';
import { conntrackList, conntrackListJson, conntrackSummary } from '../hooks/conntrack/index.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { jsonDoc, rulesetJson } from './json.js';
import { MODEL_OPTIONS, MODEL_USAGE, checkIface, frameIface, loadModel } from './model.js';

export const REPLAY: CommandSpec = {
  name: 'replay',
  usage: `  nfvm replay SNAPSHOT --pcap FILE [--iface NAME] [--save iptables|ip6tables]
              ${MODEL_USAGE} [--conntrack] [--json]
      Feed every frame of the capture (pcap or pcapng) in on interface NAME
      (default: the pcapng interface of each frame), in order, on the
      capture's clock, and print the ruleset with its counters as
      \`iptables-save -c\` would on the node (--save ip6tables: the
      ip6tables ruleset, as \`ip6tables-save -c\`); --conntrack prints the
      conntrack table instead, as \`conntrack -L\` would at the last frame's
      time (its summary line on stderr). Frames the capture saw leave the
      node are counted, not fed. On a terminal: progress and a summary of
      the frames' fates on stderr.
`,
  options: {
    pcap: { type: 'string' }, iface: { type: 'string' }, save: { type: 'string' }, conntrack: { type: 'boolean' }, json: { type: 'boolean' },
    ...MODEL_OPTIONS,
  },
};

/** What became of the frames of a capture. */
export interface ReplaySummary {
  frames: number;
  seconds: number;
  delivered: number;
  forwarded: number;
  sent: number;
  /** Dropped by a rule or policy of a table (or a match's hotdrop). */
  dropped: number;
  rejected: number;
  queued: number;
  stolen: number;
  /** Dropped by the kernel's own checks, by reason (martian-source, ttl, no-route, ...). */
  kernelDrops: Record<string, number>;
  /** PACKET_OTHERHOST: another host's MAC, dropped by ip_rcv before PREROUTING. */
  notForThisHost: number;
  /** Sent by the node (the capture saw them leave): not fed through the receive path. */
  outgoing: number;
  /** Not IPv4 or IPv6 (ARP and the like are not modelled). */
  notIp: number;
  /** Larger than the packet buffer: skipped. */
  tooLarge: number;
}

function newSummary(): ReplaySummary {
  return {
    frames: 0, seconds: 0, delivered: 0, forwarded: 0, sent: 0, dropped: 0, rejected: 0, queued: 0, stolen: 0,
    kernelDrops: {}, notForThisHost: 0, outgoing: 0, notIp: 0, tooLarge: 0,
  };
}

function count(s: ReplaySummary, kernel: Map<string, number>, f: Fate): void {
  switch (f.kind) {
    case 'dropped':
      if (f.reason === 'rule' || f.reason === 'policy' || f.reason === 'hotdrop') s.dropped++;
      else if (f.reason === 'other-host') s.notForThisHost++;
      else if (f.reason === 'not-ip') s.notIp++;
      else kernel.set(f.reason, (kernel.get(f.reason) ?? 0) + 1);
      return;
    default:
      s[f.kind]++;
  }
}

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
  if (s.tooLarge) parts.push(`${s.tooLarge} too large`);
  return `nfvm replay: ${s.frames} frames in ${s.seconds.toFixed(2)} s (${fps} frames/s): ${parts.join(', ')}`;
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

export function cmdReplay(argv: readonly string[]): string {
  const a = parseCommand(REPLAY, argv);
  if (a.help) return REPLAY.usage;
  if (a.positionals.length !== 1) throw new UsageError('replay takes exactly one SNAPSHOT directory');
  const file = a.str('pcap');
  if (file === undefined) throw new UsageError('replay needs --pcap FILE');
  const save = a.str('save') ?? 'iptables';
  if (save !== 'iptables' && save !== 'ip6tables') throw new UsageError(`--save takes iptables or ip6tables, not "${save}"`);
  const model = loadModel(a.positionals[0]!, a);
  const iface = a.str('iface');
  checkIface(model, iface);
  const tty = process.stderr.isTTY === true;
  let size = 0;
  try {
    if (file !== '-') size = statSync(file).size;
  } catch {
    // readCaptureFile reports it
  }
  const s = newSummary();
  const kernel = new Map<string, number>();
  const pkt = new Packet();
  const input: PacketInput = {};
  const t0 = performance.now();
  let last = t0;
  for (const f of readCaptureFile(file)) {
    s.frames++;
    if (isOutgoing(f)) {
      s.outgoing++;
      continue;
    }
    const iif = frameIface(model, f, iface, file);
    if (!model.node.links.has(iif)) throw new NfvmError('value', `frame ${s.frames} came in on ${iif}, which the snapshot does not have`, file, undefined, iif);
    resetMeta(pkt);
    if (!loadFrame(pkt, f)) {
      s.tooLarge++;
      continue;
    }
    model.captureCt(pkt);
    input.now = f.tsSec * 1e9 + f.tsNsec;
    count(s, kernel, model.receive(pkt, iif, input).fate);
    if (tty && (s.frames & 255) === 0) {
      const now = performance.now();
      if (now - last >= 100) {
        last = now;
        process.stderr.write(`\r\x1b[K${progressText(f.offset, size, s.frames, (now - t0) / 1000)}`);
      }
    }
  }
  s.seconds = (performance.now() - t0) / 1000;
  const ct = model.conntrackTable;
  const now = input.now ?? 0;
  s.kernelDrops = Object.fromEntries([...kernel].sort(([x], [y]) => (x < y ? -1 : 1)));
  if (tty) process.stderr.write(`\r\x1b[K${progressText(size, size, s.frames, s.seconds)}\n${summaryText(s)}\n`);
  const family = save === 'ip6tables' ? 'ip6' : 'ip';
  const rs = model.rulesetWithCounters(family);
  if (!rs) throw new NfvmError('io', `no ${save}-save.txt in the snapshot`, model.node.dir, undefined, undefined);
  const text = saveRuleset(rs, { counters: true });
  const listing = ct ? conntrackList(ct, now) : [];
  if (!a.flag('json')) {
    if (!a.flag('conntrack')) return text;
    if (!ct) throw new UsageError('--conntrack: the node does not run conntrack (no ruleset of it loads it)');
    if (tty) process.stderr.write(`${conntrackSummary(listing.length)}\n`);
    return listing.map((l) => `${l}\n`).join('');
  }
  return jsonDoc({
    schema: 1, snapshot: a.positionals[0]!, pcap: file, family, backend: family === 'ip6' ? model.backend6 : model.backend,
    engine: a.str('engine') ?? 'vm', summary: s, tables: rulesetJson(rs), text,
    ...(ct ? { conntrack: conntrackListJson(ct, now) } : {}),
  });
}
