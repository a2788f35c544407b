/**
 * The CPU a packet is handled on against the kernel (Linux 6.18), both
 * backends and engines: tcpreplay pinned to each CPU of the machine sends
 * the frames, the veth peer's softirq handles them on that CPU, and `-m
 * cpu` and bpf's SKF_AD_CPU load (raw PREROUTING) count them; the model
 * replays the capture with that `cpu` (`--cpu N`). Every PREROUTING counter
 * is compared.
 *
 * Root with iproute2, taskset, both iptables backends and tcpreplay; skips
 * with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type CounterTally, kernelSkip, preroutingCounters, senderNodeTopology } from '../helpers/kernel.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';

const TOOLS = ['ip', 'taskset', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('the packet\'s CPU against the kernel', TOOLS);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-cpu-'));
/** ld #SKF_AD_OFF + SKF_AD_CPU; jeq #1; ret 1 else ret 0 */
const BPF_CPU1 = '4,32 0 0 4294963236,21 0 1 1,6 0 0 1,6 0 0 0';
const RULES = ['-m cpu --cpu 0', '-m cpu --cpu 1', '-m cpu ! --cpu 1', `-m bpf --bytecode "${BPF_CPU1}"`, '-p udp -m cpu --cpu 1 -j DROP'];
const FRAMES = [9, 53, 9, 7].map((port, i) => encodeSpec(parseSpec(`udp 10.0.0.2:${5000 + i} > 10.0.0.1:${port} len ${10 + i} iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`)).data);

function pair(tag: string): { s: string; n: string } {
  const ns = { s: `nfvm-cpus${tag}-${id}`, n: `nfvm-cpun${tag}-${id}` };
  senderNodeTopology(ns, { sender: MAC.sender, eth0: MAC.node });
  return ns;
}

describe.skipIf(SKIP)('the packet\'s CPU against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('-m cpu and SKF_AD_CPU see the CPU the frames are handled on (each CPU, both backends, both engines)', async () => {
    const t: CounterTally = { compared: 0, nonzero: 0, diffs: [] };
    const cpus = Math.min(availableParallelism(), 2);
    for (let cpu = 0; cpu < cpus; cpu++) await preroutingCounters({ tag: `c${cpu}`, table: 'raw', rules: RULES, frames: FRAMES, tmp, pair, t, cpu });
    console.log(`the packet's CPU against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree on ${cpus} CPUs (${t.nonzero} kernel counters nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.compared).toBe(cpus * 2 * 2 * RULES.length);
  }, 120_000);
});
