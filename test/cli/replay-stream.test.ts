/**
 * `nfvm replay` reading its capture as a stream and spreading it over
 * workers, through the bundled command: a capture piped into `--pcap -`
 * gives what the file gives (and a cut pipe a located error); `--workers N`
 * gives, byte for byte, the counters, conntrack listing and summary of one
 * thread on a stateful firewall with thousands of two-sided TCP
 * connections (bench/stateful.ts); a ruleset or capture with state shared
 * across connections (NAT, the node's answers) is replayed on one thread,
 * said in one stderr line, with the same output; from stdin, where no
 * second reading is possible, that is an error.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/corpus.js';
import { buildCli, cliCommand, runCli, sh } from '../helpers/cli.js';
import { statefulIpsets, statefulRuleset, writeStatefulCapture } from '../../bench/stateful.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { LINKTYPE_ETHERNET, readCaptureFile, writePcap, writePcapng, type OutFrame } from '../../hooks/input/capture.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-replay-stream-'));
const NODE = join(REPO, 'test/path/fixtures/node');
const nfvm = (args: string[]) => runCli(cli, args);
/** A --json document without its wall-clock time. */
const noTime = (json: string) => json.replace(/"seconds": [0-9.e-]+/, '"seconds": 0');

function snapshot(name: string, nat: boolean, sets = false): string {
  const d = join(dir, name);
  cpSync(NODE, d, { recursive: true });
  writeFileSync(join(d, 'iptables-save.txt'), statefulRuleset({ nat, sets }));
  if (sets) writeFileSync(join(d, 'ipset-save.txt'), statefulIpsets());
  return d;
}

let fw = '';
let fwNat = '';
let fwSets = '';
let flows = '';
let flowsNat = '';
let flowsOut = '';

beforeAll(async () => {
  cli = await buildCli();
  fw = snapshot('fw', false);
  fwNat = snapshot('fw-nat', true);
  fwSets = snapshot('fw-sets', false, true);
  flows = join(dir, 'flows.pcapng');
  flowsNat = join(dir, 'flows-nat.pcapng');
  // 5 frames per connection and more: the handshake, then data both ways; more than one chunk of the reader
  writeStatefulCapture(flows, { frames: 10_000, flows: 1024 });
  writeStatefulCapture(flowsNat, { frames: 8_000, flows: 1024, nat: true });
  flowsOut = join(dir, 'flows-out.pcapng');
  writeStatefulCapture(flowsOut, { frames: 5_000, flows: 1024, outgoing: true });
});

describe('--pcap - reads the capture from stdin', () => {
  it('a capture piped in gives what the file gives', () => {
    const file = nfvm(['replay', fw, '--pcap', flows, '--workers', '1']);
    expect(file).toMatchObject({ code: 0, err: '' });
    expect(file.out).toMatch(/^\[\d+:\d+\] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$/m);
    const piped = sh(`cat '${flows}' | ${cliCommand(cli, ['replay', fw, '--pcap', '-', '--workers', '1'])}`);
    expect(piped).toEqual(file);
    const ct = sh(`cat '${flows}' | ${cliCommand(cli, ['replay', fw, '--pcap', '-', '--conntrack'])}`);
    expect(ct).toEqual(nfvm(['replay', fw, '--pcap', flows, '--conntrack', '--workers', '1']));
    expect(ct.out.split('\n').length).toBe(1024 + 1);
  }, 300_000);

  it('a pipe cut in a record is a located error, nothing on stdout', () => {
    const frames = ['tcp 10.0.0.2 > 10.0.0.1:22', 'tcp 10.0.0.9 > 10.0.0.1:22'].map((s) => ({ data: encodeSpec(parseSpec(`${s} iif eth0`)).data }));
    const bytes = writePcap(frames, { linktype: LINKTYPE_ETHERNET });
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    const r = sh(`cat '${cut}' | ${cliCommand(cli, ['replay', NODE, '--pcap', '-', '--iface', 'eth0'])}`);
    expect(r).toEqual({ code: 2, out: '', err: '<stdin>:@94: truncated packet record (captured length 54, 44 bytes left)\n' });
    expect(sh(`printf 'nope' | ${cliCommand(cli, ['replay', NODE, '--pcap', '-', '--iface', 'eth0'])}`)).toEqual({
      code: 2, out: '', err: '<stdin>:@0: not a pcap or pcapng file (magic 0x6e6f7065)\n',
    });
  });
});

