/**
 * bpf match: iptables `extensions/libxt_bpf.c` (revision 1), kernel
 * `net/netfilter/xt_bpf.c` (`struct xt_bpf_info_v1`): run a classic BPF
 * program (`--bytecode`, as printed by `nfbpf_compile`) or a pinned eBPF
 * object (`--object-pinned PATH`) on the packet.
 *
 * `--bytecode "N,code jt jf k,code jt jf k,..."`: N (u16, 1..64) then N
 * instructions (code u16, jt/jf u8, k u32, as sscanf reads them).
 * The last of the two options given decides the mode. Saved as
 * ` --bytecode "N,c t f k,..."` or ` --object-pinned PATH`.
 * Kernel checkentry: the classic program must pass the socket filter
 * checker (bpf_check_classic: allowed opcodes, constant divisors and
 * shifts, scratch cells, jump targets, a final return, no scratch read
 * before a store); a pinned object must exist, which nfvm cannot see and
 * accepts.
 *
 * Semantics (xt_bpf.c bpf_mt, XT_BPF_MODE_BYTECODE): the classic program
 * runs over the packet from its network header (skb->data at these hooks)
 * as the kernel runs it after bpf_convert_filter: A and X start at 0, a
 * load past the end (or a division by a zero X) ends the program with 0,
 * shifts by X use its low 5 bits, negative offsets reach the network header
 * (SKF_NET_OFF) or the link-layer header (SKF_LL_OFF); the match is a
 * non-zero return. Programs are checked at load and bounded by their
 * length (jumps only go forward). Loads of ancillary data (SKF_AD_OFF + N,
 * any load size) read the packet's metadata as convert_bpf_extensions
 * does: protocol, pkt_type, mark, the CPU (0: the one CPU of the model, as the cpu match sees it), the VLAN
 * tag, its presence and TPID, A ^ X, the netlink attribute searches over
 * the packet, the payload offset the flow dissector finds (ext/flowdissect.ts
 * skbGetPoff), a random number (the engine's seeded generator, as
 * statistic --mode random draws), and skb->dev's ifindex and type (the input device up to
 * FORWARD, the output device at POSTROUTING; at LOCAL_OUT skb->dev is
 * still NULL and the program exits with A, as Linux 6.18 does, IPv4 and IPv6).
 * Refused: the queue mapping and the rx hash (ANC_REFUSED), and pinned eBPF objects, whose program lives
 * in the node's BPF filesystem and no snapshot holds.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';
import { compatMatchFaces } from '../compat.js';
import { NotModelled, type MatchFn } from '../xt.js';
import {
  F_MAC_HEADER, M_CPU, M_FLAGS, M_HOOK, M_IIF, M_IIFTYPE, M_MACOFF, M_MARK, M_OIF, M_OIFTYPE, M_PKTTYPE, M_PROTOCOL, M_VLAN_PROTO, M_VLAN_TCI,
} from '../../vm/layout.js';
import { NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING } from '../../core/netfilter.js';
import { skbGetPoff } from '../flowdissect.js';

const XT_BPF_MAX_NUM_INSTR = 64;
const XT_BPF_PATH_MAX = 512;
const XT_BPF_MODE_BYTECODE = 0;
const XT_BPF_MODE_FD_PINNED = 1;

interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

interface BpfData {
  /** XT_BPF_MODE_BYTECODE or XT_BPF_MODE_FD_PINNED. */
  mode: number;
  /** The classic BPF program (bytecode mode). */
  prog: BpfInsn[];
  /** The pinned object's path (pinned mode). */
  path: string;
}

/** One sscanf integer conversion (%hu, %hhu, %u): skip blanks, optional sign, decimal digits; the value wraps to `bits`. */
function scanUint(s: string, p: number, bits: number): { value: number; end: number } | undefined {
  while (p < s.length && /[ \t\n\v\f\r]/.test(s[p]!)) p++;
  const r = strtoumax(s, 10, p);
  if (r.end === p) return undefined;
  const v = r.overflow ? (1n << BigInt(bits)) - 1n : BigInt.asUintN(bits, r.value);
  return { value: Number(v), end: r.end };
}

