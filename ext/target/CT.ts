/**
 * CT and NOTRACK targets: libxt_CT.c (CT revision 2, NOTRACK as its alias),
 * kernel xt_CT.c. Kernel `.table` = raw.
 *
 * The target (xt_ct_target) gives a packet that has no conntrack yet the
 * rule's template (made once per rule by xt_ct_tg_check: zone, zone
 * directions, zone from the mark, helper), or the untracked mark with
 * --notrack; both engines hand the template, packed in one word
 * (vm/ct-env.ts CT_TMPL_*), to the node's conntrack (NfCtEnv.ctTarget).
 * The helper is recorded on the conntrack (`conntrack -L` shows it); the
 * FTP and TFTP helpers' expectations are modelled (hooks/conntrack/
 * helper_ftp.ts, helper_tftp.ts), the other helpers' are not. Event
 * masks change nothing the model shows. A --timeout policy (the node's
 * cttimeout policies, the snapshot's nfct-timeout.txt) rides in the template
 * too: the conntracks made from it take their timeouts from the policy.
 *
 * Kernel checkentry (unless --notrack): a `--helper` needs the rule's `-p`
 * (not inverted) and a conntrack helper of that name for the family and
 * protocol; a `--timeout` needs a cttimeout policy object of the rule's
 * family and of the tracker of its `-p` (nf_ct_set_timeout), which a fresh
 * namespace has none of.
 */
import { fail } from '../../core/errors.js';
import type { CheckContext, EngineOptions, TargetModule } from '../types.js';
import type { Family } from '../../core/ast.js';
import { strtoulWhole } from '../numbers.js';
import {
  CT_HELPERS, CT_TMPL_DIR_SHIFT, CT_TMPL_HELPER_SHIFT, CT_TMPL_NOTRACK, CT_TMPL_TIMEOUT_MASK, CT_TMPL_TIMEOUT_SHIFT, CT_TMPL_ZONE_MARK, ctTargetMeta,
} from '../../vm/ct-env.js';
import { NFT_CT_XT_TEMPLATE, emitCtSet, emitImmediate } from '../../vm/expr/index.js';
import { le32, type LowerCtx } from '../lower.js';
import { NotModelled, XT_CONTINUE, type TargetFn } from '../xt.js';
import type { ExtTargetNode } from '../types.js';

/** IPCT_* event bits, in the order libxt_CT prints them. */
const CT_EVENTS: ReadonlyArray<readonly [string, number]> = [
  ['new', 0],
  ['related', 1],
  ['destroy', 2],
  ['reply', 3],
  ['assured', 4],
  ['protoinfo', 5],
  ['helper', 6],
  ['mark', 7],
  ['natseqinfo', 8],
  ['secmark', 9],
];
const EXP_EVENTS: ReadonlyArray<readonly [string, number]> = [['new', 0]];

/** struct xt_ct_target_info_v1, decoded. */
interface CtData {
  /** XT_CT_NOTRACK */
  notrack: boolean;
  /** XT_CT_NOTRACK_ALIAS: loaded as `-j NOTRACK` (saved so). */
  notrackAlias: boolean;
  /** Conntrack helper name ('' for none). */
  helper: string;
  /** cttimeout policy name ('' for none). */
  timeout: string;
  /** Bit masks of CT_EVENTS / expectation events. */
  ctEvents: number;
  expEvents: number;
  /** Zone id; `zoneMark` takes the zone from the packet mark instead. */
  zone: number;
  zoneMark: boolean;
  /** XT_CT_ZONE_DIR_ORIG / _REPL (both false: both directions). */
  zoneOrig: boolean;
  zoneReply: boolean;
}

/** Kernel conntrack helpers by name: protocols per family (nf_conntrack_*.c). */
const HELPERS: Readonly<Record<string, { ip: number[]; ip6: number[] }>> = {
  ftp: { ip: [6], ip6: [6] },
  tftp: { ip: [17], ip6: [17] },
  irc: { ip: [6], ip6: [] },
  sip: { ip: [17, 6], ip6: [17, 6] },
  amanda: { ip: [17], ip6: [17] },
  sane: { ip: [6], ip6: [6] },
  pptp: { ip: [6], ip6: [] },
  snmp: { ip: [17], ip6: [] },
  'snmp_trap': { ip: [17], ip6: [] },
  'netbios-ns': { ip: [17], ip6: [] },
  RAS: { ip: [17], ip6: [17] },
  'Q.931': { ip: [6], ip6: [6] },
};

