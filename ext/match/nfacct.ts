/**
 * nfacct match: iptables extensions/libxt_nfacct.c, kernel
 * net/netfilter/xt_nfacct.c.
 *
 * Data mirrors `struct xt_nfacct_match_info`: the name of an extended
 * accounting object (created with `nfacct add NAME`), at most 31 bytes.
 * The kernel's checkentry looks the object up and refuses the rule when
 * it does not exist (ENOENT). nfvm checks this when the existing objects
 * are known (CheckContext.objects), and accepts any name otherwise.
 *
 * The match counts every packet that reaches it into the object and is
 * true unless the object has a quota it has not passed (ext/nfacct.ts);
 * it runs with the node's objects (the snapshot's nfacct.txt, `nfacct
 * list`) and is refused without them.
 */
import { fail } from '../../core/errors.js';
import type { EngineOptions, MatchModule } from '../types.js';
import { saveString } from '../save.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { NotModelled, type MatchFn } from '../xt.js';
import { M_LEN } from '../../vm/layout.js';
import { NFACCT_UNDERQUOTA } from '../nfacct.js';

interface NfacctData {
  /** Accounting object name (cut to 31 bytes as iptables does). */
  name: string;
}

const XT_NFACCT_NAME_MAX = 32;

export const nfacct: MatchModule<NfacctData> = {
  kind: 'match',
  name: 'nfacct',
  options: [{ name: 'nfacct-name', arg: 1 }],
  init: () => ({ name: '' }),
  parse(d, _opt, arg) {
    const a = arg!;
    if (a.length < 1) fail('Argument must have a minimum length of 1 characters');
    if (a.includes('\n')) fail('Newlines not allowed in --nfacct-name');
    const b = Buffer.from(a, 'utf8');
    d.name = b.length >= XT_NFACCT_NAME_MAX ? b.subarray(0, XT_NFACCT_NAME_MAX - 1).toString('utf8') : a;
  },
  final(_d, seen) {
    if (!seen.has('nfacct-name')) fail('nfacct: option "--nfacct-name" must be specified', 'option');
  },
  save: (d) => ` --nfacct-name ${saveString(d.name)}`,
  check: (d, ctx) =>
    ctx.objects?.nfacct && !ctx.objects.nfacct.has(d.name) ? `xt_nfacct: accounting object \`${d.name}' does not exist (ENOENT)` : undefined,
  // iptables-nft loads it as an x_tables match (`[ match name nfacct rev 1 ]`)
  lower: (c, m) => lowerCompatMatch(c, m, () => nfacctMt(m.data as NfacctData, c.engine)),
  reference: (d, _family, backend, engine) => asNftCompat(nfacctMt(d, engine), backend),
};

// --- semantics (xt_nfacct.c nfacct_mt, kernel 6.18) ---------------------------
/**
 * nfacct_mt(): nfnl_acct_update() counts the packet (skb->len bytes) into
 * the object, then the match is true unless nfnl_acct_overquota() says
 * NFACCT_UNDERQUOTA (an object without a quota: NFACCT_NO_QUOTA, true).
 */
function nfacctMt(d: NfacctData, engine: EngineOptions): MatchFn {
  if (!engine.nfacct) throw new NotModelled('match nfacct', 'match nfacct: needs the node\'s accounting objects with their counters and quotas: the snapshot has no nfacct.txt (`nfacct list`)');
  const o = engine.nfacct.get(d.name);
  // nfacct_mt_checkentry(): nfnl_acct_find_get() fails
  if (!o) throw new NotModelled('match nfacct', `xt_nfacct: accounting object \`${d.name}' does not exist (ENOENT): it is not in nfacct.txt`);
  return (par) => {
    o.update(par.meta[M_LEN]!);
    return o.overquota() !== NFACCT_UNDERQUOTA;
  };
}

