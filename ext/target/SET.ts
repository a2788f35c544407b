/**
 * SET target: iptables extensions/libxt_SET.c (revision 3) with
 * libxt_set.h, kernel net/netfilter/xt_set.c (set_target_v3).
 *
 * Data mirrors `struct xt_set_info_target_v3`: the sets to add the packet's
 * address/port tuple to and delete it from, each with the direction of
 * every dimension, the `--exist` flag and `--timeout` for additions, and a
 * map set whose skbinfo extension sets the packet's mark (`--map-mark`),
 * priority (`--map-prio`) or queue (`--map-queue`). iptables-save prints
 * `--add-set`, `--exist`, `--timeout`, `--del-set`, `--map-set` and the
 * map flags in that order. These are old-style options: a `!` before them
 * is ignored, flags may be repeated.
 *
 * Kernel checks (set_target_v3_checkentry): `--map-set` only in the mangle
 * table, and with `--map-prio`/`--map-queue` only from FORWARD, OUTPUT and
 * POSTROUTING. The kernel also needs the sets to exist (checked against the
 * node's sets when they are known, and by both engines).
 *
 * Both engines run set_target_v3 (vm/ipset.ts xtSetTarget) on the node's
 * sets, so later packets see the additions and deletions: the VM through
 * the compat expression iptables-nft loads (`[ target name SET rev 3 ]`).
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { checkSetName, emitSetInfo, formatSetRef, missingSet, parseDirs, putSetRef, setIndex, type SetRef } from '../match/set.js';
import type { EngineOptions, ExtTargetNode } from '../types.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import type { LowerCtx } from '../lower.js';
import {
  IPSET_FLAG_EXIST, IPSET_FLAG_MAP_SKBMARK, IPSET_FLAG_MAP_SKBPRIO, IPSET_FLAG_MAP_SKBQUEUE, IpSetOpt, XS_ADD, XS_DEL, XS_FLAGS, XS_MAP,
  XS_MATCH, XS_TIMEOUT, XS_WORDS, xtSetTarget,
} from '../../vm/ipset.js';

/** struct xt_set_info_target_v3 as xt_set words. */
function targetWords(d: SetTargetData, engine: EngineOptions): Int32Array {
  const w = new Int32Array(XS_WORDS).fill(-1);
  w[XS_MATCH] = -1;
  if (d.addSet) putSetRef(w, XS_ADD, setIndex(engine, d.addSet, 'target SET'), d.addSet, false);
  if (d.delSet) putSetRef(w, XS_DEL, setIndex(engine, d.delSet, 'target SET'), d.delSet, false);
  if (d.mapSet) putSetRef(w, XS_MAP, setIndex(engine, d.mapSet, 'target SET'), d.mapSet, false);
  w[XS_FLAGS] = (d.exist ? IPSET_FLAG_EXIST : 0) | (d.mapMark ? IPSET_FLAG_MAP_SKBMARK : 0) | (d.mapPrio ? IPSET_FLAG_MAP_SKBPRIO : 0) |
    (d.mapQueue ? IPSET_FLAG_MAP_SKBQUEUE : 0);
  w[XS_TIMEOUT] = d.timeout ?? -1;
  return w;
}

function lowerSetTarget(c: LowerCtx, t: ExtTargetNode<SetTargetData>): void {
  emitSetInfo(c, t, true, () => targetWords(t.data, c.engine));
}

/** set_target_v3 (net/netfilter/xt_set.c): always XT_CONTINUE. */
function setTarget(d: SetTargetData, _family: unknown, engine: EngineOptions): TargetFn {
  const w = targetWords(d, engine);
  const store = engine.ipsets!;
  const opt = new IpSetOpt();
  return (par) => {
    xtSetTarget(store, w, 0, par.pkt, opt);
    return XT_CONTINUE;
  };
}

interface SetTargetData {
  addSet: SetRef | undefined;
  delSet: SetRef | undefined;
  mapSet: SetRef | undefined;
  /** IPSET_FLAG_EXIST */
  exist: boolean;
  /** Seconds for added entries; undefined = the set's default (UINT32_MAX). */
  timeout: number | undefined;
  /** IPSET_FLAG_MAP_SKBMARK / SKBPRIO / SKBQUEUE */
  mapMark: boolean;
  mapPrio: boolean;
  mapQueue: boolean;
}

