/**
 * connlabel match: iptables `extensions/libxt_connlabel.c`, kernel
 * `net/netfilter/xt_connlabel.c` (`struct xt_connlabel_mtinfo`): test (and
 * with `--set`, set) one bit of the connection's 128-bit label.
 *
 * `[!] --label NAME` (mandatory) names the bit through
 * /etc/xtables/connlabel.conf; without that file (as on the test machines,
 * where iptables only warns that it cannot open it) the label is a number in
 * any C base, kept in a u16. `--set` sets the bit on the connection.
 * Saved as `[ !] --label "BIT"[ --set]`. Kernel checkentry: only the invert
 * and set option bits, and the bit below 128 (else ERANGE).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import { M_CT_ID } from '../../vm/layout.js';

const XT_CONNLABEL_OP_INVERT = 1 << 0;
const XT_CONNLABEL_OP_SET = 1 << 1;
/** Bits in a connection label (NF_CT_LABELS_MAX_SIZE * 8). */
const XT_CONNLABEL_MAXBIT = 128;

interface ConnlabelData {
  /** The label bit (u16). */
  bit: number;
  /** XT_CONNLABEL_OP_* bits. */
  options: number;
}

/** connlabel_value_parse: strtoul over the whole string, as an int (-1 when invalid). */
function valueParse(s: string): number {
  if (s === '') return -1;
  const r = strtoumax(s, 0);
  if (r.end !== s.length) return -1;
  // strtoul saturates at ULONG_MAX; the result is then cut to an int
  const v = r.overflow ? -1 : Number(BigInt.asIntN(32, r.value));
  return v;
}

export const connlabel: MatchModule<ConnlabelData> = {
  kind: 'match',
  name: 'connlabel',
  options: [
    { name: 'label', arg: 1, invert: true },
    { name: 'set', arg: 0 },
  ],
  init: () => ({ bit: 0, options: 0 }),
  parse(d, opt, arg, invert) {
    if (opt === 'set') {
      d.options |= XT_CONNLABEL_OP_SET;
      return;
    }
    if (arg!.length < 1) fail('Argument must have a minimum length of 1 characters');
    const v = valueParse(arg!);
    if (v < 0) fail(`label '${arg}' not found or invalid value`);
    d.bit = v & 0xffff;
    if (invert) d.options |= XT_CONNLABEL_OP_INVERT;
  },
  final(_d, seen) {
    if (!seen.has('label')) fail('connlabel: option "--label" must be specified', 'option');
  },
  save(d) {
    let s = d.options & XT_CONNLABEL_OP_INVERT ? ' !' : '';
    s += ` --label "${d.bit}"`;
    if (d.options & XT_CONNLABEL_OP_SET) s += ' --set';
    return s;
  },
  check(d) {
    if (d.options & ~(XT_CONNLABEL_OP_INVERT | XT_CONNLABEL_OP_SET)) return `xt_connlabel: Unknown options in mask ${d.options.toString(16)}`;
    if (d.bit >= XT_CONNLABEL_MAXBIT) return `xt_connlabel: label bit ${d.bit} out of range (Numerical result out of range)`;
    return undefined;
  },
  lower: (c, m) => lowerCompatMatch(c, m, () => connlabelMt(m.data as ConnlabelData)),
  reference: (d, _family, backend) => asNftCompat(connlabelMt(d), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * connlabel_mt() (net/netfilter/xt_connlabel.c, kernel 6.18): no conntrack
 * (none, untracked) or one without the labels extension (a template, a
 * conntrack made before any connlabel rule was loaded): the inversion.
 * The bit set: match. Not set and --set: the bit is set on the
 * conntrack (later packets and rules see it), match. Else no match; each
 * result inverted by `!`.
 */
function connlabelMt(info: ConnlabelData): MatchFn {
  const invert = (info.options & XT_CONNLABEL_OP_INVERT) !== 0;
  const set = (info.options & XT_CONNLABEL_OP_SET) !== 0;
  const bit = info.bit;
  return (par) => {
    const id = par.meta[M_CT_ID]!;
    const ct = par.env.ct;
    if (id < 0 || !ct) return invert;
    const b = ct.labelBit(id, bit);
    if (b < 0) return invert;
    if (b === 1) return !invert;
    if (set) {
      ct.labelSet(id, bit);
      return !invert;
    }
    return invert;
  };
}

