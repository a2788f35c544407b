/**
 * The optimizer's parts: which rules form runs, where classifiers go and
 * how they print, which compile options turn them on, what the load-time
 * validator refuses in classifier data, and the fallbacks of the packet path.
 */
import { describe, expect, it } from 'vitest';
import { parseRestore } from '../../compiler/parse/restore.js';
import { compileTable } from '../../compiler/compile.js';
import { MIN_RUN, classifiable, findRuns } from '../../compiler/optimize/index.js';
import { disasm } from '../../vm/disasm.js';
import { validate } from '../../vm/validate.js';
import { VmError, type Program } from '../../vm/program.js';
import { vmTable } from '../../engine/vm-table.js';
import { CLS_BLOCKS, CLS_COLS, CLS_FLD_WORDS, CLS_HEADER, CLS_NBLOCKS, CLS_NCOLS, CLS_NSUM, CLS_PCS, CLS_RANKS, CLS_RK_WORDS, CLS_SIZE, CLS_SUMS, CLS_TOP, CLS_TOP_MIN } from '../../vm/expr/classify.js';
import { Op, Rec } from '../../vm/opcodes.js';
import { classifiers, optPacketOf, type OptPacket } from './gen.js';

const table = (rules: string[], chains = ''): string =>
  ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', chains, ...rules, 'COMMIT'].filter((l) => l !== '').join('\n') + '\n';

const simple = (n: number, chain = 'FORWARD', at = 0): string[] =>
  Array.from({ length: n }, (_, i) => `-A ${chain} -s 10.0.${(at + i) >> 8}.${(at + i) & 255} -p tcp --dport ${1000 + at + i} -j ACCEPT`);

/** A check that the validator refuses `prog` (a VmError matching `why`) once `change` is made to its pool or code, and takes it again once undone. */
function refusesAfter(prog: Program): (why: RegExp, change: () => void) => void {
  return (why, change) => {
    const savePool = prog.pool.slice();
    const saveCode = prog.code.slice();
    change();
    try {
      expect(() => validate(prog)).toThrow(VmError);
      expect(() => validate(prog)).toThrow(why);
    } finally {
      prog.pool.set(savePool);
      prog.code.set(saveCode);
    }
    validate(prog);
  };
}

/** The word offset of the first classify record. */
function classifyAt(prog: Program): number {
  const code = prog.code;
  for (let pc = 0; pc < code.length; pc = (code[pc]! & Rec.OP_MASK) === Op.RULE ? pc + (code[pc]! >>> 8) : pc + 1) {
    if ((code[pc]! & Rec.OP_MASK) === Op.RULE && code[pc + Rec.RULE_WORDS] === Op.CLASSIFY) return pc + Rec.RULE_WORDS;
  }
  throw new Error('no classify record');
}