describe('--workers N gives one node\'s output', () => {
  it('counters, conntrack listing and --json summary identical to one thread on 1,024 two-sided connections', () => {
    const one = nfvm(['replay', fw, '--pcap', flows, '--workers', '1']);
    const ct1 = nfvm(['replay', fw, '--pcap', flows, '--workers', '1', '--conntrack']);
    const json1 = nfvm(['replay', fw, '--pcap', flows, '--workers', '1', '--json']);
    expect(nfvm(['replay', fw, '--pcap', flows, '--workers', '3'])).toEqual(one);
    expect(nfvm(['replay', fw, '--pcap', flows, '--workers', '2', '--conntrack'])).toEqual(ct1);
    const j = nfvm(['replay', fw, '--pcap', flows, '--workers', '2', '--json']);
    expect(j).toMatchObject({ code: 0, err: '' });
    expect(noTime(j.out)).toBe(noTime(json1.out));
    const doc = JSON.parse(json1.out) as { summary: { frames: number; forwarded: number; dropped: number } };
    expect(doc.summary).toMatchObject({ frames: 10_000, forwarded: 10_000, dropped: 0 });
    // piped in, as tcpdump -w - would
    expect(sh(`cat '${flows}' | ${cliCommand(cli, ['replay', fw, '--pcap', '-', '--workers', '2'])}`)).toEqual(one);
  }, 300_000);

  it('a capture of both interfaces, the forwarded frames seen leaving: paired with what each worker sent, one summary', () => {
    const one = nfvm(['replay', fw, '--pcap', flowsOut, '--workers', '1', '--json']);
    expect(one).toMatchObject({ code: 0, err: '' });
    const doc = JSON.parse(one.out) as { summary: { frames: number; outgoing: number; outgoingMatch: { identical: number; notCaptured: number } } };
    expect(doc.summary).toMatchObject({ frames: 10_000, outgoing: 5_000, outgoingMatch: { identical: 5_000, notCaptured: 0 } });
    const two = nfvm(['replay', fw, '--pcap', flowsOut, '--workers', '2', '--json']);
    expect(two).toMatchObject({ code: 0, err: '' });
    expect(noTime(two.out)).toBe(noTime(one.out));
  }, 300_000);

  it('outgoing frames first seen late in a file: the same pairs and counts as stdin, which keeps what the node sent from the start', () => {
    // The outgoing copies of the first 3,000 received frames left out: the first outgoing frame is far in.
    // (A file is replayed without keeping what the node sent until then, and again from the start with it.)
    const frames: OutFrame[] = [];
    let received = 0;
    for (const f of readCaptureFile(flowsOut)) {
      const out = (f.flags & 3) === 2;
      if (!out) received++;
      if (out && received <= 3000) continue;
      frames.push({ data: f.data, tsSec: f.tsSec, tsNsec: f.tsNsec, ifId: f.ifId, flags: f.flags });
    }
    const late = join(dir, 'flows-late-out.pcapng');
    writeFileSync(late, writePcapng(frames, { interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0' }, { linktype: LINKTYPE_ETHERNET, name: 'eth1' }] }));
    const piped = sh(`cat '${late}' | ${cliCommand(cli, ['replay', fw, '--pcap', '-', '--workers', '1', '--json'])}`);
    expect(piped).toMatchObject({ code: 0, err: '' });
    const doc = JSON.parse(piped.out) as { summary: { frames: number } };
    // Each outgoing frame pairs with the oldest packet of its flow the node sent: the 3,000 it sent before the first are kept and counted.
    expect(doc.summary).toMatchObject({ frames: 7_000, outgoing: 2_000, outgoingMatch: { notEmitted: 0, notCaptured: 3_000 } });
    for (const w of ['1', '2']) {
      const file = nfvm(['replay', fw, '--pcap', late, '--workers', w, '--json']);
      expect(file).toMatchObject({ code: 0, err: '' });
      expect(noTime(file.out).replace(late, '-')).toBe(noTime(piped.out));
    }
    expect(nfvm(['replay', fw, '--pcap', late, '--workers', '2', '--conntrack'])).toEqual(nfvm(['replay', fw, '--pcap', late, '--workers', '1', '--conntrack']));
  }, 300_000);

  it('sets only matched against: still split, the same counters, conntrack listing and sets; a set with counters: one thread', () => {
    const one = nfvm(['replay', fwSets, '--pcap', flows, '--workers', '1', '--json']);
    const two = nfvm(['replay', fwSets, '--pcap', flows, '--workers', '2', '--json']);
    expect(two.err).toBe('');
    expect(noTime(two.out)).toEqual(noTime(one.out));
    expect(JSON.parse(one.out).summary.forwarded).toBe(10_000);
    expect(nfvm(['replay', fwSets, '--pcap', flows, '--workers', '2', '--save', 'ipset'])).toEqual(nfvm(['replay', fwSets, '--pcap', flows, '--workers', '1', '--save', 'ipset']));
    const counted = snapshot('fw-sets-counters', false, true);
    writeFileSync(join(counted, 'ipset-save.txt'), statefulIpsets().replace('create blocklist hash:net family inet hashsize 1024 maxelem 65536', 'create blocklist hash:net family inet hashsize 1024 maxelem 65536 counters'));
    const c1 = nfvm(['replay', counted, '--pcap', flows, '--workers', '1', '--save', 'ipset']);
    const c2 = nfvm(['replay', counted, '--pcap', flows, '--workers', '2', '--save', 'ipset']);
    expect(c2.err).toBe('nfvm replay: ipset blocklist (its counters are shared by every connection): state shared across connections, replaying on one thread\n');
    expect(c2.out).toEqual(c1.out);
  }, 300_000);

  it('CT --notrack and --zone: still split, the same output; CT --helper: one thread', () => {
    const raw = (rule: string) => `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rule}\nCOMMIT\n`;
    const ct = snapshot('fw-ct', false);
    // connections to the first 50 services untracked, those to the next 50 in zone 7
    const rules = ['-A PREROUTING -p tcp -m tcp --dport 1000:1049 -j CT --notrack', '-A PREROUTING -p tcp -m tcp --dport 1050:1099 -j CT --zone 7'];
    writeFileSync(join(ct, 'iptables-save.txt'), raw(rules.join('\n')) + statefulRuleset({}));
    const one = nfvm(['replay', ct, '--pcap', flows, '--workers', '1', '--json']);
    const two = nfvm(['replay', ct, '--pcap', flows, '--workers', '2', '--json']);
    expect(two).toMatchObject({ code: 0, err: '' });
    expect(noTime(two.out)).toBe(noTime(one.out));
    const counters = (json: string) => (JSON.parse(json) as { text: string }).text;
    // the untracked connections' packets are not ESTABLISHED: the counters differ from the plain firewall's
    expect(counters(one.out)).toMatch(/^\[[1-9]\d*:\d+\] -A PREROUTING -p tcp -m tcp --dport 1000:1049 -j CT --notrack$/m);
    expect(counters(one.out)).toMatch(/^\[[1-9]\d*:\d+\] -A PREROUTING -p tcp -m tcp --dport 1050:1099 -j CT --zone 7$/m);
    writeFileSync(join(ct, 'iptables-save.txt'), raw('-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp') + statefulRuleset({}));
    const helper = nfvm(['replay', ct, '--pcap', flows, '--workers', '2']);
    expect(helper.code).toBe(0);
    expect(helper.err).toBe('nfvm replay: raw:PREROUTING: -j CT --helper (helpers set up expectations relating connections): state shared across connections, replaying on one thread\n');
    expect(helper.out).toBe(nfvm(['replay', ct, '--pcap', flows, '--workers', '1']).out);
  }, 300_000);

  it('a nat table: one line on stderr, replayed on one thread, the same output', () => {
    const one = nfvm(['replay', fwNat, '--pcap', flowsNat, '--workers', '1', '--conntrack']);
    expect(one).toMatchObject({ code: 0, err: '' });
    expect(one.out).toContain('src=10.1.0.200 dst=10.1.0.1 sport=8080');
    const two = nfvm(['replay', fwNat, '--pcap', flowsNat, '--workers', '2', '--conntrack']);
    expect(two.out).toBe(one.out);
    expect(two.err).toMatch(/^nfvm replay: the nat table \(NAT [^\n]*\): state shared across connections, replaying on one thread\n$/);
  });

  it('frames the node answers: found while replaying, said in one line, replayed again on one thread', () => {
    const MACS = 'src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:02';
    const f = join(dir, 'answers.pcap');
    // a SYN to the node's closed port 22 (a reset), a forwarded SYN whose TTL runs out (ICMP time exceeded)
    const specs = [`tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0 ${MACS}`, `tcp 10.0.0.2:40001 > 10.1.0.2:1000 syn ttl 1 iif eth0 ${MACS}`, `tcp 10.0.0.3:40002 > 10.1.0.2:1000 syn iif eth0 ${MACS}`];
    writeFileSync(f, writePcap(specs.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
    const one = nfvm(['replay', fw, '--pcap', f, '--iface', 'eth0', '--workers', '1', '--json']);
    expect(one).toMatchObject({ code: 0, err: '' });
    expect((JSON.parse(one.out) as { summary: { answers: { sent: number } } }).summary.answers.sent).toBeGreaterThan(0);
    const two = nfvm(['replay', fw, '--pcap', f, '--iface', 'eth0', '--workers', '2', '--json']);
    expect(two.code).toBe(0);
    expect(noTime(two.out)).toBe(noTime(one.out));
    expect(two.err).toBe('nfvm replay: the node\'s stack answered frames (its rate limits and IP IDs are shared by all connections): state shared across connections, replaying on one thread\n');
    const piped = sh(`cat '${f}' | ${cliCommand(cli, ['replay', fw, '--pcap', '-', '--iface', 'eth0', '--workers', '2'])}`);
    expect(piped.code).toBe(2);
    expect(piped.out).toBe('');
    expect(piped.err).toMatch(/^<stdin>: .*stdin cannot be read again: replay with --workers 1\n$/);
    // a ruleset that says so before the start needs no second reading
    const reject = sh(`cat '${f}' | ${cliCommand(cli, ['replay', NODE, '--pcap', '-', '--iface', 'eth0', '--workers', '2'])}`);
    expect(reject.code).toBe(0);
    expect(reject.err).toMatch(/^nfvm replay: filter:INPUT: -j REJECT [^\n]*replaying on one thread\n$/);
  });

  it('a file cut in a record, or a frame on an interface the snapshot lacks: the error one thread gives, nothing on stdout', () => {
    const cut = join(dir, 'flows-cut.pcapng');
    const whole = readFileSync(flows);
    writeFileSync(cut, whole.subarray(0, whole.length - 30));
    const one = nfvm(['replay', fw, '--pcap', cut, '--workers', '1']);
    expect(one.code).toBe(2);
    expect(one.err).toMatch(/flows-cut\.pcapng:@\d+: /);
    expect(nfvm(['replay', fw, '--pcap', cut, '--workers', '2'])).toEqual(one);
    const frames = ['tcp 10.0.0.2:1000 > 10.1.0.2:1000 syn'].map((s) => ({ data: encodeSpec(parseSpec(`${s} iif eth0`)).data }));
    const lone = join(dir, 'lone.pcap');
    writeFileSync(lone, writePcap(frames, { linktype: LINKTYPE_ETHERNET }));
    const noIf = nfvm(['replay', fw, '--pcap', lone, '--workers', '1', '--iface', 'eth9']);
    expect(noIf.code).toBe(2);
    expect(nfvm(['replay', fw, '--pcap', lone, '--workers', '2', '--iface', 'eth9'])).toEqual(noIf);
  });

  it('--workers takes a count from 1', () => {
    for (const bad of ['0', 'two', '-1']) expect(nfvm(['replay', fw, '--pcap', flows, `--workers=${bad}`])).toMatchObject({ code: 2, out: '' });
    expect(readFileSync(flows).length).toBeGreaterThan(1 << 20);
  });
});
