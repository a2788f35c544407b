/**
 * fib (net/netfilter/nft_fib.c, `fib saddr|daddr type`), reduced to what
 * xt_addrtype needs: the route type (RTN_*) of the packet's source or
 * destination address as inet_addr_type() / the IPv6 equivalent would give
 * it on the modelled node. The node's addresses come from EngineOptions at
 * compile time, as two sets of the Program (local, broadcast).
 *
 * Record: [op, dreg, flags, local set, broadcast set, lo, local dev set, broadcast dev set]
 *   +1 dreg   destination register slot (u32, host order)
 *   +2 flags  NFTA_FIB_F_SADDR (1) or NFTA_FIB_F_DADDR (2), with NFTA_FIB_F_IIF (8)
 *             or NFTA_FIB_F_OIF (16): `fib daddr . iif type`
 *   +3 local  index of the set of local addresses (4 or 16-byte keys), -1 = none
 *   +4 bcast  index of the set of broadcast addresses, -1 = none
 *   +5 lo     1 when the node has the `local 127.0.0.0/8 dev lo` route (a
 *             127/8 address is local), else 0
 *   +6 local dev  with IIF/OIF: the set of (local address, ifindex of its
 *             route's device) keys (address bytes, then the ifindex as 4
 *             host-order bytes), -1 = none
 *   +7 bcast dev  the same for the broadcast addresses
 *
 * Classification (IPv4): multicast 224/4 → MULTICAST; 0.0.0.0 or
 * 255.255.255.255 → BROADCAST; a local address, or 127/8 with `lo` set →
 * LOCAL; a broadcast address → BROADCAST; anything else UNICAST (without
 * the 127/8 route, inet_addr_type() finds nothing in the local table for
 * 127.0.0.1 and answers RTN_UNICAST). With IIF/OIF and a device
 * (inet_dev_addr_type(net, dev, addr), nft_fib4_eval_type): a local or
 * broadcast address keeps its type only when its local-table route goes out
 * that device (127/8: lo, LOOPBACK_IFINDEX), else UNICAST; without a device
 * (ifindex 0) as without the flag. IPv6: ff00::/8 → MULTICAST; a local
 * address (::1 when lo has it) → LOCAL; :: → UNSPEC; else UNICAST. Routes
 * (UNREACHABLE, BLACKHOLE, PROHIBIT, ...) are not modelled, nor IIF/OIF
 * for IPv6 (the validator refuses them).
 */
import { Op } from '../opcodes.js';
import { M_END, M_IIF, M_NFPROTO, M_NHOFF, M_OIF, NFT_BREAK, NFT_CONTINUE, checkRegStore, regSlot } from '../layout.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import type { NftRegs, Program } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { fmtReg, type EvalCtx } from './common.js';

export const NFTA_FIB_F_SADDR = 1;
export const NFTA_FIB_F_DADDR = 2;
export const NFTA_FIB_F_IIF = 8;
export const NFTA_FIB_F_OIF = 16;
/** The ifindex of lo (LOOPBACK_IFINDEX): the device of the `local 127.0.0.0/8` route. */
const LOOPBACK_IFINDEX = 1;
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
const FIB_LOCAL_DEV = 6;
const FIB_BCAST_DEV = 7;

/**
 * Emits `fib saddr|daddr [. iif|oif] type => reg dreg` against sets added
 * with ProgramBuilder.addSet() (names or undefined); `loopback`: the node
 * has the local 127.0.0.0/8 route; with NFTA_FIB_F_IIF or _OIF in `flags`,
 * `localDevSet` and `bcastDevSet` hold (address, ifindex) keys.
 */
export function emitFib(b: Emitter, dreg: number, flags: number, localSet?: string, bcastSet?: string, loopback = false, localDevSet?: string, bcastDevSet?: string): void {
  const idx = (n: string | undefined) => (n ? b.setIndex(n) : -1);
  b.emit([Op.FIB, regSlot(dreg), flags, idx(localSet), idx(bcastSet), loopback ? 1 : 0, idx(localDevSet), idx(bcastDevSet)]);
}

