/**
 * set match: iptables extensions/libxt_set.c (revision 4) with
 * libxt_set.h, kernel net/netfilter/xt_set.c (set_match_v4).
 *
 * Data mirrors `struct xt_set_info_match_v4`: the ipset (kept by name; the
 * kernel stores its index), the direction of each of its dimensions
 * (`src`/`dst`, at most 6), the inversion and flag bits, and optional
 * packet/byte counter comparisons (eq, ne via `! --packets-eq`, lt, gt).
 * These are old-style options: they may be repeated (the last wins) and
 * handle `!` themselves.
 *
 * iptables asks the kernel for the set while parsing and the kernel
 * refuses a set that does not exist ("Set foo doesn't exist."): nfvm checks
 * this against the node's sets (CheckContext.objects) when they are known,
 * and both engines refuse a rule whose set the node lacks.
 *
 * Both engines run the kernel's set_match_v4 (vm/ipset.ts xtSetMatch) over
 * the node's sets (EngineOptions.ipsets): the VM through the compat
 * expression iptables-nft loads (`[ match name set rev 4 ]`,
 * vm/expr/xtset.ts), the x_tables evaluator directly.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule, KnownObjects } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { NfvmError, type SourcePos } from '../../core/errors.js';
import type { EngineOptions } from '../types.js';
import { NotModelled, type MatchFn } from '../xt.js';
import type { LowerCtx } from '../lower.js';
import type { MatchNode } from '../../core/ast.js';
import { emitXtSet } from '../../vm/expr/xtset.js';
import {
  IPSET_COUNTER_EQ, IPSET_COUNTER_GT, IPSET_COUNTER_LT, IPSET_COUNTER_NE, IPSET_FLAG_RETURN_NOMATCH, IPSET_FLAG_SKIP_COUNTER_UPDATE,
  IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE, IPSET_INV_MATCH, XS_BYTES_HI, XS_BYTES_OP, XS_FLAGS, XS_MATCH, XS_PACKETS_HI, XS_PACKETS_OP, XS_WORDS,
  xtSetMatch, IpSetOpt,
} from '../../vm/ipset.js';

const IPSET_MAXNAMELEN = 32;
const IPSET_DIM_MAX = 6;

/** A set reference: name and per-dimension direction. */
export interface SetRef {
  name: string;
  /** dirs[i] is the direction of dimension i+1. */
  dirs: ('src' | 'dst')[];
}

type CounterOp = 'eq' | 'ne' | 'lt' | 'gt';

interface SetMatchData {
  set: SetRef | undefined;
  /** IPSET_INV_MATCH */
  invert: boolean;
  /** IPSET_FLAG_RETURN_NOMATCH */
  returnNomatch: boolean;
  /** IPSET_FLAG_SKIP_COUNTER_UPDATE (`! --update-counters`) */
  skipCounterUpdate: boolean;
  /** IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE (`! --update-subcounters`) */
  skipSubcounterUpdate: boolean;
  packets: { op: CounterOp; value: bigint } | undefined;
  bytes: { op: CounterOp; value: bigint } | undefined;
}

/** "Set X doesn't exist." when the node's ipsets are known and X is not one of them. */
export function missingSet(objects: KnownObjects | undefined, ref: SetRef | undefined): string | undefined {
  if (!ref || !objects?.ipsets || objects.ipsets.has(ref.name)) return undefined;
  return `Set ${ref.name} doesn't exist.`;
}

/** The `--match-set`/`--add-set` name check. */
export function checkSetName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') > IPSET_MAXNAMELEN - 1) {
    fail(`setname \`${name}' too long, max ${IPSET_MAXNAMELEN - 1} characters.`);
  }
  return name;
}

/** libxt_set.h parse_dirs(): comma-separated `src`/`dst` (only the first three letters count). */
export function parseDirs(arg: string): ('src' | 'dst')[] {
  const parts = arg.split(',');
  const dirs: ('src' | 'dst')[] = [];
  let k = 0;
  while (dirs.length < IPSET_DIM_MAX && k < parts.length) {
    const p = parts[k++]!;
    if (p.startsWith('src')) dirs.push('src');
    else if (p.startsWith('dst')) dirs.push('dst');
    else fail("You must spefify (the comma separated list of) 'src' or 'dst'.");
  }
  if (k < parts.length) fail(`Can't be more src/dst options than ${IPSET_DIM_MAX}.`);
  return dirs;
}

/**
 * The store's index of a referenced set, or the kernel's refusal of a set
 * that does not exist (thrown as NotModelled with iptables' message).
 */
export function setIndex(engine: EngineOptions, ref: SetRef, what: string): number {
  const id = engine.ipsets ? engine.ipsets.index(ref.name) : -1;
  if (id < 0) throw new NotModelled(what, `Set ${ref.name} doesn't exist.`);
  return id;
}

/** Writes a set reference (index, flags, dimension) at `at` of xt_set words: bit 0 inverts, bit i is dimension i from the source. */
export function putSetRef(w: Int32Array, at: number, id: number, ref: SetRef, invert: boolean): void {
  let flags = invert ? IPSET_INV_MATCH : 0;
  ref.dirs.forEach((d, i) => {
    if (d === 'src') flags |= 1 << (i + 1);
  });
  w[at] = id;
  w[at + 1] = flags;
  w[at + 2] = ref.dirs.length;
}

/** A 64-bit counter value as two words (high, low). */
function putU64(w: Int32Array, at: number, v: bigint): void {
  w[at] = Number((v >> 32n) & 0xffffffffn) | 0;
  w[at + 1] = Number(v & 0xffffffffn) | 0;
}

const COUNTER_OPS = { eq: IPSET_COUNTER_EQ, ne: IPSET_COUNTER_NE, lt: IPSET_COUNTER_LT, gt: IPSET_COUNTER_GT } as const;

