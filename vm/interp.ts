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
 * Records are packed (vm/opcodes.ts): the switch is on `code[pc] & Rec.OP_MASK`,
 * and every record word and packed field is read through the const enum of
 * its vm/expr file (Payload, PayloadFast, CmpEq32, ...), the same names its
 * encoder, validator, disassembler and slow eval use; esbuild inlines them
 * as literals (test/vm/bundle.test.ts).
 * Hot cases: the RULE case runs the fast path of a linear chain, going from
 * header to header while each rule's first expression is a PAYLOAD_CMP
 * superinstruction that fails, without leaving the case. The packet's
 * network/transport offsets and end are read once into locals (no
 * expression changes them).
 *
 * Trace mode: a packet that enters with nf_trace set while the VM has a
 * trace ring runs through nftDoChainSlow (vm/interp-slow.ts), which records rule,
 * return and policy events. The flag is tested once, before the loop.
 */
import { Op, opSize, Rec } from './opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, CH_POLICY, F_L4PROTO, F_MAC_HEADER, F_NFTRACE, IFNAMSIZ, M_CPU, M_END, M_FLAGS, M_FRAGOFF,
  M_IIF, M_IIFGROUP, M_IIFNAME, M_IIFTYPE, M_L4PROTO, M_LEN, M_MACOFF, M_MARK, M_NFPROTO, M_NHOFF, M_OIF, M_OIFGROUP,
  M_OIFNAME, M_OIFTYPE, M_PKTTYPE, M_PRIORITY, M_PROTOCOL, M_SECMARK, M_SKGID, M_SKUID, M_THOFF, NFT_BITWISE_LSHIFT,
  NFT_BITWISE_MASK_XOR, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_CONTINUE,
  NFT_GOTO, NFT_JUMP, NFT_JUMP_STACK_SIZE, NFT_LIMIT_F_INV, NFT_LOOKUP_F_INV, NFT_META_CPU, NFT_META_IIF,
  NFT_META_IIFGROUP, NFT_META_IIFNAME, NFT_META_BRI_IIFNAME, NFT_META_BRI_OIFNAME, M_BRIINAME, M_BRIONAME, NFT_META_IIFTYPE, NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK,
  NFT_META_NFPROTO, NFT_META_OIF, NFT_META_OIFGROUP, NFT_META_OIFNAME, NFT_META_OIFTYPE, NFT_META_PKTTYPE,
  NFT_META_PRIORITY, NFT_META_PROTOCOL, NFT_META_SECMARK, NFT_META_SKGID, NFT_META_SKUID, NFT_NG_INCREMENTAL,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_RANGE_EQ, PACKET_LOOPBACK,
  PACKET_OTHERHOST, TRACE_LOG, TRACE_NFTRACE, NFT_META_NFTRACE, NFT_BITWISE_AND, NFT_META_BRI_BROUTE, F_BR_BROUTE,
} from './layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK } from '../core/netfilter.js';
import { NftRegs, VmEnv, prandomU32, traceRecord, type Program } from './program.js';
import type { Packet } from './packet.js';
import { nftDoChainSlow } from './interp-slow.js';
import { Meta, pkttypeLoopback } from './expr/meta.js';
import { Bitwise, Bitwise32, bitwiseBool } from './expr/bitwise.js';
import { Byteorder } from './expr/byteorder.js';
import { Counter } from './expr/counter.js';
import { Immediate, Verdict } from './expr/immediate.js';
import { Log } from './expr/log.js';
import { Lookup } from './expr/lookup.js';
import { Range } from './expr/range.js';
import { Numgen, reciprocalScale } from './expr/numgen.js';
import { Limit, limitCost, limitOver } from './expr/limit.js';
import { Payload, PayloadFast } from './expr/payload.js';
import { Cmp, CmpEq32 } from './expr/cmp.js';
import { bswap32, L4protoCmp, MetaCmp, PayloadCmp, RandomCmp, randomCmpHolds } from './expr/fused.js';
import { execExtra } from './expr/extra.js';
import { CLS_END, CLS_FIRST_RULE, CLS_JUMP, CLS_RECORD_WORDS, CLS_TO, clsPc, execClassify } from './expr/classify.js';
import { jitCode, jitDoChain, type JitCode } from './jit/index.js';

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
  // non-first fragment: BREAK), the transport header as the kernel's fast
  // ops see it (they read a non-first fragment: vm/expr/payload.ts), and the
  // end of the packet data.
  const nh = meta[M_NHOFF]!;
  const thk = (meta[M_FLAGS]! & F_L4PROTO) !== 0 ? meta[M_THOFF]! : -1;
  const th = meta[M_FRAGOFF] === 0 ? thk : -1;
  const end = meta[M_END]!;
  regs.clear();
  let chain = baseChain;
  let pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
  let sp = 0;
  let next = pc;
  let rule = -1;
  let v = NFT_CONTINUE;
  let target = -1;
  // the classifier run the packet is in (vm/expr/classify.ts): the pc of its CLASSIFY record (-1: none),
  // the end of the run, its first rule's index, and the rule header the classifier chose last. A rule
  // header of the run reached otherwise (the chosen rule did not match) asks the classifier for the
  // next rule from there that may match.
  let clsAt = -1;
  let clsEnd = 0;
  let clsFirst = 0;
  let clsLanded = -1;

  for (;;) {
    // next_rule / expression loop: every case either advances pc past its
    // record (`continue`), BREAKs to the next rule (`pc = next; continue`), or
    // sets a verdict and leaves the switch.
    run: for (;;) {
      switch (code[pc]! & Rec.OP_MASK) {
        case Op.RULE: {
          if (clsAt >= 0 && pc !== clsLanded) {
            if (pc > clsAt && pc < clsEnd && execClassify(prog, clsAt, pkt, code[pc + Rec.RULE_INDEX]! - clsFirst) === CLS_JUMP) {
              pc = clsLanded = clsPc[CLS_TO]!;
              if (pc === clsEnd) clsAt = -1;
              continue;
            }
            clsAt = -1;
          }
          // Fast path of a linear chain: while a rule's first expression is a
          // fused load + compare that fails, go on to the next header here.
          // The packet data does not change during a run, so consecutive rules
          // loading the same bytes (same base, offset and length: `key`) reuse
          // the value loaded first.
          let w = code[pc]!;
          let key = -1;
          let x = 0;
          for (;;) {
            next = pc + (w >>> Rec.OP_BITS);
            const e = code[pc + Rec.RULE_WORDS]!;
            if ((e & Rec.OP_MASK) !== Op.PAYLOAD_CMP) {
              rule = code[pc + Rec.RULE_INDEX]!;
              pc += Rec.RULE_WORDS;
              break;
            }
            const k = e & PayloadFast.LOAD_KEY;
            if (k !== key) {
              const len = ((e >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
              let at = (e & PayloadFast.TH) === 0 ? nh : (e & PayloadFast.KFAST) !== 0 ? thk : th;
              if (at >= 0) at += (e >>> PayloadFast.OFFSET_SHIFT) & PayloadFast.OFFSET_MASK;
              if (at < 0 || at + len > end) {
                if (len !== 4) r32[(e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK] = 0;
                key = -1;
                pc = next;
                w = code[pc]!;
                if ((w & Rec.OP_MASK) !== Op.RULE || clsAt >= 0) break;
                continue;
              }
              x = len === 4 ? data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)
                : len === 1 ? data[at]!
                : len === 2 ? data[at]! | (data[at + 1]! << 8)
                : data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
              key = k;
            }
            r32[(e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK] = x;
            if ((x === code[pc + (Rec.RULE_WORDS + PayloadCmp.DATA)]) !== ((e & PayloadCmp.NEQ) !== 0)) {
              // matched: the rest of the rule runs through the switch
              rule = code[pc + Rec.RULE_INDEX]!;
              pc += Rec.RULE_WORDS + PayloadCmp.SIZE; // the header and the fused record
              break;
            }
            pc = next;
            w = code[pc]!;
            if ((w & Rec.OP_MASK) !== Op.RULE || clsAt >= 0) break;
          }
          continue;
        }
        case Op.END:
          v = NFT_CONTINUE;
          break run;
        case Op.PAYLOAD_CMP: {
          const e = code[pc]!;
          const d = (e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK;
          const len = ((e >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
          let at = (e & PayloadFast.TH) === 0 ? nh : (e & PayloadFast.KFAST) !== 0 ? thk : th;
          if (at >= 0) at += (e >>> PayloadFast.OFFSET_SHIFT) & PayloadFast.OFFSET_MASK;
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
          if ((x === code[pc + PayloadCmp.DATA]) === ((e & PayloadCmp.NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += PayloadCmp.SIZE;
          continue;
        }
        case Op.CMP_EQ32: {
          const e = code[pc]!;
          // compare the low len bytes: shift the others out (len 4: by 0)
          const sh = (CmpEq32.LEN_MASK - ((e >>> CmpEq32.LEN_SHIFT) & CmpEq32.LEN_MASK)) << 3;
          if (((r32[(e >>> CmpEq32.SLOT_SHIFT) & CmpEq32.SLOT_MASK]! << sh) === (code[pc + CmpEq32.DATA]! << sh)) === ((e & CmpEq32.NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += CmpEq32.SIZE;
          continue;
        }
        case Op.PAYLOAD_FAST: {
          const e = code[pc]!;
          const d = (e >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK;
          const len = ((e >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
          let at = (e & PayloadFast.TH) === 0 ? nh : (e & PayloadFast.KFAST) !== 0 ? thk : th;
          if (at >= 0) at += (e >>> PayloadFast.OFFSET_SHIFT) & PayloadFast.OFFSET_MASK;
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
          pc += PayloadFast.SIZE;
          continue;
        }
        case Op.META_CMP: {
          const e = code[pc]!;
          const x = meta[(e >>> MetaCmp.FIELD_SHIFT) & MetaCmp.FIELD_MASK]!;
          r32[(e >>> MetaCmp.SLOT_SHIFT) & MetaCmp.SLOT_MASK] = x;
          const sh = (MetaCmp.LEN_MASK - ((e >>> MetaCmp.LEN_SHIFT) & MetaCmp.LEN_MASK)) << 3;
          if (((x << sh) === (code[pc + MetaCmp.DATA]! << sh)) === ((e & MetaCmp.NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += MetaCmp.SIZE;
          continue;
        }
        case Op.L4PROTO_CMP: {
          if ((meta[M_FLAGS]! & F_L4PROTO) === 0) {
            pc = next;
            continue;
          }
          const e = code[pc]!;
          const x = meta[M_L4PROTO]! & 0xff;
          r32[(e >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK] = x;
          if ((x === e >>> L4protoCmp.PROTO_SHIFT) === ((e & L4protoCmp.NEQ) !== 0)) {
            pc = next;
            continue;
          }
          pc += L4protoCmp.SIZE;
          continue;
        }
        case Op.RANDOM_CMP: {
          const e = code[pc]!;
          const x = (env.drawAt === null ? prandomU32(env) : env.drawAt(rule)) & RandomCmp.MASK;
          r32[(e >>> RandomCmp.SLOT_SHIFT) & RandomCmp.SLOT_MASK] = bswap32(x);
          if (!randomCmpHolds((e >>> RandomCmp.CMPOP_SHIFT) & RandomCmp.CMPOP_MASK, x, code[pc + RandomCmp.DATA]!)) {
            pc = next;
            continue;
          }
          pc += RandomCmp.SIZE;
          continue;
        }
        case Op.PAYLOAD: {
          const d = code[pc + Payload.DREG]!;
          const len = code[pc + Payload.LEN]!;
          if ((len & 3) !== 0) r32[d + (len >> 2)] = 0;
          const base = code[pc + Payload.BASE]!;
          let at = -1;
          if (base === NFT_PAYLOAD_NETWORK_HEADER) at = meta[M_NHOFF]!;
          else if (base === NFT_PAYLOAD_TRANSPORT_HEADER) {
            if ((meta[M_FLAGS]! & F_L4PROTO) !== 0 && meta[M_FRAGOFF] === 0) at = meta[M_THOFF]!;
          } else if (base === NFT_PAYLOAD_LL_HEADER) {
            if ((meta[M_FLAGS]! & F_MAC_HEADER) !== 0) at = meta[M_MACOFF]!;
          }
          if (at < 0 || at + code[pc + Payload.OFFSET]! + len > meta[M_END]!) {
            pc = next;
            continue;
          }
          at += code[pc + Payload.OFFSET]!;
          const o = d << 2;
          for (let i = 0; i < len; i++) r8[o + i] = data[at + i]!;
          pc += Payload.SIZE;
          continue;
        }
        case Op.BITWISE32: {
          r32[code[pc + Bitwise32.DREG]!] = (r32[code[pc + Bitwise32.SREG]!]! & code[pc + Bitwise32.MASK]!) ^ code[pc + Bitwise32.XOR]!;
          pc += Bitwise32.SIZE;
          continue;
        }
        case Op.VERDICT: {
          const e = code[pc]!;
          v = (e << Verdict.CODE_UP) >> Verdict.CODE_DOWN;
          if (v === NFT_CONTINUE) {
            pc += Verdict.SIZE;
            continue;
          }
          if (v === NFT_BREAK) {
            pc = next;
            continue;
          }
          target = (e >>> Verdict.CHAIN_SHIFT) - 1;
          break run;
        }
        case Op.IMMEDIATE32: {
          const d = code[pc + Immediate.DREG]!;
          const len = code[pc + Immediate.LEN]!;
          const w = code[pc + Immediate.DATA]!;
          if (len === 4) r32[d] = w;
          else {
            r32[d] = 0;
            const o = d << 2;
            for (let i = 0; i < len; i++) r8[o + i] = (w >>> (8 * i)) & 0xff;
          }
          pc += Immediate.SIZE;
          continue;
        }
        case Op.COUNTER: {
          const i = (code[pc]! >>> Counter.INDEX_SHIFT) << 1;
          const c = prog.counters;
          c[i] += 1;
          c[i + 1] += meta[M_LEN]!;
          pc += Counter.SIZE;
          continue;
        }
        case Op.META_GET: {
          const d = code[pc + Meta.REG]!;
          switch (code[pc + Meta.KEY]) {
            case NFT_META_L4PROTO:
              if ((meta[M_FLAGS]! & F_L4PROTO) === 0) {
                pc = next;
                continue run;
              }
              r32[d] = meta[M_L4PROTO]! & 0xff;
              break;
            case NFT_META_MARK: r32[d] = meta[M_MARK]!; break;
            case NFT_META_IIFNAME:
            case NFT_META_OIFNAME:
            case NFT_META_BRI_IIFNAME:
            case NFT_META_BRI_OIFNAME: {
              const mb = pkt.metaBytes;
              const k = code[pc + Meta.KEY];
              const at = (k === NFT_META_IIFNAME ? M_IIFNAME : k === NFT_META_OIFNAME ? M_OIFNAME : k === NFT_META_BRI_IIFNAME ? M_BRIINAME : M_BRIONAME) << 2;
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
              const id = meta[code[pc + Meta.KEY] === NFT_META_SKUID ? M_SKUID : M_SKGID]!;
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
              r32[d] = env.drawAt === null ? prandomU32(env) : env.drawAt(rule);
          }
          pc += Meta.SIZE;
          continue;
        }
        case Op.CMP: {
          const s = code[pc + Cmp.SREG]! << 2;
          const len = code[pc + Cmp.LEN]!;
          const p = code[pc + Cmp.POOL]! << 2;
          let diff = 0;
          for (let i = 0; i < len; i++) {
            diff = r8[s + i]! - pool8[p + i]!;
            if (diff !== 0) break;
          }
          let ok: boolean;
          switch (code[pc + Cmp.OP]) {
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
          pc += Cmp.SIZE;
          continue;
        }
        case Op.RANGE: {
          const s = code[pc + Range.SREG]! << 2;
          const len = code[pc + Range.LEN]!;
          const f = code[pc + Range.FROM]! << 2;
          const t = code[pc + Range.TO]! << 2;
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
          if ((d1 >= 0 && d2 <= 0) !== (code[pc + Range.OP] === NFT_RANGE_EQ)) {
            pc = next;
            continue;
          }
          pc += Range.SIZE;
          continue;
        }
        case Op.LOOKUP: {
          const found = prog.sets[code[pc + Lookup.SET]!]!.lookup(r8, r32, code[pc + Lookup.SREG]!);
          if (found === ((code[pc + Lookup.FLAGS]! & NFT_LOOKUP_F_INV) !== 0)) {
            pc = next;
            continue;
          }
          pc += Lookup.SIZE;
          continue;
        }
        case Op.BITWISE: {
          const src = code[pc + Bitwise.SREG]!;
          const dst = code[pc + Bitwise.DREG]!;
          const words = (code[pc + Bitwise.LEN]! + 3) >>> 2;
          const bop = code[pc + Bitwise.OP]!;
          if (bop === NFT_BITWISE_MASK_XOR) {
            const m = code[pc + Bitwise.MASK]!;
            const x = code[pc + Bitwise.XOR]!;
            for (let i = 0; i < words; i++) r32[dst + i] = (r32[src + i]! & pool[m + i]!) ^ pool[x + i]!;
          } else if (bop >= NFT_BITWISE_AND) {
            bitwiseBool(r32, bop, dst, src, code[pc + Bitwise.MASK]!, words);
          } else {
            const sh = code[pc + Bitwise.SHIFT]!;
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
          pc += Bitwise.SIZE;
          continue;
        }
        case Op.BYTEORDER: {
          const s = code[pc + Byteorder.SREG]! << 2;
          const d = code[pc + Byteorder.DREG]! << 2;
          const size = code[pc + Byteorder.ELEM_SIZE]!;
          const n = (code[pc + Byteorder.LEN]! / size) | 0;
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
          pc += Byteorder.SIZE;
          continue;
        }
        case Op.IMMEDIATE: {
          const d = code[pc + Immediate.DREG]!;
          const len = code[pc + Immediate.LEN]!;
          if ((len & 3) !== 0) r32[d + (len >> 2)] = 0;
          const o = d << 2;
          const p = code[pc + Immediate.DATA]! << 2;
          for (let i = 0; i < len; i++) r8[o + i] = pool8[p + i]!;
          pc += Immediate.SIZE;
          continue;
        }
        case Op.META_SET: {
          const s = code[pc + Meta.REG]!;
          switch (code[pc + Meta.KEY]) {
            case NFT_META_MARK: meta[M_MARK] = r32[s]!; break;
            case NFT_META_PRIORITY: meta[M_PRIORITY] = r32[s]!; break;
            case NFT_META_SECMARK: meta[M_SECMARK] = r32[s]!; break;
            case NFT_META_PKTTYPE: {
              const v8 = r8[s << 2]!;
              const cur = meta[M_PKTTYPE]!;
              if (cur !== v8 && v8 <= PACKET_OTHERHOST && cur <= PACKET_OTHERHOST) meta[M_PKTTYPE] = v8;
              break;
            }
            case NFT_META_BRI_BROUTE:
              if (r8[s << 2] !== 0) meta[M_FLAGS] |= F_BR_BROUTE;
              else meta[M_FLAGS] &= ~F_BR_BROUTE;
              break;
            case NFT_META_NFTRACE:
            default: {
              const v8 = r8[s << 2]!;
              if (v8 !== 0) meta[M_FLAGS] |= F_NFTRACE;
              else meta[M_FLAGS] &= ~F_NFTRACE;
              traceRecord(env, TRACE_NFTRACE, chain, rule, v8, pc);
            }
          }
          pc += Meta.SIZE;
          continue;
        }
        case Op.NUMGEN: {
          const mod = code[pc + Numgen.MODULUS]! >>> 0;
          let n: number;
          if (code[pc + Numgen.TYPE] === NFT_NG_INCREMENTAL) {
            const st = prog.state;
            const i = code[pc + Numgen.STATE]!;
            const old = st[i]!;
            n = old + 1 < mod ? old + 1 : 0;
            st[i] = n;
          } else n = reciprocalScale(env.drawAt === null ? prandomU32(env) : env.drawAt(rule), mod);
          r32[code[pc + Numgen.DREG]!] = (n + code[pc + Numgen.OFFSET]!) | 0;
          pc += Numgen.SIZE;
          continue;
        }
        case Op.LIMIT: {
          const st = prog.state;
          const over = limitOver(st, code[pc + Limit.STATE]!, limitCost(code, pc, st, meta[M_LEN]!), env.nowNs);
          if (over !== ((code[pc + Limit.FLAGS]! & NFT_LIMIT_F_INV) !== 0)) {
            pc = next;
            continue;
          }
          pc += Limit.SIZE;
          continue;
        }
        case Op.LOG:
          traceRecord(env, TRACE_LOG, chain, rule, 0, pc);
          pc += Log.SIZE;
          continue;
        case Op.CLASSIFY: {
          // the first rule of the run from here that may match: this one (go on), a later one or past the run
          v = execClassify(prog, pc, pkt);
          clsAt = -1;
          if (clsPc[CLS_TO]! >= 0) {
            clsEnd = clsPc[CLS_END]!;
            clsFirst = clsPc[CLS_FIRST_RULE]!;
            clsLanded = clsPc[CLS_TO]!;
            if (clsLanded !== clsEnd) clsAt = pc;
          }
          if (v === NFT_CONTINUE) {
            pc += CLS_RECORD_WORDS;
            continue;
          }
          pc = clsPc[CLS_TO]!;
          continue;
        }
        case Op.CT_GET:
        case Op.CT_SET:
        case Op.FIB:
        case Op.XT_L4:
        case Op.REJECT:
        case Op.QUEUE:
        case Op.NAT:
        case Op.XT_MATCH:
        case Op.XT_SET_MATCH:
        case Op.XT_SET_TARGET:
        case Op.MATCH:
        case Op.TARGET:
          v = execExtra(prog, pc, pkt, regs, env, chain, rule);
          if (v === NFT_CONTINUE) {
            pc += opSize(code[pc]! & Rec.OP_MASK);
            continue;
          }
          if (v === NFT_BREAK) {
            pc = next;
            continue;
          }
          if (v === CLS_JUMP) {
            pc = clsPc[CLS_TO]!; // XT_MATCH: past its rule's other tests
            continue;
          }
          break run;
        default:
          // Unreachable for validated programs: treat as the end of the chain.
          v = NFT_CONTINUE;
          break run;
      }
    }

    // A rule gave a verdict, or the chain ended (v === NFT_CONTINUE). A run the packet was in is left
    // (a chain it jumps to, or returns to, is walked straight)
    env.walk = (env.walk + pc - chains[chain * CHAIN_WORDS + CH_FIRST]!) | 0;
    clsAt = -1;
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

/**
 * Which code runs a Vm's chains: 'jit' the generated tier (vm/jit) from the
 * first packet, 'interp' this interpreter, 'auto' (what `nfvm replay` and
 * `trace` run) the interpreter, measuring how far runs walk into their
 * chains, and the tier once the walks are long and stay long: two
 * consecutive windows of AUTO_PROBE_RUNS runs walking AUTO_TIER_WALK words
 * of bytecode per run or more on average, or one window walking
 * AUTO_TIER_WALK_EARLY per run (a window ends early when its walk reaches
 * that). Both give the same verdicts, counters, state and trace events;
 * the choice is only about cost: the tier's code costs compiling
 * (generating it, and V8 optimizing every segment packets reach), repaid
 * only by packets that walk many rules. A stateful ruleset whose first
 * rules accept the established flows stays on the interpreter, its burst
 * of connection setups (walking the NEW rules) included.
 */
export type VmTier = 'auto' | 'jit' | 'interp';

/** Runs of a window 'auto' measures. */
export const AUTO_PROBE_RUNS = 4096;
/** The average walk per run (words of bytecode passed) of a window that counts as long: about 16 compiled iptables rules (12 to 20 words each). */
export const AUTO_TIER_WALK = 256;
/** The average walk per run from which one window is enough: about 300 rules. */
export const AUTO_TIER_WALK_EARLY = 4096;

/**
 * True when `prog` stays on the interpreter: it holds a CLASSIFY record (see
 * Vm.load). A program with an x_tables target that may rewrite the packet
 * runs on the tier: the generator reloads the header fields after it
 * (vm/jit/gen.ts MAY_WRITE).
 */
function interpOnly(prog: Program): boolean {
  const code = prog.code;
  for (let pc = 0; pc < code.length; pc += opSize(code[pc]! & Rec.OP_MASK) || 1) {
    if ((code[pc]! & Rec.OP_MASK) === Op.CLASSIFY) return true;
  }
  return false;
}

/** A VM instance: preallocated registers, jump stack and environment. */
export class Vm {
  readonly regs = new NftRegs();
  readonly stack = new Int32Array(NFT_JUMP_STACK_SIZE * 2);
  readonly env: VmEnv;
  readonly tier: VmTier;
  private jitProg: Program | null = null;
  private jit: JitCode | null = null;
  /** 'auto': runs left in the current window (0: not measuring), and the long windows in a row so far (env.walk counts the window's words). */
  private probe = 0;
  private longWindows = 0;
  constructor(env: VmEnv = new VmEnv(), tier: VmTier = 'jit') {
    this.env = env;
    this.tier = tier;
  }
  /**
   * Builds the generated code of `prog` now rather than at its first packet
   * ('jit'), or starts measuring it ('auto'). A program with classifier
   * prefilters (CLASSIFY, the optimizer's) stays on the interpreter: the tier
   * runs it exactly (the classifier inlined, held to the interpreter by
   * test/vm/property.test.ts) but measured 10-70% slower per packet on a
   * 1,000-rule ACL (a packet the classifier places enters a second segment
   * through the driver).
   */
  load(prog: Program): void {
    if (this.tier !== 'interp' && prog !== this.jitProg) {
      this.jitProg = prog;
      this.jit = null;
      this.probe = 0;
      this.longWindows = 0;
      if (interpOnly(prog)) return;
      if (this.tier === 'jit') this.jit = jitCode(prog);
      else {
        this.probe = AUTO_PROBE_RUNS;
        this.env.walk = 0;
      }
    }
  }
  /** Whether runs of the loaded program go to the generated tier (for 'auto': chosen so far). */
  get onTier(): boolean {
    return this.jit !== null;
  }
  run(prog: Program, baseChain: number, pkt: Packet): number {
    if (this.tier !== 'interp' && prog !== this.jitProg) this.load(prog);
    const j = this.jit;
    if (j !== null) return jitDoChain(j, baseChain, pkt, this.regs, this.stack, this.env);
    const env = this.env;
    if (this.probe === 0) return nftDoChain(prog, baseChain, pkt, this.regs, this.stack, env);
    const v = nftDoChain(prog, baseChain, pkt, this.regs, this.stack, env);
    // a prefix of a chain left by a jump and walked on after the return
    // counts twice: a proxy, good enough for a choice of cost only
    if (env.walk >= AUTO_PROBE_RUNS * AUTO_TIER_WALK_EARLY) {
      this.probe = 0;
      this.jit = jitCode(prog);
    } else if (--this.probe === 0) {
      this.longWindows = env.walk >= AUTO_PROBE_RUNS * AUTO_TIER_WALK ? this.longWindows + 1 : 0;
      if (this.longWindows >= 2) this.jit = jitCode(prog);
      else {
        this.probe = AUTO_PROBE_RUNS;
        env.walk = 0;
      }
    }
    return v;
  }
}
