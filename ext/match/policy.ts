/**
 * policy match: libxt_policy.c, kernel xt_policy.c: the IPsec policy a
 * packet was decapsulated with (`--dir in`) or will be encapsulated with
 * (`--dir out`). Up to 4 policy elements, separated by `--next` (which
 * needs `--strict`). Tunnel addresses keep their unmasked form.
 *
 * Kernel checkentry: an `out` policy is refused in rules reachable from
 * PREROUTING/INPUT, an `in` policy from OUTPUT/POSTROUTING.
 */
import { fail } from '../../core/errors.js';
import type { EngineOptions, MatchModule } from '../types.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { NotModelled, type MatchFn } from '../xt.js';
import { parseProtocol } from '../protocols.js';
import { parseUintOpt } from '../numbers.js';
import { formatHostMask, parseHostMask, type HostMask } from '../hostmask.js';

/** XT_POLICY_MAX_ELEM */
const MAX_ELEM = 4;

/** One struct xt_policy_elem; a field is present when matched. */
interface PolicyElem {
  reqid?: { value: number; invert: boolean };
  spi?: { value: number; invert: boolean };
  /** IPPROTO_AH (51), IPPROTO_ESP (50) or IPPROTO_COMP (108). */
  proto?: { value: number; invert: boolean };
  mode?: { value: 'transport' | 'tunnel'; invert: boolean };
  saddr?: HostMask & { invert: boolean };
  daddr?: HostMask & { invert: boolean };
}

/** struct xt_policy_info, decoded. */
interface PolicyData {
  /** --dir (undefined until given). */
  dir?: 'in' | 'out';
  /** --pol none (XT_POLICY_MATCH_NONE); `ipsec` otherwise. */
  none: boolean;
  /** --strict */
  strict: boolean;
  /** The elements (after final: exactly `len` of them; none for `--pol none`). */
  elems: PolicyElem[];
}

const PROTO_NAMES: Readonly<Record<number, string>> = { 50: 'esp', 51: 'ah', 108: 'ipcomp' };

