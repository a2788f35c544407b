/**
 * Running the real iptables-legacy tools in throwaway network namespaces,
 * and comparing what they print with nfvm's output.
 *
 * Every namespace gets a unique name and is deleted in a `finally`, also on
 * failure. The installed tools are iptables 1.8.9; nfvm prints what 1.8.13
 * prints, so NORMALISATIONS turns the 1.8.9 forms that changed into the
 * 1.8.13 ones, each naming the iptables change; nothing else is adjusted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitTables } from './dumps.js';
import { buildNodeModel, captureCt, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { LINKTYPE_ETHERNET, loadFrame, readCaptureFile, writePcap } from '../../hooks/input/capture.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { cmdReplay } from '../../cli/replay.js';
import { outputText } from '../../cli/io.js';
import { inetChecksum, parseSpec, specPacket } from '../../hooks/input/spec.js';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
/** The namespaces this process made and has not deleted yet. */
const madeNetns = new Set<string>();
let netnsExitHooked = false;

function deleteMadeNetns(): void {
  for (const ns of madeNetns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  madeNetns.clear();
}

/**
 * `ip netns add ns`, recorded: what a test run cut short (a timeout that
 * kills the worker with SIGTERM, ^C) leaves is deleted when the process
 * exits, not only by the suite's afterAll.
 */
export function netnsAdd(ns: string): { status: number | null; stderr: string } {
  if (!netnsExitHooked) {
    netnsExitHooked = true;
    process.once('exit', deleteMadeNetns);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        deleteMadeNetns();
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (r.status === 0) madeNetns.add(ns);
  return { status: r.status, stderr: r.stderr };
}

/** `ip netns del ns` of a namespace netnsAdd made. */
export function netnsDel(ns: string): void {
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  madeNetns.delete(ns);
}

export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
/** The iptables-legacy tools the round-trip tests run. */
export const LEGACY_TOOLS = ['iptables-legacy-restore', 'ip6tables-legacy-restore', 'iptables-legacy-save', 'ip6tables-legacy-save', 'ip'] as const;
/** A network namespace can be made and iptables-legacy works in it (ip_tables in the kernel). */
export function preflight(): string | undefined {
  const ns = `nfvm-dump-pre-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = netnsAdd(ns);
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  try {
    for (const tool of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
      const r = spawnSync('ip', ['netns', 'exec', ns, tool], { encoding: 'utf8' });
      if (r.status !== 0) return `${tool} failed in a namespace: ${r.stderr.trim()}`;
    }
    return undefined;
  } finally {
    netnsDel(ns);
  }
}

/**
 * 1.8.9 → 1.8.13 printing differences, applied to each line the installed
 * iptables-legacy-save prints. Keep this minimal: each entry names the
 * iptables change that makes 1.8.13 print differently.
 */
export const NORMALISATIONS: readonly { name: string; change: string; apply(line: string): string }[] = [
  {
    name: '-p NAME (an /etc/protocols name) → the xtables_chain_protos name or the number',
    change:
      'iptables 1.8.11, "iptables-save: Avoid /etc/protocols lookups" (Phil Sutter, January 2024; with ' +
      '"libxtables: Add dccp and ipcomp to xtables_chain_protos"): ' +
      'save_rule_details() calls proto_to_name(proto, true), so iptables-save prints only the names of ' +
      'xtables_chain_protos[] and the number for every other protocol; 1.8.9 printed getprotobynumber() names (`-p gre`, 1.8.13 `-p 47`)',
    apply: (line) =>
      line.replace(/( -p )([A-Za-z][A-Za-z0-9._-]*)(?= |$)/, (m, pre: string, name: string) => {
        const n = etcProtocols().get(name);
        if (n === undefined) return m;
        return pre + (CHAIN_PROTOS.find(([, num]) => num === n)?.[0] ?? String(n));
      }),
  },
];

/** xtables_chain_protos[] of iptables 1.8.13 (libxtables/xtables.c), in order: the names iptables-save prints. */
const CHAIN_PROTOS: ReadonlyArray<readonly [string, number]> = [
  ['tcp', 6], ['sctp', 132], ['udp', 17], ['udplite', 136], ['icmp', 1], ['ipv6-icmp', 58], ['icmpv6', 58],
  ['esp', 50], ['ah', 51], ['mobility-header', 135], ['ipv6-mh', 135], ['mh', 135], ['dccp', 33], ['ipcomp', 108], ['all', 0],
];

let etcProtocolsCache: Map<string, number> | undefined;
/** This machine's /etc/protocols (what the installed iptables-save's getprotobynumber() reads). */
function etcProtocols(): Map<string, number> {
  if (etcProtocolsCache) return etcProtocolsCache;
  const m = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync('/etc/protocols', 'utf8');
  } catch {
    // no /etc/protocols: iptables 1.8.9 printed numbers too
  }
  for (const line of text.split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length >= 2 && /^\d+$/.test(f[1]!)) m.set(f[0]!, Number(f[1]));
  }
  return (etcProtocolsCache = m);
}

/** How many kernel lines each normalisation changed (for the summary). */
export const normalised = new Map<string, number>();

/**
 * `! -i +` / `! -o +` (an inverted match on every interface: never true):
 * iptables 1.8.13 prints it (iptables.t: `! -i +;=;OK`, the save_iface()
 * rewrite of iptables 1.8.10 that prints the name instead of walking the
 * mask); 1.8.9 walks an all-zero mask and prints nothing, so the kernel's
 * text cannot show it. Likewise an inverted full port range (`! --dport :`):
 * 1.8.13 tcp/udp save prints `! --dport 0:65535` (libxt_tcp.t, libxt_udp.t),
 * 1.8.9 printed ranges only when they were not the full range. Applied to
 * nfvm's lines before comparing with 1.8.9.
 */
export function dropLostInversion(line: string): string {
  return line.replace(/ ! -([io]) \+(?= |$)/g, '').replace(/ ! --([sd]port) 0:65535(?= |$)/g, '');
}
export function normalise(line: string): string {
  for (const n of NORMALISATIONS) {
    const out = n.apply(line);
    if (out !== line) normalised.set(n.name, (normalised.get(n.name) ?? 0) + 1);
    line = out;
  }
  return line;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.on('error', () => {}); // the tool may exit before reading all input
    p.stdin.end(input ?? '');
  });
}

export interface KernelResult {
  /** iptables-restore succeeded. */
  loaded: boolean;
  restoreStderr: string;
  /** iptables-save output (also after a refusal: tables committed before the failing one stay). */
  save: string;
}

let nsSeq = 0;
/** Loads `d.text` with iptables-legacy-restore in a fresh namespace and reads it back with iptables-legacy-save. */
export async function kernelRoundTrip(d: { family: 'ip' | 'ip6'; text: string; counters: boolean }): Promise<KernelResult> {
  const ns = `nfvm-k-${process.pid}-${++nsSeq}-${randomBytes(3).toString('hex')}`;
  const pre = d.family === 'ip6' ? 'ip6tables' : 'iptables';
  const c = d.counters ? ['-c'] : [];
  const add = netnsAdd(ns);
  if (add.status !== 0) throw new Error(`ip netns add ${ns} failed: ${add.stderr}`);
  try {
    const r = await run('ip', ['netns', 'exec', ns, `${pre}-legacy-restore`, ...c], d.text);
    const s = await run('ip', ['netns', 'exec', ns, `${pre}-legacy-save`, ...c]);
    if (s.code !== 0) throw new Error(`${pre}-legacy-save failed in ${ns}: ${s.stderr}`);
    return { loaded: r.code === 0, restoreStderr: r.stderr.trim(), save: s.stdout };
  } finally {
    netnsDel(ns);
  }
}

export async function pool<T, R>(items: readonly T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}


/** Line-level comparison per table, after the 1.8.9 → 1.8.13 normalisations. */
export function compareSaves(kernelSave: string, nfvmOut: string, maxPerTable = 6): string[] {
  const k = splitTables(kernelSave);
  const n = splitTables(nfvmOut);
  const diffs: string[] = [];
  for (const t of new Set([...k.keys(), ...n.keys()])) {
    const kl = k.get(t)?.map(normalise);
    const nl = n.get(t)?.map(dropLostInversion);
    if (!kl || !nl) {
      diffs.push(`table ${t}: ${kl ? 'missing in nfvm output' : 'not in the kernel'}`);
      continue;
    }
    const shown: string[] = [];
    const len = Math.max(kl.length, nl.length);
    for (let i = 0; i < len && shown.length < maxPerTable; i++) {
      if (kl[i] !== nl[i]) shown.push(`  kernel: ${kl[i] ?? '(end)'}\n  nfvm:   ${nl[i] ?? '(end)'}`);
    }
    if (shown.length) diffs.push(`table ${t} (${kl.length} kernel lines, ${nl.length} nfvm lines):\n${shown.join('\n')}`);
  }
  return diffs;
}

/**
 * Shell for a node whose ICMP errors are not rate-limited (per peer in either
 * family, nor overall): a comparison whose subject is not the limits, where
 * the kernel's limiter state kept between cases, or a loaded machine's
 * timing, would decide which errors are sent.
 */
export const ICMP_UNLIMITED = 'sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=10000';

/** Runs a shell script inside namespace `ns`; throws with its stderr on failure. */
export function nsSh(ns: string, script: string): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-ec', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${ns}: ${script.split('\n')[0]}...: ${r.stderr}`);
}

/**
 * The node of kernel-oracle.md between a sender and a receiver namespace
 * (names in `NS`): eth0 10.0.0.1/24 + 192.168.50.1/32, eth1 10.1.0.1/24,
 * forwarding on, default via 10.1.0.2, rp_filter 0, IPv6 off, permanent
 * neighbours, fixed MACs; the sender and receiver stay silent (OUTPUT DROP).
 */
export function replayTopology(NS: { s: string; n: string; r: string }, MAC: { sender: string; eth0: string; eth1: string; receiver: string }): void {
  const sh = nsSh;
  for (const ns of Object.values(NS)) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    sh(ns, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  }
  sh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}`);
  sh(NS.r, `ip link add veth0 address ${MAC.receiver} type veth peer name eth1 netns ${NS.n}`);
  sh(NS.n, `ip link set eth0 address ${MAC.eth0}
ip link set eth1 address ${MAC.eth1}
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl -qw net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.eth1.disable_ipv6=1
ip addr add 10.0.0.1/24 dev eth0
ip addr add 192.168.50.1/32 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip link set eth0 up; ip link set eth1 up
ip route add default via 10.1.0.2
ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.1.0.2 lladdr ${MAC.receiver} dev eth1 nud permanent
ip neigh replace 10.0.0.3 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.1.0.5 lladdr ${MAC.receiver} dev eth1 nud permanent
ip neigh replace 10.1.0.7 lladdr ${MAC.receiver} dev eth1 nud permanent`);
  for (const ns of [NS.s, NS.r]) {
    sh(ns, `sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1
ip link set veth0 up
iptables-legacy -P OUTPUT DROP`);
  }
  sh(NS.s, 'ip addr add 10.0.0.2/24 dev veth0');
  sh(NS.r, 'ip addr add 10.1.0.2/24 dev veth0');
  // Wait for carrier on both veth pairs.
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/LOWER_UP/g) ?? []).length >= 3) break;
    spawnSync('sleep', ['0.1']);
  }
}

/** The command runner `captureSnapshot` takes, inside `ns`, with the legacy iptables tools. */
export function nsSnapshotRunner(ns: string): (argv: readonly string[]) => { status: number | null; stdout: string; stderr: string } {
  return (argv) => {
    const a = argv[0] === 'iptables-save' ? ['iptables-legacy-save'] : argv[0] === 'ip6tables-save' ? ['ip6tables-legacy-save'] : argv;
    const r = spawnSync('ip', ['netns', 'exec', ns, ...a], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

export interface KernelCounter {
  packets: bigint;
  bytes: bigint;
}

/**
 * "table chain #n" / "table chain policy" → counters of a saved ruleset,
 * every chain (the node's own answers pass OUTPUT and POSTROUTING: nfvm
 * sends them too); without `all`, the builtin OUTPUT and POSTROUTING chains
 * are left out, for a test whose kernel answers what nfvm cannot (its
 * reason at the call).
 */
export function flattenCounters(rs: { tables: Map<string, { chains: Map<string, { name: string; builtin: boolean; policyCounters: KernelCounter; rules: { counters: KernelCounter | undefined }[] }> }> }, all = true): Map<string, KernelCounter> {
  const out = new Map<string, KernelCounter>();
  for (const [t, table] of rs.tables)
    for (const c of table.chains.values()) {
      if (!all && c.builtin && (c.name === 'OUTPUT' || c.name === 'POSTROUTING')) continue;
      c.rules.forEach((r, i) => out.set(`${t} ${c.name} #${i + 1}`, r.counters ?? { packets: 0n, bytes: 0n }));
      if (c.builtin) out.set(`${t} ${c.name} policy`, c.policyCounters);
    }
  return out;
}

