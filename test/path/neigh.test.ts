/**
 * The next hop's neighbour entry (hooks/path/neigh.ts): where the snapshot
 * has the neighbour table (ip-neigh.json) and it holds no usable entry for
 * the gateway or on-link destination a packet leaves for, the trace says
 * what the kernel does instead (resolution is not modelled); a usable
 * entry, a snapshot without the table, and an untraced run say nothing.
 * The node is test/path/fixtures/node (eth0 10.0.0.1/24, eth1 10.1.0.1/24,
 * default via 10.1.0.2, forwarding on).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type NodeModel } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';

const FIX = join(import.meta.dirname, 'fixtures/node');
const base = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));

const NEIGH = JSON.stringify([
  { dst: '10.1.0.2', dev: 'eth1', lladdr: '02:00:00:00:01:02', state: ['REACHABLE'] },
  { dst: '10.1.0.7', dev: 'eth1', state: ['FAILED'] },
  { dst: '10.1.0.8', dev: 'eth1', lladdr: '02:00:00:00:01:08', state: ['STALE'] },
  { dst: '10.0.0.2', dev: 'eth0', lladdr: '02:00:00:00:00:01', state: ['REACHABLE'] },
]);

function model(neigh: string | undefined): NodeModel {
  const files = new Map(base);
  if (neigh === undefined) files.delete('ip-neigh.json');
  else files.set('ip-neigh.json', neigh);
  return buildNodeModel(buildNode('', files), {});
}

function go(m: NodeModel, spec: string, trace = true): PathResult {
  m.setTrace(trace);
  const { pkt, iif, ct } = specInput(m, parseSpec(spec));
  return iif === '' ? m.send(pkt, parseSpec(spec).oif, { ct }) : m.receive(pkt, iif, { ct });
}

const notes = (r: PathResult) => r.steps.flatMap((s) => (s.kind !== 'trace' && s.text.startsWith('neigh_resolve_output') ? [s.text] : []));

describe('the next hop\'s neighbour entry', () => {
  const m = model(NEIGH);

  it('a gateway or destination with a usable entry (REACHABLE, STALE): nothing said', () => {
    const via = go(m, 'tcp 10.0.0.2:40000 > 198.51.100.9:80 syn iif eth0');
    expect(fateText(via.fate)).toBe('forwarded out eth1 via 10.1.0.2');
    expect(notes(via)).toEqual([]);
    const stale = go(m, 'tcp 10.0.0.2:40000 > 10.1.0.8:80 syn iif eth0');
    expect(fateText(stale.fate)).toBe('forwarded out eth1 to 10.1.0.8 (directly connected)');
    expect(notes(stale)).toEqual([]);
  });

  it('an on-link destination without an entry: the ARP requests, the held packet, host unreachable', () => {
    const r = go(m, 'tcp 10.0.0.2:40000 > 10.1.0.5:80 syn iif eth0');
    expect(fateText(r.fate)).toBe('forwarded out eth1 to 10.1.0.5 (directly connected)');
    expect(notes(r)).toEqual([
      'neigh_resolve_output: next hop 10.1.0.5 on eth1: ip-neigh.json has no entry for it; the kernel holds the packet and sends ARP requests for it (mcast_solicit of them, retrans_time apart), and drops it with ICMP host unreachable when none is answered; nfvm sends it on as if resolved (neighbour resolution is not modelled)',
    ]);
  });

  it('a FAILED entry: resolution starts again', () => {
    const r = go(m, 'tcp 10.0.0.2:40001 > 10.1.0.7:80 syn iif eth0');
    expect(fateText(r.fate)).toBe('forwarded out eth1 to 10.1.0.7 (directly connected)');
    expect(notes(r)).toHaveLength(1);
    expect(notes(r)[0]).toMatch(/^neigh_resolve_output: next hop 10\.1\.0\.7 on eth1: its entry is FAILED in ip-neigh\.json; /);
  });

  it('a packet the node sends itself, to an on-link address without an entry', () => {
    const r = go(m, 'tcp 10.1.0.1:40000 > 10.1.0.9:80 syn from local');
    expect(fateText(r.fate)).toMatch(/^sent out eth1 to 10\.1\.0\.9/);
    expect(notes(r)).toHaveLength(1);
  });

  it('IPv6: the entry found however ip wrote the address; without one, neighbour solicitations and address unreachable', () => {
    const FIX6 = join(import.meta.dirname, 'fixtures/node6');
    const files = new Map(readdirSync(FIX6).map((f) => [f, readFileSync(join(FIX6, f), 'utf8')]));
    files.set('ip-neigh.json', JSON.stringify([{ dst: '2001:db8:1:0:0:0:0:5', dev: 'eth1', lladdr: '02:00:00:00:01:05', state: ['DELAY'] }]));
    const m6 = buildNodeModel(buildNode('', files), {});
    const known = go(m6, 'tcp [2001:db8::2]:40000 > [2001:db8:1::5]:80 syn iif eth0');
    expect(fateText(known.fate)).toBe('forwarded out eth1 to 2001:db8:1::5 (directly connected)');
    expect(notes(known)).toEqual([]);
    const unknown = go(m6, 'tcp [2001:db8::2]:40000 > [2001:db8:1::6]:80 syn iif eth0');
    expect(notes(unknown)).toHaveLength(1);
    expect(notes(unknown)[0]).toContain('next hop 2001:db8:1::6 on eth1: ip-neigh.json has no entry for it; the kernel holds the packet and sends neighbour solicitations for it');
    expect(notes(unknown)[0]).toContain('drops it with ICMPv6 address unreachable');
  });

  it('without ip-neigh.json in the snapshot, or untraced: nothing said', () => {
    expect(notes(go(model(undefined), 'tcp 10.0.0.2:40000 > 10.1.0.5:80 syn iif eth0'))).toEqual([]);
    expect(notes(go(m, 'tcp 10.0.0.2:40000 > 10.1.0.5:80 syn iif eth0', false))).toEqual([]);
  });
});
