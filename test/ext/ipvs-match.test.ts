/**
 * The ipvs match (xt_ipvs.c ipvs_mt) on a node running IPVS: the reference
 * (x_tables evaluator) and the VM (the nft_compat lowering) count the same
 * packets, and the counts are the kernel's: `--ipvs` is skb->ipvs_property
 * (IPVS sent or un-NATed the packet), the other options read the
 * connection conn_out_get finds over the inverted headers (the request as
 * IPVS sent it; not a reply), --vdir the conntrack's direction (none when
 * IPVS untracked the packet: vs.conntrack 0).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';

const FIXTURE = join(import.meta.dirname, '../path/fixtures/node');
const RULES = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -m ipvs --ipvs
-A POSTROUTING -m ipvs ! --ipvs
-A POSTROUTING -m ipvs --vproto 6 --vaddr 192.168.50.1/32 --vport 80 --vmethod MASQ
-A POSTROUTING -m ipvs --vaddr 192.168.50.0/24 ! --vport 80
-A POSTROUTING -m ipvs --vmethod GATE
-A POSTROUTING -m ipvs ! --vmethod MASQ
-A POSTROUTING -m ipvs --vdir ORIGINAL
-A POSTROUTING -m ipvs --vdir REPLY
-A POSTROUTING -m ipvs --vportctl 443
-A POSTROUTING -m ipvs ! --vaddr 10.0.0.0/8 --vproto 17
COMMIT
`;
const IPVS = `-A -t 192.168.50.1:80 -s rr
-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 1
-A -t 192.168.50.1:443 -s rr -p 60
-a -t 192.168.50.1:443 -r 10.1.0.6:8443 -m -w 1
-A -t 192.168.50.1:25 -s rr
-a -t 192.168.50.1:25 -r 10.1.0.8 -g -w 1
-A -u 192.168.50.1:53 -s rr
-a -u 192.168.50.1:53 -r 10.1.0.7:53 -m -w 1
`;
const PACKETS = [
  'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0',
  'tcp 10.1.0.5:8080 > 10.0.0.2:40000 syn,ack iif eth1',
  'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack iif eth0',
  'tcp 10.0.0.3:41000 > 192.168.50.1:443 syn iif eth0',
  'udp 10.0.0.2:5353 > 192.168.50.1:53 iif eth0',
  'tcp 10.0.0.4:42000 > 192.168.50.1:25 syn iif eth0',
  'tcp 10.0.0.2:40001 > 10.1.0.9:22 syn iif eth0',
];

function counts(engine: EngineKind, conntrack: number): number[] {
  const files = new Map(readdirSync(FIXTURE).map((f) => [f, readFileSync(join(FIXTURE, f), 'utf8')]));
  files.set('iptables-save.txt', RULES + files.get('iptables-save.txt')!.replace(/\*mangle[\s\S]*?COMMIT\n/, '').replace(':FORWARD DROP', ':FORWARD ACCEPT'));
  files.set('ipvsadm-save.txt', IPVS);
  files.set('sysctl.txt', files.get('sysctl.txt')! + `net.ipv4.vs.conntrack = ${conntrack}\n`);
  const m: NodeModel = buildNodeModel(buildNode('', files), { engine });
  let t = 0;
  for (const p of PACKETS) {
    const s = parseSpec(p);
    const { pkt, iif } = specInput(m, s);
    m.receive(pkt, iif, { now: (t += 1e6) });
  }
  return m.counters('mangle')!.get('POSTROUTING')!.rules.map((c) => c.packets);
}

describe('the ipvs match on a node running IPVS', () => {
  it('vs.conntrack 0: the VM and the reference count as ipvs_mt does', () => {
    // Through POSTROUTING: the masqueraded SYN and ACK to :80, the SYN-ACK un-NATed, the persistent SYN to :443, the
    // DNATed datagram, the direct-routed SYN, a plain forward. The un-NATed reply has the property but no connection
    // conn_out_get finds (its real server is not its destination); the direct-routed SYN's connection is found by its
    // virtual address and port (ip_vs_conn_out_get: the source of a GATE connection's packets is vaddr:vport), so it
    // is the one --vmethod GATE and --vport 25 see.
    const want = [6, 1, 2, 3, 1, 1, 0, 0, 1, 1];
    expect(counts('reference', 0)).toEqual(want);
    expect(counts('vm', 0)).toEqual(want);
  });

  it('vs.conntrack 1: --vdir ORIGINAL holds for the requests IPVS sent with their conntrack', () => {
    const want = [6, 1, 2, 3, 1, 1, 5, 0, 1, 1];
    expect(counts('reference', 1)).toEqual(want);
    expect(counts('vm', 1)).toEqual(want);
  });
});
