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
 * refuses a set that does not exist ("Set foo doesn't exist."). nfvm has
 * no ipset state yet, so it accepts any name and keeps it.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule, KnownObjects } from '../types.js';
import { strtoulWhole } from '../numbers.js';

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
  lower: 'needs the contents of the ipsets (ip_set lists, hashes and bitmaps)',
  reference: 'needs the contents of the ipsets (ip_set lists, hashes and bitmaps)',
};

