/** The library API as the README shows it: compile, run a packet, read counters and the trace. */
import { describe, expect, it } from 'vitest';
import { LINKTYPE_RAW, NF_ACCEPT, NF_DROP, Packet, TraceKind, decodePacket, parseRestore, referenceTable, setDevice, vmTable } from '../index.js';

const RULES = ['*filter', ':INPUT DROP [0:0]', ':SSH - [0:0]', '-A INPUT -p tcp -m tcp --dport 22 -j SSH', '-A SSH -s 10.0.0.0/8 -j ACCEPT', 'COMMIT', ''].join('\n');

function tcpTo(src: number[], dport: number): Packet {
  const f = new Uint8Array(40);
  f.set([0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, ...src, 10, 0, 0, 1], 0);
  f.set([0x9c, 0x40, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0], 20);
  const p = new Packet();
  p.setFrame(f);
  decodePacket(p, LINKTYPE_RAW);
  setDevice(p, 'in', 2, 'eth0');
  return p;
}

describe('library API', () => {
  for (const [name, make] of [['vm', vmTable], ['reference', referenceTable]] as const) {
    it(`${name}: verdicts, counters and traces`, () => {
      const t = make(parseRestore(RULES), 'filter', { seed: 1 });
      t.setTrace(true);
      expect(t.run('INPUT', tcpTo([10, 1, 2, 3], 22))).toBe(NF_ACCEPT);
      expect(t.takeTrace()).toEqual([
        { kind: TraceKind.RULE, chain: 'INPUT', rule: 1 },
        { kind: TraceKind.RULE, chain: 'SSH', rule: 1 },
      ]);
      expect(t.run('INPUT', tcpTo([192, 168, 1, 1], 22))).toBe(NF_DROP);
      expect(t.run('INPUT', tcpTo([10, 1, 2, 3], 80))).toBe(NF_DROP);
      const c = t.counters();
      expect(c.get('INPUT')).toEqual({ rules: [{ packets: 2, bytes: 80 }], policy: { packets: 2, bytes: 80 } });
      expect(c.get('SSH')!.rules).toEqual([{ packets: 1, bytes: 40 }]);
    });
  }
});
