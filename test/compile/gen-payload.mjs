#!/usr/bin/env node
/**
 * Regenerates cases/*.t.payload from the real tools (run as root on a host
 * with nft, iptables-nft-restore and ip6tables-nft-restore):
 *
 *   node test/compile/gen-payload.mjs [cases/FILE.t ...]
 *
 * Each rule line of a .t file is loaded alone, with iptables-nft-restore, in
 * a fresh uniquely named network namespace (always deleted afterwards); the
 * rule's block of `nft --debug=netlink list ruleset` is recorded with the
 * handle numbers dropped from its header line. User chains FOO and BAR exist
 * in every table, for jumps and gotos. Files named `bridge-*.t` hold
 * ebtables rules, loaded with ebtables-nft-restore (FOO and BAR are user
 * chains with the default RETURN policy).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'cases');

function sh(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export function parseT(text) {
  const cases = [];
  let table = 'filter';
  let chain = 'INPUT';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) chain = line.slice(1);
    else {
      const at = line.lastIndexOf(';');
      cases.push({ line: i + 1, table, chain, rule: line.slice(0, at), result: line.slice(at + 1) });
    }
  });
  return cases;
}

/** The builtin chains of each ebtables table, as ebtables-nft-restore wants them declared. */
export const EBT_CHAINS = { filter: ['INPUT', 'FORWARD', 'OUTPUT'], nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'] };

/** The restore text that loads one case. */
export function caseText(family, c) {
  if (family !== 'bridge') return `*${c.table}\n:FOO - [0:0]\n:BAR - [0:0]\n-A ${c.chain} ${c.rule}\nCOMMIT\n`;
  const builtins = EBT_CHAINS[c.table].map((n) => `:${n} ACCEPT\n`).join('');
  return `*${c.table}\n${builtins}:FOO RETURN\n:BAR RETURN\n-A ${c.chain} ${c.rule}\n`;
}

export function familyOf(file) {
  const b = basename(file);
  return b.startsWith('ip6-') ? 'ip6' : b.startsWith('bridge-') ? 'bridge' : 'ip';
}

function gen(file) {
  const family = familyOf(file);
  const restore = family === 'ip6' ? 'ip6tables-nft-restore' : family === 'bridge' ? 'ebtables-nft-restore' : 'iptables-nft-restore';
  const out = [];
  for (const c of parseT(readFileSync(file, 'utf8'))) {
    const ns = `nfvm-gold-${process.pid}-${c.line}`;
    const add = sh('ip', ['netns', 'add', ns]);
    if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.err}`);
    try {
      const text = caseText(family, c);
      const r = sh('ip', ['netns', 'exec', ns, restore], text);
      if (r.code !== 0) throw new Error(`${file}:${c.line}: ${restore} failed: ${r.err}`);
      const l = sh('ip', ['netns', 'exec', ns, 'nft', '--debug=netlink', 'list', 'ruleset']);
      if (l.code !== 0) throw new Error(`${file}:${c.line}: nft failed: ${l.err}`);
      const blocks = [];
      let cur = null;
      for (const line of l.out.split('\n')) {
        if (/^(ip|ip6|bridge) \S+ [^@\s]\S*( \d+)*$/.test(line)) {
          cur = [line.replace(/( \d+)+$/, '')];
          blocks.push(cur);
        } else if (cur && line.startsWith('  [')) cur.push(line);
        else cur = null;
      }
      if (blocks.length !== 1) throw new Error(`${file}:${c.line}: expected one rule block, got ${blocks.length}`);
      out.push(`# ${c.rule}\n${blocks[0].join('\n')}\n`);
    } finally {
      const d = sh('ip', ['netns', 'del', ns]);
      if (d.code !== 0) console.error(`ip netns del ${ns}: ${d.err}`);
    }
  }
  writeFileSync(`${file}.payload`, out.join('\n'));
  console.log(`${basename(file)}: ${out.length} rules`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(dir).filter((f) => f.endsWith('.t')).map((f) => join(dir, f));
  for (const f of files) gen(f);
}
