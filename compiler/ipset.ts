/**
 * `ipset save` text: the reader (what `ipset restore` takes of it: `create`
 * and `add` lines, ipset 7.17 lib/parse.c and the types' option tables) into
 * the node's set store (vm/ipset.ts), and the printer that writes the store
 * back as `ipset save` does (lib/print.c, lib/session.c): the sets in
 * creation order, list:set sets last, each `create` line followed by its
 * elements with their extensions (timeouts as the seconds left on the node's
 * clock, counters, comment, skbinfo).
 *
 * Every problem is an NfvmError at the file, line and column of the token.
 */
import { NfvmError } from '../core/errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../core/addr.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC } from '../core/netfilter.js';
import {
  D_IFACE, D_IP, D_MAC, D_MARK, D_NET, D_PORT, IPSET_TYPES, IpSet, IpSetStore, defaultOptions, maskNet, noExt, type IpSetExt, type IpSetOptions,
} from '../vm/ipset.js';
import { etcProtoName, parseProtocol, serviceToPort } from '../ext/protocols.js';
import { heapCheck } from '../core/heap.js';

const IPSET_MAXNAMELEN = 32;
/** The largest range of addresses or ports one `add` line may expand to. */
const MAX_EXPAND = 1 << 20;

/** ipset lib/icmp.c: the ICMP type/code names. */
const ICMP_NAMES: ReadonlyArray<readonly [string, number, number]> = [
  ['echo-reply', 0, 0], ['pong', 0, 0], ['network-unreachable', 3, 0], ['host-unreachable', 3, 1], ['protocol-unreachable', 3, 2],
  ['port-unreachable', 3, 3], ['fragmentation-needed', 3, 4], ['source-route-failed', 3, 5], ['network-unknown', 3, 6],
  ['host-unknown', 3, 7], ['network-prohibited', 3, 9], ['host-prohibited', 3, 10], ['TOS-network-unreachable', 3, 11],
  ['TOS-host-unreachable', 3, 12], ['communication-prohibited', 3, 13], ['host-precedence-violation', 3, 14],
  ['precedence-cutoff', 3, 15], ['source-quench', 4, 0], ['network-redirect', 5, 0], ['host-redirect', 5, 1],
  ['TOS-network-redirect', 5, 2], ['TOS-host-redirect', 5, 3], ['echo-request', 8, 0], ['ping', 8, 0],
  ['router-advertisement', 9, 0], ['router-solicitation', 10, 0], ['ttl-zero-during-transit', 11, 0],
  ['ttl-zero-during-reassembly', 11, 1], ['ip-header-bad', 12, 0], ['required-option-missing', 12, 1],
  ['timestamp-request', 13, 0], ['timestamp-reply', 14, 0], ['address-mask-request', 17, 0], ['address-mask-reply', 18, 0],
];

/** ipset lib/icmpv6.c */
const ICMPV6_NAMES: ReadonlyArray<readonly [string, number, number]> = [
  ['no-route', 1, 0], ['communication-prohibited', 1, 1], ['address-unreachable', 1, 3], ['port-unreachable', 1, 4],
  ['packet-too-big', 2, 0], ['ttl-zero-during-transit', 3, 0], ['ttl-zero-during-reassembly', 3, 1], ['bad-header', 4, 0],
  ['unknown-header-type', 4, 1], ['unknown-option', 4, 2], ['echo-request', 128, 0], ['ping', 128, 0], ['echo-reply', 129, 0],
  ['pong', 129, 0], ['router-solicitation', 133, 0], ['router-advertisement', 134, 0], ['neighbour-solicitation', 135, 0],
  ['neighbor-solicitation', 135, 0], ['neighbour-advertisement', 136, 0], ['neighbor-advertisement', 136, 0], ['redirect', 137, 0],
];

interface Tok {
  text: string;
  col: number;
}

/** Splits a line into words; a double-quoted word (comment "a b") is one token without its quotes. */
function tokenize(line: string, file: string, lineNo: number): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ' || line[i] === '\t' || line[i] === '\r') {
      i++;
      continue;
    }
    const col = i + 1;
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new NfvmError('syntax', 'unterminated quoted string', file, { line: lineNo, col }, line.slice(i));
      out.push({ text: line.slice(i + 1, end), col });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && line[j] !== ' ' && line[j] !== '\t' && line[j] !== '\r') j++;
    out.push({ text: line.slice(i, j), col });
    i = j;
  }
  return out;
}

