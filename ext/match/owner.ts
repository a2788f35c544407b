/**
 * owner match: libxt_owner.c (revision 1), kernel xt_owner.c: the local
 * socket's owner uid/gid (ranges), its existence, supplementary groups.
 * User and group names resolve as on a stock system (`root` = 0 etc.);
 * iptables-save always prints numbers. Kernel `.hooks` = OUTPUT and
 * POSTROUTING; checkentry refuses a range whose minimum exceeds its maximum.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulPrefix } from '../numbers.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { M_SK, M_SK_GROUPS, M_SK_NGROUPS, M_SKGID, M_SKUID, SK_FILE, SK_NONE } from '../../vm/layout.js';

/** struct xt_owner_match_info, decoded. */
interface OwnerData {
  uid?: { min: number; max: number; invert: boolean };
  gid?: { min: number; max: number; invert: boolean };
  /** XT_OWNER_SOCKET */
  socketExists?: { invert: boolean };
  /** XT_OWNER_SUPPL_GROUPS: --gid-owner also checks supplementary groups. */
  supplGroups: boolean;
}

/** Names getpwnam()/getgrnam() resolve on a stock Debian system. */
const USERS: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  root: 0, daemon: 1, bin: 2, sys: 3, sync: 4, games: 5, man: 6, lp: 7, mail: 8, news: 9, uucp: 10,
  proxy: 13, 'www-data': 33, backup: 34, list: 38, irc: 39, gnats: 41, _apt: 42, nobody: 65534,
});
const GROUPS: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  root: 0, daemon: 1, bin: 2, sys: 3, adm: 4, tty: 5, disk: 6, lp: 7, mail: 8, news: 9, uucp: 10,
  man: 12, proxy: 13, kmem: 15, dialout: 20, fax: 21, voice: 22, cdrom: 24, floppy: 25, tape: 26,
  sudo: 27, audio: 29, dip: 30, 'www-data': 33, backup: 34, operator: 37, list: 38, irc: 39, src: 40,
  gnats: 41, shadow: 42, utmp: 43, video: 44, sasl: 45, plugdev: 46, staff: 50, games: 60, users: 100,
  nogroup: 65534,
});

/** owner_parse_range(): `a`, `a-b` or `a:b`, each 0..2^32-2 in any C base. */
function parseRange(s: string, opt: string): [number, number] {
  const bad = (): never => fail(`owner: Bad value for "--${opt}" option: "${s}"`);
  const a = strtoulPrefix(s, 0n, 0xfffffffen) ?? bad();
  let to = a.value;
  let rest = a.rest;
  if (rest.startsWith('-') || rest.startsWith(':')) {
    const b = strtoulPrefix(rest.slice(1), 0n, 0xfffffffen) ?? bad();
    to = b.value;
    rest = b.rest;
  }
  if (rest !== '') bad();
  return [Number(a.value), Number(to)];
}

export const owner: MatchModule<OwnerData> = {
  kind: 'match',
  name: 'owner',
  options: [
    { name: 'uid-owner', arg: 1, invert: true },
    { name: 'gid-owner', arg: 1, invert: true },
    { name: 'socket-exists', arg: 0, invert: true },
    { name: 'suppl-groups', arg: 0 },
  ],
  hooks: (1 << 3) | (1 << 4),
  init: () => ({ supplGroups: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'uid-owner': {
        const u = USERS[arg!];
        const [min, max] = u !== undefined ? [u, u] : parseRange(arg!, opt);
        d.uid = { min, max, invert };
        return;
      }
      case 'gid-owner': {
        const g = GROUPS[arg!];
        const [min, max] = g !== undefined ? [g, g] : parseRange(arg!, opt);
        d.gid = { min, max, invert };
        return;
      }
      case 'socket-exists':
        d.socketExists = { invert };
        return;
      case 'suppl-groups':
        if (!d.gid) fail('owner: Bad value for "--suppl-groups" option: "you need to use --gid-owner first"');
        d.supplGroups = true;
        return;
    }
  },
  final(_d, seen) {
    if (seen.size === 0) fail('owner: At least one of --uid-owner, --gid-owner or --socket-exists is required', 'option');
  },
  save(d) {
    const range = (r: { min: number; max: number }) => (r.min !== r.max ? `${r.min}-${r.max}` : `${r.min}`);
    let s = '';
    if (d.socketExists) s += `${d.socketExists.invert ? ' !' : ''} --socket-exists`;
    if (d.uid) s += `${d.uid.invert ? ' !' : ''} --uid-owner ${range(d.uid)}`;
    if (d.gid) s += `${d.gid.invert ? ' !' : ''} --gid-owner ${range(d.gid)}`;
    if (d.supplGroups) s += ' --suppl-groups';
    return s;
  },
  check(d) {
    if (d.uid && d.uid.max < d.uid.min) return `xt_owner: uid range ${d.uid.min}-${d.uid.max} is reversed (EINVAL)`;
    if (d.gid && d.gid.max < d.gid.min) return `xt_owner: gid range ${d.gid.min}-${d.gid.max} is reversed (EINVAL)`;
    return undefined;
  },
  ...compatMatchFaces(ownerMt),
};

