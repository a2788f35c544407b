/**
 * The interpreter: nft_do_chain() (net/netfilter/nf_tables_core.c, 6.18)
 * over a validated Program. One function, one labelled loop, a switch on
 * integer opcodes, all state in locals; no allocation, no exceptions, no
 * closures, no BigInt. Operands are trusted (vm/validate.ts checked them);
 * the only run-time checks are packet bounds, which BREAK as in
 * nft_payload_eval().
 *
 * Registers are zeroed at base-chain entry. BREAK → next rule; falling off
 * a rule's expressions → next rule; accept/drop/queue/stolen are returned;
 * JUMP pushes (stack full → NF_DROP), GOTO does not; RETURN or the end of a
 * chain pops, or returns the base chain's policy.
 *
 * Records are packed (vm/opcodes.ts): the switch is on `code[pc] & OP_MASK`.
 * Hot cases: the RULE case runs the fast path of a linear chain, going from
 * header to header while each rule's first expression is a PAYLOAD_CMP
 * superinstruction that fails, without leaving the case. The packet's
 * network/transport offsets and end are read once into locals (no
 * expression changes them).
 *
 * Trace mode: a packet that enters with nf_trace set while the VM has a
 * trace ring runs through nftDoChainSlow (vm/walker.ts), which records rule,
 * return and policy events. The flag is tested once, before the loop.
 */
import { OP_MASK, Op, opSize } from './opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, CH_POLICY, F_L4PROTO, F_MAC_HEADER, F_NFTRACE, IFNAMSIZ, M_CPU, M_END, M_FLAGS, M_FRAGOFF,
  M_IIF, M_IIFGROUP, M_IIFNAME, M_IIFTYPE, M_L4PROTO, M_LEN, M_MACOFF, M_MARK, M_NFPROTO, M_NHOFF, M_OIF, M_OIFGROUP,
  M_OIFNAME, M_OIFTYPE, M_PKTTYPE, M_PRIORITY, M_PROTOCOL, M_SECMARK, M_SKGID, M_SKUID, M_THOFF, NFT_BITWISE_LSHIFT,
  NFT_BITWISE_MASK_XOR, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_CONTINUE,
  NFT_GOTO, NFT_JUMP, NFT_JUMP_STACK_SIZE, NFT_LIMIT_F_INV, NFT_LOOKUP_F_INV, NFT_META_CPU, NFT_META_IIF,
  NFT_META_IIFGROUP, NFT_META_IIFNAME, NFT_META_IIFTYPE, NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK,
  NFT_META_NFPROTO, NFT_META_OIF, NFT_META_OIFGROUP, NFT_META_OIFNAME, NFT_META_OIFTYPE, NFT_META_PKTTYPE,
  NFT_META_PRIORITY, NFT_META_PROTOCOL, NFT_META_SECMARK, NFT_META_SKGID, NFT_META_SKUID, NFT_NG_INCREMENTAL,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_RANGE_EQ, PACKET_LOOPBACK,
  PACKET_OTHERHOST, TRACE_LOG, TRACE_NFTRACE, NFT_META_NFTRACE,
} from './layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK } from '../core/netfilter.js';
import { NftRegs, VmEnv, prandomU32, traceRecord, type Program } from './program.js';
import type { Packet } from './packet.js';
import { nftDoChainSlow } from './walker.js';
import { pkttypeLoopback } from './expr/meta.js';
import { reciprocalScale } from './expr/numgen.js';
import { limitCost, limitOver } from './expr/limit.js';
import { PF_TH } from './expr/payload.js';
import { CE_NEQ } from './expr/cmp.js';
import { MC_NEQ, PC_NEQ } from './expr/fused.js';
import { execExtra } from './expr/extra.js';
import { CLS_JUMP, clsPc } from './expr/classify.js';

