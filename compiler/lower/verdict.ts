/**
 * Targets: the standard ones as iptables-nft's add_verdict / add_jumpto
 * lower them (ACCEPT, DROP, RETURN as verdicts, QUEUE as `queue num 0`,
 * -j/-g CHAIN as jump/goto), target extensions through their module's
 * `lower` face (ext/target/NAME.ts).
 */
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { NFT_GOTO, NFT_JUMP, NFT_RETURN } from '../../vm/layout.js';
import { emitQueue, emitVerdict } from '../../vm/expr/index.js';
import type { TargetNode } from '../../core/ast.js';
import type { LowerCtx } from '../../ext/lower.js';
import { findTarget } from '../../ext/registry.js';

export function lowerTarget(c: LowerCtx, t: TargetNode): void {
  switch (t.kind) {
    case 'none':
      return;
    case 'verdict':
      if (t.name === 'ACCEPT') emitVerdict(c.b, NF_ACCEPT);
      else if (t.name === 'DROP') emitVerdict(c.b, NF_DROP);
      else if (t.name === 'RETURN') emitVerdict(c.b, NFT_RETURN);
      else emitQueue(c.b, 0);
      return;
    case 'jump':
      emitVerdict(c.b, NFT_JUMP, t.chain);
      return;
    case 'goto':
      emitVerdict(c.b, NFT_GOTO, t.chain);
      return;
    case 'unknown':
      c.refuse(`target ${t.name}`, t.pos);
      return;
    case 'ext': {
      const mod = findTarget(t.name, c.family);
      if (!mod || typeof mod.lower === 'string') return c.refuse(`target ${t.name}`, t.pos);
      mod.lower(c, t);
    }
  }
}
