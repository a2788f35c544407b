/**
 * Runs once before the test files: the corpus check. Without the corpus the
 * suites generated from it skip (test/helpers/corpus.ts); this prints the
 * one line saying so, and under CI (env CI set) fails the run instead.
 */
import { HAVE_CORPUS, missingCorpusLine } from './helpers/corpus.js';

export default function setup(): void {
  if (HAVE_CORPUS) return;
  if (process.env.CI) throw new Error(missingCorpusLine(true));
  console.warn(`[skip] ${missingCorpusLine()}`);
}