function parseBytecode(s: string): BpfInsn[] {
  // head: "%hu%c" with the character a comma
  const head = scanUint(s, 0, 16);
  if (!head || s[head.end] !== ',') fail('bpf: error parsing program length');
  const len = head!.value;
  if (len === 0) fail('bpf: illegal zero length program');
  if (len > XT_BPF_MAX_NUM_INSTR) fail('bpf: number of instructions exceeds maximum');
  const prog: BpfInsn[] = [];
  let tok = 0;
  for (;;) {
    const c = s.indexOf(',', tok);
    if (c < 0 || c + 1 >= s.length) break;
    tok = c + 1;
    if (prog.length >= len) fail('bpf: real program length exceeds the encoded length parameter');
    const code = scanUint(s, tok, 16);
    const jt = code && scanUint(s, code.end, 8);
    const jf = jt && scanUint(s, jt.end, 8);
    const k = jf && scanUint(s, jf.end, 32);
    if (!k) fail(`bpf: error at instr ${prog.length}`);
    prog.push({ code: code!.value, jt: jt!.value, jf: jf!.value, k: k!.value });
  }
  if (prog.length !== len) fail('bpf: parsed program length is less than the encoded length parameter');
  return prog;
}

/* Classic BPF opcodes (include/uapi/linux/filter.h, bpf_common.h). */
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, H = 0x08, B = 0x10;
const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0;
const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
const K = 0x00, X = 0x08;
const RET_A = 0x10;
const TAX = 0x00, TXA = 0x80;
/** BPF_MEMWORDS: the scratch memory cells. */
const MEMWORDS = 16;
/** SKF_AD_OFF, SKF_NET_OFF, SKF_LL_OFF as the u32 a `k` holds. */
const SKF_AD_OFF = 0xfffff000;
const SKF_NET_OFF = -0x100000;
const SKF_LL_OFF = -0x200000;
/** SKF_AD_MAX: the ancillary loads bpf_anc_helper knows lie in [SKF_AD_OFF, SKF_AD_OFF + SKF_AD_MAX), 4 apart. */
const SKF_AD_MAX = 64;
/* include/uapi/linux/filter.h: the ancillary fields, offsets from SKF_AD_OFF */
const SKF_AD_PROTOCOL = 0;
const SKF_AD_PKTTYPE = 4;
const SKF_AD_IFINDEX = 8;
const SKF_AD_NLATTR = 12;
const SKF_AD_NLATTR_NEST = 16;
const SKF_AD_MARK = 20;
const SKF_AD_QUEUE = 24;
const SKF_AD_HATYPE = 28;
const SKF_AD_RXHASH = 32;
const SKF_AD_CPU = 36;
const SKF_AD_ALU_XOR_X = 40;
const SKF_AD_VLAN_TAG = 44;
const SKF_AD_VLAN_TAG_PRESENT = 48;
const SKF_AD_PAY_OFFSET = 52;
const SKF_AD_RANDOM = 56;
const SKF_AD_VLAN_TPID = 60;
/** The ancillary fields no snapshot or capture holds, and why. */
const ANC_REFUSED: ReadonlyMap<number, string> = new Map([
  [SKF_AD_QUEUE, 'SKF_AD_QUEUE, skb->queue_mapping: the receive queue the NIC chose, which no capture records'],
  [SKF_AD_RXHASH, 'SKF_AD_RXHASH, skb->hash: the NIC\'s or the stack\'s flow hash, which no capture records'],
]);
/** PKT_TYPE_MAX: convert_skb_access masks skb->pkt_type with it. */
const PKT_TYPE_MAX = 7;
/** NLA_HDRLEN, and NLA_TYPE_MASK: nla_type() without NLA_F_NESTED and NLA_F_NET_BYTEORDER. */
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff;

const ALU_OPS = [ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR];
const COND = [JEQ, JGT, JGE, JSET];

/** chk_code_allowed() (net/core/filter.c): the opcodes a classic program may use. */
const ALLOWED = new Set<number>([
  ...ALU_OPS.flatMap((op) => [ALU | op | K, ALU | op | X]), ALU | NEG,
  LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | LEN, LD | W | IND, LD | H | IND, LD | B | IND, LD | IMM, LD | MEM,
  LDX | W | LEN, LDX | B | MSH, LDX | IMM, LDX | MEM,
  ST, STX, MISC | TAX, MISC | TXA, RET | K, RET | RET_A,
  JMP | JA, ...COND.flatMap((op) => [JMP | op | K, JMP | op | X]),
]);

