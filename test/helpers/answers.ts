/**
 * The two-sided capture of the answers kernel tests: tcpdump on every
 * interface of the node namespace while tcpreplay injects frames on the
 * sender's veth, then that capture replayed into a node model as `nfvm
 * replay` replays it (each frame on the interface of its ifindex, the
 * outgoing ones paired with what nfvm sent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { run, flattenCounters, type KernelCounter } from './kernel.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { isOutgoing, loadFrame, readCaptureFile } from '../../hooks/input/capture.js';
import { OutgoingMatcher, type OutgoingMatch } from '../../hooks/outgoing.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { M_END, M_NHOFF } from '../../vm/layout.js';
import type { Ruleset } from '../../core/ast.js';

/** Runs python3 `script` inside namespace `ns` (sockets for the node) and waits for it to print `ready`. */
export async function pythonInNs(ns: string, script: string): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${ns}: python3 did not get ready`)), 10_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return p;
}

/**
 * Captures (LINUX_SLL2, into `cap`) what node namespace `node` receives and sends while `pcap` is replayed on
 * `sender`'s veth0; the number of frames the node received (not counting loopback) and tcpdump's closing
 * statistics. A capture that holds fewer than were sent lost some: the caller runs the case again.
 */
export async function captureTwoSided(node: string, sender: string, pcap: string, cap: string): Promise<{ received: number; tcpdump: string }> {
  const said = await captureDuring(node, cap, async () => {
    const send = await run('ip', ['netns', 'exec', sender, 'tcpreplay', '-q', '--intf1=veth0', pcap]);
    expect(send.code, send.stderr).toBe(0);
  });
  let received = 0;
  // ifindex 1 is a namespace's loopback
  for (const f of readCaptureFile(cap)) if (!isOutgoing(f) && f.sllIfindex !== 1) received++;
  return { received, tcpdump: said.split('\n').filter((l) => /packets/.test(l)).join(', ') };
}

/**
 * A case's kernel run: `load` (its rules loaded and the node's snapshot
 * taken, for run `attempt`; the snapshot's directory) then `pcap` sent
 * while the node is captured into `cap`. A capture short of the frames
 * sent lost some (tcpdump): the case runs once more, after `fresh` has made
 * the namespaces anew, since the node's inet_peer entries (its ICMP tokens,
 * its redirect backoff) live two minutes at least and no wait in the same
 * ones makes the second run equal to a first. The snapshot of the run kept.
 */
export async function kernelRun(label: string, ns: { node: string; sender: string }, pcap: string, cap: string, sent: number,
  fresh: () => Promise<void>, load: (attempt: number) => Promise<string>): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await fresh();
    const snap = await load(attempt);
    const { received, tcpdump } = await captureTwoSided(ns.node, ns.sender, pcap, cap);
    if (received >= sent) return snap;
    console.log(`${label}: the node's capture holds ${received} of the ${sent} frames sent (run ${attempt}; tcpdump: ${tcpdump})`);
    expect(attempt, 'a second capture short of the frames sent').toBe(1);
  }
}

