/**
 * IPv6 extension headers a rule looks at, as packet spec clauses
 * (hooks/input/spec.ts): a packet that carries each header the rule's
 * rt, hbh, dst, ah, frag and ipv6header matches name, at the edges of their
 * values (routing type and segments left, header lengths, SPIs) and just past
 * them. Read from the rule as ip6tables-save prints it.
 */

/** `lo[:hi]` of an ip6tables range option. */
function range(v: string | undefined, max: number): [number, number] | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(v ?? '');
  if (!m) return undefined;
  const lo = Math.min(Number(m[1]), max);
  return [lo, Math.min(m[2] === undefined ? lo : Number(m[2]), max)];
}

/** The values at and just past the edges of `r` (or `dflt` without one), within [0, max]. */
function edges(r: [number, number] | undefined, dflt: number, max: number): number[] {
  if (!r) return [dflt];
  const out = new Set([r[0], r[1], r[0] - 1, r[1] + 1].filter((v) => v >= 0 && v <= max));
  return [...out];
}

/** The option's value after `name` in `words`, if present. */
function opt(words: readonly string[], name: string): string | undefined {
  const i = words.indexOf(name);
  return i >= 0 ? words[i + 1] : undefined;
}

/** The spec clauses of the extension headers `text`'s matches look at (none for a rule without such a match), at most 24. */
export function exthdrClauses(text: string): string[] {
  if (!/ -m (rt|hbh|dst|ah|frag|ipv6header|esp) /.test(`${text} `)) return [];
  const words = text.split(/\s+/);
  const out: string[] = [];
  if (words.includes('rt')) {
    const type = edges(range(opt(words, '--rt-type'), 255), 0, 255);
    const left = edges(range(opt(words, '--rt-segsleft'), 255), 0, 255);
    const addrs = opt(words, '--rt-0-addrs');
    // --rt-len is the header's length in bytes: 8 plus 16 per address
    const lenR = range(opt(words, '--rt-len'), 2048);
    const counts = new Set<number>(addrs ? [addrs.split(',').length] : [0]);
    if (lenR) for (const l of edges(lenR, 8, 2048)) if (l >= 8 && (l - 8) % 16 === 0 && l <= 8 + 16 * 8) counts.add((l - 8) / 16);
    for (const t of type) {
      for (const s of left) {
        for (const n of counts) {
          const list = addrs && n === addrs.split(',').length ? addrs.split(',').map((a) => a.replace(/\/128$/, '')) : Array.from({ length: n }, (_, k) => `2001:db8::${k + 1}`);
          out.push(`rt type ${t} segsleft ${s}${n ? ` addrs ${list.join(',')}` : ''}`);
        }
      }
    }
  }
  for (const [m, word, lenOpt] of [['hbh', 'hbh', '--hbh-len'], ['dst', 'dst', '--dst-len']] as const) {
    if (!words.includes(m) || words[words.indexOf(m) - 1] !== '-m') continue;
    // --hbh-len / --dst-len compare the header's length in bytes ((Hdr Ext Len + 1) * 8)
    const lens = edges(range(opt(words, lenOpt), 2048), 8, 2048).filter((l) => l >= 8 && l % 8 === 0);
    for (const l of lens.length ? lens : [8]) out.push(l === 8 ? word : `${word} len ${l / 8 - 1}`);
  }
  if (words.includes('ah') && words[words.indexOf('ah') - 1] === '-m') {
    for (const spi of edges(range(opt(words, '--ahspi'), 0xffffffff), 1, 0xffffffff)) out.push(`ah spi ${spi}`);
  }
  if (words.includes('frag') && words[words.indexOf('frag') - 1] === '-m') out.push('frag offset 0 mf');
  if (words.includes('ipv6header')) {
    const names = (opt(words, '--header') ?? '').split(',');
    const byName: Readonly<Record<string, string>> = Object.assign(Object.create(null) as Record<string, string>, {
      'hop-by-hop': 'hbh', hop: 'hbh', '0': 'hbh', ipv6_route: 'rt', route: 'rt', '43': 'rt', 'ipv6-opts': 'dst', dst: 'dst', '60': 'dst',
      'ipv6-frag': 'frag offset 0 mf', frag: 'frag offset 0 mf', '44': 'frag offset 0 mf', ah: 'ah', auth: 'ah', '51': 'ah',
    });
    const each = names.map((n) => byName[n.toLowerCase()]).filter((x): x is string => x !== undefined);
    // all of them (the match without --soft wants exactly these), and each alone (--soft: any)
    const frag = each.filter((x) => x.startsWith('frag'));
    const rest = each.filter((x) => !x.startsWith('frag'));
    if (each.length) out.push([...rest, ...frag].join(' '));
    for (const x of each) out.push(x);
  }
  return [...new Set(out)].slice(0, 24);
}
