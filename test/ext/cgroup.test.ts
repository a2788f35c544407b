/**
 * cgroup match (xt_cgroup.c cgroup_mt_v1, revision 2): the cgroup v2 path
 * (`--path`, matched with cgroup_is_descendant) or net_cls class id
 * (`--cgroup`) of the socket a packet carries (vm/layout.ts M_SK,
 * M_SK_CGROUP, M_SK_CLASSID).
 *
 *  - the kernel's answers for sockets in a small tree, inversions, no
 *    socket, the node's own answers (root cgroup, class id 0)
 *    (test/kernel/cgroup-kernel.test.ts checks them on the kernel);
 *  - the VM (nft_compat records; both tiers, both backends) and the x_tables
 *    evaluator agree on generated rules, trees and sockets;
 *  - checkentry against the snapshot's tree (cgroup_get_from_path: ENOENT),
 *    cgroup2.txt and the mountinfo/find capture, ss's `cgroup:`;
 *  - the packet spec's `from local cgroup PATH classid N`;
 *  - INPUT: the socket TPROXY gave a packet (its ss `cgroup:`).
 * Run counts come from NFVM_PROPERTY_SCALE (test/helpers/runs.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { M_HOOK, M_NFPROTO, M_SK, M_SK_CGROUP, M_SK_CLASSID, SK_FILE, SK_KERNEL, SK_NONE } from '../../vm/layout.js';
import { setSocket, type Packet } from '../../vm/packet.js';
import { CGROUP_ROOT, cgroupCanonical, cgroupId, cgroupIsDescendant, cgroupPath } from '../../vm/cgroup.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';
import { cgroup2Mount, cgroupTreeLines, parseCgroupTree } from '../../hooks/snapshot/cgroup.js';
import { parseSs } from '../../hooks/snapshot/ss.js';
import { captureCgroupTree, captureSnapshot, type Runner } from '../../hooks/snapshot/capture.js';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { runs } from '../helpers/runs.js';
import { expectOutputAgreement, filterEngines } from '../helpers/engine-gen.js';

const NF_INET_LOCAL_OUT = 3;

interface Sock {
  kind: number;
  cgroup: string;
  classid: number;
}

function udp(sock: Sock, v6 = false): Packet {
  const p = packet(v6 ? ipPacket('2001:db8::1', '2001:db8::2', { proto: 'udp', sport: 4000, dport: 9, payload: 8 }) : ipPacket('10.0.0.1', '10.0.0.2', { proto: 'udp', sport: 4000, dport: 9, payload: 8 }));
  p.meta[M_NFPROTO] = v6 ? 10 : 2;
  p.meta[M_HOOK] = NF_INET_LOCAL_OUT;
  setSocket(p, sock.kind, 0, 0, [], cgroupId(sock.cgroup), sock.classid);
  return p;
}

/** Whether `-m cgroup OPTS -j DROP` in OUTPUT drops the packet of `sock`, on every engine (all must agree). */
function drops(opts: string, sock: Sock, v6 = false): boolean {
  const rs = parseRestore(`*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m cgroup ${opts} -j DROP\nCOMMIT\n`, { family: v6 ? 'ip6' : 'ip' });
  const verdicts = filterEngines(rs).map((e) => e.run('OUTPUT', udp(sock, v6)));
  expect(new Set(verdicts).size, `${opts}: ${verdicts}`).toBe(1);
  return verdicts[0] === NF_DROP;
}

const NONE: Sock = { kind: SK_NONE, cgroup: '/', classid: 0 };
const KERNEL: Sock = { kind: SK_KERNEL, cgroup: '/', classid: 0 };
const prog = (cgroup: string, classid = 0): Sock => ({ kind: SK_FILE, cgroup, classid });

describe('the cgroup numbers (vm/cgroup.ts)', () => {
  it('reads a path as kernfs_walk_ns does: empty components skipped', () => {
    expect(cgroupCanonical('')).toBe('/');
    expect(cgroupCanonical('//')).toBe('/');
    expect(cgroupCanonical('a//b/')).toBe('/a/b');
    expect(cgroupId('/a/b')).toBe(cgroupId('a/b/'));
    expect(cgroupId('/')).toBe(CGROUP_ROOT);
    expect(cgroupPath(cgroupId('/x/./y'))).toBe('/x/./y');
  });

  it('cgroup_is_descendant: itself and below, not a sibling or a prefix of a name', () => {
    const [root, a, ab, abc, c, a2] = ['/', '/a', '/a/b', '/a/b/c', '/c', '/a2'].map(cgroupId);
    expect(cgroupIsDescendant(abc!, a!)).toBe(true);
    expect(cgroupIsDescendant(ab!, ab!)).toBe(true);
    expect(cgroupIsDescendant(a!, ab!)).toBe(false);
    expect(cgroupIsDescendant(c!, a!)).toBe(false);
    expect(cgroupIsDescendant(a2!, a!)).toBe(false);
    for (const x of [a, ab, abc, c, a2]) expect(cgroupIsDescendant(x!, root!)).toBe(true);
  });
});