/** struct xt_set_info_match_v4 as xt_set words. */
function matchWords(d: SetMatchData, engine: EngineOptions): Int32Array {
  const w = new Int32Array(XS_WORDS).fill(-1);
  putSetRef(w, XS_MATCH, setIndex(engine, d.set!, 'match set'), d.set!, d.invert);
  w[XS_FLAGS] = (d.returnNomatch ? IPSET_FLAG_RETURN_NOMATCH : 0) | (d.skipCounterUpdate ? IPSET_FLAG_SKIP_COUNTER_UPDATE : 0) |
    (d.skipSubcounterUpdate ? IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE : 0);
  w[XS_PACKETS_OP] = d.packets ? COUNTER_OPS[d.packets.op] : 0;
  putU64(w, XS_PACKETS_HI, d.packets?.value ?? 0n);
  w[XS_BYTES_OP] = d.bytes ? COUNTER_OPS[d.bytes.op] : 0;
  putU64(w, XS_BYTES_HI, d.bytes?.value ?? 0n);
  return w;
}

/** Emits the compat match (`target` false) or target with the words `make` gives; a missing set is refused at the node's position. */
export function emitSetInfo(c: LowerCtx, node: { pos?: SourcePos; name: string }, target: boolean, make: () => Int32Array): void {
  let w: Int32Array;
  try {
    w = make();
  } catch (e) {
    if (e instanceof NotModelled) throw new NfvmError('check', e.message, c.file, node.pos, node.name);
    throw e;
  }
  emitXtSet(c.b, target, w);
}

/** The VM: the compat match over the node's sets. */
function lowerSet(c: LowerCtx, m: MatchNode<SetMatchData>): void {
  emitSetInfo(c, m, false, () => matchWords(m.data, c.engine));
}

/** set_match_v4 (net/netfilter/xt_set.c) over the node's sets. */
function setMatch(d: SetMatchData, _family: unknown, _backend: unknown, engine: EngineOptions): MatchFn {
  const w = matchWords(d, engine);
  const store = engine.ipsets!;
  const opt = new IpSetOpt();
  return (par) => xtSetMatch(store, w, 0, par.pkt, opt);
}

export const formatSetRef = (r: SetRef) => `${r.name} ${r.dirs.join(',')}`;

function parseCounter(s: string): bigint {
  const v = strtoulWhole(s, 0n, 0xffffffffffffffffn);
  if (v === undefined) fail(`Cannot parse ${s} as a counter value`);
  return v;
}

export const set: MatchModule<SetMatchData> = {
  kind: 'match',
  name: 'set',
  options: [
    { name: 'match-set', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'set', arg: 1, invert: true, multi: true, extra: 1 },
    { name: 'return-nomatch', arg: 0, invert: true, multi: true },
    { name: 'update-counters', arg: 0, invert: true, multi: true },
    { name: 'packets-eq', arg: 1, invert: true, multi: true },
    { name: 'packets-lt', arg: 1, invert: true, multi: true },
    { name: 'packets-gt', arg: 1, invert: true, multi: true },
    { name: 'bytes-eq', arg: 1, invert: true, multi: true },
    { name: 'bytes-lt', arg: 1, invert: true, multi: true },
    { name: 'bytes-gt', arg: 1, invert: true, multi: true },
    { name: 'update-subcounters', arg: 0, invert: true, multi: true },
  ],
  init: () => ({ set: undefined, invert: false, returnNomatch: false, skipCounterUpdate: false, skipSubcounterUpdate: false, packets: undefined, bytes: undefined }),
  parse(d, opt, arg, invert, ctx, extra) {
    switch (opt) {
      case 'update-subcounters':
        if (invert) d.skipSubcounterUpdate = true;
        return;
      case 'update-counters':
        if (invert) d.skipCounterUpdate = true;
        return;
      case 'return-nomatch':
        if (invert) fail('--return-nomatch flag cannot be inverted');
        d.returnNomatch = true;
        return;
      case 'set':
      case 'match-set':
        if (opt === 'set') ctx.warn('--set option deprecated, please use --match-set');
        if (d.set) fail('--match-set can be specified only once');
        if (invert) d.invert = true;
        d.set = { name: checkSetName(arg!), dirs: parseDirs(extra[0]!) };
        return;
    }
    const [what, cmp] = opt.split('-') as ['packets' | 'bytes', 'eq' | 'lt' | 'gt'];
    if (d[what]) fail(`only one of the --${what}-[eq|lt|gt] is allowed`);
    if (invert && cmp !== 'eq') fail(`--${opt} option cannot be inverted`);
    d[what] = { op: invert ? 'ne' : cmp, value: parseCounter(arg!) };
  },
  final(d) {
    if (!d.set) fail("You must specify `--match-set' with proper arguments", 'option');
  },
  // iptables resolves the name to the kernel's set index (get_set_byname) and
  // refuses a set that does not exist; checked when the node's sets are known.
  check: (d, ctx) => missingSet(ctx.objects, d.set),
  save(d) {
    let s = `${d.invert ? ' !' : ''} --match-set ${formatSetRef(d.set!)}`;
    if (d.returnNomatch) s += ' --return-nomatch';
    if (d.skipCounterUpdate) s += ' ! --update-counters';
    if (d.skipSubcounterUpdate) s += ' ! --update-subcounters';
    for (const what of ['packets', 'bytes'] as const) {
      const c = d[what];
      if (!c) continue;
      s += c.op === 'ne' ? ` ! --${what}-eq ${c.value}` : ` --${what}-${c.op} ${c.value}`;
    }
    return s;
  },
  lower: lowerSet,
  reference: setMatch,
};

