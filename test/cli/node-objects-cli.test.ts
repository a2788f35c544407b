/**
 * The bundled CLI on the node's kernel objects a snapshot holds: `replay
 * --save nfacct` prints the accounting objects after a capture as `nfacct
 * list` does (a missing nfacct.txt refuses `-m nfacct`, exit 2), a
 * snapshot whose xfrm-policy.txt lists IPsec policies it does not check
 * (IPv6 ones, or any beside states) gets a note saying so, and
 * `--cpu N` sets the CPU `-m cpu` reads.
 */
import { xfrmPolicyNote } from '../../cli/model.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { Conversation, statefulNodeFiles } from '../helpers/flows.js';
import { SYN, ipPacket } from '../helpers/ctpkt.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';

const RULES = [
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -p tcp --dport 22 -m nfacct --nfacct-name ssh',
  '-A INPUT -m policy --dir in --pol none -m nfacct --nfacct-name q -j DROP',
  'COMMIT', '',
].join('\n');
const NFACCT = '{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = ssh;\n' +
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000002, mode = packet, overquota = no } = q;\n';
const POLICY = 'src 192.0.2.0/24 dst 198.51.100.0/24 \n\tdir fwd action block priority 0 ptype main \n';
const POLICY6 = 'src 2001:db8::/32 dst ::/0 \n\tdir out action block priority 0 ptype main \n';
const STATE = 'src 192.0.2.1 dst 198.51.100.1\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n';

let cli = '';
let tmp = '';
let pcap = '';

function node(name: string, extra: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const [f, text] of statefulNodeFiles(RULES)) writeFileSync(join(dir, f), text);
  for (const [f, text] of Object.entries(extra)) writeFileSync(join(dir, f), text);
  return dir;
}

beforeAll(async () => {
  cli = await buildCli();
  tmp = mkdtempSync(join(tmpdir(), 'nfvm-objects-cli-'));
  const files = statefulNodeFiles(RULES);
  const c = new Conversation(buildNodeModel(buildNode('', new Map([...files, ['nfacct.txt', NFACCT], ['xfrm-state.txt', '']]))));
  for (let i = 0; i < 4; i++) c.send('c', ipPacket('10.0.0.2', '10.0.0.1', { proto: 'tcp', sport: 40000 + i, dport: 22, flags: SYN }), 1);
  pcap = join(tmp, 'ssh.pcapng');
  writeFileSync(pcap, c.pcapng());
  return () => rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('kernel objects of the snapshot on the command line', () => {
  it('replay --save nfacct prints the objects after the capture, the quota passed at the third 40-byte SYN (both engines)', () => {
    const dir = node('acct', { 'nfacct.txt': NFACCT, 'xfrm-state.txt': '', 'xfrm-policy.txt': '' });
    for (const engine of ['vm', 'reference']) {
      const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--save', 'nfacct', '--engine', engine]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe('{ pkts = 00000000000000000004, bytes = 00000000000000000160 } = ssh;\n' +
        '{ pkts = 00000000000000000004, bytes = 00000000000000000160, quota = 00000000000000000002, mode = packet, overquota = yes } = q;\n');
      const save = runCli(cli, ['replay', dir, '--pcap', pcap, '--engine', engine]);
      expect(save.out).toContain('[2:80] -A INPUT -m policy --dir in --pol none -m nfacct --nfacct-name q -j DROP');
    }
  });

  it('refuses -m nfacct without nfacct.txt, and --save nfacct with --json', () => {
    const dir = node('noacct', { 'xfrm-state.txt': '' });
    const r = runCli(cli, ['replay', dir, '--pcap', pcap]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/iptables-save\.txt:5:\d+: match nfacct: needs the node's accounting objects .*no nfacct\.txt/);
    const j = runCli(cli, ['replay', node('acct2', { 'nfacct.txt': NFACCT, 'xfrm-state.txt': '' }), '--pcap', pcap, '--save', 'nfacct', '--json']);
    expect(j.code).toBe(2);
  });

  it('checks the IPsec policies of a node without states, IPv4 and IPv6 (no note); says what it does not model: a node with states', () => {
    const notes = (extra: Record<string, string>, name: string): string[] => {
      const r = runCli(cli, ['replay', node(name, { 'nfacct.txt': NFACCT, ...extra }), '--pcap', pcap, '--json']);
      expect(r.code, r.err).toBe(0);
      return (JSON.parse(r.out) as { summary: { notes: string[] } }).summary.notes.filter((n) => n.includes('xfrm'));
    };
    expect(notes({ 'xfrm-state.txt': '', 'xfrm-policy.txt': POLICY }, 'xfrm4')).toEqual([]);
    expect(notes({ 'xfrm-state.txt': '', 'xfrm-policy.txt': `${POLICY}${POLICY6}` }, 'xfrm6')).toEqual([]);
    // beside states (where `-m policy` is refused, so the rules are left out of this node)
    const dirS = node('xfrmS', { 'xfrm-state.txt': STATE, 'xfrm-policy.txt': POLICY, 'iptables-save.txt': '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' });
    expect(xfrmPolicyNote(dirS, readSnapshot(dirS))).toBe(
      `${dirS}: xfrm-policy.txt lists 1 IPsec policy and xfrm-state.txt lists states: the transforms and the checks the kernel makes against the policies are not modelled`);
  });
});

describe('--cpu', () => {
  it('handles the packets on the CPU given: -m cpu sees it; a CPU past NR_CPUS is a usage error', () => {
    const dir = join(tmp, 'cpu');
    mkdirSync(dir);
    const rules = ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '-A PREROUTING -m cpu --cpu 1 -j DROP', 'COMMIT', ''].join('\n');
    for (const [f, text] of statefulNodeFiles(rules)) writeFileSync(join(dir, f), text);
    const packet = ['--packet', 'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0'];
    expect(runCli(cli, ['trace', dir, ...packet]).out).not.toMatch(/^dropped/m);
    expect(runCli(cli, ['trace', dir, ...packet, '--cpu', '1']).out).toMatch(/^dropped by raw:PREROUTING/m);
    const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--cpu', '1']);
    expect(r.out).toContain('[4:160] -A PREROUTING -m cpu --cpu 1 -j DROP');
    const bad = runCli(cli, ['trace', dir, ...packet, '--cpu', '8192']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--cpu takes the number of the CPU/);
  });
});
