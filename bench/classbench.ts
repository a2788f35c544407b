/**
 * ClassBench rule sets and header traces as iptables rules and packets.
 *
 * Filter lines (tab separated):
 *   @SRC/LEN  DST/LEN  SPLO : SPHI  DPLO : DPHI  PROTO/MASK  FLAGS/MASK
 * become `-A FORWARD -s SRC/LEN -d DST/LEN [-p PROTO [-m tcp|udp --sport
 * SPLO:SPHI --dport DPLO:DPHI]] -j ACCEPT`; a protocol mask of 0 means any
 * protocol (those filters all have full port ranges in the corpus sets;
 * restricted ports without a protocol cannot be written in iptables and are
 * refused). The flags column is ignored, as 5-tuple classifiers do.
 *
 * Trace lines (`SRC DST SPORT DPORT PROTO FLAGS FILTER#`, addresses as u32)
 * become raw IPv4 frames with a TCP, UDP or 8-byte generic L4 header.
 */

export interface CbFilter {
  src: number;
  srcLen: number;
  dst: number;
  dstLen: number;
  sport: [number, number];
  dport: [number, number];
  /** -1 for any protocol. */
  proto: number;
}

export interface CbHeader {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  proto: number;
  /** The 0-based filter the generator drew this header from (not necessarily the first match). */
  filter: number;
}

