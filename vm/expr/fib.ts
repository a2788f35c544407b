/**
 * fib (net/netfilter/nft_fib.c, `fib saddr|daddr type`), reduced to what
 * xt_addrtype needs: the route type (RTN_*) of the packet's source or
 * destination address as inet_addr_type() / the IPv6 equivalent would give
 * it on the modelled node. The node's addresses come from EngineOptions at
 * compile time, as two sets of the Program (local, broadcast).
 *
 * Record: [op, dreg, flags, local set, broadcast set, lo]
 *   +1 dreg   destination register slot (u32, host order)
 *   +2 flags  NFTA_FIB_F_SADDR (1) or NFTA_FIB_F_DADDR (2), IPv4 also with
 *             NFTA_FIB_F_IIF (8) or NFTA_FIB_F_OIF (16): `fib daddr . iif type`
 *   +3 local  index of the set of local addresses (4 or 16-byte keys), -1 = none
 *   +4 bcast  index of the set of broadcast addresses, -1 = none
 *   +5 lo     1 when the node has the `local 127.0.0.0/8 dev lo` route (a
 *             127/8 address is local), else 0
 *
 * Classification (IPv4): multicast 224/4 → MULTICAST; 0.0.0.0 or
 * 255.255.255.255 → BROADCAST; a local address, or 127/8 with `lo` set →
 * LOCAL; a broadcast address → BROADCAST; anything else UNICAST (without
 * the 127/8 route, inet_addr_type() finds nothing in the local table for
 * 127.0.0.1 and answers RTN_UNICAST). With NFTA_FIB_F_IIF / NFTA_FIB_F_OIF
 * (nft_fib4_eval_type: dev = nft_in(pkt) / nft_out(pkt)) the type is
 * inet_dev_addr_type(net, dev, addr), asked of the node's FIB (VmEnv.fib):
 * a local-table route counts only when its first nexthop is that device;
 * without a device (ifindex 0) the sets answer as above, and an engine
 * without a node knows no route of any device (RTN_UNICAST past the fixed
 * BROADCAST / MULTICAST addresses). IPv6: ff00::/8 → MULTICAST; a local
 * address (::1 when lo has it) → LOCAL; :: → UNSPEC; else UNICAST. Routes
 * (UNREACHABLE, BLACKHOLE, PROHIBIT, ...) are not modelled.
 */
import { Op } from '../opcodes.js';
import { M_END, M_IIF, M_NFPROTO, M_NHOFF, M_OIF, NFT_BREAK, NFT_CONTINUE, checkRegStore, regSlot } from '../layout.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import type { NftRegs, Program, VmEnv, VmFib } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { fmtReg, type EvalCtx } from './common.js';

export const NFTA_FIB_F_SADDR = 1;
export const NFTA_FIB_F_DADDR = 2;
export const NFTA_FIB_F_IIF = 8;
export const NFTA_FIB_F_OIF = 16;
const NFTA_FIB_F_ADDR = NFTA_FIB_F_SADDR | NFTA_FIB_F_DADDR;
const NFTA_FIB_F_DEV = NFTA_FIB_F_IIF | NFTA_FIB_F_OIF;
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_MULTICAST = 5;

const FIB_DREG = 1;
const FIB_FLAGS = 2;
const FIB_LOCAL = 3;
const FIB_BCAST = 4;
const FIB_LO = 5;

/**
 * Emits `fib saddr|daddr type => reg dreg` against sets added with
 * ProgramBuilder.addSet() (names or undefined); `loopback`: the node has
 * the local 127.0.0.0/8 route.
 */
export function emitFib(b: Emitter, dreg: number, flags: number, localSet?: string, bcastSet?: string, loopback = false): void {
  b.emit([Op.FIB, regSlot(dreg), flags, localSet ? b.setIndex(localSet) : -1, bcastSet ? b.setIndex(bcastSet) : -1, loopback ? 1 : 0]);
}

export function validateFib(prog: Program, code: Int32Array, pc: number): string | null {
  const flags = code[pc + FIB_FLAGS]!;
  const addr = flags & NFTA_FIB_F_ADDR;
  const dev = flags & NFTA_FIB_F_DEV;
  if ((flags & ~(NFTA_FIB_F_ADDR | NFTA_FIB_F_DEV)) !== 0 || (addr !== NFTA_FIB_F_SADDR && addr !== NFTA_FIB_F_DADDR) || dev === NFTA_FIB_F_DEV) return `fib: flags ${flags} (-EINVAL)`;
  if (dev !== 0 && prog.family === NFPROTO_IPV6) return `fib: flags ${flags} (an IPv6 device-restricted type is not modelled)`;
  const lo = code[pc + FIB_LO]!;
  if (lo !== 0 && lo !== 1) return `fib: lo ${lo} (0 or 1)`;
  for (const at of [FIB_LOCAL, FIB_BCAST]) {
    const s = code[pc + at]!;
    if (s !== -1 && (s < 0 || s >= prog.sets.length || (prog.sets[s]!.keyLen !== 4 && prog.sets[s]!.keyLen !== 16))) return `fib: set ${s} out of range`;
  }
  const r = checkRegStore(code[pc + FIB_DREG]!, 4);
  return r ? `fib: ${r}` : null;
}

