/**
 * Generated two-sided conversations through a node model and what a model
 * does with them, for the equivalence tests of the stateful node: flows of
 * TCP events, UDP with answers, pings and ICMP errors, few ports so that
 * 5-tuples repeat, gaps from 10 ms to 40 s.
 */
import fc from 'fast-check';
import { CLIENTS, Conversation, Tcp, icmpError, ping, udp, type FlowFrame } from './flows.js';
import { conntrackList } from '../../hooks/conntrack/index.js';
import { fateText } from '../../hooks/path/fate.js';
import type { NodeModel } from '../../hooks/node.js';
import { LINKTYPE_ETHERNET, Packet, decodePacket, resetMeta } from '../../vm/packet.js';
import { M_LEN, M_NHOFF } from '../../vm/layout.js';

const SERVERS = ['10.1.0.2', '10.1.0.3', '10.1.0.200', '10.9.0.5', '8.8.8.8'];
const TCP_EVENTS = ['syn', 'synack', 'ack', 'data', 'sdata', 'sack', 'fin', 'sfin', 'srst', 'rst', 'wild'] as const;

export const flow = fc.record({
  kind: fc.constantFrom('tcp', 'tcp', 'udp', 'icmp', 'error'),
  client: fc.constantFrom(...CLIENTS, '203.0.113.7'),
  server: fc.constantFrom(...SERVERS),
  // few ports: the same 5-tuple comes back, and two clients share a source port (a clash under SNAT)
  sport: fc.constantFrom(40000, 40001, 40002),
  dport: fc.constantFrom(22, 53, 80, 81, 123, 443),
  events: fc.array(fc.constantFrom(...TCP_EVENTS), { minLength: 1, maxLength: 8 }),
  answers: fc.integer({ min: 0, max: 2 }),
  gap: fc.constantFrom(0.01, 0.5, 40),
});

export type Flow = typeof flow extends fc.Arbitrary<infer T> ? T : never;

/** Runs a generated conversation on `m`; returns its frames. */
export function converse(m: NodeModel, flows: readonly Flow[]): FlowFrame[] {
  const c = new Conversation(m);
  for (const f of flows) {
    c.t += f.gap;
    if (f.kind === 'tcp') {
      const t = new Tcp(c, 'c', f.client, f.sport, f.server, f.dport);
      for (const ev of f.events) t[ev]();
    } else if (f.kind === 'udp') udp(c, 'c', f.client, f.sport, f.server, f.dport, f.answers);
    else if (f.kind === 'icmp') ping(c, 'c', f.client, f.server, f.sport, f.answers > 0);
    else icmpError(c, udp(c, 'c', f.client, f.sport, f.server, f.dport, 0), f.answers === 2 ? 11 : 3, f.answers === 2 ? 0 : 3);
  }
  return c.frames;
}

/** What a model does with the frames: per frame the fate and the bytes leaving; then the counters and the table. */
export function replay(m: NodeModel, frames: readonly FlowFrame[]): string[] {
  const out: string[] = [];
  const pkt = new Packet(4096);
  let now = 0;
  for (const f of frames) {
    resetMeta(pkt);
    pkt.setFrame(f.data);
    decodePacket(pkt, LINKTYPE_ETHERNET);
    m.captureCt(pkt);
    now = Math.round(f.t * 1e9);
    const r = m.receive(pkt, f.side === 'c' ? 'eth0' : 'eth1', { now });
    const nh = pkt.meta[M_NHOFF]!;
    const bytes = r.fate.kind === 'forwarded' ? Buffer.from(pkt.data.subarray(nh, nh + pkt.meta[M_LEN]!)).toString('hex') : '';
    // Which rule decided and the rewrites in words are told only when tracing (they come from the trace).
    out.push(`${fateText({ ...r.fate, nat: undefined }).replace(/ by .*| in .*/, '')} ${bytes}`);
  }
  for (const t of ['raw', 'mangle', 'nat', 'filter'] as const) out.push(JSON.stringify([...(m.counters(t) ?? new Map())]));
  if (m.conntrackTable) out.push(...conntrackList(m.conntrackTable, now, true));
  return out;
}

