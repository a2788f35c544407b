/**
 * conntrack and state matches: libxt_conntrack.c (conntrack revision 3,
 * `state` as its alias with XT_CONNTRACK_STATE_ALIAS), kernel xt_conntrack.c.
 *
 * `-m state --state X` is loaded by 1.8.x as conntrack revision 3 with the
 * alias flag; iptables-save prints it back as `-m state --state X`.
 *
 * Kernel: no table/hook restriction (checkentry only takes a conntrack
 * reference).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseProtocol } from '../protocols.js';
import { strtoumax } from '../numbers.js';
import { formatHostMask, hostMaskBytes, parseHostMask, parsePortRangeX, type HostMask } from '../hostmask.js';
import {
  NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_RANGE_EQ, NFT_RANGE_NEQ, M_CT_DIR, M_CT_ID, M_CT_STATE, M_CT_STATUS,
} from '../../vm/layout.js';
import {
  NFT_CT_DIRECTION, NFT_CT_DST_IP, NFT_CT_DST_IP6, NFT_CT_PROTOCOL, NFT_CT_PROTO_DST, NFT_CT_PROTO_SRC, NFT_CT_SRC_IP,
  NFT_CT_SRC_IP6, NFT_CT_STATE, NFT_CT_STATUS, NFT_CT_XT_EXPIRES, NFT_CT_XT_STATE, emitBitwise, emitByteorder, emitCmp,
  emitCtGet, emitRange, emitXtMatchCtGuard, setXtMatchCtGuard,
} from '../../vm/expr/index.js';
import { CT_T_DST, CT_T_PORTS, CT_T_PROTO, CT_T_SRC, NO_CT_TABLE, type NfCtTable } from '../../vm/ct-env.js';
import type { Family, MatchNode } from '../../core/ast.js';
import { be, le32, type LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';
import {
  NF_CT_STATE_INVALID_BIT, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_RELATED_BIT, NF_CT_STATE_NEW_BIT,
  NF_CT_STATE_UNTRACKED_BIT, IPS_SRC_NAT, IPS_DST_NAT, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY,
  IPS_ASSURED, IPS_CONFIRMED, IPS_EXPECTED, IPS_SEEN_REPLY,
} from '../../core/netfilter.js';

/**
 * XT_CONNTRACK_STATE_* bits of `state_mask` (uapi xt_conntrack.h, with
 * IP_CT_NUMBER = 5): the ctinfo bits 1 << (ctinfo % 3 + 1), then SNAT, DNAT
 * and UNTRACKED at 1 << (IP_CT_NUMBER + 1..3).
 */
const CT_STATE = {
  INVALID: NF_CT_STATE_INVALID_BIT,
  ESTABLISHED: NF_CT_STATE_ESTABLISHED_BIT,
  RELATED: NF_CT_STATE_RELATED_BIT,
  NEW: NF_CT_STATE_NEW_BIT,
  SNAT: 1 << 6,
  DNAT: 1 << 7,
  UNTRACKED: 1 << 8,
} as const;


/** struct xt_conntrack_mtinfo3, decoded. Each optional field is present when its option was given. */
interface ConntrackData {
  /** `-m state` (XT_CONNTRACK_STATE_ALIAS): saved as `-m state --state`. */
  stateAlias: boolean;
  /** --ctstate: CT_STATE bits. */
  state?: { mask: number; invert: boolean };
  /** --ctproto: layer-4 protocol number of the original tuple (never 0). */
  proto?: { proto: number; invert: boolean };
  origsrc?: HostMask & { invert: boolean };
  origdst?: HostMask & { invert: boolean };
  replsrc?: HostMask & { invert: boolean };
  repldst?: HostMask & { invert: boolean };
  /** Port ranges, inclusive, host order. */
  origsrcport?: { lo: number; hi: number; invert: boolean };
  origdstport?: { lo: number; hi: number; invert: boolean };
  replsrcport?: { lo: number; hi: number; invert: boolean };
  repldstport?: { lo: number; hi: number; invert: boolean };
  /** --ctstatus: CT_STATUS bits (0 = NONE). */
  status?: { mask: number; invert: boolean };
  /** --ctexpire: remaining lifetime range in seconds (min may exceed max: never matches). */
  expire?: { min: number; max: number; invert: boolean };
  /** --ctdir: packet direction. */
  dir?: 'ORIGINAL' | 'REPLY';
}

