/**
 * The x6 option tables (libxtables/xtoptions.c): the generic checks
 * iptables runs over an extension's `struct xt_option_entry[]`: an option
 * used twice, mandatory options, mutually exclusive ones and the options
 * one requires (xtables_options_fcheck).
 */
import { fail } from '../core/errors.js';

/** One row of an extension's option table, as far as the generic checks need it. */
export interface XtOptEntry {
  readonly name: string;
  readonly id: number;
  /** `.excl`: bit mask (1 << id) of the options this one cannot be combined with. */
  readonly excl?: number;
  /** XTOPT_MAND */
  readonly mand?: boolean;
}

/**
 * The name iptables reports for an option id: getopt hands the id to
 * xtables_option_lookup(), which returns the table's first entry with it
 * (so `--ttl` is reported, and inverted, as `--ttl-eq`).
 */
export function xtOptName(table: readonly XtOptEntry[], id: number): string {
  return table.find((e) => e.id === id)?.name ?? String(id);
}

/**
 * xtables_option_parse()'s double-use test for an option given under a
 * second spelling of the same id; returns the updated xflags.
 */
export function xtOptUse(ext: string, table: readonly XtOptEntry[], xflags: number, name: string): number {
  const e = table.find((o) => o.name === name);
  if (!e) return xflags;
  const bit = 1 << e.id;
  if (xflags & bit) fail(`${ext}: option "--${xtOptName(table, e.id)}" can only be used once.`, 'option');
  return xflags | bit;
}

/**
 * xtables_options_fcheck(): mandatory options, then `.excl` conflicts,
 * walking the table in order as iptables does (so the message names the
 * option that comes first in the table).
 */
export function xtOptFcheck(ext: string, table: readonly XtOptEntry[], xflags: number): void {
  xtOptFcheckAlso(ext, table, xflags);
}

/** The xflags of the option names given (for xtOptFcheck from a module's `final`). */
export function xtOptFlags(table: readonly XtOptEntry[], seen: ReadonlySet<string>): number {
  let f = 0;
  for (const e of table) if (seen.has(e.name)) f |= 1 << e.id;
  return f;
}

/** XtOptEntry with `.also` (bit mask of the options this one requires). */
export interface XtOptEntryAlso extends XtOptEntry {
  readonly also?: number;
}

/**
 * xtables_options_fcheck() with xtables_option_fcheck2()'s `.also` test:
 * per table entry, XTOPT_MAND, then for every other id in id order first
 * "also requires", then "cannot be used together with".
 */
export function xtOptFcheckAlso(ext: string, table: readonly XtOptEntryAlso[], xflags: number): void {
  for (const e of table) {
    if (e.mand && !(xflags & (1 << e.id))) fail(`${ext}: option "--${e.name}" must be specified`, 'option');
    if (!(xflags & (1 << e.id))) continue;
    // only the ids this entry requires or excludes can fail (most entries name none)
    const related = (e.also ?? 0) | (e.excl ?? 0);
    if (related === 0) continue;
    for (let i = 0; i < 32; i++) {
      if (i === e.id || !(related & (1 << i))) continue;
      let other: XtOptEntryAlso | undefined;
      for (const o of table) {
        if (o.id === i) {
          other = o;
          break;
        }
      }
      if (!other) continue;
      const of = 1 << i;
      if ((e.also ?? 0) & of && !(xflags & of)) fail(`${ext}: option "--${e.name}" also requires "--${other.name}".`, 'option');
      if (!((e.excl ?? 0) & of)) continue;
      if ((xflags & ((1 << e.id) | of)) !== ((1 << e.id) | of)) continue;
      fail(`${ext}: option "--${e.name}" cannot be used together with "--${other.name}".`, 'option');
    }
  }
}