/** bpf_anc_helper() & BPF_ANC: a load of a known ancillary field. */
function ancillary(f: BpfInsn): boolean {
  const c = f.code;
  if (c !== (LD | W | ABS) && c !== (LD | H | ABS) && c !== (LD | B | ABS)) return false;
  const off = f.k - SKF_AD_OFF;
  return f.k >= SKF_AD_OFF && off < SKF_AD_MAX && off % 4 === 0;
}

/** bpf_check_classic() with check_load_and_stores() (net/core/filter.c, Linux 6.18). */
function checkClassic(prog: readonly BpfInsn[]): string | undefined {
  const flen = prog.length;
  for (let pc = 0; pc < flen; pc++) {
    const f = prog[pc]!;
    if (!ALLOWED.has(f.code)) return `instruction ${pc}: opcode ${f.code} not allowed`;
    switch (f.code) {
      case ALU | DIV | K:
      case ALU | MOD | K:
        if (f.k === 0) return 'division by zero';
        break;
      case ALU | LSH | K:
      case ALU | RSH | K:
        if (f.k >= 32) return 'shift out of range';
        break;
      case LD | MEM:
      case LDX | MEM:
      case ST:
      case STX:
        if (f.k >= MEMWORDS) return 'scratch memory slot out of range';
        break;
      case JMP | JA:
        if (f.k >= flen - pc - 1) return 'jump out of range';
        break;
      case LD | W | ABS:
      case LD | H | ABS:
      case LD | B | ABS:
        if (!ancillary(f) && f.k >= SKF_AD_OFF) return 'unknown ancillary load';
        break;
      default:
        if ((f.code & 0x07) === JMP && pc + f.jt + 1 >= flen || (f.code & 0x07) === JMP && pc + f.jf + 1 >= flen) return 'jump out of range';
    }
  }
  const last = prog[flen - 1];
  if (!last || (last.code !== (RET | K) && last.code !== (RET | RET_A))) return 'program does not end with a return';
  // check_load_and_stores(): a scratch cell is read only after a store on every path to it
  const masks = new Array<number>(flen).fill(0xffff);
  let memvalid = 0;
  for (let pc = 0; pc < flen; pc++) {
    memvalid &= masks[pc]!;
    const f = prog[pc]!;
    if (f.code === ST || f.code === STX) memvalid |= 1 << f.k;
    else if (f.code === (LD | MEM) || f.code === (LDX | MEM)) {
      if (!(memvalid & (1 << f.k))) return 'scratch memory read before it is written';
    } else if (f.code === (JMP | JA)) {
      masks[pc + 1 + f.k]! &= memvalid;
      memvalid = 0xffff;
    } else if ((f.code & 0x07) === JMP) {
      masks[pc + 1 + f.jt]! &= memvalid;
      masks[pc + 1 + f.jf]! &= memvalid;
      memvalid = 0xffff;
    }
  }
  return undefined;
}

export const bpf: MatchModule<BpfData> = {
  kind: 'match',
  name: 'bpf',
  options: [
    { name: 'bytecode', arg: 1 },
    { name: 'object-pinned', arg: 1 },
  ],
  init: () => ({ mode: XT_BPF_MODE_BYTECODE, prog: [], path: '' }),
  parse(d, opt, arg) {
    if (opt === 'bytecode') {
      d.mode = XT_BPF_MODE_BYTECODE;
      d.prog = parseBytecode(arg!);
    } else {
      d.mode = XT_BPF_MODE_FD_PINNED;
      d.path = Buffer.from(arg!, 'utf8').subarray(0, XT_BPF_PATH_MAX - 1).toString('utf8');
    }
  },
  final(_d, seen) {
    if (seen.size === 0) fail('bpf: one of --bytecode or --pinned is required', 'option');
  },
  save(d) {
    if (d.mode === XT_BPF_MODE_FD_PINNED) return ` --object-pinned ${d.path}`;
    return ` --bytecode "${d.prog.length},${d.prog.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k}`).join(',')}"`;
  },
  check(d) {
    if (d.mode === XT_BPF_MODE_BYTECODE) {
      const why = checkClassic(d.prog);
      if (why) return `xt_bpf: invalid BPF program: ${why}`;
    }
    return undefined;
  },
  ...compatMatchFaces(bpfMt, 1),
};


// --- reference semantics (xt_bpf.c bpf_mt over net/core/filter.c's classic programs) --------

