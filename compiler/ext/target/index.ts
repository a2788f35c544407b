/** Every target module (ACCEPT/DROP/QUEUE/RETURN and chain jumps are handled by the rule parser). */
import type { TargetModule } from '../types.js';
import { MARK } from './MARK.js';

export const TARGETS: readonly TargetModule[] = [MARK];
