/**
 * TTL (IPv4) and HL (IPv6) targets: iptables `extensions/libipt_TTL.c` and
 * `extensions/libip6t_HL.c`, kernel `net/netfilter/xt_HL.c` (`.table` =
 * mangle; `ttl_tg_check`/`hl_tg6_check` refuse an increment or decrement
 * by 0): set, decrement or increment the TTL / hop limit.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { csumReplace2 } from '../dsfield.js';
import { NF_DROP } from '../../core/netfilter.js';
import type { Family } from '../../core/ast.js';

interface TtlTargetData {
  /** IPT_TTL_SET / _INC / _DEC (IP6T_HL_* alike). */
  mode: 'set' | 'inc' | 'dec';
  value: number;
}

function make(name: 'TTL' | 'HL', family: 'ip' | 'ip6'): TargetModule<TtlTargetData> {
  const p = name.toLowerCase();
  const table: readonly XtOptEntry[] = [
    { name: `${p}-set`, id: 0, excl: 7 },
    { name: `${p}-dec`, id: 1, excl: 7 },
    { name: `${p}-inc`, id: 2, excl: 7 },
  ];
  return {
    kind: 'target',
    name,
    family,
    tables: ['mangle'],
    options: table.map((o) => ({ name: o.name, arg: 1 as const })),
    init: () => ({ mode: 'set', value: 0 }),
    parse(d, opt, arg) {
      d.mode = opt.endsWith('-set') ? 'set' : opt.endsWith('-inc') ? 'inc' : 'dec';
      d.value = parseUintOpt(arg!, d.mode === 'set' ? 0 : 1, 255, name, opt);
    },
    final(_d, seen) {
      const xflags = xtOptFlags(table, seen);
      if (!xflags) fail(`${name}: You must specify an action`, 'option');
      xtOptFcheck(name, table, xflags);
    },
    save: (d) => ` --${p}-${d.mode} ${d.value}`,
    check: (d) => (d.mode !== 'set' && d.value === 0 ? `xt_HL: ${d.mode === 'inc' ? 'increment' : 'decrement'} by 0` : undefined),
    ...compatTargetFaces(hlTg),
  };
}

export const TTL = make('TTL', 'ip');
export const HL = make('HL', 'ip6');


// --- reference semantics (xt_HL.c ttl_tg / hl_tg6, kernel 6.18) -------------------------
/** ttl_tg() / hl_tg6(): set, or step up to 255 / down to 0; the IPv4 checksum follows (csum_replace2). */
function hlTg(info: TtlTargetData, family: Family): TargetFn {
  const off = family === 'ip' ? 8 : 7;
  return (par) => {
    if (par.end - par.nh < (family === 'ip' ? 20 : 40)) return NF_DROP;
    const d = par.d;
    const old = d[par.nh + off]!;
    const v = info.mode === 'set' ? info.value : info.mode === 'inc' ? Math.min(255, old + info.value) : Math.max(0, old - info.value);
    if (v !== old) {
      if (family === 'ip') csumReplace2(d, par.nh + 10, old << 8, v << 8);
      d[par.nh + off] = v;
    }
    return XT_CONTINUE;
  };
}
