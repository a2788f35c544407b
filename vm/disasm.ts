/**
 * The program in `nft --debug=netlink` notation (libnftnl 1.2.x): per rule a
 * header line `<family> <table> <chain>`, then each expression as two spaces
 * + `[ <expr> <body>]`. Rules are separated by a blank line, as in nftables'
 * .t.payload files. Fast-path records print in the kernel's generic form.
 */
import { Op, OP_INFO, Rec } from './opcodes.js';
import { CHAIN_WORDS, CH_FIRST, NFT_SET_ANONYMOUS, familyName } from './layout.js';
import { chainCount, chainName, type Program } from './program.js';
import { EXPR_KINDS } from './expr/index.js';

/** The expression lines of the rule whose header is at word `pc`. */
export function disasmRuleAt(prog: Program, pc: number): string[] {
  const code = prog.code;
  const next = pc + (code[pc]! >>> Rec.OP_BITS);
  const lines: string[] = [];
  for (let e = pc + Rec.RULE_WORDS; e < next; ) {
    const op = code[e]! & Rec.OP_MASK;
    const info = OP_INFO[op]!;
    lines.push(`  [ ${info.expr} ${EXPR_KINDS[op]!.disasm(prog, code, e)}]`);
    e += info.size;
  }
  return lines;
}

/** One chain's rules: header + expression lines per rule. */
export function disasmChain(prog: Program, chain: number): string[] {
  const code = prog.code;
  const head = chainHead(prog, chain);
  const rules: string[] = [];
  const lines: string[] = [];
  for (let pc = firstRule(prog, chain); (code[pc]! & Rec.OP_MASK) === Op.RULE; pc += code[pc]! >>> 8) {
    ruleLines(prog, pc, head, lines);
    rules.push(lines.join('\n'));
    lines.length = 0;
  }
  return rules;
}

function chainHead(prog: Program, chain: number): string {
  return `${familyName(prog.family)} ${prog.table} ${chainName(prog, chain)}`;
}

function firstRule(prog: Program, chain: number): number {
  return prog.chains[chain * CHAIN_WORDS + CH_FIRST]!;
}

/** Pushes the rule's lines onto `lines`: the header, each expression, '' (its final newline). Returns the characters pushed. */
function ruleLines(prog: Program, pc: number, head: string, lines: string[]): number {
  const code = prog.code;
  const next = pc + (code[pc]! >>> Rec.OP_BITS);
  lines.push(head);
  let size = head.length + 2;
  for (let e = pc + Rec.RULE_WORDS; e < next; ) {
    const op = code[e]! & Rec.OP_MASK;
    const info = OP_INFO[op]!;
    const line = `  [ ${info.expr} ${EXPR_KINDS[op]!.disasm(prog, code, e)}]`;
    lines.push(line);
    size += line.length + 1;
    e += info.size;
  }
  lines.push('');
  return size;
}

/** The whole program, chain by chain. */
export function disasm(prog: Program): string {
  return [...disasmChunks(prog)].join('');
}

/** Characters per piece of disasmChunks(). */
const CHUNK = 1 << 16;

/**
 * disasm()'s text in pieces of about CHUNK characters, in order (rules
 * separated by a blank line), for a caller that writes them out as they
 * come: the listing of a big program is never held whole.
 */
export function* disasmChunks(prog: Program): Generator<string> {
  const code = prog.code;
  const lines: string[] = [];
  let size = 0;
  const n = chainCount(prog);
  for (let c = 0; c < n; c++) {
    const head = chainHead(prog, c);
    for (let pc = firstRule(prog, c); (code[pc]! & Rec.OP_MASK) === Op.RULE; pc += code[pc]! >>> 8) {
      // a rule's lines end with '' (its newline): joined, that '' and the next rule's header make the blank line between them
      size += ruleLines(prog, pc, head, lines);
      if (size >= CHUNK) {
        yield lines.join('\n');
        // the next piece starts right after this one's last newline
        lines.length = 0;
        lines.push('');
        size = 0;
      }
    }
  }
  const last = lines.join('\n');
  if (last !== '') yield last;
}

/**
 * The program's anonymous sets with their elements, as `nft --debug=netlink
 * list ruleset` prints them before the table's rules: `<family> <table>
 * @<name>`, then per element its key (and an interval's end) in host-order
 * 32-bit words (libnftnl nftnl_set_elem_snprintf_default()). A hash set's
 * elements are sorted by key: the kernel lists them in the order of its
 * seeded hash (nft_set_hash), which differs from load to load; an interval
 * set's come sorted as the kernel lists them.
 */
export function disasmSets(prog: Program): string {
  let out = '';
  for (const set of prog.sets) {
    if ((set.flags & NFT_SET_ANONYMOUS) === 0) continue;
    out += `${familyName(prog.family)} ${prog.table} @${set.name}\n`;
    const elems = set.elements().sort((a, b) => cmpKey(a[0]!, b[0]!));
    for (const [key, end] of elems) out += `\telement ${keyWords(key!)}${end ? ` - ${keyWords(end)}` : ''} : 0 [end]\n`;
  }
  return out;
}

/** A set key as libnftnl prints it: each 32-bit word of its (zero-padded) bytes in host order, `%.8x ` each. */
function keyWords(k: Uint8Array): string {
  let s = '';
  for (let i = 0; i < k.length; i += 4) {
    const w = (k[i]! | ((k[i + 1] ?? 0) << 8) | ((k[i + 2] ?? 0) << 16) | ((k[i + 3] ?? 0) << 24)) >>> 0;
    s += `${w.toString(16).padStart(8, '0')} `;
  }
  return s;
}

function cmpKey(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
