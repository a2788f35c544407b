/**
 * Generated classic BPF programs the kernel's bpf_check_classic accepts, as
 * `--bytecode` strings: loads of the packet (absolute, indexed after
 * `ldx msh` / a loaded X, from the network header through SKF_NET_OFF and
 * the link layer through SKF_LL_OFF, some past the end), the length,
 * immediates, scratch cells stored first, every ALU operation with constants
 * and X (X may be zero for div/mod), forward jumps, `ret #k` / `ret a`;
 * bpfAncProgram adds the ancillary loads the model provides.
 */
import fc from 'fast-check';

type Insn = [code: number, jt: number, jf: number, k: number];

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const off = fc.oneof(fc.integer({ min: 0, max: 64 }), pick([9, 12, 16, 20, 22, 1500]), fc.integer({ min: 0, max: 40 }).map((v) => (0xfff00000 + v) >>> 0), fc.integer({ min: 0, max: 20 }).map((v) => (0xffe00000 + v) >>> 0));
const u32 = fc.oneof(pick([0, 1, 2, 6, 17, 0x45, 0xff, 0xffff, 0x80000000, 0xffffffff]), fc.nat());

/** One instruction that is not a jump or a return (for position `pc` of a program of `n`). */
const plain: fc.Arbitrary<Insn> = fc.oneof(
  fc.tuple(pick([0x20, 0x28, 0x30]), off).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x40, 0x48, 0x50]), fc.integer({ min: 0, max: 30 })).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.integer({ min: 0, max: 20 }).map((k) => [0xb1, 0, 0, k] as Insn),
  fc.constantFrom<Insn>([0x80, 0, 0, 0], [0x81, 0, 0, 0], [0x07, 0, 0, 0], [0x87, 0, 0, 0], [0x84, 0, 0, 0]),
  fc.tuple(pick([0x00, 0x01]), u32).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x60, 0x61, 0x02, 0x03]), fc.integer({ min: 0, max: 3 })).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x04, 0x14, 0x24, 0x44, 0x54, 0xa4]), u32).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x34, 0x94]), u32.filter((k) => k !== 0)).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x64, 0x74]), fc.integer({ min: 0, max: 31 })).map(([c, k]) => [c, 0, 0, k] as Insn),
  pick([0x0c, 0x1c, 0x2c, 0x3c, 0x4c, 0x5c, 0x6c, 0x7c, 0x9c, 0xac]).map((c) => [c, 0, 0, 0] as Insn),
);

/** SKF_AD_OFF + the ancillary fields the model provides (include/uapi/linux/filter.h), as the u32 a `k` holds. */
const ANC = [0, 4, 8, 12, 16, 20, 28, 36, 40, 44, 48, 52, 60].map((o) => (0xfffff000 + o) >>> 0);
/** An ancillary load (any size), or A/X set to small offsets and attribute types for the netlink searches. */
const ancillary: fc.Arbitrary<Insn> = fc.oneof(
  fc.tuple(pick([0x20, 0x28, 0x30]), pick(ANC)).map(([c, k]) => [c, 0, 0, k] as Insn),
  fc.tuple(pick([0x00, 0x01]), fc.integer({ min: 0, max: 48 })).map(([c, k]) => [c, 0, 0, k] as Insn),
);

/** A program: the scratch cells 0-3 stored first, then `body` with forward jumps, then a return. */
const programOf = (plain: fc.Arbitrary<Insn>): fc.Arbitrary<string> => fc.tuple(
  fc.array(fc.oneof({ weight: 3, arbitrary: plain.map((i) => ({ i, jump: 0 })) }, { weight: 1, arbitrary: fc.tuple(pick([0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d]), u32, fc.nat(), fc.nat()).map(([c, k, t, f]) => ({ i: [c, t, f, k] as Insn, jump: 1 })) }), { minLength: 1, maxLength: 14 }),
  fc.oneof(u32.map((k) => [0x06, 0, 0, k] as Insn), fc.constant<Insn>([0x16, 0, 0, 0])),
  fc.oneof(u32.map((k) => [0x06, 0, 0, k] as Insn), fc.constant<Insn>([0x16, 0, 0, 0])),
).map(([body, ret1, ret2]) => {
  const prog: Insn[] = [[0x00, 0, 0, 0], [0x02, 0, 0, 0], [0x02, 0, 0, 1], [0x02, 0, 0, 2], [0x02, 0, 0, 3]];
  const start = prog.length;
  const n = start + body.length + 2;
  body.forEach(({ i, jump }, j) => {
    const pc = start + j;
    const room = n - pc - 1; // instructions after this one
    if (jump && i[0] === 0x05) prog.push([0x05, 0, 0, i[3] % room]);
    else if (jump) prog.push([i[0], i[1] % Math.min(room, 256), i[2] % Math.min(room, 256), i[3]]);
    else prog.push(i);
  });
  prog.push(ret1, ret2);
  return `${prog.length},${prog.map((i) => i.join(' ')).join(',')}`;
});

export const bpfProgram: fc.Arbitrary<string> = programOf(plain);
/** Programs that also load the ancillary fields the model provides (SKF_AD_*). */
export const bpfAncProgram: fc.Arbitrary<string> = programOf(fc.oneof({ weight: 2, arbitrary: plain }, { weight: 3, arbitrary: ancillary }));
