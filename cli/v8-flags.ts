/**
 * V8 flags of the `nfvm` executable (cli/launch.ts) and of its runs.
 */
import { setFlagsFromString } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

/** Whether nfvm sets the young generation's growth: the main thread, the V8 measured, no node option of the user's for it (command line or NODE_OPTIONS). */
function ours(): boolean {
  // a replay worker thread runs the executable again: the main thread has set the flags for the process
  return isMainThread && process.versions.v8.startsWith('11.') && ![...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space'));
}

/**
 * The executable's V8 flags, set before the bundle is compiled (V8 takes
 * a code cache only under the flags it was made with, cli/code-cache.ts).
 *
 * V8's young generation: its semi-spaces start at 1 MiB and, on V8 11
 * (Node 20), double up to 16 MiB while many objects survive, as they do
 * while a big ruleset is parsed; that space stays for the rest of the run.
 * Kept at its start (growth factor 1) until an input of BIG_INPUT bytes
 * comes (bigInput), the 100,000-rule rulesets of bench/big.ts peaked at
 * 184-187 MB in `disasm --optimize=1` rather than 196-214, and at
 * 125-153 MB in `save` rather than 154-183, for 2-13% more time; replay's
 * packet loop, which allocates nothing, runs as fast (bench/stateful.ts's
 * firewall: within the noise of 4 runs each). Set only on the V8 it was
 * measured on (another may not know the flag, and would say so on
 * stderr), and never over a node option the user gave for the young
 * generation.
 */
export function setV8Flags(): void {
  if (ours()) setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Bytes of input (a ruleset file, a snapshot's files together) from which
 * the young generation grows again as V8's default has it: about 220,000
 * rules of kube-proxy's, whose run takes 400 MB or more anyway, and 10-20%
 * more time with the young generation kept small (`replay` of a
 * 30,000-Service node of 10 endpoints, 960,000 rules: 11.3-12.2 s rather
 * than 9.9-10.9; of 2 endpoints, 240,000 rules and 35 MB: 580 ms of
 * scavenges rather than 300).
 */
export const BIG_INPUT = 32 << 20;

/** An input of `bytes` is read: from BIG_INPUT on, the young generation may grow (V8's default factor, 2). */
export function bigInput(bytes: number): void {
  if (bytes >= BIG_INPUT && ours()) setFlagsFromString('--semi-space-growth-factor=2');
}
