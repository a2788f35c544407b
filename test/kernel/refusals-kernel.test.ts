/**
 * The recorded refusals of test/helpers/refusals.ts, live: each input goes
 * through the installed iptables-legacy-restore (its stderr and exit
 * status must be the recorded ones, byte for byte) and iptables-nft-restore
 * (its exit status) in a throwaway network namespace per tool run.
 *
 * Root with iproute2 and both iptables backends; skips with a message
 * otherwise (fails under CI).
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { kernelSkip, run } from '../helpers/kernel.js';
import { REFUSALS, refusalInput } from '../helpers/refusals.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'ip6tables-legacy-restore', 'iptables-nft-restore', 'ip6tables-nft-restore'];
const SKIP = kernelSkip('iptables-restore refusals against the installed tools', TOOLS);

describe.skipIf(SKIP)('iptables-restore refusals, live', () => {
  it(`${REFUSALS.length} inputs: iptables-legacy-restore prints what was recorded, iptables-nft-restore exits as recorded`, async () => {
    const ns = `nfvm-refuse-${process.pid % 10000}-${randomBytes(3).toString('hex')}`;
    const add = await run('ip', ['netns', 'add', ns]);
    if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
    const diffs: string[] = [];
    try {
      for (const r of REFUSALS) {
        const pre = r.family === 'ip6' ? 'ip6tables' : 'iptables';
        const legacy = await run('ip', ['netns', 'exec', ns, `${pre}-legacy-restore`], refusalInput(r));
        const nft = await run('ip', ['netns', 'exec', ns, `${pre}-nft-restore`], refusalInput(r));
        if (legacy.code !== r.legacy || legacy.stderr !== r.stderr) diffs.push(`${r.rule.slice(0, 60)}: legacy ${legacy.code} ${JSON.stringify(legacy.stderr)}`);
        if (nft.code !== r.nft) diffs.push(`${r.rule.slice(0, 60)}: nft ${nft.code} ${JSON.stringify(nft.stderr)}`);
      }
    } finally {
      await run('ip', ['netns', 'del', ns]);
    }
    expect(diffs).toEqual([]);
  }, 120_000);
});
