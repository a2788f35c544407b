/**
 * owner match (xt_owner.c owner_mt, revision 1): the socket a packet
 * carries (vm/layout.ts M_SK: none, a kernel socket without a file, a
 * program's socket with its file's credentials) against uid and gid
 * ranges, their inversions, --socket-exists and --suppl-groups.
 *
 *  - the kernel's answers for each kind of socket, as owner_mt() gives
 *    them (test/kernel/owner-kernel.test.ts checks them on the kernel);
 *  - the VM (nft_compat records; the generated tier and the interpreter;
 *    both backends) and the x_tables evaluator agree on generated rules and
 *    sockets, verdicts and counters;
 *  - the packet spec's `from local uid N gid N groups N,N` and what
 *    `nfvm trace` shows for it.
 * Run counts come from NFVM_PROPERTY_SCALE (test/helpers/runs.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { M_HOOK, M_NFPROTO, M_SK, M_SK_GROUPS, M_SK_NGROUPS, M_SKGID, M_SKUID, SK_FILE, SK_KERNEL, SK_NONE } from '../../vm/layout.js';
import { setSocket, type Packet } from '../../vm/packet.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';
import { NfvmError } from '../../core/errors.js';
import { logBody, NF_LOG_DEFAULT_MASK, NF_LOG_UID } from '../../hooks/path/log.js';
import { ipPacket, packet } from '../helpers/ctpkt.js';
import { runs } from '../helpers/runs.js';
import { expectOutputAgreement, filterEngines } from '../helpers/engine-gen.js';

const NF_INET_LOCAL_OUT = 3;

interface Sock {
  kind: number;
  uid: number;
  gid: number;
  groups: number[];
}

function udp(sock: Sock, v6 = false): Packet {
  const p = packet(v6 ? ipPacket('2001:db8::1', '2001:db8::2', { proto: 'udp', sport: 4000, dport: 9, payload: 8 }) : ipPacket('10.0.0.1', '10.0.0.2', { proto: 'udp', sport: 4000, dport: 9, payload: 8 }));
  p.meta[M_NFPROTO] = v6 ? 10 : 2;
  p.meta[M_HOOK] = NF_INET_LOCAL_OUT;
  setSocket(p, sock.kind, sock.uid, sock.gid, sock.groups);
  return p;
}

const table = (rules: string[], family: 'ip' | 'ip6' = 'ip') =>
  parseRestore(`*filter\n:OUTPUT ACCEPT [0:0]\n${rules.map((r) => `-A OUTPUT ${r}`).join('\n')}\nCOMMIT\n`, { family });

/** Whether a one-rule OUTPUT chain `-m owner OPTS -j DROP` drops the packet of `sock`, on every engine (all must agree). */
function drops(opts: string, sock: Sock): boolean {
  const rs = table([`-m owner ${opts} -j DROP`]);
  const verdicts = filterEngines(rs).map((e) => e.run('OUTPUT', udp(sock)));
  expect(new Set(verdicts).size, `${opts}: ${verdicts}`).toBe(1);
  return verdicts[0] === NF_DROP;
}

const NONE: Sock = { kind: SK_NONE, uid: 0, gid: 0, groups: [] };
const KERNEL: Sock = { kind: SK_KERNEL, uid: 0, gid: 0, groups: [] };
const user = (uid: number, gid: number, groups: number[] = []): Sock => ({ kind: SK_FILE, uid, gid, groups });

describe('owner_mt: the socket a packet carries', () => {
  it('no socket: true only when every test asked for is inverted; --suppl-groups never', () => {
    expect(drops('--socket-exists', NONE)).toBe(false);
    expect(drops('! --socket-exists', NONE)).toBe(true);
    expect(drops('--uid-owner 0', NONE)).toBe(false);
    expect(drops('! --uid-owner 0', NONE)).toBe(true);
    expect(drops('! --uid-owner 0 ! --gid-owner 0', NONE)).toBe(true);
    expect(drops('! --uid-owner 0 --gid-owner 0', NONE)).toBe(false);
    expect(drops('! --gid-owner 5 --suppl-groups', NONE)).toBe(false);
  });

  it('a kernel socket (no file): it exists; uid and gid tests hold only inverted', () => {
    expect(drops('--socket-exists', KERNEL)).toBe(true);
    expect(drops('! --socket-exists', KERNEL)).toBe(false);
    expect(drops('--uid-owner 0', KERNEL)).toBe(false);
    expect(drops('! --uid-owner 0', KERNEL)).toBe(true);
    expect(drops('! --uid-owner 0 --socket-exists', KERNEL)).toBe(true);
    expect(drops('! --gid-owner 0 --suppl-groups', KERNEL)).toBe(true);
    expect(drops('--gid-owner 0 --suppl-groups', KERNEL)).toBe(false);
  });

  it('a program\'s socket: fsuid and fsgid in their ranges, supplementary groups with --suppl-groups', () => {
    const u = user(1000, 2000, [3000, 3005]);
    expect(drops('--socket-exists', u)).toBe(true);
    expect(drops('! --socket-exists', u)).toBe(false);
    expect(drops('--uid-owner 1000', u)).toBe(true);
    expect(drops('--uid-owner 999-1000', u)).toBe(true);
    expect(drops('--uid-owner 1001-1500', u)).toBe(false);
    expect(drops('! --uid-owner 1001-1500', u)).toBe(true);
    expect(drops('--gid-owner 2000', u)).toBe(true);
    expect(drops('--gid-owner 3005', u)).toBe(false);
    expect(drops('--gid-owner 3005 --suppl-groups', u)).toBe(true);
    expect(drops('--gid-owner 3001-3004 --suppl-groups', u)).toBe(false);
    expect(drops('! --gid-owner 3001-3004 --suppl-groups', u)).toBe(true);
    expect(drops('! --gid-owner 3005 --suppl-groups', u)).toBe(false);
    expect(drops('--uid-owner 1000 ! --gid-owner 2000', u)).toBe(false);
    expect(drops('--socket-exists --uid-owner 1000 --gid-owner 3000 --suppl-groups', u)).toBe(true);
    expect(drops('--uid-owner 0', user(0, 0))).toBe(true);
  });

  it('IPv6 runs the same function', () => {
    const rs = table(['-m owner --uid-owner 1000-2000 -j DROP'], 'ip6');
    for (const e of filterEngines(rs)) {
      expect(e.run('OUTPUT', udp(user(1500, 0), true))).toBe(NF_DROP);
      expect(e.run('OUTPUT', udp(user(999, 0), true))).toBe(NF_ACCEPT);
      expect(e.run('OUTPUT', udp(NONE, true))).toBe(NF_ACCEPT);
    }
  });
});