/** The bytes `size` at nh-relative `off` (network header, or the link layer for SKF_LL_OFF) as an absolute offset, or -1 (bpf_internal_load_pointer_neg_helper). */
function loadAt(par: Parameters<MatchFn>[0], off: number, size: number): number {
  let at: number;
  if (off >= 0) at = par.nh + off;
  else if (off >= SKF_NET_OFF) at = par.nh + off - SKF_NET_OFF;
  else if (off >= SKF_LL_OFF) {
    if ((par.meta[M_FLAGS]! & F_MAC_HEADER) === 0) return -1;
    at = par.meta[M_MACOFF]! + off - SKF_LL_OFF;
  } else return -1;
  return at < 0 || at + size > par.end ? -1 : at;
}

/** nla_find(): the offset of the first attribute of type `type` in d[at, at + len), or -1 (nla_for_each_attr, nla_ok, nla_next; u16 fields in host order). */
function nlaFind(d: Uint8Array, at: number, len: number, type: number): number {
  let rem = len;
  while (rem >= NLA_HDRLEN) {
    const nlaLen = d[at]! | (d[at + 1]! << 8);
    if (nlaLen < NLA_HDRLEN || nlaLen > rem) return -1;
    if (((d[at + 2]! | (d[at + 3]! << 8)) & NLA_TYPE_MASK) === type) return at;
    const totlen = (nlaLen + 3) & ~3;
    rem -= totlen;
    at += totlen;
  }
  return -1;
}

/**
 * The value A takes from one of the ancillary fields the packet's metadata
 * holds (convert_bpf_extensions, convert_skb_access, the
 * bpf_skb_get_nlattr / bpf_skb_get_nlattr_nest / bpf_get_raw_cpu_id calls).
 * skb->data is the network header, skb->len the L3 length; nfvm's packets
 * are linear.
 */
function ancillaryLoad(ad: number, par: Parameters<MatchFn>[0], a: number, x: number): number {
  const meta = par.meta;
  switch (ad) {
    case SKF_AD_PROTOCOL: return meta[M_PROTOCOL]! & 0xffff;
    case SKF_AD_PKTTYPE: return meta[M_PKTTYPE]! & PKT_TYPE_MAX;
    case SKF_AD_MARK: return meta[M_MARK]!;
    case SKF_AD_CPU: return meta[M_CPU]!;
    case SKF_AD_ALU_XOR_X: return a ^ x;
    case SKF_AD_VLAN_TAG: return meta[M_VLAN_PROTO]! !== 0 ? meta[M_VLAN_TCI]! & 0xffff : 0;
    case SKF_AD_VLAN_TAG_PRESENT: return meta[M_VLAN_PROTO]! !== 0 ? 1 : 0;
    case SKF_AD_VLAN_TPID: return meta[M_VLAN_PROTO]! & 0xffff;
    case SKF_AD_PAY_OFFSET: return skbGetPoff(par.d, par.nh, par.end, meta[M_PROTOCOL]!);
    // bpf_user_rnd_u32(): a draw of the engine's seeded generator, taken as drawn (trace --all-branches does not explore it)
    case SKF_AD_RANDOM: return par.env.rng.draw(undefined);
    case SKF_AD_NLATTR:
    default: {
      // SKF_AD_NLATTR, SKF_AD_NLATTR_NEST: A (u32) is the offset of the attributes (or of the nest), X the type
      const len = par.end - par.nh;
      const au = a >>> 0;
      if (len < NLA_HDRLEN || au > len - NLA_HDRLEN) return 0;
      let at = par.nh + au;
      let rem = len - au;
      if (ad === SKF_AD_NLATTR_NEST) {
        // nla_ok(), then nla_find_nested(): the nest's payload
        const nlaLen = par.d[at]! | (par.d[at + 1]! << 8);
        if (nlaLen < NLA_HDRLEN || nlaLen > rem) return 0;
        at += NLA_HDRLEN;
        rem = nlaLen - NLA_HDRLEN;
      }
      const found = x >>> 0 > NLA_TYPE_MASK ? -1 : nlaFind(par.d, at, rem, x >>> 0);
      return found < 0 ? 0 : found - par.nh;
    }
  }
}

