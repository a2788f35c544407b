/**
 * Targets, as iptables-nft's add_action / add_target lower them where it
 * has a native form (verdicts, jump/goto, NFLOG → log, TRACE → meta set
 * nftrace with reg 9), and as nft expresses the same action elsewhere:
 *  - MARK (xt_MARK: mark = (mark & ~mask) ^ value): meta load mark, bitwise,
 *    meta set mark (an immediate when the mask is all ones);
 *  - CONNMARK (xt_CONNMARK): --set-xmark on ct mark; --save-mark with an
 *    all-ones ctmask (ct mark = mark & nfmask); --restore-mark with an
 *    all-ones nfmask (mark = ct mark & ctmask). Other mask combinations need
 *    a register-register bitwise and are refused. Without a conntrack the
 *    ct load BREAKs / the ct set does nothing: XT_CONTINUE either way;
 *  - LOG → log (level, flags); REJECT → reject (NF_DROP + event);
 *    QUEUE/NFQUEUE → queue; SNAT/DNAT/MASQUERADE/REDIRECT → nat (event +
 *    NF_ACCEPT until the translation is modelled).
 */
import { NFT_GOTO, NFT_JUMP, NFT_META_MARK, NFT_META_NFTRACE, NFT_REG32_01, NFT_RETURN } from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import {
  NAT_DNAT, NAT_MASQ, NAT_REDIR, NAT_SNAT, NFT_CT_MARK, NFT_REJECT_ICMP_UNREACH, NFT_REJECT_TCP_RST, emitBitwise,
  emitCtGet, emitCtSet, emitImmediate, emitLog, emitMetaGet, emitMetaSet, emitNat, emitQueue, emitReject, emitVerdict,
} from '../../vm/expr/index.js';
import type { TargetNode } from '../../core/ast.js';
import type { MarkTargetData } from '../../ext/target/MARK.js';
import type { ConnmarkTargetData } from '../../ext/target/CONNMARK.js';
import type { LogData } from '../../ext/target/LOG.js';
import type { NflogData } from '../../ext/target/NFLOG.js';
import type { NfqueueData } from '../../ext/target/NFQUEUE.js';
import type { RejectData } from '../../ext/target/REJECT.js';
import type { NatRangeData } from '../../ext/target/NAT.js';
import { le32, type LowerCtx } from './ctx.js';

/** IPv4 `enum ipt_reject_with` → ICMP code (7 = tcp-reset). */
const REJECT4_CODE = [0, 1, 2, 3, 3, 9, 10, -1, 13];
/** IPv6 `enum ip6t_reject_with` → ICMPv6 code (6 = tcp-reset). */
const REJECT6_CODE = [0, 1, 2, 3, 4, 4, -1, 5, 6];

function lowerMarkSet(c: LowerCtx, d: MarkTargetData): void {
  c.withReg(4, (r) => {
    if (d.mask >>> 0 === 0xffffffff) emitImmediate(c.b, r, le32(d.mark));
    else {
      emitMetaGet(c.b, r, NFT_META_MARK);
      emitBitwise(c.b, r, r, le32(~d.mask), le32(d.mark));
    }
    emitMetaSet(c.b, NFT_META_MARK, r);
  });
}

function lowerConnmarkTarget(c: LowerCtx, t: TargetNode & { kind: 'ext' }, d: ConnmarkTargetData): void {
  const all = 0xffffffff;
  c.withReg(4, (r) => {
    if (d.mode === 'set') {
      emitCtGet(c.b, r, NFT_CT_MARK);
      emitBitwise(c.b, r, r, le32(~d.ctmask), le32(d.ctmark));
      emitCtSet(c.b, NFT_CT_MARK, r);
    } else if (d.mode === 'save' && d.ctmask >>> 0 === all && d.shiftBits === 0) {
      emitMetaGet(c.b, r, NFT_META_MARK);
      if (d.nfmask >>> 0 !== all) emitBitwise(c.b, r, r, le32(d.nfmask), [0, 0, 0, 0]);
      emitCtSet(c.b, NFT_CT_MARK, r);
    } else if (d.mode === 'restore' && d.nfmask >>> 0 === all && d.shiftBits === 0) {
      emitCtGet(c.b, r, NFT_CT_MARK);
      if (d.ctmask >>> 0 !== all) emitBitwise(c.b, r, r, le32(d.ctmask), [0, 0, 0, 0]);
      emitMetaSet(c.b, NFT_META_MARK, r);
    } else c.refuse('target CONNMARK', t.pos, `--${d.mode ?? '?'}-mark with these masks/shifts not lowered yet`);
  });
}

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
    case 'ext':
      break;
  }
  switch (t.name) {
    case 'MARK':
      lowerMarkSet(c, t.data as MarkTargetData);
      return;
    case 'CONNMARK':
      lowerConnmarkTarget(c, t, t.data as ConnmarkTargetData);
      return;
    case 'TRACE':
      emitImmediate(c.b, NFT_REG32_01, [1, 0, 0, 0]);
      emitMetaSet(c.b, NFT_META_NFTRACE, NFT_REG32_01);
      return;
    case 'NFLOG': {
      const d = t.data as NflogData;
      emitLog(c.b, { prefix: d.prefix || undefined, group: d.group, snaplen: d.flags & 1 ? d.len : 0, qthreshold: d.threshold });
      return;
    }
    case 'LOG': {
      const d = t.data as LogData;
      emitLog(c.b, { prefix: d.prefix || undefined, level: d.level, flags: d.logflags });
      return;
    }
    case 'REJECT': {
      const w = (t.data as RejectData).with;
      const tcpReset = c.v6 ? w === 6 : w === 7;
      const code = (c.v6 ? REJECT6_CODE : REJECT4_CODE)[w] ?? 3;
      emitReject(c.b, tcpReset ? NFT_REJECT_TCP_RST : NFT_REJECT_ICMP_UNREACH, tcpReset ? 0 : code);
      return;
    }
    case 'NFQUEUE': {
      const d = t.data as NfqueueData;
      emitQueue(c.b, d.queuenum, Math.max(1, d.queuesTotal), d.flags & 0x3);
      return;
    }
    case 'SNAT':
    case 'DNAT':
    case 'MASQUERADE':
    case 'REDIRECT': {
      const d = t.data as NatRangeData;
      const type = { SNAT: NAT_SNAT, DNAT: NAT_DNAT, MASQUERADE: NAT_MASQ, REDIRECT: NAT_REDIR }[t.name];
      const addrs = d.minAddr && d.minAddr.some((x) => x !== 0) ? { minAddr: d.minAddr, maxAddr: d.maxAddr } : {};
      emitNat(c.b, type, { flags: d.flags, ...addrs, minPort: d.minPort, maxPort: d.maxPort });
      return;
    }
    default:
      c.refuse(`target ${t.name}`, t.pos);
  }
}
