/**
 * The IP part of a rule (struct ipt_entry / ip6t_entry), in iptables-nft
 * 1.8.9's order (nft_ipv4_add / nft_ipv6_add): -i, -o, -p, -s, -d, -f.
 *  - interfaces: `meta load iifname|oifname`, then a compare of the name
 *    with its NUL (exact) or of the prefix before `+`; a bare `+` loads
 *    and compares nothing (the nft backend keeps iptables-nft's lone load);
 *  - protocol: `meta load l4proto` + cmp; 0 (all) emits nothing;
 *  - addresses (add_addr): a whole-byte prefix loads only those bytes;
 *    any other mask loads the address, masks it with a bitwise, compares;
 *  - `-f`: 2 bytes at network+6, & htons(0x1fff), cmp neq|eq 0.
 */
import {
  NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_IIFNAME, NFT_META_L4PROTO, NFT_META_OIFNAME, NFT_PAYLOAD_NETWORK_HEADER,
} from '../../vm/layout.js';
import { emitBitwise, emitCmp, emitMetaGet, emitPayload, emitXtMatchNoProto } from '../../vm/expr/index.js';
import type { AddrMask, Rule } from '../../core/ast.js';
import type { LowerCtx } from '../../ext/lower.js';

function lowerIface(c: LowerCtx, key: number, name: string, invert: boolean): void {
  if (name === '') return;
  const prefix = name.endsWith('+');
  const text = prefix ? name.slice(0, -1) : name;
  if (prefix && text === '' && invert) {
    // `! -i +`: x_tables compares nothing and inverts, so the rule never
    // matches; iptables-nft compares the name with an impossible one
    c.withReg(16, (r) => {
      emitMetaGet(c.b, r, key);
      emitCmp(c.b, NFT_CMP_EQ, r, [...'INVAL/D'].map((ch) => ch.charCodeAt(0)).concat(0));
    });
    return;
  }
  if (prefix && text === '' && c.legacy) return;
  const bytes = [...text].map((ch) => ch.charCodeAt(0) & 0xff);
  if (!prefix) bytes.push(0);
  c.withReg(16, (r) => {
    emitMetaGet(c.b, r, key);
    if (bytes.length) emitCmp(c.b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, bytes);
  });
}

/** Prefix length of a contiguous mask, or -1. */
function prefixLen(mask: Uint8Array): number {
  let n = 0;
  let i = 0;
  for (; i < mask.length && mask[i] === 0xff; i++) n += 8;
  if (i < mask.length) {
    const m = mask[i]!;
    let bits = 0;
    while (bits < 8 && m & (0x80 >> bits)) bits++;
    if (((0xff00 >> bits) & 0xff) !== m) return -1;
    n += bits;
    for (i++; i < mask.length; i++) if (mask[i] !== 0) return -1;
  }
  return n;
}

/** The compare data of an address (its bytes under the mask): one buffer per length, reused (emitCmp copies what it keeps). */
const CMP_DATA: readonly Uint8Array[] = Array.from({ length: 17 }, (_, n) => new Uint8Array(n));
const ZEROS: readonly Uint8Array[] = Array.from({ length: 17 }, (_, n) => new Uint8Array(n));

function lowerAddr(c: LowerCtx, offset: number, am: AddrMask, invert: boolean): void {
  // the mask's length: the address's bytes may be made on each read (compiler/parse's compact addresses)
  const mask = am.mask;
  const len = mask.length;
  const plen = prefixLen(mask);
  if (plen === 0 && !invert) return;
  const b = c.b;
  const r = b.getRegister(len);
  if (plen === 0) {
    // `! -s 0.0.0.0/0`: every address is inside /0, so the inverted test never holds
    emitPayload(b, r, NFT_PAYLOAD_NETWORK_HEADER, offset, len);
    emitBitwise(b, r, r, ZEROS[len]!, ZEROS[len]!);
    emitCmp(b, NFT_CMP_NEQ, r, ZEROS[len]!);
  } else if (plen > 0 && plen % 8 === 0) {
    const n = plen / 8;
    const addr = am.addr;
    const data = CMP_DATA[n]!;
    for (let i = 0; i < n; i++) data[i] = addr[i]!;
    emitPayload(b, r, NFT_PAYLOAD_NETWORK_HEADER, offset, n);
    emitCmp(b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, data);
  } else {
    const addr = am.addr;
    const data = CMP_DATA[len]!;
    for (let i = 0; i < len; i++) data[i] = addr[i]! & mask[i]!;
    emitPayload(b, r, NFT_PAYLOAD_NETWORK_HEADER, offset, len);
    emitBitwise(b, r, r, mask, ZEROS[len]!);
    emitCmp(b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, data);
  }
  b.releaseRegister(len);
}

/** `meta load l4proto` and its compare (one byte, reused like CMP_DATA). */
function lowerProto(c: LowerCtx, proto: number, invert: boolean): void {
  const b = c.b;
  const r = b.getRegister(1);
  emitMetaGet(b, r, NFT_META_L4PROTO);
  const data = CMP_DATA[1]!;
  data[0] = proto;
  emitCmp(b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, data);
  b.releaseRegister(1);
}

export function lowerIpPart(c: LowerCtx, rule: Rule): void {
  lowerIface(c, NFT_META_IIFNAME, rule.iif, rule.invIif);
  lowerIface(c, NFT_META_OIFNAME, rule.oif, rule.invOif);
  // x_tables' ip6_packet_match() tests the addresses and interfaces before it
  // looks for the protocol, and hotdrops when ipv6_find_hdr() finds none.
  const proto = rule.proto;
  const xt6Proto = proto !== 0 && c.legacy && c.v6;
  if (proto !== 0 && !xt6Proto) lowerProto(c, proto, rule.invProto);
  const v6 = c.v6;
  if (rule.src) lowerAddr(c, v6 ? 8 : 12, rule.src, rule.invSrc);
  if (rule.dst) lowerAddr(c, v6 ? 24 : 16, rule.dst, rule.invDst);
  if (xt6Proto) {
    emitXtMatchNoProto(c.b);
    lowerProto(c, proto, rule.invProto);
  }
  if (rule.frag && !c.v6) {
    c.withReg(2, (r) => {
      emitPayload(c.b, r, NFT_PAYLOAD_NETWORK_HEADER, 6, 2);
      emitBitwise(c.b, r, r, [0x1f, 0xff], [0, 0]);
      emitCmp(c.b, rule.invFrag ? NFT_CMP_EQ : NFT_CMP_NEQ, r, [0, 0]);
    });
  }
}