class LineReader {
  i = 0;
  constructor(readonly toks: Tok[], readonly file: string, readonly line: number) {}
  err(msg: string, t: Tok | undefined = this.toks[this.i - 1], kind: 'syntax' | 'value' | 'check' = 'syntax'): never {
    const col = t ? t.col : (this.toks[this.toks.length - 1]?.col ?? 1);
    throw new NfvmError(kind, msg, this.file, { line: this.line, col }, t?.text);
  }
  next(what: string): Tok {
    const t = this.toks[this.i++];
    if (!t) this.err(`missing ${what}`, this.toks[this.toks.length - 1]);
    return t;
  }
  num(what: string, max = 0xffffffff): number {
    const t = this.next(what);
    const v = parseNum(t.text);
    if (v === undefined || v > max) this.err(`${what}: cannot parse ${t.text} as a number in range 0-${max}`, t, 'value');
    return v;
  }
  get done(): boolean {
    return this.i >= this.toks.length;
  }
}

/** A decimal, hex (0x) or octal (0) unsigned number as strtoul takes it. */
function parseNum(s: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0[0-7]*$/.test(s)) return parseInt(s, 8);
  if (/^[1-9][0-9]*$/.test(s)) return Number(s);
  return undefined;
}

/** Reads `ipset save` text into a store. */
export function parseIpsetSave(text: string, file: string): IpSetStore {
  const store = new IpSetStore();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    heapCheck('reading the sets', file, n + 1);
    const toks = tokenize(lines[n]!, file, n + 1);
    if (toks.length === 0 || toks[0]!.text.startsWith('#')) continue;
    const r = new LineReader(toks, file, n + 1);
    const cmd = r.next('command').text;
    if (cmd === 'create' || cmd === '-N' || cmd === 'n' || cmd === '-exist') parseCreate(r, store);
    else if (cmd === 'add' || cmd === '-A' || cmd === 'a') parseAdd(r, store);
    else r.err(`unknown command ${cmd}`, toks[0]);
  }
  return store;
}

function setName(r: LineReader): Tok {
  const t = r.next('set name');
  if (Buffer.byteLength(t.text) > IPSET_MAXNAMELEN - 1) r.err(`setname '${t.text}' is longer than ${IPSET_MAXNAMELEN - 1} characters`, t, 'value');
  return t;
}

