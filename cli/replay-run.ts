/**
 * One replay of frames through a node model, frame by frame: what
 * `nfvm replay` does for each frame of its capture, whether it runs the
 * capture on one thread or each of its workers runs a share of it
 * (replay-workers.ts). Not a command.
 */
import type { Fate, PathResult } from '../hooks/path/fate.js';
import { isOutgoing, loadFrame, type Frame } from '../hooks/input/capture.js';
import { OutgoingLookback, type OutgoingMatch } from '../hooks/outgoing.js';
import { M_END, M_NHOFF } from '../vm/layout.js';
import { Packet, resetMeta } from '../vm/packet.js';
import type { NodeModel, PacketInput } from '../hooks/node.js';

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
  /** Frames a bridge forwarded (to one or more ports, a copy maybe delivered locally too). */
  bridged: number;
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
  /** The copies TEE sent to its gateways (nf_dup_ipv4/ipv6): out of a device, and those that went no further. */
  clones: { sent: number; notSent: number };
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

export function newSummary(): ReplaySummary {
  return {
    frames: 0, seconds: 0, delivered: 0, forwarded: 0, sent: 0, dropped: 0, rejected: 0, queued: 0, stolen: 0, bridged: 0,
    kernelDrops: {}, notForThisHost: 0, outgoing: 0, notIp: 0, tooLarge: 0,
    answers: { sent: 0, byKind: {}, notSent: 0 }, clones: { sent: 0, notSent: 0 }, outgoingMatch: undefined, notes: [],
  };
}

function countAnswers(s: ReplaySummary, r: PathResult): void {
  for (const a of r.answers) {
    if (a.clone) {
      if (a.fate.kind === 'sent') s.clones.sent++;
      else s.clones.notSent++;
    } else if (a.fate.kind === 'sent') {
      s.answers.sent++;
      s.answers.byKind[a.kind] = (s.answers.byKind[a.kind] ?? 0) + 1;
    } else s.answers.notSent++;
  }
}

/** The kernel's drops by reason: one count each, the last reason's at hand (drops come in runs of one reason). */
class KernelDrops {
  private readonly byReason = new Map<string, { n: number }>();
  private last = '';
  private lastCount = { n: 0 };
  add(reason: string): void {
    if (reason !== this.last) {
      let c = this.byReason.get(reason);
      if (!c) this.byReason.set(reason, (c = { n: 0 }));
      this.last = reason;
      this.lastCount = c;
    }
    this.lastCount.n++;
  }
  /** Sorted by reason. */
  record(): Record<string, number> {
    return Object.fromEntries([...this.byReason].sort(([x], [y]) => (x < y ? -1 : 1)).map(([r, c]) => [r, c.n]));
  }
}

function count(s: ReplaySummary, kernel: KernelDrops, f: Fate): void {
  switch (f.kind) {
    case 'dropped':
      if (f.reason === 'rule' || f.reason === 'policy' || f.reason === 'hotdrop') s.dropped++;
      else if (f.reason === 'other-host') s.notForThisHost++;
      else if (f.reason === 'not-ip') s.notIp++;
      else kernel.add(f.reason);
      return;
    // One property each (a computed key would be a megamorphic store on every frame).
    case 'forwarded': s.forwarded++; return;
    case 'delivered': s.delivered++; return;
    case 'sent': s.sent++; return;
    case 'rejected': s.rejected++; return;
    case 'queued': s.queued++; return;
    case 'stolen': s.stolen++; return;
  }
}


function newOutgoingMatch(): NonNullable<ReplaySummary['outgoingMatch']> {
  return { identical: 0, kernelFields: 0, differ: 0, notEmitted: 0, notCaptured: 0, frames: [] };
}

/** Feeds frames to `model` and keeps the summary. */
export class Replayer {
  readonly summary = newSummary();
  private readonly kernel = new KernelDrops();
  private readonly pkt = new Packet();
  private readonly input: PacketInput = {};
  /** What the node sends, kept for the outgoing frames a directional capture may show. */
  readonly lookback: OutgoingLookback | undefined;
  /** Frames the node's stack answered (answers draw on state shared by all connections: rate limits, IP IDs). */
  answered = 0;

  constructor(
    readonly model: NodeModel,
    directional: boolean,
  ) {
    this.lookback = directional ? new OutgoingLookback() : undefined;
    model.emitSink = this.lookback;
    // Each frame's result is counted before the next frame is fed.
    model.reuseResults = true;
  }

  /** The time of the last frame fed (ns), undefined before the first. */
  get now(): number | undefined {
    return this.input.now;
  }

  /** Frame number `n` (from 1) of the capture, on or leaving `dev`. */
  frame(f: Frame, dev: string, n: number): void {
    const s = this.summary;
    const pkt = this.pkt;
    s.frames++;
    if (isOutgoing(f)) {
      s.outgoing++;
      const lookback = this.lookback;
      if (!lookback) return;
      lookback.activate(dev);
      const o = (s.outgoingMatch ??= newOutgoingMatch());
      resetMeta(pkt);
      if (!loadFrame(pkt, f)) return;
      const m = lookback.match(n, dev, pkt.data.subarray(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!));
      if (m.verdict === 'identical') o.identical++;
      else if (m.verdict === 'kernel-fields') o.kernelFields++;
      else if (m.verdict === 'differs') o.differ++;
      else o.notEmitted++;
      if (m.verdict !== 'identical' && o.frames.length < 100) o.frames.push(m);
      return;
    }
    resetMeta(pkt);
    if (!loadFrame(pkt, f)) {
      s.tooLarge++;
      return;
    }
    this.model.captureCt(pkt);
    this.input.now = f.tsSec * 1e9 + f.tsNsec;
    const r = this.model.receive(pkt, dev, this.input);
    count(s, this.kernel, r.fate);
    if (r.answers.length) {
      this.answered++;
      countAnswers(s, r);
    }
  }

  /**
   * The summary once every frame is in: kernel drops sorted, the outgoing
   * frames' unpaired count. `outDevs`: the devices other workers saw
   * outgoing frames on (what this one sent out of them is counted too).
   */
  finish(outDevs: readonly string[] = []): ReplaySummary {
    if (this.lookback && outDevs.length) {
      for (const d of outDevs) this.lookback.activate(d);
      this.summary.outgoingMatch ??= newOutgoingMatch();
    }
    const s = this.summary;
    s.kernelDrops = this.kernel.record();
    if (s.outgoingMatch && this.lookback) s.outgoingMatch.notCaptured = this.lookback.notCaptured();
    return s;
  }
}
