/**
 * SECMARK and CONNSECMARK targets: iptables `extensions/libxt_SECMARK.c`
 * and `extensions/libxt_CONNSECMARK.c`, kernel `net/netfilter/xt_SECMARK.c`
 * and `net/netfilter/xt_CONNSECMARK.c`.
 *
 * SECMARK `--selctx CTX` (mandatory; char[256], longer contexts are cut to
 * 255 bytes) sets the packet's security mark from an SELinux context.
 * CONNSECMARK `--save` (packet to connection) or `--restore` (connection to
 * packet), exactly one.
 *
 * Kernel: both only in the `mangle` or `security` table, with a known mode. The kernel also resolves the SELinux context (which needs an
 * SELinux policy); nfvm accepts any non-empty context, as the iptables test
 * files expect.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { compatTargetFaces } from '../compat.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

const SECMARK_MODE_SEL = 1;
const SECMARK_SECCTX_MAX = 256;

interface SecmarkData {
  /** SECMARK_MODE_SEL once `--selctx` is given. */
  mode: number;
  /** The security context, at most 255 bytes. */
  secctx: string;
}

function mangleOrSecurity(table: string): string | undefined {
  return table === 'mangle' || table === 'security' ? undefined : "only valid in 'mangle' or 'security' table";
}

export const SECMARK: TargetModule<SecmarkData> = {
  kind: 'target',
  name: 'SECMARK',
  options: [{ name: 'selctx', arg: 1 }],
  init: () => ({ mode: 0, secctx: '' }),
  parse(d, _opt, arg) {
    d.mode = SECMARK_MODE_SEL;
    d.secctx = Buffer.from(arg!, 'utf8').subarray(0, SECMARK_SECCTX_MAX - 1).toString('utf8');
  },
  final(_d, seen) {
    if (!seen.has('selctx')) fail('SECMARK: option "--selctx" must be specified', 'option');
  },
  save: (d) => ` --selctx ${d.secctx}`,
  check(d, ctx) {
    const t = mangleOrSecurity(ctx.table);
    if (t) return `xt_SECMARK: ${t}, not ${ctx.table}`;
    if (d.mode !== SECMARK_MODE_SEL) return `xt_SECMARK: invalid mode: ${d.mode}`;
    if (d.secctx === '') return 'xt_SECMARK: invalid security context';
    return undefined;
  },
  lower: 'needs an LSM to turn the context into a secid (security_secctx_to_secid): a snapshot holds no security policy, and the reference kernel has no xt_SECMARK (iptables: No chain/target/match by that name)',
  reference: 'needs an LSM to turn the context into a secid (security_secctx_to_secid): a snapshot holds no security policy, and the reference kernel has no xt_SECMARK (iptables: No chain/target/match by that name)',
};

const CONNSECMARK_SAVE = 1;
const CONNSECMARK_RESTORE = 2;

interface ConnsecmarkData {
  /** CONNSECMARK_SAVE or CONNSECMARK_RESTORE (0 before parsing). */
  mode: number;
}

export const CONNSECMARK: TargetModule<ConnsecmarkData> = {
  kind: 'target',
  name: 'CONNSECMARK',
  options: [
    { name: 'save', arg: 0 },
    { name: 'restore', arg: 0 },
  ],
  init: () => ({ mode: 0 }),
  parse(d, opt) {
    d.mode = opt === 'save' ? CONNSECMARK_SAVE : CONNSECMARK_RESTORE;
  },
  final(_d, seen) {
    if (seen.has('save') && seen.has('restore')) {
      fail('CONNSECMARK: option "--save" cannot be used together with "--restore".', 'option');
    }
    if (seen.size === 0) fail('CONNSECMARK target: parameter required', 'option');
  },
  save: (d) => (d.mode === CONNSECMARK_SAVE ? ' --save' : d.mode === CONNSECMARK_RESTORE ? ' --restore' : ''),
  check(d, ctx) {
    const t = mangleOrSecurity(ctx.table);
    if (t) return `xt_CONNSECMARK: ${t}, not ${ctx.table}`;
    if (d.mode !== CONNSECMARK_SAVE && d.mode !== CONNSECMARK_RESTORE) return `xt_CONNSECMARK: invalid mode: ${d.mode}`;
    return undefined;
  },
  ...compatTargetFaces(connsecmarkTg),
};

/**
 * connsecmark_tg() (net/netfilter/xt_CONNSECMARK.c, kernel 6.18): --save
 * copies a non-zero skb->secmark to a connection without one, --restore a
 * connection's secmark to a packet without one; XT_CONTINUE. Only SECMARK
 * sets a secmark, and the model (as the reference kernel, which lacks
 * xt_SECMARK) refuses it: every packet and connection keeps secmark 0, so
 * both copies leave them as they are.
 */
function connsecmarkTg(): TargetFn {
  return () => XT_CONTINUE;
}

