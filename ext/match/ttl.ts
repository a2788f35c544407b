/**
 * ttl (IPv4) and hl (IPv6) matches: iptables `extensions/libipt_ttl.c` and
 * `extensions/libip6t_hl.c`, kernel `net/netfilter/xt_hl.c` (no
 * checkentry). Compare the TTL / hop limit with a value: equal, not equal
 * (`! --ttl-eq`), less than, greater than. The options exclude each other;
 * `--ttl`/`--hl` are the old spellings of `--ttl-eq`/`--hl-eq`.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, xtOptName, xtOptUse, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import { NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LT, NFT_CMP_NEQ, NFT_PAYLOAD_NETWORK_HEADER as NH } from '../../vm/layout.js';
import { emitCmp, emitPayload } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';

interface TtlData {
  /** IPT_TTL_EQ / _NE / _LT / _GT (IP6T_HL_* alike). */
  mode: 'eq' | 'ne' | 'lt' | 'gt';
  /** The TTL or hop limit compared with. */
  value: number;
  xflags: number;
}

type HlData = TtlData;

function make(name: 'ttl' | 'hl', family: 'ip' | 'ip6', label: string): MatchModule<TtlData> {
  // O_EQ = 0, O_LT = 1, O_GT = 2, all excluding each other (F_ANY)
  const table: readonly XtOptEntry[] = [
    { name: `${name}-lt`, id: 1, excl: 7 },
    { name: `${name}-gt`, id: 2, excl: 7 },
    { name: `${name}-eq`, id: 0, excl: 7 },
    { name, id: 0, excl: 7 },
  ];
  return {
    kind: 'match',
    name,
    family,
    pure: true,
    // `--ttl` shares the id of `--ttl-eq`, whose entry (and so XTOPT_INVERT) iptables applies
    options: table.map((o) => ({ name: o.name, arg: 1 as const, invert: o.id === 0 })),
    init: () => ({ mode: 'eq', value: 0, xflags: 0 }),
    parse(d, opt, arg, invert) {
      d.xflags = xtOptUse(name, table, d.xflags, opt);
      d.value = parseUintOpt(arg!, 0, 255, name, xtOptName(table, table.find((o) => o.name === opt)!.id));
      d.mode = opt.endsWith('-lt') ? 'lt' : opt.endsWith('-gt') ? 'gt' : invert ? 'ne' : 'eq';
    },
    final(_d, seen) {
      const xflags = xtOptFlags(table, seen);
      if (!xflags) fail(`${label} match: You must specify one of \`--${name}-eq', \`--${name}-lt', \`--${name}-gt${name === 'hl' ? "'" : ''}`, 'option');
      xtOptFcheck(name, table, xflags);
    },
    save: (d) => ` ${d.mode === 'ne' ? `! --${name}-eq` : `--${name}-${d.mode}`} ${d.value}`,
    lower: lowerTtl,
    reference: name === 'ttl' ? ttlMt : hlMt,
  };
}

export const ttl = make('ttl', 'ip', 'TTL');
export const hl = make('hl', 'ip6', 'HL');

// --- lowering (the VM engine) ------------------------------------------------
/** ttl / hl (ipt_ttl, ip6t_hl): 1 byte at network+8 / +7, cmp eq/neq/lt/gt. */
function lowerTtl(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TtlData;
  const op = { eq: NFT_CMP_EQ, ne: NFT_CMP_NEQ, lt: NFT_CMP_LT, gt: NFT_CMP_GT }[d.mode];
  c.withReg(1, (r) => {
    emitPayload(c.b, r, NH, c.v6 ? 7 : 8, 1);
    emitCmp(c.b, op, r, [d.value]);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * ttl match: net/netfilter/xt_hl.c ttl_mt() (kernel 6.18).
 */
function compareHl(mode: TtlData['mode'], v: number, ref: number): boolean {
  switch (mode) {
    case 'eq': return v === ref;
    case 'ne': return v !== ref;
    case 'lt': return v < ref;
    case 'gt': return v > ref;
  }
}

function ttlMt(info: TtlData): MatchFn {
  return (par) => compareHl(info.mode, par.d[par.nh + 8]!, info.value);
}

/**
 * hl match: net/netfilter/xt_hl.c hl_mt6() (kernel 6.18): the IPv6 hop limit.
 */
function hlMt(info: HlData): MatchFn {
  return (par) => compareHl(info.mode, par.d[par.nh + 7]!, info.value);
}
