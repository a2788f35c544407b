/** Every target module (ACCEPT/DROP/QUEUE/RETURN and chain jumps are handled by the rule parser). */
import type { TargetModule } from '../types.js';
import { MARK } from './MARK.js';
// imports: group A (packet header targets)
// imports: group B (conntrack targets)
// imports: group C (sets)
// imports: group D (verdict-like, logging, NAT)

export const TARGETS: readonly TargetModule[] = [
  MARK,
  // list: group A
  // list: group B
  // list: group C
  // list: group D
];
