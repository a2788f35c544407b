/**
 * addrtype (xt_addrtype v1): `!!(mask & (1 << type(addr))) XOR invert` for
 * the source and/or the destination. Lowered as nft's `fib saddr|daddr type`:
 * a fib load of the RTN_* type, then cmp (one type) or a lookup in an
 * anonymous set of the types (XT_ADDRTYPE_x = 1 << RTN_x). The node's local
 * and broadcast addresses (EngineOptions) become two sets of the Program.
 * --limit-iface-in/out are not modelled (the whole node's addresses count).
 */
import { NFT_CMP_EQ, NFT_CMP_NEQ, NFT_SET_CONSTANT } from '../../vm/layout.js';
import { NftSet } from '../../vm/set.js';
import { NFTA_FIB_F_DADDR, NFTA_FIB_F_SADDR, emitCmp, emitFib, emitLookup } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { AddrtypeData } from '../../ext/match/addrtype.js';
import { le32, type LowerCtx } from './ctx.js';

const LOCAL_SET = '__local';
const BCAST_SET = '__broadcast';

function nodeSets(c: LowerCtx): void {
  try {
    c.b.setIndex(LOCAL_SET);
    return;
  } catch {
    // first use in this program: add them
  }
  const len = c.v6 ? 16 : 4;
  const local = new NftSet(LOCAL_SET, len, NFT_SET_CONSTANT);
  const bcast = new NftSet(BCAST_SET, len, NFT_SET_CONSTANT);
  for (const a of c.engine.localAddrs ?? []) if (a.length === len) local.add(a);
  for (const a of c.engine.broadcastAddrs ?? []) if (a.length === len) bcast.add(a);
  c.b.addSet(local);
  c.b.addSet(bcast);
}

function typeTest(c: LowerCtx, flags: number, mask: number, invert: boolean): void {
  nodeSets(c);
  const types: number[] = [];
  for (let t = 0; t < 16; t++) if (mask & (1 << t)) types.push(t);
  c.withReg(4, (r) => {
    emitFib(c.b, r, flags, LOCAL_SET, BCAST_SET);
    if (types.length === 1) {
      emitCmp(c.b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(types[0]!));
      return;
    }
    const set = c.anonSet(4, false);
    for (const t of types) set.add(le32(t));
    emitLookup(c.b, r, set.name, invert);
  });
}

export function lowerAddrtype(c: LowerCtx, m: MatchNode): void {
  const d = m.data as AddrtypeData;
  if (d.source) typeTest(c, NFTA_FIB_F_SADDR, d.source, d.invSource);
  if (d.dest) typeTest(c, NFTA_FIB_F_DADDR, d.dest, d.invDest);
}
