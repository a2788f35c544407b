/**
 * meta (net/netfilter/nft_meta.c): packet metadata into a register, or a
 * register into packet metadata.
 *
 * Op.META_GET record: [op, dreg, key]   key: NFT_META_*, loaded from the packet's metadata record
 * Op.META_SET record: [op, sreg, key]   key: MARK, PRIORITY, SECMARK, PKTTYPE, NFTRACE
 *
 * Store widths as nft_meta_get_init(): protocol/iiftype/oiftype 2 bytes,
 * names 16, nfproto/l4proto/pkttype 1 byte in a zeroed word, the rest a
 * host-order u32. Keys the model has no data for (rtclassid, cgroup, secpath,
 * bridge, kind, time, sdif) are refused at load (-EOPNOTSUPP).
 */
import { Op } from '../opcodes.js';
import {
  F_L4PROTO, F_NFTRACE, IFNAMSIZ, META_KEY_NAMES, M_CPU, M_FLAGS, M_IIF, M_IIFGROUP, M_IIFNAME, M_IIFTYPE, M_L4PROTO,
  M_LEN, M_MARK, M_NFPROTO, M_NHOFF, M_OIF, M_OIFGROUP, M_OIFNAME, M_OIFTYPE, M_PKTTYPE, M_PRIORITY, M_PROTOCOL,
  M_SECMARK, M_SKGID, M_SKUID, NFT_BREAK, NFT_META_BRI_IIFNAME, NFT_META_BRI_OIFNAME, M_BRIINAME, M_BRIONAME, NFT_META_CPU, NFT_META_IIF, NFT_META_IIFGROUP, NFT_META_IIFNAME,
  NFT_META_IIFTYPE, NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK, NFT_META_NFPROTO, NFT_META_NFTRACE, NFT_META_OIF,
  NFT_META_OIFGROUP, NFT_META_OIFNAME, NFT_META_OIFTYPE, NFT_META_PKTTYPE, NFT_META_PRANDOM, NFT_META_PRIORITY,
  NFT_META_PROTOCOL, NFT_META_SECMARK, NFT_META_SKGID, NFT_META_SKUID, PACKET_BROADCAST, PACKET_LOOPBACK,
  PACKET_MULTICAST, PACKET_OTHERHOST, TRACE_NFTRACE, checkRegLoad, checkRegStore, regSlot, NFT_META_BRI_BROUTE, F_BR_BROUTE,
} from '../layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { prandomU32, traceRecord, type Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';

/** Op.META_GET / Op.META_SET record words. */
export const enum Meta {
  /** dreg (get) or sreg (set) */
  REG = 1,
  KEY = 2,
  SIZE = 3,
}

/** Bytes a meta load of `key` stores, or 0 when the model refuses the key. */
function metaGetLen(key: number): number {
  switch (key) {
    case NFT_META_PROTOCOL:
    case NFT_META_IIFTYPE:
    case NFT_META_OIFTYPE:
      return 2;
    case NFT_META_IIFNAME:
    case NFT_META_OIFNAME:
    case NFT_META_BRI_IIFNAME:
    case NFT_META_BRI_OIFNAME:
      return IFNAMSIZ;
    case NFT_META_LEN:
    case NFT_META_PRIORITY:
    case NFT_META_MARK:
    case NFT_META_IIF:
    case NFT_META_OIF:
    case NFT_META_SKUID:
    case NFT_META_SKGID:
    case NFT_META_SECMARK:
    case NFT_META_NFPROTO:
    case NFT_META_L4PROTO:
    case NFT_META_PKTTYPE:
    case NFT_META_CPU:
    case NFT_META_IIFGROUP:
    case NFT_META_OIFGROUP:
    case NFT_META_PRANDOM:
      return 4;
    default:
      return 0;
  }
}

/** Bytes a meta set of `key` reads, or 0 when the key cannot be set. */
function metaSetLen(key: number): number {
  switch (key) {
    case NFT_META_MARK:
    case NFT_META_PRIORITY:
    case NFT_META_SECMARK:
      return 4;
    case NFT_META_NFTRACE:
    case NFT_META_PKTTYPE:
    case NFT_META_BRI_BROUTE: // nft_meta_bridge_set_init(): a u8
      return 1;
    default:
      return 0;
  }
}

export function emitMetaGet(b: Emitter, dreg: number, key: number): void {
  b.emit([Op.META_GET, regSlot(dreg), key]);
}

export function emitMetaSet(b: Emitter, key: number, sreg: number): void {
  b.emit([Op.META_SET, regSlot(sreg), key]);
}

export function validateMeta(_prog: Program, code: Int32Array, pc: number): string | null {
  const key = code[pc + Meta.KEY]!;
  const reg = code[pc + Meta.REG]!;
  if (code[pc] === Op.META_GET) {
    const len = metaGetLen(key);
    if (len === 0) return `meta: key ${key} cannot be loaded (-EOPNOTSUPP)`;
    const r = checkRegStore(reg, len);
    return r ? `meta: ${r}` : null;
  }
  const len = metaSetLen(key);
  if (len === 0) return `meta: key ${key} cannot be set (-EOPNOTSUPP)`;
  const r = checkRegLoad(reg, len);
  return r ? `meta: ${r}` : null;
}

export function disasmMeta(_prog: Program, code: Int32Array, pc: number): string {
  const name = META_KEY_NAMES[code[pc + Meta.KEY]!] ?? 'unknown';
  const reg = fmtReg(code[pc + Meta.REG]!);
  return code[pc] === Op.META_GET ? `load ${name} => reg ${reg} ` : `set ${name} with reg ${reg} `;
}