export function validateFib(prog: Program, code: Int32Array, pc: number): string | null {
  const flags = code[pc + FIB_FLAGS]!;
  const addr = flags & (NFTA_FIB_F_SADDR | NFTA_FIB_F_DADDR);
  const dev = flags & (NFTA_FIB_F_IIF | NFTA_FIB_F_OIF);
  if ((addr !== NFTA_FIB_F_SADDR && addr !== NFTA_FIB_F_DADDR) || dev === (NFTA_FIB_F_IIF | NFTA_FIB_F_OIF) || (flags & ~(addr | dev)) !== 0) return `fib: flags ${flags} (-EINVAL)`;
  if (dev !== 0 && prog.family === NFPROTO_IPV6) return 'fib: iif/oif address types are not modelled for IPv6';
  const lo = code[pc + FIB_LO]!;
  if (lo !== 0 && lo !== 1) return `fib: lo ${lo} (0 or 1)`;
  for (const at of [FIB_LOCAL, FIB_BCAST, FIB_LOCAL_DEV, FIB_BCAST_DEV]) {
    const s = code[pc + at]!;
    const dev4 = at === FIB_LOCAL_DEV || at === FIB_BCAST_DEV;
    if (s !== -1 && (s < 0 || s >= prog.sets.length || (dev4 ? prog.sets[s]!.keyLen !== 8 : prog.sets[s]!.keyLen !== 4 && prog.sets[s]!.keyLen !== 16))) return `fib: set ${s} out of range`;
  }
  const r = checkRegStore(code[pc + FIB_DREG]!, 4);
  return r ? `fib: ${r}` : null;
}

export function disasmFib(_prog: Program, code: Int32Array, pc: number): string {
  const flags = code[pc + FIB_FLAGS]!;
  const dev = flags & NFTA_FIB_F_IIF ? '. iif ' : flags & NFTA_FIB_F_OIF ? '. oif ' : '';
  return `${flags & NFTA_FIB_F_SADDR ? 'saddr' : 'daddr'} ${dev}type => reg ${fmtReg(code[pc + FIB_DREG]!)} `;
}

const scratch = new Uint8Array(80);
const scratch32 = new Int32Array(scratch.buffer);

/**
 * The RTN_* type of the address at `at` (4 or 16 bytes); `ifindex` is the
 * device of an IIF/OIF lookup (0: none).
 */
export function addrType(prog: Program, code: Int32Array, pc: number, data: Uint8Array, at: number, alen: number, ifindex = 0): number {
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
    const isLocal = inSet(local);
    const isBcast = !isLocal && inSet(bcast);
    const isLo = !isLocal && a0 === 127 && code[pc + FIB_LO] === 1;
    if (!isLocal && !isBcast && !isLo) return RTN_UNICAST;
    if (ifindex !== 0) {
      // __inet_dev_addr_type(): the local table's route keeps its type only through `dev`
      if (isLo) return ifindex === LOOPBACK_IFINDEX ? RTN_LOCAL : RTN_UNICAST;
      scratch32[1] = ifindex;
      const s = code[pc + (isLocal ? FIB_LOCAL_DEV : FIB_BCAST_DEV)]!;
      if (s < 0 || !prog.sets[s]!.lookup(scratch, scratch32, 0)) return RTN_UNICAST;
    }
    return isBcast ? RTN_BROADCAST : RTN_LOCAL;
  }
  if (scratch[0] === 0xff) return RTN_MULTICAST;
  let zero = true;
  for (let i = 0; i < 15; i++) if (scratch[i] !== 0) zero = false;
  if (zero && scratch[15] === 0) return RTN_UNSPEC;
  if (inSet(local)) return RTN_LOCAL;
  return RTN_UNICAST;
}

export function execFib(prog: Program, code: Int32Array, pc: number, pkt: Packet, regs: NftRegs): number {
  const m = pkt.meta;
  const v6 = m[M_NFPROTO] === NFPROTO_IPV6;
  const alen = v6 ? 16 : 4;
  const flags = code[pc + FIB_FLAGS]!;
  const off = m[M_NHOFF]! + (v6 ? (flags & NFTA_FIB_F_SADDR ? 8 : 24) : flags & NFTA_FIB_F_SADDR ? 12 : 16);
  if (off + alen > m[M_END]!) return NFT_BREAK;
  const ifindex = flags & NFTA_FIB_F_IIF ? m[M_IIF]! : flags & NFTA_FIB_F_OIF ? m[M_OIF]! : 0;
  regs.r32[code[pc + FIB_DREG]!] = addrType(prog, code, pc, pkt.data, off, alen, ifindex);
  return NFT_CONTINUE;
}

export function evalFib(ctx: EvalCtx, pc: number): void {
  if (execFib(ctx.prog, ctx.prog.code, pc, ctx.pkt, ctx.regs) === NFT_BREAK) ctx.code = NFT_BREAK;
}
