/**
 * The reference's target-extension table: name → factory of the kernel's
 * target function. Standard targets (ACCEPT, DROP, QUEUE, RETURN, jumps)
 * are the traversal's own business (traverse.ts).
 */
import type { TargetFn } from '../../../ext/xt.js';
import { CONNMARK } from './CONNMARK.js';
import { LOG } from './LOG.js';
import { MARK } from './MARK.js';
import { NAT } from './NAT.js';
import { NFLOG } from './NFLOG.js';
import { NFQUEUE } from './NFQUEUE.js';
import { REJECT } from './REJECT.js';
import { TRACE } from './TRACE.js';

type Factory = (data: any, family: 'ip' | 'ip6') => TargetFn;

export const TARGET_FACTORIES: ReadonlyMap<string, Factory> = new Map<string, Factory>([
  ['MARK', MARK],
  ['CONNMARK', CONNMARK],
  ['LOG', LOG],
  ['NFLOG', NFLOG],
  ['TRACE', TRACE],
  ['REJECT', REJECT],
  ['NFQUEUE', NFQUEUE],
  ['SNAT', (d) => NAT('SNAT', d)],
  ['DNAT', (d) => NAT('DNAT', d)],
  ['MASQUERADE', (d) => NAT('MASQUERADE', d)],
  ['REDIRECT', (d) => NAT('REDIRECT', d)],
]);