/**
 * flattenCounters() (every chain) of an `iptables-save -c` text, read from its counters
 * and chain names alone: the kernel's save output is not always a ruleset
 * iptables-restore (or nfvm, which parses as it does) reads back. iptables
 * 1.8 prints `--cluster-local-node 7` as `--cluster-local-nodemask
 * 0x00000040` and refuses that mask on restore (its range is 1-32).
 */
export function saveCounters(text: string): Map<string, KernelCounter> {
  const out = new Map<string, KernelCounter>();
  const counter = (s: string): KernelCounter => {
    const m = /^\[(\d+):(\d+)\]$/.exec(s);
    if (!m) throw new Error(`saveCounters: not a counter pair: ${s}`);
    return { packets: BigInt(m[1]!), bytes: BigInt(m[2]!) };
  };
  let table = '';
  const rules = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1);
      rules.clear();
    } else if (line.startsWith(':')) {
      // a builtin chain's policy (a user chain has `-`)
      const [name, policy, ctr] = line.slice(1).split(' ');
      if (policy !== '-') out.set(`${table} ${name} policy`, counter(ctr!));
    } else if (line.startsWith('[') || line.startsWith('-A ')) {
      // a rule without counters counts none (as flattenCounters has it)
      const m = /^(?:(\[\d+:\d+\]) )?-A (\S+)/.exec(line);
      if (!m) throw new Error(`saveCounters: not a rule: ${line}`);
      const n = (rules.get(m[2]!) ?? 0) + 1;
      rules.set(m[2]!, n);
      out.set(`${table} ${m[2]} #${n}`, m[1] ? counter(m[1]) : { packets: 0n, bytes: 0n });
    }
  }
  return out;
}

