/**
 * ipvs match: libxt_ipvs.c, kernel xt_ipvs.c: properties of the IPVS
 * connection a packet belongs to. Any option but `--ipvs` implies `--ipvs`
 * (XT_IPVS_IPVS_PROPERTY), which is then not saved; `! --ipvs` cannot be
 * combined with the others. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { Family } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import type { MatchFn } from '../xt.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { F_IPVS_PROPERTY, M_CT_DIR, M_FLAGS, M_L4PROTO, M_NHOFF, F_L4PROTO } from '../../vm/layout.js';
import { parseProtocol } from '../protocols.js';
import { formatHostMask, hostMaskBytes, parseHostMask, parsePortX, type HostMask } from '../hostmask.js';

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
  // iptables-nft loads xt_ipvs as a compat match (nf_tables has no IPVS expression).
  lower: (c, m) => lowerCompatMatch(c, m, () => ipvsMt(m.data as IpvsData, c.family)),
  reference: (d, family, backend) => asNftCompat(ipvsMt(d, family), backend),
};

/** IP_VS_CONN_F_FWD_MASK */
const FWD_MASK = 0x7;
/** IP_CT_DIR_REPLY */
const DIR_REPLY = 1;

/**
 * ipvs_mt() (net/netfilter/xt_ipvs.c, Linux 6.18). `--ipvs` alone reads
 * skb->ipvs_property (set on the packets IPVS transmitted or un-NATed).
 * Any other option needs the property, then the connection
 * pp->conn_out_get() finds over the headers read inversely (client =
 * source, real server = destination: the request as IPVS sent it); each
 * given property of the connection must hold (or not, inverted). --vdir
 * reads the conntrack's direction: no conntrack, no match.
 */
function ipvsMt(d: IpvsData, family: Family): MatchFn {
  const onlyProperty = !d.others;
  const v4 = family === 'ip';
  // the address's bytes, made once (an IPv4 rule's are made afresh on each read)
  const vaddr = d.vaddr ? hostMaskBytes(d.vaddr) : undefined;
  return (par) => {
    const m = par.meta;
    const prop = (m[M_FLAGS]! & F_IPVS_PROPERTY) !== 0;
    if (onlyProperty) return prop !== d.invIpvs;
    if (!prop) return false;
    // ip_vs_fill_iph_skb(): the transport protocol (IPv6: after the extension headers).
    const proto = m[M_FLAGS]! & F_L4PROTO ? m[M_L4PROTO]! : v4 ? par.d[m[M_NHOFF]! + 9]! : -1;
    if (d.vproto && (proto === d.vproto.proto) === d.vproto.invert) return false;
    const cp = par.env.ipvs?.connOutGetInverse(par.pkt, family === 'ip6' ? 'ip6' : 'ip');
    if (!cp) return false;
    if (d.vport && (cp.vport === d.vport.port) === d.vport.invert) return false;
    if (d.vportctl && (cp.control !== null && cp.control.vport === d.vportctl.port) === d.vportctl.invert) return false;
    if (d.vdir) {
      if (m[M_CT_DIR]! < 0) return false;
      if ((m[M_CT_DIR] === DIR_REPLY) !== (d.vdir === 'REPLY')) return false;
    }
    if (d.vmethod && ((cp.flags & FWD_MASK) === IPVS_METHOD[d.vmethod.method]) === d.vmethod.invert) return false;
    if (d.vaddr) {
      let eq = true;
      for (let i = 0; i < vaddr!.addr.length; i++) if (((cp.vaddr[i]! ^ vaddr!.addr[i]!) & vaddr!.mask[i]!) !== 0) eq = false;
      if (eq === d.vaddr.invert) return false;
    }
    return true;
  };
}

