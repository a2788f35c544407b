/**
 * ipvs match: libxt_ipvs.c, kernel xt_ipvs.c: properties of the IPVS
 * connection a packet belongs to. Any option but `--ipvs` implies `--ipvs`
 * (XT_IPVS_IPVS_PROPERTY), which is then not saved; `! --ipvs` cannot be
 * combined with the others. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseProtocol } from '../protocols.js';
import { formatHostMask, parseHostMask, parsePortX, type HostMask } from '../hostmask.js';

/** IP_VS_CONN_F_* forwarding methods. */
const IPVS_METHOD = { MASQ: 0, GATE: 3, IPIP: 2 } as const;

/** struct xt_ipvs_mtinfo, decoded. */
interface IpvsData {
  /** --ipvs given (or implied by another option) and its inversion. */
  ipvs: boolean;
  invIpvs: boolean;
  vproto?: { proto: number; invert: boolean };
  vaddr?: HostMask & { invert: boolean };
  vport?: { port: number; invert: boolean };
  /** --vdir */
  vdir?: 'ORIGINAL' | 'REPLY';
  vmethod?: { method: keyof typeof IPVS_METHOD; invert: boolean };
  vportctl?: { port: number; invert: boolean };
  /** Options other than --ipvs were given (XT_IPVS_ONCE_MASK). */
  others: boolean;
}

export const ipvs: MatchModule<IpvsData> = {
  kind: 'match',
  name: 'ipvs',
  options: [
    { name: 'ipvs', arg: 0, invert: true },
    { name: 'vproto', arg: 1, invert: true },
    { name: 'vaddr', arg: 1, invert: true },
    { name: 'vport', arg: 1, invert: true },
    { name: 'vdir', arg: 1 },
    { name: 'vmethod', arg: 1, invert: true },
    { name: 'vportctl', arg: 1, invert: true },
  ],
  init: () => ({ ipvs: false, invIpvs: false, others: false }),
  parse(d, opt, arg, invert, ctx) {
    const a = arg!;
    if (opt !== 'ipvs') d.others = true;
    switch (opt) {
      case 'ipvs':
        d.ipvs = true;
        d.invIpvs = invert;
        return;
      case 'vproto':
        d.vproto = { proto: parseProtocol(a), invert };
        return;
      case 'vaddr':
        d.vaddr = { ...parseHostMask(ctx.family, a, 'ipvs', opt), invert };
        return;
      case 'vport':
        d.vport = { port: parsePortX(a), invert };
        return;
      case 'vdir': {
        const u = a.toUpperCase();
        if (u !== 'ORIGINAL' && u !== 'REPLY') fail(`ipvs: Bad value for "--vdir" option: "${a}"`);
        d.vdir = u;
        return;
      }
      case 'vmethod': {
        const u = a.toUpperCase();
        if (u !== 'GATE' && u !== 'IPIP' && u !== 'MASQ') fail(`ipvs: Bad value for "--vmethod" option: "${a}"`);
        d.vmethod = { method: u, invert };
        return;
      }
      case 'vportctl':
        d.vportctl = { port: parsePortX(a), invert };
        return;
    }
  },
  final(d, seen) {
    if (seen.size === 0) fail('IPVS: At least one option is required', 'option');
    if (d.others) {
      if (d.invIpvs) fail('! --ipvs cannot be together with other options', 'option');
      d.ipvs = true;
    }
  },
  save(d, ctx) {
    const inv = (b: boolean) => (b ? ' !' : '');
    let s = '';
    if (!d.others) s += `${inv(d.invIpvs)} --ipvs`;
    if (d.vproto) s += `${inv(d.vproto.invert)} --vproto ${d.vproto.proto}`;
    if (d.vaddr) s += `${inv(d.vaddr.invert)} --vaddr ${formatHostMask(ctx.family, d.vaddr)}`;
    if (d.vport) s += `${inv(d.vport.invert)} --vport ${d.vport.port}`;
    if (d.vdir) s += ` --vdir ${d.vdir}`;
    if (d.vmethod) s += `${inv(d.vmethod.invert)} --vmethod ${d.vmethod.method}`;
    if (d.vportctl) s += `${inv(d.vportctl.invert)} --vportctl ${d.vportctl.port}`;
    return s;
  },
  lower: 'needs the IPVS connection table (nfvm does not model IPVS)',
  reference: 'needs the IPVS connection table (nfvm does not model IPVS)',
};

