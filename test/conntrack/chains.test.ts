/**
 * The conntrack table's hash chains and NAT bysource chains stay consistent
 * (NfConntrack.checkChains: each linked node once, in the bucket of its
 * hash, its previous node behind it; a live conntrack linked, a dead one
 * not) through random conversations on a node with a small table: new
 * connections past nf_conntrack_max (early drop), answers, resets, expiry
 * killed by lookups that pass it and by gc, masquerade and DNAT (the
 * bysource chains), repeated 5-tuples. The conversations run through the
 * node as replay runs them.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Conversation, Tcp, udp } from '../helpers/flows.js';
import { statefulModel } from '../helpers/flows.js';
import { runs } from '../helpers/runs.js';

const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
-A POSTROUTING -o eth1 -s 10.0.0.128/25 -j MASQUERADE
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
`;

const step = fc.record({
  kind: fc.constantFrom('tcp', 'tcp-rst', 'syn', 'udp', 'out', 'dnat', 'wait'),
  client: fc.integer({ min: 0, max: 5 }),
  port: fc.integer({ min: 0, max: 7 }),
  server: fc.integer({ min: 0, max: 2 }),
  wait: fc.constantFrom(0.01, 1, 31, 125),
});

const CLIENTS = ['10.0.0.2', '10.0.0.3', '10.0.0.130', '10.0.0.131', '203.0.113.7', '198.51.100.7'];
const SERVERS = ['10.1.0.2', '10.1.0.3', '10.1.0.4'];

describe('conntrack hash chains', () => {
  it('random conversations on a small table: the chains stay consistent after every packet', () => {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), fc.constantFrom(1, 2, 3, 8), (steps, buckets) => {
      const model = statefulModel(RULES, 'vm', `net.netfilter.nf_conntrack_buckets = ${buckets}\nnet.netfilter.nf_conntrack_max = 4\n`);
      const ct = model.conntrackModule!.ct;
      const c = new Conversation(model);
      for (const s of steps) {
        const cl = CLIENTS[s.client]!;
        const sv = SERVERS[s.server]!;
        const sport = 40000 + s.port;
        if (s.kind === 'tcp') new Tcp(c, 'c', cl, sport, sv, 80).handshake().data().sack().fin().sfin().ack();
        else if (s.kind === 'tcp-rst') new Tcp(c, 'c', cl, sport, sv, 443).handshake().srst();
        else if (s.kind === 'syn') new Tcp(c, 'c', cl, sport, sv, 22).syn();
        else if (s.kind === 'udp') udp(c, 'c', cl, sport, sv, 53, 1);
        else if (s.kind === 'out') udp(c, 's', sv, sport, cl, 123, 1);
        else if (s.kind === 'dnat') new Tcp(c, 'c', cl, sport, '10.0.0.1', 8080).handshake().data().sack();
        else c.t += s.wait;
        const why = ct.checkChains();
        if (why !== undefined) throw new Error(`after ${s.kind} from ${cl}:${sport}: ${why}`);
      }
      // six days on (ESTABLISHED lasts five): gc takes every conntrack, and the chains are empty
      const later = Math.round((c.t + 6 * 86400) * 1e9);
      ct.nfConntrackGc(later);
      expect(ct.checkChains()).toBeUndefined();
      expect(ct.dump(later).length).toBe(0);
      expect(ct.count).toBe(0);
    }), { numRuns: runs(150) });
  });

  it('the self-check sees a broken chain', () => {
    const model = statefulModel(RULES, 'vm', 'net.netfilter.nf_conntrack_buckets = 1\n');
    const ct = model.conntrackModule!.ct;
    const c = new Conversation(model);
    udp(c, 'c', '10.0.0.2', 40000, '10.1.0.2', 53, 1);
    udp(c, 'c', '10.0.0.3', 40001, '10.1.0.2', 53, 1);
    expect(ct.checkChains()).toBeUndefined();
    // the first node's previous pointer no longer names the node before it
    ct.nodes[ct.head[0]! * 4 + 1] = 7;
    expect(ct.checkChains()).toMatch(/previous 7/);
  });
});