function parseCreate(r: LineReader, store: IpSetStore): void {
  const name = setName(r);
  if (store.byName.has(name.text)) r.err(`Set cannot be created: set with the same name already exists`, name, 'check');
  const tt = r.next('set type');
  const type = IPSET_TYPES.get(tt.text);
  if (!type) r.err(`Syntax error: typename '${tt.text}' is unknown`, tt, 'value');
  const o: IpSetOptions = defaultOptions();
  o.family = type.kind === 'hash' && !type.anyFamily ? NFPROTO_IPV4 : type.name === 'bitmap:ip' || type.name === 'bitmap:ip,mac' ? NFPROTO_IPV4 : NFPROTO_UNSPEC;
  let range: Tok | undefined;
  while (!r.done) {
    const t = r.next('option');
    const only = (ok: boolean) => {
      if (!ok) r.err(`Syntax error: argument '${t.text}' is not supported by ${type.name}`, t);
    };
    switch (t.text) {
      case 'family': {
        only(type.kind === 'hash' && !type.anyFamily);
        const f = r.next('family');
        if (f.text === 'inet' || f.text === 'ipv4' || f.text === '-4') o.family = NFPROTO_IPV4;
        else if (f.text === 'inet6' || f.text === 'ipv6' || f.text === '-6') o.family = NFPROTO_IPV6;
        else r.err(`Syntax error: unknown family ${f.text}`, f, 'value');
        break;
      }
      case 'hashsize':
        only(type.kind === 'hash');
        o.hashsize = r.num('hashsize');
        break;
      case 'maxelem':
        only(type.kind === 'hash');
        o.maxelem = r.num('maxelem');
        break;
      case 'bucketsize':
        only(type.kind === 'hash');
        o.bucketsize = r.num('bucketsize', 255);
        break;
      case 'initval':
        only(type.kind === 'hash');
        o.initval = r.num('initval');
        break;
      case 'probes':
      case 'resize':
        only(type.kind === 'hash');
        r.num(t.text);
        break;
      case 'netmask':
        only(type.name === 'hash:ip' || type.name === 'bitmap:ip' || type.name === 'hash:net,net');
        o.netmask = r.num('netmask', 128);
        break;
      case 'markmask':
        only(type.name === 'hash:ip,mark');
        o.markmask = r.num('markmask');
        if (o.markmask === 0) r.err('Syntax error: markmask must be nonzero', t, 'value');
        break;
      case 'timeout':
        o.timeout = r.num('timeout');
        break;
      case 'counters':
        o.counters = true;
        break;
      case 'comment':
        o.comment = true;
        break;
      case 'skbinfo':
        o.skbinfo = true;
        break;
      case 'forceadd':
        only(type.kind === 'hash');
        o.forceadd = true;
        break;
      case 'range':
        only(type.kind === 'bitmap');
        range = r.next('range');
        break;
      case 'size':
        only(type.kind === 'list');
        o.size = Math.max(4, r.num('size'));
        break;
      default:
        r.err(`Syntax error: unknown argument '${t.text}'`, t);
    }
  }
  const host = o.family === NFPROTO_IPV6 ? 128 : 32;
  if (o.netmask !== undefined && (o.netmask < 1 || o.netmask > host)) r.err(`Syntax error: netmask ${o.netmask} out of range 1-${host}`, r.toks[0], 'value');
  if (type.kind === 'bitmap') {
    if (!range) r.err(`Syntax error: mandatory option 'range' is missing`, tt);
    if (type.name === 'bitmap:port') {
      const m = /^(\d+)-(\d+)$/.exec(range.text);
      const a = m ? Number(m[1]) : NaN;
      const b = m ? Number(m[2]) : NaN;
      if (!(a <= 65535 && b <= 65535)) r.err(`Syntax error: cannot parse ${range.text} as a port range`, range, 'value');
      o.first = Math.min(a, b);
      o.last = Math.max(a, b);
    } else {
      const [a, b] = ip4Range(r, range);
      const nm = o.netmask ?? 32;
      const mask = nm === 0 ? 0 : (-1 << (32 - nm)) >>> 0;
      o.first = (a & mask) >>> 0;
      o.last = b;
      if (o.last - o.first >= 65536 * 2 ** (32 - nm)) r.err('Kernel error received: Range too big', range, 'check');
    }
  }
  store.add(new IpSet(name.text, type, o));
}

/** An IPv4 `a-b`, `a/cidr` or single address as host-order bounds. */
function ip4Range(r: LineReader, t: Tok): [number, number] {
  const u32 = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const bad = () => r.err(`Syntax error: cannot parse ${t.text}: resolving to IPv4 address failed`, t, 'value');
  const dash = t.text.indexOf('-');
  if (dash > 0) {
    const a = parseIPv4(t.text.slice(0, dash));
    const b = parseIPv4(t.text.slice(dash + 1));
    if (!a || !b) bad();
    const x = u32(a!);
    const y = u32(b!);
    return x <= y ? [x, y] : [y, x];
  }
  const slash = t.text.indexOf('/');
  const a = parseIPv4(slash > 0 ? t.text.slice(0, slash) : t.text);
  if (!a) bad();
  const cidr = slash > 0 ? Number(t.text.slice(slash + 1)) : 32;
  if (!(cidr >= 0 && cidr <= 32) || (slash > 0 && !/^\d+$/.test(t.text.slice(slash + 1)))) bad();
  const mask = cidr === 0 ? 0 : (-1 << (32 - cidr)) >>> 0;
  const lo = (u32(a!) & mask) >>> 0;
  return [lo, (lo | ~mask) >>> 0];
}

/** One element part before expansion: a value (or a range of them). */
interface Part {
  /** Address words (host order) or the single value word. */
  words: number[];
  cidr: number;
  /** IPv4 address / port ranges: the last value (inclusive). */
  to: number | undefined;
  proto: number;
  physdev: boolean;
}

