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

/**
 * A parameter: an int32 that differs between rules of the same shape (a
 * compare's data, a counter's index, a rule's pc). Printed as a literal by
 * text(); by shape() as the load `P[q + j]` (j: its index in the source) of
 * a row of a parameter table, so that consecutive rules whose code differs
 * only in parameters run as one loop over their rows (vm/jit/gen.ts).
 */
export interface JitParam {
  readonly param: number;
}

/** A substitution: an int32 value (printed in decimal), a name of the table or a parameter. */
export type JitSub = number | { readonly name: JitName } | JitParam;

/** A name of the fixed table, as a substitution. */
export function jitName(n: JitName): { readonly name: JitName } {
  if (!NAME_SET.has(n)) throw new VmError(`jit: ${String(n)} is not a name of the table`);
  return { name: n };
}

/** `v` (an int32) as a parameter. */
export function jitParam(v: number): JitParam {
  if (!Number.isInteger(v) || v !== (v | 0)) throw new VmError(`jit: ${v} is not an int32`);
  return { param: v };
}

function isTemplate(parts: TemplateStringsArray): boolean {
  return Array.isArray(parts) && Object.isFrozen(parts) && Array.isArray(parts.raw) && Object.isFrozen(parts.raw);
}

/** Generated source, appended to only through `js`. */
/**
 * A skip: after a rule of a run failed the compare of parameter `at` (with
 * the same parameters before it as every rule of the run, so the same
 * effects), the loop passes over the next rules that fail it too, testing
 * `cond` (its parameter read from the next row) and nothing else.
 */
interface JitSkip {
  readonly at: number;
  readonly cond: readonly (string | JitParam)[];
  /**
   * The compare on the run's constant value rather than x (one parameter,
   * the same): set where the rule so far is fused load-and-compares of one
   * register slot (vm/jit/gen.ts Segment.fused), so that rules failing
   * any of them can be passed over together.
   */
  readonly term: readonly (string | JitParam)[] | undefined;
}

export class JitSource {
  /** Text, parameters as their int32 value boxed, skips (rendered by appendRow only). */
  private readonly out: (string | JitParam | JitSkip)[] = [];
  /** Parameters appended so far. */
  private params = 0;

  /** Appends the template: fixed parts as written, numbers as int32 decimals (negative in parentheses), names checked against the table. */
  js(parts: TemplateStringsArray, ...subs: JitSub[]): this {
    if (!isTemplate(parts) || parts.length !== subs.length + 1) throw new VmError('jit: source must come from a template literal');
    // all checked before anything is appended: a refused call leaves the source as it was
    const text: (string | JitParam)[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (!FIXED_OK.test(p)) throw new VmError('jit: a fixed part holds a character generated code may not contain');
      text.push(p);
      if (i < subs.length) text.push(sub(subs[i]!));
    }
    for (const t of text) {
      if (typeof t !== 'string') this.params++;
      this.out.push(t);
    }
    return this;
  }

  /**
   * Appends a skip over the next rules of a run that fail the compare whose
   * parameter was appended last; `cond` (one parameter: that compare's) is
   * the compare's failing condition. Only appendRow renders it.
   */
  skip(cond: JitSource, term?: JitSource): this {
    const one = (c: JitSource) => c.params === 1 && !c.out.some((x) => typeof x === 'object' && 'cond' in x);
    if (this.params === 0 || !one(cond) || (term && !one(term))) throw new VmError('jit: a skip follows a compare and holds its one parameter');
    this.out.push({ at: this.params - 1, cond: cond.out as (string | JitParam)[], term: term?.out as (string | JitParam)[] | undefined });
    return this;
  }

  /** Appends what another JitSource holds (itself written only through `js`). */
  append(other: JitSource): this {
    for (const t of other.out) {
      if (typeof t === 'object' && 'cond' in t) continue; // a skip means something in a run only
      if (typeof t !== 'string') this.params++;
      this.out.push(t);
    }
    return this;
  }