function ipToU32(s: string): number {
  const p = s.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad address ${s}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function u32ToIp(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export function parseFilters(text: string): CbFilter[] {
  const out: CbFilter[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('@')) continue;
    const f = line.slice(1).split('\t');
    const [src, srcLen] = f[0]!.split('/');
    const [dst, dstLen] = f[1]!.split('/');
    const sp = f[2]!.split(':').map((x) => Number(x.trim()));
    const dp = f[3]!.split(':').map((x) => Number(x.trim()));
    const [pv, pm] = f[4]!.split('/').map((x) => parseInt(x, 16));
    out.push({
      src: ipToU32(src!),
      srcLen: Number(srcLen),
      dst: ipToU32(dst!),
      dstLen: Number(dstLen),
      sport: [sp[0]!, sp[1]!],
      dport: [dp[0]!, dp[1]!],
      proto: pm === 0 ? -1 : pv!,
    });
  }
  return out;
}

export function parseTrace(text: string): CbHeader[] {
  const out: CbHeader[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    out.push({ src: Number(f[0]) >>> 0, dst: Number(f[1]) >>> 0, sport: Number(f[2]), dport: Number(f[3]), proto: Number(f[4]), filter: Number(f[6]) });
  }
  return out;
}

const mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

/** The iptables rule of one filter (after `-A CHAIN`). */
export function filterRule(f: CbFilter): string {
  let s = `-s ${u32ToIp((f.src & mask(f.srcLen)) >>> 0)}/${f.srcLen} -d ${u32ToIp((f.dst & mask(f.dstLen)) >>> 0)}/${f.dstLen}`;
  const fullPorts = f.sport[0] === 0 && f.sport[1] === 65535 && f.dport[0] === 0 && f.dport[1] === 65535;
  if (f.proto >= 0) {
    s += ` -p ${f.proto}`;
    if (!fullPorts) {
      if (f.proto !== 6 && f.proto !== 17) throw new Error(`ports on protocol ${f.proto} cannot be written in iptables`);
      s += ` --sport ${f.sport[0]}:${f.sport[1]} --dport ${f.dport[0]}:${f.dport[1]}`;
    }
  } else if (!fullPorts) {
    throw new Error('ports without a protocol cannot be written in iptables');
  }
  return s + ' -j ACCEPT';
}

/**
 * The ClassBench sets the tests and benchmarks use, under the corpus: acl1,
 * fw1 and ipc1 at 1k rules with their header traces (NAME_trace) and at 10k
 * rules without (headers are synthesised from the filters).
 */
export const CLASSBENCH_SETS: readonly { name: string; rules: string; trace: string | undefined }[] = [
  { name: 'acl1_1k', rules: 'classbench-lyxocs-ruleSet/acl1_1k', trace: 'classbench-lyxocs-ruleSet/acl1_1k_trace' },
  { name: 'fw1_1k', rules: 'classbench-lyxocs-ruleSet/fw1_1k', trace: 'classbench-lyxocs-ruleSet/fw1_1k_trace' },
  { name: 'ipc1_1k', rules: 'classbench-lyxocs-ruleSet/ipc1_1k', trace: 'classbench-lyxocs-ruleSet/ipc1_1k_trace' },
  { name: 'acl1_10k', rules: 'classbench-neurocuts/classbench/acl1_10k', trace: undefined },
  { name: 'fw1_10k', rules: 'classbench-neurocuts/classbench/fw1_10k', trace: undefined },
  { name: 'ipc1_10k', rules: 'classbench-neurocuts/classbench/ipc1_10k', trace: undefined },
];

/** A filter-table ruleset: every filter in FORWARD (policy DROP), in order. */
export function filtersToRestore(filters: readonly CbFilter[], chain = 'FORWARD'): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]'];
  for (const f of filters) lines.push(`-A ${chain} ${filterRule(f)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The first filter a header matches (linear scan, ClassBench semantics), -1 for none. */
export function firstMatch(filters: readonly CbFilter[], h: CbHeader): number {
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    if (((h.src ^ f.src) & mask(f.srcLen)) !== 0) continue;
    if (((h.dst ^ f.dst) & mask(f.dstLen)) !== 0) continue;
    if (f.proto >= 0 && f.proto !== h.proto) continue;
    if (h.sport < f.sport[0] || h.sport > f.sport[1] || h.dport < f.dport[0] || h.dport > f.dport[1]) continue;
    return i;
  }
  return -1;
}

/** A raw IPv4 frame (linktype RAW) carrying the header: TCP (20 bytes), UDP (8) or 8 bytes of another protocol. */
export function headerFrame(h: CbHeader): Uint8Array {
  const l4 = h.proto === 6 ? 20 : 8;
  const b = new Uint8Array(20 + l4);
  b[0] = 0x45;
  const total = b.length;
  b[2] = total >> 8;
  b[3] = total & 255;
  b[8] = 64;
  b[9] = h.proto;
  b[12] = h.src >>> 24;
  b[13] = (h.src >>> 16) & 255;
  b[14] = (h.src >>> 8) & 255;
  b[15] = h.src & 255;
  b[16] = h.dst >>> 24;
  b[17] = (h.dst >>> 16) & 255;
  b[18] = (h.dst >>> 8) & 255;
  b[19] = h.dst & 255;
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  b[10] = c >> 8;
  b[11] = c & 255;
  if (h.proto === 6 || h.proto === 17) {
    b[20] = h.sport >> 8;
    b[21] = h.sport & 255;
    b[22] = h.dport >> 8;
    b[23] = h.dport & 255;
    if (h.proto === 6) {
      b[32] = 0x50; // data offset 5
      b[33] = 0x10; // ACK
    } else {
      b[24] = 0;
      b[25] = 8;
    }
  }
  return b;
}

/** Headers synthesised from the filters, as ClassBench's trace generator does: a filter, then a corner of it. */
export function synthHeaders(filters: readonly CbFilter[], n: number, seed = 1): CbHeader[] {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const pick = (lo: number, hi: number) => (rnd() < 0.5 ? lo : hi);
  const out: CbHeader[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rnd() * filters.length);
    const f = filters[k]!;
    const hostBits = (len: number) => (len === 32 ? 0 : Math.floor(rnd() * 2 ** (32 - len)));
    out.push({
      src: ((f.src & mask(f.srcLen)) + hostBits(f.srcLen)) >>> 0,
      dst: ((f.dst & mask(f.dstLen)) + hostBits(f.dstLen)) >>> 0,
      sport: pick(f.sport[0], f.sport[1]),
      dport: pick(f.dport[0], f.dport[1]),
      proto: f.proto >= 0 ? f.proto : 6,
      filter: k,
    });
  }
  return out;
}