/**
 * Runs `baseChain` (a base chain of `prog`) on `pkt`. `regs` and `stack`
 * (an Int32Array(2 * NFT_JUMP_STACK_SIZE)) are preallocated per VM.
 * Returns the netfilter verdict.
 */
export function nftDoChain(prog: Program, baseChain: number, pkt: Packet, regs: NftRegs, stack: Int32Array, env: VmEnv): number {
  const meta = pkt.meta;
  if (env.trace !== null && (meta[M_FLAGS]! & F_NFTRACE) !== 0) return nftDoChainSlow(prog, baseChain, pkt, regs, stack, env);
  const code = prog.code;
  const chains = prog.chains;
  const pool = prog.pool;
  const pool8 = prog.pool8;
  const r32 = regs.r32;
  const r8 = regs.r8;
  const data = pkt.data;
  // Payload bases: network header, transport header or -1 (no L4 info, or a
  // non-first fragment: BREAK), and the end of the packet data.
  const nh = meta[M_NHOFF]!;
  const th = (meta[M_FLAGS]! & F_L4PROTO) !== 0 && meta[M_FRAGOFF] === 0 ? meta[M_THOFF]! : -1;
  const end = meta[M_END]!;
  r32.fill(0);
  let chain = baseChain;
  let pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
  let sp = 0;
  let next = pc;
  let rule = -1;
  let v = NFT_CONTINUE;
  let target = -1;

  for (;;) {
    // next_rule / expression loop: every case either advances pc past its
    // record (`continue`), BREAKs to the next rule (`pc = next; continue`), or
    // sets a verdict and leaves the switch.
    run: for (;;) {
      switch (code[pc]! & OP_MASK) {
        case Op.RULE: {
          // Fast path of a linear chain: while a rule's first expression is a
          // fused load + compare that fails, go on to the next header here.
          // The packet data does not change during a run, so consecutive rules
          // loading the same bytes (same base, offset and length: `key`) reuse
          // the value loaded first.
          let w = code[pc]!;
          let key = -1;
          let x = 0;
          for (;;) {
            next = pc + (w >>> 8);
            const e = code[pc + 2]!;
            if ((e & OP_MASK) !== Op.PAYLOAD_CMP) {
              rule = code[pc + 1]!;
              pc += 2;
              break;
            }
            const k = e & 0xe0ff00; // offset, len, base bits
            if (k !== key) {
              const len = ((e >>> 21) & 3) + 1;
              let at = (e & PF_TH) !== 0 ? th : nh;
              if (at >= 0) at += (e >>> 8) & 0xff;
              if (at < 0 || at + len > end) {
                if (len !== 4) r32[(e >>> 16) & 31] = 0;
                key = -1;
                pc = next;
                w = code[pc]!;
                if ((w & OP_MASK) !== Op.RULE) break;
                continue;
              }
              x = len === 4 ? data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)
                : len === 1 ? data[at]!
                : len === 2 ? data[at]! | (data[at + 1]! << 8)
                : data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
              key = k;
            }
            r32[(e >>> 16) & 31] = x;
            if ((x === code[pc + 3]) !== ((e & PC_NEQ) !== 0)) {
              // matched: the rest of the rule runs through the switch
              rule = code[pc + 1]!;
              pc += 4;
              break;
            }
            pc = next;
            w = code[pc]!;
            if ((w & OP_MASK) !== Op.RULE) break;
          }
          continue;
        }
        case Op.END:
          v = NFT_CONTINUE;
          break run;
        case Op.PAYLOAD_CMP: {
          const e = code[pc]!;
          const d = (e >>> 16) & 31;
          const len = ((e >>> 21) & 3) + 1;
          let at = (e & PF_TH) !== 0 ? th : nh;
          if (at >= 0) at += (e >>> 8) & 0xff;
          if (at < 0 || at + len > end) {
            if (len !== 4) r32[d] = 0;
            pc = next;
            continue;
          }
          const x = len === 4 ? data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)
            : len === 1 ? data[at]!
            : len === 2 ? data[at]! | (data[at + 1]! << 8)
            : data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
          r32[d] = x;
          if ((x === code[pc + 1]) === ((e & PC_NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += 2;
          continue;
        }
        case Op.CMP_EQ32: {
          const e = code[pc]!;
          const sh = (3 - ((e >>> 13) & 3)) << 3;
          if (((r32[(e >>> 8) & 31]! << sh) === (code[pc + 1]! << sh)) === ((e & CE_NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += 2;
          continue;
        }
        case Op.PAYLOAD_FAST: {
          const e = code[pc]!;
          const d = (e >>> 16) & 31;
          const len = ((e >>> 21) & 3) + 1;
          let at = (e & PF_TH) !== 0 ? th : nh;
          if (at >= 0) at += (e >>> 8) & 0xff;
          if (at < 0 || at + len > end) {
            // the generic path zeroes a partial word first
            if (len !== 4) r32[d] = 0;
            pc = next;
            continue;
          }
          r32[d] = len === 4 ? data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)
            : len === 1 ? data[at]!
            : len === 2 ? data[at]! | (data[at + 1]! << 8)
            : data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
          pc += 1;
          continue;
        }
        case Op.META_CMP: {
          const e = code[pc]!;
          const x = meta[(e >>> 22) & 63]!;
          r32[(e >>> 14) & 31] = x;
          const sh = (3 - ((e >>> 19) & 3)) << 3;
          if (((x << sh) === (code[pc + 1]! << sh)) === ((e & MC_NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += 2;
          continue;
        }
        case Op.PAYLOAD: {
          const d = code[pc + 1]! /*priv->dreg*/;
          const len = code[pc + 4]! /*priv->len*/;
          if ((len & 3) !== 0) r32[d + (len >> 2)] = 0;
          const base = code[pc + 2]!;
          let at = -1;
          if (base === NFT_PAYLOAD_NETWORK_HEADER) at = meta[M_NHOFF]!;
          else if (base === NFT_PAYLOAD_TRANSPORT_HEADER) {
            if ((meta[M_FLAGS]! & F_L4PROTO) !== 0 && meta[M_FRAGOFF] === 0) at = meta[M_THOFF]!;
          } else if (base === NFT_PAYLOAD_LL_HEADER) {
            if ((meta[M_FLAGS]! & F_MAC_HEADER) !== 0) at = meta[M_MACOFF]!;
          }
          if (at < 0 || at + code[pc + 3]! + len > meta[M_END]!) {
            pc = next;
            continue;
          }
          at += code[pc + 3]!;
          const o = d << 2;
          for (let i = 0; i < len; i++) r8[o + i] = data[at + i]!;
          pc += 5;
          continue;
        }
        case Op.BITWISE32: {
          r32[code[pc + 2]!] = (r32[code[pc + 1]!]! & code[pc + 3]!) ^ code[pc + 4]!;
          pc += 5;
          continue;
        }
        case Op.VERDICT: {
          const e = code[pc]!;
          v = (e << 20) >> 28;
          if (v === NFT_CONTINUE) {
            pc += 1;
            continue;
          }
          if (v === NFT_BREAK) {
            pc = next;
            continue;
          }
          target = (e >>> 12) - 1;
          break run;
        }
        case Op.IMMEDIATE32: {
          const d = code[pc + 1]!;
          const len = code[pc + 2]!;
          const w = code[pc + 3]!;
          if (len === 4) r32[d] = w;
          else {
            r32[d] = 0;
            const o = d << 2;
            for (let i = 0; i < len; i++) r8[o + i] = (w >>> (8 * i)) & 0xff;
          }
          pc += 4;
          continue;
        }
        case Op.COUNTER: {
          const i = (code[pc]! >>> 8) << 1;
          const c = prog.counters;
          c[i] += 1;
          c[i + 1] += meta[M_LEN]!;
          pc += 1;
          continue;
        }
        case Op.META_GET: {
          const d = code[pc + 1]!;
          switch (code[pc + 2]) {
            case NFT_META_L4PROTO:
              if ((meta[M_FLAGS]! & F_L4PROTO) === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_L4PROTO]! & 0xff;
              break;
            case NFT_META_MARK: r32[d] = meta[M_MARK]!; break;
            case NFT_META_IIFNAME:
            case NFT_META_OIFNAME: {
              const mb = pkt.metaBytes;
              const at = (code[pc + 2] === NFT_META_IIFNAME ? M_IIFNAME : M_OIFNAME) << 2;
              const o = d << 2;
              for (let i = 0; i < IFNAMSIZ; i++) r8[o + i] = mb[at + i]!;
              break;
            }
            case NFT_META_LEN: r32[d] = meta[M_LEN]!; break;
            case NFT_META_PROTOCOL: {
              const p = meta[M_PROTOCOL]!;
              r32[d] = ((p >>> 8) & 0xff) | ((p & 0xff) << 8);
              break;
            }
            case NFT_META_NFPROTO: r32[d] = meta[M_NFPROTO]! & 0xff; break;
            case NFT_META_IIF: r32[d] = meta[M_IIF]!; break;
            case NFT_META_OIF: r32[d] = meta[M_OIF]!; break;
            case NFT_META_PRIORITY: r32[d] = meta[M_PRIORITY]!; break;
            case NFT_META_SECMARK: r32[d] = meta[M_SECMARK]!; break;
            case NFT_META_CPU: r32[d] = meta[M_CPU]!; break;
            case NFT_META_IIFTYPE:
              if (meta[M_IIF] === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_IIFTYPE]! & 0xffff;
              break;
            case NFT_META_OIFTYPE:
              if (meta[M_OIF] === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_OIFTYPE]! & 0xffff;
              break;
            case NFT_META_IIFGROUP:
              if (meta[M_IIF] === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_IIFGROUP]!;
              break;
            case NFT_META_OIFGROUP:
              if (meta[M_OIF] === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_OIFGROUP]!;
              break;
            case NFT_META_SKUID:
            case NFT_META_SKGID: {
              const id = meta[code[pc + 2] === NFT_META_SKUID ? M_SKUID : M_SKGID]!;
              if (id === -1) {
                pc = next;
                continue run;
              }
              r32[d] = id;
              break;
            }
            case NFT_META_PKTTYPE: {
              let t = meta[M_PKTTYPE]!;
              if (t === PACKET_LOOPBACK) t = pkttypeLoopback(data, meta);
              if (t < 0) {
                pc = next;
                continue run;
              }
              r32[d] = t & 0xff;
              break;
            }
            default: // NFT_META_PRANDOM (the validator admits no other key)
              r32[d] = prandomU32(env);
          }
          pc += 3;
          continue;
        }
        case Op.CMP: {
          const s = code[pc + 1]! << 2;
          const len = code[pc + 3]!;
          const p = code[pc + 4]! << 2;
          let diff = 0;
          for (let i = 0; i < len; i++) {
            diff = r8[s + i]! - pool8[p + i]!;
            if (diff !== 0) break;
          }
          let ok: boolean;
          switch (code[pc + 2]) {
            case NFT_CMP_EQ: ok = diff === 0; break;
            case NFT_CMP_NEQ: ok = diff !== 0; break;
            case NFT_CMP_LT: ok = diff < 0; break;
            case NFT_CMP_LTE: ok = diff <= 0; break;
            case NFT_CMP_GT: ok = diff > 0; break;
            default: ok = diff >= 0; // NFT_CMP_GTE
          }
          if (!ok) {
            pc = next;
            continue;
          }
          pc += 5;
          continue;
        }
        case Op.RANGE: {
          const s = code[pc + 1]! << 2;
          const len = code[pc + 3]!;
          const f = code[pc + 4]! << 2;
          const t = code[pc + 5]! << 2;
          let d1 = 0;
          let d2 = 0;
          for (let i = 0; i < len; i++) {
            d1 = r8[s + i]! - pool8[f + i]!;
            if (d1 !== 0) break;
          }
          for (let i = 0; i < len; i++) {
            d2 = r8[s + i]! - pool8[t + i]!;
            if (d2 !== 0) break;
          }
          if ((d1 >= 0 && d2 <= 0) !== (code[pc + 2] === NFT_RANGE_EQ)) {
            pc = next;
            continue;
          }
          pc += 6;
          continue;
        }
        case Op.LOOKUP: {
          const found = prog.sets[code[pc + 2]!]!.lookup(r8, r32, code[pc + 1]!);
          if (found === ((code[pc + 3]! & NFT_LOOKUP_F_INV) !== 0)) {
            pc = next;
            continue;
          }
          pc += 4;
          continue;
        }
        case Op.BITWISE: {
          const src = code[pc + 1]!;
          const dst = code[pc + 2]!;
          const words = (code[pc + 4]! + 3) >>> 2;
          const bop = code[pc + 3]!;
          if (bop === NFT_BITWISE_MASK_XOR) {
            const m = code[pc + 5]!;
            const x = code[pc + 6]!;
            for (let i = 0; i < words; i++) r32[dst + i] = (r32[src + i]! & pool[m + i]!) ^ pool[x + i]!;
          } else {
            const sh = code[pc + 7]!;
            let carry = 0;
            if (bop === NFT_BITWISE_LSHIFT) {
              for (let i = words - 1; i >= 0; i--) {
                r32[dst + i] = (r32[src + i]! << sh) | carry;
                carry = r32[src + i]! >>> (32 - sh);
              }
            } else {
              for (let i = 0; i < words; i++) {
                r32[dst + i] = carry | (r32[src + i]! >>> sh);
                carry = r32[src + i]! << (32 - sh);
              }
            }
          }
          pc += 8;
          continue;
        }
        case Op.BYTEORDER: {
          const s = code[pc + 1]! << 2;
          const d = code[pc + 2]! << 2;
          const size = code[pc + 5]!;
          const n = (code[pc + 4]! / size) | 0;
          for (let i = 0; i < n; i++) {
            const a = i * size;
            if (size === 2) {
              const b0 = r8[s + a]!;
              r8[d + a] = r8[s + a + 1]!;
              r8[d + a + 1] = b0;
            } else {
              const b0 = r8[s + a]!;
              const b1 = r8[s + a + 1]!;
              r8[d + a] = r8[s + a + 3]!;
              r8[d + a + 1] = r8[s + a + 2]!;
              r8[d + a + 2] = b1;
              r8[d + a + 3] = b0;
            }
          }
          pc += 6;
          continue;
        }
        case Op.IMMEDIATE: {
          const d = code[pc + 1]!;
          const len = code[pc + 2]!;
          if ((len & 3) !== 0) r32[d + (len >> 2)] = 0;
          const o = d << 2;
          const p = code[pc + 3]! << 2;
          for (let i = 0; i < len; i++) r8[o + i] = pool8[p + i]!;
          pc += 4;
          continue;
        }
        case Op.META_SET: {
          const s = code[pc + 1]!;
          switch (code[pc + 2]) {
            case NFT_META_MARK: meta[M_MARK] = r32[s]!; break;
            case NFT_META_PRIORITY: meta[M_PRIORITY] = r32[s]!; break;
            case NFT_META_SECMARK: meta[M_SECMARK] = r32[s]!; break;
            case NFT_META_PKTTYPE: {
              const v8 = r8[s << 2]!;
              const cur = meta[M_PKTTYPE]!;
              if (cur !== v8 && v8 <= PACKET_OTHERHOST && cur <= PACKET_OTHERHOST) meta[M_PKTTYPE] = v8;
              break;
            }
            case NFT_META_NFTRACE:
            default: {
              const v8 = r8[s << 2]!;
              if (v8 !== 0) meta[M_FLAGS] |= F_NFTRACE;
              else meta[M_FLAGS] &= ~F_NFTRACE;
              traceRecord(env, TRACE_NFTRACE, chain, rule, v8, pc);
            }
          }
          pc += 3;
          continue;
        }
        case Op.NUMGEN: {
          const mod = code[pc + 3]! >>> 0;
          let n: number;
          if (code[pc + 2] === NFT_NG_INCREMENTAL) {
            const st = prog.state;
            const i = code[pc + 5]!;
            const old = st[i]!;
            n = old + 1 < mod ? old + 1 : 0;
            st[i] = n;
          } else n = reciprocalScale(prandomU32(env), mod);
          r32[code[pc + 1]!] = (n + code[pc + 4]!) | 0;
          pc += 6;
          continue;
        }
        case Op.LIMIT: {
          const st = prog.state;
          const over = limitOver(st, code[pc + 6]!, limitCost(code, pc, st, meta[M_LEN]!), env.nowNs);
          if (over !== ((code[pc + 5]! & NFT_LIMIT_F_INV) !== 0)) {
            pc = next;
            continue;
          }
          pc += 7;
          continue;
        }
        case Op.LOG:
          traceRecord(env, TRACE_LOG, chain, rule, 0, pc);
          pc += 7;
          continue;
        case Op.CT_GET:
        case Op.CT_SET:
        case Op.FIB:
        case Op.XT_L4:
        case Op.REJECT:
        case Op.QUEUE:
        case Op.NAT:
        case Op.CLASSIFY:
        case Op.XT_MATCH:
          v = execExtra(prog, pc, pkt, regs, env, chain, rule);
          if (v === NFT_CONTINUE) {
            pc += opSize(code[pc]!);
            continue;
          }
          if (v === NFT_BREAK) {
            pc = next;
            continue;
          }
          if (v === CLS_JUMP) {
            pc = clsPc[0]!; // a rule header of the run, or the run's end
            continue;
          }
          break run;
        default:
          // Unreachable for validated programs: treat as the end of the chain.
          v = NFT_CONTINUE;
          break run;
      }
    }

    // A rule gave a verdict, or the chain ended (v === NFT_CONTINUE).
    // as nft_do_chain: the netfilter verdicts by their low byte (a queue number
    // of 32768 or more makes the int32 negative); NFT_* codes end in 0xfb..0xff
    const low = v & NF_VERDICT_MASK;
    if (low === NF_ACCEPT || low === NF_DROP || low === NF_QUEUE || low === NF_STOLEN) return v;
    if (v === NFT_JUMP) {
      if (sp >= NFT_JUMP_STACK_SIZE) return NF_DROP;
      stack[sp << 1] = chain;
      stack[(sp << 1) + 1] = next;
      sp++;
      chain = target;
      pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
      continue;
    }
    if (v === NFT_GOTO) {
      chain = target;
      pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
      continue;
    }
    // NFT_CONTINUE at the end of a chain, or NFT_RETURN.
    if (sp > 0) {
      sp--;
      chain = stack[sp << 1]!;
      pc = stack[(sp << 1) + 1]!;
      continue;
    }
    return chains[baseChain * CHAIN_WORDS + CH_POLICY]!;
  }
}

/** A VM instance: preallocated registers, jump stack and environment. */
export class Vm {
  readonly regs = new NftRegs();
  readonly stack = new Int32Array(NFT_JUMP_STACK_SIZE * 2);
  readonly env: VmEnv;
  constructor(env: VmEnv = new VmEnv()) {
    this.env = env;
  }
  run(prog: Program, baseChain: number, pkt: Packet): number {
    return nftDoChain(prog, baseChain, pkt, this.regs, this.stack, this.env);
  }
}

