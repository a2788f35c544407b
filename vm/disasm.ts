/**
 * The program in `nft --debug=netlink` notation (libnftnl 1.2.x): per rule a
 * header line `<family> <table> <chain>`, then each expression as two spaces
 * + `[ <expr> <body>]`. Rules are separated by a blank line, as in nftables'
 * .t.payload files. Fast-path records print in the kernel's generic form.
 */
import { Op, OP_INFO, OP_MASK, RULE_WORDS } from './opcodes.js';
import { CHAIN_WORDS, CH_FIRST, familyName } from './layout.js';
import { chainCount, chainName, type Program } from './program.js';
import { EXPR_KINDS } from './expr/index.js';

/** The expression lines of the rule whose header is at word `pc`. */
export function disasmRuleAt(prog: Program, pc: number): string[] {
  const code = prog.code;
  const next = pc + (code[pc]! >>> 8);
  const lines: string[] = [];
  for (let e = pc + RULE_WORDS; e < next; ) {
    const op = code[e]! & OP_MASK;
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
  for (let pc = prog.chains[chain * CHAIN_WORDS + CH_FIRST]!; (code[pc]! & OP_MASK) === Op.RULE; pc += code[pc]! >>> 8) {
    rules.push([head, ...disasmRuleAt(prog, pc)].join('\n') + '\n');
  }
  return rules;
}

/** The whole program, chain by chain. */
export function disasm(prog: Program): string {
  const out: string[] = [];
  for (let c = 0; c < chainCount(prog); c++) out.push(...disasmChain(prog, c));
  return out.join('\n');
}

/** The word offset of each rule's header, by rule index (-1 when absent). */
export function ruleOffsets(prog: Program): Int32Array {
  const offs = new Int32Array(prog.nrules).fill(-1);
  const code = prog.code;
  for (let c = 0; c < chainCount(prog); c++) {
    for (let pc = prog.chains[c * CHAIN_WORDS + CH_FIRST]!; (code[pc]! & OP_MASK) === Op.RULE; pc += code[pc]! >>> 8) offs[code[pc + 1]!] = pc;
  }
  return offs;
}