function parseAdd(r: LineReader, store: IpSetStore): void {
  const name = setName(r);
  const id = store.byName.get(name.text);
  if (id === undefined) r.err(`The set with the given name does not exist`, name, 'check');
  const set = store.sets[id]!;
  const et = r.next('element');
  const ext: IpSetExt = noExt();
  let before: { name: string; before: boolean } | undefined;
  while (!r.done) {
    const t = r.next('option');
    const need = (ok: boolean, what: string) => {
      if (!ok) r.err(`Syntax error: ${what}`, t);
    };
    switch (t.text) {
      case 'timeout':
        need(set.opts.timeout !== undefined, 'the set has no timeout support');
        ext.timeout = r.num('timeout');
        break;
      case 'packets':
        need(set.opts.counters, 'the set has no counters support');
        ext.packets = r.num('packets', Number.MAX_SAFE_INTEGER);
        break;
      case 'bytes':
        need(set.opts.counters, 'the set has no counters support');
        ext.bytes = r.num('bytes', Number.MAX_SAFE_INTEGER);
        break;
      case 'comment':
        need(set.opts.comment, 'the set has no comment support');
        ext.comment = r.next('comment').text;
        if (ext.comment.length > 255) r.err('Syntax error: comment is longer than 255 characters', r.toks[r.i - 1], 'value');
        break;
      case 'skbmark': {
        need(set.opts.skbinfo, 'the set has no skbinfo support');
        const v = r.next('skbmark');
        const [a, b] = v.text.split('/');
        const mark = parseNum(a!);
        const mask = b === undefined ? 0xffffffff : parseNum(b);
        if (mark === undefined || mask === undefined || mark > 0xffffffff || mask > 0xffffffff) {
          r.err('Syntax error: Invalid skbmark format, it should be:  MARK/MASK or MARK (see manpage)', v, 'value');
        }
        ext.skbmark = mark | 0;
        ext.skbmarkmask = mask | 0;
        break;
      }
      case 'skbprio': {
        need(set.opts.skbinfo, 'the set has no skbinfo support');
        const v = r.next('skbprio');
        const m = /^([0-9a-fA-F]+):([0-9a-fA-F]+)$/.exec(v.text);
        if (!m || parseInt(m[1]!, 16) > 0xffff || parseInt(m[2]!, 16) > 0xffff) r.err('Syntax error: Invalid skbprio format, it should be:MAJOR:MINOR (see manpage)', v, 'value');
        ext.skbprio = (parseInt(m[1]!, 16) << 16) | parseInt(m[2]!, 16);
        break;
      }
      case 'skbqueue':
        need(set.opts.skbinfo, 'the set has no skbinfo support');
        ext.skbqueue = r.num('skbqueue', 0xffff);
        break;
      case 'nomatch':
        need(set.type.nomatch === true, `argument 'nomatch' is not supported by ${set.type.name}`);
        ext.nomatch = true;
        break;
      case 'before':
      case 'after':
        need(set.type.kind === 'list', `argument '${t.text}' is not supported by ${set.type.name}`);
        before = { name: r.next('set name').text, before: t.text === 'before' };
        break;
      default:
        r.err(`Syntax error: unknown argument '${t.text}'`, t);
    }
  }
  const now = store.nowMs;
  if (set.type.kind === 'list') {
    const mid = store.byName.get(et.text);
    if (mid === undefined) r.err(`Set to be added/deleted/tested as element does not exist.`, et, 'check');
    if (store.sets[mid]!.type.kind === 'list') r.err('Sets with list:set type cannot be added to the set.', et, 'check');
    const k = set.scratch;
    k[0] = mid;
    if (set.findKey(k) >= 0 && set.alive(set.findKey(k), now)) r.err('Element cannot be added to the set: it\'s already added', et, 'check');
    if (set.members.length >= set.opts.size) r.err('List set is full, cannot add new element', et, 'check');
    set.addKey(k, ext, false, now);
    const e = set.findKey(k);
    if (before) {
      const ref = store.byName.get(before.name);
      const at = ref === undefined ? -1 : set.members.findIndex((m) => set.keys[m * set.kw] === ref);
      if (at < 0) r.err(`Set to be added/deleted/tested as element does not exist.`, r.toks[r.i - 1], 'check');
      set.members.splice(before.before ? at : at + 1, 0, e);
    } else set.members.push(e);
    return;
  }
  const parts = parseElement(r, set, et);
  let added = 0;
  expand(set, parts, 0, set.scratch, () => {
    if (++added > MAX_EXPAND) r.err(`the element expands to more than ${MAX_EXPAND} entries`, et, 'value');
    const ret = set.addKey(set.scratch, ext, false, now, set.type.name === 'bitmap:ip,mac' && parts.length > 1);
    if (ret === -2) r.err(`Hash is full, cannot add more elements`, et, 'check');
  });
}