const STATE_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['INVALID', CT_STATE.INVALID],
  ['NEW', CT_STATE.NEW],
  ['ESTABLISHED', CT_STATE.ESTABLISHED],
  ['RELATED', CT_STATE.RELATED],
  ['UNTRACKED', CT_STATE.UNTRACKED],
  ['SNAT', CT_STATE.SNAT],
  ['DNAT', CT_STATE.DNAT],
];
/** Print order of print_state(). */
const STATE_PRINT: ReadonlyArray<readonly [string, number]> = [
  ['INVALID', CT_STATE.INVALID],
  ['NEW', CT_STATE.NEW],
  ['RELATED', CT_STATE.RELATED],
  ['ESTABLISHED', CT_STATE.ESTABLISHED],
  ['UNTRACKED', CT_STATE.UNTRACKED],
  ['SNAT', CT_STATE.SNAT],
  ['DNAT', CT_STATE.DNAT],
];
const STATUS_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['NONE', 0],
  ['EXPECTED', IPS_EXPECTED],
  ['SEEN_REPLY', IPS_SEEN_REPLY],
  ['ASSURED', IPS_ASSURED],
  ['CONFIRMED', IPS_CONFIRMED],
];

/** `strncasecmp(word, NAME, len) == 0`: the word is a case-insensitive prefix of a name. */
function lookupPrefix(word: string, table: ReadonlyArray<readonly [string, number]>): number | undefined {
  const w = word.toUpperCase();
  for (const [n, v] of table) if (n.startsWith(w)) return v;
  return undefined;
}

/**
 * A comma list as conntrack_ps_states() / conntrack_ps_statuses() parse it:
 * every element a non-empty prefix of a name; the error quotes the rest of
 * the list from the bad element on.
 */
function parseList(arg: string, table: ReadonlyArray<readonly [string, number]>, what: string, emptyLast?: string): number {
  let mask = 0;
  let rest = arg;
  for (;;) {
    const comma = rest.indexOf(',');
    if (comma < 0) break;
    const v = comma === 0 ? undefined : lookupPrefix(rest.slice(0, comma), table);
    if (v === undefined) fail(`Bad ${what} "${rest}"`);
    mask |= v;
    rest = rest.slice(comma + 1);
  }
  if (rest === '' && emptyLast) fail(emptyLast);
  const v = rest === '' ? undefined : lookupPrefix(rest, table);
  if (v === undefined) fail(`Bad ${what} "${rest}"`);
  return mask | v;
}

/** state_parse_states(): like --ctstate but without SNAT/DNAT. */
function parseStateList(arg: string): number {
  return parseList(arg, STATE_NAMES.slice(0, 5), 'state', '"--state" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED');
}

function printStates(mask: number): string {
  return STATE_PRINT.filter(([, v]) => mask & v).map(([n]) => n).join(',');
}

function printStatus(mask: number): string {
  const names = STATUS_NAMES.filter(([, v]) => v !== 0 && mask & v).map(([n]) => n);
  return names.length ? names.join(',') : 'NONE';
}

/** XTTYPE_UINT32RC: `a`, `a:b`, `:b`, `a:`; at most two components. */
function parseU32Range(arg: string, ext: string, opt: string): [number, number] {
  const vals: number[] = [];
  let pos = 0;
  for (;;) {
    if (vals.length === 2) fail(`${ext}: Too many components for option "--${opt}" (max: 2)`);
    let end = pos;
    let value: number;
    if (pos >= arg.length || arg[pos] === ':') {
      value = vals.length === 1 ? 0xffffffff : 0;
    } else {
      const neg = /^\s*-/.test(arg.slice(pos));
      const r = strtoumax(arg, 0, pos);
      if (neg || r.end === pos || r.overflow || r.value > 0xffffffffn) {
        fail(`${ext}: bad value for option "--${opt}" near "${arg.slice(pos)}", or out of range (0-4294967295).`);
      }
      end = r.end;
      if (end < arg.length && arg[end] !== ':') fail(`${ext}: Argument to "--${opt}" has unexpected characters near "${arg.slice(end)}".`);
      value = Number(r.value);
    }
    vals.push(value);
    if (end >= arg.length) break;
    pos = end + 1;
  }
  return [vals[0]!, vals.length >= 2 ? vals[1]! : vals[0]!];
}