describe('cgroup_mt_v1: the socket a packet carries', () => {
  it('--path: the socket\'s cgroup is the path or below it, XOR !', () => {
    expect(drops('--path /', prog('/a/b'))).toBe(true);
    expect(drops('--path /a', prog('/a/b'))).toBe(true);
    expect(drops('--path /a/b', prog('/a/b'))).toBe(true);
    expect(drops('--path a//b/', prog('/a/b'))).toBe(true);
    expect(drops('--path /a/b', prog('/a'))).toBe(false);
    expect(drops('--path /c', prog('/a/b'))).toBe(false);
    expect(drops('! --path /c', prog('/a/b'))).toBe(true);
    expect(drops('! --path /a', prog('/a/b'))).toBe(false);
    expect(drops('! --path /', prog('/'))).toBe(false);
  });

  it('--cgroup: the net_cls class id equals, XOR !', () => {
    expect(drops('--cgroup 0', prog('/a'))).toBe(true);
    expect(drops('! --cgroup 0', prog('/a'))).toBe(false);
    expect(drops('--cgroup 0x100001', prog('/a', 0x100001))).toBe(true);
    expect(drops('--cgroup 1048577', prog('/a', 0))).toBe(false);
    expect(drops('! --cgroup 1048577', prog('/a', 0))).toBe(true);
    expect(drops('--cgroup 4294967295', prog('/a', 0xffffffff))).toBe(true);
  });

  it('no socket: false, inverted or not', () => {
    for (const o of ['--path /', '! --path /', '! --path /a', '--cgroup 0', '! --cgroup 0', '! --cgroup 5']) expect(drops(o, NONE)).toBe(false);
  });

  it('the node\'s own answers: a socket in the root cgroup with class id 0', () => {
    expect(drops('--path /', KERNEL)).toBe(true);
    expect(drops('--path /a', KERNEL)).toBe(false);
    expect(drops('! --path /a', KERNEL)).toBe(true);
    expect(drops('--cgroup 0', KERNEL)).toBe(true);
  });

  it('IPv6 runs the same function', () => {
    expect(drops('--path /a', prog('/a/b'), true)).toBe(true);
    expect(drops('! --path /a', prog('/a/b'), true)).toBe(false);
    expect(drops('--path /a', NONE, true)).toBe(false);
  });
});

