/**
 * Locating the external corpus: NFVM_CORPUS, else ../shared/corpus next to
 * the checkout. Suites generated from it use describeCorpus(): when it is
 * absent they are skipped and named so, test/global-setup.ts prints one line
 * saying what was skipped, and under CI (env CI set) the run fails instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const CORPUS = process.env.NFVM_CORPUS || resolve(REPO, '..', 'shared', 'corpus');
export const HAVE_CORPUS = existsSync(CORPUS);

/** The suites generated from the corpus (what its absence skips), as the one line names them. */
export const CORPUS_SUITES = [
  'real dumps (discovery, parse/save round trip, kernel conformance)',
  'iptables extension .t files',
  'fuzzing of mutated real dumps',
  'ClassBench conversion and optimize=1 first match',
  'kube-proxy TestTracePacket flows on the stateful node',
  'ebtables extension .t files',
  'libvirt nwfilter ebtables command lists',
  'iptables ebtables shell test blobs',
] as const;

export function corpusPath(...parts: string[]): string {
  return join(CORPUS, ...parts);
}

/** The line printed when the corpus is absent (under CI: the error raised instead). */
export function missingCorpusLine(ci = false): string {
  const what = `the tests generated from it: ${CORPUS_SUITES.join('; ')}`;
  return `corpus not found at ${CORPUS} (set NFVM_CORPUS to its directory): ${ci ? `CI (env CI set) requires ${what}` : `skipped ${what}`}`;
}

/** describe() of a suite generated from the corpus: skipped, with the reason in its name, when the corpus is absent. */
export function describeCorpus(name: string, fn: () => void): void {
  if (HAVE_CORPUS) describe(name, fn);
  else describe.skip(`${name} (skipped: no corpus at ${CORPUS})`, fn);
}

/** The kube-proxy fixture tracepacket.rules as iptables-save prints it: its test helper joins comment words unquoted. */
export function kubeTracepacketRules(): string {
  return readFileSync(corpusPath('kubernetes-kube-proxy', 'tracepacket.rules'), 'utf8').replace(/--comment (?!")(.+?)(?= -[a-zA-Z])/g, (_m, c: string) => `--comment "${c}"`);
}
