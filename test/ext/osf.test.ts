/**
 * The osf match (ext/osf.ts, ext/match/osf.ts): pf.os read as nfnl_osf
 * loads it, and nf_osf_match() over the fingerprints, through the node
 * (the snapshot's pf.os) on both engines: window multiples of the MSS and
 * MTU, modulo and plain windows, the TTL levels, the don't-fragment lists,
 * option order and size, --log comparing every genre, and the `!` the
 * kernel stores but never reads. Without pf.os the module is refused.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parsePfOs, OSF_WSS_MODULO, OSF_WSS_MSS, OSF_WSS_MTU, OSF_WSS_PLAIN } from '../../ext/osf.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import { NfvmError } from '../../core/errors.js';

/** Fingerprints written for these tests, in pf.os syntax. */
const PF_OS = `# window:ttl:df:size:options:genre:version:subtype:description
S4:64:1:60:M*,S,T,N,W7:\tLinux:3.x::Linux, window 4 MSS
T4:64:1:60:M*,S,T,N,W7:\tLinux:mtu::Linux, window 4 MTU
65535:128:1:52:M*,N,W8,N,N,S:\tWindows:10::Windows, plain window
%8192:128:1:48:M*,N,N,S:\t@Windows:XP::Windows, window modulo 8192
0:255:0:44:M*:\tSolaris:nodf::any window, no DF
S4:64:1:60:M*,S,T,N,W7:\tLinux:3.x::a duplicate of the first line
`;

describe('pf.os as nfnl_osf loads it', () => {
  it('splits the lines into the two don\'t-fragment lists, in order, without duplicates', () => {
    const f = parsePfOs(PF_OS, 'pf.os');
    expect(f.size).toBe(5);
    expect(f.lists[1].map((x) => `${x.genre}:${x.version}`)).toEqual(['Linux:3.x', 'Linux:mtu', 'Windows:10', 'Windows:XP']);
    expect(f.lists[0].map((x) => x.genre)).toEqual(['Solaris']);
    const [linux, mtu, win, xp] = f.lists[1] as [typeof f.lists[1][0], typeof f.lists[1][0], typeof f.lists[1][0], typeof f.lists[1][0]];
    expect([linux.wssWc, linux.wssVal, linux.ttl, linux.ss]).toEqual([OSF_WSS_MSS, 4, 64, 60]);
    expect([mtu.wssWc, win.wssWc, win.wssVal, xp.wssWc, xp.wssVal]).toEqual([OSF_WSS_MTU, OSF_WSS_PLAIN, 65535, OSF_WSS_MODULO, 8192]);
    // kinds and lengths the kernel compares: MSS 2/4, SACK permitted 4/2, timestamps 8/10, NOP 1/1, window scale 3/3
    expect(linux.kinds).toEqual([2, 4, 8, 1, 3]);
    expect(linux.optsize).toBe(20);
    // a leading @ of the genre is dropped
    expect(xp.genre).toBe('Windows');
  });

  it('refuses a line without exactly eight colons, at its line; skips comments and blank lines; drops the last character of a last line without a newline', () => {
    expect(() => parsePfOs('# c\n\nS4:64:1:60:M*:Linux:3.x:Linux\n', 'pf.os')).toThrow(NfvmError);
    try {
      parsePfOs('# c\n\nS4:64:1:60:M*:Linux:3.x:Linux\n', 'pf.os');
    } catch (e) {
      expect((e as NfvmError).message).toMatch(/^pf\.os:3:1: wrong input line: 7 colons/);
    }
    // fgets() gives the last line without its newline, and nfnl_osf cuts one character anyway
    expect(parsePfOs('S4:64:1:60:M*:Linux:3.x:abc:d', 'pf.os').lists[1][0]!.subtype).toBe('abc');
    expect(parsePfOs('S4:64:1:60:M*:Linux:3.x:abc:\n', 'pf.os').size).toBe(1);
    // ... so a last line ending in its eighth colon, without a newline, has seven
    expect(() => parsePfOs('S4:64:1:60:M*:Linux:3.x:abc:', 'pf.os')).toThrow(/pf\.os:1:1: wrong input line: 7 colons/);
  });
});

const FIX = join(import.meta.dirname, '../path/fixtures/node');
const base = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));

/** A filter INPUT chain counting each osf rule, on the node of test/path with `pf` as its pf.os. */
function model(rules: string[], pf: string | undefined, engine: EngineKind) {
  const files = new Map(base);
  files.set('iptables-save.txt', `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules.map((r) => `-A INPUT -p tcp ${r}`).join('\n')}\nCOMMIT\n`);
  if (pf !== undefined) files.set('pf.os', pf);
  return buildNodeModel(buildNode('', files), { engine });
}