export const policy: MatchModule<PolicyData> = {
  kind: 'match',
  name: 'policy',
  options: [
    { name: 'dir', arg: 1 },
    { name: 'pol', arg: 1 },
    { name: 'strict', arg: 0 },
    { name: 'reqid', arg: 1, invert: true, multi: true },
    { name: 'spi', arg: 1, invert: true, multi: true },
    { name: 'tunnel-src', arg: 1, invert: true, multi: true },
    { name: 'tunnel-dst', arg: 1, invert: true, multi: true },
    { name: 'proto', arg: 1, invert: true, multi: true },
    { name: 'mode', arg: 1, invert: true, multi: true },
    { name: 'next', arg: 0, multi: true },
  ],
  init: () => ({ none: false, strict: false, elems: [{}] }),
  parse(d, opt, arg, invert, ctx) {
    const e = d.elems[d.elems.length - 1]!;
    const a = arg!;
    const once = (k: keyof PolicyElem, name: string) => {
      if (e[k]) fail(`policy match: double --${name} option`);
    };
    switch (opt) {
      case 'dir':
        if (a !== 'in' && a !== 'out') fail(`policy_match: invalid dir "${a}"`);
        // flags |= IN/OUT: a later --dir cannot happen (not multi)
        d.dir = a;
        return;
      case 'pol':
        if (a === 'none') d.none = true;
        else if (a !== 'ipsec') fail(`policy match: invalid policy "${a}"`);
        return;
      case 'strict':
        d.strict = true;
        return;
      case 'reqid':
        once('reqid', 'reqid');
        e.reqid = { value: parseUintOpt(a, 0, 0xffffffff, 'policy', opt), invert };
        return;
      case 'spi':
        once('spi', 'spi');
        e.spi = { value: parseUintOpt(a, 0, 0xffffffff, 'policy', opt), invert };
        return;
      case 'tunnel-src':
        once('saddr', 'tunnel-src');
        e.saddr = { ...parseHostMask(ctx.family, a, 'policy', opt), invert };
        return;
      case 'tunnel-dst':
        once('daddr', 'tunnel-dst');
        e.daddr = { ...parseHostMask(ctx.family, a, 'policy', opt), invert };
        return;
      case 'proto': {
        once('proto', 'proto');
        const p = parseProtocol(a);
        if (p !== 50 && p !== 51 && p !== 108) fail('policy match: protocol must be ah/esp/ipcomp');
        e.proto = { value: p, invert };
        return;
      }
      case 'mode':
        once('mode', 'mode');
        if (a !== 'transport' && a !== 'tunnel') fail(`policy match: invalid mode "${a}"`);
        e.mode = { value: a, invert };
        return;
      case 'next':
        if (d.elems.length === MAX_ELEM) fail('policy match: maximum policy depth reached');
        d.elems.push({});
        return;
    }
  },
  final(d, seen) {
    if (!d.dir) fail('policy match: neither --dir in nor --dir out specified', 'option');
    if (d.none) {
      if (d.strict) fail('policy match: policy none but --strict given', 'option');
      if (d.elems.length !== 1) fail('policy match: policy none but policy given', 'option');
      // len stays 0: the first element's options are dropped
      d.elems = [];
    }
    d.elems.forEach((e, i) => {
      if (d.strict && !(e.reqid || e.spi || e.saddr || e.daddr || e.proto || e.mode)) {
        fail(
          `policy match: empty policy element ${i}. --strict is in effect, but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or mode is required.`,
          'option',
        );
      }
      // an absent --mode is transport (XT_POLICY_MODE_TRANSPORT == 0)
      const mode = e.mode?.value ?? 'transport';
      const inv = e.mode?.invert ?? false;
      if ((e.saddr || e.daddr) && ((mode === 'tunnel' && inv) || (mode === 'transport' && !inv))) {
        fail('policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode', 'option');
      }
    });
    // xtables_options_fcheck: --next also requires --strict
    if (seen.has('next') && !seen.has('strict')) fail('policy: option "--next" also requires "--strict".', 'option');
  },
  save(d, ctx) {
    const inv = (b: boolean) => (b ? ' !' : '');
    let s = ` --dir ${d.dir === 'in' ? 'in' : 'out'} --pol ${d.none ? 'none' : 'ipsec'}${d.strict ? ' --strict' : ''}`;
    d.elems.forEach((e, i) => {
      if (e.reqid) s += `${inv(e.reqid.invert)} --reqid ${e.reqid.value}`;
      if (e.spi) s += `${inv(e.spi.invert)} --spi 0x${e.spi.value.toString(16)}`;
      if (e.proto) s += `${inv(e.proto.invert)} --proto ${PROTO_NAMES[e.proto.value] ?? e.proto.value}`;
      if (e.mode) s += `${inv(e.mode.invert)} --mode ${e.mode.value}`;
      if (e.daddr) s += `${inv(e.daddr.invert)} --tunnel-dst ${formatHostMask(ctx.family, e.daddr)}`;
      if (e.saddr) s += `${inv(e.saddr.invert)} --tunnel-src ${formatHostMask(ctx.family, e.saddr)}`;
      if (i + 1 < d.elems.length) s += ' --next';
    });
    return s;
  },
  check(d, ctx) {
    const pre = 'xt_policy';
    if (ctx.hookMask & ((1 << 0) | (1 << 1)) && d.dir === 'out') return `${pre}: output policy not valid in PREROUTING and INPUT`;
    if (ctx.hookMask & ((1 << 4) | (1 << 3)) && d.dir === 'in') return `${pre}: input policy not valid in POSTROUTING and OUTPUT`;
    if (d.elems.length > MAX_ELEM) return `${pre}: too many policy elements`;
    return undefined;
  },
  // iptables-nft loads it as an x_tables match (`[ match name policy rev 0 ]`)
  lower: (c, m) => lowerCompatMatch(c, m, () => policyMt(m.data as PolicyData, c.engine)),
  reference: (d, _family, backend, engine) => asNftCompat(policyMt(d, engine), backend),
};

// --- semantics (xt_policy.c policy_mt, kernel 6.18) ---------------------------
const NEEDS = 'needs the IPsec states of the node (the packet\'s sec_path, its route\'s xfrm bundle): the snapshot has no xfrm-state.txt, or it lists some, and IPsec transforms are not modelled';

/**
 * policy_mt(): match_policy_in() reads the packet's sec_path, match_policy_out()
 * its route's xfrm bundle; without one either returns -1, and the match is
 * then true for `--pol none` and false for `--pol ipsec`, whatever the
 * elements ask. On a node with no IPsec state (the snapshot's empty `ip
 * xfrm state` list) no packet has either: a sec_path holds the states that
 * decapsulated the packet, a bundle the states that will encapsulate it,
 * whatever the policies. Elsewhere: refused.
 */
function policyMt(d: PolicyData, engine: EngineOptions): MatchFn {
  if (!engine.xfrmNoStates) throw new NotModelled('match policy', `match policy: ${NEEDS}`);
  return d.none ? () => true : () => false;
}

