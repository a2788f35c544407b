/**
 * The kernel's text search over packet bytes (lib/textsearch.c,
 * lib/ts_bm.c, lib/ts_kmp.c, net/core/skbuff.c skb_find_text; Linux 6.18),
 * as xt_string uses it.
 *
 * skb_find_text(skb, from, to, config) reads the skb from `from` (relative
 * to skb->data, the network header at the IP hooks): skb_seq_read hands the
 * search whole blocks, so the search runs to the end of the data, and an
 * occurrence counts only when it ends by `to` (ret + patlen <= to - from).
 * nfvm packets are linear: one block. With TS_IGNORECASE both algorithms
 * upper-case the pattern and each text byte with the kernel's ctype
 * (lib/ctype.c: ISO 8859-1, so 0xe0..0xfe fold too); ts_bm's bad-character
 * table holds the pattern's upper- and lower-case bytes and is indexed with
 * the raw text byte. ts_bm is the kernel's variant (its own good-shift
 * table); ts_kmp the textbook prefix table.
 */

/** lib/ctype.c: _L (lower) in ISO 8859-1. */
function isLower(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0xdf && c <= 0xff && c !== 0xf7);
}
/** lib/ctype.c: _U (upper) in ISO 8859-1. */
function isUpper(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0xc0 && c <= 0xde && c !== 0xd7);
}
/** The kernel's __toupper / __tolower (ctype.h). */
export function kToupper(c: number): number {
  return isLower(c) ? c - 0x20 : c;
}
export function kTolower(c: number): number {
  return isUpper(c) ? c + 0x20 : c;
}

export interface TextSearch {
  readonly patlen: number;
  /** The offset of the first occurrence in d[from, end) relative to `from`, or -1 (UINT_MAX). */
  find(d: Uint8Array, from: number, end: number): number;
}

/** ts_bm: bm_init + compute_prefix_tbl + bm_find. */
export function bmInit(pattern: Uint8Array, icase: boolean): TextSearch {
  const patlen = pattern.length;
  const pat = Uint8Array.from(pattern, (c) => (icase ? kToupper(c) : c));
  const bad = new Int32Array(256).fill(patlen);
  for (let i = 0; i < patlen - 1; i++) {
    bad[pat[i]!] = patlen - 1 - i;
    if (icase) bad[kTolower(pat[i]!)] = patlen - 1 - i;
  }
  const good = new Int32Array(patlen).fill(patlen);
  good[0] = 1;
  // subpattern(): the g bytes ending at i+g-1 recur ending at j+g-1, preceded by a different byte (or the pattern's start)
  const subpattern = (i: number, j: number, g: number): boolean => {
    let x = i + g - 1;
    let y = j + g - 1;
    while (pat[x--] === pat[y--]) {
      if (y < 0) return true;
      if (--g === 0) return pat[i - 1] !== pat[j - 1];
    }
    return false;
  };
  for (let i = patlen - 1, g = 1; i > 0; g++, i--) {
    for (let j = i - 1; j >= 1 - g; j--) {
      if (subpattern(i, j, g)) {
        good[g] = patlen - j - g;
        break;
      }
    }
  }
  return {
    patlen,
    find(d, from, end) {
      const textLen = end - from;
      let shift = patlen - 1;
      while (shift < textLen) {
        let i = 0;
        for (; i < patlen; i++) {
          let t = d[from + shift - i]!;
          if (icase) t = kToupper(t);
          if (t !== pat[patlen - 1 - i]) break;
        }
        if (i === patlen) return shift - (patlen - 1);
        const bs = bad[d[from + shift - i]!]!;
        shift = Math.max(shift - i + bs, shift + good[i]!);
      }
      return -1;
    },
  };
}

/** ts_kmp: kmp_init (compute_prefix_tbl) + kmp_find. */
export function kmpInit(pattern: Uint8Array, icase: boolean): TextSearch {
  const patlen = pattern.length;
  const pat = Uint8Array.from(pattern, (c) => (icase ? kToupper(c) : c));
  const prefix = new Int32Array(patlen);
  for (let k = 0, q = 1; q < patlen; q++) {
    while (k > 0 && pat[k] !== pat[q]) k = prefix[k - 1]!;
    if (pat[k] === pat[q]) k++;
    prefix[q] = k;
  }
  return {
    patlen,
    find(d, from, end) {
      let q = 0;
      for (let i = from; i < end; i++) {
        const t = icase ? kToupper(d[i]!) : d[i]!;
        while (q > 0 && pat[q] !== t) q = prefix[q - 1]!;
        if (pat[q] === t) q++;
        if (q === patlen) return i + 1 - from - patlen;
      }
      return -1;
    },
  };
}

/**
 * skb_find_text(): true when the search finds an occurrence in the L3 data
 * `d[nh, end)` that starts at `from` or later and ends by `to` (offsets from nh).
 */
export function skbFindText(ts: TextSearch, d: Uint8Array, nh: number, end: number, from: number, to: number): boolean {
  if (nh + from >= end) return false;
  const ret = ts.find(d, nh + from, end);
  return ret >= 0 && ret + ts.patlen <= to - from;
}
