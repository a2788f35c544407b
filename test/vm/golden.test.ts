/**
 * Golden disassembly in the nftables `.t.payload` style: each `# name`
 * section of test/vm/cases/*.payload holds the expected `nft --debug=netlink`
 * text of a program hand-assembled below through the builder.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { disasm, type Program } from '../../vm/index.js';
import { GOLDEN } from './helpers/golden.js';

/** Splits a .payload file into `# name` sections. */
export function readCases(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | null = null;
  let body: string[] = [];
  const flush = (): void => {
    if (name !== null) out.set(name, body.join('\n').trim() + '\n');
  };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('# ')) {
      flush();
      name = line.slice(2);
      body = [];
    } else body.push(line);
  }
  flush();
  return out;
}

/** Only the rules of the chains that have rules, as the .payload sections list them. */
function print(prog: Program): string {
  return disasm(prog).trim() + '\n';
}

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'cases');
const files = readdirSync(dir).filter((f) => f.endsWith('.payload'));

describe('golden disassembly (cases/*.payload)', () => {
  const seen = new Set<string>();
  for (const f of files) {
    for (const [name, text] of readCases(join(dir, f))) {
      it(`${f}: ${name}`, () => {
        seen.add(name);
        const make = GOLDEN[name];
        expect(make, `no program for case "${name}"`).toBeDefined();
        expect(print(make!())).toBe(text);
      });
    }
  }
  it('every hand-assembled program has a golden section', () => {
    const names = new Set(files.flatMap((f) => [...readCases(join(dir, f)).keys()]));
    for (const name of Object.keys(GOLDEN)) expect(names.has(name), name).toBe(true);
  });
});
