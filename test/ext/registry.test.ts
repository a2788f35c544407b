/**
 * ext/registry.ts is the one name table of the extensions. Every module in
 * it has its parser and printer, a VM lowering or a documented refusal, a
 * reference semantics or a documented refusal; and each engine accepts
 * exactly the modules whose face it runs: a rule using any other is refused
 * with "match NAME: semantics not modelled yet" (or "target NAME: ...").
 */
import { describe, expect, it } from 'vitest';
import { allMatches, allTargets } from '../../ext/registry.js';
import type { ExtContext, MatchModule, TargetModule } from '../../ext/types.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { compileTable } from '../../compiler/compile.js';
import { referenceTable } from '../../engine/reference/index.js';
import type { Family, Rule, Ruleset } from '../../core/ast.js';
import { NfvmError } from '../../core/errors.js';
import type { EngineOptions } from '../../ext/types.js';
import { parseIpsetSave } from '../../compiler/ipset.js';
import { XtState } from '../../ext/xtstate.js';
import { rateestGet } from '../../ext/rateest.js';
import { parsePfOs } from '../../ext/osf.js';
import { parseNfacctList } from '../../ext/nfacct.js';

type Module = MatchModule | TargetModule;
const modules: readonly Module[] = [...allMatches(), ...allTargets()];
const families = (m: Module): Family[] => (m.family ? [m.family] : ['ip', 'ip6']);
const label = (m: Module) => `${m.kind} ${m.name}${m.family ? ` (${m.family})` : ''}`;

/** Modules whose data from `init` alone is no complete rule: the options a rule gives them. */
const OPTIONS: Readonly<Record<string, string>> = {
  CONNMARK: '--set-xmark 0x1/0xff', cgroup: '--path /', bpf: '--bytecode "1,6 0 0 1"', set: '--match-set s src', SET: '--add-set s src', rateest: '--rateest s --rateest-bps 1 --rateest-gt',
  nfacct: '--nfacct-name a',
};

/** The node's sets the set match and the SET target name. */
/** ... and the node's rate estimator `s` the rateest match names (a RATEEST rule made it), its (empty) list of OS fingerprints, and its accounting object `a`. */
const engine = (): EngineOptions => {
  const xt = new XtState();
  rateestGet(xt, 's', 0, 2);
  return { ipsets: parseIpsetSave('create s hash:ip family inet\ncreate s6 hash:ip family inet6\n', 'sets'), xt, osf: parsePfOs('', 'pf.os'), xfrmNoStates: true, nfacct: parseNfacctList('{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = a;\n', 'nfacct.txt') };
};

/** A one-rule filter table whose rule uses module `m` with the data `init` (and OPTIONS) give. */
function rulesetWith(m: Module, family: Family): Ruleset {
  const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT\nCOMMIT\n', { family, file: 'r.rules' });
  const rule: Rule = rs.tables.get('filter')!.chains.get('INPUT')!.rules[0]!;
  const opts = OPTIONS[m.name];
  if (opts) {
    const spec = parseRestore(`*mangle\n:INPUT ACCEPT [0:0]\n-A INPUT ${m.kind === 'match' ? '-m' : '-j'} ${m.name} ${opts}\nCOMMIT\n`, { family });
    const given = spec.tables.get('mangle')!.chains.get('INPUT')!.rules[0]!;
    if (m.kind === 'match') rule.matches.push({ ...given.matches[0]!, pos: { line: 3, col: 10 } });
    else rule.target = { ...given.target, pos: { line: 3, col: 10 } } as Rule['target'];
    return rs;
  }
  const ctx: ExtContext = { family, table: 'filter', rule, warn: () => {} };
  const pos = { line: 3, col: 10 };
  const data = m.init(ctx);
  if (m.kind === 'match') rule.matches.push({ name: m.name, data, pos, unknown: false, raw: [], options: [] });
  else rule.target = { kind: 'ext', name: m.name, data, pos, options: [] };
  return rs;
}

/** What an engine says to a rule using the module: accepted, refused as not modelled, or another error. */
function verdict(run: () => unknown, m: Module): 'accepted' | 'refused' | string {
  try {
    run();
    return 'accepted';
  } catch (e) {
    if (!(e instanceof NfvmError)) throw e;
    if (e.message === `r.rules:3:10: ${m.kind} ${m.name}: semantics not modelled yet`) return 'refused';
    return e.message;
  }
}