export const SET: TargetModule<SetTargetData> = {
  kind: 'target',
  name: 'SET',
  options: [
    { name: 'add-set', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'del-set', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'exist', arg: 0, invert: true, multi: true },
    { name: 'timeout', arg: 1, invert: true, multi: true },
    { name: 'map-set', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'map-mark', arg: 0, invert: true, multi: true },
    { name: 'map-prio', arg: 0, invert: true, multi: true },
    { name: 'map-queue', arg: 0, invert: true, multi: true },
  ],
  init: () => ({ addSet: undefined, delSet: undefined, mapSet: undefined, exist: false, timeout: undefined, mapMark: false, mapPrio: false, mapQueue: false }),
  parse(d, opt, arg, _invert, _ctx, extra) {
    switch (opt) {
      case 'add-set':
      case 'del-set':
      case 'map-set': {
        const key = opt === 'add-set' ? 'addSet' : opt === 'del-set' ? 'delSet' : 'mapSet';
        if (d[key]) fail(`--${opt} can be specified only once`);
        d[key] = { name: checkSetName(arg!), dirs: parseDirs(extra[0]!) };
        return;
      }
      case 'exist':
        d.exist = true;
        return;
      case 'timeout': {
        const v = strtoulWhole(arg!, 0n, 0xfffffffen);
        if (v === undefined) fail(`Invalid value for option --timeout or out of range 0-${0xfffffffe}`);
        d.timeout = Number(v);
        return;
      }
      case 'map-mark':
        d.mapMark = true;
        return;
      case 'map-prio':
        d.mapPrio = true;
        return;
      case 'map-queue':
        d.mapQueue = true;
        return;
    }
  },
  final(d) {
    if (!d.addSet && !d.delSet && !d.mapSet) fail("You must specify either `--add-set' or `--del-set' or `--map-set'", 'option');
    if (!d.addSet) {
      if (d.exist) fail("Flag `--exist' can be used with `--add-set' only", 'option');
      if (d.timeout !== undefined) fail("Option `--timeout' can be used with `--add-set' only", 'option');
    }
    if (!d.mapSet) {
      if (d.mapMark) fail("Flag `--map-mark' can be used with `--map-set' only", 'option');
      if (d.mapPrio) fail("Flag `--map-prio' can be used with `--map-set' only", 'option');
      if (d.mapQueue) fail("Flag `--map-queue' can be used with `--map-set' only", 'option');
    }
    if (d.mapSet && !d.mapMark && !d.mapPrio && !d.mapQueue) {
      fail("You must specify flags `--map-mark' or '--map-prio` or `--map-queue'", 'option');
    }
  },
  save(d) {
    let s = '';
    if (d.addSet) s += ` --add-set ${formatSetRef(d.addSet)}`;
    if (d.exist) s += ' --exist';
    if (d.timeout !== undefined) s += ` --timeout ${d.timeout}`;
    if (d.delSet) s += ` --del-set ${formatSetRef(d.delSet)}`;
    if (d.mapSet) s += ` --map-set ${formatSetRef(d.mapSet)}`;
    if (d.mapMark) s += ' --map-mark';
    if (d.mapPrio) s += ' --map-prio';
    if (d.mapQueue) s += ' --map-queue';
    return s;
  },
  check(d, ctx) {
    const missing = missingSet(ctx.objects, d.addSet) ?? missingSet(ctx.objects, d.delSet) ?? missingSet(ctx.objects, d.mapSet);
    if (missing) return missing;
    if (!d.mapSet) return undefined;
    if (ctx.table !== 'mangle') return 'xt_SET: --map-set only usable from mangle table (EINVAL)';
    const ok = (1 << 2) | (1 << 3) | (1 << 4); // FORWARD, LOCAL_OUT, POST_ROUTING
    if ((d.mapPrio || d.mapQueue) && ctx.hookMask & ~ok) {
      return 'xt_SET: mapping of prio or/and queue is allowed only from OUTPUT/FORWARD/POSTROUTING chains (EINVAL)';
    }
    return undefined;
  },
  lower: lowerSetTarget,
  reference: setTarget,
};

