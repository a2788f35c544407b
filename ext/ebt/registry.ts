/**
 * The one name table of the ebtables modules (the bridge family's sibling
 * of ../registry.ts): matches and watchers, whose options ebtables accepts
 * without `-m`, and targets. Adding a module is one file under match/,
 * watcher/ or target/ plus its line here; test/ext/ebt-registry.test.ts
 * checks every module's faces.
 */
import type { EbtModule } from './types.js';
import { m802_3 } from './match/802_3.js';
import { among } from './match/among.js';
import { arp } from './match/arp.js';
import { ip, ip6 } from './match/ip.js';
import { limit } from './match/limit.js';
import { mark_m } from './match/mark_m.js';
import { pkttype } from './match/pkttype.js';
import { stp } from './match/stp.js';
import { vlan } from './match/vlan.js';
import { log } from './watcher/log.js';
import { nflog } from './watcher/nflog.js';
import { mark } from './target/mark.js';
import { dnat, snat, redirect } from './target/nat.js';
import { arpreply } from './target/arpreply.js';

/** Matches and watchers in the order ebtables-nft loads them (their options are searched in this order). */
const MATCHES: readonly EbtModule[] = [m802_3, among, arp, ip, ip6, limit, mark_m, pkttype, stp, vlan, log, nflog];
const TARGETS: readonly EbtModule[] = [mark, dnat, snat, redirect, arpreply];

const TARGET_BY_NAME: ReadonlyMap<string, EbtModule> = new Map(TARGETS.map((t) => [t.name, t]));

export function allEbtMatches(): readonly EbtModule[] {
  return MATCHES;
}

export function allEbtTargets(): readonly EbtModule[] {
  return TARGETS;
}

export function findEbtTarget(name: string): EbtModule | undefined {
  return TARGET_BY_NAME.get(name);
}

export function findEbtModule(name: string): EbtModule | undefined {
  return MATCHES.find((m) => m.name === name) ?? TARGET_BY_NAME.get(name);
}
