/**
 * Bundle shape: esbuild inlines the `const enum Op` members and the record
 * layouts (the const enums of vm/expr) into the interpreter, so the bundled
 * nftDoChain switches on numeric case labels and reads no enum properties (vitest does not inline across modules, so this
 * is checked on a real esbuild bundle).
 */
import { expect, it } from 'vitest';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

it('the bundled interpreter switches on literal opcodes', async () => {
  const out = await build({
    entryPoints: [fileURLToPath(new URL('../../vm/interp.ts', import.meta.url))],
    bundle: true, write: false, format: 'esm', platform: 'node', logLevel: 'silent',
  });
  const text = out.outputFiles[0]!.text;
  const start = text.indexOf('function nftDoChain(');
  const end = text.indexOf('\nvar Vm', start) > 0 ? text.indexOf('\nvar Vm', start) : text.indexOf('class Vm', start);
  const body = text.slice(start, end);
  expect(start).toBeGreaterThan(0);
  expect(body).toMatch(/case 1 \/\* RULE \*\/:/);
  expect(body).toMatch(/case 8 \/\* CMP_EQ32 \*\/:/);
  expect(body).not.toMatch(/\bOp\./);
  // the record layouts (vm/expr const enums) are inlined too: no enum object is read per packet
  expect(body).not.toMatch(/\b(Rec|Payload|PayloadFast|PayloadCmp|MetaCmp|Cmp|CmpEq32|Bitwise|Bitwise32|Byteorder|Counter|Immediate|Verdict|Meta|Lookup|Range|Numgen|Limit|Log)\./);
  expect(body).toMatch(/\/\* LOAD_KEY \*\//);
});
