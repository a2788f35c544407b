/**
 * SNPT and DNPT targets (IPv6 only, RFC 6296 prefix translation): iptables
 * `extensions/libip6t_SNPT.c` and `extensions/libip6t_DNPT.c`, kernel
 * `net/ipv6/netfilter/ip6t_NPT.c` (`struct ip6t_npt_tginfo`).
 *
 * Both `--src-pfx ADDR/LEN` and `--dst-pfx ADDR/LEN` are mandatory
 * (XTTYPE_HOSTMASK: a bare address has length 128). Saved as
 * ` --src-pfx ADDR/LEN --dst-pfx ADDR/LEN` (each only when the address is
 * not ::). Kernel: `mangle` table; SNPT from INPUT and POSTROUTING, DNPT
 * from PREROUTING and OUTPUT; prefix lengths at most 64 and no address bits
 * beyond the prefix length.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { formatIPv6, maskToCidr, prefixMask } from '../../core/addr.js';
import { parseHostMask } from '../hostmask.js';

interface NptData {
  /** Source prefix address (16 bytes, unmasked as given). */
  srcPfx: Uint8Array;
  /** Source prefix length. */
  srcPfxLen: number;
  dstPfx: Uint8Array;
  dstPfxLen: number;
}

function npt(name: 'SNPT' | 'DNPT', hooks: number): TargetModule<NptData> {
  return {
    kind: 'target',
    name,
    family: 'ip6',
    tables: ['mangle'],
    hooks,
    options: [
      { name: 'src-pfx', arg: 1 },
      { name: 'dst-pfx', arg: 1 },
    ],
    init: () => ({ srcPfx: new Uint8Array(16), srcPfxLen: 0, dstPfx: new Uint8Array(16), dstPfxLen: 0 }),
    parse(d, opt, arg) {
      const hm = parseHostMask('ip6', arg!, name, opt);
      const len = Math.max(0, maskToCidr(hm.mask));
      if (opt === 'src-pfx') {
        d.srcPfx = hm.addr;
        d.srcPfxLen = len;
      } else {
        d.dstPfx = hm.addr;
        d.dstPfxLen = len;
      }
    },
    final(_d, seen) {
      for (const o of ['src-pfx', 'dst-pfx']) if (!seen.has(o)) fail(`${name}: option "--${o}" must be specified`, 'option');
    },
    save(d) {
      let s = '';
      if (d.srcPfx.some((b) => b !== 0)) s += ` --src-pfx ${formatIPv6(d.srcPfx)}/${d.srcPfxLen}`;
      if (d.dstPfx.some((b) => b !== 0)) s += ` --dst-pfx ${formatIPv6(d.dstPfx)}/${d.dstPfxLen}`;
      return s;
    },
    check(d) {
      if (d.srcPfxLen > 64 || d.dstPfxLen > 64) return `ip6t_NPT: prefix length above 64`;
      for (const [a, l] of [[d.srcPfx, d.srcPfxLen], [d.dstPfx, d.dstPfxLen]] as const) {
        const m = prefixMask(l, 16);
        if (a.some((b, i) => (b & ~m[i]!) !== 0)) return 'ip6t_NPT: prefix has bits set beyond its length';
      }
      return undefined;
    },
    lower: 'needs the prefix rewrite with its checksum-neutral adjustment and the ICMPv6 error it sends on a 0xffff word (ip6t_NPT)',
    reference: 'needs the prefix rewrite with its checksum-neutral adjustment and the ICMPv6 error it sends on a 0xffff word (ip6t_NPT)',
  };
}

export const SNPT = npt('SNPT', (1 << Hook.LOCAL_IN) | (1 << Hook.POST_ROUTING));
export const DNPT = npt('DNPT', (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_OUT));

