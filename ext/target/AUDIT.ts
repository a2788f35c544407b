/**
 * AUDIT target: libxt_AUDIT.c, kernel xt_AUDIT.c: log an audit record of
 * the given type. `--type` is mandatory; names are case-insensitive and
 * saved in lower case. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';

/** struct xt_audit_info: XT_AUDIT_TYPE_ACCEPT/DROP/REJECT. */
interface AuditData {
  type: 'accept' | 'drop' | 'reject';
}

export const AUDIT: TargetModule<AuditData> = {
  kind: 'target',
  name: 'AUDIT',
  options: [{ name: 'type', arg: 1 }],
  init: () => ({ type: 'accept' }),
  parse(d, _opt, arg) {
    const t = arg!.toLowerCase();
    if (t !== 'accept' && t !== 'drop' && t !== 'reject') fail(`Bad action type value "${arg}"`);
    d.type = t;
  },
  final(_d, seen) {
    if (!seen.has('type')) fail('AUDIT: option "--type" must be specified', 'option');
  },
  save: (d) => ` --type ${d.type}`,
  ...compatTargetFaces(auditTg),
};


// --- reference semantics (xt_AUDIT.c, kernel 6.18) ----------------------------------
/**
 * The target's effect lies outside the packet and what a node snapshot
 * holds (an LED trigger, the audit log, a per-label idle timer and its
 * sysfs file): the packet goes on unchanged (XT_CONTINUE) and the effect is
 * recorded while tracing.
 */
function auditTg(d: AuditData): TargetFn {
  const what = `AUDIT_NETFILTER_PKT ${d.type}`;
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'EFFECT', chain: par.chain, rule: par.rule, target: 'AUDIT', what });
    return XT_CONTINUE;
  };
}
