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
 *
 * Semantics (net/ipv6/netfilter/ip6t_NPT.c, Linux 6.18): the address's
 * first max(src, dst) prefix bits are replaced by the --dst-pfx bits, and
 * one 16-bit word (word 3 for prefixes up to /48, else the first of words
 * 4-7 that is not 0xffff) gets the checksum-neutral adjustment computed at
 * checkentry (the one's complement difference of the two prefixes), so no
 * transport checksum changes. An address whose words 4-7 are all 0xffff
 * cannot take the adjustment: the kernel answers with an ICMPv6 parameter
 * problem (icmpv6_send, pointer 8 for SNPT's source, 24 for DNPT's
 * destination, quoting the packet with its prefix already replaced) and
 * drops it; the node sends the error (XtEnv.icmp) when the chain returns.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { formatIPv6, maskToCidr, prefixMask } from '../../core/addr.js';
import { parseHostMask } from '../hostmask.js';
import { compatTargetFaces } from '../compat.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { NF_DROP, NFPROTO_IPV6 } from '../../core/netfilter.js';

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
    ...compatTargetFaces((d: NptData) => nptTg(d, name)),
  };
}

export const SNPT = npt('SNPT', (1 << Hook.LOCAL_IN) | (1 << Hook.POST_ROUTING));
export const DNPT = npt('DNPT', (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_OUT));


// --- reference semantics (ip6t_NPT.c ip6t_npt_checkentry / ip6t_npt_map_pfx) -------------

/** csum_add() of two __wsum (u32 with the end-around carry). */
function csumAdd(a: number, b: number): number {
  const r = ((a >>> 0) + (b >>> 0)) >>> 0;
  return (r + (r < b >>> 0 ? 1 : 0)) >>> 0;
}

/** ~csum_fold(sum): the 32-bit sum folded to 16 bits, not complemented. */
function fold(sum: number): number {
  let s = (sum & 0xffff) + (sum >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s & 0xffff;
}

/** s6_addr16[i] as the little-endian host reads it. */
function le16(a: Uint8Array, at: number): number {
  return a[at]! | (a[at + 1]! << 8);
}

const CSUM_MANGLED_0 = 0xffff;
/** ICMPV6_PARAMPROB / ICMPV6_HDR_FIELD, as icmpv6_send is asked. */
const ICMPV6_PARAMPROB = 4;
const ICMPV6_HDR_FIELD = 0;

function nptTg(npt: NptData, name: 'SNPT' | 'DNPT'): TargetFn {
  // ip6t_npt_checkentry(): adjustment = ~csum_fold(csum_sub(src_sum, dst_sum))
  let srcSum = 0;
  let dstSum = 0;
  for (let i = 0; i < 16; i += 2) {
    srcSum = csumAdd(srcSum, le16(npt.srcPfx, i));
    dstSum = csumAdd(dstSum, le16(npt.dstPfx, i));
  }
  const adjustment = fold(csumAdd(srcSum, ~dstSum >>> 0));
  const pfxLen = Math.max(npt.srcPfxLen, npt.dstPfxLen);
  const field = name === 'SNPT' ? 8 : 24;
  const dst = npt.dstPfx;
  return (par) => {
    const d = par.d;
    const at = par.nh + field;
    for (let i = 0; i < pfxLen; i += 32) {
      // the prefix bits of the word from --dst-pfx, the rest kept
      const keep = pfxLen - i >= 32 ? 0 : (1 << (i - pfxLen + 32)) - 1;
      const o = at + i / 8;
      for (let k = 0; k < 4; k++) {
        const mb = (keep >>> (24 - 8 * k)) & 0xff;
        d[o + k] = (d[o + k]! & mb) | (~mb & dst[i / 8 + k]!);
      }
    }
    let idx: number;
    if (pfxLen <= 48) idx = 3;
    else {
      for (idx = 4; idx < 8; idx++) if (le16(d, at + 2 * idx) !== CSUM_MANGLED_0) break;
      if (idx === 8) {
        if (par.env.recording) {
          par.env.actions.push({ kind: 'EFFECT', chain: par.chain, rule: par.rule, target: name, what: `icmpv6_send(ICMPV6_PARAMPROB ${ICMPV6_PARAMPROB}, ICMPV6_HDR_FIELD, pointer ${field}): the address cannot take the adjustment` });
        }
        par.env.icmp?.icmpSend(NFPROTO_IPV6, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, field);
        return NF_DROP;
      }
    }
    let sum = fold(csumAdd(le16(d, at + 2 * idx), adjustment));
    if (sum === CSUM_MANGLED_0) sum = 0;
    d[at + 2 * idx] = sum & 0xff;
    d[at + 2 * idx + 1] = sum >>> 8;
    return XT_CONTINUE;
  };
}
