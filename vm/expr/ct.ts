/**
 * ct (net/netfilter/nft_ct.c): conntrack data of the packet into a register,
 * or a register into the conntrack (its mark, or the CT target's template).
 *
 * Op.CT_GET record: [op, dreg, key, dir]
 * Op.CT_SET record: [op, sreg, key, dir]
 *   key  NFT_CT_* (below); dir the tuple direction (IP_CT_DIR_*) of the keys
 *        that read a tuple (PROTO_SRC/DST, SRC_IP/DST_IP, SRC_IP6/DST_IP6), else 0
 *
 * The packet's own conntrack fields are its metadata words (M_CT_STATE,
 * M_CT_DIR, M_CT_STATUS, M_CT_MARK, M_CT_ID, filled by the node's
 * conntrack); the tuples, the expiry and the master's helper are read from
 * the conntrack table through VmEnv.ct (vm/ct-env.ts; an empty table
 * without one). `state` is defined without a conntrack (INVALID or
 * UNTRACKED); every other key BREAKs when the packet has none (M_CT_DIR
 * -1), and a set is a no-op then. A template (M_CT_ID <= -2) reads as a
 * conntrack with zero tuples. Loads store host-order u32 values; addresses
 * and ports in network order, as nft_ct_get_eval copies them.
 */