/** Calls `f` with the key of every element the parts stand for (ranges expanded). */
function expand(set: IpSet, parts: Part[], i: number, k: Int32Array, f: () => void): void {
  if (set.type.kind === 'bitmap') {
    const p = parts[0]!;
    const lo = p.words[0]!;
    const hi = p.to ?? lo;
    if (set.type.name === 'bitmap:port') {
      for (let v = lo; v <= hi; v++) {
        k[0] = v - set.opts.first;
        f();
      }
      return;
    }
    const nm = set.opts.netmask ?? 32;
    const hosts = 2 ** (32 - nm);
    const mask = nm === 0 ? 0 : (-1 << (32 - nm)) >>> 0;
    for (let v = (lo & mask) >>> 0; v <= hi; v += hosts) {
      k[0] = Math.floor((v - set.opts.first) / hosts);
      if (set.type.name === 'bitmap:ip,mac' && parts[1]) set.setPendingMac(Uint8Array.from(parts[1].words), 0);
      f();
    }
    return;
  }
  if (i === parts.length) {
    f();
    return;
  }
  const p = parts[i]!;
  const at = set.at[i]!;
  const dim = set.type.dims[i]!;
  if (dim === D_PORT) {
    const hi = p.to ?? p.words[0]!;
    for (let v = p.words[0]!; v <= hi; v++) {
      k[at] = (p.proto << 16) | v;
      expand(set, parts, i + 1, k, f);
    }
    return;
  }
  if (dim === D_IP && set.aw === 1 && p.to !== undefined) {
    const nm = set.type.name === 'hash:ip' ? set.opts.netmask ?? 32 : 32;
    const step = 2 ** (32 - nm);
    const mask = nm === 0 ? 0 : (-1 << (32 - nm)) >>> 0;
    for (let v = (p.words[0]! & mask) >>> 0; v <= p.to; v += step) {
      k[at] = v | 0;
      expand(set, parts, i + 1, k, f);
    }
    return;
  }
  for (let w = 0; w < p.words.length; w++) k[at + w] = p.words[w]! | 0;
  if (dim === D_NET) maskNet(k, at, set.aw, p.cidr);
  if (dim === D_IP && set.type.name === 'hash:ip' && set.opts.netmask !== undefined) maskNet(k, at, set.aw, set.opts.netmask);
  if (dim === D_IFACE) k[at + 4] = p.physdev ? 1 : 0;
  expand(set, parts, i + 1, k, f);
}