export function disasmFib(_prog: Program, code: Int32Array, pc: number): string {
  const flags = code[pc + FIB_FLAGS]!;
  const dev = flags & NFTA_FIB_F_IIF ? ' . iif' : flags & NFTA_FIB_F_OIF ? ' . oif' : '';
  return `${flags & NFTA_FIB_F_SADDR ? 'saddr' : 'daddr'}${dev} type => reg ${fmtReg(code[pc + FIB_DREG]!)} `;
}

const scratch = new Uint8Array(80);
const scratch32 = new Int32Array(scratch.buffer);

/** The RTN_* type of the address at `at` (4 or 16 bytes), or -1 when it cannot be read. */
export function addrType(prog: Program, code: Int32Array, pc: number, data: Uint8Array, at: number, alen: number): number {
  for (let i = 0; i < alen; i++) scratch[i] = data[at + i]!;
  for (let i = alen; i < 16; i++) scratch[i] = 0;
  const local = code[pc + FIB_LOCAL]!;
  const bcast = code[pc + FIB_BCAST]!;
  const inSet = (s: number): boolean => s >= 0 && prog.sets[s]!.keyLen === alen && prog.sets[s]!.lookup(scratch, scratch32, 0);
  if (alen === 4) {
    const a0 = scratch[0]!;
    if ((a0 & 0xf0) === 0xe0) return RTN_MULTICAST;
    const all0 = (scratch[0]! | scratch[1]! | scratch[2]! | scratch[3]!) === 0;
    const all1 = (scratch[0]! & scratch[1]! & scratch[2]! & scratch[3]!) === 0xff;
    if (all0 || all1) return RTN_BROADCAST;
    // host routes before the 127/8 one (127.255.255.255 is lo's broadcast route)
    if (inSet(local)) return RTN_LOCAL;
    if (inSet(bcast)) return RTN_BROADCAST;
    if (a0 === 127 && code[pc + FIB_LO] === 1) return RTN_LOCAL;
    return RTN_UNICAST;
  }
  if (scratch[0] === 0xff) return RTN_MULTICAST;
  let zero = true;
  for (let i = 0; i < 15; i++) if (scratch[i] !== 0) zero = false;
  if (zero && scratch[15] === 0) return RTN_UNSPEC;
  if (inSet(local)) return RTN_LOCAL;
  return RTN_UNICAST;
}

/** The IPv4 address at d[at], host order. */
function addrWord(d: Uint8Array, at: number): number {
  return ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
}

/**
 * inet_dev_addr_type(net, dev, addr) of IPv4 address `addr` (host order)
 * for device `ifindex` (0: none): the node's FIB's answer; without a node no
 * route of the device is known (RTN_UNICAST past the fixed addresses).
 */
export function inetDevAddrTypeOf(fib: VmFib | null, addr: number, ifindex: number): number {
  if (fib !== null) return fib.inetDevAddrType(addr, ifindex);
  if (addr === 0 || addr === 0xffffffff) return RTN_BROADCAST;
  return (addr & 0xf0000000) >>> 0 === 0xe0000000 ? RTN_MULTICAST : RTN_UNICAST;
}

export function execFib(prog: Program, code: Int32Array, pc: number, pkt: Packet, regs: NftRegs, env: VmEnv): number {
  const m = pkt.meta;
  const v6 = m[M_NFPROTO] === NFPROTO_IPV6;
  const alen = v6 ? 16 : 4;
  const flags = code[pc + FIB_FLAGS]!;
  const off = m[M_NHOFF]! + (v6 ? (flags & NFTA_FIB_F_SADDR ? 8 : 24) : flags & NFTA_FIB_F_SADDR ? 12 : 16);
  if (off + alen > m[M_END]!) return NFT_BREAK;
  const ifindex = flags & NFTA_FIB_F_IIF ? m[M_IIF]! : flags & NFTA_FIB_F_OIF ? m[M_OIF]! : 0;
  const askFib = !v6 && (ifindex !== 0 || (env.fib !== null && env.fib.localRanges));
  regs.r32[code[pc + FIB_DREG]!] = askFib ? inetDevAddrTypeOf(env.fib, addrWord(pkt.data, off), ifindex) : addrType(prog, code, pc, pkt.data, off, alen);
  return NFT_CONTINUE;
}

export function evalFib(ctx: EvalCtx, pc: number): void {
  if (execFib(ctx.prog, ctx.prog.code, pc, ctx.pkt, ctx.regs, ctx.env) === NFT_BREAK) ctx.code = NFT_BREAK;
}
