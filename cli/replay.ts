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
import { NfvmError } from '../core/errors.js';
import { saveRuleset } from '../compiler/save.js';
import type { Fate } from '../hooks/path/fate.js';
import { isOutgoing, loadFrame, mayHaveOutgoing, readCapture, readCaptureBytes } from '../hooks/input/capture.js';
import { OutgoingMatcher, type OutgoingMatch } from '../hooks/outgoing.js';
import type { PathResult } from '../hooks/path/fate.js';
import { M_END, M_NHOFF } from '../vm/layout.js';
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
      (default: each frame's pcapng interface, or its LINUX_SLL2 ifindex),
      in order, on the capture's clock, and print the ruleset with its
      counters as \`iptables-save -c\` would on the node (--save ip6tables:
      the ip6tables ruleset, as \`ip6tables-save -c\`); --conntrack prints
      the conntrack table instead, as \`conntrack -L\` would at the last
      frame's time (its summary line on stderr). The node's answers (ICMP,
      TCP resets, REJECT's) cross OUTPUT and POSTROUTING. Frames the capture
      saw leave the node are not fed: each is compared with what the node
      sent. On a terminal: progress and a summary on stderr; --json: the
      summary with the counters.
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
  /** The packets the node's stack sent in answer, out of a device (sent) by kind, and those that went no further (a rule, no route, ...). */
  answers: { sent: number; byKind: Record<string, number>; notSent: number };
  /** The outgoing frames against what the node sent (only when the capture has outgoing frames). */
  outgoingMatch: {
    identical: number;
    /** Identical but for fields the kernel fills itself (a random IP ID, a checksum left to the device). */
    kernelFields: number;
    differ: number;
    notEmitted: number;
    /** Packets the node sent out of a device the capture saw outgoing frames on, with no frame to pair. */
    notCaptured: number;
    /** The first of each verdict but identical (at most 100). */
    frames: OutgoingMatch[];
  } | undefined;
  /** What the summary should say besides the counts (no ss.txt, ...). */
  notes: string[];
}

function newSummary(): ReplaySummary {
  return {
    frames: 0, seconds: 0, delivered: 0, forwarded: 0, sent: 0, dropped: 0, rejected: 0, queued: 0, stolen: 0,
    kernelDrops: {}, notForThisHost: 0, outgoing: 0, notIp: 0, tooLarge: 0,
    answers: { sent: 0, byKind: {}, notSent: 0 }, outgoingMatch: undefined, notes: [],
  };
}

function countAnswers(s: ReplaySummary, r: PathResult): void {
  for (const a of r.answers) {
    if (a.fate.kind === 'sent') {
      s.answers.sent++;
      s.answers.byKind[a.kind] = (s.answers.byKind[a.kind] ?? 0) + 1;
    } else s.answers.notSent++;
  }
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
  const lines = [`nfvm replay: ${s.frames} frames in ${s.seconds.toFixed(2)} s (${fps} frames/s): ${parts.join(', ')}`];
  const kinds = Object.entries(s.answers.byKind).sort(([x], [y]) => (x < y ? -1 : 1));
  lines.push(`nfvm replay: answers sent: ${s.answers.sent}${kinds.length ? ` (${kinds.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}` +
    `${s.answers.notSent ? `, ${s.answers.notSent} not sent (dropped in OUTPUT/POSTROUTING, no route, or delivered here)` : ''}`);
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
    // readCaptureBytes reports it
  }
  const s = newSummary();
  const kernel = new Map<string, number>();
  const pkt = new Packet();
  const input: PacketInput = {};
  // The capture is read once (stdin cannot be read twice). The interfaces
  // it saw frames leave by: what the node sends out of them is recorded and
  // paired; only a capture that can mark frames outgoing needs the pass.
  const { buf, name } = readCaptureBytes(file);
  const outIfaces = new Set<string>();
  if (mayHaveOutgoing(buf, name)) {
    let n = 0;
    for (const f of readCapture(buf, name)) {
      n++;
      if (isOutgoing(f)) outIfaces.add(frameIface(model, f, iface, file, n));
    }
  }
  const matcher = outIfaces.size ? new OutgoingMatcher() : undefined;
  if (matcher) {
    model.recordEmitted = true;
    s.outgoingMatch = { identical: 0, kernelFields: 0, differ: 0, notEmitted: 0, notCaptured: 0, frames: [] };
  }
  const t0 = performance.now();
  let last = t0;
  for (const f of readCapture(buf, name)) {
    s.frames++;
    const dev = frameIface(model, f, iface, file, s.frames);
    if (isOutgoing(f)) {
      s.outgoing++;
      resetMeta(pkt);
      if (!matcher || !loadFrame(pkt, f)) continue;
      const m = matcher.match(s.frames, dev, pkt.data.subarray(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!));
      const o = s.outgoingMatch!;
      if (m.verdict === 'identical') o.identical++;
      else if (m.verdict === 'kernel-fields') o.kernelFields++;
      else if (m.verdict === 'differs') o.differ++;
      else o.notEmitted++;
      if (m.verdict !== 'identical' && o.frames.length < 100) o.frames.push(m);
      continue;
    }
    resetMeta(pkt);
    if (!loadFrame(pkt, f)) {
      s.tooLarge++;
      continue;
    }
    model.captureCt(pkt);
    input.now = f.tsSec * 1e9 + f.tsNsec;
    const r = model.receive(pkt, dev, input);
    count(s, kernel, r.fate);
    countAnswers(s, r);
    if (matcher && r.emitted) matcher.add(r.emitted.filter((e) => outIfaces.has(e.dev)));
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
  if (matcher) s.outgoingMatch!.notCaptured = matcher.unmatched() + matcher.overflow;
  if (model.stack.noSocketTableUsed) s.notes.push(`${a.positionals[0]!}: no ss.txt in the snapshot: every TCP and UDP port is assumed closed`);
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