/** XTTYPE_PORTRC; a reversed range is refused (iptables 1.8.13; 1.8.9 loaded it). */
function parsePortRC(arg: string, ext: string, opt: string): [number, number] {
  const [lo, hi] = parsePortRangeX(arg, ext, opt);
  if (lo > hi) fail(`${ext}: invalid range for option "--${opt}": ${lo} is greater than ${hi}`);
  return [lo, hi];
}

const ADDR_OPTS = ['ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst'] as const;
const PORT_OPTS = ['ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport'] as const;

function saveConntrack(d: ConntrackData, family: 'ip' | 'ip6'): string {
  const inv = (b: boolean) => (b ? ' !' : '');
  let s = '';
  if (d.state) s += `${inv(d.state.invert)} --${d.stateAlias ? 'state' : 'ctstate'} ${printStates(d.state.mask)}`;
  if (d.proto) s += `${inv(d.proto.invert)} --ctproto ${d.proto.proto}`;
  for (const o of ADDR_OPTS) {
    const a = d[o.slice(2) as 'origsrc'];
    if (a) s += `${inv(a.invert)} --${o} ${formatHostMask(family, a)}`;
  }
  for (const o of PORT_OPTS) {
    const p = d[o.slice(2) as 'origsrcport'];
    if (p) s += `${inv(p.invert)} --${o} ${p.hi === 0 || p.lo === p.hi ? p.lo : `${p.lo}:${p.hi}`}`;
  }
  if (d.status) s += `${inv(d.status.invert)} --ctstatus ${printStatus(d.status.mask)}`;
  if (d.expire) s += `${inv(d.expire.invert)} --ctexpire ${d.expire.min === d.expire.max ? d.expire.min : `${d.expire.min}:${d.expire.max}`}`;
  if (d.dir) s += ` --ctdir ${d.dir}`;
  return s;
}

export const conntrack: MatchModule<ConntrackData> = {
  kind: 'match',
  name: 'conntrack',
  pure: true,
  options: [
    { name: 'ctstate', arg: 1, invert: true },
    { name: 'ctproto', arg: 1, invert: true },
    { name: 'ctorigsrc', arg: 1, invert: true },
    { name: 'ctorigdst', arg: 1, invert: true },
    { name: 'ctreplsrc', arg: 1, invert: true },
    { name: 'ctrepldst', arg: 1, invert: true },
    { name: 'ctstatus', arg: 1, invert: true },
    { name: 'ctexpire', arg: 1, invert: true },
    { name: 'ctorigsrcport', arg: 1, invert: true },
    { name: 'ctorigdstport', arg: 1, invert: true },
    { name: 'ctreplsrcport', arg: 1, invert: true },
    { name: 'ctrepldstport', arg: 1, invert: true },
    { name: 'ctdir', arg: 1 },
  ],
  init: () => ({ stateAlias: false }),
  parse(d, opt, arg, invert, ctx) {
    const a = arg!;
    switch (opt) {
      case 'ctstate':
        d.state = { mask: parseList(a, STATE_NAMES, 'ctstate'), invert };
        return;
      case 'ctproto': {
        const p = parseProtocol(a);
        // iptables >= 1.8.11: protocol 0 is refused either way
        if (p === 0) fail(invert ? 'conntrack: condition would always match protocol' : 'conntrack: rule would never match protocol');
        d.proto = { proto: p, invert };
        return;
      }
      case 'ctorigsrc':
      case 'ctorigdst':
      case 'ctreplsrc':
      case 'ctrepldst':
        d[opt.slice(2) as 'origsrc'] = { ...parseHostMask(ctx.family, a, 'conntrack', opt), invert };
        return;
      case 'ctstatus':
        d.status = { mask: parseList(a, STATUS_NAMES, 'ctstatus'), invert };
        return;
      case 'ctexpire': {
        const [min, max] = parseU32Range(a, 'conntrack', opt);
        // iptables 1.8.13 refuses a reversed range (1.8.9 loaded it)
        if (min > max) fail(`conntrack: invalid range for option "--${opt}": ${min} is greater than ${max}`);
        d.expire = { min, max, invert };
        return;
      }
      case 'ctorigsrcport':
      case 'ctorigdstport':
      case 'ctreplsrcport':
      case 'ctrepldstport': {
        const [lo, hi] = parsePortRC(a, 'conntrack', opt);
        d[opt.slice(2) as 'origsrcport'] = { lo, hi, invert };
        return;
      }
      case 'ctdir': {
        const u = a.toUpperCase();
        if (u !== 'ORIGINAL' && u !== 'REPLY') fail(`conntrack: Bad value for "--ctdir" option: "${a}"`);
        d.dir = u;
        return;
      }
    }
  },
  final(_d, seen) {
    if (seen.size === 0) fail('conntrack: At least one option is required', 'option');
  },
  save: (d, ctx) => saveConntrack(d, ctx.family),
  lower: lowerConntrack,
  reference: conntrackMt,
};

