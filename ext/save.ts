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
  let bare = s.length > 0;
  let escapes = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92 || c === 39) escapes = true;
    if (bare && !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45)) bare = false;
  }
  if (bare) return s;
  if (!escapes) return '"' + s + '"';
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92 || c === 39) {
      out += s.slice(from, i) + '\\';
      from = i;
    }
  }
  return out + s.slice(from) + '"';
}
