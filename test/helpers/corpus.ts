/**
 * Locating ../shared/corpus. Tests that read it skip with a message when it
 * is absent, so `npm test` passes on a machine without the corpus.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const CORPUS = process.env.NFVM_CORPUS ?? resolve(REPO, '..', 'shared', 'corpus');
export const HAVE_CORPUS = existsSync(CORPUS);

export function corpusPath(...parts: string[]): string {
  return join(CORPUS, ...parts);
}

export function noteMissingCorpus(what: string): void {
  if (!HAVE_CORPUS) console.warn(`[skip] ${what}: corpus not found at ${CORPUS} (set NFVM_CORPUS)`);
}
