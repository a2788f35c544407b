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
 * checker (nfvm checks the instruction classes, jump targets and that the
 * program ends with a return); a pinned object must exist, which nfvm
 * cannot see and accepts.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';

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

/** A subset of the kernel's bpf_check_classic(). */
function checkClassic(prog: readonly BpfInsn[]): string | undefined {
  for (let pc = 0; pc < prog.length; pc++) {
    const f = prog[pc]!;
    const cls = f.code & 0x07;
    if (cls === 0x05) {
      // BPF_JMP
      if ((f.code & 0xf0) === 0x00) {
        if (f.k >= prog.length - pc - 1) return 'jump out of range';
      } else if (pc + 1 + f.jt >= prog.length || pc + 1 + f.jf >= prog.length) {
        return 'jump out of range';
      }
    }
    if ((cls === 0x02 || cls === 0x03) && f.k >= 16) return 'scratch memory slot out of range';
    if (cls === 0x04 && ((f.code & 0xf0) === 0x30 || (f.code & 0xf0) === 0x90) && (f.code & 0x08) === 0 && f.k === 0) return 'division by zero';
  }
  const last = prog[prog.length - 1];
  if (!last || (last.code & 0x07) !== 0x06) return 'program does not end with a return';
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
  lower: 'needs a BPF interpreter for the program (or the pinned eBPF object)',
  reference: 'needs a BPF interpreter for the program (or the pinned eBPF object)',
};