function parseEvents(tbl: ReadonlyArray<readonly [string, number]>, arg: string): number {
  let mask = 0;
  for (const t of arg.split(',')) {
    const e = tbl.find(([n]) => n === t);
    if (!e) fail(`Unknown event type "${t}"`);
    mask |= 1 << e[1];
  }
  return mask;
}

function printEvents(tbl: ReadonlyArray<readonly [string, number]>, mask: number): string {
  return tbl.filter(([, b]) => mask & (1 << b)).map(([n]) => n).join(',');
}

/** XTTYPE_STRING with XTOPT_PUT into char[16] / char[32]: cut to size-1 bytes. */
function cut(s: string, size: number): string {
  return Buffer.from(s, 'utf8').subarray(0, size - 1).toString('latin1');
}

const init = (): CtData => ({
  notrack: false,
  notrackAlias: false,
  helper: '',
  timeout: '',
  ctEvents: 0,
  expEvents: 0,
  zone: 0,
  zoneMark: false,
  zoneOrig: false,
  zoneReply: false,
});

function check(d: CtData, ctx: CheckContext): string | undefined {
  if (d.notrack) return undefined;
  if (d.helper) {
    const proto = ctx.rule.invProto ? 0 : ctx.rule.proto;
    if (proto === 0) return 'xt_CT: You must specify a L4 protocol and not use inversions on it';
    const h = HELPERS[d.helper];
    if (!h || !h[ctx.family].includes(proto)) return `xt_CT: No such helper "${d.helper}"`;
  }
  // xt_ct_set_timeout(): a protocol first (xt_ct_find_proto: 0 without -p or with ! -p)
  if (d.timeout && (ctx.rule.invProto || ctx.rule.proto === 0)) return 'xt_CT: You must specify a L4 protocol and not use inversions on it';
  // a cttimeout policy (`nfct timeout add NAME ...`) must exist; checked when the node's policies are known
  if (d.timeout && ctx.objects?.ctTimeouts && !ctx.objects.ctTimeouts.has(d.timeout)) return `xt_CT: No such timeout policy "${d.timeout}"`;
  const protos = d.timeout ? ctx.objects?.ctTimeoutProtos?.get(d.timeout) : undefined;
  if (protos) {
    // nf_ct_set_timeout(): the policy's family, then the tracker of the rule's protocol (not inverted: refused above)
    const l3 = ctx.family === 'ip' ? 2 : 10;
    if (protos[0] !== l3) return `xt_CT: Timeout policy \`${d.timeout}' can only be used by L3 protocol number ${protos[0]} (EINVAL)`;
    if (protos[1] !== ctTracker(ctx.rule.proto)) return `xt_CT: Timeout policy \`${d.timeout}' can only be used by L4 protocol number ${protos[1]} (EINVAL)`;
  }
  return undefined;
}

/** nf_ct_l4proto_find(): the protocols with a tracker of their own; the generic tracker (255) for the rest. */
function ctTracker(proto: number): number {
  return proto === 6 || proto === 17 || proto === 136 || proto === 1 || proto === 58 || proto === 132 || proto === 47 ? proto : 255;
}

export const CT: TargetModule<CtData> = {
  kind: 'target',
  name: 'CT',
  tables: ['raw'],
  options: [
    { name: 'notrack', arg: 0 },
    { name: 'helper', arg: 1 },
    { name: 'timeout', arg: 1 },
    { name: 'ctevents', arg: 1 },
    { name: 'expevents', arg: 1 },
    { name: 'zone-orig', arg: 1 },
    { name: 'zone-reply', arg: 1 },
    { name: 'zone', arg: 1 },
  ],
  init,
  parse(d, opt, arg) {
    const a = arg!;
    switch (opt) {
      case 'notrack':
        d.notrack = true;
        return;
      case 'helper':
        d.helper = cut(a, 16);
        return;
      case 'timeout':
        d.timeout = cut(a, 32);
        return;
      case 'ctevents':
        d.ctEvents = parseEvents(CT_EVENTS, a);
        return;
      case 'expevents':
        d.expEvents = parseEvents(EXP_EVENTS, a);
        return;
      case 'zone-orig':
      case 'zone-reply':
      case 'zone': {
        if (opt === 'zone-orig') d.zoneOrig = true;
        if (opt === 'zone-reply') d.zoneReply = true;
        d.zone = 0;
        if (a.toLowerCase() === 'mark') {
          d.zoneMark = true;
        } else {
          const v = strtoulWhole(a, 0n, 0xffffn);
          if (v === undefined) fail(`Cannot parse ${a} as a zone ID`);
          d.zone = Number(v);
        }
        return;
      }
    }
  },
  save(d) {
    let s = '';
    if (d.notrack) s += ' --notrack';
    if (d.helper) s += ` --helper ${d.helper}`;
    if (d.timeout) s += ` --timeout ${d.timeout}`;
    if (d.ctEvents) s += ` --ctevents ${printEvents(CT_EVENTS, d.ctEvents)}`;
    if (d.expEvents) s += ` --expevents ${printEvents(EXP_EVENTS, d.expEvents)}`;
    if (d.zoneMark || d.zone) {
      s += ' --zone';
      if (d.zoneOrig && !d.zoneReply) s += '-orig';
      if (d.zoneReply && !d.zoneOrig) s += '-reply';
      s += d.zoneMark ? ' mark' : ` ${d.zone}`;
    }
    return s;
  },
  check,
  lower: lowerCt,
  reference: ctTg,
};