/** nft_meta_get_eval_pkttype_lo() for the IP families; -1 = BREAK. */
export function pkttypeLoopback(data: Uint8Array, meta: Int32Array): number {
  const pf = meta[M_NFPROTO]!;
  if (pf === NFPROTO_IPV4) return (data[meta[M_NHOFF]! + 16]! & 0xf0) === 0xe0 ? PACKET_MULTICAST : PACKET_BROADCAST;
  if (pf === NFPROTO_IPV6) return PACKET_MULTICAST;
  return -1;
}

/** nft_meta_get_eval() / nft_meta_set_eval() */
export function evalMeta(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const m = ctx.pkt.meta;
  const r32 = ctx.regs.r32;
  const r8 = ctx.regs.r8;
  const reg = code[pc + Meta.REG]!;
  const key = code[pc + Meta.KEY]!;
  if (code[pc] === Op.META_SET) {
    const v = r32[reg]!;
    switch (key) {
      case NFT_META_MARK: m[M_MARK] = v; break;
      case NFT_META_PRIORITY: m[M_PRIORITY] = v; break;
      case NFT_META_SECMARK: m[M_SECMARK] = v; break;
      case NFT_META_PKTTYPE: {
        const v8 = r8[reg * 4]!;
        const cur = m[M_PKTTYPE]!;
        if (cur !== v8 && v8 <= PACKET_OTHERHOST && cur <= PACKET_OTHERHOST) m[M_PKTTYPE] = v8;
        break;
      }
      // nft_meta_bridge_set_eval(): BR_INPUT_SKB_CB(skb)->br_netfilter_broute = !!value
      case NFT_META_BRI_BROUTE:
        if (r8[reg * 4] !== 0) m[M_FLAGS] |= F_BR_BROUTE;
        else m[M_FLAGS] &= ~F_BR_BROUTE;
        break;
      default: // NFTRACE
        if (r8[reg * 4] !== 0) m[M_FLAGS] |= F_NFTRACE;
        else m[M_FLAGS] &= ~F_NFTRACE;
        traceRecord(ctx.env, TRACE_NFTRACE, ctx.chain, ctx.rule, r8[reg * 4]!, pc);
    }
    return;
  }
  switch (key) {
    case NFT_META_LEN: r32[reg] = m[M_LEN]!; return;
    case NFT_META_PROTOCOL: {
      const p = m[M_PROTOCOL]!;
      r32[reg] = 0;
      r8[reg * 4] = (p >>> 8) & 0xff;
      r8[reg * 4 + 1] = p & 0xff;
      return;
    }
    case NFT_META_NFPROTO: r32[reg] = m[M_NFPROTO]! & 0xff; return;
    case NFT_META_L4PROTO:
      if (!(m[M_FLAGS]! & F_L4PROTO)) break;
      r32[reg] = m[M_L4PROTO]! & 0xff;
      return;
    case NFT_META_PRIORITY: r32[reg] = m[M_PRIORITY]!; return;
    case NFT_META_MARK: r32[reg] = m[M_MARK]!; return;
    case NFT_META_SECMARK: r32[reg] = m[M_SECMARK]!; return;
    case NFT_META_CPU: r32[reg] = m[M_CPU]!; return;
    case NFT_META_IIF: r32[reg] = m[M_IIF]!; return;
    case NFT_META_OIF: r32[reg] = m[M_OIF]!; return;
    // nft_meta_bridge_get_eval(): the bridge of a bridge port, the empty name otherwise
    case NFT_META_BRI_IIFNAME:
    case NFT_META_BRI_OIFNAME:
    case NFT_META_IIFNAME:
    case NFT_META_OIFNAME: {
      const at = (key === NFT_META_IIFNAME ? M_IIFNAME : key === NFT_META_OIFNAME ? M_OIFNAME : key === NFT_META_BRI_IIFNAME ? M_BRIINAME : M_BRIONAME) * 4;
      const mb = ctx.pkt.metaBytes;
      for (let i = 0; i < IFNAMSIZ; i++) r8[reg * 4 + i] = mb[at + i]!;
      return;
    }
    case NFT_META_IIFTYPE:
      if (m[M_IIF] === 0) break;
      r32[reg] = m[M_IIFTYPE]! & 0xffff;
      return;
    case NFT_META_OIFTYPE:
      if (m[M_OIF] === 0) break;
      r32[reg] = m[M_OIFTYPE]! & 0xffff;
      return;
    // 6.18 reads the input device for iifgroup (some older trees read the output device).
    case NFT_META_IIFGROUP:
      if (m[M_IIF] === 0) break;
      r32[reg] = m[M_IIFGROUP]!;
      return;
    case NFT_META_OIFGROUP:
      if (m[M_OIF] === 0) break;
      r32[reg] = m[M_OIFGROUP]!;
      return;
    case NFT_META_SKUID:
      if (m[M_SKUID] === -1) break;
      r32[reg] = m[M_SKUID]!;
      return;
    case NFT_META_SKGID:
      if (m[M_SKGID] === -1) break;
      r32[reg] = m[M_SKGID]!;
      return;
    case NFT_META_PKTTYPE: {
      const t = m[M_PKTTYPE]!;
      const v = t !== PACKET_LOOPBACK ? t : pkttypeLoopback(ctx.pkt.data, m);
      if (v < 0) break;
      r32[reg] = v & 0xff;
      return;
    }
    case NFT_META_PRANDOM: r32[reg] = ctx.env.drawAt === null ? prandomU32(ctx.env) : ctx.env.drawAt(ctx.rule); return;
    default: break;
  }
  ctx.code = NFT_BREAK;
}