  /**
   * Appends what another JitSource holds as the body of a loop over the
   * `n` rows of `w` words of a run (row at P[q]): its j-th parameter read
   * as `P[q + k]` where `row[j]` is k, as a literal where `row[j]` is -1 (a
   * parameter all rows agree on). A skip is written where its parameter
   * differs between rows and all parameters before it agree: the rules it
   * passes over fail this compare with the same effects. Where parameters
   * before it differ too, each of a compare with a term (a fused prefix of
   * one register slot: kube-proxy's `-d A/32 -p tcp|udp --dport N`), a
   * compound skip passes over the rules that fail any of those compares,
   * short of the run's last rule: the rule run after them writes that slot
   * first, so what they would have left in it is gone either way.
   */
  appendRow(other: JitSource, row: readonly number[], n: number, w: number): this {
    let t = '';
    let j = 0;
    /** The terms of the compares met so far, by parameter index. */
    const terms = new Map<number, readonly (string | JitParam)[] | undefined>();
    const render = (parts: readonly (string | JitParam)[], k: number) => {
      let c = '';
      for (const p of parts) c += typeof p === 'string' ? p : `P[q + ${lit(w + k)}]`;
      return c;
    };
    for (const x of other.out) {
      if (typeof x === 'string') t += x;
      else if ('param' in x) {
        const k = row[j++]!;
        t += k < 0 ? lit(x.param) : k === 0 ? 'P[q]' : `P[q + ${lit(k)}]`;
      } else {
        terms.set(x.at, x.term);
        const k = row[x.at]!;
        if (k < 0) continue;
        let agree = true;
        for (let b = 0; b < x.at && agree; b++) agree = row[b]! < 0;
        if (agree) {
          t += `while (i + 1 < ${lit(n)} && ${render(x.cond, k)}) { i++; q += ${lit(w)}; }\n`;
          continue;
        }
        // every differing parameter before this one a compare's with a term, and this one too
        let compound = x.term !== undefined;
        const conds: string[] = [];
        for (let b = 0; b < x.at && compound; b++) {
          if (row[b]! < 0) continue;
          const tb = terms.get(b);
          if (tb === undefined) compound = false;
          else conds.push(render(tb, row[b]!));
        }
        if (!compound) continue;
        conds.push(render(x.term!, k));
        t += `while (i + 2 < ${lit(n)} && (${conds.join(' || ')})) { i++; q += ${lit(w)}; }\n`;
      }
    }
    this.out.push(t);
    return this;
  }

  /**
   * The source text with each parameter read from a segment's block of the
   * parameter table: `P[B + k]`, its value pushed to `block` (k: its index
   * there; skips left out).
   */
  blockText(block: number[]): string {
    let t = '';
    for (const x of this.out) {
      if (typeof x === 'string') t += x;
      else if ('param' in x) {
        t += `P[B + ${lit(block.length)}]`;
        block.push(x.param);
      }
    }
    return t;
  }

  /** The source text, parameters as literals (skips left out). */
  text(): string {
    let t = '';
    for (const x of this.out) {
      if (typeof x === 'string') t += x;
      else if ('param' in x) t += lit(x.param);
    }
    return t;
  }

  /** The source text with its j-th parameter as `P[q + j]` (skips marked), and the parameters' values in order: rules of one shape differ only in these. */
  shape(): { text: string; params: number[] } {
    let t = '';
    const params: number[] = [];
    for (const x of this.out) {
      if (typeof x === 'string') t += x;
      else if ('param' in x) {
        t += params.length === 0 ? 'P[q]' : `P[q + ${params.length}]`;
        params.push(x.param);
      } else {
        t += `@skip ${x.at}`;
        if (x.term) for (const c of x.term) t += typeof c === 'string' ? c : '@';
        t += '\n';
      }
    }
    return { text: t, params };
  }
}

function lit(n: number): string {
  return n < 0 ? `(${n})` : String(n);
}

function sub(s: JitSub): string | JitParam {
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s !== (s | 0)) throw new VmError(`jit: ${s} is not an int32`);
    return lit(s);
  }
  if (typeof s === 'object' && s !== null && 'param' in s) {
    const v = s.param;
    if (typeof v !== 'number' || !Number.isInteger(v) || v !== (v | 0)) throw new VmError(`jit: ${String(v)} is not an int32`);
    return { param: v };
  }
  if (typeof s === 'object' && s !== null && 'name' in s && typeof s.name === 'string' && NAME_SET.has(s.name)) return s.name;
  throw new VmError('jit: a substitution must be an int32 or a name of the table');
}
