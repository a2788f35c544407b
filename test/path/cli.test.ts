/**
 * `nfvm trace` and `nfvm replay` as users run them (the esbuild bundle of
 * cli/main.ts in a child process): output, exit codes, and bad input as one
 * located line on stderr with nothing on stdout.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from '../helpers/cli.js';
import { REPO } from '../helpers/corpus.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { LINKTYPE_ETHERNET, writePcap } from '../../hooks/input/capture.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-path-cli-'));
const NODE = join(REPO, 'test/path/fixtures/node');
const EXAMPLE = join(REPO, 'examples/node');

beforeAll(async () => {
  cli = await buildCli(dir);
});

function nfvm(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function pcap(name: string, specs: string[]): string {
  const f = join(dir, name);
  writeFileSync(f, writePcap(specs.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
  return f;
}

const MACS = 'src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:02';

describe('nfvm trace', () => {
  it('prints TRACE lines, the routing decisions and the fate', () => {
    const r = nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2:40000 > 8.8.8.8:81 syn iif eth0']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe('# packet: tcp 10.0.0.2:40000 > 8.8.8.8:81 syn iif eth0');
    expect(lines).toContain('# input route: 8.8.8.8 via unicast route default via 10.1.0.2 dev eth1 (table main): FORWARD out eth1');
    expect(lines.filter((l) => l.startsWith('TRACE: ')).map((l) => l.split(' ')[1])).toEqual([
      'raw:PREROUTING:policy:2', 'mangle:PREROUTING:policy:2', 'mangle:FORWARD:rule:1', 'mangle:FORWARD:policy:2', 'filter:FORWARD:rule:2',
    ]);
    expect(lines.at(-1)).toBe('dropped by filter:FORWARD rule 2');
  });

  it('--json gives the same as data; --engine reference agrees', () => {
    const a = nfvm(['trace', NODE, '--packet', 'udp 10.0.0.2 > 10.0.0.255:53 iif eth0', '--json']);
    expect(a.code).toBe(0);
    const doc = JSON.parse(a.out) as { schema: number; fate: { kind: string; cast: string }; text: string; steps: { kind: string }[] };
    expect(doc.schema).toBe(1);
    expect(doc.fate).toMatchObject({ kind: 'delivered', cast: 'broadcast' });
    expect(doc.text).toBe('delivered locally to 10.0.0.255 (broadcast) on eth0');
    const b = JSON.parse(nfvm(['trace', NODE, '--packet', 'udp 10.0.0.2 > 10.0.0.255:53 iif eth0', '--json', '--engine', 'reference']).out) as typeof doc;
    expect(b.steps).toEqual(doc.steps);
  });

  it('--pcap --index takes a frame of a capture', () => {
    const f = pcap('two.pcap', [`udp 10.0.0.2 > 10.0.0.1:53 iif eth0 ${MACS}`, `tcp 10.0.0.2 > 8.8.8.8:80 ttl 1 iif eth0 ${MACS}`]);
    const r = nfvm(['trace', NODE, '--pcap', f, '--index', '2', '--iface', 'eth0']);
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split('\n').at(-1)).toBe('dropped: TTL 1 exceeded in transit (ICMP time exceeded sent, FORWARD not reached)');
    expect(nfvm(['trace', NODE, '--pcap', f, '--index', '3', '--iface', 'eth0'])).toMatchObject({ code: 2, out: '', err: `${f}: frame 3 requested, the capture has 2\n` });
  });

  it('the example node: a NodePort packet is DNATed to an endpoint, masqueraded and forwarded', () => {
    const r = nfvm(['trace', EXAMPLE, '--packet', 'tcp 198.51.100.7:40000 > 192.168.1.10:30443 syn iif eth0']);
    expect(r.err).toBe('');
    expect(r.out).toContain('TRACE: nat:KUBE-NODEPORTS:rule:1 ');
    expect(r.out).toMatch(/# nat PREROUTING \(iptable_nat\): 198\.51\.100\.7:40000 > 192\.168\.1\.10:30443 rewritten to 198\.51\.100\.7:40000 > 10\.244\.(1\.30|2\.31):8443\n/);
    // KUBE-MARK-MASQ marked it: MASQUERADE --random-fully to the egress device's address
    expect(r.out.trimEnd().split('\n').at(-1)).toMatch(/^DNAT to 10\.244\.(1\.30|2\.31):8443, SNAT to 10\.244\.1\.1:\d+, forwarded out cni0 to 10\.244\.1\.30 \(directly connected\)$|^DNAT to 10\.244\.2\.31:8443, SNAT to \S+, forwarded out \S+ via \S+$/);
  });

  it('bad input: one located line, nothing on stdout, exit 2', () => {
    expect(nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2 > 10.0.0.1 synn iif eth0'])).toMatchObject({
      code: 2, out: '', err: 'packet spec:1:25: unknown word "synn" (did you mean syn?)\n',
    });
    expect(nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2 > 10.0.0.1 iif eth7'])).toMatchObject({ code: 2, out: '' });
    expect(nfvm(['trace', NODE, '--packet', 'tcp 10.0.0.2 > 10.0.0.1']).err).toBe('packet spec:1:1: say where the packet comes from: "iif DEV" or "from local"\n');
    expect(nfvm(['trace', NODE])).toMatchObject({ code: 2, out: '', err: 'nfvm: trace needs --packet SPEC (one or more) or --pcap FILE\n' });
    expect(nfvm(['trace', join(dir, 'nope'), '--packet', 'tcp 1.2.3.4 > 5.6.7.8 iif eth0'])).toMatchObject({ code: 2, out: '', err: `${join(dir, 'nope')}: no such directory\n` });
    expect(nfvm(['trace', NODE, '--packet', 'tcp 1.2.3.4 > 5.6.7.8 iif eth0', '--engine', 'jit']).code).toBe(2);
  });
});

describe('nfvm replay', () => {
  const frames = [
    `tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ${MACS}`,
    `tcp 10.0.0.9 > 10.0.0.1:22 iif eth0 ${MACS}`,
    `tcp 10.0.0.2 > 8.8.8.8:80 iif eth0 ${MACS}`,
    `tcp 10.0.0.2 > 8.8.8.8:80 ttl 1 iif eth0 ${MACS}`,
    `udp 10.0.0.2 > 10.0.0.1:53 iif eth0 src-mac 02:00:00:00:00:01 dst-mac 02:00:00:00:00:99`,
  ];

  it('prints the ruleset with the counters the kernel would show', () => {
    const f = pcap('replay.pcap', frames);
    const r = nfvm(['replay', NODE, '--pcap', f, '--iface', 'eth0']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    for (const line of [
      ':PREROUTING ACCEPT [4:160]', // the other-host frame never reaches PREROUTING
      ':INPUT ACCEPT [0:0]',
      '[2:80] -A INPUT -p tcp -m tcp --dport 22 -j SSH',
      '[2:80] -A SSH -s 10.0.0.0/24 -j ACCEPT',
      ':FORWARD DROP [0:0]',
      '[1:40] -A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT',
      '[1:40] -A FORWARD -m ttl --ttl-eq 63 -j MARK --set-xmark 0x2/0x2',
    ]) expect(r.out.split('\n')).toContain(line);
    const ref = nfvm(['replay', NODE, '--pcap', f, '--iface', 'eth0', '--engine', 'reference', '--optimize=1']);
    expect(ref.out).toBe(r.out);
  });

  it('bad input: truncated capture, unknown link type, unknown interface, bad snapshot file', () => {
    const good = pcap('ok.pcap', frames.slice(0, 2));
    const cut = join(dir, 'cut.pcap');
    const bytes = writePcap(frames.slice(0, 2).map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET });
    writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    expect(nfvm(['replay', NODE, '--pcap', cut, '--iface', 'eth0'])).toMatchObject({ code: 2, out: '', err: `${cut}:@94: truncated packet record (captured length 54, 44 bytes left)\n` });
    const lt = join(dir, 'lt.pcap');
    writeFileSync(lt, writePcap([{ data: new Uint8Array(20) }], { linktype: 147 }));
    const e = nfvm(['replay', NODE, '--pcap', lt, '--iface', 'eth0']);
    expect(e).toMatchObject({ code: 2, out: '' });
    expect(e.err).toMatch(new RegExp(`^${lt}:@0: unsupported link type 147`));
    expect(nfvm(['replay', NODE, '--pcap', good, '--iface', 'eth9'])).toMatchObject({ code: 2, out: '' });
    const bad = join(dir, 'badnode');
    cpSync(NODE, bad, { recursive: true });
    writeFileSync(join(bad, 'ip-addr.json'), '[{"ifindex": 1,, }]');
    const b = nfvm(['replay', bad, '--pcap', good, '--iface', 'eth0']);
    expect(b).toMatchObject({ code: 2, out: '' });
    expect(b.err).toMatch(new RegExp(`^${join(bad, 'ip-addr.json')}:1:16: expected a string key`));
    expect(b.err.split('\n').length).toBe(2);
    expect(nfvm(['replay', NODE, '--pcap', good, '--iface', 'eth0', '--optimize=2'])).toMatchObject({ code: 2, out: '' });
  });
});
