/**
 * The first hour with nfvm, as a new user meets it, through the bundled
 * command (test/helpers/cli.ts): usage and option errors, output piped
 * into `head`, --json documents, trace's rule texts and REJECT, replay's
 * summary (outgoing frames, frames for another host), progress on a
 * terminal, and the inputs that are refused (a directory that is not a
 * snapshot, a non-numeric sysctl, a snapshot target that is not empty,
 * every ruleset iptables-restore refuses, nat -j DROP among them).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/corpus.js';
import { buildCli, cliCommand, NO_PTY, onPty, runCli, sh } from '../helpers/cli.js';
import { skipBecause } from '../helpers/kernel.js';
import { REFUSALS, refusalInput, refusalReason } from '../helpers/refusals.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, sllFrame, writePcap, writePcapng } from '../../hooks/input/capture.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-first-hour-'));
const NODE = join(REPO, 'test/path/fixtures/node');
const COMMANDS = ['save', 'disasm', 'snapshot', 'trace', 'replay'];
const MACS = 'src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:02';
const nfvm = (args: string[], input?: string) => runCli(cli, args, input);
const frame = (spec: string) => encodeSpec(parseSpec(spec)).data;

/** A snapshot like NODE whose filter INPUT has `n` rules that match every TCP packet and decide nothing. */
function bigNode(n: number): string {
  const d = join(dir, `big-node-${n}`);
  cpSync(NODE, d, { recursive: true });
  const rules = Array.from({ length: n }, (_, i) => `-A INPUT -p tcp -m comment --comment "rule ${i}"`).join('\n');
  writeFileSync(join(d, 'iptables-save.txt'), `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules}\nCOMMIT\n`);
  return d;
}

beforeAll(async () => {
  cli = await buildCli();
});

