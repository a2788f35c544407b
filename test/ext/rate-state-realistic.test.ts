/**
 * The rate and state matches on realistic traffic through a whole node, on
 * the capture's clock, in both engines and both backends: an SSH
 * brute-force blocker with recent (the fail2ban/"ssh throttle" recipe), a
 * UDP flood held back per source by hashlimit, SSH connection rates with
 * limit, a byte quota; and what `replay --save recent|hashlimit` prints
 * (the /proc files).
 */
import { describe, expect, it } from 'vitest';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import type { Backend } from '../../core/netfilter.js';
import { xtProcFiles } from '../../ext/xtstate.js';
import { Conversation, statefulNodeFiles } from '../helpers/flows.js';
import { SYN, ipPacket } from '../helpers/ctpkt.js';

const ENGINES: EngineKind[] = ['vm', 'reference'];
const BACKENDS: Backend[] = ['legacy', 'nft'];

function model(rules: string, engine: EngineKind, backend: Backend): NodeModel {
  return buildNodeModel(buildNode('', statefulNodeFiles(rules)), { engine, backend });
}

const filter = (...rules: string[]) => ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...rules, 'COMMIT', ''].join('\n');

/** A SYN from `src:sport` to the node's sshd. */
const syn = (src: string, sport: number, dport = 22) => ipPacket(src, '10.0.0.1', { proto: 'tcp', sport, dport, flags: SYN });

const dropped = (c: Conversation, ip: Uint8Array, gap: number) => c.send('c', ip, gap).fate.kind === 'dropped';