describe('owner: VM and x_tables evaluator agree', () => {
  const id = fc.oneof(fc.constantFrom(0, 1, 1000, 1001, 2000, 65534, 0xfffffffe), fc.integer({ min: 0, max: 3000 }));
  const range = fc.tuple(id, id).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);
  const opt = fc.record({
    uid: fc.option(fc.tuple(fc.boolean(), range), { nil: undefined }),
    gid: fc.option(fc.tuple(fc.boolean(), range, fc.boolean()), { nil: undefined }),
    sock: fc.option(fc.boolean(), { nil: undefined }),
  }).filter((o) => o.uid !== undefined || o.gid !== undefined || o.sock !== undefined);
  interface Opt {
    uid?: [boolean, [number, number]];
    gid?: [boolean, [number, number], boolean];
    sock?: boolean;
  }
  const text = (o: Opt): string => {
    const r = ([a, b]: [number, number]) => (a === b ? `${a}` : `${a}-${b}`);
    let s = '-m owner';
    if (o.sock !== undefined) s += `${o.sock ? ' !' : ''} --socket-exists`;
    if (o.uid) s += `${o.uid[0] ? ' !' : ''} --uid-owner ${r(o.uid[1])}`;
    if (o.gid) s += `${o.gid[0] ? ' !' : ''} --gid-owner ${r(o.gid[1])}${o.gid[2] ? ' --suppl-groups' : ''}`;
    return s;
  };
  const sock = fc.oneof(
    fc.constant(NONE),
    fc.constant(KERNEL),
    fc.record({ kind: fc.constant(SK_FILE), uid: id, gid: id, groups: fc.array(id, { maxLength: 8 }) }),
  );

  it('verdicts and counters of generated rules over generated sockets (both backends, both tiers)', () => {
    fc.assert(
      fc.property(fc.array(opt, { minLength: 1, maxLength: 6 }), fc.array(sock, { minLength: 1, maxLength: 12 }), (opts, socks) => {
        expectOutputAgreement(opts.map(text), socks.map((s) => () => udp(s)));
      }),
      { numRuns: runs(150) },
    );
  });
});

describe('packet spec: the sending socket', () => {
  it('from local gives a program\'s socket, uid 0 gid 0 unless given', () => {
    const p = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 from local'));
    expect([p.meta[M_SK], p.meta[M_SKUID], p.meta[M_SKGID], p.meta[M_SK_NGROUPS]]).toEqual([SK_FILE, 0, 0, 0]);
    const q = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 from local uid 1000 gid 2000 groups 3000,3005'));
    expect([q.meta[M_SK], q.meta[M_SKUID], q.meta[M_SKGID], q.meta[M_SK_NGROUPS], q.meta[M_SK_GROUPS], q.meta[M_SK_GROUPS + 1]]).toEqual([SK_FILE, 1000, 2000, 2, 3000, 3005]);
  });

  it('a received packet has no socket', () => {
    const p = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 iif eth0'));
    expect([p.meta[M_SK], p.meta[M_SKUID], p.meta[M_SKGID]]).toEqual([SK_NONE, -1, -1]);
  });

  it('refuses socket credentials without from local, and bad ids, at their column', () => {
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 uid 1000')).toThrow(/packet spec:1:25: "uid" is the sending socket's: it needs "from local"/);
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local uid 4294967295')).toThrow(NfvmError);
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local groups 1,2,3,4,5,6,7,8,9')).toThrow(/at most 8 supplementary groups/);
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local groups 1,x')).toThrow(NfvmError);
    expect(() => parseSpec('udp 10.0.0.1 > 10.0.0.2 from local uid 1 uid 2')).toThrow(NfvmError);
  });
});

describe('log lines: UID= GID= of a program\'s socket (nf_log_dump_sk_uid_gid)', () => {
  it('TRACE and LOG --log-uid print the file\'s fsuid and fsgid before MARK; a kernel socket or none prints nothing', () => {
    const p = specPacket(parseSpec('udp 10.0.0.1:4000 > 10.0.0.2:9 mark 0x5 from local uid 1000 gid 2000'));
    expect(logBody(p, '', 'eth0')).toMatch(/PROTO=UDP SPT=4000 DPT=9 LEN=8 UID=1000 GID=2000 MARK=0x5 $/);
    expect(logBody(p, '', 'eth0', NF_LOG_DEFAULT_MASK & ~NF_LOG_UID)).not.toContain('UID=');
    setSocket(p, SK_KERNEL);
    expect(logBody(p, '', 'eth0')).not.toContain('UID=');
  });
});
