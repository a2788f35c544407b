/**
 * Fuzzing the front end: random bytes, random token soup and mutated real
 * dumps must only ever produce a Ruleset or a located NfvmError, never
 * another exception, and a parse that succeeds prints a fixed point.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { NfvmError } from '../core/errors.js';
import { corpusPath, describeCorpus } from './helpers/corpus.js';
import { ruleset } from './helpers/gen.js';
import { runs } from './helpers/runs.js';

function survive(text: string, family: 'ip' | 'ip6' = 'ip'): void {
  let rs;
  try {
    rs = parseRestore(text, { family });
  } catch (e) {
    if (!(e instanceof NfvmError)) throw new Error(`non-typed error ${(e as Error).stack}\ninput: ${JSON.stringify(text.slice(0, 400))}`);
    expect(e.file).toBe('<input>');
    if (e.kind !== 'check' || e.pos) {
      // every syntax/option/value error points at a line
      expect(e.pos, e.message).toBeDefined();
    }
    return;
  }
  const once = saveRuleset(rs);
  expect(saveRuleset(parseRestore(once, { family }))).toBe(once);
}

const TOKENS = [
  '*filter', '*nat', '*mangle', '*raw', '*security', '*bogus', 'COMMIT', ':INPUT ACCEPT [0:0]', ':X - [0:0]', ':FORWARD DROP',
  '-A', '-I', '-D', '-R', '-N', '-X', '-F', '-P', '-E', '-Z', 'INPUT', 'X', 'Y', '1', '0', '-1', '99999999999999999999',
  '-s', '-d', '-i', '-o', '-p', '-f', '-j', '-g', '-m', '!', '!!', '--', '-', '""', '"', '\\', "'", '#', '[1:2]', '[',
  'tcp', 'udp', 'icmp', 'all', '--dport', '--sport', '--dports', '--tcp-flags', 'SYN,ACK', 'ALL', '--syn', 'comment',
  '--comment', 'mark', '--mark', '0xffffffff/0x1', 'MARK', '--set-xmark', 'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'LOG',
  'conntrack', '--ctstate', 'NEW,ESTABLISHED', 'multiport', 'limit', '--limit', '5/sec', 'set', '--match-set', 'src,dst',
  'statistic', '--mode', 'random', '--probability', '0.5', 'DNAT', '--to-destination', '10.0.0.1:80', 'REJECT',
  '--reject-with', 'tcp-reset', '10.0.0.0/8', '1.2.3.4/255.0.255.0', '::1/128', 'eth+', '+', 'lo', '1:65535', ':', '65536',
  '__proto__', 'constructor', 'u32', '--u32', '0>>22&0x3C@12>>26&0x3C@0=0x12345678', 'string', '--hex-string', '|00 01|',
  'recent', '--name', 'time', '--weekdays', 'Mon,Tue', 'hashlimit', '--hashlimit-upto', '1/min', '--hashlimit-name', 'h',
];

describe('fuzz: the parser only throws typed errors', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        survive(Buffer.from(bytes).toString('latin1'));
      }),
      { numRuns: runs(500) },
    );
  });

  it('random lines of plausible tokens', () => {
    const line = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 14 }).map((t) => t.join(' '));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), (lines, framed) => {
        const body = lines.join('\n');
        survive(framed ? `*filter\n:X - [0:0]\n${body}\nCOMMIT\n` : body + '\n');
      }),
      { numRuns: runs(1500) },
    );
  });

  it('mutated generated rulesets', () => {
    fc.assert(
      fc.property(ruleset, fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...TOKENS, '', ' ', '\n', '"')), { maxLength: 6 }), (text, muts) => {
        let t = text;
        for (const [a, b, tok] of muts) {
          const i = a % (t.length + 1);
          const j = Math.min(t.length, i + (b % 12));
          t = t.slice(0, i) + tok + t.slice(j);
        }
        survive(t);
      }),
      { numRuns: runs(800) },
    );
  });
});

/** Real dumps from the corpus, for the mutation fuzzer. */
function corpusDumps(): { name: string; text: string; family: 'ip' | 'ip6' }[] {
  const roots = ['kubernetes-kube-proxy', 'diekmann-net-network', 'netfilter-iptables/iptables/tests/shell/testcases/ipt-save/dumps'];
  const out: { name: string; text: string; family: 'ip' | 'ip6' }[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      const st = statSync(p);
      if (st.isDirectory()) walk(p, depth + 1);
      else if (st.size < 200_000) {
        const text = readFileSync(p, 'utf8');
        if (/^\*(filter|nat|mangle|raw)$/m.test(text)) out.push({ name: p, text, family: /ip6/.test(e) ? 'ip6' : 'ip' });
      }
    }
  };
  for (const r of roots) walk(corpusPath(r), 0);
  return out;
}

describeCorpus('fuzz: mutated real dumps', () => {
  it('line deletions, duplications, truncation and byte flips', () => {
    const dumps = corpusDumps();
    expect(dumps.length).toBeGreaterThan(10);
    fc.assert(
      fc.property(
        fc.nat({ max: dumps.length - 1 }),
        fc.array(fc.tuple(fc.constantFrom('del', 'dup', 'cut', 'flip', 'swap'), fc.nat(), fc.nat()), { minLength: 1, maxLength: 5 }),
        (k, muts) => {
          const d = dumps[k]!;
          let lines = d.text.split('\n');
          for (const [op, a, b] of muts) {
            const i = a % lines.length;
            if (op === 'del') lines.splice(i, 1);
            else if (op === 'dup') lines.splice(i, 0, lines[i]!);
            else if (op === 'cut') lines = lines.slice(0, i);
            else if (op === 'swap') [lines[i], lines[b % lines.length]] = [lines[b % lines.length]!, lines[i]!];
            else {
              const l = lines[i] ?? '';
              const j = b % (l.length + 1);
              lines[i] = l.slice(0, j) + String.fromCharCode(32 + (b % 95)) + l.slice(j + 1);
            }
            if (lines.length === 0) lines = [''];
          }
          survive(lines.join('\n'), d.family);
        },
      ),
      { numRuns: runs(400) },
    );
  });
});
