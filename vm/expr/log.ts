/**
 * log (net/netfilter/nft_log.c): never changes the verdict. The model records
 * a TRACE_LOG event (chain, rule, word offset of this record) into the VM's
 * trace ring; printers read prefix/level/group back from the record.
 *
 * Record: [op, prefix, group, snaplen, qthreshold, level, flags]
 *   +1 prefix      index into Program.strings, -1 = none
 *   +2 group       nflog group 0..65535, -1 = syslog logger
 *   +3 snaplen     (group only)
 *   +4 qthreshold  (group only)
 *   +5 level       syslog level 0..8, -1 = not given (kernel default 4)
 *   +6 flags       NF_LOG_* bits, -1 = not given
 */
import { Op } from '../opcodes.js';
import { TRACE_LOG } from '../layout.js';
import { traceRecord, type Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { EvalCtx } from './common.js';

/** Op.LOG record words. */
export const enum Log {
  PREFIX = 1,
  GROUP = 2,
  SNAPLEN = 3,
  QTHRESHOLD = 4,
  LEVEL = 5,
  FLAGS = 6,
  SIZE = 7,
}

interface LogOptions {
  prefix?: string;
  group?: number;
  snaplen?: number;
  qthreshold?: number;
  level?: number;
  flags?: number;
}

export function emitLog(b: Emitter, o: LogOptions = {}): void {
  b.emit([Op.LOG, o.prefix === undefined ? -1 : b.str(o.prefix), o.group ?? -1, o.snaplen ?? 0, o.qthreshold ?? 0, o.level ?? -1, o.flags ?? -1]);
}

export function validateLog(prog: Program, code: Int32Array, pc: number): string | null {
  const prefix = code[pc + Log.PREFIX]!;
  const group = code[pc + Log.GROUP]!;
  const level = code[pc + Log.LEVEL]!;
  const flags = code[pc + Log.FLAGS]!;
  if (prefix < -1 || prefix >= prog.strings.length) return `log: prefix string ${prefix} out of range`;
  if (group < -1 || group > 0xffff) return `log: group ${group} out of range`;
  if (code[pc + Log.SNAPLEN]! < 0 || code[pc + Log.QTHRESHOLD]! < 0 || code[pc + Log.QTHRESHOLD]! > 0xffff) return 'log: snaplen/qthreshold out of range';
  if (level < -1 || level > 8) return `log: level ${level} out of range (-EINVAL)`;
  if (flags < -1 || flags > 0xff) return `log: flags ${flags} out of range (-EINVAL)`;
  if (group !== -1 && (level !== -1 || flags !== -1)) return 'log: group with level or flags (-EINVAL)';
  return null;
}

export function disasmLog(prog: Program, code: Int32Array, pc: number): string {
  let s = '';
  const prefix = code[pc + Log.PREFIX]!;
  if (prefix >= 0) s += `prefix ${prog.strings[prefix]} `;
  if (code[pc + Log.GROUP] !== -1) {
    s += `group ${code[pc + Log.GROUP]} snaplen ${code[pc + Log.SNAPLEN]} qthreshold ${code[pc + Log.QTHRESHOLD]} `;
  } else {
    if (code[pc + Log.LEVEL] !== -1) s += `level ${code[pc + Log.LEVEL]} `;
    if (code[pc + Log.FLAGS] !== -1) s += `flags ${code[pc + Log.FLAGS]} `;
  }
  return s;
}

export function evalLog(ctx: EvalCtx, pc: number): void {
  traceRecord(ctx.env, TRACE_LOG, ctx.chain, ctx.rule, 0, pc);
}
