/**
 * The layers point one way (notes/ARCH.md): core ← vm ← ext ← compiler ←
 * engine ← hooks ← fuzz ← gen ← cli. A folder imports only from folders below it (and
 * from itself); type-only imports and re-exports count too, since they tie
 * the folders together as much as value imports do.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RANK: Readonly<Record<string, number>> = { core: 1, vm: 2, ext: 3, compiler: 4, engine: 5, hooks: 6, fuzz: 7, gen: 8, cli: 9 };

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier of a file: static imports, re-exports and dynamic imports. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[\s;])(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    out.push(m[1] ?? m[2] ?? m[3]!);
  }
  return out;
}

/** The layer folder of a repository path, or undefined outside the layers (bench, test, index.ts). */
function layer(path: string): string | undefined {
  const top = relative(REPO, path).split(/[\\/]/)[0]!;
  return top in RANK ? top : undefined;
}

describe('layers', () => {
  const files = Object.keys(RANK).flatMap((d) => tsFiles(join(REPO, d)));

  it('finds the imports of every layer', () => {
    expect(files.length).toBeGreaterThan(150);
    const total = files.reduce((n, f) => n + specifiers(readFileSync(f, 'utf8')).length, 0);
    expect(total).toBeGreaterThan(800);
    // the parser sees each form
    expect(specifiers("import type { A } from './a.js';\nexport { B } from '../b.js';\nimport './c.js';\nconst d = await import('./d.js');")).toEqual([
      './a.js', '../b.js', './c.js', './d.js',
    ]);
  });

  it('no folder imports from a folder above it', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = layer(f)!;
      for (const s of specifiers(readFileSync(f, 'utf8'))) {
        if (!s.startsWith('.')) {
          if (!s.startsWith('node:')) bad.push(`${relative(REPO, f)} imports the package ${s} (node builtins only)`);
          continue;
        }
        const target = resolve(dirname(f), s);
        const to = layer(target);
        if (to === undefined) bad.push(`${relative(REPO, f)} imports ${relative(REPO, target)}, outside the layers`);
        else if (RANK[to]! > RANK[from]!) bad.push(`${relative(REPO, f)} (${from}) imports ${relative(REPO, target)} (${to}, above it)`);
      }
    }
    expect(bad).toEqual([]);
  });
});
