/** Small helpers for the x_tables evaluator's tests (engine/reference). */
import { parseRestore } from '../../compiler/parse/restore.js';
import type { TableName } from '../../core/ast.js';
import { referenceTable, type ReferenceOptions } from '../../engine/reference/index.js';

export { eth, ext, ipv4, ipv6, packet, raw, tcp, udp, ip4, ip6 } from '../vm/helpers/pkt.js';

/** A ruleset from iptables-save text: `*table`, the lines, `COMMIT` are added. */
export function engine(table: TableName, body: string, opts: ReferenceOptions & { family?: 'ip' | 'ip6' } = {}) {
  const rs = parseRestore(`*${table}\n${body.trim()}\nCOMMIT\n`, { family: opts.family ?? 'ip' });
  return referenceTable(rs, table, opts);
}

export function icmpL(type: number, code: number, len = 8) {
  const bytes = new Array(len).fill(0);
  bytes[0] = type;
  bytes[1] = code;
  return { kind: 'raw', ethertype: -1, ipproto: 1, build: (inner: Uint8Array) => Uint8Array.from([...bytes, ...inner]) };
}

export function icmp6L(type: number, code: number, len = 8) {
  return { ...icmpL(type, code, len), ipproto: 58 };
}

export const addr4 = (s: string) => Uint8Array.from(s.split('.').map(Number));