/** Which of the rules the packet matched (1-based), in order. */
function matched(m: ReturnType<typeof model>, spec: string): number[] {
  m.setTrace(true);
  const { pkt, iif, ct } = specInput(m, parseSpec(spec));
  const r = m.receive(pkt, iif, { ct });
  return r.steps.flatMap((s) => (s.kind === 'trace' && s.table === 'filter' && s.type === 'rule' ? [s.num] : []));
}

const SYN = (o: string) => `tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0 ${o}`;
const LINUX_OPTS = 'tcpopt mss=1460,sackok,ts,nop,wscale=7';

describe.each(['vm', 'interp', 'reference'] as const)('the osf match through the node (%s engine)', (engine) => {
  const RULES = [
    '-m osf --genre Linux', // 1
    '-m osf --genre Windows', // 2
    '-m osf --genre Linux --ttl 1', // 3
    '-m osf --genre Linux --ttl 2', // 4
    '-m osf ! --genre Linux', // 5: the kernel never reads the invert flag
    '-m osf --genre Nothing --log 1', // 6: with --log every genre is compared
    '-m osf --genre Solaris', // 7
  ];
  const m = model(RULES, PF_OS, engine);

  it('a Linux SYN: window 4 x its MSS, or 4 x the MTU; the TTL levels', () => {
    expect(matched(m, SYN(`win 5840 df ttl 64 ${LINUX_OPTS}`))).toEqual([1, 3, 4, 5, 6]);
    expect(matched(m, SYN(`win 6000 df ttl 64 ${LINUX_OPTS}`))).toEqual([1, 3, 4, 5, 6]);
    // a smart modem's MSS: 4 x 1448
    expect(matched(m, SYN(`win 5792 df ttl 64 ${LINUX_OPTS}`))).toEqual([1, 3, 4, 5, 6]);
    // a hop away: only --ttl 1 (less or equal) and --ttl 2 (no check)
    expect(matched(m, SYN(`win 5840 df ttl 63 ${LINUX_OPTS}`))).toEqual([3, 4]);
    // more than the initial TTL: no check only
    expect(matched(m, SYN(`win 5840 df ttl 65 ${LINUX_OPTS}`))).toEqual([4]);
  });

  it('the list of the don\'t-fragment bit, the options in order and size, the SYN bit, the window', () => {
    expect(matched(m, SYN(`win 5840 ttl 64 ${LINUX_OPTS}`))).toEqual([]);
    expect(matched(m, SYN('win 5840 df ttl 64 tcpopt sackok,mss=1460,ts,nop,wscale=7'))).toEqual([]);
    expect(matched(m, SYN('win 5840 df ttl 64 tcpopt mss=1460,sackok,ts,nop'))).toEqual([]);
    expect(matched(m, `tcp 10.0.0.2:40000 > 10.0.0.1:22 ack iif eth0 win 5840 df ttl 64 ${LINUX_OPTS}`)).toEqual([]);
    expect(matched(m, `tcp 10.0.0.2:40000 > 10.0.0.1:22 syn,ack iif eth0 win 5840 df ttl 64 ${LINUX_OPTS}`)).toEqual([1, 3, 4, 5, 6]);
    expect(matched(m, SYN(`win 5841 df ttl 64 ${LINUX_OPTS}`))).toEqual([]);
  });

  it('plain and modulo windows (Windows), and a list without DF (any window)', () => {
    expect(matched(m, SYN('win 65535 df ttl 128 tcpopt mss=1460,nop,wscale=8,nop,nop,sackok'))).toEqual([2, 6]);
    expect(matched(m, SYN('win 16384 df ttl 128 tcpopt mss=1460,nop,nop,sackok'))).toEqual([2, 6]);
    expect(matched(m, SYN('win 16385 df ttl 128 tcpopt mss=1460,nop,nop,sackok'))).toEqual([]);
    expect(matched(m, SYN('win 1 ttl 255 tcpopt mss=536'))).toEqual([6, 7]);
  });
});

describe('the osf match without fingerprints', () => {
  it('is refused at its rule when the snapshot has no pf.os, and matches nothing with an empty one (as the kernel with none loaded)', () => {
    expect(() => model(['-m osf --genre Linux'], undefined, 'vm')).toThrow(/iptables-save\.txt:5:\d+: match osf: needs the OS fingerprints/);
    expect(() => model(['-m osf --genre Linux'], undefined, 'reference')).toThrow(/match osf: needs the OS fingerprints/);
    const m = model(['-m osf --genre Linux', '-m osf ! --genre Linux'], '# none\n', 'vm');
    expect(matched(m, SYN(`win 5840 df ttl 64 ${LINUX_OPTS}`))).toEqual([]);
  });

  it('a damaged pf.os is a located error of the snapshot', () => {
    expect(() => model(['-m osf --genre Linux'], 'S4:64:1:60:M*\n', 'vm')).toThrow(/pf\.os:1:1: wrong input line/);
  });
});
