/**
 * The stateful node's snapshot and capture inputs through the bundled
 * command (test/helpers/cli.ts), for trace and replay: a conntrack sysctl
 * the kernel's proc handler refuses, a malformed ss.txt, a capture frame on
 * an interface the snapshot lacks (pcapng if_name, LINUX_SLL2 ifindex) are
 * each one located line on stderr, exit 2, nothing on stdout; frames of a
 * LINUX_SLL2 capture arrive on the device of their ifindex, and a LINUX_SLL
 * (v1) capture, which names no interface, needs --iface.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/corpus.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import {
  LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, sll2Frame, sllFrame, writePcap, writePcapng,
} from '../../hooks/input/capture.js';

let cli = '';
const dir = mkdtempSync(join(tmpdir(), 'nfvm-stateful-input-'));
/** The example node: stateful (nat table, conntrack matches), lo 1, eth0 2, cni0 3. */
const EXAMPLE = join(REPO, 'examples/node');
/** A node whose ruleset loads no conntrack (filter, raw and mangle only). */
const STATELESS = join(REPO, 'test/path/fixtures/node');
const nfvm = (args: string[]) => runCli(cli, args);
const bytes = (spec: string) => encodeSpec(parseSpec(spec)).data;
const SYN = 'tcp 198.51.100.7:40000 > 192.168.1.10:22 syn';

/** A copy of `from` with `file` (sysctl.txt, ss.txt) extended by `line`; returns the copy and the line's number. */
function withLine(from: string, name: string, file: string, line: string): { snap: string; path: string; line: number } {
  const snap = join(dir, name);
  cpSync(from, snap, { recursive: true });
  const path = join(snap, file);
  const text = readFileSync(path, 'utf8');
  const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  writeFileSync(path, `${body}${line}\n`);
  return { snap, path, line: body === '' ? 1 : body.split('\n').length };
}

let okPcap = '';
beforeAll(async () => {
  cli = await buildCli();
  okPcap = join(dir, 'one.pcap');
  writeFileSync(okPcap, writePcap([{ data: bytes(`${SYN} iif eth0`) }], { linktype: LINKTYPE_ETHERNET }));
});

/** trace and replay on `snap` both refuse with exactly `err`. */
function refusedByBoth(snap: string, packet: string, err: string): void {
  expect(nfvm(['trace', snap, '--packet', packet])).toEqual({ code: 2, out: '', err });
  expect(nfvm(['replay', snap, '--pcap', okPcap, '--iface', 'eth0', '--json'])).toEqual({ code: 2, out: '', err });
}

describe('a conntrack sysctl the kernel refuses', () => {
  it.each([
    ['net.netfilter.nf_conntrack_tcp_loose = 7', 'net.netfilter.nf_conntrack_tcp_loose: out of range 0..1 (EINVAL)'],
    ['net.netfilter.nf_conntrack_tcp_timeout_established = 99999999999', 'net.netfilter.nf_conntrack_tcp_timeout_established: out of range (EINVAL)'],
  ])('%s: sysctl.txt:LINE:1, exit 2', (entry, reason) => {
    const { snap, path, line } = withLine(EXAMPLE, `sysctl-${entry.split(' ')[0]}`, 'sysctl.txt', entry);
    refusedByBoth(snap, `${SYN} iif eth0`, `${path}:${line}:1: ${reason}\n`);
  });

  it('is refused on a node whose ruleset loads no conntrack too (the snapshot cannot come from a real node)', () => {
    const { snap, path, line } = withLine(STATELESS, 'sysctl-stateless', 'sysctl.txt', 'net.netfilter.nf_conntrack_max = -1');
    refusedByBoth(snap, 'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0', `${path}:${line}:1: net.netfilter.nf_conntrack_max: out of range 0..2147483647 (EINVAL)\n`);
  });
});

describe('a malformed ss.txt', () => {
  it.each([
    ['tcp   LISTEN 0      128           0.0.0.0:2x2          0.0.0.0:*', 35, 'expected a local ADDRESS:PORT with a port number (ss -n), not "0.0.0.0:2x2"'],
    ['tcp   LISTENING 0 128 0.0.0.0:22 0.0.0.0:*', 7, 'unexpected state "LISTENING" for tcp (expected LISTEN or UNCONN or ESTAB or SYN-SENT or SYN-RECV or FIN-WAIT-1 or FIN-WAIT-2 or TIME-WAIT or CLOSE-WAIT or LAST-ACK or CLOSING)'],
  ])('%s: ss.txt:LINE:%i, exit 2', (entry, col, reason) => {
    const { snap, path, line } = withLine(EXAMPLE, `ss-${col}`, 'ss.txt', entry);
    refusedByBoth(snap, `${SYN} iif eth0`, `${path}:${line}:${col}: ${reason}\n`);
  });

  it('is refused on a node whose ruleset loads no conntrack too', () => {
    const { snap, path, line } = withLine(STATELESS, 'ss-stateless', 'ss.txt', 'tcp LISTEN 0 128');
    refusedByBoth(snap, 'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0', `${path}:${line}:14: expected 6 columns (Netid State Recv-Q Send-Q Local:Port Peer:Port), found 4\n`);
  });
});