function bpfMt(info: BpfData): MatchFn {
  if (info.mode !== XT_BPF_MODE_BYTECODE) throw new NotModelled('match bpf --object-pinned: the pinned eBPF program lives in the node\'s BPF filesystem, which no snapshot holds');
  const n = info.prog.length;
  const code = new Int32Array(n);
  const jt = new Int32Array(n);
  const jf = new Int32Array(n);
  const k = new Int32Array(n);
  /** The SKF_AD_* field an LD|ABS instruction loads (convert_bpf_extensions), or -1. */
  const anc = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const f = info.prog[i]!;
    if (ancillary(f)) {
      const why = ANC_REFUSED.get(f.k - SKF_AD_OFF);
      if (why) throw new NotModelled(`match bpf: instruction ${i} loads ancillary data (SKF_AD_OFF + ${f.k - SKF_AD_OFF}) which the model does not provide: ${why}`);
      anc[i] = f.k - SKF_AD_OFF;
    }
    code[i] = f.code;
    jt[i] = f.jt;
    jf[i] = f.jf;
    k[i] = f.k | 0;
  }
  const mem = new Int32Array(MEMWORDS);
  return (par) => {
    const d = par.d;
    let a = 0;
    let x = 0;
    // jumps go forward only (checked at load): at most n steps
    for (let pc = 0; pc < n; pc++) {
      const c = code[pc]!;
      const kk = k[pc]!;
      switch (c & 0x07) {
        case LD:
        case LDX: {
          const mode = c & 0xe0;
          let v: number;
          const ad = anc[pc]!;
          if (ad >= 0) {
            // convert_bpf_extensions(): whatever the load's size
            if (ad === SKF_AD_IFINDEX || ad === SKF_AD_HATYPE) {
              // skb->dev: the input device up to FORWARD, the output device at POSTROUTING, none at LOCAL_OUT
              // (set by ip_output); without one the program exits with A
              const hook = par.meta[M_HOOK]!;
              if (hook === NF_INET_LOCAL_OUT) return a !== 0;
              const out = hook === NF_INET_POST_ROUTING;
              a = ad === SKF_AD_IFINDEX ? par.meta[out ? M_OIF : M_IIF]! : par.meta[out ? M_OIFTYPE : M_IIFTYPE]! & 0xffff;
            } else a = ancillaryLoad(ad, par, a, x);
            break;
          }
          if (mode === IMM) v = kk;
          else if (mode === MEM) v = mem[kk]!;
          else if (mode === LEN) v = par.end - par.nh;
          else {
            const size = (c & 0x18) === W ? 4 : (c & 0x18) === H ? 2 : 1;
            const at = loadAt(par, mode === IND ? (x + kk) | 0 : kk, size);
            if (at < 0) return false;
            if (mode === MSH) v = (d[at]! & 0x0f) << 2;
            else v = size === 4 ? (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]! : size === 2 ? (d[at]! << 8) | d[at + 1]! : d[at]!;
          }
          if ((c & 0x07) === LD) a = v;
          else x = v;
          break;
        }
        case ST:
          mem[kk] = a;
          break;
        case STX:
          mem[kk] = x;
          break;
        case ALU: {
          const op = c & 0xf0;
          const src = (c & X) !== 0 ? x : kk;
          switch (op) {
            case ADD: a = (a + src) | 0; break;
            case SUB: a = (a - src) | 0; break;
            case MUL: a = Math.imul(a, src); break;
            case DIV:
              if (src === 0) return false;
              a = ((a >>> 0) / (src >>> 0)) | 0;
              break;
            case MOD:
              if (src === 0) return false;
              a = ((a >>> 0) % (src >>> 0)) | 0;
              break;
            case OR: a |= src; break;
            case AND: a &= src; break;
            case XOR: a ^= src; break;
            case LSH: a <<= src; break;
            case RSH: a >>>= src; break;
            case NEG: a = -a | 0; break;
          }
          break;
        }
        case JMP: {
          const op = c & 0xf0;
          if (op === JA) {
            pc += kk >>> 0;
            break;
          }
          const src = ((c & X) !== 0 ? x : kk) >>> 0;
          const au = a >>> 0;
          const t = op === JEQ ? au === src : op === JGT ? au > src : op === JGE ? au >= src : (au & src) !== 0;
          pc += t ? jt[pc]! : jf[pc]!;
          break;
        }
        case RET:
          return ((c & RET_A) !== 0 ? a : kk) !== 0;
        case MISC:
          if ((c & 0xf8) === TXA) a = x;
          else x = a;
          break;
      }
    }
    return false;
  };
}