/** `tcpdump -i any` in namespace `node` writes a LINUX_SLL2 capture to `cap` while `send` runs; what tcpdump said. */
export async function captureDuring(node: string, cap: string, send: () => Promise<void>): Promise<string> {
  const dump = spawn('ip', ['netns', 'exec', node, 'tcpdump', '-i', 'any', '-y', 'LINUX_SLL2', '-w', cap, '-U', '--immediate-mode', '-s', '0', '-n', '-Z', 'root'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    dump.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  // The socket is bound a moment after tcpdump says it listens.
  await new Promise((r) => setTimeout(r, 1000));
  await send();
  await new Promise((r) => setTimeout(r, 1000));
  await new Promise((r) => {
    dump.on('close', r);
    dump.kill('SIGINT');
  });
  return said;
}

/** The times the node received the frames of two-sided capture `cap`, in order: the frames it was sent, not those it sent. */
export function arrivalTimes(snap: string, cap: string): { tsSec: number; tsNsec: number }[] {
  const node = readSnapshot(snap);
  const out: { tsSec: number; tsNsec: number }[] = [];
  for (const f of readCaptureFile(cap)) {
    if (isOutgoing(f) || node.linksByIndex.get(f.sllIfindex)?.name === 'lo') continue;
    out.push({ tsSec: f.tsSec, tsNsec: f.tsNsec });
  }
  return out;
}

/** The two-sided capture `cap` replayed into the node of snapshot `snap` on `engine`: what it sent paired with the capture, and its ruleset with counters. */
export function replayTwoSided(snap: string, cap: string, engine: EngineKind, family: 'ip' | 'ip6' = 'ip'): { results: OutgoingMatch[]; matcher: OutgoingMatcher; inbound: number; ruleset: Ruleset } {
  const node = readSnapshot(snap);
  const model = buildNodeModel(node, { engine });
  model.recordEmitted = true;
  const matcher = new OutgoingMatcher();
  const pkt = new Packet();
  const results: OutgoingMatch[] = [];
  let inbound = 0;
  let n = 0;
  for (const f of readCaptureFile(cap)) {
    n++;
    const dev = node.linksByIndex.get(f.sllIfindex)?.name;
    expect(dev, `frame ${n}: ifindex ${f.sllIfindex}`).toBeDefined();
    if (dev === 'lo') continue;
    resetMeta(pkt);
    loadFrame(pkt, f);
    if (isOutgoing(f)) {
      results.push(matcher.match(n, dev!, pkt.data.slice(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!)));
      continue;
    }
    inbound++;
    model.captureCt(pkt);
    model.setNow(f.tsSec * 1e9 + f.tsNsec);
    const r = model.receive(pkt, dev!);
    matcher.add(r.emitted ?? []);
  }
  return { results, matcher, inbound, ruleset: model.rulesetWithCounters(family)! };
}

/**
 * Replays `cap` into the node of `snap` on `engine` and expects every
 * counter of `kernel` (flattenCounters of the kernel's save of `family`,
 * OUTPUT and POSTROUTING included) and every frame the node sent to agree, but for the
 * kernel fields the caller then checks; logs a summary line.
 */
export function answersAgree(label: string, kernel: Map<string, KernelCounter>, snap: string, cap: string, engine: EngineKind, family: 'ip' | 'ip6' = 'ip'): { results: OutgoingMatch[] } {
  const { results, matcher, inbound, ruleset } = replayTwoSided(snap, cap, engine, family);
  const mine = flattenCounters(ruleset, true);
  const diffs: string[] = [];
  let agree = 0;
  let nonzero = 0;
  for (const [key, kc] of kernel) {
    const mc = mine.get(key);
    if (kc.packets !== 0n) nonzero++;
    if (mc && mc.packets === kc.packets && mc.bytes === kc.bytes) agree++;
    else diffs.push(`  ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
  }
  const by = (v: string) => results.filter((x) => x.verdict === v);
  const random = new Set(by('kernel-fields').flatMap((x) => x.fields));
  const kinds = new Map<string, number>();
  for (const x of results) if (x.verdict !== 'not-emitted') kinds.set(x.kind, (kinds.get(x.kind) ?? 0) + 1);
  console.log(`${label} [${engine}]: ${inbound} frames in, ${results.length} out; ` +
    `${by('identical').length} identical, ${by('kernel-fields').length} identical but for ${[...random].join(', ') || '-'}, ` +
    `${by('differs').length} differ, ${by('not-emitted').length} not sent by nfvm, ${matcher.unmatched()} sent by nfvm only; ` +
    `${agree}/${kernel.size} counters agree (${nonzero} non-zero); by kind: ${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  expect(diffs.join('\n'), `sent by nfvm only: ${matcher.unmatchedList().join('; ') || '-'}`).toBe('');
  expect(by('differs').map((x) => `frame ${x.frame} (${x.kind}): ${x.fields.join(', ')}`)).toEqual([]);
  expect(by('not-emitted').map((x) => `frame ${x.frame} on ${x.iface}`)).toEqual([]);
  expect(matcher.unmatchedList()).toEqual([]);
  return { results };
}