/**
 * Whether a test that needs something this machine lacks (root, a tool)
 * must skip: `why` says what is missing (undefined: nothing is). The skip is
 * stated on stderr; under CI (env CI set) a missing prerequisite is a
 * failure instead.
 */
export function skipBecause(what: string, why: string | undefined): boolean {
  if (why === undefined) return false;
  if (process.env.CI) throw new Error(`${what}: ${why} (required under CI)`);
  console.warn(`[skip] ${what}: ${why}`);
  return true;
}

/**
 * The one policy of the kernel tests: they need root and `tools` (and what
 * `more` checks, e.g. that a namespace can be made); without them the suite
 * skips with one line saying what is missing, and under CI fails
 * (skipBecause).
 */
export function kernelSkip(what: string, tools: readonly string[], more?: () => string | undefined): boolean {
  const missing = tools.filter((t) => !have(t));
  return skipBecause(what, !IS_ROOT ? 'needs root' : missing.length ? `needs ${missing.join(', ')}` : more?.());
}

/** Replays every frame of a capture into a node model, as `nfvm replay` does (on `iface` unless the capture names one). */
export function replayCapture(model: NodeModel, pcap: string, iface: string): void {
  const pkt = new Packet();
  for (const f of readCaptureFile(pcap)) {
    resetMeta(pkt);
    loadFrame(pkt, f);
    captureCt(model, pkt);
    model.receive(pkt, iface);
  }
}

/**
 * The node model of snapshot `snap` on `engine` after the datagram the node
 * sends in the kernel tests of senderForwardingTopology (udp to the sender,
 * port 9; `family` ip6: senderForwardingTopology6's, and the ip6tables
 * counters) and the capture's frames on eth0; the differences of its counters
 * from the kernel's (those of rules the model has), `label` first, counted into `tally`.
 */