describe('usage', () => {
  it.each(COMMANDS)('nfvm %s --help (and -h, and nfvm help CMD) prints that command\'s usage, exit 0', (cmd) => {
    const r = nfvm([cmd, '--help']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(new RegExp(`^  nfvm ${cmd} `));
    for (const other of COMMANDS) if (other !== cmd) expect(r.out).not.toContain(`nfvm ${other} `);
    expect(nfvm([cmd, '-h']).out).toBe(r.out);
    expect(nfvm(['help', cmd]).out).toBe(r.out);
    expect(nfvm([cmd, 'x', '--help']).out).toBe(r.out);
  });

  it('nfvm alone prints the usage on stderr and exits 2; --help on stdout, exit 0', () => {
    const r = nfvm([]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    for (const c of COMMANDS) expect(r.err).toContain(`  nfvm ${c} `);
    expect(nfvm(['--help'])).toMatchObject({ code: 0, out: r.err, err: '' });
  });

  it('an unknown option is one line naming it and pointing at --help, exit 2', () => {
    for (const c of COMMANDS) {
      expect(nfvm([c, '--bogus', 'x'])).toEqual({ code: 2, out: '', err: `nfvm: ${c}: unknown option --bogus (see nfvm ${c} --help)\n` });
    }
    expect(nfvm(['save', '-x', 'f']).err).toBe('nfvm: save: unknown option -x (see nfvm save --help)\n');
    expect(nfvm(['trace', NODE, '--packet'])).toEqual({ code: 2, out: '', err: 'nfvm: trace: option --packet needs a value (see nfvm trace --help)\n' });
    expect(nfvm(['save', '--json=yes', '-'], '')).toEqual({ code: 2, out: '', err: 'nfvm: save: option --json takes no value (see nfvm save --help)\n' });
    expect(nfvm(['frobnicate'])).toEqual({ code: 2, out: '', err: 'nfvm: unknown command "frobnicate" (try nfvm --help)\n' });
  });
});

describe('output piped into head ends quietly', () => {
  const big = () => {
    const f = join(dir, 'big.rules');
    const rules = Array.from({ length: 5000 }, (_, i) => `-A INPUT -s 10.${(i >> 8) & 255}.${i & 255}.0/24 -p tcp -m tcp --dport ${i + 1} -j ACCEPT`);
    writeFileSync(f, `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules.join('\n')}\nCOMMIT\n`);
    return f;
  };
  const cases: [string, () => string[]][] = [
    ['save', () => ['save', big()]],
    ['save --json', () => ['save', '--json', big()]],
    ['disasm', () => ['disasm', big()]],
    ['trace', () => ['trace', bigNode(4000), '--packet', 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0']],
    ['trace --json', () => ['trace', bigNode(4000), '--packet', 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0', '--json']],
    ['replay', () => {
      const pcap = join(dir, 'head.pcap');
      writeFileSync(pcap, writePcap([{ data: frame(`tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ${MACS}`) }], { linktype: LINKTYPE_ETHERNET }));
      return ['replay', bigNode(8000), '--pcap', pcap, '--iface', 'eth0'];
    }],
  ];
  it.each(cases)('%s | head -1', (_name, args) => {
    const a = args();
    // the whole output is far larger than a pipe's buffer, so the writer meets EPIPE
    expect(nfvm(a).out.length).toBeGreaterThan(256 * 1024);
    const r = sh(`${cliCommand(cli, a)} | head -1`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toHaveLength(2);
    const status = sh(`${cliCommand(cli, a)} | head -1 >/dev/null; exit 0`);
    expect(status.err).toBe('');
  });
});

describe('--json', () => {
  it('save: the ruleset as a document, with the text', () => {
    const text = readFileSync(join(NODE, 'iptables-save.txt'), 'utf8');
    const r = nfvm(['save', '--json', '-c', '-'], text.replace(':FORWARD DROP [0:0]', ':FORWARD DROP [3:120]'));
    expect(r).toMatchObject({ code: 0, err: '' });
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc)).toEqual(['schema', 'file', 'family', 'tables', 'warnings', 'unknownExtensions', 'text']);
    expect(doc).toMatchObject({ schema: 1, file: '<stdin>', family: 'ip', warnings: [], unknownExtensions: [] });
    expect(doc.text).toBe(nfvm(['save', '-c', '-'], text.replace(':FORWARD DROP [0:0]', ':FORWARD DROP [3:120]')).out);
    expect(doc.tables.map((t: { name: string }) => t.name)).toEqual(['raw', 'mangle', 'filter']);
    const filter = doc.tables[2];
    expect(filter.chains.map((c: { name: string }) => c.name)).toEqual(['INPUT', 'FORWARD', 'OUTPUT', 'SSH']);
    expect(filter.chains[1]).toEqual({
      name: 'FORWARD', builtin: true, policy: 'DROP', packets: 3, bytes: 120, rules: [
        { rule: '-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT', line: 24, packets: 0, bytes: 0 },
        { rule: '-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 81 -j DROP', line: 25, packets: 0, bytes: 0 },
      ],
    });
    expect(filter.chains[3]).toMatchObject({ name: 'SSH', builtin: false, policy: null });
    const bad = nfvm(['save', '--json', '-'], '*filter\n-A INPUT --dprot 1\nCOMMIT\n');
    expect(bad).toMatchObject({ code: 2, out: '' });
  });

  it('disasm: per rule its text and the expression lines the listing prints', () => {
    const f = join(NODE, 'iptables-save.txt');
    const doc = JSON.parse(nfvm(['disasm', '--json', '--table', 'filter', '--backend', 'nft', f]).out);
    expect(doc).toMatchObject({ schema: 1, file: f, family: 'ip', backend: 'nft', optimize: 0 });
    const input = doc.tables[0].chains[0];
    expect(input.name).toBe('INPUT');
    expect(input.rules[1]).toMatchObject({ num: 2, rule: '-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable' });
    const listing = nfvm(['disasm', '--table', 'filter', '--backend', 'nft', f]).out;
    const exprs = doc.tables[0].chains.flatMap((c: { rules: { expr: string[] }[] }) => c.rules.flatMap((r) => r.expr));
    expect(listing.split('\n').filter((l) => l.startsWith('  [')).map((l) => l.trim())).toEqual(exprs);
  });

  it('trace: the steps with each rule\'s text, the fate, its words', () => {
    const doc = JSON.parse(nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2 > 10.0.0.1:23 iif eth0', '--json']).out);
    expect(Object.keys(doc)).toEqual(['schema', 'packet', 'backend', 'engine', 'steps', 'fate', 'text', 'answers', 'packets']);
    expect(doc).toMatchObject({ schema: 1, backend: 'legacy', engine: 'vm', text: 'rejected by filter:INPUT rule 2 with icmp-port-unreachable' });
    expect(doc.fate).toEqual({
      kind: 'rejected', with: 'icmp-port-unreachable', tcpReset: false, code: 3,
      by: { table: 'filter', hook: 'INPUT', chain: 'INPUT', rule: 2, policy: '', entry: 'iptable_filter' },
    });
    expect(doc.steps.at(-1)).toMatchObject({
      kind: 'trace', table: 'filter', chain: 'INPUT', type: 'rule', num: 2,
      rule: '-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable',
    });
    expect(doc.steps[0]).toEqual({ kind: 'check', text: 'ip_rcv: eth0 accepts the packet (pkt_type host)' });
  });

  it('replay: the summary of the frames\' fates, the ruleset with its counters', () => {
    const pcap = join(dir, 'json.pcap');
    writeFileSync(pcap, writePcap([
      `tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ${MACS}`, `tcp 10.0.0.2 > 10.0.0.1:23 iif eth0 ${MACS}`, `tcp 10.0.0.2 > 8.8.8.8:80 iif eth0 ${MACS}`,
      `tcp 10.0.0.2 > 8.8.8.8:81 iif eth0 ${MACS}`, `tcp 10.0.0.2 > 8.8.8.8:80 ttl 1 iif eth0 ${MACS}`,
      'udp 10.0.0.2 > 10.0.0.1:53 iif eth0 src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:99',
    ].map((s) => ({ data: frame(s) })), { linktype: LINKTYPE_ETHERNET }));
    const r = nfvm(['replay', NODE, '--pcap', pcap, '--iface', 'eth0', '--json']);
    expect(r).toMatchObject({ code: 0, err: '' });
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc)).toEqual(['schema', 'snapshot', 'pcap', 'family', 'backend', 'engine', 'summary', 'tables', 'text']);
    expect(doc).toMatchObject({ schema: 1, snapshot: NODE, pcap, family: 'ip', backend: 'legacy', engine: 'vm' });
    const { seconds, ...s } = doc.summary;
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(s).toEqual({
      frames: 6, delivered: 1, forwarded: 1, sent: 0, dropped: 1, rejected: 1, queued: 0, stolen: 0, bridged: 0, kernelDrops: { ttl: 1 },
      notForThisHost: 1, outgoing: 0, notIp: 0, tooLarge: 0,
      // the closed port 22 answers a reset, REJECT a port unreachable, TTL 1 a time exceeded
      answers: { sent: 3, byKind: { 'icmp-port-unreachable': 1, 'icmp-time-exceeded': 1, 'tcp-reset': 1 }, notSent: 0 }, clones: { sent: 0, notSent: 0 }, notes: [],
    });
    expect(doc.text).toBe(nfvm(['replay', NODE, '--pcap', pcap, '--iface', 'eth0']).out);
    const input = doc.tables.find((t: { name: string }) => t.name === 'filter').chains[0];
    expect(input).toMatchObject({ name: 'INPUT', packets: 0, bytes: 0 });
    expect(input.rules.map((x: { packets: number }) => x.packets)).toEqual([1, 1]);
  });
});

describe('trace', () => {
  it('prints each rule under its TRACE line, and REJECT as REJECT with its reply', () => {
    const r = nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2 > 10.0.0.1:23 iif eth0']);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith('TRACE: filter:INPUT:rule:2 '));
    expect(lines[at + 1]).toBe('    -A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable');
    expect(lines[lines.findIndex((l) => l.startsWith('TRACE: raw:PREROUTING:policy:2 ')) + 1]).toBe('    -P PREROUTING ACCEPT');
    expect(lines.at(-1)).toBe('rejected by filter:INPUT rule 2 with icmp-port-unreachable');
  });

  it('REJECT --reject-with tcp-reset, and IPv6 with its own default', () => {
    const d = join(dir, 'reject-node');
    cpSync(join(REPO, 'test/path/fixtures/node6'), d, { recursive: true });
    writeFileSync(join(d, 'iptables-save.txt'), '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n');
    writeFileSync(join(d, 'ip6tables-save.txt'), '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -j REJECT\nCOMMIT\n');
    const v6 = nfvm(['trace', d, '--packet', 'udp [2001:db8::2]:40000 > [2001:db8::1]:53 iif eth0']);
    expect(v6.out.trimEnd().split('\n').at(-1)).toBe('rejected by filter:INPUT rule 1 with icmp6-port-unreachable');
    const lo = nfvm(['trace', d, '--packet', 'tcp 127.0.0.1 > 127.0.0.1:80 from local']);
    expect(lo.out.trimEnd().split('\n').at(-1)).toBe('rejected by filter:INPUT rule 1 with tcp-reset');
  });

  it('a frame the capture saw leave the node is not traced', () => {
    const f = join(dir, 'out.pcapng');
    writeFileSync(f, writePcapng([{ data: frame(`tcp 10.0.0.1 > 10.0.0.2:22 iif eth0 ${MACS}`), flags: 2 }], { interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0' }] }));
    const r = nfvm(['trace', NODE, '--pcap', f]);
    expect(r).toEqual({
      code: 0, err: '',
      out: `# packet: ${f} frame 1 out on eth0\nnot traced: the capture saw this frame leave eth0 (sent by the node), it is not input to the receive path\n`,
    });
    expect(JSON.parse(nfvm(['trace', NODE, '--pcap', f, '--json']).out)).toMatchObject({ schema: 1, steps: [], fate: null });
  });
});

describe('replay on a capture with frames the node did not receive', () => {
  const inbound = `tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ${MACS}`;
  const otherHost = 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:77';
  const sent = `tcp 10.0.0.1 > 10.0.0.2:22 iif eth0 src-mac 02:00:00:00:00:02 dst-mac 02:00:00:00:00:01`;

  it('outgoing pcapng frames (epb_flags outbound) are counted, not received; another host\'s frames are "not for this host"', () => {
    const f = join(dir, 'mixed.pcapng');
    writeFileSync(f, writePcapng([
      { data: frame(inbound), flags: 1 }, { data: frame(sent), flags: 2 }, { data: frame(otherHost) }, { data: frame(sent), flags: 2 },
    ], { interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0' }] }));
    const doc = JSON.parse(nfvm(['replay', NODE, '--pcap', f, '--json']).out);
    expect(doc.summary).toMatchObject({ frames: 4, delivered: 1, dropped: 0, kernelDrops: {}, notForThisHost: 1, outgoing: 2 });
    // PREROUTING saw the one frame for this host only
    expect(doc.text).toContain(':PREROUTING ACCEPT [1:40]');
  });

  it('SLL frames of packet type 4 (PACKET_OUTGOING) likewise', () => {
    const ip = (s: string) => encodeSpec(parseSpec(s.replace(/ iif eth0.*/, ''))).data;
    const f = join(dir, 'sll.pcap');
    writeFileSync(f, writePcap([{ data: sllFrame(ip(inbound)) }, { data: sllFrame(ip(sent), { pkttype: 4 }) }], { linktype: LINKTYPE_LINUX_SLL }));
    const doc = JSON.parse(nfvm(['replay', NODE, '--pcap', f, '--iface', 'eth0', '--json']).out);
    expect(doc.summary).toMatchObject({ frames: 2, delivered: 1, outgoing: 1 });
  });

  it('on a terminal: progress on stderr (share of the file, frames/s, ETA), then the summary line', (ctx) => {
    if (skipBecause('replay progress on a pseudo-terminal', NO_PTY)) return ctx.skip();
    const f = join(dir, 'long.pcap');
    const frames = [frame(inbound), frame(otherHost), frame(`tcp 10.0.0.2 > 10.0.0.1:23 iif eth0 ${MACS}`)];
    writeFileSync(f, writePcap(Array.from({ length: 150_000 }, (_, i) => ({ data: frames[i % 3]! })), { linktype: LINKTYPE_ETHERNET }));
    const r = onPty(`${cliCommand(cli, ['replay', NODE, '--pcap', f, '--iface', 'eth0'])} >/dev/null`);
    expect(r.code).toBe(0);
    const shown = r.out.split(/\r\n|\r|\n/).map((l) => l.replace(/^\x1b\[K/, ''));
    const mb = (statSync(f).size / 1e6).toFixed(1).replace('.', '\\.');
    expect(shown.some((l) => new RegExp(`^nfvm replay: [1-9]?\\d% \\(\\d+\\.\\d of ${mb} MB\\), \\d+ frames/s, ETA \\d+ s$`).test(l))).toBe(true);
    expect(shown).toContainEqual(expect.stringMatching(new RegExp(`^nfvm replay: 100% \\(${mb} of ${mb} MB\\), \\d+ frames/s, ETA 0 s$`)));
    expect(shown).toContainEqual(expect.stringMatching(new RegExp(
      '^nfvm replay: 150000 frames in \\d+\\.\\d\\d s \\(\\d+ frames/s\\): 50000 delivered, 0 forwarded, 0 sent, 0 dropped by rules, ' +
      '50000 rejected, 0 kernel drops, 50000 not for this host, 0 outgoing skipped$')));
    // not on a terminal: nothing on stderr
    expect(nfvm(['replay', NODE, '--pcap', f, '--iface', 'eth0']).err).toBe('');
  });
});

describe('inputs that are refused', () => {
  it('trace and replay on a directory that is not a snapshot', () => {
    const empty = join(dir, 'not-a-snapshot');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'hello\n');
    const msg = `${empty}: not a node snapshot (no iptables-save.txt, ip6tables-save.txt or ip-*.json in it; \`nfvm snapshot DIR\` takes one)\n`;
    expect(nfvm(['trace', empty, '--packet', 'tcp 10.0.0.2 > 10.0.0.1 iif lo'])).toEqual({ code: 2, out: '', err: msg });
    expect(nfvm(['replay', empty, '--pcap', join(dir, 'x.pcap')])).toEqual({ code: 2, out: '', err: msg });
  });

  it('a sysctl that is not a number where one is read: its file and line, exit 2', () => {
    const d = join(dir, 'bad-sysctl');
    cpSync(NODE, d, { recursive: true });
    const text = readFileSync(join(d, 'sysctl.txt'), 'utf8');
    const line = text.split('\n').length;
    writeFileSync(join(d, 'sysctl.txt'), `${text}net.ipv4.conf.eth0.rp_filter = loose\n`);
    expect(nfvm(['trace', d, '--packet', 'tcp 10.0.0.2 > 10.0.0.1 iif eth0'])).toEqual({
      code: 2, out: '', err: `${join(d, 'sysctl.txt')}:${line}:1: net.ipv4.conf.eth0.rp_filter: expected a number, not "loose"\n`,
    });
    // values nfvm does not read as numbers stay free text
    writeFileSync(join(d, 'sysctl.txt'), `${text}net.ipv4.tcp_congestion_control = cubic\n`);
    expect(nfvm(['trace', d, '--packet', 'tcp 10.0.0.2 > 10.0.0.1 iif eth0']).code).toBe(0);
  });

  it('rulesets iptables-restore refuses (nat -j DROP and others of test/helpers/refusals.ts): exit 2, iptables\' reason at file:line:col', () => {
    // one of each kind through the bundled command (test/compile/refusals.test.ts checks them all in process)
    const picked = ['-A PREROUTING -j DROP', '-P PREROUTING DROP', '-A INPUT --bogus', '-D INPUT 1 -p tcp', '-N ACCEPT', '-A INPUT -t filter', '-A INPUT -f', '[1:2 -A INPUT -j ACCEPT', '-A INPUT -p tcp -6 -j ACCEPT'];
    const cases = REFUSALS.filter((r) => picked.includes(r.rule));
    expect(cases).toHaveLength(picked.length);
    for (const r of cases) {
      const res = nfvm(['save', '--family', r.family, '-'], refusalInput(r));
      if (r.legacy === 0) {
        expect(res.code, r.rule).toBe(0);
        continue;
      }
      expect(res.code, r.rule).toBe(2);
      expect(res.out).toBe('');
      expect(res.err.startsWith(`<stdin>:${r.at}: ${refusalReason(r.stderr)}`), `${r.rule.slice(0, 60)}: ${res.err}`).toBe(true);
      expect(res.err.split('\n')).toHaveLength(2);
    }
    // in a snapshot: trace and replay refuse it with the dump's file and position
    const d = join(dir, 'nat-drop');
    cpSync(NODE, d, { recursive: true });
    writeFileSync(join(d, 'iptables-save.txt'), '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DROP\nCOMMIT\n');
    const msg = `${join(d, 'iptables-save.txt')}:6:25: The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.\n`;
    expect(nfvm(['trace', d, '--packet', 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0'])).toEqual({ code: 2, out: '', err: msg });
    const pcap = join(dir, 'one.pcap');
    writeFileSync(pcap, writePcap([{ data: frame(`tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ${MACS}`) }], { linktype: LINKTYPE_ETHERNET }));
    expect(nfvm(['replay', d, '--pcap', pcap, '--iface', 'eth0'])).toEqual({ code: 2, out: '', err: msg });
  });

  it('snapshot into a directory that is not empty, or a file: exit 2 before anything runs', () => {
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine\n');
    expect(nfvm(['snapshot', full])).toEqual({
      code: 2, out: '', err: `${full}: already exists and is not empty (a snapshot is written to a new or empty directory)\n`,
    });
    expect(readFileSync(join(full, 'keep.txt'), 'utf8')).toBe('mine\n');
    expect(nfvm(['snapshot', join(full, 'keep.txt')])).toMatchObject({ code: 2, out: '', err: `${join(full, 'keep.txt')}: already exists and is not a directory\n` });
    // gen and snapshot into a directory whose parent is missing
    const orphan = join(dir, 'no-such-parent', 'snap');
    for (const argv of [['gen', 'kube-proxy', '--services', '2', '--endpoints', '1', '--mode', 'iptables', orphan], ['snapshot', orphan]]) {
      expect(nfvm(argv)).toEqual({ code: 2, out: '', err: `${orphan}: its parent directory ${join(dir, 'no-such-parent')} does not exist\n` });
    }
  });
});
