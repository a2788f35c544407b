/**
 * cluster match: libxt_cluster.c, kernel xt_cluster.c: hash the connection
 * over `total_nodes` and match when the bucket is in `node_mask`.
 * `--cluster-local-node n` is stored as the mask `1 << (n-1)` and saved as
 * `--cluster-local-nodemask`. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';

/** XT_CLUSTER_NODES_MAX */
const NODES_MAX = 32;

/** struct xt_cluster_match_info. */
interface ClusterData {
  totalNodes: number;
  nodeMask: number;
  hashSeed: number;
  /** XT_CLUSTER_F_INV */
  invert: boolean;
}

const hex8 = (v: number) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

export const cluster: MatchModule<ClusterData> = {
  kind: 'match',
  name: 'cluster',
  options: [
    { name: 'cluster-total-nodes', arg: 1 },
    { name: 'cluster-local-node', arg: 1, invert: true },
    { name: 'cluster-local-nodemask', arg: 1, invert: true },
    { name: 'cluster-hash-seed', arg: 1 },
  ],
  init: () => ({ totalNodes: 0, nodeMask: 0, hashSeed: 0, invert: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'cluster-total-nodes':
        d.totalNodes = parseUintOpt(arg!, 1, NODES_MAX, 'cluster', opt);
        return;
      case 'cluster-local-node':
        d.nodeMask = (1 << (parseUintOpt(arg!, 1, NODES_MAX, 'cluster', opt) - 1)) >>> 0;
        if (invert) d.invert = true;
        return;
      case 'cluster-local-nodemask':
        d.nodeMask = parseUintOpt(arg!, 1, NODES_MAX, 'cluster', opt);
        if (invert) d.invert = true;
        return;
      case 'cluster-hash-seed':
        d.hashSeed = parseUintOpt(arg!, 0, 0xffffffff, 'cluster', opt);
        return;
    }
  },
  final(d, seen) {
    const total = seen.has('cluster-total-nodes');
    const seed = seen.has('cluster-hash-seed');
    const node = seen.has('cluster-local-node');
    const mask = seen.has('cluster-local-nodemask');
    const tooBig = BigInt(d.nodeMask) >= 1n << BigInt(d.totalNodes);
    if (total && node && seed) {
      if (tooBig) fail("cluster match: `--cluster-local-node' must be <= `--cluster-total-nodes'", 'option');
    } else if (total && mask && seed) {
      if (tooBig) fail("cluster match: `--cluster-local-nodemask' too big for `--cluster-total-nodes'", 'option');
    } else if (!node && !mask) {
      fail("cluster match: `--cluster-local-node' or`--cluster-local-nodemask' is missing", 'option');
    }
    // then xtables_options_fcheck: mandatory options and exclusions, in table order
    if (!total) fail('cluster: option "--cluster-total-nodes" must be specified', 'option');
    if (node && mask) fail('cluster: option "--cluster-local-node" cannot be used together with "--cluster-local-nodemask".', 'option');
    if (!seed) fail('cluster: option "--cluster-hash-seed" must be specified', 'option');
  },
  save: (d) =>
    `${d.invert ? ' !' : ''} --cluster-local-nodemask ${hex8(d.nodeMask)} --cluster-total-nodes ${d.totalNodes} --cluster-hash-seed ${hex8(d.hashSeed)}`,
  check(d) {
    if (d.totalNodes > NODES_MAX) return 'xt_cluster: you have exceeded the maximum number of cluster nodes';
    if (BigInt(d.nodeMask) >= 1n << BigInt(d.totalNodes)) return 'xt_cluster: node mask cannot exceed total number of nodes';
    return undefined;
  },
  lower: 'needs the connection\'s original source address hashed with jhash (xt_cluster_hash)',
  reference: 'needs the connection\'s original source address hashed with jhash (xt_cluster_hash)',
};

