/**
 * The node's ipsets (vm/ipset.ts, compiler/ipset.ts) and the set match / SET
 * target on them: `ipset save` text read and printed back as the kernel's
 * ipset 7.17 prints it, located errors, the kernel's matching rules (most
 * specific prefix first, nomatch, --return-nomatch, counters, timeouts on
 * the packets' clock, ports with their protocol, ICMP type/code, bitmap
 * ranges, list:set), SET additions seen by later packets, the refusal of a
 * set the node lacks, and the VM ≡ x_tables evaluator property over
 * generated sets, rules and packets (every counter, every fate, the sets
 * after the run).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec } from '../../hooks/input/spec.js';
import { parseIpsetSave, saveIpsets } from '../../compiler/ipset.js';
import { NfvmError } from '../../core/errors.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';
import { fateText } from '../../hooks/path/fate.js';
import { flattenCounters } from '../helpers/kernel.js';
import { runs } from '../helpers/runs.js';

const EX = join(__dirname, '../../examples/node');
const BASE = new Map(['ip-addr.json', 'ip-link.json', 'ip-route.json', 'ip-rule.json', 'sysctl.txt'].map((f) => [f, readFileSync(join(EX, f), 'utf8')]));

function model(rules: string, sets: string, engine: EngineKind = 'vm'): NodeModel {
  const files = new Map(BASE);
  files.set('iptables-save.txt', rules);
  files.set('ipset-save.txt', sets);
  return buildNodeModel(buildNode('', files), { engine });
}

/** `-A INPUT` rules (and mangle PREROUTING ones after `mangle:`) as a ruleset. */
function rulesOf(filter: string[], mangle: string[] = []): string {
  return `*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n${mangle.map((r) => `${r}\n`).join('')}COMMIT\n` +
    `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${filter.map((r) => `${r}\n`).join('')}COMMIT\n`;
}

/** Sends spec lines (arriving on eth0, one second apart unless `at SECONDS` leads the line); returns the fates. */
function send(m: NodeModel, lines: string[]): string[] {
  let t = 0;
  return lines.map((l) => {
    const at = /^at (\d+(?:\.\d+)?) /.exec(l);
    if (at) l = l.slice(at[0].length);
    t = at ? Number(at[1]) : t + 1;
    const spec = parseSpec(`${l} iif eth0 dst-mac 52:54:00:12:34:56`);
    const pkt = specPacket(spec);
    return fateText(m.receive(pkt, 'eth0', { now: t * 1e9 }).fate);
  });
}

function counts(m: NodeModel, chain = 'INPUT'): string[] {
  return [...flattenCounters(m.rulesetWithCounters()!, true)].filter(([k]) => k.startsWith(`filter ${chain} #`)).map(([, c]) => `${c.packets}`);
}

// What `ipset save` printed on Linux 6.18 with ipset 7.17 (initval as the kernel chose it).
const KERNEL_SAVE = `create a hash:ip family inet hashsize 1024 maxelem 65536 timeout 300 counters comment bucketsize 12 initval 0x4140992d
add a 10.0.0.1 timeout 99 packets 5 bytes 300 comment "hi there"
add a 10.0.0.2 timeout 299 packets 0 bytes 0
create b hash:net family inet6 hashsize 2048 maxelem 100 counters skbinfo bucketsize 12 initval 0xe6f092e2
add b 2001:db8:1::/48 nomatch packets 0 bytes 0
add b 2001:db8::/32 packets 0 bytes 0 skbmark 0x10/0xff skbprio 1:2 skbqueue 3
create c hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xb0fe40c9
add c 10.0.0.1,tcp:80
add c 10.0.0.1,sctp:5
add c 10.0.0.1,icmp:echo-request
add c 10.0.0.1,gre:0
add c 10.0.0.1,udp:53
create d bitmap:ip range 10.0.0.0-10.0.0.255 netmask 28
add d 10.0.0.16
create e bitmap:ip,mac range 10.0.0.0-10.0.0.10 timeout 0
add e 10.0.0.3,AA:BB:CC:DD:EE:FF timeout 0
add e 10.0.0.4 timeout 0
create f bitmap:port range 1-1000
add f 22
add f 80
create h hash:net,iface family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xc48d50b1
add h 10.0.0.0/8,physdev:eth1
add h 10.0.0.0/8,eth0
create l hash:ip family inet hashsize 1024 maxelem 65536 netmask 24 bucketsize 12 initval 0xb679379b
add l 10.1.2.0
create n hash:ip,port,ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xb21f1ffd
add n 1.1.1.1,tcp:80,2.2.2.2
create o hash:ip,port,net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x27b909ae
add o ::1,ipv6-icmp:1/200,::/1
add o ::1,ipv6-icmp:echo-request,::/1
add o ::1,udplite:7,::/1
add o 2001:db8::1,tcp:80,2001:db8::/64
create p hash:net,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x4eb44a23
add p 1.1.0.0/16,tcp:80
create c2 bitmap:ip range 10.0.0.0-10.0.255.255 netmask 24 timeout 5 counters comment skbinfo
add c2 10.0.3.0 timeout 4 packets 0 bytes 0
create g list:set size 8
add g b
add g a
create e2 list:set size 4 timeout 3 counters comment skbinfo
add e2 a timeout 0 packets 0 bytes 0
add e2 c2 timeout 2 packets 3 bytes 4 comment "x"
`;