describe('cgroup: VM and x_tables evaluator agree', () => {
  const name = fc.constantFrom('a', 'b', 'c', 'system.slice', 'x y');
  const path = fc.array(name, { maxLength: 4 }).map((p) => `/${p.join('/')}`);
  const classid = fc.constantFrom(0, 1, 0x100001, 0xffffffff);
  const opt = fc.oneof(
    fc.record({ inv: fc.boolean(), path, classid: fc.constant(undefined) }),
    fc.record({ inv: fc.boolean(), path: fc.constant(undefined), classid }),
  );
  const sock = fc.oneof(
    fc.constant(NONE),
    fc.constant(KERNEL),
    fc.record({ kind: fc.constant(SK_FILE), cgroup: path, classid }),
  );

  it('verdicts and counters of generated rules over generated sockets (both backends, both tiers)', () => {
    fc.assert(
      fc.property(fc.array(opt, { minLength: 1, maxLength: 6 }), fc.array(sock, { minLength: 1, maxLength: 12 }), (opts, socks) => {
        const matches = opts.map((o) => `-m cgroup ${o.inv ? '! ' : ''}${o.path !== undefined ? `--path "${o.path}"` : `--cgroup ${o.classid}`}`);
        expectOutputAgreement(matches, socks.map((s) => () => udp(s)));
        for (const s of socks) expect([udp(s).meta[M_SK_CGROUP], udp(s).meta[M_SK_CLASSID]]).toEqual([cgroupId(s.cgroup), s.classid | 0]);
      }),
      { numRuns: runs(150) },
    );
  });

  it('cgroupIsDescendant agrees with path prefixes', () => {
    fc.assert(
      fc.property(path, path, (a, b) => {
        const want = b === '/' || a === b || a.startsWith(`${b}/`);
        expect(cgroupIsDescendant(cgroupId(a), cgroupId(b))).toBe(want);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('checkentry: cgroup_get_from_path() against the node\'s tree', () => {
  const tree = parseCgroupTree('/\n/a\n/a/b\n/c\n', 'cgroup2.txt');
  const load = (path: string, cgroups: ReadonlySet<string> | undefined) =>
    parseRestore(`*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m cgroup --path ${path}\nCOMMIT\n`, { family: 'ip', file: 'r', objects: cgroups ? { cgroups } : undefined });

  it('a path of the tree loads; one that is not is refused as the kernel refuses it (ENOENT: EINVAL)', () => {
    for (const p of ['/', '/a', 'a/b', '/a//b/', '/c']) expect(() => load(p, tree)).not.toThrow();
    expect(() => load('/d', tree)).toThrow('r:3:11: xt_cgroup: invalid path, errno=-2 (EINVAL)');
    expect(() => load('/a/c', tree)).toThrow(/invalid path/);
    expect(() => load('/a/b/.', tree)).toThrow(/invalid path/);
  });

  it('without a tree any path loads', () => {
    expect(() => load('/nowhere', undefined)).not.toThrow();
  });

  it('cgroup2.txt: ancestors exist with a directory; a line that is no /PATH is an error at its line', () => {
    expect([...parseCgroupTree('/x/y/z\n', 'f')].sort()).toEqual(['/', '/x', '/x/y', '/x/y/z']);
    expect(() => parseCgroupTree('/\nsystem.slice\n', 'cgroup2.txt')).toThrow('cgroup2.txt:2:1: expected a cgroup path');
  });

  it('the capture: the cgroup2 mount of mountinfo (hybrid or unified), find\'s directories from its root', () => {
    const hybrid = '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n';
    expect(cgroup2Mount(hybrid)).toEqual({ point: '/sys/fs/cgroup/unified', root: '/' });
    expect(cgroup2Mount('25 20 0:22 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n')).toEqual({ point: '/sys/fs/cgroup', root: '/' });
    expect(cgroup2Mount('31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n')).toBeUndefined();
    const lines = cgroupTreeLines('/sys/fs/cgroup/unified\n/sys/fs/cgroup/unified/b\n/sys/fs/cgroup/unified/a\n/sys/fs/cgroup/unified/a/x\n', { point: '/sys/fs/cgroup/unified', root: '/' });
    expect(lines).toBe('/\n/a\n/a/x\n/b\n');
    expect(cgroupTreeLines('/mnt/cg\n/mnt/cg/s\n', { point: '/mnt/cg', root: '/kube' })).toBe('/kube\n/kube/s\n');
  });
});

describe('nfvm snapshot: ss --cgroup with its fallback, the cgroup2 tree', () => {
  const MOUNTINFO = '30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n';
  /** A node with ip, an ss that refuses --cgroup, and a cgroup2 tree. */
  const runner: Runner = (argv) => {
    const cmd = argv.join(' ');
    if (argv[0] === 'ip') return { status: 0, stdout: '[]', stderr: '' };
    if (cmd === 'ss -H -tuwane --inet-sockopt --cgroup') return { status: 1, stdout: '', stderr: 'ss: unrecognized option \'--cgroup\'' };
    if (cmd === 'ss -H -tuwane --inet-sockopt') return { status: 0, stdout: 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* ino:1 sk:1 cgroup:/a <->\n', stderr: '' };
    if (cmd === 'cat /proc/self/mountinfo') return { status: 0, stdout: MOUNTINFO, stderr: '' };
    if (cmd === 'find /sys/fs/cgroup/unified -type d') return { status: 0, stdout: '/sys/fs/cgroup/unified\n/sys/fs/cgroup/unified/a\n', stderr: '' };
    return { status: undefined, stdout: '', stderr: '' };
  };

  it('an ss refusing --cgroup is run without it; the tree is written as cgroup2.txt', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nfvm-cgroup-capture-'));
    try {
      const rep = captureSnapshot(join(tmp, 's'), runner);
      expect(rep.written).toContain('cgroup2.txt');
      expect(readFileSync(join(tmp, 's', 'ss.txt'), 'utf8')).toContain('cgroup:/a');
      expect(readFileSync(join(tmp, 's', 'cgroup2.txt'), 'utf8')).toBe('/\n/a\n');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('no cgroup2 mount: no tree, and the reason', () => {
    const r = captureCgroupTree((argv) => (argv[0] === 'cat' ? { status: 0, stdout: '31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n', stderr: '' } : runner(argv)));
    expect(r).toEqual({ reason: 'no cgroup2 mount in /proc/self/mountinfo: any -m cgroup --path is taken' });
  });
});

describe('ss: the sockets\' cgroups', () => {
  it('reads cgroup:PATH (-e, and --cgroup again at the end); unreachable: is below the root under no rule path', () => {
    const t = parseSs(
      'tcp LISTEN 0 128 0.0.0.0:2024 0.0.0.0:* ino:1062 sk:1138 cgroup:/a/b <-> cgroup:/a/b\n' +
      'udp UNCONN 0 0 0.0.0.0:53 0.0.0.0:* ino:1 sk:2 cgroup:unreachable:1f <->\n' +
      'udp UNCONN 0 0 0.0.0.0:54 0.0.0.0:*\n', 'ss.txt');
    const [s1, s2, s3] = t.sockets;
    expect(s1!.cgroup).toBe(cgroupId('/a/b'));
    expect(cgroupIsDescendant(s2!.cgroup, CGROUP_ROOT)).toBe(true);
    expect(cgroupIsDescendant(s2!.cgroup, cgroupId('/a'))).toBe(false);
    expect(s3!.cgroup).toBe(CGROUP_ROOT);
  });
});

describe('packet spec: the sending socket\'s cgroup', () => {
  it('from local cgroup PATH classid N; the root and 0 by default', () => {
    const p = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 from local uid 1000 cgroup /a//b classid 0x100001'));
    expect([p.meta[M_SK], p.meta[M_SK_CGROUP], p.meta[M_SK_CLASSID]]).toEqual([SK_FILE, cgroupId('/a/b'), 0x100001]);
    const q = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 from local'));
    expect([q.meta[M_SK_CGROUP], q.meta[M_SK_CLASSID]]).toEqual([CGROUP_ROOT, 0]);
    const rs = parseRestore('*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m cgroup --path /a -j DROP\nCOMMIT\n', { family: 'ip' });
    for (const e of filterEngines(rs)) {
      expect(e.run('OUTPUT', p)).toBe(NF_DROP);
      expect(e.run('OUTPUT', q)).toBe(NF_ACCEPT);
    }
  });

  it('refuses them without from local, and a bad class id, at their column', () => {
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 cgroup /a')).toThrow('packet spec:1:25: "cgroup" is the sending socket\'s: it needs "from local"');
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local classid 4294967296')).toThrow(/packet spec:1:44: class id 4294967296 out of range/);
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local cgroup')).toThrow('packet spec:1:42: expected a cgroup path at the end of the spec');
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local cgroup /a cgroup /b')).toThrow(/duplicate "cgroup"/);
  });
});

describe('INPUT: the socket TPROXY gave a packet, with its ss cgroup', () => {
  it('counts the assigned socket\'s cgroup; a packet delivered without TPROXY has no socket in INPUT (early demux is not modelled), both engines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-cgroup-tproxy-'));
    try {
      cpSync(join(__dirname, '..', 'path', 'fixtures', 'node'), dir, { recursive: true });
      writeFileSync(join(dir, 'ss.txt'), [
        'tcp LISTEN 0 128 10.0.0.1:82 0.0.0.0:* ino:13 sk:3 cgroup:/app <->', '\tinet-sockopt: ( is_icsk transparent)',
        'tcp ESTAB 0 0 10.0.0.1:45000 10.0.0.2:9000 ino:15 sk:5 cgroup:/other/x <->', '\tinet-sockopt: ( is_icsk transparent)',
        'udp UNCONN 0 0 10.0.0.1:53 0.0.0.0:* ino:19 sk:9 cgroup:/app <->', ''].join('\n'));
      writeFileSync(join(dir, 'iptables-save.txt'), ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
        '-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 82 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
        '-A PREROUTING -p tcp -m tcp --sport 9000 -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x10/0x10',
        '-A INPUT -m cgroup --path /app', '-A INPUT -m cgroup ! --path /app', '-A INPUT -m cgroup --path /other', '-A INPUT -m cgroup --cgroup 0', 'COMMIT', ''].join('\n'));
      const specs = ['tcp 10.0.0.2:1 > 10.0.0.1:80 syn', 'tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack', 'udp 10.0.0.8:1 > 10.0.0.1:53'];
      const out: string[] = [];
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(dir), { engine });
        const fates = specs.map((s) => model.receive(specPacket(parseSpec(`${s} iif eth0`)), 'eth0').fate.kind);
        const input = model.rulesetWithCounters()!.tables.get('mangle')!.chains.get('INPUT')!.rules.map((r) => Number(r.counters!.packets));
        out.push(JSON.stringify([fates, input]));
      }
      expect(new Set(out).size).toBe(1);
      expect(JSON.parse(out[0]!)).toEqual([['delivered', 'delivered', 'delivered'], [1, 1, 1, 2]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
