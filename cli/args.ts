/**
 * Command lines as the commands read them: `--name value`, `--name=value`,
 * `-x` (a short boolean or, for a string option, `-x value`), `--` ends the
 * options, `-` alone is a positional (stdin). `-h`/`--help` asks for the
 * command's usage. A wrong option is a UsageError naming it, one line:
 *
 *   nfvm: save: unknown option --bogus (see nfvm save --help)
 */
import type { Family } from '../core/ast.js';
import type { Backend } from '../core/netfilter.js';

/** A usage problem: `nfvm: message` on stderr, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** A string option that may be given several times (ParsedArgs.all). */
  readonly multi?: boolean;
}

export interface CommandSpec {
  readonly name: string;
  /** The command's usage text (what `nfvm NAME --help` prints). */
  readonly usage: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
}

export interface ParsedArgs {
  readonly help: boolean;
  readonly positionals: readonly string[];
  /** The value of a string option, undefined when not given (the last one of a repeated option). */
  str(name: string): string | undefined;
  /** Every value of a `multi` string option, in order. */
  all(name: string): string[];
  /** Whether a boolean option was given. */
  flag(name: string): boolean;
}

/** Parses `argv` (the words after the command name) against `spec`. Throws UsageError. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const positionals: string[] = [];
  const hint = `(see nfvm ${spec.name} --help)`;
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(spec.options)) if (o.short) byShort.set(o.short, name);
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-' || !a.startsWith('-')) {
      positionals.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      const long = byShort.get(a[1]!);
      if (a === '-h') name = 'help';
      else if (long === undefined) throw new UsageError(`${spec.name}: unknown option ${a} ${hint}`);
      else name = long;
      if (a.length > 2) inline = a.slice(2);
    }
    const shown = a.startsWith('--') ? `--${name}` : a.slice(0, 2);
    if (name === 'help') {
      help = true;
      continue;
    }
    const o = Object.hasOwn(spec.options, name) ? spec.options[name] : undefined;
    if (!o) throw new UsageError(`${spec.name}: unknown option ${shown} ${hint}`);
    if (o.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${spec.name}: option ${shown} takes no value ${hint}`);
      values.set(name, true);
      continue;
    }
    let v = inline;
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${spec.name}: option ${shown} needs a value ${hint}`);
      v = argv[++i]!;
    }
    values.set(name, v);
    if (o.multi) lists.set(name, [...(lists.get(name) ?? []), v]);
  }
  return {
    help,
    positionals,
    str: (name) => {
      const v = values.get(name);
      return typeof v === 'string' ? v : undefined;
    },
    flag: (name) => values.get(name) === true,
    all: (name) => lists.get(name) ?? [],
  };
}

/** A --backend value, checked (undefined when not given). */
export function parseBackend(v: string | undefined): Backend | undefined {
  if (v === undefined || v === 'legacy' || v === 'nft') return v;
  throw new UsageError(`unknown backend "${v}" (expected legacy or nft)`);
}

/** --family: ip (default) or ip6. */
export function parseFamily(v: string | undefined): Family {
  if (v === undefined || v === 'ip' || v === 'ipv4' || v === '4') return 'ip';
  if (v === 'ip6' || v === 'ipv6' || v === '6') return 'ip6';
  throw new UsageError(`unknown family "${v}" (expected ip or ip6)`);
}