export function sentAndReplayed(snap: string, engine: EngineKind, pcap: string, kernel: ReadonlyMap<string, KernelCounter>, tally: { counters: number; agree: number; nonzero: number }, label: string, allChains = true, family: 'ip' | 'ip6' = 'ip'): { model: NodeModel; diffs: string[] } {
  const model = buildNodeModel(readSnapshot(snap), { engine });
  // senderForwardingTopology6: the node 2001:db8::1, the sender 2001:db8::2
  model.send(specPacket(parseSpec(family === 'ip' ? 'udp 10.0.0.1:40000 > 10.0.0.2:9 len 3 df from local' : 'udp [2001:db8::1]:40000 > [2001:db8::2]:9 len 3 from local')));
  replayCapture(model, pcap, 'eth0');
  const mine = flattenCounters(model.rulesetWithCounters(family)!, allChains);
  const wanted = new Map([...kernel].filter(([k]) => mine.has(k)));
  return { model, diffs: counterDiffs(wanted, mine, tally).map((l) => `${label}${l}`) };
}

/** Compares every kernel counter with the model's: counts into `tally` (compared, agreeing, non-zero in the kernel) and returns the differing ones as lines. */
export function counterDiffs(kernel: ReadonlyMap<string, KernelCounter>, mine: ReadonlyMap<string, KernelCounter>, tally: { counters: number; agree: number; nonzero: number }): string[] {
  const diffs: string[] = [];
  for (const [key, kc] of kernel) {
    const mc = mine.get(key);
    tally.counters++;
    if (kc.packets !== 0n) tally.nonzero++;
    if (mc && mc.packets === kc.packets && mc.bytes === kc.bytes) tally.agree++;
    else diffs.push(`  ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
  }
  return diffs;
}

/** Every frame of a capture into a node model on `iface` at its timestamp (the rate and state matches' clock), as `nfvm replay` does. */
export function replayCaptureTimed(model: NodeModel, pcap: string, iface: string): void {
  const pkt = new Packet();
  for (const f of readCaptureFile(pcap)) {
    resetMeta(pkt);
    loadFrame(pkt, f);
    model.captureCt(pkt);
    model.receive(pkt, iface, { now: f.tsSec * 1e9 + f.tsNsec });
  }
}

/** The snapshot runner of namespace `ns` with the backend's save tools (for captureSnapshot). */
export function backendRunner(ns: string, backend: 'legacy' | 'nft'): (argv: readonly string[]) => { status: number | null; stdout: string; stderr: string } {
  return (argv) => {
    const a = argv[0] === 'iptables-save' ? [`iptables-${backend}-save`] : argv[0] === 'ip6tables-save' ? [`ip6tables-${backend}-save`] : argv;
    const r = spawnSync('ip', ['netns', 'exec', ns, ...a], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

/** A `conntrack -L -o extended` line without its timeout, and the timeout. */
export function ctLineSplit(line: string): { rest: string; timeout: number } {
  const f = line.trim().split(/\s+/);
  // ipv4 2 tcp 6 TIMEOUT ...
  return { rest: [...f.slice(0, 4), ...f.slice(5)].join(' '), timeout: Number(f[4]) };
}

/**
 * The line with what the NAT core remapped at random in the kernel (a
 * source port: the reply's destination port, replaced by the port class of
 * the original source port; an ICMP query id: the reply's id) made
 * generic, or undefined when the line has neither (or the port is out of
 * its class).
 */
export function ctLoose(rest: string): string | undefined {
  const f = rest.split(' ');
  const at = (k: string) => f.flatMap((x, i) => (x.startsWith(k) ? [i] : []));
  const ids = at('id=');
  if (ids.length >= 2) {
    f[ids[1]!] = 'id=*';
    return f.join(' ');
  }
  const sports = at('sport=');
  const dports = at('dport=');
  if (sports.length < 2 || dports.length < 2) return undefined;
  const orig = Number(f[sports[0]!]!.slice(6));
  const mapped = Number(f[dports[1]!]!.slice(6));
  // the class of the original port (nf_nat_l4proto_unique_tuple without a range), or a privileged
  // port moved above 1023 (a range such as libvirt's MASQUERADE --to-ports 1024-65535)
  const [lo, hi] = orig < 1024 && mapped >= 1024 ? [1024, 65535] : orig < 512 ? [1, 511] : orig < 1024 ? [600, 1023] : [1024, 65535];
  if (mapped < lo || mapped > hi) return undefined;
  f[dports[1]!] = `dport=${lo}-${hi}`;
  return f.join(' ');
}

/**
 * Pairs the kernel's `conntrack -L -o extended` lines with the model's:
 * identical but for the timeout, the model's at most `skew` seconds above
 * the kernel's (the kernel lists later; the model at its last frame);
 * lines left on both sides that differ only by a source port the kernel
 * remapped at random (ctLoose) count as agreeing too. An entry the model
 * holds with at most `skew` seconds left may be gone in the kernel.
 */
export function compareConntrack(kernel: readonly string[], model: readonly string[], skew = 4): { agree: number; total: number; diffs: string[] } {
  const k = kernel.filter((l) => l.trim()).map(ctLineSplit);
  const m = model.map(ctLineSplit);
  const pending = new Map<string, number[]>();
  for (const x of k) pending.set(x.rest, [...(pending.get(x.rest) ?? []), x.timeout]);
  const diffs: string[] = [];
  const onlyModel: { rest: string; timeout: number }[] = [];
  let agree = 0;
  for (const x of m) {
    const ts = pending.get(x.rest);
    if (!ts?.length) {
      onlyModel.push(x);
      continue;
    }
    const kt = ts.shift()!;
    if (x.timeout - kt >= 0 && x.timeout - kt <= skew) agree++;
    else diffs.push(`timeout kernel ${kt} nfvm ${x.timeout}: ${x.rest}`);
  }
  const onlyKernel = [...pending].flatMap(([rest, ts]) => ts.map(() => rest));
  const left = onlyModel.filter((x) => x.timeout > skew);
  for (const kr of onlyKernel) {
    const i = left.findIndex((x) => ctLoose(x.rest) !== undefined && ctLoose(x.rest) === ctLoose(kr));
    if (i < 0) {
      diffs.push(`only in kernel: ${kr}`);
      continue;
    }
    left.splice(i, 1);
    agree++;
  }
  for (const x of left) diffs.push(`only in nfvm:   ${x.rest}`);
  return { agree, total: Math.max(k.length, m.length), diffs };
}

/**
 * A sender namespace and a node namespace joined by one veth pair (the
 * sender's veth0 10.0.0.2/24 with MAC.sender, the node's eth0 10.0.0.1/24
 * with MAC.eth0), IPv6 off, rp_filter 0 on the node, the sender's own
 * stack silent (OUTPUT DROP): frames tcpreplay sends from veth0 are all
 * the node sees. The namespaces are made through netnsAdd.
 */
export function senderNodeTopology(NS: { s: string; n: string }, MAC: { sender: string; eth0: string }): void {
  for (const ns of [NS.s, NS.n]) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    nsSh(ns, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  }
  nsSh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}`);
  nsSh(NS.n, `ip link set eth0 address ${MAC.eth0}
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
ip addr add 10.0.0.1/24 dev eth0
ip link set eth0 up`);
  nsSh(NS.s, `sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1
ip link set veth0 up
ip addr add 10.0.0.2/24 dev veth0
iptables-legacy -P OUTPUT DROP`);
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/LOWER_UP/g) ?? []).length >= 2) break;
    spawnSync('sleep', ['0.1']);
  }
}