describe('runs', () => {
  it('are maximal runs of classifiable rules, MIN_RUN or longer', () => {
    expect(MIN_RUN).toBe(16);
    const rules = (lines: string[]) => parseRestore(table(lines)).tables.get('filter')!.chains.get('FORWARD')!.rules;
    expect(findRuns(rules(simple(15)), 'ip')).toEqual([]);
    expect(findRuns(rules(simple(16)), 'ip')).toEqual([{ start: 0, end: 16 }]);
    const mixed = [...simple(20), '-A FORWARD -m statistic --mode nth --every 2 --packet 0 -j ACCEPT', ...simple(10, 'FORWARD', 20), '-A FORWARD -f -j DROP', ...simple(17, 'FORWARD', 30)];
    expect(findRuns(rules(mixed), 'ip')).toEqual([{ start: 0, end: 20 }, { start: 32, end: 49 }]);
  });

  it('take the IP part without -f, tcp and udp with their protocol, and pure matches', () => {
    const one = (r: string, fam: 'ip' | 'ip6' = 'ip') => classifiable(parseRestore(table([`-A FORWARD ${r}`]), { family: fam }).tables.get('filter')!.chains.get('FORWARD')!.rules[0]!, fam);
    for (const r of ['-j ACCEPT', '! -s 10.0.0.0/255.0.255.0 -d 10.1.0.0/16', '! -i eth+ -o veth12 -j DROP', '-i + -j DROP', '! -p udp', '-p tcp ! --sport 1:2 --dport 3 ! --syn -m comment --comment x', '-p udp -m udp ! --dport 53'])
      expect(one(r), r).toBe(true);
    expect(one('-s 2001:db8::/ffff:0:ffff:: -p tcp --dport 80', 'ip6')).toBe(true);
    // matches that only read the packet and the node (MatchModule.pure), in any place among the rule's matches,
    // in a rule that an address, an interface, ports or TCP flags narrow
    for (const r of ['-s 10.0.0.0/8 -m mark --mark 1', '-i eth0 -m length --length 1:2', '-i eth0 -p tcp -m conntrack --ctstate NEW -m tcp --dport 22', '-p tcp -m tcp --dport 80 -m state --state NEW',
      '-d 10.0.0.1 -m connmark ! --mark 2 -m addrtype --dst-type LOCAL -m pkttype --pkt-type unicast', '-o eth1 -m iprange --src-range 10.0.0.1-10.0.0.9 -m ttl --ttl-lt 5',
      '-p tcp --syn -m physdev --physdev-in veth0 -m mac --mac-source 02:00:00:00:00:01', '-p tcp -m comment --comment x -m tcp --tcp-flags SYN,ACK SYN -m conntrack --ctstate NEW'])
      expect(one(r), r).toBe(true);
    expect(one('-m hl --hl-eq 1 -p udp --dport 53', 'ip6')).toBe(true);
    for (const r of ['-f', '! -f', '! -i +', '-p tcp -m multiport --dports 1,2', '-p tcp --tcp-option 2', '-m statistic --mode random --probability 0.5', '-m limit --limit 1/s',
      '-m recent --rcheck --name x', '-m set --match-set s src', '-p tcp -m conntrack --ctstate NEW -m multiport --dports 1,2', '-m quota --quota 10',
      // a pure match without a test that narrows the rule: it would be a candidate for every packet (of its protocol)
      '-m mark --mark 1', '-m conntrack --ctstate RELATED,ESTABLISHED', '-p tcp -m conntrack --ctstate ESTABLISHED', '-s 0.0.0.0/0 -p udp -m udp -m length --length 1:2'])
      expect(one(r), r).toBe(false);
    // a comment alone narrows nothing and needs nothing
    expect(one('-m comment --comment x')).toBe(true);
  });
});