// --- reference semantics (xt_owner.c owner_mt, revision 1, kernel 6.18) -------------------
const XT_OWNER_UID = 1 << 0;
const XT_OWNER_GID = 1 << 1;
const XT_OWNER_SOCKET = 1 << 2;
const XT_OWNER_SUPPL_GROUPS = 1 << 3;

/**
 * owner_mt() over skb->sk as the packet carries it (M_SK): a received or
 * forwarded packet, a looped-back one (skb_orphan) and REJECT's resets have
 * none; the stack's own answers leave through a kernel socket without a
 * file; a packet a program sends (packet spec `from local`, with `uid`,
 * `gid`, `groups`) has a socket with a file and its credentials.
 *  - no socket: true only when every test asked for is inverted,
 *    `(match ^ invert) == 0` (--suppl-groups, never inverted, makes it false);
 *  - `! --socket-exists` with a socket: false;
 *  - a socket without a file: true unless an uninverted uid or gid test
 *    asks, `((match ^ invert) & (UID | GID)) == 0`;
 *  - otherwise fsuid in [uid_min, uid_max], and fsgid (or, with
 *    --suppl-groups, one of the supplementary groups) in [gid_min,
 *    gid_max], each XOR its inversion.
 */
function ownerMt(d: OwnerData): MatchFn {
  let match = 0;
  let invert = 0;
  if (d.uid) {
    match |= XT_OWNER_UID;
    if (d.uid.invert) invert |= XT_OWNER_UID;
  }
  if (d.gid) {
    match |= XT_OWNER_GID;
    if (d.gid.invert) invert |= XT_OWNER_GID;
  }
  if (d.socketExists) {
    match |= XT_OWNER_SOCKET;
    if (d.socketExists.invert) invert |= XT_OWNER_SOCKET;
  }
  if (d.supplGroups) match |= XT_OWNER_SUPPL_GROUPS;
  const [uidMin, uidMax] = d.uid ? [d.uid.min, d.uid.max] : [0, 0];
  const [gidMin, gidMax] = d.gid ? [d.gid.min, d.gid.max] : [0, 0];
  const inRange = (id: number, min: number, max: number): boolean => id >>> 0 >= min && id >>> 0 <= max;
  return (par) => {
    const m = par.meta;
    const sk = m[M_SK]!;
    if (sk === SK_NONE) return (match ^ invert) === 0;
    if ((match & invert & XT_OWNER_SOCKET) !== 0) return false;
    if (sk !== SK_FILE) return ((match ^ invert) & (XT_OWNER_UID | XT_OWNER_GID)) === 0;
    if ((match & XT_OWNER_UID) !== 0 && inRange(m[M_SKUID]!, uidMin, uidMax) === ((invert & XT_OWNER_UID) !== 0)) return false;
    if ((match & XT_OWNER_GID) !== 0) {
      let found = inRange(m[M_SKGID]!, gidMin, gidMax);
      if (!found && (match & XT_OWNER_SUPPL_GROUPS) !== 0) {
        const n = m[M_SK_NGROUPS]!;
        for (let i = 0; i < n && !found; i++) found = inRange(m[M_SK_GROUPS + i]!, gidMin, gidMax);
      }
      if (found === ((invert & XT_OWNER_GID) !== 0)) return false;
    }
    return true;
  };
}