describe('ipset save text', () => {
  it('reads and prints back what the kernel printed, every type and extension', () => {
    const store = parseIpsetSave(KERNEL_SAVE, 'ipset-save.txt');
    expect(saveIpsets(store)).toBe(KERNEL_SAVE);
    // the types this kernel was built without, as ipset 7.17 prints them
    const more = `create m hash:ip,mark family inet hashsize 1024 maxelem 65536 markmask 0x000000ff bucketsize 12
add m 1.2.3.4,0x00000012
create mac hash:mac hashsize 1024 maxelem 65536 bucketsize 12
add mac 00:11:22:33:44:55
create nn hash:net,net family inet hashsize 1024 maxelem 65536 bucketsize 12
add nn 10.0.0.0/8,192.168.0.0/16
create npn hash:net,port,net family inet hashsize 1024 maxelem 65536 bucketsize 12
add npn 10.0.0.0/8,tcp:80,20.0.0.0/16
`;
    expect(saveIpsets(parseIpsetSave(more, 's'))).toBe(more);
  });

  it('expands ranges on add lines as ipset restore does', () => {
    const s = parseIpsetSave('create r hash:ip\nadd r 10.0.0.0/30\nadd r 10.0.1.1-10.0.1.2\ncreate p hash:ip,port\nadd p 10.0.0.1,udp:53-54\n', 's');
    expect(saveIpsets(s).split('\n').filter((l) => l.startsWith('add'))).toEqual([
      'add r 10.0.0.0', 'add r 10.0.0.1', 'add r 10.0.0.2', 'add r 10.0.0.3', 'add r 10.0.1.1', 'add r 10.0.1.2', 'add p 10.0.0.1,udp:53', 'add p 10.0.0.1,udp:54',
    ]);
  });

  it.each([
    ['create a hash:ip\nadd a 1.2.3.999\n', 'f:2:7: Syntax error: cannot parse 1.2.3.999: resolving to IPv4 address failed'],
    ['create a hash:ip\nadd b 1.2.3.4\n', 'f:2:5: The set with the given name does not exist'],
    ['create a hash:bogus\n', 'f:1:10: Syntax error: typename \'hash:bogus\' is unknown'],
    ['create a hash:ip\ncreate a hash:net\n', 'f:2:8: Set cannot be created: set with the same name already exists'],
    ['create a hash:ip\nadd a 1.2.3.4 timeout 5\n', 'f:2:15: Syntax error: the set has no timeout support'],
    ['create a hash:ip comment\nadd a 1.2.3.4 comment "open\n', 'f:2:23: unterminated quoted string'],
    ['create a bitmap:ip range 10.0.0.0/24\nadd a 10.0.1.1\n', 'f:2:7: Element is out of the range of the set'],
    ['create a hash:ip,port\nadd a 1.2.3.4,gre:5\n', 'f:2:7: Syntax error: cannot parse gre:5: Syntax error: port must be zero for this protocol'],
    ['create a hash:net\nadd a 10.0.0.0/8 nomatch\ncreate b hash:ip\nadd b 1.2.3.4 nomatch\n', "f:4:15: Syntax error: argument 'nomatch' is not supported by hash:ip"],
    ['flush a\n', 'f:1:1: unknown command flush'],
    ['create l list:set\ncreate m list:set\nadd l m\n', 'f:3:7: Sets with list:set type cannot be added to the set.'],
  ])('%j: a located error', (text, msg) => {
    let err: unknown;
    try {
      parseIpsetSave(text, 'f');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NfvmError);
    expect((err as NfvmError).message).toBe(msg);
  });
});

