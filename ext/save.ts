/** What the save faces print with: marks in hex and strings quoted as iptables-save quotes them. */
/** `0x%x` as iptables prints marks and masks. */
export function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16);
}

/**
 * A string as `xtables_save_string()` prints it: bare when the text
 * is non-empty and only `[A-Za-z0-9_-]`, else double-quoted with `"`, `\` and
 * `'` backslash-escaped.
 */
export function saveString(s: string): string {
  if (s.length > 0 && /^[A-Za-z0-9_-]+$/.test(s)) return s;
  let out = '"';
  for (const c of s) {
    if (c === '"' || c === '\\' || c === "'") out += '\\';
    out += c;
  }
  return out + '"';
}