/** `-m state`: the conntrack match with only `--state` (mandatory), saved as `-m state`. */
export const state: MatchModule<ConntrackData> = {
  kind: 'match',
  name: 'state',
  pure: true,
  options: [{ name: 'state', arg: 1, invert: true }],
  init: () => ({ stateAlias: true }),
  parse(d, _opt, arg, invert) {
    d.state = { mask: parseStateList(arg!), invert };
  },
  final(_d, seen) {
    if (!seen.has('state')) fail('state: option "--state" must be specified', 'option');
  },
  save: (d, ctx) => saveConntrack(d, ctx.family),
  lower: lowerConntrack,
  reference: conntrackMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * conntrack / state (xt_conntrack v3) on the packet's conntrack, in
 * conntrack_mt()'s order:
 *  - --ctstate: `ct load state`, & the state bits (x_tables UNTRACKED 1<<8
 *    is nft's 1<<6), cmp neq 0 (inverted: eq 0). `state` is defined without
 *    a conntrack (INVALID, UNTRACKED). The SNAT/DNAT pseudo-states load
 *    x_tables' state word (ct key xt_state, vm/expr/ct.ts);
 *  - without a conntrack the match ends there: it holds when --ctstate was
 *    given (and passed), else not. With --ctstate and other options an
 *    `xt_match ctguard` skips the other tests for such a packet; without
 *    --ctstate their ct loads BREAK;
 *  - --ctdir: `ct load direction`, cmp eq 0|1;
 *  - --ctorigsrc/dst, --ctreplsrc/dst: `ct load src_ip/dst_ip[6]` of the
 *    direction, & mask, cmp eq|neq;
 *  - --ctproto: `ct load protocol`, cmp eq|neq; the port options `ct load
 *    proto_src/proto_dst` of the direction, cmp or range eq|neq;
 *  - --ctstatus: `ct load status` & bits, cmp neq|eq 0;
 *  - --ctexpire: `ct load xt_expires` (seconds), hton, range eq|neq.
 */
function bitsTest(c: LowerCtx, key: number, mask: number, invert: boolean): void {
  c.withReg(4, (r) => {
    emitCtGet(c.b, r, key);
    emitBitwise(c.b, r, r, le32(mask), [0, 0, 0, 0]);
    emitCmp(c.b, invert ? NFT_CMP_EQ : NFT_CMP_NEQ, r, [0, 0, 0, 0]);
  });
}

function addrTest(c: LowerCtx, a: HostMask & { invert: boolean }, dir: number, src: boolean): void {
  const v6 = c.v6;
  const len = v6 ? 16 : 4;
  const key = v6 ? (src ? NFT_CT_SRC_IP6 : NFT_CT_DST_IP6) : src ? NFT_CT_SRC_IP : NFT_CT_DST_IP;
  c.withReg(len, (r) => {
    emitCtGet(c.b, r, key, dir);
    const mask = [...a.mask.subarray(0, len)];
    const addr = mask.map((m, i) => a.addr[i]! & m);
    if (mask.some((m) => m !== 0xff)) emitBitwise(c.b, r, r, mask, new Array<number>(len).fill(0));
    emitCmp(c.b, a.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, addr);
  });
}

function portTest(c: LowerCtx, p: { lo: number; hi: number; invert: boolean }, dir: number, src: boolean): void {
  c.withReg(2, (r) => {
    emitCtGet(c.b, r, src ? NFT_CT_PROTO_SRC : NFT_CT_PROTO_DST, dir);
    const hi = Math.max(p.lo, p.hi);
    if (p.lo === hi) emitCmp(c.b, p.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, be(p.lo, 2));
    else emitRange(c.b, p.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(p.lo, 2), be(hi, 2));
  });
}

function lowerConntrack(c: LowerCtx, m: MatchNode): void {
  const d = m.data as ConntrackData;
  if (d.state) {
    const s = d.state.mask;
    if (s & (CT_STATE.SNAT | CT_STATE.DNAT)) {
      // the virtual NAT states come from the status bits: test x_tables' state word
      bitsTest(c, NFT_CT_XT_STATE, s, d.state.invert);
    } else {
      const bits = (s & 0x0f) | (s & CT_STATE.UNTRACKED ? NF_CT_STATE_UNTRACKED_BIT : 0);
      bitsTest(c, NFT_CT_STATE, bits, d.state.invert);
    }
  }
  const rest = d.dir || d.origsrc || d.origdst || d.replsrc || d.repldst || d.proto || d.origsrcport || d.origdstport ||
    d.replsrcport || d.repldstport || d.status || d.expire;
  if (!rest) return;
  const guard = d.state ? emitXtMatchCtGuard(c.b) : -1;
  if (d.dir) {
    c.withReg(1, (r) => {
      emitCtGet(c.b, r, NFT_CT_DIRECTION);
      emitCmp(c.b, NFT_CMP_EQ, r, [d.dir === 'ORIGINAL' ? 0 : 1]);
    });
  }
  if (d.origsrc) addrTest(c, d.origsrc, IP_CT_DIR_ORIGINAL, true);
  if (d.origdst) addrTest(c, d.origdst, IP_CT_DIR_ORIGINAL, false);
  if (d.replsrc) addrTest(c, d.replsrc, IP_CT_DIR_REPLY, true);
  if (d.repldst) addrTest(c, d.repldst, IP_CT_DIR_REPLY, false);
  const proto = d.proto;
  if (proto) {
    c.withReg(1, (r) => {
      emitCtGet(c.b, r, NFT_CT_PROTOCOL);
      emitCmp(c.b, proto.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, [proto.proto]);
    });
  }
  if (d.origsrcport) portTest(c, d.origsrcport, IP_CT_DIR_ORIGINAL, true);
  if (d.origdstport) portTest(c, d.origdstport, IP_CT_DIR_ORIGINAL, false);
  if (d.replsrcport) portTest(c, d.replsrcport, IP_CT_DIR_REPLY, true);
  if (d.repldstport) portTest(c, d.repldstport, IP_CT_DIR_REPLY, false);
  if (d.status) bitsTest(c, NFT_CT_STATUS, d.status.mask, d.status.invert);
  if (d.expire) {
    const e = d.expire;
    c.withReg(4, (r) => {
      emitCtGet(c.b, r, NFT_CT_XT_EXPIRES);
      emitByteorder(c.b, NFT_BYTEORDER_HTON, r, r, 4, 4);
      emitRange(c.b, e.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(e.min, 4), be(e.max, 4));
    });
  }
  // emit([]) adds nothing: it gives the rule position after the tests
  if (guard >= 0) setXtMatchCtGuard(c.b, guard, c.b.emit([]));
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * conntrack match (and `state`, its alias): net/netfilter/xt_conntrack.c
 * conntrack_mt() with ct_proto_port_check_v3() (kernel 6.18), on the
 * packet's conntrack:
 *  - M_CT_DIR >= 0: a conntrack (or a template) is attached; M_CT_STATE
 *    holds its ctinfo as the NF_CT_STATE_* bit (ESTABLISHED 2, RELATED 4,
 *    NEW 8, the same bits as XT_CONNTRACK_STATE_*), M_CT_STATUS ct->status;
 *    its tuples and expiry are read from the node's conntrack table
 *    (XtEnv.ct; a template, M_CT_ID <= -2, has zero tuples);
 *  - M_CT_DIR < 0: no conntrack: UNTRACKED when M_CT_STATE has the
 *    untracked bit (64), INVALID otherwise; the match ends after --ctstate.
 */
/** ESTABLISHED | RELATED | NEW: the ctinfo-derived bits. */
const CTINFO_BITS = CT_STATE.ESTABLISHED | CT_STATE.RELATED | CT_STATE.NEW;

/** conntrack_addrcmp(): (kaddr ^ uaddr) & umask == 0 over the family's words. */
function addrcmp(t: NfCtTable, id: number, dir: number, base: number, a: HostMask, words: number): boolean {
  for (let i = 0; i < words; i++) {
    const k = id >= 0 ? t.tupleWord(id, dir, base + i) : 0;
    const o = 4 * i;
    const u = (a.addr[o]! << 24) | (a.addr[o + 1]! << 16) | (a.addr[o + 2]! << 8) | a.addr[o + 3]!;
    const msk = (a.mask[o]! << 24) | (a.mask[o + 1]! << 16) | (a.mask[o + 2]! << 8) | a.mask[o + 3]!;
    if (((k ^ u) & msk) !== 0) return false;
  }
  return true;
}

/** port_match(): (port >= min && port <= max) ^ invert. */
function portMatch(p: { lo: number; hi: number; invert: boolean }, port: number): boolean {
  return (port >= p.lo && port <= Math.max(p.lo, p.hi)) !== p.invert;
}

function conntrackMt(info: ConntrackData, family: Family): MatchFn {
  const words = family === 'ip6' ? 4 : 1;
  // the addresses' bytes, made once (an IPv4 rule's are made afresh on each read)
  const origsrc = info.origsrc ? hostMaskBytes(info.origsrc) : undefined;
  const origdst = info.origdst ? hostMaskBytes(info.origdst) : undefined;
  const replsrc = info.replsrc ? hostMaskBytes(info.replsrc) : undefined;
  const repldst = info.repldst ? hostMaskBytes(info.repldst) : undefined;
  return (par) => {
    const m = par.meta;
    const hasCt = m[M_CT_DIR]! >= 0;
    let statebit: number;
    if (hasCt) statebit = m[M_CT_STATE]! & CTINFO_BITS;
    else if (m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT) statebit = CT_STATE.UNTRACKED;
    else statebit = CT_STATE.INVALID;
    if (info.state) {
      if (hasCt) {
        if (m[M_CT_STATUS]! & IPS_SRC_NAT) statebit |= CT_STATE.SNAT;
        if (m[M_CT_STATUS]! & IPS_DST_NAT) statebit |= CT_STATE.DNAT;
      }
      if (((info.state.mask & statebit) !== 0) === info.state.invert) return false;
    }
    if (!hasCt) return info.state !== undefined;
    if (info.dir && (m[M_CT_DIR] === IP_CT_DIR_ORIGINAL) !== (info.dir === 'ORIGINAL')) return false;
    const t = par.env.ct ?? NO_CT_TABLE;
    const id = m[M_CT_ID]!;
    if (info.origsrc && addrcmp(t, id, IP_CT_DIR_ORIGINAL, CT_T_SRC, origsrc!, words) === info.origsrc.invert) return false;
    if (info.origdst && addrcmp(t, id, IP_CT_DIR_ORIGINAL, CT_T_DST, origdst!, words) === info.origdst.invert) return false;
    if (info.replsrc && addrcmp(t, id, IP_CT_DIR_REPLY, CT_T_SRC, replsrc!, words) === info.replsrc.invert) return false;
    if (info.repldst && addrcmp(t, id, IP_CT_DIR_REPLY, CT_T_DST, repldst!, words) === info.repldst.invert) return false;
    // ct_proto_port_check_v3()
    const word = (dir: number, w: number) => (id >= 0 ? t.tupleWord(id, dir, w) : 0);
    if (info.proto && ((word(IP_CT_DIR_ORIGINAL, CT_T_PROTO) & 0xff) === info.proto.proto) === info.proto.invert) return false;
    if (info.origsrcport && !portMatch(info.origsrcport, word(IP_CT_DIR_ORIGINAL, CT_T_PORTS) >>> 16)) return false;
    if (info.origdstport && !portMatch(info.origdstport, word(IP_CT_DIR_ORIGINAL, CT_T_PORTS) & 0xffff)) return false;
    if (info.replsrcport && !portMatch(info.replsrcport, word(IP_CT_DIR_REPLY, CT_T_PORTS) >>> 16)) return false;
    if (info.repldstport && !portMatch(info.repldstport, word(IP_CT_DIR_REPLY, CT_T_PORTS) & 0xffff)) return false;
    if (info.status && ((info.status.mask & m[M_CT_STATUS]!) !== 0) === info.status.invert) return false;
    if (info.expire) {
      const expires = id >= 0 ? t.expiresSec(id) >>> 0 : 0;
      if ((expires >= info.expire.min && expires <= info.expire.max) === info.expire.invert) return false;
    }
    return true;
  };
}
