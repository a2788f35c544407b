/**
 * helper match: libxt_helper.c, kernel xt_helper.c helper_mt(): the helper
 * of the connection's master (the conntrack that expected this one) is
 * `--helper` (any helper for ""); the match is its `invert` when the packet
 * has no conntrack, the conntrack no master, or the master no helper. No
 * table/hook restriction.
 *
 * The master's helper is read from the node's conntrack (vm/ct-env.ts
 * NfCtTable.masterHelper): a connection an FTP control connection or a
 * TFTP request announced has that master (hooks/conntrack/expect.ts); the
 * other helpers expect nothing, so their connections have no children to
 * match.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { saveString } from '../save.js';
import { CT_HELPERS, NO_CT_TABLE } from '../../vm/ct-env.js';
import { M_CT_DIR, M_CT_ID } from '../../vm/layout.js';
import { NFT_CT_XT_MASTER_HELPER, emitCtGet, emitLookup, emitXtMatchCtGuard, setXtMatchCtGuard } from '../../vm/expr/index.js';
import { le32, type LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';
import type { MatchNode } from '../../core/ast.js';

/** struct xt_helper_info. */
interface HelperData {
  /** Helper name (at most 29 bytes, as `char name[30]` keeps it). */
  name: string;
  invert: boolean;
}

/** The CT_HELPERS indexes a master's helper may have for the match to hold: `strncmp(helper->name, name, strlen(helper->name)) == 0`. */
function matching(name: string): number[] {
  const out: number[] = [];
  for (let i = 1; i < CT_HELPERS.length; i++) if (name === '' || name.startsWith(CT_HELPERS[i]!)) out.push(i);
  return out;
}

export const helper: MatchModule<HelperData> = {
  kind: 'match',
  name: 'helper',
  options: [{ name: 'helper', arg: 1, invert: true }],
  init: () => ({ name: '', invert: false }),
  parse(d, _opt, arg, invert) {
    // XTOPT_PUT into char name[30]: longer names are cut
    d.name = Buffer.from(arg!, 'utf8').subarray(0, 29).toString('latin1');
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('helper')) fail('helper: option "--helper" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --helper ${saveString(d.name)}`,
  lower: lowerHelper,
  reference: helperMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * `ct load xt_master_helper` (0: no master or no helper), looked up in the
 * set of matching helpers (inverted: not in it). Inverted, a packet without
 * a conntrack matches: an `xt_match ctguard` steps over the test for it.
 */
function lowerHelper(c: LowerCtx, m: MatchNode): void {
  const d = m.data as HelperData;
  const set = c.anonSet(4, false);
  for (const i of matching(d.name)) set.add(le32(i));
  const guard = d.invert ? emitXtMatchCtGuard(c.b) : -1;
  c.withReg(4, (r) => {
    emitCtGet(c.b, r, NFT_CT_XT_MASTER_HELPER);
    emitLookup(c.b, r, set.name, d.invert);
  });
  if (guard >= 0) setXtMatchCtGuard(c.b, guard, c.b.emit([]));
}

// --- reference semantics (--engine reference) --------------------------------
/** helper_mt() (net/netfilter/xt_helper.c, kernel 6.18). */
function helperMt(d: HelperData): MatchFn {
  const ok = new Set(matching(d.name));
  return (par) => {
    const m = par.meta;
    if (m[M_CT_DIR]! < 0) return d.invert;
    const id = m[M_CT_ID]!;
    const h = id >= 0 ? (par.env.ct ?? NO_CT_TABLE).masterHelper(id) : 0;
    if (h === 0) return d.invert;
    return ok.has(h) !== d.invert;
  };
}
