/**
 * The README's worked example of the bridge level ("Worked example: a
 * published container port"), run as written on examples/container-bridge
 * with the bundled command: its output must show every line the README
 * shows, in order (a README line `...` stands for any lines left out, `...`
 * inside a line for any text). Then the same two frames replayed with
 * `--save ebtables`: the ebtables counters of the rules and chains the trace
 * names.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcapng } from '../../hooks/input/pcapng.js';
import { LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';

const REPO = join(__dirname, '../..');

/** The example's command (after `$ nfvm `) split as sh would split it, and the output lines the README shows. */
function readmeExample(): { args: string[]; shown: string[] } {
  const text = readFileSync(join(REPO, 'README.md'), 'utf8');
  const at = text.indexOf('### Worked example: a published container port');
  if (at < 0) throw new Error('README: the bridge worked example is missing');
  const open = text.indexOf('```\n', at) + 4;
  const block = text.slice(open, text.indexOf('\n```', open)).split('\n');
  const cmd = block[0]!;
  if (!cmd.startsWith('$ nfvm ')) throw new Error(`README: the example's block starts with ${cmd}`);
  const args = [...cmd.slice('$ nfvm '.length).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  return { args, shown: block.slice(1) };
}

/** Whether `out` shows `shown` in order: a `...` line skips any lines, `...` within a line any text. */
function showsInOrder(out: string[], shown: string[]): string | undefined {
  let i = 0;
  let skipping = false;
  for (const want of shown) {
    if (want === '...') {
      skipping = true;
      continue;
    }
    const re = new RegExp(`^${want.split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    let found = -1;
    for (let j = i; j < out.length && (skipping || j === i); j++) {
      if (re.test(out[j]!)) {
        found = j;
        break;
      }
    }
    if (found < 0) return `README line not shown ${skipping ? 'after' : 'right after'} output line ${i}: ${want}`;
    i = found + 1;
    skipping = false;
  }
  return undefined;
}

let cli = '';
beforeAll(async () => {
  cli = await buildCli();
}, 120_000);

describe('the README bridge example', () => {
  it('prints what the README shows, as written', () => {
    const { args, shown } = readmeExample();
    expect(args.slice(0, 2)).toEqual(['trace', 'examples/container-bridge']);
    const r = runCli(cli, [args[0]!, join(REPO, args[1]!), ...args.slice(2)]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(shown.length).toBeGreaterThan(30);
    expect(showsInOrder(r.out.trimEnd().split('\n'), shown)).toBeUndefined();
  });

  it('the same frames replayed: the ebtables counters of the chains the trace names', () => {
    const { args } = readmeExample();
    const specs = args.filter((_, i) => args[i - 1] === '--packet');
    expect(specs.length).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-brex-'));
    try {
      const pcap = join(dir, 'frames.pcapng');
      // trace gives a frame without dst-mac its device's MAC; a capture has it written
      const withMac = (s: string) => (s.includes('dst-mac') ? s : `${s} dst-mac 52:54:00:12:34:56`);
      const frames = specs.map((s, i) => ({ data: encodeSpec(parseSpec(withMac(s))).data, ifId: s.includes('iif eth0') ? 0 : 1, tsSec: 1, tsNsec: i * 1_000_000 }));
      writeFileSync(pcap, writePcapng(frames, { interfaces: [{ name: 'eth0', linktype: LINKTYPE_ETHERNET }, { name: 'vethc1', linktype: LINKTYPE_ETHERNET }] }));
      const r = runCli(cli, ['replay', join(REPO, 'examples/container-bridge'), '--pcap', pcap, '--save', 'ebtables']);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const body = r.out.split('\n').filter((l) => !l.startsWith('#')).join('\n');
      expect(body).toBe([
        '*filter',
        ':INPUT ACCEPT',
        ':FORWARD ACCEPT',
        ':OUTPUT ACCEPT',
        '[0:0] -A INPUT -p IPv4 -i vethc1 ! --ip-src 172.17.0.2 -j DROP',
        '[0:0] -A FORWARD ! -s 02:42:ac:11:00:02 -i vethc1 -j DROP',
        '[1:40] -A OUTPUT -p IPv4 -o vethc1 --ip-proto tcp -j ACCEPT',
        '*nat',
        ':PREROUTING ACCEPT',
        ':OUTPUT ACCEPT',
        ':POSTROUTING ACCEPT',
        '[0:0] -A PREROUTING ! -s 02:42:ac:11:00:02 -i vethc1 -j DROP',
        '',
      ].join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`--packet reply` after the SYN that left through vethc1 is the container\'s SYN-ACK on vethc1, from its MAC to docker0\'s: the README\'s second packet', () => {
    const { args } = readmeExample();
    const specs = args.filter((_, i) => args[i - 1] === '--packet');
    const dir = join(REPO, 'examples/container-bridge');
    const replied = runCli(cli, ['trace', dir, '--packet', specs[0]!, '--packet', 'reply']);
    expect(replied.err).toBe('');
    expect(replied.code).toBe(0);
    const second = (out: string) => out.split('\n# packet: ')[1]!;
    const reply = second(replied.out);
    expect(reply.split('\n')[0]).toBe(`reply: ${specs[1]!.replace(/ src-mac .*/, '')} src-mac 02:42:ac:11:00:02 dst-mac 02:42:7a:1e:00:01`);
    expect(reply).toContain('# br_handle_frame: vethc1 is a port of docker0 (forwarding), 02:42:ac:11:00:02 > 02:42:7a:1e:00:01');
    // the rest is what the explicit SYN-ACK meets
    const explicit = second(runCli(cli, ['trace', dir, '--packet', specs[0]!, '--packet', specs[1]!]).out);
    expect(reply.split('\n').slice(1).join('\n')).toBe(explicit.split('\n').slice(1).join('\n'));
  });
});