/**
 * senderNodeTopology with 10.9.0.0/16 routed back out eth0 to the sender:
 * frames to it are forwarded (the sender a permanent neighbour, no
 * redirects), frames to 10.0.0.1 delivered.
 */
export function senderForwardingTopology(NS: { s: string; n: string }, MAC: { sender: string; eth0: string }): void {
  senderNodeTopology(NS, MAC);
  nsSh(NS.n, `ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent
ip route add 10.9.0.0/16 via 10.0.0.2
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0`);
}

/**
 * The IPv6 counterpart of senderForwardingTopology, silent as
 * kernel-oracle.md asks: the sender (IPv6 off, so it never answers) and the
 * node's eth0 2001:db8::1/64 (nodad) joined by a veth pair; no link-local
 * address (addr_gen_mode 1: no redirects, ndisc_send_redirect needs one),
 * no DAD, router solicitations, RAs or delayed MLD reports (MLDv1, report
 * interval 0: the reports of the joins go at once, before any ruleset is
 * loaded); the sender a permanent neighbour; 2001:db8:9::/48 routed back
 * out eth0 via the sender, IPv6 forwarding on.
 */
export function senderForwardingTopology6(NS: { s: string; n: string }, MAC: { sender: string; eth0: string }): void {
  for (const ns of [NS.s, NS.n]) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
  }
  nsSh(NS.s, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  nsSh(NS.n, `sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
sysctl -qw net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.addr_gen_mode=1
sysctl -qw net.ipv6.conf.all.force_mld_version=1 net.ipv6.conf.default.force_mld_version=1
sysctl -qw net.ipv6.conf.all.mldv1_unsolicited_report_interval=0 net.ipv6.conf.default.mldv1_unsolicited_report_interval=0
sysctl -qw net.ipv6.conf.all.forwarding=1
ip link set lo up`);
  nsSh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}
sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1
ip link set veth0 up`);
  nsSh(NS.n, `ip link set eth0 address ${MAC.eth0}
ip -6 addr add 2001:db8::1/64 dev eth0 nodad
ip link set eth0 up
ip -6 neigh replace 2001:db8::2 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 route add 2001:db8:9::/48 via 2001:db8::2`);
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' });
    if (/LOWER_UP/.test(r.stdout)) break;
    spawnSync('sleep', ['0.1']);
  }
  // the MLD reports of the joins go now, not after the ruleset is loaded
  spawnSync('sleep', ['0.3']);
}

/** The `# Generated by` line of `iptables-save` of a backend (the snapshot reader takes the backend from it). */
export function saveHeader(backend: 'legacy' | 'nft'): string {
  return `# Generated by iptables-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n`;
}

/**
 * The bridge node of kernel-oracle.md (names in `NS`): br0 (mcast_snooping
 * 0, MAC `MAC.br0`) 10.0.0.1/24 over ports eth0 and eth1, veths to the
 * peers' veth0 (10.0.0.2 `MAC.a` in NS.a, 10.0.0.3 `MAC.b` in NS.b); static
 * fdb entries and permanent neighbours for both peers; IPv6 off, ICMP echo
 * ignored, ARP requests ignored (arp_ignore 8: the node's own ARP replies
 * would pass the bridge's OUTPUT and POSTROUTING), the peers silenced
 * (OUTPUT DROP, and arp_ignore 8: their ARP replies would cross the
 * bridge); waits until both ports forward.
 */
