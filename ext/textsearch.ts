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
  /**
   * textsearch_find() over the skb whose data (network header) is d[nh, end),
   * skb_prepare_seq_read(skb, from, to): the offset of the first occurrence
   * relative to `from`, or -1 (UINT_MAX).
   */
  find(d: Uint8Array, nh: number, end: number, from: number, to: number): number;
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
    find(d, nh, end, off, to) {
      // one block, [off, len), when off < to; bm_find stops at the first 0
      if (off >= to || nh + off >= end) return -1;
      const from = nh + off;
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
    find(d, nh, end, off, to) {
      if (off >= to || nh + off >= end) return -1;
      const from = nh + off;
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
  const ret = ts.find(d, nh, end, from, to);
  return ret >= 0 && ret + ts.patlen <= to - from;
}

/* include/linux/textsearch_fsm.h: struct ts_fsm_token recurrences */
const TS_FSM_SINGLE = 0;
const TS_FSM_PERHAPS = 1;
const TS_FSM_ANY = 2;
const TS_FSM_MULTI = 3;
const TS_FSM_HEAD_IGNORE = 4;
const TS_FSM_TYPE_MAX = 13;
const TS_FSM_RECUR_MAX = 4;

/* include/linux/ctype.h flags, and ts_fsm's own _A (ascii) and _W (wildcard) */
const _U = 0x01, _L = 0x02, _D = 0x04, _C = 0x08, _P = 0x10, _S = 0x20, _X = 0x40, _SP = 0x80, _A = 0x100, _W = 0x200;

/** lib/ts_fsm.c token_map: TS_FSM_SPECIFIC .. TS_FSM_SPACE to the class bits (0: the byte in `value`). */
const token_map = [0, _W, _D, _D | _X, _P | _U | _L | _D | _SP, _U | _L, _U | _L | _D, _A, _C, _P | _U | _L | _D, _L, _U, _P, _S];

/**
 * lib/ts_fsm.c token_lookup_tbl: each byte's classes. Not lib/ctype.c's
 * _ctype: 128-159 are no class (not _C), and only 0-127 are _A.
 */
const token_lookup_tbl = (() => {
  const t = new Uint16Array(256);
  const set = (lo: number, hi: number, f: number) => t.fill(f, lo, hi + 1);
  set(0, 8, _C); set(9, 13, _C | _S); set(14, 31, _C); set(32, 32, _S | _SP); set(33, 47, _P); set(48, 57, _D);
  set(58, 64, _P); set(65, 70, _U | _X); set(71, 90, _U); set(91, 96, _P); set(97, 102, _L | _X); set(103, 122, _L);
  set(123, 126, _P); set(127, 127, _C);
  set(160, 160, _S | _SP); set(161, 191, _P); set(192, 214, _U); set(215, 215, _P); set(216, 222, _U); set(223, 246, _L);
  set(247, 247, _P); set(248, 255, _L);
  for (let c = 0; c < 256; c++) t[c]! |= _W | (c < 128 ? _A : 0);
  return t;
})();

/**
 * fsm_init()'s checks: a whole number of 4-byte struct ts_fsm_token (u16
 * type in host order, little-endian here; u8 recur; u8 value), at least
 * one, no TS_IGNORECASE, type <= TS_FSM_TYPE_MAX, recur <=
 * TS_FSM_RECUR_MAX, TS_FSM_HEAD_IGNORE only on a first token that is not
 * the last.
 */
export function fsmValid(p: Uint8Array, icase: boolean): boolean {
  if (p.length % 4 !== 0 || p.length === 0 || icase) return false;
  const n = p.length / 4;
  for (let i = 0; i < n; i++) {
    const type = p[4 * i]! | (p[4 * i + 1]! << 8);
    const recur = p[4 * i + 2]!;
    if (type > TS_FSM_TYPE_MAX || recur > TS_FSM_RECUR_MAX) return false;
    if (recur === TS_FSM_HEAD_IGNORE && (i !== 0 || i === n - 1)) return false;
  }
  return true;
}

/**
 * ts_fsm: fsm_init (types through token_map) + fsm_find over the blocks
 * skb_seq_read hands it. Strict unless the first token is
 * TS_FSM_HEAD_IGNORE: the tokens must match from the first byte, else a
 * mismatch starts over at the byte after the mismatching one (not after
 * the match's start). When every token has matched, the match counts only
 * at the end of the data, unless the last token is TS_FSM_ANY or
 * TS_FSM_MULTI (found at once). The pattern length xt_string's window check
 * uses is 4 bytes a token (fsm_get_pattern_len). `pattern` must pass fsmValid.
 *
 * fsm_find asks for the next block each time it tests for the end of the
 * data (end_of_data), also after a first answer of 0, and skb_seq_read on
 * a linear skb answers that second call with the packet again from its
 * network header: the first 0 steps stepped_offset past the head, and the
 * next call finds its offset below the new block limit. So the text fsm
 * sees is [from, len), then, for each further end test, 0 then the whole
 * packet [0, len) again, until the offset reaches --to (abs_offset >=
 * upper_offset). A last token TS_FSM_PERHAPS or TS_FSM_ANY at the end of
 * the data thus goes on over the packet's first bytes. Bounded by --to.
 */
export function fsmInit(pattern: Uint8Array): TextSearch {
  const n = pattern.length >> 2;
  const type = new Uint16Array(n);
  const recur = new Uint8Array(n);
  const value = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    type[i] = token_map[pattern[4 * i]! | (pattern[4 * i + 1]! << 8)]!;
    recur[i] = pattern[4 * i + 2]!;
    value[i] = pattern[4 * i + 3]!;
  }
  /** match_token() */
  const match = (t: number, c: number): boolean => (type[t] !== 0 ? (token_lookup_tbl[c]! & type[t]!) !== 0 : value[t] === c);
  const strict = recur[0] !== TS_FSM_HEAD_IGNORE;
  // one search's state (reused: a rule's packets are searched one at a time)
  let text: Uint8Array = pattern;
  let nh = 0, headlen = 0, lower = 0, upper = 0, stepped = 0;
  let consumed = 0, blockIdx = 0, blockLen = 0, base = 0;
  /** skb_seq_read() on a linear skb (no frags, no frag_list): sets base when it returns a block. */
  const seqRead = (c: number): number => {
    const abs = c + lower;
    if (abs >= upper) return 0;
    const limit = headlen + stepped;
    if (abs < limit) {
      base = nh + abs - stepped;
      return limit - abs;
    }
    stepped += headlen; // st->frag_idx == 0 && !st->frag_data
    return 0;
  };
  /** GET_NEXT_BLOCK() */
  const nextBlock = (): number => {
    consumed += blockIdx;
    blockIdx = 0;
    blockLen = seqRead(consumed);
    return blockLen;
  };
  /** end_of_data() */
  const end = (): boolean => blockIdx >= blockLen && nextBlock() === 0;
  const at = (): number => text[base + blockIdx]!;
  return {
    patlen: pattern.length,
    find(d, skbNh, skbEnd, from, to) {
      text = d;
      nh = skbNh;
      headlen = skbEnd - skbNh;
      lower = from;
      upper = to;
      stepped = 0;
      consumed = 0;
      blockIdx = 0;
      blockLen = 0;
      if (end()) return -1;
      startover: for (;;) {
        let matchStart = consumed + blockIdx;
        for (let t = 0; t < n; t++) {
          const r = recur[t]!;
          if (r === TS_FSM_SINGLE) {
            if (end()) return -1;
            if (!match(t, at())) {
              if (strict) return -1;
              blockIdx++;
              continue startover;
            }
          } else if (r === TS_FSM_PERHAPS) {
            if (end() || !match(t, at())) continue;
          } else if (r === TS_FSM_ANY || r === TS_FSM_MULTI) {
            if (r === TS_FSM_MULTI) {
              if (end()) return -1;
              if (!match(t, at())) {
                if (strict) return -1;
                blockIdx++;
                continue startover;
              }
              blockIdx++;
            }
            if (t === n - 1) return matchStart;
            if (end()) continue;
            while (!match(t + 1, at())) {
              if (!match(t, at())) {
                if (strict) return -1;
                blockIdx++;
                continue startover;
              }
              blockIdx++;
              if (end()) return -1;
            }
            continue;
          } else {
            // TS_FSM_HEAD_IGNORE: never the last token (fsm_init)
            if (end()) continue;
            while (!match(t + 1, at())) {
              if (!match(t, at())) return -1;
              blockIdx++;
              if (end()) return -1;
            }
            matchStart = consumed + blockIdx;
            continue;
          }
          blockIdx++;
        }
        return end() ? matchStart : -1;
      }
    },
  };
}
