/**
 * `nfvm snapshot DIR`: this machine's (network namespace's) node captured
 * into a new or empty directory (hooks/snapshot/capture.ts), read back and
 * summarised.
 */
import { captureSnapshot } from '../hooks/snapshot/capture.js';
import { readSnapshot } from '../hooks/snapshot/read.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';

export const SNAPSHOT: CommandSpec = {
  name: 'snapshot',
  usage: `  nfvm snapshot DIR
      Capture this machine's (network namespace's) node snapshot into DIR (a
      new or empty directory), as root: the iptables and ip6tables rules
      (from the backend that holds them, legacy or nf_tables), ip -j
      addr/link/route/rule (both families) and the net.* sysctls; written
      atomically, then read back and summarised.
`,
  options: {},
};

export function cmdSnapshot(argv: readonly string[]): string {
  const a = parseCommand(SNAPSHOT, argv);
  if (a.help) return SNAPSHOT.usage;
  if (a.positionals.length !== 1) throw new UsageError('snapshot takes exactly one DIR (a new or empty directory)');
  const dir = a.positionals[0]!;
  const rep = captureSnapshot(dir);
  for (const s of rep.skipped) process.stderr.write(`nfvm: ${s.file} not captured: ${s.reason}\n`);
  for (const n of rep.notes) process.stderr.write(`nfvm: ${n}\n`);
  const node = readSnapshot(rep.dir);
  const routes = (f: typeof node.fib4) => [...f.tables.values()].reduce((n, t) => n + t.size, 0);
  const rules = rep.backends.map((b) => `${b.file} from ${b.tool} (${b.backend === 'nft' ? 'nf_tables' : 'legacy'})`);
  return `${dir}: ${rep.written.join(' ')}\n` +
    `${node.links.size} links, ${node.addresses.length} addresses, ${routes(node.fib4)}+${routes(node.fib6)} routes, ` +
    `${node.fib4.rules.length}+${node.fib6.rules.length} rules${rules.length ? `; ${rules.join(', ')}` : ''}\n`;
}
