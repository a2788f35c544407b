/**
 * osf match: iptables `extensions/libxt_osf.c`, kernel
 * `net/netfilter/xt_osf.c` (IPv4, `.proto = IPPROTO_TCP`, `.hooks`
 * PREROUTING, INPUT and FORWARD): passive OS fingerprinting of TCP SYNs
 * against the fingerprints loaded into the kernel (nfnetlink_osf, from a
 * pf.os file with nfnl_osf). `--genre` (mandatory, at most 31 bytes),
 * `--ttl` and `--log` 0..2. iptables-save prints the genre as it was given,
 * unquoted.
 *
 * Semantics: ext/osf.ts nfOsfMatch() over the node's fingerprints (the
 * snapshot's pf.os; without one the module is refused, since the kernel's
 * list cannot be read back). As in the kernel, `!` before --genre is
 * stored (XT_OSF_INVERT) but nothing reads it: `! --genre X` matches what
 * `--genre X` matches; with --log every genre is compared. The VM runs
 * the same function through nft_compat, as iptables-nft does.
 */
import { Hook } from '../../core/ast.js';
import { fail } from '../../core/errors.js';
import type { EngineOptions, MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { NotModelled, type MatchFn } from '../xt.js';
import { nfOsfMatch, NF_OSF_TTL_TRUE, type OsfFingers } from '../osf.js';

interface OsfData {
  genre: string;
  invert: boolean;
  /** XT_OSF_TTL with the level, when given. */
  ttl: number | undefined;
  /** XT_OSF_LOG with the level, when given. */
  log: number | undefined;
}

/** MAXGENRELEN */
const GENRE_MAX = 32;
const NEEDS = 'needs the OS fingerprints loaded into the kernel (nfnl_osf -f pf.os): give the pf.os the node loaded in the snapshot (the kernel cannot list them)';

/** The node's fingerprints, or the refusal without them. */
function fingers(engine: EngineOptions): OsfFingers {
  if (!engine.osf) throw new NotModelled('match osf', `match osf: ${NEEDS}`);
  return engine.osf;
}

/** xt_osf_match_packet() (net/netfilter/xt_osf.c) → nf_osf_match(). */
function osfMt(d: OsfData, f: OsfFingers): MatchFn {
  const genre = d.log !== undefined ? undefined : d.genre;
  const ttlCheck = d.ttl ?? NF_OSF_TTL_TRUE;
  return (par) => nfOsfMatch(f, genre, ttlCheck, par.d, par.nh, par.nh + par.thoff, par.end);
}

export const osf: MatchModule<OsfData> = {
  kind: 'match',
  name: 'osf',
  family: 'ip',
  proto: 6,
  hooks: (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD),
  options: [
    { name: 'genre', arg: 1, invert: true },
    { name: 'ttl', arg: 1 },
    { name: 'log', arg: 1 },
  ],
  init: () => ({ genre: '', invert: false, ttl: undefined, log: undefined }),
  parse(d, opt, arg, invert) {
    if (opt === 'genre') {
      if (Buffer.byteLength(arg!) >= GENRE_MAX) fail(`osf: argument to "--genre" is too long (max ${GENRE_MAX - 1})`);
      d.genre = arg!;
      d.invert = invert;
    } else if (opt === 'ttl') d.ttl = parseUintOpt(arg!, 0, 2, 'osf', opt);
    else d.log = parseUintOpt(arg!, 0, 2, 'osf', opt);
  },
  final(_d, seen) {
    if (!seen.has('genre')) fail('osf: option "--genre" must be specified', 'option');
  },
  save(d) {
    let s = `${d.invert ? ' !' : ''} --genre ${d.genre}`;
    if (d.ttl !== undefined) s += ` --ttl ${d.ttl}`;
    if (d.log !== undefined) s += ` --log ${d.log}`;
    return s;
  },
  lower: (c, m) => {
    const f = c.engine.osf;
    if (!f) return c.refuse('match osf', m.pos, NEEDS);
    lowerCompatMatch(c, m, () => osfMt(m.data as OsfData, f));
  },
  reference: (d, _family, backend, engine) => asNftCompat(osfMt(d, fingers(engine)), backend),
};
