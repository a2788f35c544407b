/**
 * SNPT/DNPT (ip6t_NPT.c): an address inside the source prefix gets the
 * destination prefix and keeps its one's complement sum (RFC 6296 checksum
 * neutrality), and the VM (nft_compat
 * records, tracing off and on) and the x_tables evaluator give the same
 * verdicts, addresses and counters for generated prefixes (/0 to /64) and
 * addresses (host parts of 0xffff words, the case the kernel refuses with a
 * drop). Run counts come from NFVM_PROPERTY_SCALE.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import { formatIPv6, prefixMask } from '../../core/addr.js';
import { M_HOOK, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { runs } from '../helpers/runs.js';

const word16 = fc.oneof(fc.constantFrom(0, 1, 0xffff, 0xfffe, 0x8000), fc.integer({ min: 0, max: 0xffff }));
const addr = fc.array(word16, { minLength: 8, maxLength: 8 }).map((w) => w.map((x) => x.toString(16)).join(':'));
const prefix = fc.tuple(fc.array(word16, { minLength: 8, maxLength: 8 }), fc.constantFrom(0, 16, 32, 40, 48, 56, 63, 64)).map(([w, len]) => {
  const b = new Uint8Array(16);
  w.forEach((x, i) => { b[2 * i] = x >> 8; b[2 * i + 1] = x & 0xff; });
  const m = prefixMask(len, 16);
  for (let i = 0; i < 16; i++) b[i]! &= m[i]!;
  return `${formatIPv6(b)}/${len}`;
});

/** The one's complement sum of the 16-bit words of the 16 bytes at `at`. */
function onesSum(d: Uint8Array, at: number): number {
  let s = 0;
  for (let i = 0; i < 16; i += 2) s += (d[at + i]! << 8) | d[at + i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function run(engine: TableEngine, chain: string, hook: number, srcs: readonly [string, string][], trace: boolean) {
  engine.setTrace(trace);
  return srcs.map(([s, d]) => {
    const p = packet(ipPacket(s, d, { proto: 'udp', sport: 1000, dport: 53, payload: 4 }));
    p.meta[M_NFPROTO] = 10;
    p.meta[M_HOOK] = hook;
    const v = engine.run(chain, p);
    const nh = p.meta[M_NHOFF]!;
    return { v, bytes: Buffer.from(p.data.subarray(nh, nh + 40)).toString('hex'), trace: trace ? engine.takeTrace().map((e) => `${e.kind}:${e.rule}`) : [] };
  });
}

describe('SNPT and DNPT', () => {
  it('both engines agree; a translated address keeps the prefixes\' checksum difference', () => {
    let translated = 0;
    fc.assert(fc.property(prefix, prefix, fc.constantFrom('SNPT', 'DNPT'), fc.array(fc.tuple(addr, addr, fc.boolean()), { minLength: 1, maxLength: 6 }), (sp, dp, name, gen) => {
      // an address inside the source prefix (what the rule is for) or any
      const len = Math.max(Number(sp.split('/')[1]), Number(dp.split('/')[1]));
      const inside = (a: string) => {
        const b = packet(ipPacket(a, a, { proto: 'udp', sport: 1, dport: 1 }));
        const s = packet(ipPacket(sp.split('/')[0]!, sp.split('/')[0]!, { proto: 'udp', sport: 1, dport: 1 }));
        const m = prefixMask(len, 16);
        const o = b.meta[M_NHOFF]! + 8;
        return formatIPv6(Uint8Array.from({ length: 16 }, (_, i) => (b.data[o + i]! & ~m[i]!) | (s.data[o + i]! & m[i]!)));
      };
      const pkts = gen.map(([s, d, ins]): [string, string, boolean] => (!ins ? [s, d, false] : name === 'SNPT' ? [inside(s), d, true] : [s, inside(d), true]));
      const [chain, hook] = name === 'SNPT' ? ['POSTROUTING', 4] : ['PREROUTING', 0];
      const text = `*mangle\n:${chain} ACCEPT [0:0]\n-A ${chain} -j ${name} --src-pfx ${sp} --dst-pfx ${dp}\n-A ${chain} -d ::/0\nCOMMIT\n`;
      const rs = parseRestore(text, { family: 'ip6' });
      for (const trace of [false, true]) {
        const ref = run(referenceTable(rs, 'mangle', {}), chain, hook, pkts.map(([a, b]) => [a, b]), trace);
        expect(run(vmTable(rs, 'mangle', {}), chain, hook, pkts.map(([a, b]) => [a, b]), trace)).toEqual(ref);
        if (trace) continue;
        const at = name === 'SNPT' ? 8 : 24;
        const pfx = (a: string) => { const p = packet(ipPacket(a, a, { proto: 'udp', sport: 1, dport: 1 })); return p.data.subarray(p.meta[M_NHOFF]! + 8, p.meta[M_NHOFF]! + 24); };
        for (const [i, r] of ref.entries()) {
          if (r.v === NF_DROP || !pkts[i]![2]) continue;
          translated++;
          const before = packet(ipPacket(pkts[i]![0], pkts[i]![1], { proto: 'udp', sport: 1000, dport: 53, payload: 4 }));
          const after = Uint8Array.from(Buffer.from(r.bytes, 'hex'));
          // the address's one's complement sum is unchanged (0 and 0xffff alike): no transport checksum changes
          expect(onesSum(after, at) % 0xffff).toBe(onesSum(before.data, before.meta[M_NHOFF]! + at) % 0xffff);
          // and the address now starts with the translated prefix
          const m = prefixMask(Number(dp.split('/')[1]), 16);
          expect(Array.from(after.subarray(at, at + 16), (b, k) => b & m[k]!)).toEqual(Array.from(pfx(dp.split('/')[0]!).subarray(0, 16)));
        }
      }
    }), { numRuns: runs(150) });
    expect(translated).toBeGreaterThan(30);
  });
});
