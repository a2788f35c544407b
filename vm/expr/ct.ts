/**
 * ct (net/netfilter/nft_ct.c): conntrack metadata of the packet (the M_CT_*
 * words of the metadata record, filled by the conntrack model) into a
 * register, or a register into the ct mark.
 *
 * Op.CT_GET record: [op, dreg, key]   key: NFT_CT_STATE, DIRECTION, STATUS, MARK
 * Op.CT_SET record: [op, sreg, key]   key: NFT_CT_MARK
 *
 * `state` is defined without a conntrack (NF_CT_STATE_INVALID_BIT); every
 * other key BREAKs when the packet has none (M_CT_DIR = -1), and a set is a
 * no-op then. Loads store a host-order u32 (direction: 1 byte in a zeroed word).
 */
import { Op } from '../opcodes.js';
import { M_CT_DIR, M_CT_MARK, M_CT_STATE, M_CT_STATUS, NFT_BREAK, NFT_CONTINUE, checkRegLoad, checkRegStore, regSlot } from '../layout.js';
import type { NftRegs, Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { fmtReg, type EvalCtx } from './common.js';
import { NF_CT_STATE_INVALID_BIT, NF_CT_STATE_UNTRACKED_BIT, IPS_SRC_NAT, IPS_DST_NAT } from '../../core/netfilter.js';

export const NFT_CT_STATE = 0;
export const NFT_CT_DIRECTION = 1;
export const NFT_CT_STATUS = 2;
export const NFT_CT_MARK = 3;
/**
 * Not a kernel key: x_tables' conntrack state word (xt_conntrack.c
 * conntrack_mt), the ctinfo bit or INVALID (1) / UNTRACKED (1 << 8) without a
 * conntrack, plus the virtual SNAT (1 << 6) and DNAT (1 << 7) bits from
 * IPS_SRC_NAT / IPS_DST_NAT. nft has no way to OR a status test into a state
 * test within one rule, so `--ctstate SNAT|DNAT` loads this word instead.
 */
export const NFT_CT_XT_STATE = 255;
const CT_KEY_NAMES = ['state', 'direction', 'status', 'mark'];
const XT_STATE_UNTRACKED = 1 << 8;
const XT_STATE_SNAT = 1 << 6;
const XT_STATE_DNAT = 1 << 7;

const CT_REG = 1;
const CT_KEY = 2;

export function emitCtGet(b: Emitter, dreg: number, key: number): void {
  b.emit([Op.CT_GET, regSlot(dreg), key]);
}

export function emitCtSet(b: Emitter, key: number, sreg: number): void {
  b.emit([Op.CT_SET, regSlot(sreg), key]);
}

export function validateCt(_prog: Program, code: Int32Array, pc: number): string | null {
  const key = code[pc + CT_KEY]!;
  const reg = code[pc + CT_REG]!;
  if (code[pc] === Op.CT_SET) {
    if (key !== NFT_CT_MARK) return `ct: key ${key} cannot be set (-EOPNOTSUPP)`;
    const r = checkRegLoad(reg, 4);
    return r ? `ct: ${r}` : null;
  }
  if ((key < NFT_CT_STATE || key > NFT_CT_MARK) && key !== NFT_CT_XT_STATE) return `ct: key ${key} not modelled (-EOPNOTSUPP)`;
  const r = checkRegStore(reg, key === NFT_CT_DIRECTION ? 1 : 4);
  return r ? `ct: ${r}` : null;
}

export function disasmCt(_prog: Program, code: Int32Array, pc: number): string {
  const key = code[pc + CT_KEY]!;
  const name = key === NFT_CT_XT_STATE ? 'xt_state' : (CT_KEY_NAMES[key] ?? 'unknown');
  const reg = fmtReg(code[pc + CT_REG]!);
  return code[pc] === Op.CT_GET ? `load ${name} => reg ${reg} ` : `set ${name} with reg ${reg} `;
}

/** nft_ct_get_eval() / nft_ct_set_eval(): NFT_CONTINUE or NFT_BREAK. */
export function execCt(code: Int32Array, pc: number, pkt: Packet, regs: NftRegs): number {
  const m = pkt.meta;
  const reg = code[pc + CT_REG]!;
  const key = code[pc + CT_KEY]!;
  const noCt = m[M_CT_DIR] === -1;
  if (code[pc] === Op.CT_SET) {
    if (!noCt) m[M_CT_MARK] = regs.r32[reg]!;
    return NFT_CONTINUE;
  }
  const r32 = regs.r32;
  switch (key) {
    case NFT_CT_STATE: {
      const s = m[M_CT_STATE]!;
      r32[reg] = s !== 0 ? s : noCt ? NF_CT_STATE_INVALID_BIT : 0;
      return NFT_CONTINUE;
    }
    case NFT_CT_XT_STATE: {
      const s = m[M_CT_STATE]!;
      let w: number;
      if (noCt) w = s & NF_CT_STATE_UNTRACKED_BIT ? XT_STATE_UNTRACKED : NF_CT_STATE_INVALID_BIT;
      else {
        w = s & 0x0e;
        const st = m[M_CT_STATUS]!;
        if (st & IPS_SRC_NAT) w |= XT_STATE_SNAT;
        if (st & IPS_DST_NAT) w |= XT_STATE_DNAT;
      }
      r32[reg] = w;
      return NFT_CONTINUE;
    }
    case NFT_CT_DIRECTION:
      if (noCt) return NFT_BREAK;
      r32[reg] = m[M_CT_DIR]! & 0xff;
      return NFT_CONTINUE;
    case NFT_CT_STATUS:
      if (noCt) return NFT_BREAK;
      r32[reg] = m[M_CT_STATUS]!;
      return NFT_CONTINUE;
    default:
      if (noCt) return NFT_BREAK;
      r32[reg] = m[M_CT_MARK]!;
      return NFT_CONTINUE;
  }
}

export function evalCt(ctx: EvalCtx, pc: number): void {
  if (execCt(ctx.prog.code, pc, ctx.pkt, ctx.regs) === NFT_BREAK) ctx.code = NFT_BREAK;
}
