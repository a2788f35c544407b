/**
 * ip6t_NPT's parameter problem (ext/target/NPT.ts, hooks/xt-icmp.ts): an
 * address whose words 4-7 are all 0xffff cannot take the adjustment, the
 * packet is dropped and the node answers it with an ICMPv6 parameter
 * problem (ICMPV6_HDR_FIELD) pointing at the address (24 for DNPT's
 * destination, 8 for SNPT's source), quoting the packet with its prefix
 * already replaced, sent through OUTPUT; both engines.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import { formatIPv6 } from '../../core/addr.js';

const FIX = join(import.meta.dirname, '../path/fixtures/node6');

function run(rules: string, spec: string, engine: EngineKind): { r: PathResult; out: bigint[] } {
  const files = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));
  files.set('ip6tables-save.txt', rules);
  const m = buildNodeModel(buildNode('', files), { engine });
  m.setTrace(true);
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  const r = iif === '' ? m.send(pkt, s.oif) : m.receive(pkt, iif);
  const out = m.rulesetWithCounters('ip6')!.tables.get('mangle')!.chains.get('OUTPUT')!.rules.map((x) => x.counters!.packets);
  return { r, out };
}

const RULES = (target: string) => `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
${target}
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type parameter-problem
COMMIT
`;

describe.each(['vm', 'reference'] as const)('NPT parameter problem (%s engine)', (engine) => {
  it('DNPT: pointer 24, the destination prefix already replaced in the quote, through OUTPUT', () => {
    const { r, out } = run(RULES('-A PREROUTING -d 2001:db8:99::/64 -j DNPT --src-pfx 2001:db8:99::/64 --dst-pfx 2001:db8:1::/64'),
      'udp [2001:db8::2]:4000 > [2001:db8:99::ffff:ffff:ffff:ffff]:53 iif eth0', engine);
    expect(fateText(r.fate)).toBe('dropped by mangle:PREROUTING rule 1');
    expect(r.answers.map((a) => [a.kind, fateText(a.fate)])).toEqual([['icmp6-bad-header', 'sent out eth0 to 2001:db8::2']]);
    const p = r.answers[0]!.packet;
    // ICMPv6 type 4 code 0, pointer 24; the quoted destination carries the new prefix
    expect([p[40], p[41], (p[44]! << 24) | (p[45]! << 16) | (p[46]! << 8) | p[47]!]).toEqual([4, 0, 24]);
    expect(formatIPv6(p.subarray(48 + 24, 48 + 40))).toBe('2001:db8:1:0:ffff:ffff:ffff:ffff');
    expect(out).toEqual([1n]);
  });

  it('an address that takes the adjustment is translated, nothing is sent', () => {
    const { r, out } = run(RULES('-A PREROUTING -d 2001:db8:99::/64 -j DNPT --src-pfx 2001:db8:99::/64 --dst-pfx 2001:db8:1::/64'),
      'udp [2001:db8::2]:4000 > [2001:db8:99::5]:53 iif eth0', engine);
    expect(r.answers).toEqual([]);
    expect(out).toEqual([0n]);
  });
});
