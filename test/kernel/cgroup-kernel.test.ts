/**
 * The cgroup match against the kernel (Linux 6.18), both backends: counting
 * mangle OUTPUT and POSTROUTING rules (-m cgroup --path of a temporary
 * cgroup v2 subtree: its top, a child, a grandchild, a sibling, the root,
 * inverted; --cgroup 0, inverted, a class id no socket has; a copy per
 * protocol) in a node namespace, then
 *  - UDP datagrams sent from the node by programs in several cgroups (each
 *    moved into its cgroup, `echo $$ > cgroup.procs`, then bash's /dev/udp);
 *  - frames injected from a sender that make the node answer: an ICMP port
 *    unreachable and an echo reply, a TCP reset from the stack (the per-CPU
 *    control sockets made at boot: the root cgroup, class id 0), a reset
 *    from REJECT (no socket);
 * and every OUTPUT and POSTROUTING counter of `iptables-*-save -c` compared
 * with the node model's on the namespace's snapshot (its cgroup2.txt
 * captured from this machine's cgroup2 mount), the datagrams traced as
 * packet specs `from local cgroup PATH` and the frames replayed, both
 * engines. The node namespace is made by a process in the sibling cgroup:
 * its answers still match only the root. Where the kernel has net_cls, one
 * more sender runs in a net_cls (v1) cgroup of class id 0x100001 (a
 * hierarchy mounted under the test's temporary directory, unmounted after).
 * A rule naming a cgroup that does not exist is refused by the kernel and
 * by nfvm.
 *
 * Root with iproute2, both iptables backends, tcpreplay, bash and a
 * writable cgroup2 mount; skips with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { ICMP_UNLIMITED, answerProbe, counterDiffs, flattenCounters, injectAndCount, kernelSkip, type KernelCounter, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology, saveHeader } from '../helpers/kernel.js';
import { captureCgroupTree, captureSnapshot, defaultRunner } from '../../hooks/snapshot/capture.js';
import { cgroup2Mount } from '../../hooks/snapshot/cgroup.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { parseCgroupTree } from '../../hooks/snapshot/cgroup.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay', 'bash'];
const mount = existsSync('/proc/self/mountinfo') ? cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8')) : undefined;
const SKIP = kernelSkip('the cgroup match against the kernel', TOOLS) || (mount === undefined ? 'the cgroup match against the kernel: no cgroup2 mount' : false);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-cgroup-'));
/** The temporary subtree, as a rule path and under the mount. */
const TOP = `${mount && mount.root !== '/' ? mount.root : ''}/nfvm-cgroup-${id}`;
const dirOf = (path: string) => `${mount?.point ?? ''}${path.slice(mount && mount.root !== '/' ? mount.root.length : 0)}`;
const CGROUPS = [TOP, `${TOP}/a`, `${TOP}/a/b`, `${TOP}/c`];

/** The cgroup tests, each a counting rule per protocol and chain. */
const CG = [
  '--path /', `--path ${TOP}`, `--path ${TOP}/a`, `--path ${TOP}/a/b`, `--path ${TOP}/c`, `! --path ${TOP}/a`, `! --path ${TOP}/c`,
  `! --path ${TOP}/a/b`, '! --path /', '--cgroup 0', '! --cgroup 0', '--cgroup 1048577', '! --cgroup 1048577',
];

/** Programs sending from the node: the cgroup they run in ('' the test's own), the net_cls class id, the payload length. */
const SENDERS: { cgroup: string; classid: number; len: number }[] = [
  { cgroup: '', classid: 0, len: 8 }, { cgroup: `${TOP}/a`, classid: 0, len: 9 }, { cgroup: `${TOP}/a/b`, classid: 0, len: 10 },
  { cgroup: `${TOP}/c`, classid: 0, len: 11 }, { cgroup: TOP, classid: 0, len: 12 },
];
/** The kernel has net_cls (enabled in /proc/cgroups): a sender in a net_cls cgroup of class id 0x100001 too. */
const NET_CLS = existsSync('/proc/cgroups') && /^net_cls\s+\d+\s+\d+\s+1$/m.test(readFileSync('/proc/cgroups', 'utf8'));
const NET_CLS_DIR = join(tmp, 'net_cls');
if (NET_CLS) SENDERS.push({ cgroup: `${TOP}/a/b`, classid: 0x100001, len: 13 });

const RULES = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -p tcp -m tcp --dport 7 -j REJECT --reject-with tcp-reset',
  'COMMIT', '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...['OUTPUT', 'POSTROUTING'].flatMap((c) => ['udp', 'icmp', 'tcp'].flatMap((p) => CG.map((o) => `-A ${c} -p ${p} -m cgroup ${o}`))),
  'COMMIT', ''].join('\n');

/** The v2 cgroup of this process (`0::PATH` of /proc/self/cgroup). */
function ownCgroup(): string {
  const l = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((x) => x.startsWith('0::'));
  return l ? l.slice(3) : '/';
}

