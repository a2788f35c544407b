/**
 * The only way text enters generated code (vm/jit/gen.ts): a source buffer
 * written through a template tag whose fixed parts are template literals of
 * nfvm's own source and whose substitutions are int32 numbers or names from
 * the fixed table below. Nothing of a program's input (chain names,
 * comments, log prefixes, set names) can reach the generated source: the
 * code generator has no way to append a string, and the fixed parts may not
 * contain quotes, backticks or slashes, so no string literal, comment or
 * regular expression can ever be formed in the output.
 */
import { VmError } from '../program.js';

/** The identifiers generated code may use besides those written in the fixed text. */
const NAMES = [
  'nh', 'th', 'thk', 'end',
] as const;
export type JitName = (typeof NAMES)[number];
const NAME_SET: ReadonlySet<string> = new Set(NAMES);

/** The characters a fixed part may hold: identifiers, numbers, operators, brackets, blanks. No quote, backtick or slash. */
const FIXED_OK = /^[A-Za-z0-9_ \n(){}[\];:=<>!&|^~+\-*%.,?]*$/;

/** A substitution: an int32 value (printed in decimal) or a name of the table. */
export type JitSub = number | { readonly name: JitName };

/** A name of the fixed table, as a substitution. */
export function jitName(n: JitName): { readonly name: JitName } {
  if (!NAME_SET.has(n)) throw new VmError(`jit: ${String(n)} is not a name of the table`);
  return { name: n };
}

function isTemplate(parts: TemplateStringsArray): boolean {
  return Array.isArray(parts) && Object.isFrozen(parts) && Array.isArray(parts.raw) && Object.isFrozen(parts.raw);
}

/** Generated source, appended to only through `js`. */
export class JitSource {
  private readonly out: string[] = [];

  /** Appends the template: fixed parts as written, numbers as int32 decimals (negative in parentheses), names checked against the table. */
  js(parts: TemplateStringsArray, ...subs: JitSub[]): this {
    if (!isTemplate(parts) || parts.length !== subs.length + 1) throw new VmError('jit: source must come from a template literal');
    // all checked before anything is appended: a refused call leaves the source as it was
    const text: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (!FIXED_OK.test(p)) throw new VmError('jit: a fixed part holds a character generated code may not contain');
      text.push(p);
      if (i < subs.length) text.push(sub(subs[i]!));
    }
    for (const t of text) this.out.push(t);
    return this;
  }

  /** Appends what another JitSource holds (itself written only through `js`). */
  append(other: JitSource): this {
    for (const t of other.out) this.out.push(t);
    return this;
  }

  /** The source text. */
  text(): string {
    return this.out.join('');
  }
}

function sub(s: JitSub): string {
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s !== (s | 0)) throw new VmError(`jit: ${s} is not an int32`);
    return s < 0 ? `(${s})` : String(s);
  }
  if (typeof s === 'object' && s !== null && typeof s.name === 'string' && NAME_SET.has(s.name)) return s.name;
  throw new VmError('jit: a substitution must be an int32 or a name of the table');
}
