/**
 * nfacct match: iptables extensions/libxt_nfacct.c, kernel
 * net/netfilter/xt_nfacct.c.
 *
 * Data mirrors `struct xt_nfacct_match_info`: the name of an extended
 * accounting object (created with `nfacct add NAME`), at most 31 bytes.
 * The kernel's checkentry looks the object up and refuses the rule when
 * it does not exist (ENOENT). nfvm checks this when the existing objects
 * are known (CheckContext.objects), and accepts any name otherwise.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { saveString } from '../save.js';

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
  lower: 'needs the named nfacct objects and their counters',
  reference: 'needs the named nfacct objects and their counters',
};