export function bridgeTopology(NS: { a: string; n: string; b: string }, MAC: { a: string; b: string; br0: string; eth0: string; eth1: string }, opts: { ipv6?: boolean } = {}): void {
  for (const ns of Object.values(NS)) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    nsSh(ns, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  }
  nsSh(NS.a, `ip link add veth0 address ${MAC.a} type veth peer name eth0 netns ${NS.n}`);
  nsSh(NS.b, `ip link add veth0 address ${MAC.b} type veth peer name eth1 netns ${NS.n}`);
  nsSh(NS.n, `ip link add br0 address ${MAC.br0} type bridge mcast_snooping 0
ip link set eth0 address ${MAC.eth0}
ip link set eth1 address ${MAC.eth1}
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.eth1.disable_ipv6=1 net.ipv6.conf.br0.disable_ipv6=1
sysctl -qw net.ipv4.icmp_echo_ignore_all=1 net.bridge.bridge-nf-call-iptables=1
sysctl -qw net.ipv4.conf.all.arp_ignore=8 net.ipv4.conf.default.arp_ignore=8
ip link set eth0 master br0
ip link set eth1 master br0
ip addr add 10.0.0.1/24 dev br0
ip link set eth0 up; ip link set eth1 up; ip link set br0 up
bridge fdb replace ${MAC.a} dev eth0 master static
bridge fdb replace ${MAC.b} dev eth1 master static
ip neigh replace 10.0.0.2 lladdr ${MAC.a} dev br0 nud permanent
ip neigh replace 10.0.0.3 lladdr ${MAC.b} dev br0 nud permanent`);
  // IPv6 on the bridge only (the ports and the peers stay without it): no DAD, no router solicitations, no MLD reports
  if (opts.ipv6) nsSh(NS.n, `sysctl -qw net.ipv6.conf.br0.accept_dad=0 net.ipv6.conf.br0.router_solicitations=0 net.ipv6.conf.br0.force_mld_version=1
sysctl -qw net.ipv6.conf.br0.mldv1_unsolicited_report_interval=0 net.ipv6.conf.br0.disable_ipv6=0 net.bridge.bridge-nf-call-ip6tables=1
ip -6 addr add 2001:db8::1/64 dev br0 nodad
ip -6 neigh replace 2001:db8::a lladdr ${MAC.a} dev br0 nud permanent
ip -6 neigh replace 2001:db8::b lladdr ${MAC.b} dev br0 nud permanent`);
  for (const [ns, ip] of [[NS.a, '10.0.0.2'], [NS.b, '10.0.0.3']] as const) {
    nsSh(ns, `sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1
sysctl -qw net.ipv4.conf.all.arp_ignore=8 net.ipv4.conf.veth0.arp_ignore=8
ip addr add ${ip}/24 dev veth0
ip link set veth0 up
iptables-legacy -P OUTPUT DROP`);
  }
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('ip', ['netns', 'exec', NS.n, 'bridge', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/state forwarding/g) ?? []).length >= 2) return;
    spawnSync('sleep', ['0.1']);
  }
  throw new Error('the bridge ports never reached the forwarding state');
}

/** `ipset save` text as comparable lines: no initval or bucketsize, entries sorted, each entry's timeout apart. */
function ipsetSaveLines(text: string): { lines: string[]; timeouts: Map<string, number> } {
  const timeouts = new Map<string, number>();
  const lines = text.split('\n').filter((l) => l !== '').map((l) => l.replace(/ initval 0x[0-9a-f]+/, '').replace(/ bucketsize \d+/, ''))
    .map((l) => {
      if (!l.startsWith('add ')) return l;
      const m = / timeout (\d+)/.exec(l);
      const key = l.replace(/ timeout \d+/, '');
      if (m) timeouts.set(key, Number(m[1]));
      return key;
    });
  return { lines: lines.sort(), timeouts };
}

/**
 * Two `ipset save` listings compared as the kernel tests compare them: the
 * entries in any order (the kernel's is its hash order), each timeout within
 * `skew` seconds (the kernel's clock ran while the frames were sent).
 * `same`: the listings agree but for the timeouts; `diffs`: what differs.
 */
export function ipsetSaveDiffs(kernelText: string, nfvmText: string, skew = 5): { same: boolean; diffs: string[] } {
  const k = ipsetSaveLines(kernelText);
  const n = ipsetSaveLines(nfvmText);
  const diffs: string[] = [];
  for (const [key, t] of k.timeouts) {
    const m = n.timeouts.get(key);
    if (m === undefined || Math.abs(m - t) > skew) diffs.push(`  timeout of ${key}: kernel ${t} nfvm ${m}`);
  }
  const same = k.lines.join('\n') === n.lines.join('\n');
  if (!same) diffs.push(`  sets: kernel\n${k.lines.join('\n')}\n  nfvm\n${n.lines.join('\n')}`);
  return { same, diffs };
}

/**
 * Injects the frames of `pcap` from the sender namespace (tcpreplay on
 * veth0), waits for the node to take them, and returns every counter of
 * the node's `iptables-BACKEND-save -c` (OUTPUT and POSTROUTING too).
 */
export async function injectAndCount(ns: { s: string; n: string }, pcap: string, backend: 'legacy' | 'nft', family: 'ip' | 'ip6' = 'ip'): Promise<Map<string, KernelCounter>> {
  const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
  if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
  await new Promise((r) => setTimeout(r, 300));
  const save = await run('ip', ['netns', 'exec', ns.n, `${family === 'ip6' ? 'ip6tables' : 'iptables'}-${backend}-save`, '-c']);
  return saveCounters(save.stdout);
}

/**
 * An IPv4 frame from the sender (10.0.0.2, MAC.sender) to the node
 * (10.0.0.1, MAC.node) of senderNodeTopology that makes the node answer: a
 * TCP SYN (proto 6), a UDP datagram (17) to port `dport`, or an ICMP echo
 * request (1).
 */
export function answerProbe(proto: number, dport: number, MAC: { sender: number[]; node: number[] }): Uint8Array {
  const csum = (b: number[]): number => inetChecksum(Uint8Array.from(b));
  const src = [10, 0, 0, 2];
  const dst = [10, 0, 0, 1];
  let l4: number[];
  if (proto === 1) {
    l4 = [8, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4];
    const c = csum(l4);
    l4[2] = c >> 8;
    l4[3] = c & 255;
  } else {
    l4 = proto === 6 ? [0x9c, 0x40, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0] : [0x9c, 0x40, dport >> 8, dport & 255, 0, 12, 0, 0, 1, 2, 3, 4];
    const pseudo = [...src, ...dst, 0, proto, 0, l4.length];
    const c = csum([...pseudo, ...l4]);
    const at = proto === 6 ? 16 : 6;
    l4[at] = c >> 8;
    l4[at + 1] = c & 255;
  }
  const len = 20 + l4.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, 1, 0x40, 0, 64, proto, 0, 0, ...src, ...dst];
  const c = csum(ip);
  ip[10] = c >> 8;
  ip[11] = c & 255;
  return Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...ip, ...l4]);
}

