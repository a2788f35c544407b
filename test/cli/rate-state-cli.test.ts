/**
 * The bundled CLI on the rate and state matches: `replay --save recent` and
 * `--save hashlimit` print the /proc files after a capture, `trace --time`
 * sets the clock the time match reads, `--hz` the jiffies; bad values are
 * usage errors (exit 2).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { Conversation, statefulNodeFiles } from '../helpers/flows.js';
import { SYN, ipPacket } from '../helpers/ctpkt.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';

const RULES = [
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -p tcp --dport 22 -m recent --set --name SSH',
  '-A INPUT -p tcp --dport 22 -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-name ssh -j ACCEPT',
  '-A INPUT -p tcp --dport 22 -j DROP',
  '-A INPUT -p udp --dport 53 -m time --timestart 09:00 --timestop 17:00 --weekdays Mon,Tue,Wed,Thu,Fri -j ACCEPT',
  '-A INPUT -p udp --dport 53 -j DROP',
  'COMMIT', '',
].join('\n');

let cli = '';
let dir = '';
let pcap = '';

beforeAll(async () => {
  cli = await buildCli();
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-ratestate-cli-'));
  dir = join(tmp, 'node');
  const files = statefulNodeFiles(RULES);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir);
  for (const [f, text] of files) writeFileSync(join(dir, f), text);
  // the frames a capture of the node records: three SYNs from 10.0.0.2, one from 10.0.0.3
  const c = new Conversation(buildNodeModel(buildNode('', files)));
  for (const [src, port] of [['10.0.0.2', 40000], ['10.0.0.2', 40001], ['10.0.0.3', 40002], ['10.0.0.2', 40003]] as const) {
    c.send('c', ipPacket(src, '10.0.0.1', { proto: 'tcp', sport: port, dport: 22, flags: SYN }), 1);
  }
  pcap = join(tmp, 'ssh.pcapng');
  writeFileSync(pcap, c.pcapng());
}, 60_000);

describe('rate and state matches on the command line', () => {
  it('replay --save recent prints /proc/net/xt_recent/NAME after the capture, in both engines', () => {
    for (const engine of ['vm', 'reference']) {
      const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'recent', '--engine', engine]);
      expect(r.code, r.err).toBe(0);
      // the frames at 2, 3, 4 and 5 s: jiffies at HZ 250
      expect(r.out).toBe('# /proc/net/xt_recent/SSH\nsrc=10.0.0.3 ttl: 64 last_seen: 1000 oldest_pkt: 1 1000\nsrc=10.0.0.2 ttl: 64 last_seen: 1250 oldest_pkt: 3 500, 750, 1250\n');
      const hz = runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'recent', '--engine', engine, '--hz', '1000']);
      expect(hz.out).toContain('src=10.0.0.2 ttl: 64 last_seen: 5000 oldest_pkt: 3 2000, 3000, 5000');
    }
  });

  it('replay --save hashlimit prints /proc/net/ipt_hashlimit/NAME; the counters show the burst spent', () => {
    const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'hashlimit']);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('# /proc/net/ipt_hashlimit/ssh');
    expect(lines.slice(1).map((l) => l.split(' ').slice(1, 2)[0])).toEqual(['10.0.0.2:0->0.0.0.0:0', '10.0.0.3:0->0.0.0.0:0']);
    const save = runCli(cli, ['replay', dir, '--pcap', pcap]);
    expect(save.out).toContain('[3:120] -A INPUT -p tcp -m tcp --dport 22 -m hashlimit');
    expect(save.out).toContain('[1:40] -A INPUT -p tcp -m tcp --dport 22 -j DROP');
    const json = JSON.parse(runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'recent', '--json']).out) as { recent: { path: string; lines: string[] }[] };
    expect(json.recent[0]!.path).toBe('/proc/net/xt_recent/SSH');
  });

  it('trace --time sets the clock the time match reads', () => {
    const spec = 'udp 10.0.0.2:5353 > 10.0.0.1:53 iif eth0';
    // Wednesday 2026-12-02 10:30 UTC: within office hours; Saturday: not
    const wed = runCli(cli, ['trace', dir, '--packet', spec, '--time', '2026-12-02T10:30:00Z']);
    expect(wed.code, wed.err).toBe(0);
    expect(wed.out).toMatch(/TRACE: filter:INPUT:rule:4 /);
    const sat = runCli(cli, ['trace', dir, '--packet', spec, '--time', '@1796464800', '--engine', 'reference']);
    expect(sat.out).toMatch(/TRACE: filter:INPUT:rule:5 /);
    const bad = runCli(cli, ['trace', dir, '--packet', spec, '--time', '2026-13-02T10:30']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--time takes/);
    expect(runCli(cli, ['trace', dir, '--pcap', pcap, '--time', '@0']).code).toBe(2);
    expect(runCli(cli, ['replay', dir, '--pcap', pcap, '--hz', '0']).code).toBe(2);
    expect(runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'limit']).code).toBe(2);
  });
});
