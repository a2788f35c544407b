/**
 * AUDIT target: libxt_AUDIT.c, kernel xt_AUDIT.c: log an audit record of
 * the given type. `--type` is mandatory; names are case-insensitive and
 * saved in lower case. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';

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
  lower: 'needs the audit log the record goes to (audit_log_start)',
  reference: 'needs the audit log the record goes to (audit_log_start)',
};