describe('the set match and the SET target on the node', () => {
  it.each(['vm', 'reference'] as const)('%s: most specific prefix first, nomatch, --return-nomatch, inversion', (engine) => {
    const sets = 'create n hash:net counters\nadd n 10.0.0.0/8\nadd n 10.1.0.0/16 nomatch\nadd n 10.1.2.0/24\n';
    const m = model(rulesOf([
      '-A INPUT -m set --match-set n src', '-A INPUT -m set --match-set n src --return-nomatch', '-A INPUT -m set ! --match-set n src',
    ]), sets, engine);
    send(m, ['udp 10.9.9.9:1 > 192.168.1.10:53', 'udp 10.1.9.9:1 > 192.168.1.10:53', 'udp 10.1.2.3:1 > 192.168.1.10:53', 'udp 11.0.0.1:1 > 192.168.1.10:53']);
    expect(counts(m)).toEqual(['2', '1', '2']);
    // every test that reached an element counted on it, nomatch ones included (3 rules, each packet)
    expect(saveIpsets(m.ipsets)).toContain('add n 10.1.0.0/16 nomatch packets 3 bytes 84');
  });

  it.each(['vm', 'reference'] as const)('%s: ports with their protocol, ICMP type/code, later fragments have no port', (engine) => {
    const sets = 'create s hash:ip,port\nadd s 192.168.1.10,udp:53\nadd s 192.168.1.10,icmp:echo-request\nadd s 192.168.1.10,gre:0\n';
    const m = model(rulesOf(['-A INPUT -m set --match-set s dst,dst']), sets, engine);
    send(m, [
      'udp 10.0.0.2:1 > 192.168.1.10:53', 'tcp 10.0.0.2:1 > 192.168.1.10:53 syn', 'icmp 10.0.0.2 > 192.168.1.10 echo-request',
      'icmp 10.0.0.2 > 192.168.1.10 echo-reply', 'ip proto 47 10.0.0.2 > 192.168.1.10', 'udp 10.0.0.2 > 192.168.1.10 frag offset 8',
    ]);
    expect(counts(m)).toEqual(['3']);
  });

  it.each(['vm', 'reference'] as const)('%s: counters compared after the update, timeouts on the packets\' clock', (engine) => {
    const sets = 'create t hash:ip timeout 10 counters\nadd t 10.0.0.2 timeout 5\nadd t 10.0.0.3\n';
    const m = model(rulesOf(['-A INPUT -m set --match-set t src --packets-gt 1', '-A INPUT -m set --match-set t src ! --update-counters']), sets, engine);
    const fates = send(m, ['at 1 udp 10.0.0.2:1 > 192.168.1.10:9', 'at 2 udp 10.0.0.2:1 > 192.168.1.10:9', 'at 7 udp 10.0.0.2:1 > 192.168.1.10:9', 'at 8 udp 10.0.0.3:1 > 192.168.1.10:9']);
    expect(fates).toHaveLength(4);
    // 10.0.0.2: 1st packet 1 (no), 2nd 2 (yes); gone at 7 s (5 s after the first packet); 10.0.0.3: 1 (no)
    expect(counts(m)).toEqual(['1', '3']);
    expect(saveIpsets(m.ipsets)).toBe('create t hash:ip family inet hashsize 1024 maxelem 65536 timeout 10 counters bucketsize 12\nadd t 10.0.0.3 timeout 3 packets 1 bytes 28\n');
  });

  it.each(['vm', 'reference'] as const)('%s: SET --add-set is seen by later packets; --del-set; --exist refreshes; --map-set sets the mark', (engine) => {
    const sets = 'create seen hash:ip,port timeout 100 counters\ncreate gone hash:ip\nadd gone 10.0.0.7\ncreate skb hash:ip skbinfo\nadd skb 10.0.0.2 skbmark 0x10/0xff\n';
    const m = model(rulesOf([
      '-A INPUT -m set --match-set seen src,dst', '-A INPUT -j SET --add-set seen src,dst --timeout 30', '-A INPUT -p tcp -j SET --add-set seen src,dst --exist',
      '-A INPUT -j SET --del-set gone src', '-A INPUT -m set --match-set gone src', '-A INPUT -m mark --mark 0x10',
    ], ['-A PREROUTING -j SET --map-set skb src --map-mark']), sets, engine);
    send(m, ['at 1 udp 10.0.0.2:1 > 192.168.1.10:9', 'at 2 udp 10.0.0.2:1 > 192.168.1.10:9', 'at 3 tcp 10.0.0.7:5 > 192.168.1.10:80 syn', 'at 4 tcp 10.0.0.7:5 > 192.168.1.10:80 syn']);
    expect(counts(m)).toEqual(['2', '4', '2', '4', '0', '2']);
    const after = saveIpsets(m.ipsets);
    expect(after).toContain('add seen 10.0.0.2,udp:9 timeout 27 packets 2 bytes 56');
    // --exist re-adds: the counters start again at the adding packet (packets 1) and the set's default timeout
    expect(after).toContain('add seen 10.0.0.7,tcp:80 timeout 100 packets 1 bytes 40');
    expect(after).not.toContain('add gone');
  });

  it.each(['vm', 'reference'] as const)('%s: bitmap ranges and netmask, bitmap:port only for TCP and UDP, list:set', (engine) => {
    const sets = 'create bm bitmap:ip range 10.0.0.0/24 netmask 30\nadd bm 10.0.0.4\ncreate bp bitmap:port range 1-100\nadd bp 53\ncreate h hash:ip\nadd h 10.0.0.9\ncreate l list:set\nadd l bm\nadd l h\n';
    const m = model(rulesOf(['-A INPUT -m set --match-set bm src', '-A INPUT -m set --match-set bp dst', '-A INPUT -m set --match-set l src']), sets, engine);
    send(m, ['udp 10.0.0.6:1 > 192.168.1.10:53', 'udp 10.0.0.8:1 > 192.168.1.10:54', 'ip proto 132 10.0.0.9 > 192.168.1.10', 'udp 10.0.1.5:1 > 192.168.1.10:53']);
    expect(counts(m)).toEqual(['1', '2', '2']);
  });

  it.each(['vm', 'reference'] as const)('%s: hash:net,iface stops at the first prefix length holding the net with another interface (IP_SET_HASH_WITH_MULTI)', (engine) => {
    // the kernel's bucket of a net holds all its interfaces; data_equal counts `multi` for each, a failed match resets it
    const sets = 'create h hash:net,iface counters\nadd h 10.0.0.0/24,cni0\nadd h 10.0.0.0/8,eth0\nadd h 10.2.0.0/24,eth0\nadd h 10.2.0.0/24,cni0\nadd h 10.3.0.0/24,cni0\nadd h 10.3.0.0/24,eth0\n';
    const m = model(rulesOf(['-A INPUT -m set --match-set h src,src --packets-lt 2']), sets, engine);
    send(m, ['udp 10.0.0.5:1 > 192.168.1.10:53', 'udp 10.1.0.5:1 > 192.168.1.10:53', 'udp 10.2.0.5:1 > 192.168.1.10:53', 'udp 10.2.0.5:1 > 192.168.1.10:53', 'udp 10.3.0.5:1 > 192.168.1.10:53', 'udp 10.3.0.5:1 > 192.168.1.10:53']);
    // (the element's counter is updated before --packets-lt compares it)
    // 10.0.0.5: the /24 holds cni0 only: the walk stops there, /8 eth0 is not reached
    // 10.1.0.5: /8 eth0 matches (packets 1 < 2)
    // 10.2.0.5 twice: /24 eth0 matches, then fails (packets 2); cni0 follows it in the bucket: stop
    // 10.3.0.5 twice: /24 eth0 matches, then fails; it is the last of its bucket: the walk goes on to /8 (packets 2: fails too)
    expect(counts(m)).toEqual(['3']);
    const after = saveIpsets(m.ipsets);
    expect(after).toContain('add h 10.0.0.0/8,eth0 packets 2 bytes 56');
    expect(after).toContain('add h 10.2.0.0/24,eth0 packets 2 bytes 56');
    expect(after).toContain('add h 10.0.0.0/24,cni0 packets 0 bytes 0');
  });

  it.each(['vm', 'reference'] as const)('%s: bitmap:ip,mac keeps an unfilled element\'s timeout as stored and starts it with the MAC (bitmap_ipmac_add_timeout)', (engine) => {
    const sets = 'create pm bitmap:ip,mac range 10.0.0.0/24 timeout 3600\nadd pm 10.0.0.2 timeout 100\nadd pm 10.0.0.3 timeout 50\nadd pm 10.0.0.4 timeout 70\n';
    const m = model(rulesOf(['-A INPUT -s 10.0.0.2 -j SET --add-set pm src,src', '-A INPUT -s 10.0.0.3 -j SET --add-set pm src,src --timeout 30']), sets, engine);
    send(m, ['at 10 udp 10.0.0.2:1 > 192.168.1.10:9 src-mac 02:00:00:00:00:01', 'at 10 udp 10.0.0.3:1 > 192.168.1.10:9 src-mac 02:00:00:00:00:03', 'at 1000 udp 10.0.0.9:1 > 192.168.1.10:9']);
    // (the set's clock starts at the first packet) 10.0.0.2: no timeout given (the set's default): the stored 100 s start then;
    // 10.0.0.3: --timeout 30 starts then; 10.0.0.4: never filled, its 70 s do not run
    const at = (t: number) => {
      m.ipsets.nowMs = t * 1000;
      return saveIpsets(m.ipsets).split('\n').filter((l) => l.startsWith('add'));
    };
    expect(at(20)).toEqual(['add pm 10.0.0.2,02:00:00:00:00:01 timeout 80', 'add pm 10.0.0.3,02:00:00:00:00:03 timeout 10', 'add pm 10.0.0.4 timeout 70']);
    expect(at(1000)).toEqual(['add pm 10.0.0.4 timeout 70']);
  });

  it('a rule naming a set the node lacks is refused as iptables refuses it', () => {
    expect(() => model(rulesOf(['-A INPUT -m set --match-set nope src']), 'create s hash:ip\n')).toThrow(/^iptables-save.txt:\d+:\d+: Set nope doesn't exist\.$/);
    expect(() => model(rulesOf(['-A INPUT -j SET --add-set nope src']), '')).toThrow(/Set nope doesn't exist\./);
  });
});

describe('the bundled command', () => {
  let cli = '';
  let dir = '';
  beforeAll(async () => {
    cli = await buildCli();
    dir = mkdtempSync(join(tmpdir(), 'nfvm-ipset-cli-'));
  }, 120_000);

  it('save --ipset refuses a rule naming a missing set, located, exit 2, nothing on stdout', () => {
    writeFileSync(join(dir, 'sets'), 'create bl hash:ip\n');
    writeFileSync(join(dir, 'rules'), '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set bl src -j DROP\n-A INPUT -m set --match-set foo src -j DROP\nCOMMIT\n');
    const r = runCli(cli, ['save', join(dir, 'rules'), '--ipset', join(dir, 'sets')]);
    expect([r.code, r.out, r.err.trim()]).toEqual([2, '', `${join(dir, 'rules')}:4:10: Set foo doesn't exist.`]);
    // without the sets nothing says which exist: the rule is kept
    expect(runCli(cli, ['save', join(dir, 'rules')]).code).toBe(0);
    const bad = runCli(cli, ['save', join(dir, 'rules'), '--ipset', join(dir, 'rules')]);
    expect([bad.code, bad.err.trim()]).toEqual([2, `${join(dir, 'sets').replace('sets', 'rules')}:1:1: unknown command *filter`]);
  });

  it('replay --save ipset prints the sets after the run; --ipset gives them to a snapshot', () => {
    const snap = join(dir, 'snap');
    cpSync(EX, snap, { recursive: true });
    writeFileSync(join(snap, 'iptables-save.txt'), rulesOf(['-A INPUT -m set --match-set bl src -j DROP', '-A INPUT -j SET --add-set seen src,dst']));
    writeFileSync(join(snap, 'ipset-save.txt'), 'create bl hash:net counters\nadd bl 10.0.0.0/24\ncreate seen hash:ip,port counters\n');
    const frames = ['udp 10.0.0.2:5 > 192.168.1.10:53', 'udp 10.0.1.2:5 > 192.168.1.10:53', 'tcp 10.0.1.2:5 > 192.168.1.10:22 syn']
      .map((l) => ({ data: encodeSpec(parseSpec(`${l} iif eth0 dst-mac 52:54:00:12:34:56`)).data }));
    writeFileSync(join(dir, 'f.pcap'), writePcap(frames, { linktype: LINKTYPE_ETHERNET }));
    const r = runCli(cli, ['replay', snap, '--pcap', join(dir, 'f.pcap'), '--iface', 'eth0', '--save', 'ipset']);
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toBe([
      'create bl hash:net family inet hashsize 1024 maxelem 65536 counters bucketsize 12', 'add bl 10.0.0.0/24 packets 1 bytes 28',
      'create seen hash:ip,port family inet hashsize 1024 maxelem 65536 counters bucketsize 12', 'add seen 10.0.1.2,udp:53 packets 1 bytes 28',
      'add seen 10.0.1.2,tcp:22 packets 1 bytes 40', '',
    ].join('\n'));
    writeFileSync(join(dir, 'other'), 'create bl hash:net\ncreate seen hash:ip\n');
    const o = runCli(cli, ['replay', snap, '--pcap', join(dir, 'f.pcap'), '--iface', 'eth0', '--save', 'ipset', '--ipset', join(dir, 'other')]);
    expect(o.out).toBe('create bl hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12\ncreate seen hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12\nadd seen 10.0.0.2\nadd seen 10.0.1.2\n');
    writeFileSync(join(dir, 'none'), 'create other hash:ip\n');
    const n = runCli(cli, ['replay', snap, '--pcap', join(dir, 'f.pcap'), '--iface', 'eth0', '--ipset', join(dir, 'none')]);
    expect([n.code, n.out, n.err.trim()]).toEqual([2, '', `${join(snap, 'iptables-save.txt')}:12:10: Set bl doesn't exist.`]);
  });
});

// --- VM ≡ x_tables evaluator -------------------------------------------------

const IPS = ['10.0.0.2', '10.0.0.3', '10.0.1.9', '192.168.1.10', '203.0.113.7'];
const setArb = fc.record({
  type: fc.constantFrom('hash:ip', 'hash:net', 'hash:ip,port', 'hash:net,port', 'hash:ip,port,ip', 'hash:ip,port,net', 'hash:net,net', 'hash:ip,mark', 'bitmap:ip', 'bitmap:port', 'hash:net,iface'),
  timeout: fc.boolean(),
  counters: fc.boolean(),
  entries: fc.array(fc.tuple(fc.constantFrom(...IPS), fc.constantFrom(8, 16, 24, 32), fc.constantFrom('tcp:80', 'udp:53', 'tcp:22', 'icmp:echo-request'), fc.boolean(), fc.constantFrom(0, 3, 50)), { maxLength: 5 }),
});

function setText(name: string, s: typeof setArb extends fc.Arbitrary<infer T> ? T : never): string {
  const opts = `${s.timeout ? ' timeout 20' : ''}${s.counters ? ' counters' : ''}`;
  const head = s.type === 'bitmap:ip' ? ` range 10.0.0.0/16${opts}` : s.type === 'bitmap:port' ? ` range 0-1024${opts}` : opts;
  const lines = [`create ${name} ${s.type}${head}`];
  const seen = new Set<string>();
  for (const [ip, cidr, port, nomatch, t] of s.entries) {
    const net = `${ip}/${cidr}`;
    const el: Record<string, string> = {
      'hash:ip': ip, 'hash:net': net, 'hash:ip,port': `${ip},${port}`, 'hash:net,port': `${net},${port}`, 'hash:ip,port,ip': `${ip},${port},${ip}`,
      'hash:ip,port,net': `${ip},${port},${net}`, 'hash:net,net': `${net},${net}`, 'hash:ip,mark': `${ip},${cidr}`,
      'bitmap:ip': ip.startsWith('10.0.') ? ip : '10.0.0.2', 'bitmap:port': port.startsWith('icmp') ? '80' : port.slice(4), 'hash:net,iface': `${net},eth0`,
    };
    const e = el[s.type]!;
    const canNomatch = s.type.includes('net');
    const key = parseIpsetSave(`${lines[0]}\nadd ${name} ${e}\n`, 'k').sets[0]!.n;
    if (seen.has(e) || key === 0) continue;
    // a hash:net element is stored masked: its printed form is the key
    const stored = saveIpsets(parseIpsetSave(`${lines[0]}\nadd ${name} ${e}\n`, 'k')).split('\n')[1]!.split(' ')[2]!;
    if (seen.has(stored)) continue;
    seen.add(e);
    seen.add(stored);
    lines.push(`add ${name} ${e}${canNomatch && nomatch ? ' nomatch' : ''}${s.timeout && t ? ` timeout ${t}` : ''}`);
  }
  return lines.join('\n');
}

const DIRS = ['src', 'dst', 'src,dst', 'dst,src', 'src,src,dst', 'dst,dst,src'];
const ruleArb = fc.oneof(
  fc.record({ k: fc.constant('match' as const), set: fc.nat(2), dirs: fc.constantFrom(...DIRS), inv: fc.boolean(), flags: fc.constantFrom('', ' --return-nomatch', ' ! --update-counters', ' --packets-gt 1', ' --bytes-lt 100', ' ! --packets-eq 2'), verdict: fc.constantFrom('', ' -j DROP', ' -j ACCEPT', ' -j RETURN') }),
  fc.record({ k: fc.constant('target' as const), set: fc.nat(2), dirs: fc.constantFrom(...DIRS), op: fc.constantFrom('--add-set', '--del-set', '--add-set+exist', '--add-set+timeout') }),
);

function ruleText(r: typeof ruleArb extends fc.Arbitrary<infer T> ? T : never): string {
  if (r.k === 'match') return `-A INPUT -m set ${r.inv ? '! ' : ''}--match-set s${r.set} ${r.dirs}${r.flags}${r.verdict}`;
  const [op, extra] = r.op.split('+');
  return `-A INPUT -j SET ${op} s${r.set} ${r.dirs}${extra === 'exist' ? ' --exist' : extra === 'timeout' ? ' --timeout 4' : ''}`;
}

const pktArb = fc.record({
  proto: fc.constantFrom('tcp', 'udp', 'icmp'),
  src: fc.constantFrom(...IPS, '10.0.0.77'),
  dst: fc.constantFrom('192.168.1.10', '192.168.1.10', '10.0.0.2'),
  sport: fc.constantFrom(22, 53, 80),
  dport: fc.constantFrom(22, 53, 80),
  dt: fc.constantFrom(0.1, 1, 4),
  frag: fc.constantFrom('', '', '', ' frag offset 8'),
});

describe('VM ≡ x_tables evaluator on the node\'s sets', () => {
  it('generated sets, rules and packets: the same fates, counters and sets after the run', () => {
    let matched = 0;
    let changed = 0;
    fc.assert(
      fc.property(fc.array(setArb, { minLength: 3, maxLength: 3 }), fc.array(ruleArb, { minLength: 1, maxLength: 8 }), fc.array(pktArb, { minLength: 1, maxLength: 12 }), (sets, rules, pkts) => {
        const setsText = `${sets.map((s, i) => setText(`s${i}`, s)).join('\n')}\n`;
        const rs = rulesOf(rules.map(ruleText));
        let t = 0;
        const lines = pkts.map((p) => {
          t += p.dt;
          const ports = p.proto !== 'icmp' && p.frag === '';
          const body = `${p.proto} ${p.src}${ports ? `:${p.sport}` : ''} > ${p.dst}${ports ? `:${p.dport}` : ''}${p.proto === 'tcp' && !p.frag ? ' syn' : ''}${p.proto === 'icmp' && !p.frag ? ' echo-request' : ''}${p.frag}`;
          return `at ${t.toFixed(1)} ${body}`;
        });
        const out = (['vm', 'reference'] as const).map((engine) => {
          const m = model(rs, setsText, engine);
          const fates = send(m, lines);
          return { fates, counters: counts(m), sets: saveIpsets(m.ipsets) };
        });
        expect(out[0]).toEqual(out[1]);
        if (out[0]!.counters.some((c) => c !== '0')) matched++;
        if (out[0]!.sets !== saveIpsets(parseIpsetSave(setsText, 's'))) changed++;
      }),
      { numRuns: runs(150) },
    );
    // the generators reach rules that count and runs that change the sets
    expect(matched).toBeGreaterThan(runs(150) / 2);
    expect(changed).toBeGreaterThan(runs(150) / 10);
  });
});
