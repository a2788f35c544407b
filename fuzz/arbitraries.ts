/**
 * nfvm's generators as fast-check arbitraries, for property tests of
 * one's own: rulesets, packets (as packet specs), flows (a packet and its
 * reply) and whole snapshots. fast-check is not a dependency of nfvm:
 * pass your own (`import fc from 'fast-check'`, version 3 or 4); the
 * arbitraries draw through `fc.gen()`, so they shrink as fast-check's own.
 *
 *   import fc from 'fast-check';
 *   import { nfvmArbitraries } from 'nfvm';
 *   const arb = nfvmArbitraries(fc);
 *   fc.assert(fc.property(arb.ruleset, arb.packet, (rs, p) => { ... }));
 */
import { genPacket, genRuleset, type GenRuleset } from './gen.js';
import { specText, type FuzzPacket } from './packet.js';
import { genericNodeFiles } from './node.js';
import type { Rand } from './rand.js';
import type { TableName } from '../core/ast.js';

/**
 * What nfvm takes of fast-check: `fc.gen()` and `fc.integer`. fast-check's
 * types are not nfvm's to import (it is not a dependency), so its
 * arbitraries pass through as `any`: they are the user's fc.Arbitrary.
 */
export interface FastCheckApi {
  gen(): any;
  integer(constraints: { min: number; max: number }): any;
}

/** A generated packet: where it runs (a builtin chain), its fields, and its spec (what `nfvm trace --packet` takes). */
export interface ArbPacket extends FuzzPacket {
  chain: string;
  spec: string;
}

/** A generated snapshot: its files by name (iptables-save.txt, ip-addr.json, ip-route.json, sysctl.txt), as `nfvm snapshot` writes them. */
export interface ArbSnapshot {
  files: Map<string, string>;
  table: TableName;
  ifaces: string[];
}

/**
 * The arbitraries, each an `fc.Arbitrary` of the user's fast-check:
 *  - ruleset: GenRuleset (one IPv4 table of iptables-restore text: filter,
 *    mangle, raw or nat, with user chains, jumps, negations and the matches
 *    and targets whose meaning needs only the packet);
 *  - rulesetOf(tables): the same, of the tables named;
 *  - packet / packetFor(chain): ArbPacket (the chain: any builtin one);
 *  - flow: [spec, 'reply'], a new TCP or UDP connection's first packet,
 *    arriving on eth0, and its answer (as `nfvm trace --packet A --packet reply`);
 *  - snapshot: ArbSnapshot, a generated ruleset on a node with the
 *    interfaces it names (10.255.N.1/24 each, forwarding on).
 */
export function nfvmArbitraries(fc: FastCheckApi): Record<'ruleset' | 'packet' | 'flow' | 'snapshot', any> & { rulesetOf(tables: readonly TableName[]): any; packetFor(chain: string): any } {
  const rand = (g: any): Rand => ({ int: (min, max) => g(fc.integer, { min, max }) as number });
  const drawn = <T>(f: (r: Rand) => T) => fc.gen().map((g: any) => f(rand(g)));
  const packetFor = (chain: string) => drawn((r): ArbPacket => {
    const p = genPacket(r, chain);
    return { ...p, spec: specText(p) };
  });
  const CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
  return {
    ruleset: drawn((r): GenRuleset => genRuleset(r)),
    rulesetOf: (tables: readonly TableName[]) => drawn((r): GenRuleset => genRuleset(r, tables)),
    packet: drawn((r): ArbPacket => {
      const p = genPacket(r, CHAINS[r.int(0, CHAINS.length - 1)]!);
      return { ...p, spec: specText(p) };
    }),
    packetFor,
    flow: drawn((r): [string, 'reply'] => {
      const p = genPacket(r, 'PREROUTING');
      const q: FuzzPacket = { ...p, proto: r.int(0, 1) ? 6 : 17, flags: 0x02, frag: false, ttl: 64, ct: '', mark: 0, iif: 'eth0', oif: '' };
      return [specText(q), 'reply'];
    }),
    snapshot: drawn((r): ArbSnapshot => {
      const rs = genRuleset(r);
      const node = genericNodeFiles([rs.text]);
      node.files.set('iptables-save.txt', rs.text);
      return { files: node.files, table: rs.table, ifaces: node.ifaces };
    }),
  };
}