/** What a counter comparison found: the rules compared, those that differ, the kernel counters that are not zero. */
export interface CounterTally {
  compared: number;
  nonzero: number;
  diffs: string[];
}

/**
 * Loads `rules` into `table`'s PREROUTING of a sender/node namespace pair
 * (`pair(tag)`, deleted afterwards) under each backend, sends `frames` from
 * the sender with tcpreplay pinned to CPU 0 (the CPU of the model), and
 * compares every PREROUTING rule's counters of `iptables-*-save -c` with
 * the node model's on the namespace's snapshot, both engines.
 */
export async function preroutingCounters(o: {
  tag: string; table: 'raw' | 'mangle'; rules: readonly string[]; frames: readonly Uint8Array[]; tmp: string;
  pair: (tag: string) => { s: string; n: string }; t: CounterTally;
  /** The CPU tcpreplay runs on, so the node's softirq handles the frames there too (the model's --cpu); default 0. */
  cpu?: number;
}): Promise<void> {
  const { tag, table, rules, tmp, t } = o;
  const chains = table === 'raw' ? ['PREROUTING', 'OUTPUT'] : ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
  const text = [`*${table}`, ...chains.map((c) => `:${c} ACCEPT [0:0]`), ...rules.map((r) => `-A PREROUTING ${r}`), 'COMMIT', ''].join('\n');
  const pcap = join(tmp, `frames-${tag}.pcap`);
  writeFileSync(pcap, writePcap(o.frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
  for (const backend of ['legacy', 'nft'] as const) {
    const ns = o.pair(`${tag}${backend[0]}`);
    try {
      const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], text);
      if (load.stderr !== '') throw new Error(`iptables-${backend}-restore: ${load.stderr}\n${text}`);
      const snap = join(tmp, `snap-${tag}-${backend}`);
      captureSnapshot(snap, nsSnapshotRunner(ns.n));
      writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${text}`);
      const send = await run('ip', ['netns', 'exec', ns.s, 'taskset', '-c', String(o.cpu ?? 0), 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
      const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c', '-t', table]);
      const kernel = saveCounters(save.stdout);
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(snap), { engine, cpu: o.cpu ?? 0 });
        replayCapture(model, pcap, 'eth0');
        const mine = flattenCounters(model.rulesetWithCounters()!);
        for (const [key, kc] of kernel) {
          if (!key.startsWith(`${table} PREROUTING #`)) continue;
          t.compared++;
          if (engine === 'vm' && kc.packets > 0n) t.nonzero++;
          const mc = mine.get(key);
          if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) {
            t.diffs.push(`case ${tag} ${backend} ${engine} ${key} (${rules[Number(key.split('#')[1]) - 1]}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
          }
        }
      }
    } finally {
      netnsDel(ns.s);
      netnsDel(ns.n);
    }
  }
}

/**
 * `-m policy` counting rules for the IPsec policy kernel tests: both
 * directions and both kinds (`--pol none`, `--pol ipsec` with elements,
 * `--strict` and `--next`; `tunnelDst` an address of the family) in every
 * chain of mangle and filter that takes them, as one restore text.
 */
export function policyCountingRules(tunnelDst: string): string {
  const elems = ['', '--strict --proto esp', '--reqid 1', `--strict --mode tunnel --tunnel-dst ${tunnelDst} --next --proto ah`, '! --proto esp --spi 0x10'];
  // `--pol none` takes no element (iptables: "policy none but --strict given")
  const tests = (chain: string, dirs: readonly ('in' | 'out')[]): string[] =>
    dirs.flatMap((dir) => [`-A ${chain} -m policy --dir ${dir} --pol none`, ...elems.map((e) => `-A ${chain} -m policy --dir ${dir} --pol ipsec ${e}`.trimEnd())]);
  return ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
    ...tests('PREROUTING', ['in']), ...tests('POSTROUTING', ['out']),
    'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
    ...tests('INPUT', ['in']), ...tests('FORWARD', ['in', 'out']), ...tests('OUTPUT', ['out']),
    'COMMIT', ''].join('\n');
}

/**
 * One case of the IPsec policy kernel tests under each backend: the
 * sender/node pair `topology` makes (names from `tag`), the policies added
 * (`ip xfrm policy add`), the default policies blocking when
 * `defaultBlock`, `rules` loaded, the node captured (no IPsec state), the
 * node's own datagram sent (`send`, a bash command; it fails with EPERM
 * exactly when the default out policy blocks), the frames of `pcap`
 * injected; every counter of `(ip6)iptables-*-save -c`, OUTPUT and
 * POSTROUTING included, compared with the node model's on both engines
 * (sentAndReplayed). The differences and the kernel's counters per backend.
 */
export async function policyCase(o: {
  family: 'ip' | 'ip6'; tag: string; tmp: string; policies: readonly string[]; defaultBlock: boolean; rules: string; pcap: string; send: string;
  topology: (ns: { s: string; n: string }) => void; tally: { counters: number; agree: number; nonzero: number };
  /** Shell commands run in the node after the topology (sysctls). */
  setup?: string;
}): Promise<{ diffs: string[]; kernel: Map<string, Map<string, KernelCounter>> }> {
  const diffs: string[] = [];
  const kernels = new Map<string, Map<string, KernelCounter>>();
  const tool = o.family === 'ip' ? 'iptables' : 'ip6tables';
  for (const backend of ['legacy', 'nft'] as const) {
    const ns = { s: `nfvm-ps-${backend[0]}${o.tag}`, n: `nfvm-pn-${backend[0]}${o.tag}` };
    try {
      o.topology(ns);
      if (o.setup) nsSh(ns.n, o.setup);
      for (const pol of o.policies) {
        const added = await run('ip', ['netns', 'exec', ns.n, 'ip', 'xfrm', 'policy', 'add', ...pol.split(' ')]);
        if (added.stderr !== '') throw new Error(`ip xfrm policy add ${pol}: ${added.stderr}`);
      }
      if (o.defaultBlock) {
        const set = await run('ip', ['netns', 'exec', ns.n, 'ip', 'xfrm', 'policy', 'setdefault', 'in', 'block', 'fwd', 'block', 'out', 'block']);
        if (set.stderr !== '') throw new Error(`ip xfrm policy setdefault: ${set.stderr}`);
      }
      const load = await run('ip', ['netns', 'exec', ns.n, `${tool}-${backend}-restore`], o.rules);
      if (load.stderr !== '') throw new Error(`${tool}-${backend}-restore: ${load.stderr}\n${o.rules}`);
      const snap = join(o.tmp, `snap-${backend}-${o.tag}`);
      captureSnapshot(snap, nsSnapshotRunner(ns.n));
      const node = readSnapshot(snap);
      if (node.xfrmNoStates !== true || node.xfrmPolicies !== o.policies.length) throw new Error(`snapshot: states ${node.xfrmNoStates}, ${node.xfrmPolicies} policies`);
      writeFileSync(join(snap, `${tool}-save.txt`), `${saveHeader(backend).replace('iptables', tool)}${o.rules}`);
      const sent = await run('ip', ['netns', 'exec', ns.n, 'bash', '-c', o.send]);
      if ((sent.code !== 0) !== o.defaultBlock) throw new Error(`send: ${sent.code} ${sent.stderr}`);
      const kernel = await injectAndCount(ns, o.pcap, backend, o.family);
      kernels.set(backend, kernel);
      for (const engine of ['vm', 'reference'] as const) {
        diffs.push(...sentAndReplayed(snap, engine, o.pcap, kernel, o.tally, `${backend} ${engine}`, true, o.family).diffs);
      }
    } finally {
      netnsDel(ns.s);
      netnsDel(ns.n);
    }
  }
  return { diffs, kernel: kernels };
}

/**
 * The comparison most path tests make: for each iptables backend, a fresh
 * pair of namespaces (`topology`), `rules` loaded with the family's
 * restore, the snapshot captured (with `rules` as the saved ruleset for
 * IPv4), `pcap` injected, and every counter of the kernel compared with
 * `nfvm replay` on the snapshot, both engines; the builtin OUTPUT and
 * POSTROUTING policies left out with `quietPolicies` (MLD reports and the
 * like pass there). Differences go to `diffs`, counts to `tally`; `seen`
 * gets each replay's JSON document.
 */
export async function replayCountersAgainstKernel(o: {
  tag: string; family: 'ip' | 'ip6'; rules: string; pcap: string; tmp: string;
  topology: (ns: { s: string; n: string }) => void; quietPolicies?: boolean;
  tally: { counters: number; agree: number; nonzero: number }; diffs: string[];
  seen?: (doc: { text: string; summary: { answers: { sent: number } } }) => void;
  /** Sends the frames to the node instead of one tcpreplay of `pcap` at top speed (the replay still reads `pcap`). */
  inject?: (ns: { s: string; n: string }) => Promise<void>;
}): Promise<void> {
  const six = o.family === 'ip6';
  for (const backend of ['legacy', 'nft'] as const) {
    const suffix = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
    const ns = { s: `nfvm-${o.tag}s-${backend[0]}-${suffix}`, n: `nfvm-${o.tag}n-${backend[0]}-${suffix}` };
    try {
      o.topology(ns);
      const load = await run('ip', ['netns', 'exec', ns.n, `${six ? 'ip6tables' : 'iptables'}-${backend}-restore`], o.rules);
      if (load.stderr !== '') throw new Error(`${six ? 'ip6tables' : 'iptables'}-${backend}-restore: ${load.stderr}\n${o.rules}`);
      const snap = join(o.tmp, `snap-${o.tag}-${backend}`);
      captureSnapshot(snap, nsSnapshotRunner(ns.n));
      if (!six) writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${o.rules}`);
      let kernel: Map<string, KernelCounter>;
      if (o.inject) {
        await o.inject(ns);
        await new Promise((r) => setTimeout(r, 300));
        const save = await run('ip', ['netns', 'exec', ns.n, `${six ? 'ip6tables' : 'iptables'}-${backend}-save`, '-c']);
        kernel = saveCounters(save.stdout);
      } else kernel = await injectAndCount(ns, o.pcap, backend, o.family);
      if (o.quietPolicies) for (const k of [...kernel.keys()]) if (/ (OUTPUT|POSTROUTING) policy$/.test(k)) kernel.delete(k);
      for (const engine of ['vm', 'reference'] as const) {
        const args = [snap, '--pcap', o.pcap, '--iface', 'eth0', '--json', '--engine', engine, ...(six ? ['--save', 'ip6tables'] : [])];
        const doc = JSON.parse(outputText(cmdReplay(args))) as { text: string; summary: { answers: { sent: number } } };
        o.seen?.(doc);
        const mine = saveCounters(doc.text);
        o.diffs.push(...counterDiffs(kernel, mine, o.tally).map((l) => `${backend} ${engine}${l}`));
      }
    } finally {
      netnsDel(ns.s);
      netnsDel(ns.n);
    }
  }
}
