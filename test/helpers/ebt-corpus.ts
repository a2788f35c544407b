/**
 * The ebtables inputs of the corpus, read in place: libvirt's nwfilter
 * command lists (`ebtables ...` lines with backslash continuations) and the
 * ebtables-save blobs of iptables' shell tests.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { corpusPath } from './corpus.js';
import { splitArgs, type Arg } from '../../compiler/parse/argv.js';

export const LIBVIRT_DIR = corpusPath('libvirt-nwfilter', 'tests', 'nwfilterxml2firewalldata');
export const EBT_SHELL_DIR = corpusPath('netfilter-iptables', 'extracted', 'shell-testcases', 'ebtables');

export interface CommandLine {
  /** The words after `ebtables`. */
  args: Arg[];
  /** The line the command starts on. */
  line: number;
  text: string;
}

/** A libvirt `.args` file as ebtables command lines: continuations joined, the program name dropped. */
export function libvirtCommands(file: string): CommandLine[] {
  const lines = readFileSync(`${LIBVIRT_DIR}/${file}`, 'utf8').split('\n');
  const out: CommandLine[] = [];
  let acc = '';
  let start = 0;
  lines.forEach((l, i) => {
    if (acc === '') start = i + 1;
    acc += l.endsWith('\\') ? l.slice(0, -1) + ' ' : l;
    if (l.endsWith('\\')) return;
    const text = acc.trim();
    acc = '';
    if (!text) return;
    const args = splitArgs(text, start, file);
    if (args[0]?.text !== 'ebtables') throw new Error(`${file}:${start}: not an ebtables command: ${text}`);
    out.push({ args: args.slice(1), line: start, text });
  });
  return out;
}

export function libvirtFiles(): string[] {
  return readdirSync(LIBVIRT_DIR).filter((f) => f.endsWith('.args')).sort();
}

/** One blob of an ebtables shell test (`0002-ebtables-save-restore_0/01-var_DUMP.txt`). */
export function ebtShellBlob(test: string, blob: string): string {
  return readFileSync(`${EBT_SHELL_DIR}/${test}/${blob}`, 'utf8');
}