import { Op } from '../opcodes.js';
import { M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS, NFT_BREAK, NFT_CONTINUE, checkRegLoad, checkRegStore, regSlot } from '../layout.js';
import type { NftRegs, Program, VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { fmtReg, type EvalCtx } from './common.js';
import { CT_T_DST, CT_T_PORTS, CT_T_PROTO, CT_T_SRC, ctTargetMeta } from '../ct-env.js';
import { NF_CT_STATE_INVALID_BIT, NF_CT_STATE_UNTRACKED_BIT, IPS_SRC_NAT, IPS_DST_NAT, IP_CT_DIR_ORIGINAL } from '../../core/netfilter.js';

// enum nft_ct_keys (include/uapi/linux/netfilter/nf_tables.h)
export const NFT_CT_STATE = 0;
export const NFT_CT_DIRECTION = 1;
export const NFT_CT_STATUS = 2;
export const NFT_CT_MARK = 3;
export const NFT_CT_PROTOCOL = 10;
export const NFT_CT_PROTO_SRC = 11;
export const NFT_CT_PROTO_DST = 12;
export const NFT_CT_SRC_IP = 19;
export const NFT_CT_DST_IP = 20;
export const NFT_CT_SRC_IP6 = 21;
export const NFT_CT_DST_IP6 = 22;
/**
 * Not kernel keys: what x_tables reads and nft has no key for.
 * XT_STATE: x_tables' conntrack state word (xt_conntrack.c conntrack_mt),
 * the ctinfo bit or INVALID (1) / UNTRACKED (1 << 8) without a conntrack,
 * plus the virtual SNAT (1 << 6) and DNAT (1 << 7) bits from IPS_SRC_NAT /
 * IPS_DST_NAT: nft has no way to OR a status test into a state test within
 * one rule, so `--ctstate SNAT|DNAT` loads this word instead.
 * XT_EXPIRES: nf_ct_expires(ct) / HZ, the whole seconds `--ctexpire`
 * compares (nft's `ct expiration` is milliseconds).
 * XT_MASTER_HELPER: the helper of the conntrack's master (xt_helper.c), as
 * a vm/ct-env.ts CT_HELPERS index.
 * XT_TEMPLATE (set only): the CT target (xt_CT.c), the register holding a
 * CT_TMPL_* word.
 */
export const NFT_CT_XT_STATE = 255;
export const NFT_CT_XT_EXPIRES = 254;
export const NFT_CT_XT_MASTER_HELPER = 253;
export const NFT_CT_XT_TEMPLATE = 252;
const XT_STATE_UNTRACKED = 1 << 8;
const XT_STATE_SNAT = 1 << 6;
const XT_STATE_DNAT = 1 << 7;

/** Record words. */
export const CT_REG = 1;
export const CT_KEY = 2;
const CT_DIR = 3;

/** Bytes a key loads (0: not a load key). */
function keyLen(key: number): number {
  switch (key) {
    case NFT_CT_DIRECTION:
    case NFT_CT_PROTOCOL:
      return 1;
    case NFT_CT_PROTO_SRC:
    case NFT_CT_PROTO_DST:
      return 2;
    case NFT_CT_SRC_IP6:
    case NFT_CT_DST_IP6:
      return 16;
    case NFT_CT_STATE:
    case NFT_CT_STATUS:
    case NFT_CT_MARK:
    case NFT_CT_SRC_IP:
    case NFT_CT_DST_IP:
    case NFT_CT_XT_STATE:
    case NFT_CT_XT_EXPIRES:
    case NFT_CT_XT_MASTER_HELPER:
      return 4;
    default:
      return 0;
  }
}

/** Whether the key reads a tuple of a direction (NFTA_CT_DIRECTION). */
function hasDir(key: number): boolean {
  return key === NFT_CT_PROTO_SRC || key === NFT_CT_PROTO_DST || (key >= NFT_CT_SRC_IP && key <= NFT_CT_DST_IP6);
}

const KEY_NAMES: ReadonlyMap<number, string> = new Map([
  [NFT_CT_STATE, 'state'], [NFT_CT_DIRECTION, 'direction'], [NFT_CT_STATUS, 'status'], [NFT_CT_MARK, 'mark'], [NFT_CT_PROTOCOL, 'protocol'],
  [NFT_CT_PROTO_SRC, 'proto_src'], [NFT_CT_PROTO_DST, 'proto_dst'], [NFT_CT_SRC_IP, 'src_ip'], [NFT_CT_DST_IP, 'dst_ip'],
  [NFT_CT_SRC_IP6, 'src_ip6'], [NFT_CT_DST_IP6, 'dst_ip6'], [NFT_CT_XT_STATE, 'xt_state'], [NFT_CT_XT_EXPIRES, 'xt_expires'],
  [NFT_CT_XT_MASTER_HELPER, 'xt_master_helper'], [NFT_CT_XT_TEMPLATE, 'xt_template'],
]);

export function emitCtGet(b: Emitter, dreg: number, key: number, dir = 0): void {
  b.emit([Op.CT_GET, regSlot(dreg), key, dir]);
}

export function emitCtSet(b: Emitter, key: number, sreg: number): void {
  b.emit([Op.CT_SET, regSlot(sreg), key, 0]);
}

export function validateCt(_prog: Program, code: Int32Array, pc: number): string | null {
  const key = code[pc + CT_KEY]!;
  const reg = code[pc + CT_REG]!;
  const dir = code[pc + CT_DIR]!;
  if (code[pc] === Op.CT_SET) {
    if (key !== NFT_CT_MARK && key !== NFT_CT_XT_TEMPLATE) return `ct: key ${key} cannot be set (-EOPNOTSUPP)`;
    if (dir !== 0) return 'ct: a direction on a set (-EINVAL)';
    const r = checkRegLoad(reg, 4);
    return r ? `ct: ${r}` : null;
  }
  const len = keyLen(key);
  if (len === 0) return `ct: key ${key} not modelled (-EOPNOTSUPP)`;
  if (dir !== 0 && (dir !== 1 || !hasDir(key))) return `ct: direction ${dir} on key ${key} (-EINVAL)`;
  const r = checkRegStore(reg, len);
  return r ? `ct: ${r}` : null;
}

export function disasmCt(_prog: Program, code: Int32Array, pc: number): string {
  const key = code[pc + CT_KEY]!;
  const name = KEY_NAMES.get(key) ?? 'unknown';
  const reg = fmtReg(code[pc + CT_REG]!);
  if (code[pc] === Op.CT_SET) return `set ${name} with reg ${reg} `;
  return hasDir(key) ? `load ${name} => reg ${reg} , dir ${code[pc + CT_DIR] === IP_CT_DIR_ORIGINAL ? 'original' : 'reply'} ` : `load ${name} => reg ${reg} `;
}

/** A host-order word's bytes in network order at register byte `o`. */
function storeBe32(r8: Uint8Array, o: number, w: number): void {
  r8[o] = w >>> 24;
  r8[o + 1] = (w >>> 16) & 0xff;
  r8[o + 2] = (w >>> 8) & 0xff;
  r8[o + 3] = w & 0xff;
}

/** The `ct state` word of the packet's metadata (nft_ct_get_eval NFT_CT_STATE): INVALID without a conntrack. */
export function ctStateWord(m: Int32Array): number {
  const s = m[M_CT_STATE]!;
  return s !== 0 ? s : m[M_CT_DIR] === -1 ? NF_CT_STATE_INVALID_BIT : 0;
}

/** The xt_conntrack/xt_state state word (NFT_CT_XT_STATE): ctinfo bits with SNAT/DNAT, or INVALID/UNTRACKED without a conntrack. */
export function ctXtStateWord(m: Int32Array): number {
  const s = m[M_CT_STATE]!;
  if (m[M_CT_DIR] === -1) return s & NF_CT_STATE_UNTRACKED_BIT ? XT_STATE_UNTRACKED : NF_CT_STATE_INVALID_BIT;
  let w = s & 0x0e;
  const st = m[M_CT_STATUS]!;
  if (st & IPS_SRC_NAT) w |= XT_STATE_SNAT;
  if (st & IPS_DST_NAT) w |= XT_STATE_DNAT;
  return w;
}

/** nft_ct_get_eval() / nft_ct_set_eval(): NFT_CONTINUE or NFT_BREAK. */
export function execCt(code: Int32Array, pc: number, pkt: Packet, regs: NftRegs, env: VmEnv): number {
  const m = pkt.meta;
  const reg = code[pc + CT_REG]!;
  const key = code[pc + CT_KEY]!;
  const noCt = m[M_CT_DIR] === -1;
  const r32 = regs.r32;
  if (code[pc] === Op.CT_SET) {
    if (key === NFT_CT_XT_TEMPLATE) {
      if (env.ct !== null) env.ct.ctTarget(pkt, r32[reg]!);
      else ctTargetMeta(m, r32[reg]!);
    } else if (!noCt) m[M_CT_MARK] = r32[reg]!;
    return NFT_CONTINUE;
  }
  switch (key) {
    case NFT_CT_STATE:
      r32[reg] = ctStateWord(m);
      return NFT_CONTINUE;
    case NFT_CT_XT_STATE:
      r32[reg] = ctXtStateWord(m);
      return NFT_CONTINUE;
    default:
  }
  if (noCt) return NFT_BREAK;
  const id = m[M_CT_ID]!;
  const t = env.ct;
  switch (key) {
    case NFT_CT_DIRECTION:
      r32[reg] = m[M_CT_DIR]! & 0xff;
      return NFT_CONTINUE;
    case NFT_CT_STATUS:
      r32[reg] = m[M_CT_STATUS]!;
      return NFT_CONTINUE;
    case NFT_CT_MARK:
      r32[reg] = m[M_CT_MARK]!;
      return NFT_CONTINUE;
    case NFT_CT_XT_EXPIRES:
      r32[reg] = id >= 0 && t !== null ? t.expiresSec(id) : 0;
      return NFT_CONTINUE;
    case NFT_CT_XT_MASTER_HELPER:
      r32[reg] = id >= 0 && t !== null ? t.masterHelper(id) : 0;
      return NFT_CONTINUE;
    case NFT_CT_PROTOCOL:
      r32[reg] = id >= 0 && t !== null ? t.tupleWord(id, IP_CT_DIR_ORIGINAL, CT_T_PROTO) & 0xff : 0;
      return NFT_CONTINUE;
    default:
  }
  const dir = code[pc + CT_DIR]!;
  const has = id >= 0 && t !== null;
  if (key === NFT_CT_PROTO_SRC || key === NFT_CT_PROTO_DST) {
    const ports = has ? t.tupleWord(id, dir, CT_T_PORTS) : 0;
    const p = key === NFT_CT_PROTO_SRC ? ports >>> 16 : ports & 0xffff;
    r32[reg] = 0;
    regs.r8[reg << 2] = p >>> 8;
    regs.r8[(reg << 2) + 1] = p & 0xff;
    return NFT_CONTINUE;
  }
  const base = key === NFT_CT_SRC_IP || key === NFT_CT_SRC_IP6 ? CT_T_SRC : CT_T_DST;
  const words = key === NFT_CT_SRC_IP || key === NFT_CT_DST_IP ? 1 : 4;
  for (let i = 0; i < words; i++) storeBe32(regs.r8, (reg + i) << 2, has ? t.tupleWord(id, dir, base + i) : 0);
  return NFT_CONTINUE;
}

export function evalCt(ctx: EvalCtx, pc: number): void {
  if (execCt(ctx.prog.code, pc, ctx.pkt, ctx.regs, ctx.env) === NFT_BREAK) ctx.code = NFT_BREAK;
}
