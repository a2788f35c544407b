/**
 * cluster match: libxt_cluster.c, kernel xt_cluster.c: hash the connection
 * over `total_nodes` and match when the bucket is in `node_mask`.
 * `--cluster-local-node n` is stored as the mask `1 << (n-1)` and saved as
 * `--cluster-local-nodemask`. No table/hook restriction.
 *
 * Semantics (net/netfilter/xt_cluster.c, Linux 6.18): jhash of the
 * conntrack's original source address (jhash_1word of the __be32 as the
 * little-endian host reads it; jhash2 over the four words for IPv6) with the
 * rule's seed, scaled to `total_nodes` (reciprocal_scale); the match is the
 * bucket's bit in `node_mask`. A packet without conntrack does not match (an
 * inverted rule neither). Before that, a packet to a unicast address that
 * came with a multicast link address (PACKET_MULTICAST) becomes
 * PACKET_HOST, the side effect the match is documented for. The kernel
 * hashes the master of an expected connection; the model keeps no
 * expectations, so every conntrack is its own.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt, strtoulWholeNum } from '../numbers.js';
import { compatMatchFaces } from '../compat.js';
import type { MatchFn } from '../xt.js';
import type { Family } from '../../core/ast.js';
import { forceU32, jhash1word, jhash2 } from '../../vm/jhash.js';
import { reciprocalScale } from '../../vm/expr/numgen.js';
import { M_CT_DIR, M_CT_ID, M_PKTTYPE } from '../../vm/layout.js';
import { CT_T_PROTO, CT_T_SRC } from '../../vm/ct-env.js';
import { IP_CT_DIR_ORIGINAL } from '../../core/netfilter.js';

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
      case 'cluster-local-nodemask': {
        // libxt_cluster gives the mask the range of a node number (1-32): iptables-save prints
        // `--cluster-local-node 7` and above as a mask iptables-restore refuses, as here
        const wide = strtoulWholeNum(arg!, NODES_MAX + 1, 0xffffffff);
        if (wide !== undefined) {
          fail(`cluster: bad value for option "--${opt}" near "${arg}", or out of range (1-${NODES_MAX}). iptables-restore 1.8 refuses it too, though iptables-save prints \`--cluster-local-node N' as this mask for N from 7: write the rule with --cluster-local-node`);
        }
        d.nodeMask = parseUintOpt(arg!, 1, NODES_MAX, 'cluster', opt);
        if (invert) d.invert = true;
        return;
      }
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
  ...compatMatchFaces(clusterMt),
};


// --- reference semantics (xt_cluster.c xt_cluster_mt, Linux 6.18) --------------------------

const PACKET_HOST = 0;
const PACKET_MULTICAST = 2;
const AF_INET = 2;
const AF_INET6 = 10;

function clusterMt(info: ClusterData, family: Family): MatchFn {
  const words = new Int32Array(4);
  const v4 = family === 'ip';
  return (par) => {
    const d = par.d;
    const m = par.meta;
    // xt_cluster_is_multicast_addr() of the packet's destination
    const mcast = v4 ? (d[par.nh + 16]! & 0xf0) === 0xe0 : d[par.nh + 24] === 0xff;
    if (!mcast && m[M_PKTTYPE] === PACKET_MULTICAST) m[M_PKTTYPE] = PACKET_HOST;
    if (m[M_CT_DIR]! < 0) return false;
    const id = m[M_CT_ID]!;
    const ct = par.env.ct;
    const tw = (w: number) => (id >= 0 && ct !== null ? ct.tupleWord(id, IP_CT_DIR_ORIGINAL, w) : 0);
    // xt_cluster_hash(): a template's l3num is 0 (WARN_ON, hash 0)
    const l3num = tw(CT_T_PROTO) >>> 8;
    let hash = 0;
    if (l3num === AF_INET) hash = jhash1word(forceU32(tw(CT_T_SRC)), info.hashSeed);
    else if (l3num === AF_INET6) {
      for (let i = 0; i < 4; i++) words[i] = forceU32(tw(CT_T_SRC + i));
      hash = jhash2(words, 4, info.hashSeed);
    }
    const bucket = reciprocalScale(hash, info.totalNodes);
    return (((1 << bucket) & info.nodeMask) !== 0) !== info.invert;
  };
}