/** Splits `a,b,c` into the type's parts and parses each. */
function parseElement(r: LineReader, set: IpSet, t: Tok): Part[] {
  const dims = set.type.dims;
  const texts = t.text.split(',');
  const bitmapIpMac = set.type.name === 'bitmap:ip,mac';
  if (texts.length !== dims.length && !(bitmapIpMac && texts.length === 1)) {
    r.err(`Syntax error: elem separator in ${t.text}, but settype ${set.type.name} supports ${dims.length === 1 ? 'none' : `${dims.length} dimensions`}`, t, 'value');
  }
  const v6 = set.opts.family === NFPROTO_IPV6;
  const bad = (s: string, why: string): never => r.err(`Syntax error: cannot parse ${s}: ${why}`, t, 'value');
  const parts: Part[] = [];
  texts.forEach((s, i) => {
    const p: Part = { words: [], cidr: 0, to: undefined, proto: 0, physdev: false };
    switch (dims[i]) {
      case D_IP:
      case D_NET: {
        const net = dims[i] === D_NET;
        let a = s;
        const slash = s.indexOf('/');
        const dash = v6 ? -1 : s.indexOf('-');
        p.cidr = v6 ? 128 : 32;
        if (slash > 0) {
          a = s.slice(0, slash);
          const c = s.slice(slash + 1);
          if (!/^\d+$/.test(c) || Number(c) > p.cidr) bad(s, 'invalid CIDR value');
          p.cidr = Number(c);
          if (p.cidr === 0 && !(net && set.type.zeroCidr) && !(!net && set.type.kind === 'hash' && !v6)) bad(s, 'zero valued CIDR');
        } else if (dash > 0) a = s.slice(0, dash);
        const b = v6 ? parseIPv6(a) : parseIPv4(a);
        if (!b) bad(s, `resolving to ${v6 ? 'IPv6' : 'IPv4'} address failed`);
        for (let w = 0; w < b!.length; w += 4) p.words.push(((b![w]! << 24) | (b![w + 1]! << 16) | (b![w + 2]! << 8) | b![w + 3]!) >>> 0);
        if (!net && !v6 && (slash > 0 || dash > 0)) {
          const [lo, hi] = ip4Range(r, { text: s, col: t.col });
          p.words[0] = lo;
          p.to = hi;
        } else if (!net && slash > 0) bad(s, 'IPv6 ranges are not supported');
        else if (net && dash > 0) bad(s, 'ranges of networks are not supported here');
        if (set.type.kind === 'bitmap') {
          const lo = p.words[0]!;
          const hi = p.to ?? lo;
          if (lo < set.opts.first || hi > set.opts.last) r.err('Element is out of the range of the set', t, 'check');
        }
        if (set.type.name === 'hash:ip' && p.to === undefined && p.words.every((w) => w === 0)) r.err('Null-valued element, cannot be stored in a hash type of set', t, 'check');
        break;
      }
      case D_PORT: {
        let proto = 6;
        let ps = s;
        const colon = s.indexOf(':');
        if (colon > 0 && set.type.kind === 'hash') {
          const pn = s.slice(0, colon);
          ps = s.slice(colon + 1);
          try {
            proto = pn === 'icmpv6' ? 58 : parseProtocol(pn);
          } catch {
            bad(s, `unknown protocol ${pn}`);
          }
        } else if (colon > 0) ps = s.slice(colon + 1);
        p.proto = proto;
        if (proto === 1 || proto === 58) {
          const names = proto === 1 ? ICMP_NAMES : ICMPV6_NAMES;
          if ((proto === 1) === v6) bad(s, `${proto === 1 ? 'ICMP' : 'ICMPv6'} in a set of family ${v6 ? 'inet6' : 'inet'}`);
          const named = names.find(([n]) => n.toLowerCase() === ps.toLowerCase());
          const m = /^(\d+)\/(\d+)$/.exec(ps);
          if (named) p.words.push((named[1] << 8) | named[2]);
          else if (m && Number(m[1]) <= 255 && Number(m[2]) <= 255) p.words.push((Number(m[1]) << 8) | Number(m[2]));
          else bad(s, `invalid ICMP type/code`);
          break;
        }
        const dash = ps.indexOf('-');
        const one = (x: string) => {
          const v = /^\d+$/.test(x) ? Number(x) : serviceToPort(x);
          if (v === undefined || v > 65535) bad(s, 'invalid port');
          return v!;
        };
        const lo = one(dash > 0 ? ps.slice(0, dash) : ps);
        const hi = dash > 0 ? one(ps.slice(dash + 1)) : lo;
        p.words.push(Math.min(lo, hi));
        if (hi !== lo) p.to = Math.max(lo, hi);
        const withPort = proto === 6 || proto === 17 || proto === 132 || proto === 136;
        if (!withPort && (lo !== 0 || hi !== 0)) bad(s, 'Syntax error: port must be zero for this protocol');
        if (set.type.kind === 'bitmap' && (Math.min(lo, hi) < set.opts.first || Math.max(lo, hi) > set.opts.last)) r.err('Element is out of the range of the set', t, 'check');
        break;
      }
      case D_MARK: {
        const v = parseNum(s);
        if (v === undefined || v > 0xffffffff) bad(s, 'invalid mark');
        p.words.push(v! & set.opts.markmask);
        break;
      }
      case D_IFACE: {
        let n = s;
        if (n.startsWith('physdev:')) {
          p.physdev = true;
          n = n.slice(8);
        }
        if (n.length === 0 || Buffer.byteLength(n) > 15) bad(s, 'invalid interface name');
        const b = new Uint8Array(16);
        b.set(Buffer.from(n));
        const dv = new DataView(b.buffer);
        for (let w = 0; w < 4; w++) p.words.push(dv.getInt32(4 * w, true));
        break;
      }
      case D_MAC: {
        const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
        if (!m) bad(s, 'invalid MAC address');
        const b = m!.slice(1, 7).map((h) => parseInt(h, 16));
        if (bitmapIpMac) p.words.push(...b);
        else p.words.push(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0, (b[4]! << 8) | b[5]!);
        break;
      }
    }
    parts.push(p);
  });
  return parts;
}

