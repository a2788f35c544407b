/**
 * cpu match: iptables `extensions/libxt_cpu.c`, kernel
 * `net/netfilter/xt_cpu.c` (checkentry only refuses unknown invert bits):
 * the CPU processing the packet.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { M_CPU } from '../../vm/layout.js';

interface CpuData {
  cpu: number;
  invert: boolean;
}

export const cpu: MatchModule<CpuData> = {
  kind: 'match',
  name: 'cpu',
  options: [{ name: 'cpu', arg: 1, invert: true }],
  init: () => ({ cpu: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    d.cpu = parseUintOpt(arg!, 0, 0xffffffff, 'cpu', 'cpu');
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('cpu')) fail('cpu: option "--cpu" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --cpu ${d.cpu}`,
  ...compatMatchFaces(cpuMt),
};


// --- reference semantics (xt_cpu.c cpu_mt, kernel 6.18) ---------------------------------
/** cpu_mt(): the CPU processing the packet (smp_processor_id(), the packet's M_CPU: `--cpu` of trace and replay, default 0) equals --cpu, XOR the inversion. */
function cpuMt(info: CpuData): MatchFn {
  return (par) => (par.meta[M_CPU] === info.cpu) !== info.invert;
}
