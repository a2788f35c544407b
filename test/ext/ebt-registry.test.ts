/**
 * ext/ebt/registry.ts is the one name table of the ebtables modules. Every
 * module in it has its parser and printer, a lowering or a documented
 * refusal, a reference semantics or a documented refusal; option names are
 * unique across the matches and watchers (ebtables merges them all into
 * one getopt table) and never clash with a base option.
 */
import { describe, expect, it } from 'vitest';
import { allEbtMatches, allEbtTargets, findEbtModule } from '../../ext/ebt/registry.js';
import type { EbtModule } from '../../ext/ebt/types.js';
import { parseEbtRestore } from '../../compiler/ebt/restore.js';
import { saveEbtRuleset } from '../../compiler/ebt/save.js';

const modules: readonly EbtModule[] = [...allEbtMatches(), ...allEbtTargets()];
const BASE = ['append', 'insert', 'delete', 'list', 'zero', 'flush', 'policy', 'in-interface', 'in-if', 'logical-in', 'logical-out',
  'out-interface', 'out-if', 'version', 'help', 'jump', 'set-counters', 'change-counters', 'proto', 'protocol', 'db', 'source', 'src',
  'destination', 'dst', 'table', 'modprobe', 'new-chain', 'rename-chain', 'delete-chain'];

/** One rule per module, as the module's tests in libebt_*.t use it (and arpreply/among, which they do not cover). */
const EXAMPLES: Readonly<Record<string, string>> = {
  '802_3': '*filter\n-A INPUT -p LENGTH --802_3-sap 0x42',
  among: '*filter\n-A INPUT --among-dst 0:1:2:3:4:5',
  arp: '*filter\n-A INPUT -p ARP --arp-op Reply',
  ip: '*filter\n-A INPUT -p IPv4 --ip-proto tcp --ip-dport 80',
  ip6: '*filter\n-A INPUT -p IPv6 --ip6-proto udp --ip6-sport 53',
  limit: '*filter\n-A INPUT --limit 5/min',
  mark_m: '*filter\n-A INPUT --mark 0x10/0xf0',
  pkttype: '*filter\n-A INPUT --pkttype-type broadcast',
  stp: '*filter\n-A INPUT --stp-type tcn',
  vlan: '*filter\n-A INPUT -p 802_1Q --vlan-id 7',
  log: '*filter\n-A INPUT --log-prefix x',
  nflog: '*filter\n-A INPUT --nflog-group 3',
  mark: '*filter\n-A INPUT -j mark --mark-or 0x4 --mark-target CONTINUE',
  dnat: '*nat\n-A PREROUTING -j dnat --to-dst 0:1:2:3:4:5',
  snat: '*nat\n-A POSTROUTING -j snat --to-src 0:1:2:3:4:5 --snat-arp',
  redirect: '*nat\n-A PREROUTING -j redirect --redirect-target DROP',
  arpreply: '*nat\n-A PREROUTING -p ARP -j arpreply --arpreply-mac 0:1:2:3:4:5',
};

describe('the ebtables module registry', () => {
  it('has every module once, found by name', () => {
    const names = modules.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const m of modules) expect(findEbtModule(m.name)).toBe(m);
  });
  it('has no option name twice among matches and watchers, and none that is a base option', () => {
    const seen = new Map<string, string>();
    for (const m of allEbtMatches()) {
      for (const o of m.options) {
        expect(seen.get(o.name), `--${o.name} of ${m.name}`).toBeUndefined();
        expect(BASE).not.toContain(o.name);
        seen.set(o.name, m.name);
      }
    }
  });
  for (const m of modules) {
    describe(`${m.kind} ${m.name}`, () => {
      it('has its parser and printer', () => {
        expect(typeof m.init).toBe('function');
        expect(typeof m.parse).toBe('function');
        expect(typeof m.save).toBe('function');
        expect(m.options.length).toBeGreaterThan(0);
      });
      it('has a lowering or a documented refusal, a reference or a documented refusal', () => {
        // a documented refusal, or what ebtables-nft loads: native expressions or the module through nft_compat
        const lower = m.lower;
        if (typeof lower === 'string') expect(lower.length).toBeGreaterThan(20);
        else {
          expect(Number.isInteger(lower.rev)).toBe(true);
          expect(lower.native === undefined || typeof lower.native === 'function').toBe(true);
        }
        const ref = m.reference;
        if (typeof ref === 'string') expect(ref.length).toBeGreaterThan(20);
        else expect(typeof (m.kind === 'target' ? ref.tg : ref.mt)).toBe('function');
      });
      it('parses and prints a rule that uses it, and reads its print back the same', () => {
        const text = EXAMPLES[m.name];
        expect(text, 'an example rule').toBeDefined();
        const once = saveEbtRuleset(parseEbtRestore(text! + '\n'), { comments: false });
        expect(saveEbtRuleset(parseEbtRestore(once), { comments: false })).toBe(once);
        const rules = [...parseEbtRestore(once).tables.values()].flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules));
        const used = rules.flatMap((r) => [...r.matches.map((x) => x.name), r.target.kind === 'ext' ? r.target.name : '']);
        expect(used).toContain(m.name);
      });
    });
  }
});