describe.skipIf(SKIP)('the cgroup match against the kernel', () => {
  // the net_cls hierarchy is unmounted in the test's finally: nothing under tmp is a mount then
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('every OUTPUT and POSTROUTING counter: programs in several cgroups, the stack\'s answers, REJECT\'s reset (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap([17, 6, 6, 1].map((p, i) => ({ data: answerProbe(p, [9, 8, 7, 0][i]!, MAC) })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const home = ownCgroup();
    let netClsMounted = false;
    const classidHits: bigint[] = [];
    try {
      for (const c of CGROUPS) mkdirSync(dirOf(c));
      if (NET_CLS) {
        // a net_cls (cgroup v1) hierarchy of its own: a child with class id 0x100001
        mkdirSync(NET_CLS_DIR);
        const m = spawnSync('mount', ['-t', 'cgroup', '-o', 'net_cls', `nfvm-netcls-${id}`, NET_CLS_DIR], { encoding: 'utf8' });
        if (m.status !== 0) throw new Error(`mount net_cls: ${m.stderr}`);
        netClsMounted = true;
        mkdirSync(join(NET_CLS_DIR, 'k'));
        writeFileSync(join(NET_CLS_DIR, 'k', 'net_cls.classid'), '0x100001\n');
      }
      for (const backend of ['legacy', 'nft'] as const) {
        const ns = { s: `nfvm-cgs-${backend[0]}-${id}`, n: `nfvm-cgn-${backend[0]}-${id}` };
        const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
        try {
          // the namespaces are made by this process moved into the sibling cgroup (and back)
          writeFileSync(join(dirOf(`${TOP}/c`), 'cgroup.procs'), `${process.pid}\n`);
          try {
            senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
          } finally {
            writeFileSync(join(dirOf(home), 'cgroup.procs'), `${process.pid}\n`);
          }
          nsSh(ns.n, `ip neigh replace 10.0.0.2 lladdr ${mac(MAC.sender)} dev eth0 nud permanent
${ICMP_UNLIMITED}`);
          // a path that does not exist: the kernel refuses the rule (cgroup_get_from_path: ENOENT)
          const bad = `*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m cgroup --path ${TOP}/nowhere\nCOMMIT\n`;
          const refused = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], bad);
          expect(refused.code, refused.stderr).not.toBe(0);
          const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
          expect(load.stderr, RULES).toBe('');
          const snap = join(tmp, `snap-${backend}`);
          captureSnapshot(snap, nsSnapshotRunner(ns.n));
          writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${RULES}`);
          // `ip netns exec` mounts its own /sys: the tree is this machine's (cgroups are not per network namespace)
          const tree = captureCgroupTree(defaultRunner);
          if (typeof tree !== 'string') throw new Error(tree.reason);
          writeFileSync(join(snap, 'cgroup2.txt'), tree);
          expect(() => parseRestore(bad, { file: 'bad', objects: { cgroups: parseCgroupTree(tree, 'cgroup2.txt') } })).toThrow(/xt_cgroup: invalid path, errno=-2/);
          for (const s of SENDERS) {
            const send = `exec ip netns exec ${ns.n} bash -c "printf '${'x'.repeat(s.len)}' > /dev/udp/10.0.0.2/9"`;
            const into = (s.cgroup ? `echo $$ > ${join(dirOf(s.cgroup), 'cgroup.procs')} && ` : '') + (s.classid ? `echo $$ > ${join(NET_CLS_DIR, 'k', 'cgroup.procs')} && ` : '');
            const sh = `${into}${send}`;
            const r = await run('bash', ['-c', sh]);
            if (r.code !== 0) throw new Error(`send from ${s.cgroup}: ${r.stderr}`);
          }
          const kernel = await injectAndCount(ns, pcap, backend);
          classidHits.push(kernel.get(`mangle OUTPUT #${CG.indexOf('--cgroup 1048577') + 1}`)?.packets ?? -1n);
          for (const engine of ['vm', 'reference'] as const) {
            const model = buildNodeModel(readSnapshot(snap), { engine });
            for (const s of SENDERS) {
              const pkt = specPacket(parseSpec(`udp 10.0.0.1:40000 > 10.0.0.2:9 len ${s.len} df from local cgroup ${s.cgroup || home} classid ${s.classid}`));
              model.send(pkt);
            }
            replayCapture(model, pcap, 'eth0');
            const mine = flattenCounters(model.rulesetWithCounters()!, true);
            const wanted = new Map([...(kernel as Map<string, KernelCounter>)].filter(([key]) => key.startsWith('mangle OUTPUT #') || key.startsWith('mangle POSTROUTING #')));
            diffs.push(...counterDiffs(wanted, mine, tally).map((l) => `${backend} ${engine}${l}`));
          }
        } finally {
          netnsDel(ns.s);
          netnsDel(ns.n);
        }
      }
    } finally {
      // the senders have exited; a cgroup with no process in it can go, children first
      for (const c of [...CGROUPS].reverse().map(dirOf).concat(netClsMounted ? [join(NET_CLS_DIR, 'k')] : [])) {
        try {
          rmdirSync(c);
        } catch {
          /* already gone */
        }
      }
      if (netClsMounted) spawnSync('umount', [NET_CLS_DIR]);
    }
    console.log(`cgroup kernel agreement: ${tally.agree}/${tally.counters} counters (${tally.nonzero} non-zero)`);
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * 2 * 3 * CG.length);
    expect(tally.nonzero).toBeGreaterThan(60);
    // the datagram of class id 0x100001 counted on `-p udp --cgroup 1048577`, on each backend
    if (NET_CLS) expect(classidHits).toEqual([1n, 1n]);
  }, 180_000);
  it('the loopback answers of both families: the IPv4 reset and ICMP errors carry the root cgroup, the IPv6 stack\'s reset no socket', async () => {
    const top = `${TOP}-lo`;
    const a = `${top}/a`;
    const ns = `nfvm-cgl-${id}`;
    const opts = ['-m owner --socket-exists', '-m owner ! --socket-exists', '-m cgroup --path /', `-m cgroup --path ${a}`, `-m cgroup ! --path ${a}`, '-m cgroup --cgroup 0'];
    const rules = (icmp: string) => ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
      ...['OUTPUT', 'POSTROUTING'].flatMap((c) => ['tcp', 'udp', icmp].flatMap((p) => opts.map((o) => `-A ${c} -p ${p} ${o}`))), 'COMMIT', ''].join('\n');
    const RULES4 = rules('icmp');
    const RULES6 = rules('ipv6-icmp');
    // a program in cgroup a: a TCP SYN and a UDP datagram to closed ports of each loopback address
    const SENT = [
      'tcp 127.0.0.1:40000 > 127.0.0.1:9 syn tcpopt mss=65495,sackok,ts,nop,wscale=7 df', 'tcp [::1]:40000 > [::1]:9 syn tcpopt mss=65476,sackok,ts,nop,wscale=7',
      'udp 127.0.0.1:40000 > 127.0.0.1:9 len 1 df', 'udp [::1]:40000 > [::1]:9 len 1',
    ];
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    try {
      for (const c of [top, a]) mkdirSync(dirOf(c));
      for (const backend of ['legacy', 'nft'] as const) {
        try {
          const r = netnsAdd(ns);
          if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
          nsSh(ns, `ip link set lo up; ${ICMP_UNLIMITED}`);
          for (const [tool, text] of [[`iptables-${backend}-restore`, RULES4], [`ip6tables-${backend}-restore`, RULES6]] as const) {
            const load = await run('ip', ['netns', 'exec', ns, tool], text);
            expect(load.stderr, text).toBe('');
          }
          const snap = join(tmp, `snap-lo-${backend}`);
          captureSnapshot(snap, nsSnapshotRunner(ns));
          const header = `${saveHeader(backend)}`;
          writeFileSync(join(snap, 'iptables-save.txt'), header + RULES4);
          writeFileSync(join(snap, 'ip6tables-save.txt'), header + RULES6);
          const send = 'echo > /dev/tcp/127.0.0.1/9; echo > /dev/tcp/::1/9; printf x > /dev/udp/127.0.0.1/9; printf x > /dev/udp/::1/9; sleep 0.2';
          const k = await run('bash', ['-c', `echo $$ > ${join(dirOf(a), 'cgroup.procs')} && exec ip netns exec ${ns} bash -c '${send}' 2>/dev/null; true`]);
          if (k.code !== 0) throw new Error(`send: ${k.stderr}`);
          const kernel = new Map<string, KernelCounter>();
          for (const [fam, tool] of [['ip', `iptables-${backend}-save`], ['ip6', `ip6tables-${backend}-save`]] as const) {
            const save = await run('ip', ['netns', 'exec', ns, tool, '-c']);
            for (const [key, c] of flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true, family: fam }), true)) kernel.set(`${fam} ${key}`, c);
          }
          for (const engine of ['vm', 'reference'] as const) {
            const model = buildNodeModel(readSnapshot(snap), { engine });
            for (const spec of SENT) model.send(specPacket(parseSpec(`${spec} oif lo from local cgroup ${a}`)));
            const mine = new Map<string, KernelCounter>();
            for (const fam of ['ip', 'ip6'] as const) for (const [key, c] of flattenCounters(model.rulesetWithCounters(fam)!, true)) mine.set(`${fam} ${key}`, c);
            const wanted = new Map([...kernel].filter(([key]) => / mangle (OUTPUT|POSTROUTING) #/.test(key)));
            diffs.push(...counterDiffs(wanted, mine, tally).map((l) => `${backend} ${engine}${l}`));
          }
        } finally {
          netnsDel(ns);
        }
      }
    } finally {
      for (const c of [a, top]) {
        try {
          rmdirSync(dirOf(c));
        } catch {
          /* already gone */
        }
      }
    }
    console.log(`cgroup loopback kernel agreement: ${tally.agree}/${tally.counters} counters (${tally.nonzero} non-zero)`);
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * 2 * 2 * 3 * 6);
    expect(tally.nonzero).toBeGreaterThan(40);
  }, 180_000);
});
