/**
 * Real tools as oracles: tcpdump and tshark read what the writers write (and
 * check the spec encoder's checksums); tcpdump, tshark and editcap write
 * captures the readers must read, including `tcpdump -i any` (SLL2) and
 * `-y LINUX_SLL` in a fresh network namespace. Each part skips with a line
 * naming the missing tool (the namespace part also needs root); under CI a
 * missing tool fails it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, loadFrame, readCapture, readCaptureFile, sll2Frame,
  writePcap, writePcapng, type Frame,
} from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { have, kernelSkip, skipBecause } from '../helpers/kernel.js';
import { Packet } from '../../vm/packet.js';
import { M_L4PROTO, M_NFPROTO } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';

/** A suite that needs `tools` skips with a line saying which are missing (fails under CI). */
const needs = (what: string, tools: string[]): boolean => {
  const missing = tools.filter((t) => !have(t));
  return skipBecause(what, missing.length ? `needs ${missing.join(', ')}` : undefined);
};

const dir = mkdtempSync(join(tmpdir(), 'nfvm-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SPECS = [
  'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn',
  'tcp 10.0.0.1:22 > 10.0.0.2:40000 syn,ack len 12',
  'udp 192.168.1.1:53 > 192.168.1.2:33333 len 33',
  'icmp 10.0.0.1 > 10.0.0.2 echo-request id 7 seq 3 len 56',
  'icmp 10.0.0.1 > 10.0.0.2 port-unreachable len 28',
  'udp [2001:db8::1]:5353 > [ff02::fb]:5353 len 40',
  'tcp [2001:db8::1]:443 > [2001:db8::2]:50000 ack psh len 100',
  'icmpv6 [fe80::1] > [ff02::1] router-advertisement len 16',
  'sctp 10.0.0.1:5000 > 10.0.0.2:5001 len 20',
];
const raw = (s: string): Uint8Array => encodeSpec(parseSpec(s)).data;

function tshark(file: string, fields: string[], extra: string[] = []): string[][] {
  const out = execFileSync('tshark', ['-r', file, ...extra, '-T', 'fields', ...fields.flatMap((f) => ['-e', f]), '-E', 'separator=|'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.trimEnd().split('\n').map((l) => l.split('|'));
}

describe.skipIf(needs('tcpdump reads what nfvm writes', ['tcpdump']))('tcpdump reads what nfvm writes', () => {
  it('pcap (raw IP, µs and ns, both byte orders): addresses, ports and checksums', () => {
    for (const [i, o] of [{}, { nanosecond: true, bigEndian: true }].entries()) {
      const f = join(dir, `w${i}.pcap`);
      writeFileSync(f, writePcap(SPECS.map((s, k) => ({ data: raw(s), tsSec: 1_700_000_000 + k, tsNsec: 500_000_000 })), { linktype: LINKTYPE_RAW, ...o }));
      const out = execFileSync('tcpdump', ['-r', f, '-nn', '-vv', '-tt'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(out).toContain('1700000000.500000');
      expect(out).toMatch(/10\.0\.0\.2\.40000 > 10\.0\.0\.1\.22: Flags \[S\], cksum 0x[0-9a-f]+ \(correct\)/);
      expect(out).toMatch(/10\.0\.0\.1\.22 > 10\.0\.0\.2\.40000: Flags \[S\.\], cksum 0x[0-9a-f]+ \(correct\)/);
      expect(out).toMatch(/192\.168\.1\.1\.53 > 192\.168\.1\.2\.33333: \[udp sum ok\]/);
      expect(out).toContain('ICMP echo request, id 7, seq 3');
      expect(out).toMatch(/2001:db8::1\.443 > 2001:db8::2\.50000: Flags \[P\.\], cksum 0x[0-9a-f]+ \(correct\)/);
      expect(out).toContain('ICMP6, router advertisement');
      expect(out).not.toMatch(/incorrect|bad cksum|wrong/);
    }
  });

  it('pcapng with several interfaces of one link type, and an SLL2 pcap', () => {
    // Ethernet: libpcap 1.10.3 compares a second IDB's LINKTYPE_RAW (101) with DLT_RAW (12) and gives up.
    const f = join(dir, 'w.pcapng');
    writeFileSync(f, writePcapng(SPECS.slice(0, 4).map((s, k) => ({ data: raw(`${s} iif eth${k % 2}`), ifId: k % 2 })), {
      interfaces: [{ linktype: LINKTYPE_ETHERNET, name: 'eth0' }, { linktype: LINKTYPE_ETHERNET, name: 'eth1', tsresol: 9 }],
    }));
    const out = execFileSync('tcpdump', ['-r', f, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(out.trimEnd().split('\n').length).toBe(4);
    expect(out).toContain('10.0.0.2.40000 > 10.0.0.1.22: Flags [S]');
    const g = join(dir, 'sll2.pcap');
    writeFileSync(g, writePcap([{ data: sll2Frame(raw('udp 10.0.0.1:1 > 10.0.0.2:2'), { ifindex: 1, pkttype: 4, hatype: 772 }) }], { linktype: LINKTYPE_LINUX_SLL2 }));
    const out2 = execFileSync('tcpdump', ['-r', g, '-nn', '-e'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(out2).toMatch(/Out .*10\.0\.0\.1\.1 > 10\.0\.0\.2\.2: UDP/);
  });
});

describe.skipIf(needs('tshark reads what nfvm writes', ['tshark']))('tshark reads what nfvm writes', () => {
  it('checks every checksum of the spec encoder as good', () => {
    const f = join(dir, 'ck.pcap');
    const frames = SPECS.map((s) => ({ data: raw(s) }));
    // the same packets again inside Ethernet with a VLAN tag
    for (const s of SPECS) frames.push({ data: encodeSpec(parseSpec(`${s} vlan 12 iif eth0`)).data });
    writeFileSync(f, writePcapng(frames.map((fr, k) => ({ ...fr, ifId: k < SPECS.length ? 0 : 1 })), {
      interfaces: [{ linktype: LINKTYPE_RAW, name: 'raw0' }, { linktype: LINKTYPE_ETHERNET, name: 'eth0' }],
    }));
    const fields = ['frame.interface_name', 'ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status', 'icmp.checksum.status', 'icmpv6.checksum.status', 'sctp.checksum.status', 'vlan.id'];
    const rows = tshark(f, fields, ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'sctp.checksum:CRC-32C']);
    expect(rows.length).toBe(SPECS.length * 2);
    rows.forEach((r, k) => {
      expect(r[0]).toBe(k < SPECS.length ? 'raw0' : 'eth0');
      const statuses = r.slice(1, 7).filter((x) => x !== '');
      expect(statuses.length).toBeGreaterThan(0);
      // 1 = Good (0 Bad, 2 Unverified); ICMP errors quote no inner packet, so only the outer checksum counts
      for (const st of statuses) for (const v of st.split(',')) expect(v, `${SPECS[k % SPECS.length]}: ${r.join('|')}`).toBe('1');
      if (k >= SPECS.length) expect(r[7]).toBe('12');
    });
  });

  it('reads pcapng interface names, comments and nanosecond timestamps', () => {
    const f = join(dir, 'names.pcapng');
    writeFileSync(f, writePcapng([
      { data: raw(SPECS[0]!), ifId: 0, tsSec: 1_700_000_000, tsNsec: 123_456_789, comment: 'verdict DROP' },
      { data: raw(SPECS[2]!), ifId: 1, tsSec: 1_700_000_001, tsNsec: 1_000, flags: 2 },
    ], { interfaces: [{ linktype: LINKTYPE_RAW, name: 'wg0', tsresol: 9 }, { linktype: LINKTYPE_RAW, name: 'tun7' }], bigEndian: true }));
    const rows = tshark(f, ['frame.interface_name', 'frame.time_epoch', 'frame.comment', 'ip.src']);
    expect(rows[0]![0]).toBe('wg0');
    expect(rows[0]![1]).toMatch(/^1700000000\.123456789/);
    expect(rows[0]![2]).toBe('verdict DROP');
    expect(rows[1]![0]).toBe('tun7');
    expect(rows[1]![1]).toMatch(/^1700000001\.000001/);
  });
});

describe.skipIf(needs('nfvm reads what tshark and editcap write', ['tshark', 'editcap']))('nfvm reads what tshark and editcap write', () => {
  it('pcapng converted by editcap and tshark, ns and µs', () => {
    const src = join(dir, 'src.pcap');
    const frames = SPECS.map((s, k) => ({ data: raw(s), tsSec: 1_600_000_000 + k, tsNsec: 42_000 }));
    writeFileSync(src, writePcap(frames, { linktype: LINKTYPE_RAW }));
    const ng = join(dir, 'editcap.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', src, ng], { stdio: 'ignore' });
    const nano = join(dir, 'editcap-nano.pcap');
    execFileSync('editcap', ['-F', 'nsecpcap', src, nano], { stdio: 'ignore' });
    const ts = join(dir, 'tshark.pcapng');
    execFileSync('tshark', ['-r', src, '-w', ts], { stdio: 'ignore' });
    for (const f of [ng, nano, ts]) {
      const got = [...readCaptureFile(f)];
      expect(got.map((g) => [g.tsSec, g.tsNsec, g.linktype])).toEqual(frames.map((fr) => [fr.tsSec, fr.tsNsec, LINKTYPE_RAW]));
      got.forEach((g, k) => expect(Buffer.from(g.data).equals(Buffer.from(frames[k]!.data))).toBe(true));
    }
  });
});

/**
 * Captures on `lo` of a fresh namespace with tcpdump (-i any: SLL2; -y
 * LINUX_SLL; -i lo with ns precision) and tshark (pcapng), while bash sends
 * UDP and TCP to 127.0.0.1 and ::1. The namespace is deleted by the script's
 * trap (and again here).
 */
describe.skipIf(kernelSkip('captures made by the real tools in a namespace', ['ip', 'tcpdump', 'tshark']))('captures made by the real tools in a namespace', () => {
  const ns = `nfvm-input-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });

  function capture(): Map<string, Frame[]> {
    const tshark = `ip netns exec ${ns} tshark -q -i lo -w ${dir}/ts.pcapng 2>/dev/null & P4=$!`;
    const script = `
      set -u
      trap 'ip netns del ${ns} 2>/dev/null' EXIT
      ip netns add ${ns} || exit 3
      ip -n ${ns} link set lo up
      ip netns exec ${ns} tcpdump -i any -U -w ${dir}/any.pcap udp or tcp 2>/dev/null & P1=$!
      ip netns exec ${ns} tcpdump -i any -y LINUX_SLL -U -w ${dir}/sll.pcap udp or tcp 2>/dev/null & P2=$!
      ip netns exec ${ns} tcpdump -i lo --time-stamp-precision nano -U -w ${dir}/nano.pcap udp or tcp 2>/dev/null & P3=$!
      ${tshark}
      # every capturer has written its file header (tshark starts slowly on a loaded machine)
      for i in $(seq 400); do [ -s ${dir}/any.pcap ] && [ -s ${dir}/sll.pcap ] && [ -s ${dir}/nano.pcap ] && [ -s ${dir}/ts.pcapng ] && break; sleep 0.1; done
      sleep 1
      ip netns exec ${ns} bash -c 'echo hello > /dev/udp/127.0.0.1/5555; echo hello6 > /dev/udp/::1/5556; (exec 3<>/dev/tcp/127.0.0.1/1) 2>/dev/null; true'
      sleep 1
      kill $P1 $P2 $P3 $P4 2>/dev/null
      wait
    `;
    execFileSync('bash', ['-c', script], { stdio: 'ignore', timeout: 60_000 });
    const out = new Map<string, Frame[]>();
    for (const name of ['any.pcap', 'sll.pcap', 'nano.pcap', 'ts.pcapng']) out.set(name, [...readCapture(new Uint8Array(readFileSync(join(dir, name))), name)]);
    return out;
  }

  it('reads SLL2, SLL, nanosecond Ethernet and dumpcap pcapng captures', () => {
    const caps = capture();
    const summary = (fs: Frame[]): string[] => {
      const pkt = new Packet();
      return fs.map((f) => {
        loadFrame(pkt, f);
        return `${pkt.meta[M_NFPROTO] === NFPROTO_IPV4 ? 4 : pkt.meta[M_NFPROTO] === NFPROTO_IPV6 ? 6 : 0}/${pkt.meta[M_L4PROTO]}`;
      });
    };
    const any = caps.get('any.pcap')!;
    expect(any.length).toBeGreaterThanOrEqual(3);
    expect(any.every((f) => f.linktype === LINKTYPE_LINUX_SLL2 && f.sllIfindex === 1 && f.hatype === 772)).toBe(true);
    // libpcap drops the outgoing copy of a loopback packet on `any`, keeping the PACKET_HOST one
    expect(new Set(any.map((f) => f.pkttype))).toEqual(new Set([0]));
    expect(summary(any)).toEqual(expect.arrayContaining(['4/17', '6/17', '4/6']));
    const sll = caps.get('sll.pcap')!;
    expect(sll.every((f) => f.linktype === LINKTYPE_LINUX_SLL && f.sllIfindex === -1)).toBe(true);
    expect(summary(sll)).toEqual(expect.arrayContaining(['4/17', '6/17', '4/6']));
    const nano = caps.get('nano.pcap')!;
    expect(nano.every((f) => f.linktype === LINKTYPE_ETHERNET)).toBe(true);
    expect(summary(nano)).toEqual(expect.arrayContaining(['4/17', '6/17', '4/6']));
    expect(nano.some((f) => f.tsNsec % 1000 !== 0)).toBe(true);
    const ts = caps.get('ts.pcapng')!;
    expect(ts.length).toBeGreaterThanOrEqual(3);
    expect(ts.every((f) => f.ifName === 'lo' && f.linktype === LINKTYPE_ETHERNET)).toBe(true);
    expect(summary(ts)).toEqual(expect.arrayContaining(['4/17', '6/17']));
  });
});
