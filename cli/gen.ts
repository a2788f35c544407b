/**
 * `nfvm gen kube-proxy ... DIR`: writes the node snapshot of a Kubernetes
 * node as kube-proxy sets it up in the chosen mode (gen/kube-proxy.ts),
 * atomically, into a new or empty directory.
 */
import { resolve } from 'node:path';
import { KUBE_MODES, kubeOptionsProblem, kubeProxyFiles, kubeTextEstimate, type KubeMode } from '../gen/kube-proxy.js';
import { bigInput } from './v8-flags.js';
import { checkTarget, writeSnapshotDir } from '../hooks/snapshot/capture.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';

export const GEN: CommandSpec = {
  name: 'gen',
  usage: `  nfvm gen kube-proxy --services N --endpoints M --mode iptables|ipvs|nftables
             [--nodeports] [--local-traffic-policy] [--seed S] DIR
      Write the node snapshot of a Kubernetes node with N Services of M
      endpoints each into DIR (a new or empty directory), with the rules
      kube-proxy writes in that mode: iptables (KUBE-SERVICES, KUBE-SVC-*,
      KUBE-SEP-* with statistic probabilities, KUBE-NODEPORTS, KUBE-EXT-*,
      KUBE-MARK-MASQ, KUBE-POSTROUTING), ipvs (ipvsadm-save.txt, the ipsets
      KUBE-CLUSTER-IP etc., the ClusterIPs on kube-ipvs0, the iptables rules
      of IPVS mode) or nftables (kube-proxy's table in nft-ruleset.txt, and
      its verdict maps as the ipset map and mark chains nfvm runs: README
      "kube-proxy snapshots"). --nodeports makes the Services NodePorts
      (30000 upwards, as many as the range holds), --local-traffic-policy
      gives them externalTrafficPolicy Local (KUBE-SVL-*, health-check node
      ports). --seed S (default 1) picks the Services' ports and protocols.
`,
  options: {
    services: { type: 'string' },
    endpoints: { type: 'string' },
    mode: { type: 'string' },
    nodeports: { type: 'boolean' },
    'local-traffic-policy': { type: 'boolean' },
    seed: { type: 'string' },
  },
};

function count(name: string, v: string | undefined, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new UsageError(`gen kube-proxy: --${name} is required`);
    return dflt;
  }
  if (!/^\d{1,10}$/.test(v)) throw new UsageError(`gen kube-proxy: --${name} takes a whole number, not "${v}"`);
  return Number(v);
}

/** The `-A` lines of an iptables-save text or of a piece of one made of whole lines (a million-rule text is not split into lines for it). */
function countRules(text: string): number {
  let n = text.indexOf('-A ') === 0 ? 1 : 0;
  for (let i = text.indexOf('\n-A '); i >= 0; i = text.indexOf('\n-A ', i + 4)) n++;
  return n;
}

export function cmdGen(argv: readonly string[]): string {
  const a = parseCommand(GEN, argv);
  if (a.help) return GEN.usage;
  const [what, dir, ...extra] = a.positionals;
  if (what !== 'kube-proxy') throw new UsageError(what === undefined ? 'gen: what to generate? (kube-proxy)' : `gen: unknown generator "${what}" (kube-proxy)`);
  if (dir === undefined || extra.length > 0) throw new UsageError('gen kube-proxy takes exactly one DIR (a new or empty directory)');
  const mode = a.str('mode');
  if (mode === undefined || !(KUBE_MODES as readonly string[]).includes(mode)) throw new UsageError(`gen kube-proxy: --mode is one of ${KUBE_MODES.join(', ')}`);
  const o = {
    services: count('services', a.str('services')),
    endpoints: count('endpoints', a.str('endpoints')),
    mode: mode as KubeMode,
    nodePorts: a.flag('nodeports'),
    localTrafficPolicy: a.flag('local-traffic-policy'),
    seed: count('seed', a.str('seed'), 1),
  };
  const problem = kubeOptionsProblem(o);
  if (problem) throw new UsageError(`gen kube-proxy: ${problem}`);
  const target = resolve(dir);
  checkTarget(dir, target);
  // a big node's text goes through the young generation as pieces: let it grow, as for a big input
  bigInput(kubeTextEstimate(o));
  const files = kubeProxyFiles(o);
  // the rules are counted as the text is written (it is made in pieces, never whole)
  let rules = 0;
  const text = files.get('iptables-save.txt');
  if (text !== undefined) {
    files.set('iptables-save.txt', (function* counted(): Generator<string> {
      for (const p of typeof text === 'string' ? [text] : text) {
        rules += countRules(p);
        yield p;
      }
    })());
  }
  writeSnapshotDir(dir, target, files);
  return `${dir}: ${[...files.keys()].join(' ')}\n${o.services} Services x ${o.endpoints} endpoints, ${o.mode} mode: ${rules} iptables rules\n`;
}
