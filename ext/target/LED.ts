/**
 * LED target: iptables `extensions/libxt_LED.c`, kernel
 * `net/netfilter/xt_LED.c` (`struct xt_led_info`): blink an LED trigger.
 *
 *  - `--led-trigger-id NAME` (mandatory, at most 16 characters): the
 *    trigger is named `netfilter-NAME`;
 *  - `--led-delay MS|inf`: how long the LED stays on (`inf`, any case of a
 *    word starting with it, is -1: forever);
 *  - `--led-always-blink`.
 *
 * Saved as ` --led-trigger-id "NAME"`, then ` --led-delay N` when non-zero
 * (printed as a signed number, so `inf` saves as -1), then
 * ` --led-always-blink`; `"` and `\` in the id are escaped with `\`. The
 * kernel's check for a non-empty id always passes (the id carries the
 * `netfilter-` prefix), so an empty `--led-trigger-id ""` loads.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';

interface LedData {
  /** The trigger id without the `netfilter-` prefix. */
  id: string;
  /** Delay in ms; 0xffffffff (-1) for `inf`. */
  delay: number;
  /** --led-always-blink */
  alwaysBlink: boolean;
}

const ID_MAX = 16;

export const LED: TargetModule<LedData> = {
  kind: 'target',
  name: 'LED',
  options: [
    { name: 'led-trigger-id', arg: 1 },
    { name: 'led-delay', arg: 1 },
    { name: 'led-always-blink', arg: 0 },
  ],
  init: () => ({ id: '', delay: 0, alwaysBlink: false }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'led-trigger-id':
        if (Buffer.byteLength(arg!, 'utf8') > ID_MAX) fail(`Argument must have a maximum length of ${ID_MAX} characters`);
        d.id = arg!;
        return;
      case 'led-delay': {
        if (arg!.slice(0, 3).toLowerCase() === 'inf') {
          d.delay = 0xffffffff;
          return;
        }
        const v = strtoulWhole(arg!, 0n, 0xffffffffn);
        if (v === undefined) fail(`Delay value must be within range 0..${0xffffffff}`);
        d.delay = Number(v);
        return;
      }
      case 'led-always-blink':
        d.alwaysBlink = true;
        return;
    }
  },
  final(_d, seen) {
    if (!seen.has('led-trigger-id')) fail('LED: option "--led-trigger-id" must be specified', 'option');
  },
  save(d) {
    let s = ` --led-trigger-id "${d.id.replace(/["\\]/g, '\\$&')}"`;
    if (d.delay !== 0) s += ` --led-delay ${d.delay | 0}`;
    if (d.alwaysBlink) s += ' --led-always-blink';
    return s;
  },
  ...compatTargetFaces(ledTg),
};


// --- reference semantics (xt_LED.c, kernel 6.18) ----------------------------------
/**
 * The target's effect lies outside the packet and what a node snapshot
 * holds (an LED trigger, the audit log, a per-label idle timer and its
 * sysfs file): the packet goes on unchanged (XT_CONTINUE) and the effect is
 * recorded while tracing.
 */
function ledTg(d: LedData): TargetFn {
  const what = `led_trigger_event netfilter-${d.id}${d.delay ? ` delay ${d.delay === 0xffffffff ? 'inf' : d.delay}` : ''}${d.alwaysBlink ? ' always-blink' : ''}`;
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'EFFECT', chain: par.chain, rule: par.rule, target: 'LED', what });
    return XT_CONTINUE;
  };
}