/** The names the kernel would find (KnownObjects.ipsets). */
export function ipsetNames(store: IpSetStore): ReadonlySet<string> {
  return new Set(store.byName.keys());
}

const hex32 = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

function fmtAddr(k: Int32Array, at: number, aw: number): string {
  const b = new Uint8Array(aw * 4);
  for (let w = 0; w < aw; w++) {
    const v = k[at + w]!;
    b[4 * w] = v >>> 24;
    b[4 * w + 1] = (v >>> 16) & 255;
    b[4 * w + 2] = (v >>> 8) & 255;
    b[4 * w + 3] = v & 255;
  }
  return aw === 1 ? formatIPv4(b) : formatIPv6(b);
}

function fmtPort(word: number, set: IpSet): string {
  const proto = word >>> 16;
  const port = word & 0xffff;
  if (proto === 1 || proto === 58) {
    const names = proto === 1 ? ICMP_NAMES : ICMPV6_NAMES;
    const n = names.find(([, t, c]) => t === port >> 8 && c === (port & 255));
    return `${proto === 1 ? 'icmp' : 'ipv6-icmp'}:${n ? n[0] : `${port >> 8}/${port & 255}`}`;
  }
  if (set.type.kind === 'bitmap') return String(port);
  return `${etcProtoName(proto) ?? proto}:${port}`;
}

function fmtMac(b: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + b[i]!.toString(16).toUpperCase().padStart(2, '0');
  return s;
}

/** The element text of element e (ipset's print functions per type). */
function fmtElement(store: IpSetStore, set: IpSet, e: number): string {
  const k = set.keys.subarray(e * set.kw, e * set.kw + set.kw);
  if (set.type.kind === 'list') return store.sets[k[0]!]!.name;
  if (set.type.name === 'bitmap:port') return String(set.opts.first + k[0]!);
  if (set.type.kind === 'bitmap') {
    const nm = set.opts.netmask ?? 32;
    const ip = set.opts.first + k[0]! * 2 ** (32 - nm);
    const s = fmtAddr(Int32Array.of(ip | 0), 0, 1);
    return set.type.name === 'bitmap:ip,mac' && set.macFilled[e] ? `${s},${fmtMac(set.macs.subarray(e * 6, e * 6 + 6))}` : s;
  }
  const out: string[] = [];
  set.type.dims.forEach((d, i) => {
    const at = set.at[i]!;
    switch (d) {
      case D_IP:
        out.push(fmtAddr(k, at, set.aw));
        break;
      case D_NET: {
        const c = k[at + set.aw]!;
        // ipset prints a host element of a net type without its prefix
        out.push(c === set.hostMask ? fmtAddr(k, at, set.aw) : `${fmtAddr(k, at, set.aw)}/${c}`);
        break;
      }
      case D_PORT:
        out.push(fmtPort(k[at]!, set));
        break;
      case D_MARK:
        out.push(hex32(k[at]!));
        break;
      case D_IFACE: {
        const b = new Uint8Array(16);
        const dv = new DataView(b.buffer);
        for (let w = 0; w < 4; w++) dv.setInt32(4 * w, k[at + w]!, true);
        const n = Buffer.from(b.subarray(0, b.indexOf(0) < 0 ? 16 : b.indexOf(0))).toString();
        out.push(k[at + 4] ? `physdev:${n}` : n);
        break;
      }
      case D_MAC: {
        const v = k[at]!;
        const w = k[at + 1]!;
        out.push(fmtMac([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255, (w >>> 8) & 255, w & 255]));
        break;
      }
    }
  });
  return out.join(',');
}

