/**
 * LOG target: iptables `extensions/libipt_LOG.c` / `libip6t_LOG.c` (the
 * same options for both families; `libxt_LOG.c` in newer trees); kernel
 * `net/netfilter/xt_LOG.c` (`struct xt_log_info`).
 *
 *  - `--log-level` (XTTYPE_SYSLOGLEVEL): a number 0..7 in any C base, or
 *    one of the syslog names (case-sensitive); saved as the number, and not
 *    at all when it is the default 4 (warning);
 *  - `--log-prefix` (XTTYPE_STRING, min 1): copied into `prefix[30]`, so
 *    longer text is silently cut to 29 bytes; newlines are refused;
 *  - flag options set `logflags` bits and are saved in a fixed order.
 *
 * Kernel checkentry: level < 8 and a NUL-terminated prefix (always true for
 * what iptables builds); no table or hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { saveString } from '../save.js';
import { strtoulWhole } from '../numbers.js';
import { emitLog } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

interface LogData {
  /** Syslog level 0..7 (default 4). */
  level: number;
  /** The prefix as stored by the kernel (at most 29 bytes, '' for none). */
  prefix: string;
  /** XT_LOG_* bits: 0x01 TCPSEQ, 0x02 TCPOPT, 0x04 IPOPT, 0x08 UID, 0x20 MACDECODE. */
  logflags: number;
}

const XT_LOG = {
  TCPSEQ: 0x01,
  TCPOPT: 0x02,
  IPOPT: 0x04,
  UID: 0x08,
  NFLOG: 0x10,
  MACDECODE: 0x20,
} as const;

/** sizeof(xt_log_info.prefix) */
const LOG_PREFIX_SIZE = 30;
const LOG_DEFAULT_LEVEL = 4;

/** libxtables xtopt_sysloglevel[] */
const SYSLOG_LEVELS: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  alert: 1,
  crit: 2,
  debug: 7,
  emerg: 0,
  error: 3,
  info: 6,
  notice: 5,
  panic: 0,
  warning: 4,
});

/** XTTYPE_SYSLOGLEVEL (xtopt_parse_sysloglevel). */
function parseSyslogLevel(s: string): number {
  const n = strtoulWhole(s, 0n, 7n);
  if (n !== undefined) return Number(n);
  const v = SYSLOG_LEVELS[s];
  if (v === undefined) fail(`log level "${s}" unknown`);
  return v;
}

/**
 * XTTYPE_STRING with XTOPT_PUT into a `size`-byte buffer: at least `min`
 * characters, silently cut to size-1 bytes.
 */
export function putString(s: string, min: number, size: number): string {
  const b = Buffer.from(s, 'utf8');
  if (min !== 0 && b.length < min) fail(`Argument must have a minimum length of ${min} characters`);
  if (b.length <= size - 1) return s;
  return b.subarray(0, size - 1).toString('utf8');
}

const FLAG_OPTS: ReadonlyArray<readonly [string, number]> = [
  ['log-tcp-sequence', XT_LOG.TCPSEQ],
  ['log-tcp-options', XT_LOG.TCPOPT],
  ['log-ip-options', XT_LOG.IPOPT],
  ['log-uid', XT_LOG.UID],
  ['log-macdecode', XT_LOG.MACDECODE],
];

export const LOG: TargetModule<LogData> = {
  kind: 'target',
  name: 'LOG',
  options: [
    { name: 'log-level', arg: 1 },
    { name: 'log-prefix', arg: 1 },
    ...FLAG_OPTS.map(([name]) => ({ name, arg: 0 as const })),
  ],
  init: () => ({ level: LOG_DEFAULT_LEVEL, prefix: '', logflags: 0 }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'log-level':
        d.level = parseSyslogLevel(arg!);
        return;
      case 'log-prefix':
        d.prefix = putString(arg!, 1, LOG_PREFIX_SIZE);
        if (arg!.includes('\n')) fail('Newlines not allowed in --log-prefix');
        return;
      default: {
        const f = FLAG_OPTS.find(([n]) => n === opt);
        if (f) d.logflags |= f[1];
      }
    }
  },
  save(d) {
    let s = '';
    if (d.prefix !== '') s += ' --log-prefix ' + saveString(d.prefix);
    if (d.level !== LOG_DEFAULT_LEVEL) s += ` --log-level ${d.level}`;
    for (const [name, bit] of FLAG_OPTS) if (d.logflags & bit) s += ` --${name}`;
    return s;
  },
  check(d) {
    if (d.level >= 8) return `xt_LOG: level ${d.level} >= 8`;
    return undefined;
  },
  lower: (c, t) => lowerLog(c, t.data),
  reference: logTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/** LOG → `log` (level, flags). */
function lowerLog(c: LowerCtx, d: LogData): void {
  emitLog(c.b, { prefix: d.prefix || undefined, level: d.level, flags: d.logflags });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * LOG target: net/netfilter/xt_LOG.c log_tg() (kernel 6.18): logs and
 * continues. The reference records the event (level, prefix, flags); the
 * syslog line itself is not produced here.
 */
function logTg(info: LogData): TargetFn {
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'LOG', chain: par.chain, rule: par.rule, level: info.level, prefix: info.prefix, logflags: info.logflags });
    return XT_CONTINUE;
  };
}