describe('the extension registry', () => {
  it('has every module once per name and family', () => {
    const seen = new Set<string>();
    for (const m of modules) {
      for (const f of families(m)) {
        const key = `${m.kind} ${m.name} ${f}`;
        expect(seen.has(key), key).toBe(false);
        seen.add(key);
      }
    }
    expect(allMatches().length).toBeGreaterThan(50);
    expect(allTargets().length).toBeGreaterThan(30);
  });

  it.each(modules.map((m) => [label(m), m] as const))('%s has a parser, a printer, a lowering or refusal, a reference or refusal', (_, m) => {
    expect(Array.isArray(m.options)).toBe(true);
    for (const face of [m.init, m.parse, m.save]) expect(typeof face).toBe('function');
    for (const face of [m.lower, m.reference]) {
      if (typeof face === 'function') continue;
      expect(typeof face).toBe('string');
      // a refusal says what it would need, on one line
      expect(face).toMatch(/^\S.{10,}$/);
      expect(face).not.toMatch(/\n/);
    }
  });

  it('each engine accepts exactly the modules whose face it runs', () => {
    for (const m of modules) {
      for (const family of families(m)) {
        const vm = verdict(() => compileTable(rulesetWith(m, family), 'filter', { file: 'r.rules', engine: engine() }), m);
        const ref = verdict(() => referenceTable(rulesetWith(m, family), 'filter', { file: 'r.rules', ...engine() }), m);
        expect([label(m), family, 'vm', vm]).toEqual([label(m), family, 'vm', typeof m.lower === 'function' ? 'accepted' : 'refused']);
        expect([label(m), family, 'reference', ref]).toEqual([label(m), family, 'reference', typeof m.reference === 'function' ? 'accepted' : 'refused']);
      }
    }
  });

  it('lists the extensions both engines run', () => {
    const names = (pred: (m: Module) => boolean) => [...new Set(modules.filter(pred).map((m) => `${m.kind === 'match' ? '-m' : '-j'} ${m.name}`))].sort();
    const both = names((m) => typeof m.lower === 'function' && typeof m.reference === 'function');
    expect(both).toEqual([
      '-j AUDIT', '-j CHECKSUM', '-j CLASSIFY', '-j CONNMARK', '-j CONNSECMARK', '-j CT', '-j DNAT', '-j DNPT', '-j DSCP', '-j ECN', '-j HL', '-j HMARK', '-j IDLETIMER', '-j LED', '-j LOG', '-j MARK', '-j MASQUERADE', '-j NETMAP',
      '-j NFLOG', '-j NFQUEUE', '-j NOTRACK', '-j RATEEST', '-j REDIRECT', '-j REJECT', '-j SET', '-j SNAT', '-j SNPT', '-j TCPMSS', '-j TCPOPTSTRIP', '-j TEE', '-j TOS', '-j TPROXY', '-j TRACE', '-j TTL',
      '-m addrtype', '-m ah', '-m bpf', '-m cgroup', '-m cluster', '-m comment', '-m connbytes', '-m connlabel', '-m connlimit', '-m connmark', '-m conntrack', '-m cpu', '-m dccp', '-m devgroup', '-m dscp', '-m dst', '-m ecn', '-m esp', '-m eui64',
      '-m frag', '-m hashlimit', '-m hbh', '-m helper', '-m hl', '-m icmp', '-m icmp6', '-m ipcomp', '-m iprange', '-m ipv6header', '-m ipvs', '-m length', '-m limit', '-m mac',
      '-m mark', '-m mh', '-m multiport', '-m nfacct', '-m osf', '-m owner', '-m physdev', '-m pkttype', '-m policy', '-m quota', '-m rateest', '-m realm', '-m recent', '-m rpfilter', '-m rt', '-m sctp', '-m set', '-m socket', '-m srh', '-m state', '-m statistic', '-m string', '-m tcp',
      '-m tcpmss', '-m time', '-m tos', '-m ttl', '-m u32', '-m udp',
    ]);
    expect(names((m) => typeof m.lower === 'function' && typeof m.reference !== 'function')).toEqual([]);
    expect(names((m) => typeof m.lower !== 'function' && typeof m.reference === 'function')).toEqual([]);
  });
});
