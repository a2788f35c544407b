/**
 * Runs once before the test files: the corpus check, and one temporary
 * directory for the whole run. Without the corpus the suites generated from
 * it skip (test/helpers/corpus.ts); this prints the one line saying so, and
 * under CI (env CI set) fails the run instead. Every temporary file the
 * tests, their bundles and the commands they start make (os.tmpdir() reads
 * TMPDIR) goes under the run's directory, removed when the run ends, so a
 * test that stops half way leaves nothing in the machine's /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HAVE_CORPUS, missingCorpusLine } from './helpers/corpus.js';

export default function setup(): () => void {
  if (!HAVE_CORPUS) {
    if (process.env.CI) throw new Error(missingCorpusLine(true));
    console.warn(`[skip] ${missingCorpusLine()}`);
  }
  const before = process.env.TMPDIR;
  const run = mkdtempSync(join(tmpdir(), 'nfvm-test-run-'));
  process.env.TMPDIR = run;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(run, { recursive: true, force: true });
  };
}