/** `-j NOTRACK`: CT with --notrack, saved as `-j NOTRACK` (libxt_NOTRACK.t). */
export const NOTRACK: TargetModule<CtData> = {
  kind: 'target',
  name: 'NOTRACK',
  tables: ['raw'],
  options: [],
  init: () => ({ ...init(), notrack: true, notrackAlias: true }),
  parse() {},
  save: () => '',
  lower: lowerCt,
  reference: ctTg,
};

/** xt_ct_tg_check(): the rule's template as a CT_TMPL_* word (xt_ct_flags_to_dir: no direction flag means both). */
export function ctTemplateWord(d: CtData): number {
  if (d.notrack) return CT_TMPL_NOTRACK;
  const dir = (d.zoneOrig ? 1 : 0) | (d.zoneReply ? 2 : 0) || 3;
  const helper = Math.max(0, CT_HELPERS.indexOf(d.helper));
  return (d.zone & 0xffff) | (dir << CT_TMPL_DIR_SHIFT) | (d.zoneMark ? CT_TMPL_ZONE_MARK : 0) | (helper << CT_TMPL_HELPER_SHIFT);
}

/** The template word with the rule's --timeout policy (the node's number for it), or a refusal. */
function templateWord(d: CtData, engine: EngineOptions): number {
  const word = ctTemplateWord(d);
  if (!d.timeout || d.notrack) return word;
  const policies = engine.ctTimeouts;
  if (!policies) throw new NotModelled('target CT --timeout', 'target CT --timeout: needs the node\'s cttimeout policies: the snapshot has no nfct-timeout.txt (`nfct list timeout`)');
  const p = policies.get(d.timeout);
  if (!p) throw new NotModelled('target CT --timeout', `xt_CT: No such timeout policy "${d.timeout}": it is not in nfct-timeout.txt`);
  if (p.unusable) throw new NotModelled('target CT --timeout', `target CT --timeout: ${p.unusable}`);
  if (p.index > CT_TMPL_TIMEOUT_MASK) throw new NotModelled('target CT --timeout', `target CT --timeout: more than ${CT_TMPL_TIMEOUT_MASK} timeout policies are not modelled`);
  return word | (p.index << CT_TMPL_TIMEOUT_SHIFT);
}

// --- lowering (the VM engine) ------------------------------------------------
/** CT / NOTRACK: the template word into a register, `ct set xt_template` (vm/expr/ct.ts). */
function lowerCt(c: LowerCtx, t: ExtTargetNode<CtData>): void {
  let word: number;
  try {
    word = templateWord(t.data, c.engine);
  } catch (e) {
    if (e instanceof NotModelled) return c.refuse(`target ${t.name}`, t.pos, e.message.replace(/^target CT --timeout: /, ''));
    throw e;
  }
  c.withReg(4, (r) => {
    emitImmediate(c.b, r, le32(word));
    emitCtSet(c.b, NFT_CT_XT_TEMPLATE, r);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/** xt_ct_target() (net/netfilter/xt_CT.c, kernel 6.18): the template or the untracked mark, then XT_CONTINUE. */
function ctTg(d: CtData, _family: Family, engine: EngineOptions): TargetFn {
  const word = templateWord(d, engine);
  return (par) => {
    if (par.env.ct !== null) par.env.ct.ctTarget(par.pkt, word);
    else ctTargetMeta(par.meta, word);
    return XT_CONTINUE;
  };
}