describe.each(ENGINES)('engine %s', (engine) => {
  describe.each(BACKENDS)('backend %s', (backend) => {
    it('recent: an SSH brute force is blocked after 3 new connections a minute, a normal user is not; the list as /proc prints it', () => {
      const m = model(filter(
        '-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH --rsource',
        '-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 4 --rttl --name SSH --rsource -j DROP',
      ), engine, backend);
      const c = new Conversation(m);
      const attacker: boolean[] = [];
      for (let i = 0; i < 10; i++) attacker.push(dropped(c, syn('10.0.0.2', 40000 + i), 1));
      expect(attacker).toEqual([false, false, false, true, true, true, true, true, true, true]);
      // a user with two connections is let through
      expect([dropped(c, syn('10.0.0.3', 50000), 1), dropped(c, syn('10.0.0.3', 50001), 5)]).toEqual([false, false]);
      // the attacker keeps refreshing its stamps while blocked: 30 s later it is still blocked ...
      expect(dropped(c, syn('10.0.0.2', 41000), 30)).toBe(true);
      // ... and after 61 s of silence fewer than 4 stamps are younger than a minute
      expect(dropped(c, syn('10.0.0.2', 41001), 61)).toBe(false);
      const [file] = xtProcFiles(m.xt, '/proc/net/xt_recent/');
      expect(file!.procPath).toBe('/proc/net/xt_recent/SSH');
      const lines = file!.procLines(m.xt);
      expect(lines).toHaveLength(2);
      // 10.0.0.3's entry is the least recently seen; stamps are jiffies (capture seconds x 250: at 12 s and 17 s)
      expect(lines[0]).toBe('src=10.0.0.3 ttl: 64 last_seen: 4250 oldest_pkt: 2 3000, 4250');
      // --set stamps every SYN, --update stamps it again once it matches: 20 stamps, the last at 108 s
      expect(lines[1]).toBe('src=10.0.0.2 ttl: 64 last_seen: 27000 oldest_pkt: 20 500, 750, 1000, 1250, 1250, 1500, 1500, 1750, 1750, 2000, 2000, 2250, 2250, 2500, 2500, 2750, 2750, 11750, 11750, 27000');
    });

    it('hashlimit: a UDP flood from one source is held to its rate, other sources pass; the table as /proc prints it', () => {
      const m = model(filter(
        '-A FORWARD -p udp -m hashlimit --hashlimit-above 10/sec --hashlimit-burst 20 --hashlimit-mode srcip,dstport --hashlimit-name ddos -j DROP',
      ), engine, backend);
      const c = new Conversation(m);
      let floodPassed = 0;
      let userPassed = 0;
      for (let i = 0; i < 1000; i++) {
        if (!dropped(c, ipPacket('203.0.113.5', '10.1.0.10', { proto: 'udp', sport: 1000 + (i % 50), dport: 53, payload: 30 }), 0.001)) floodPassed++;
        if (i % 250 === 0 && !dropped(c, ipPacket('10.0.0.3', '10.1.0.10', { proto: 'udp', sport: 5353, dport: 53, payload: 30 }), 0)) userPassed++;
      }
      // the burst, then one packet per 25 jiffies (0.1 s): the flood spans jiffies 250..500
      expect(floodPassed).toBe(20 + 10);
      expect(userPassed).toBe(4);
      const files = xtProcFiles(m.xt, '/proc/net/ipt_hashlimit/');
      expect(files.map((f) => f.procPath)).toEqual(['/proc/net/ipt_hashlimit/ddos']);
      const lines = files[0]!.procLines(m.xt);
      expect(lines).toHaveLength(2);
      // expires in seconds, src:sport->dst:dport (srcip,dstport hashed: the rest zero), credit, credit_cap, cost
      // (the expiry is 1 s, the unit of the rate; credits: user2credits(avg * burst) and user2credits(avg), avg = 1e5 us)
      expect(lines[0]).toMatch(/^1 203\.0\.113\.5:0->0\.0\.0\.0:53 \d+ 274877906000000 13743895300000$/);
      expect(lines[1]).toMatch(/^0 10\.0\.0\.3:0->0\.0\.0\.0:53 \d+ 274877906000000 13743895300000$/);
    });

    it('limit: new SSH connections at 3/min with a burst of 3', () => {
      const m = model(filter(
        '-A INPUT -p tcp --syn --dport 22 -m limit --limit 3/min --limit-burst 3 -j ACCEPT',
        '-A INPUT -p tcp --syn --dport 22 -j DROP',
      ), engine, backend);
      const c = new Conversation(m);
      const seen: boolean[] = [];
      for (let i = 0; i < 6; i++) seen.push(!dropped(c, syn('198.51.100.7', 42000 + i), 1));
      // 20 s per token: 5 s after the burst nothing is back; 21 s later one is
      seen.push(!dropped(c, syn('198.51.100.7', 42100), 5), !dropped(c, syn('198.51.100.7', 42101), 21), !dropped(c, syn('198.51.100.7', 42102), 1));
      expect(seen).toEqual([true, true, true, false, false, false, false, true, false]);
    });

    it('quota: 1000 bytes of DNS answers, then none', () => {
      const m = model(filter(
        '-A FORWARD -p udp --sport 53 -m quota --quota 1000 -j ACCEPT',
        '-A FORWARD -p udp --sport 53 -j DROP',
      ), engine, backend);
      const c = new Conversation(m);
      const seen: boolean[] = [];
      // 300-byte answers (28 bytes of headers): three fit, the fourth empties the quota, the small fifth is refused too
      for (const size of [272, 272, 272, 272, 10]) seen.push(!dropped(c, ipPacket('10.1.0.10', '10.0.0.3', { proto: 'udp', sport: 53, dport: 5353, payload: size }), 0.5));
      expect(seen).toEqual([true, true, true, false, false]);
    });
  });
});

describe('node checkpoints (trace --all-branches) restore the matches\' state', () => {
  it('limit credit, quota left, recent list and hashlimit buckets come back as they were', () => {
    const m = model(filter(
      '-A INPUT -p tcp --dport 22 -m recent --set --name R',
      '-A INPUT -p tcp --dport 22 -m recent --rcheck --hitcount 3 --name R -j DROP',
      '-A INPUT -p tcp --dport 22 -m limit --limit 1/hour --limit-burst 3 -m quota --quota 200 -m hashlimit --hashlimit-upto 1/hour --hashlimit-burst 3 --hashlimit-name H -j ACCEPT',
      '-A INPUT -p tcp --dport 22 -j DROP',
    ), 'vm', 'legacy');
    const c = new Conversation(m);
    const seq = () => [0, 1, 2].map((i) => !dropped(c, syn('10.0.0.2', 40000 + i), 1));
    const restore = m.checkpoint()!;
    expect(seq()).toEqual([true, true, false]);
    restore();
    expect(seq()).toEqual([true, true, false]);
    expect(xtProcFiles(m.xt, '/proc/net/xt_recent/')[0]!.procLines(m.xt)).toHaveLength(1);
  });
});
