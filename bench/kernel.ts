/**
 * Linux's own cost per non-matching rule, measured in the same run as
 * nfvm's: a network namespace whose filter OUTPUT chain holds K, then 2K,
 * rules `-s 10.a.b.1/32 -p tcp -m tcp --dport N -j DROP` (the chain of
 * bench/chain.ts) before a DROP policy, loaded with iptables-legacy-restore
 * (x_tables), iptables-nft-restore (nf_tables, the bytecode iptables-nft
 * makes of the same text) and nft -f (nf_tables, the same tests written as
 * nft rules, without counters). A small C sender (compiled here with cc)
 * sends UDP datagrams from inside the namespace to a neighbour on a veth
 * (a permanent neighbour entry, so no ARP): every datagram goes through
 * OUTPUT, misses every rule (its source is 10.98.0.1) and is dropped by the
 * policy, which send() reports as EPERM; the sender checks that every send
 * failed so, and times its loop with CLOCK_THREAD_CPUTIME_ID (the sending
 * thread's CPU time: the system time of the syscalls, where netfilter runs,
 * and not the time other processes hold the CPU). The cost per rule is
 * (t(2K) - t(K)) / K per repetition; sizes alternate within a repetition.
 *
 * Needs root, ip, cc and the three loaders; otherwise it says why and
 * measures nothing. The namespace is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, range } from './proc.js';

const SENDER = `#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]), eperm = 0;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("socket"); return 1; }
  char b[18] = {0};
  for (int i = 0; i < 2000; i++) send(s, b, sizeof b, 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  for (long i = 0; i < n; i++) if (send(s, b, sizeof b, 0) < 0 && errno == EPERM) eperm++;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  printf("%.1f %ld\\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n, eperm);
  return 0;
}
`;

/** The chain's rule i, as iptables-save prints it (source 10.a.b.1, port 1000 + i). */
export function chainRule(i: number): string {
  return `-s ${10 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}.1/32 -p tcp -m tcp --dport ${1000 + (i % 64536)} -j DROP`;
}

function legacyText(k: number, policy: 'ACCEPT' | 'DROP'): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', `:OUTPUT ${policy} [0:0]`];
  for (let i = 0; i < k; i++) lines.push(`-A OUTPUT ${chainRule(i)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

function nftText(k: number): string {
  const lines = ['table ip nfvmbench {', ' chain out {', '  type filter hook output priority 0; policy drop;'];
  for (let i = 0; i < k; i++) lines.push(`  ip saddr ${10 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}.1 ip protocol tcp tcp dport ${1000 + (i % 64536)} drop`);
  lines.push(' }', '}', '');
  return lines.join('\n');
}

export interface KernelRow {
  backend: string;
  rules: string;
  'ns/packet': string;
  'ns/rule': string;
  'ns/rule median': number;
}

function missing(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and iptables need it)';
  for (const tool of ['ip', 'cc', 'iptables-legacy-restore', 'iptables-nft-restore', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

/**
 * ns per non-matching rule of Linux x_tables and nf_tables on this machine,
 * or the reason it cannot be measured.
 */
export function benchKernel(k = Number(process.env.NFVM_BENCH_KRULES ?? 2000), packets = Number(process.env.NFVM_BENCH_KPACKETS ?? 100_000), repeat = Number(process.env.NFVM_BENCH_REPEAT ?? 3)): KernelRow[] | string {
  const why = missing();
  if (why) return why;
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bench-kernel-'));
  const ns = `nfvm-bench-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const run = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  const inNs = (cmd: string, args: string[], input?: string): string => run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  try {
    writeFileSync(join(tmp, 'send.c'), SENDER);
    run('cc', ['-O2', '-o', join(tmp, 'send'), join(tmp, 'send.c')]);
    run('ip', ['netns', 'add', ns]);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    run('ip', ['-n', ns, 'addr', 'add', '10.98.0.1/24', 'dev', 'v0']);
    run('ip', ['-n', ns, 'link', 'set', 'v0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'v1', 'up']);
    run('ip', ['-n', ns, 'neigh', 'replace', '10.98.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'v0', 'nud', 'permanent']);
    const send = (): number => {
      const [ns1, eperm] = inNs(join(tmp, 'send'), [String(packets), '10.98.0.2']).trim().split(' ').map(Number) as [number, number];
      if (eperm !== packets) throw new Error(`kernel bench: ${eperm} of ${packets} datagrams were dropped in OUTPUT (expected all)`);
      return ns1;
    };
    const backends: [string, (n: number) => void, () => void][] = [
      ['x_tables (iptables-legacy)', (n) => inNs('iptables-legacy-restore', [], legacyText(n, 'DROP')), () => inNs('iptables-legacy-restore', [], legacyText(0, 'ACCEPT'))],
      ['nf_tables (iptables-nft)', (n) => inNs('iptables-nft-restore', [], legacyText(n, 'DROP')), () => inNs('nft', ['flush', 'ruleset'])],
      ['nf_tables (nft)', (n) => inNs('nft', ['-f', '-'], `flush ruleset\n${nftText(n)}`), () => inNs('nft', ['flush', 'ruleset'])],
    ];
    const rows: KernelRow[] = [];
    for (const [name, load, clear] of backends) {
      const per: Record<number, number[]> = { [k]: [], [2 * k]: [] };
      for (let rep = 0; rep < repeat; rep++) {
        for (const n of [k, 2 * k]) {
          load(n);
          per[n]!.push(send());
        }
      }
      clear();
      const slopes = per[k]!.map((t, i) => (per[2 * k]![i]! - t) / k);
      rows.push({
        backend: name,
        rules: `${k}/${2 * k}`,
        'ns/packet': `${range(per[k]!, 0)} / ${range(per[2 * k]!, 0)}`,
        'ns/rule': range(slopes, 2),
        'ns/rule median': +median(slopes).toFixed(2),
      });
      console.log(JSON.stringify(rows[rows.length - 1]));
    }
    return rows;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  }
}
