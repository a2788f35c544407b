/**
 * multiport match, revision 1: iptables `extensions/libxt_multiport.c`
 * (`multiport_parse_v1`, `multiport_save_v1`), kernel
 * `net/netfilter/xt_multiport.c` (`multiport_mt_check`).
 *
 * One of `--sports`/`--source-ports`, `--dports`/`--destination-ports` or
 * `--ports` takes a comma list of ports and `lo:hi` ranges; the kernel
 * structure holds at most 15 port slots, a range taking two. iptables
 * checks the rule's protocol when it parses the option (so `-p` must come
 * first); the kernel checks it again at load time.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, xtOptUse, type XtOptEntry } from '../xtopt.js';
import { parsePort } from '../protocols.js';
import { NFT_PAYLOAD_TRANSPORT_HEADER as TH } from '../../vm/layout.js';
import { emitLookup, emitPayload, emitXtL4, emitXtMatchPorts } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { be, type LowerCtx } from '../lower.js';
import { be16, headerPointer, type MatchFn } from '../xt.js';

/** XT_MULTI_PORTS */
const MULTI_PORTS = 15;

interface MultiportData {
  /** XT_MULTIPORT_SOURCE / _DESTINATION / _EITHER (`--ports`: source or destination). */
  flags: 'source' | 'destination' | 'either';
  /** The ports and inclusive ranges, in order (a single port has lo === hi and is not a range). */
  ports: Array<{ lo: number; hi: number; range: boolean }>;
  /** The kernel's `count`: port slots used, a range counting two. */
  count: number;
  invert: boolean;
  xflags: number;
}

const O_SRC = 0;
const O_DST = 1;
const O_SD = 2;
const F_ANY = 7;

const TABLE: readonly XtOptEntry[] = [
  { name: 'source-ports', id: O_SRC, excl: F_ANY },
  { name: 'sports', id: O_SRC, excl: F_ANY },
  { name: 'destination-ports', id: O_DST, excl: F_ANY },
  { name: 'dports', id: O_DST, excl: F_ANY },
  { name: 'ports', id: O_SD, excl: F_ANY },
];

/** Protocols with ports the kernel accepts (TCP, UDP, UDPLITE, SCTP, DCCP). */
const PORT_PROTOS: ReadonlySet<number> = new Set([6, 17, 136, 132, 33]);

/** `parse_multi_ports_v1()` */
function parsePorts(s: string): { ports: MultiportData['ports']; count: number } {
  const parts = s.split(',');
  const ports: MultiportData['ports'] = [];
  let i = 0;
  let k = 0;
  for (; k < parts.length && i < MULTI_PORTS; k++, i++) {
    const cp = parts[k]!;
    const colon = cp.indexOf(':');
    if (colon >= 0 && i === MULTI_PORTS - 1) fail('too many ports specified');
    const lo = parsePort(colon >= 0 ? cp.slice(0, colon) : cp);
    if (colon >= 0) {
      const hi = parsePort(cp.slice(colon + 1));
      i++;
      if (lo >= hi) fail('invalid portrange specified');
      ports.push({ lo, hi, range: true });
    } else {
      ports.push({ lo, hi: lo, range: false });
    }
  }
  if (k < parts.length) fail('too many ports specified');
  return { ports, count: i };
}

export const multiport: MatchModule<MultiportData> = {
  kind: 'match',
  name: 'multiport',
  options: TABLE.map((o) => ({ name: o.name, arg: 1 as const, invert: true })),
  init: () => ({ flags: 'source', ports: [], count: 0, invert: false, xflags: 0 }),
  parse(d, opt, arg, invert, ctx) {
    d.xflags = xtOptUse('multiport', TABLE, d.xflags, opt);
    // check_proto(): the protocol as given so far
    if (ctx.rule.invProto) fail('multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP');
    if (!PORT_PROTOS.has(ctx.rule.proto)) {
      if (ctx.rule.proto === 0) fail("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
      fail('multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP');
    }
    const r = parsePorts(arg!);
    d.ports = r.ports;
    d.count = r.count;
    d.flags = opt === 'source-ports' || opt === 'sports' ? 'source' : opt === 'ports' ? 'either' : 'destination';
    if (invert) d.invert = true;
  },
  final(d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (xflags === 0) fail('no ports specified', 'option');
    xtOptFcheck('multiport', TABLE, xflags);
  },
  save(d) {
    const opt = d.flags === 'source' ? 'sports' : d.flags === 'destination' ? 'dports' : 'ports';
    return `${d.invert ? ' !' : ''} --${opt} ${d.ports.map((p) => (p.range ? `${p.lo}:${p.hi}` : String(p.lo))).join(',')}`;
  },
  check(d, ctx) {
    if (!PORT_PROTOS.has(ctx.rule.proto) || ctx.rule.invProto) {
      return 'xt_multiport: the rule needs -p tcp, udp, udplite, sctp or dccp (not inverted)';
    }
    if (d.count > MULTI_PORTS) return `xt_multiport: more than ${MULTI_PORTS} ports`;
    return undefined;
  },
  lower: lowerMultiport,
  reference: multiportMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * multiport (xt_multiport.c ports_match_v1): the port is in the list (ports
 * and ranges) XOR invert. Lowered as nft writes `th dport { 22, 80-88 }`:
 * a 2-byte load and a lookup in an anonymous interval set (inverted:
 * NFT_LOOKUP_F_INV). `--ports` (source OR destination) has no nft
 * expression: both ports are loaded and an `xt_match ports` tests either.
 */
function lowerMultiport(c: LowerCtx, m: MatchNode): void {
  const d = m.data as MultiportData;
  // iptables-nft 1.8.9 keeps multiport an xt match (compat): x_tables semantics in both backends
  emitXtL4(c.b, 4);
  const set = c.anonSet(2, true);
  for (const p of d.ports) set.addRange(be(p.lo, 2), be(p.hi, 2));
  if (d.flags === 'either') {
    // source OR destination port: both loaded, one xt_match tests either against the set
    c.withReg(2, (r1) =>
      c.withReg(2, (r2) => {
        emitPayload(c.b, r1, TH, 0, 2);
        emitPayload(c.b, r2, TH, 2, 2);
        emitXtMatchPorts(c.b, r1, r2, set.name, d.invert);
      }),
    );
    return;
  }
  c.withReg(2, (r) => {
    emitPayload(c.b, r, TH, d.flags === 'source' ? 0 : 2, 2);
    emitLookup(c.b, r, set.name, d.invert);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * multiport match: net/netfilter/xt_multiport.c multiport_mt(), ports_match_v1() (kernel 6.18).
 */
function portsMatch(info: MultiportData, src: number, dst: number): boolean {
  // The first listed port or range that contains the port decides.
  for (const { lo, hi } of info.ports) {
    const inSrc = src >= lo && src <= hi;
    const inDst = dst >= lo && dst <= hi;
    if (info.flags === 'source' ? inSrc : info.flags === 'destination' ? inDst : inSrc || inDst) return !info.invert;
  }
  return info.invert;
}

function multiportMt(info: MultiportData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const pp = headerPointer(par, par.thoff, 4);
    if (pp < 0) {
      par.hotdrop = true;
      return false;
    }
    return portsMatch(info, be16(par.d, pp), be16(par.d, pp + 2));
  };
}
