/**
 * What every lowering function gets: the builder, the family, the backend
 * and the rule being lowered, plus the typed refusal. Lowering follows
 * iptables-nft (iptables/nft-ipv4.c, nft-ipv6.c, nft.c of iptables 1.8.9)
 * and nftables' netlink_linearize.c: each test loads into a register taken
 * from the builder's allocator (get/release_register), compares, and
 * releases it, so every load lands in NFT_REG_1 as iptables-nft's do.
 */
import type { EngineOptions } from './types.js';
import type { ProgramBuilder } from '../vm/builder.js';
import { NftSet } from '../vm/set.js';
import { NFT_SET_ANONYMOUS, NFT_SET_CONSTANT, NFT_SET_INTERVAL } from '../vm/layout.js';
import type { Family, MatchNode, Rule } from '../core/ast.js';
import { NfvmError, type SourcePos } from '../core/errors.js';
import { newXtEnv, type XtEnv } from './xt.js';
import type { Backend } from '../core/netfilter.js';

export class LowerCtx {
  private anon = 0;
  private xt: XtEnv | undefined;
  /** The rule being lowered has an x_tables match run through a compat record (ext/compat.ts); reset per rule. */
  compatInRule = false;
  constructor(
    readonly b: ProgramBuilder,
    readonly family: Family,
    readonly backend: Backend,
    readonly file: string,
    readonly engine: EngineOptions,
    public rule: Rule | undefined = undefined,
  ) {}

  get legacy(): boolean {
    return this.backend === 'legacy';
  }

  get v6(): boolean {
    return this.family === 'ip6';
  }

  /**
   * What the x_tables functions the program calls (nft_compat records,
   * ext/compat.ts) see of the node: one per compiled table, from the
   * engine options (the node's addresses, random source and conntrack).
   */
  xtEnv(): XtEnv {
    this.xt ??= newXtEnv(this.family, this.engine);
    return this.xt;
  }

  /** Runs `f` with a register for `len` bytes (nftables get_register / release_register). */
  withReg(len: number, f: (reg: number) => void): void {
    const reg = this.b.getRegister(len);
    try {
      f(reg);
    } finally {
      this.b.releaseRegister(len);
    }
  }

  /** Adds an anonymous constant set (`__set%d`, as nft names them); returns its name. */
  anonSet(keyLen: number, interval: boolean): NftSet {
    const set = new NftSet(`__set${this.anon++}`, keyLen, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (interval ? NFT_SET_INTERVAL : 0));
    this.b.addSet(set);
    return set;
  }

  /** The typed refusal: "match X: semantics not modelled yet" and the like, at the node's position. */
  refuse(what: string, pos: SourcePos | undefined, detail = 'semantics not modelled yet'): never {
    throw new NfvmError('check', `${what}: ${detail}`, this.file, pos ?? this.rule?.pos, what);
  }

  refuseMatch(m: MatchNode, detail?: string): never {
    return this.refuse(`match ${m.name}`, m.pos, detail);
  }
}

/** Big-endian bytes of a `len`-byte number. */
export function be(v: number, len: number): number[] {
  const out: number[] = [];
  for (let i = len - 1; i >= 0; i--) out.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
  return out;
}

/** Host-order (little-endian) bytes of a u32: how meta/ct values sit in a register. */
export function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
