/**
 * The program in `nft --debug=netlink` notation (libnftnl 1.2.x): per rule a
 * header line `<family> <table> <chain>`, then each expression as two spaces
 * + `[ <expr> <body>]`. Rules are separated by a blank line, as in nftables'
 * .t.payload files. Fast-path records print in the kernel's generic form.
 */
import { Op, OP_INFO, Rec } from './opcodes.js';
import { CHAIN_WORDS, CH_FIRST, familyName } from './layout.js';
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
  const head = `${familyName(prog.family)} ${prog.table} ${chainName(prog, chain)}`;
  const rules: string[] = [];
  for (let pc = prog.chains[chain * CHAIN_WORDS + CH_FIRST]!; (code[pc]! & Rec.OP_MASK) === Op.RULE; pc += code[pc]! >>> 8) {
    const lines = disasmRuleAt(prog, pc);
    lines.unshift(head);
    lines.push(''); // the rule's final newline, in the one flat string join makes
    rules.push(lines.join('\n'));
  }
  return rules;
}

/** The whole program, chain by chain. */
export function disasm(prog: Program): string {
  const out: string[] = [];
  for (let c = 0; c < chainCount(prog); c++) for (const r of disasmChain(prog, c)) out.push(r);
  return out.join('\n');
}
