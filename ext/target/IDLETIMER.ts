/**
 * IDLETIMER target: iptables `extensions/libxt_IDLETIMER.c` (revision 1),
 * kernel `net/netfilter/xt_IDLETIMER.c` (`struct idletimer_tg_info_v1`).
 *
 *  - `--timeout SECONDS` (u32, mandatory);
 *  - `--label NAME` (mandatory; char[28], longer labels are cut to 27 bytes);
 *  - `--alarm`: use an alarm timer (XT_IDLETIMER_ALARM) instead of a timer.
 *
 * Saved as ` --timeout N --label NAME[ --alarm]`. Kernel checkentry: a
 * non-zero timeout below INT_MAX/1000 seconds and a non-empty label.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';

const XT_IDLETIMER = 0;
const XT_IDLETIMER_ALARM = 1;
const MAX_IDLETIMER_LABEL_SIZE = 28;

interface IdletimerData {
  /** Timeout in seconds. */
  timeout: number;
  /** The timer's label (its sysfs file name). */
  label: string;
  /** XT_IDLETIMER or XT_IDLETIMER_ALARM. */
  timerType: number;
}

export const IDLETIMER: TargetModule<IdletimerData> = {
  kind: 'target',
  name: 'IDLETIMER',
  options: [
    { name: 'timeout', arg: 1 },
    { name: 'label', arg: 1 },
    { name: 'alarm', arg: 0 },
  ],
  init: () => ({ timeout: 0, label: '', timerType: XT_IDLETIMER }),
  parse(d, opt, arg) {
    if (opt === 'timeout') d.timeout = parseUintOpt(arg!, 0, 0xffffffff, 'IDLETIMER', opt);
    else if (opt === 'label') d.label = Buffer.from(arg!, 'utf8').subarray(0, MAX_IDLETIMER_LABEL_SIZE - 1).toString('utf8');
    else d.timerType = XT_IDLETIMER_ALARM;
  },
  final(_d, seen) {
    for (const o of ['timeout', 'label']) if (!seen.has(o)) fail(`IDLETIMER: option "--${o}" must be specified`, 'option');
  },
  save: (d) => ` --timeout ${d.timeout} --label ${d.label}${d.timerType === XT_IDLETIMER_ALARM ? ' --alarm' : ''}`,
  check(d) {
    if (d.timeout === 0) return 'xt_IDLETIMER: timeout value is zero';
    if (d.timeout >= Math.floor(0x7fffffff / 1000)) return 'xt_IDLETIMER: timeout value is too big';
    if (d.label === '') return 'xt_IDLETIMER: label is empty or not nul-terminated';
    if (d.timerType > XT_IDLETIMER_ALARM) return 'xt_IDLETIMER: invalid value for timer type';
    return undefined;
  },
  ...compatTargetFaces(idletimerTg),
};


// --- reference semantics (xt_IDLETIMER.c, kernel 6.18) ----------------------------------
/**
 * The target's effect lies outside the packet and what a node snapshot
 * holds (an LED trigger, the audit log, a per-label idle timer and its
 * sysfs file): the packet goes on unchanged (XT_CONTINUE) and the effect is
 * recorded while tracing.
 */
function idletimerTg(d: IdletimerData): TargetFn {
  const what = `timer ${d.label} restarted: ${d.timeout}s`;
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'EFFECT', chain: par.chain, rule: par.rule, target: 'IDLETIMER', what });
    return XT_CONTINUE;
  };
}