describe('capture interfaces', () => {
  it('a pcapng frame on an interface (if_name) the snapshot lacks: located at its block, exit 2', () => {
    const f = join(dir, 'eth9.pcapng');
    writeFileSync(f, writePcapng([{ data: bytes(`${SYN} iif eth0`) }, { data: bytes(`${SYN} iif eth0`), ifId: 1 }], {
      interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0' }, { linktype: LINKTYPE_ETHERNET, name: 'eth9' }],
    }));
    const err = `${f}:@180: frame 2 is on capture interface eth9, which the snapshot does not have (it has lo, eth0, cni0); --iface NAME picks one\n`;
    expect(nfvm(['replay', EXAMPLE, '--pcap', f])).toEqual({ code: 2, out: '', err });
    expect(nfvm(['trace', EXAMPLE, '--pcap', f, '--index', '2'])).toEqual({ code: 2, out: '', err });
    // frame 1 is on eth0; --iface overrides the capture's names
    expect(nfvm(['trace', EXAMPLE, '--pcap', f, '--index', '1']).out).toContain(`# packet: ${f} frame 1 in on eth0\n`);
    expect(nfvm(['replay', EXAMPLE, '--pcap', f, '--iface', 'eth0']).code).toBe(0);
  });

  it('LINUX_SLL2: each frame arrives on the device of its ifindex; an ifindex the snapshot lacks is located at the frame, exit 2', () => {
    const ok = join(dir, 'sll2.pcap');
    writeFileSync(ok, writePcap([
      { data: sll2Frame(bytes(SYN), { ifindex: 2 }) }, { data: sll2Frame(bytes('tcp 10.244.1.30:8443 > 10.244.1.1:22 syn'), { ifindex: 3 }) },
    ], { linktype: LINKTYPE_LINUX_SLL2 }));
    expect(nfvm(['trace', EXAMPLE, '--pcap', ok, '--index', '1']).out).toMatch(new RegExp(`^# packet: ${ok} frame 1 in on eth0\n# ip_rcv: eth0 accepts`));
    expect(nfvm(['trace', EXAMPLE, '--pcap', ok, '--index', '2']).out).toMatch(new RegExp(`^# packet: ${ok} frame 2 in on cni0\n# ip_rcv: cni0 accepts`));
    // the input device as the rules see it: one frame counted by -i eth0, one by -i cni0
    const probe = join(dir, 'probe');
    cpSync(EXAMPLE, probe, { recursive: true });
    writeFileSync(join(probe, 'iptables-save.txt'), '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i eth0\n-A INPUT -i cni0\n-A INPUT -i lo\nCOMMIT\n');
    expect(nfvm(['replay', probe, '--pcap', ok]).out).toContain('[1:40] -A INPUT -i eth0\n[1:40] -A INPUT -i cni0\n[0:0] -A INPUT -i lo\n');

    const bad = join(dir, 'sll2-99.pcap');
    writeFileSync(bad, writePcap([{ data: sll2Frame(bytes(SYN), { ifindex: 2 }) }, { data: sll2Frame(bytes(SYN), { ifindex: 99 }) }], { linktype: LINKTYPE_LINUX_SLL2 }));
    const err = `${bad}:@100: frame 2 is on ifindex 99 (LINUX_SLL2), which no interface of the snapshot has (ip-link.json: 1 lo, 2 eth0, 3 cni0); --iface NAME picks one\n`;
    expect(nfvm(['replay', EXAMPLE, '--pcap', bad])).toEqual({ code: 2, out: '', err });
    expect(nfvm(['trace', EXAMPLE, '--pcap', bad, '--index', '2'])).toEqual({ code: 2, out: '', err });
  });

  it('LINUX_SLL (v1) names no interface: trace and replay ask for --iface, and take the frame in on it when given', () => {
    const f = join(dir, 'sll1.pcap');
    writeFileSync(f, writePcap([{ data: sllFrame(bytes(SYN)) }], { linktype: LINKTYPE_LINUX_SLL }));
    const err = `${f}:@24: frame 1: a LINUX_SLL (cooked) capture does not say which interface a frame is on (LINUX_SLL2 does: tcpdump -y LINUX_SLL2): give --iface NAME\n`;
    expect(nfvm(['replay', EXAMPLE, '--pcap', f])).toEqual({ code: 2, out: '', err });
    expect(nfvm(['trace', EXAMPLE, '--pcap', f])).toEqual({ code: 2, out: '', err });
    expect(nfvm(['trace', EXAMPLE, '--pcap', f, '--iface', 'cni0']).out).toMatch(new RegExp(`^# packet: ${f} frame 1 in on cni0\n`));
  });

  it('--iface naming a device the snapshot lacks: one line, exit 2', () => {
    const err = 'nfvm: no interface eth9 in the snapshot (it has lo, eth0, cni0)\n';
    expect(nfvm(['replay', EXAMPLE, '--pcap', okPcap, '--iface', 'eth9'])).toEqual({ code: 2, out: '', err });
    expect(nfvm(['trace', EXAMPLE, '--pcap', okPcap, '--iface', 'eth9'])).toEqual({ code: 2, out: '', err });
  });
});