/** The `create` line's options (the type's header as `ipset save` prints it). */
function header(set: IpSet): string {
  const o = set.opts;
  const t = set.type;
  let s = '';
  if (t.kind === 'hash') {
    if (!t.anyFamily) s += ` family ${o.family === NFPROTO_IPV6 ? 'inet6' : 'inet'}`;
    s += ` hashsize ${o.hashsize} maxelem ${o.maxelem}`;
    if (o.netmask !== undefined) s += ` netmask ${o.netmask}`;
    if (t.name === 'hash:ip,mark') s += ` markmask ${hex32(o.markmask)}`;
  } else if (t.name === 'bitmap:port') s += ` range ${o.first}-${o.last}`;
  else if (t.kind === 'bitmap') {
    const f = (v: number) => fmtAddr(Int32Array.of(v | 0), 0, 1);
    s += ` range ${f(o.first)}-${f(o.last)}`;
    if (o.netmask !== undefined && o.netmask !== 32) s += ` netmask ${o.netmask}`;
  } else s += ` size ${o.size}`;
  if (o.timeout !== undefined) s += ` timeout ${o.timeout}`;
  if (o.counters) s += ' counters';
  if (o.comment) s += ' comment';
  if (o.skbinfo) s += ' skbinfo';
  if (o.forceadd) s += ' forceadd';
  if (t.kind === 'hash') {
    s += ` bucketsize ${o.bucketsize ?? 12}`;
    if (o.initval !== undefined) s += ` initval ${hex32(o.initval)}`;
  }
  return s;
}

/** One element's extensions: nomatch, then timeout, counters, comment, skbinfo (ip_set_put_extensions). */
function extText(store: IpSetStore, set: IpSet, e: number): string {
  let s = '';
  if (set.nomatch[e]) s += ' nomatch';
  if (set.opts.timeout !== undefined && set.type.name === 'bitmap:ip,mac' && !set.macFilled[e]) {
    // not active yet: ip_set_put_extensions prints the stored plain value
    s += ` timeout ${set.plain[e]}`;
  } else if (set.opts.timeout !== undefined) {
    const x = set.expires[e]!;
    // ip_set_timeout_get(): whole seconds left, 1 rather than 0 (0 means permanent)
    s += ` timeout ${x === Infinity ? 0 : Math.max(1, Math.floor((x - store.nowMs) / 1000))}`;
  }
  if (set.opts.counters) s += ` packets ${set.packets[e]} bytes ${set.bytes[e]}`;
  const c = set.comments[e];
  if (set.opts.comment && c !== undefined) s += ` comment "${c}"`;
  if (set.opts.skbinfo) {
    const mark = set.skb[e * 4]! >>> 0;
    const mask = set.skb[e * 4 + 1]! >>> 0;
    const prio = set.skb[e * 4 + 2]! >>> 0;
    const queue = set.skb[e * 4 + 3]!;
    if (mark || mask) s += mask === 0xffffffff ? ` skbmark 0x${mark.toString(16)}` : ` skbmark 0x${mark.toString(16)}/0x${mask.toString(16)}`;
    if (prio) s += ` skbprio ${(prio >>> 16).toString(16)}:${(prio & 0xffff).toString(16)}`;
    if (queue) s += ` skbqueue ${queue}`;
  }
  return s;
}

/** The store as `ipset save` prints it at the store's clock. */
export function saveIpsets(store: IpSetStore): string {
  const lines: string[] = [];
  const order = [...store.sets.filter((s) => s.type.kind !== 'list'), ...store.sets.filter((s) => s.type.kind === 'list')];
  for (const set of order) {
    lines.push(`create ${set.name} ${set.type.name}${header(set)}`);
    let elems = set.type.kind === 'list' ? set.members.filter((e) => set.alive(e, store.nowMs)) : set.elements(store.nowMs);
    if (set.type.kind === 'bitmap') elems = elems.sort((a, b) => set.keys[a * set.kw]! - set.keys[b * set.kw]!);
    for (const e of elems) lines.push(`add ${set.name} ${fmtElement(store, set, e)}${extText(store, set, e)}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