describe('compile options', () => {
  const rs = parseRestore(table([...simple(20), '-A U1 -m statistic --mode nth --every 3 --packet 0 -j RETURN', ...simple(18, 'U1', 100)], ':U1 - [0:0]'));
  it('optimize defaults to 0 for compileTable and to 1 for vmTable; backend nft never classifies', () => {
    expect(classifiers(compileTable(rs, 'filter').program)).toBe(0);
    expect(classifiers(compileTable(rs, 'filter', { optimize: 1 }).program)).toBe(2);
    expect(classifiers(compileTable(rs, 'filter', { optimize: 1, backend: 'nft' }).program)).toBe(0);
    expect(classifiers(vmTable(rs, 'filter').compiled.program)).toBe(2);
    expect(classifiers(vmTable(rs, 'filter', { optimize: 0 }).compiled.program)).toBe(0);
  });

  it('prints as `classify set __clsN rules A-B` (1-based positions in the chain), first in the run\'s first rule', () => {
    const text = disasm(compileTable(rs, 'filter', { optimize: 1 }).program);
    expect(text).toContain('ip filter FORWARD\n  [ classify set __cls0 rules 1-20 ]\n  [ meta load l4proto => reg 1 ]');
    expect(text).toContain('ip filter U1\n  [ classify set __cls1 rules 2-19 ]\n');
    // the straight program is the optimized one without the classify lines
    expect(text.replace(/ {2}\[ classify [^\n]*\n/g, '')).toBe(disasm(compileTable(rs, 'filter').program));
  });
});

describe('validator', () => {
  const prog = compileTable(parseRestore(table(simple(40))), 'filter', { optimize: 1 }).program;
  const at = classifyAt(prog);
  const h = prog.code[at + CLS_HEADER]!;
  const pool = prog.pool;
  const refuses = refusesAfter(prog);

  it('accepts the compiled program', () => {
    expect(() => validate(prog)).not.toThrow();
  });
  it('refuses a header outside the pool and data past its end', () => {
    refuses(/classify: header/, () => (prog.code[at + CLS_HEADER] = pool.length));
    refuses(/classify: data outside the pool/, () => (pool[h + CLS_SIZE] = pool.length - h + 1));
  });
  it('refuses jump targets that are not the run\'s rule headers in order', () => {
    const t = h + pool[h + CLS_PCS]!;
    refuses(/classify: target 3 does not follow rule/, () => (pool[t + 3] = pool[t + 3]! + 1));
    refuses(/classify: target 2 does not follow rule/, () => {
      const x = pool[t + 2]!;
      pool[t + 2] = pool[t + 3]!;
      pool[t + 3] = x;
    });
    refuses(/target 40 does not follow rule/, () => (pool[t + 40] = prog.code.length)); // the run's end
  });
  it('refuses unsorted interval starts and rows naming rules past the block', () => {
    const bt = h + pool[h + CLS_BLOCKS]!;
    const fd = h + pool[bt + 3]!;
    const st = h + pool[fd + 2]!;
    refuses(/starts not increasing/, () => (pool[st + 2] = pool[st + 1]!));
    refuses(/does not start at 0/, () => (pool[st] = 0));
    const rows = h + pool[fd + 3]!;
    refuses(/block 0 field \d+ row 0 names bits past its end/, () => (pool[rows + 1] = pool[rows + 1]! | (1 << 20))); // 40 rules: word 1 holds bits 0..7
    refuses(/field 99 not computed/, () => (pool[fd] = 99));
    refuses(/field table out of range/, () => (pool[bt + 2] = 1000 / CLS_FLD_WORDS));
  });
  it('refuses a rank list out of range, unsorted union starts, ranks past a block\'s intervals and a summary map past the summary\'s', () => {
    // blocks of 8 rules: five blocks, a summary and ranks
    const p = compileTable(parseRestore(table(simple(40))), 'filter', { optimize: 1, classifierBlock: 8 }).program;
    const q = p.pool;
    const hh = p.code[classifyAt(p) + CLS_HEADER]!;
    expect(q[hh + CLS_NBLOCKS]).toBe(5);
    const rl = hh + q[hh + CLS_RANKS]!;
    expect(q[rl]).toBeGreaterThan(0);
    const check = refusesAfter(p);
    const e = rl + 1;
    const st = hh + q[e + 2]!;
    const rt = hh + q[e + 3]!;
    check(/rank list out of range/, () => (q[hh + CLS_RANKS] = q[hh + CLS_SIZE]!));
    check(/rank list out of range/, () => (q[rl] = 99));
    check(/ranks of field 99 not computed/, () => (q[e] = 99));
    check(/ranks of field \d+ out of range/, () => (q[e + 1] = q[hh + CLS_SIZE]!));
    check(/starts not increasing/, () => (q[st + 2] = q[st + 1]!));
    check(/do not start at 0/, () => (q[st] = 0));
    check(/rank of block 1 on field \d+ past its intervals/, () => (q[rt] = q[rt]! | (0xffff << 16)));
    check(/ranks without a block summary/, () => {
      q[hh + CLS_NSUM] = 0;
      q[hh + CLS_NCOLS] = 0;
    });
    check(/columns without a block summary/, () => (q[hh + CLS_NSUM] = 0));
    // the columns: every block named, in order
    const cols = hh + q[hh + CLS_COLS]!;
    const ncols = q[hh + CLS_NCOLS]!;
    expect(ncols).toBeGreaterThanOrEqual(5);
    check(/column table out of range/, () => (q[hh + CLS_NCOLS] = 4));
    check(/column table out of range/, () => (q[hh + CLS_COLS] = q[hh + CLS_SIZE]!));
    check(/column 0 is not of block -1 or 0/, () => (q[cols] = 1));
    check(/no column of block 4/, () => (q[cols + ncols - 1] = 3));
    check(/column \d+ is not of block/, () => (q[cols + ncols - 1] = 5));
    check(/summary map of field \d+ past the summary's intervals/, () => (q[hh + q[e + 4]!] = 1 << 20));
    expect(CLS_RK_WORDS).toBe(6);
  });
});

describe('packet path', () => {
  // 40 rules on TCP ports; rule 30 is the only one port 1029 can hit
  const rs = parseRestore(table(simple(40)));
  const pkt = (over: Partial<OptPacket>): OptPacket => ({
    src: '10.0.0.29', dst: '10.9.9.9', proto: 6, sport: 1, dport: 1029, tcpFlags: 2, frag: 0, truncate: undefined, iif: 'eth0', oif: 'eth1', mark: 0, ...over,
  });
  const counted = (opt: 0 | 1, g: OptPacket): [number, number] => {
    const e = vmTable(rs, 'filter', { optimize: opt });
    const v = e.run('FORWARD', optPacketOf('ip', g));
    const c = e.counters().get('FORWARD')!;
    return [v, c.rules.findIndex((x) => x.packets > 0)];
  };
  it('lands on the matching rule, or past the run to the policy', () => {
    expect(counted(1, pkt({}))).toEqual([1, 29]);
    expect(counted(1, pkt({ dport: 1 }))).toEqual([0, -1]);
  });
  it('leaves truncated and offset-1 TCP packets to linear evaluation (their hotdrop is exact)', () => {
    for (const g of [pkt({ truncate: 10 }), pkt({ frag: 1 }), pkt({ frag: 185 }), pkt({ proto: 17 }), pkt({ proto: 17, truncate: 3 })]) {
      expect(counted(1, g), JSON.stringify(g)).toEqual(counted(0, g));
    }
    expect(counted(1, pkt({ truncate: 10 }))).toEqual([0, -1]); // hotdrop in rule 1's xt_l4 guard
  });
});

describe('block summary of a long run', () => {
  // 600 rules in blocks of one: 600 block bits per summary row, about 1,200 points per address key
  const n = 600;
  const rs = parseRestore(table(simple(n)));
  const opt = vmTable(rs, 'filter', { optimize: 1, classifierBlock: 1 });
  const straight = vmTable(rs, 'filter', { optimize: 0 });
  it('groups points so that its rows stay linear in the run', () => {
    const prog = opt.compiled.program;
    const h = prog.code[classifyAt(prog) + CLS_HEADER]!;
    const nsum = prog.pool[h + CLS_NSUM]!;
    expect(nsum).toBeGreaterThan(0);
    let words = 0;
    for (let f = 0; f < nsum; f++) {
      const fd = h + prog.pool[h + CLS_SUMS]! + f * CLS_FLD_WORDS;
      words += prog.pool[fd + 1]! * Math.ceil(n / 32);
    }
    expect(words).toBeLessThanOrEqual(8 * n * nsum);
    // the source key alone has a point per rule and one after it: grouped
    const src = Array.from({ length: nsum }, (_, f) => prog.pool[h + prog.pool[h + CLS_SUMS]! + f * CLS_FLD_WORDS + 1]!);
    expect(Math.max(...src)).toBeLessThan(n);
  });
  it('ranks the fields within twice the rest of the classifier', () => {
    const prog = opt.compiled.program;
    const h = prog.code[classifyAt(prog) + CLS_HEADER]!;
    const rl = prog.pool[h + CLS_RANKS]!;
    // 600 blocks: a union of about 1,200 points costs 360,000 words a field, more than twice the rest of the data
    const size = prog.pool[h + CLS_SIZE]!;
    const ranked = rl === 0 ? 0 : size - rl;
    expect(ranked).toBeLessThanOrEqual(rl === 0 ? 0 : 2 * rl);
    // the small fields (protocol) still fit
    expect(rl === 0 ? 0 : prog.pool[h + rl]!).toBeGreaterThan(0);
  });
  it('still lands where linear evaluation lands', () => {
    const ip = (i: number) => `10.0.${i >> 8}.${i & 255}`;
    // the verdict and the rule whose counter the packet moved
    const run = (e: typeof opt, g: OptPacket): [number, number] => {
      const before = e.counters().get('FORWARD')!.rules.map((x) => x.packets);
      const v = e.run('FORWARD', optPacketOf('ip', g));
      return [v, e.counters().get('FORWARD')!.rules.findIndex((x, k) => x.packets !== before[k])];
    };
    let hits = 0;
    for (let i = 0; i < n; i += 7) {
      for (const [src, dport] of [[ip(i), 1000 + i], [ip(i), 1001 + i], [ip(i + 1), 1000 + i], ['10.0.9.9', 1000 + i]] as const) {
        const g: OptPacket = { src, dst: '10.9.9.9', proto: 6, sport: 1, dport, tcpFlags: 2, frag: 0, truncate: undefined, iif: 'eth0', oif: 'eth1', mark: 0 };
        const want = run(straight, g);
        if (want[1] >= 0) hits++;
        expect(run(opt, g), `${src} ${dport}`).toEqual(want);
      }
    }
    expect(hits).toBeGreaterThanOrEqual(n / 7);
  });
});

describe('summary columns', () => {
  // blocks of 8 rules: per block, rules testing -s (and the port) and rules testing -d; `--dport 0:65535` and `-s 0/0` test nothing
  const rules = Array.from({ length: 40 }, (_, i) =>
    i % 2 === 0
      ? `-A FORWARD -s 10.0.0.${i} -p tcp --dport 0:65535 -j ACCEPT`
      : `-A FORWARD -s 0.0.0.0/0 -d 10.9.0.${i} -p tcp -j ACCEPT`);
  const prog = compileTable(parseRestore(table(rules)), 'filter', { optimize: 1, classifierBlock: 8 }).program;
  const pool = prog.pool;
  const h = prog.code[classifyAt(prog) + CLS_HEADER]!;
  it('group each block\'s rules by the keys they test, in block order', () => {
    const cols = Array.from({ length: pool[h + CLS_NCOLS]! }, (_, c) => pool[h + pool[h + CLS_COLS]! + c]!);
    expect(cols).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  });
  it('let a packet through only where one column may match on every key', () => {
    const e = vmTable(parseRestore(table(rules)), 'filter', { optimize: 1, classifierBlock: 8 });
    const straight = vmTable(parseRestore(table(rules)), 'filter', { optimize: 0 });
    const g = (src: string, dst: string): OptPacket => ({ src, dst, proto: 6, sport: 1, dport: 80, tcpFlags: 2, frag: 0, truncate: undefined, iif: 'eth0', oif: 'eth1', mark: 0 });
    // from a -s rule's address to a -d rule's address (both of block 2), from and to neither, to the last rule
    for (const p of [g('10.0.0.20', '10.9.0.21'), g('10.0.0.99', '10.9.0.21'), g('10.0.0.1', '10.9.0.99'), g('1.1.1.1', '10.9.0.39')]) {
      expect(e.run('FORWARD', optPacketOf('ip', p)), `${p.src} > ${p.dst}`).toBe(straight.run('FORWARD', optPacketOf('ip', p)));
    }
    const hit = (x: typeof e) => x.counters().get('FORWARD')!.rules.map((r) => r.packets);
    expect(hit(e)).toEqual(hit(straight));
  });
});

describe('top tables of long unions', () => {
  // 2,000 sources of prefixes /12 to /32 in blocks of 256: the source union has thousands of starts, ranked with a top table
  const ip = (i: number) => `${[10, 70, 100, 130, 160, 190, 220][i % 7]}.${(i * 37) & 255}.${i >> 8}.${(i * 11) & 255}`;
  const plen = (i: number) => [32, 28, 20, 32, 16, 12][i % 6]!;
  // first, a non-contiguous mask whose covering interval starts at 40.1.0.9, the last start of its top bits (40.0/12), and runs on to 40.241.0.9
  const rules = [
    '-A FORWARD -s 40.1.0.9/255.15.255.255 -p tcp --dport 3000 -j ACCEPT',
    ...Array.from({ length: 2000 }, (_, i) => `-A FORWARD -s ${ip(i)}/${plen(i)} -p tcp --dport ${1000 + (i % 50)} -j ${i % 3 ? 'ACCEPT' : 'DROP'}`),
  ];
  const rs = parseRestore(table(rules));
  const opt = vmTable(rs, 'filter', { optimize: 1 });
  const straight = vmTable(rs, 'filter', { optimize: 0 });
  const prog = opt.compiled.program;
  const pool = prog.pool;
  const h = prog.code[classifyAt(prog) + CLS_HEADER]!;
  const rl = h + pool[h + CLS_RANKS]!;
  const withTop = Array.from({ length: pool[rl]! }, (_, i) => rl + 1 + i * CLS_RK_WORDS).filter((e) => pool[e + 5] !== 0);
  it('are made for unions of more than CLS_TOP_MIN starts, and checked at load', () => {
    expect(withTop.length).toBeGreaterThan(0);
    const e = withTop[0]!;
    expect(pool[e + 1]).toBeGreaterThan(CLS_TOP_MIN);
    const top = h + pool[e + 5]!;
    const check = refusesAfter(prog);
    // the entry of the top bits of 10.x (10 << 4 = 160 of 4,096) moved one interval either way
    check(/entry 160 is not the interval of its least key/, () => (pool[top + 160] = pool[top + 160]! + 1));
    check(/entry 160 is not the interval of its least key/, () => (pool[top + 160] = pool[top + 160]! - 1));
    check(/does not end at the last interval/, () => (pool[top + CLS_TOP] = pool[top + CLS_TOP]! - 1));
    check(/a top table for/, () => (pool[e + 5] = 0));
    check(/top table of field \d+ out of range/, () => (pool[e + 5] = pool[h + CLS_SIZE]!));
  });
  it('land where linear evaluation lands, for every rule\'s source and others', () => {
    const hit = (e: typeof opt) => e.counters().get('FORWARD')!.rules.map((r) => r.packets);
    // every rule's address, then addresses a little past it and random ones (a key past the last start of its top bits included)
    let x = 7;
    const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
    const dotted = (v: number) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    const word = (a: string) => a.split('.').reduce((w, o) => ((w << 8) | Number(o)) >>> 0, 0);
    for (let i = 0; i < 2000; i += 3) {
      const at = word(ip(i));
      for (const [src, dport] of [[ip(i), 1000 + (i % 50)], [ip(i), 999], [dotted((at + 1 + (rnd() % 4096)) >>> 0), 1000 + (rnd() % 50)], [dotted(rnd()), 1000 + (rnd() % 50)], ['0.0.0.0', 1001], ['255.255.255.255', 1000], ['40.1.0.9', 3000], ['40.17.0.9', 3000], ['40.241.0.9', 3000], ['40.2.0.9', 3000]] as const) {
        const g: OptPacket = { src, dst: '192.0.2.1', proto: 6, sport: 1, dport, tcpFlags: 2, frag: 0, truncate: undefined, iif: 'eth0', oif: 'eth1', mark: 0 };
        expect(opt.run('FORWARD', optPacketOf('ip', g)), `${src} ${dport}`).toBe(straight.run('FORWARD', optPacketOf('ip', g)));
      }
    }
    expect(hit(opt)).toEqual(hit(straight));
    expect(hit(opt).filter((n) => n > 0).length).toBeGreaterThan(100);
  });
});
