/**
 * CONNMARK target: libxt_CONNMARK.c (revision 2; its save form is revision
 * 1's plus the shift), kernel xt_connmark.c `connmark_tg_shift()`:
 *   set:     ctmark = (ctmark & ~ctmask) ^ ctmark_value
 *   save:    ctmark = (ctmark & ~ctmask) ^ ((nfmark & nfmask) shifted)
 *   restore: nfmark = (nfmark & ~nfmask) ^ ((ctmark & ctmask) shifted)
 * Every set form is stored as the xmark pair (`--set-mark v/m` → (v, v|m),
 * `--and-mark v` → (0, ~v), `--or-mark v` → (v, v), `--xor-mark v` → (v, 0)).
 * Kernel checkentry refuses a shift of 32 bits or more. No table restriction.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { hex } from '../save.js';
import { parseMarkMask, parseUintOpt } from '../numbers.js';
import { NFT_BITWISE_LSHIFT, NFT_BITWISE_RSHIFT, NFT_BITWISE_XOR, NFT_META_MARK, M_CT_DIR, M_CT_MARK, M_MARK } from '../../vm/layout.js';
import { NFT_CT_MARK, emitBitwise, emitBitwiseBool, emitBitwiseShift, emitCtGet, emitCtSet, emitMetaGet, emitMetaSet } from '../../vm/expr/index.js';
import type { TargetNode } from '../../core/ast.js';
import { le32, type LowerCtx } from '../lower.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

/** struct xt_connmark_tginfo2, decoded. */
interface ConnmarkTargetData {
  mode: 'set' | 'save' | 'restore' | undefined;
  ctmark: number;
  ctmask: number;
  nfmask: number;
  shiftDir: 'left' | 'right';
  shiftBits: number;
}

const OPS = ['set-xmark', 'set-mark', 'and-mark', 'or-mark', 'xor-mark', 'save-mark', 'restore-mark'];

export const CONNMARK: TargetModule<ConnmarkTargetData> = {
  kind: 'target',
  name: 'CONNMARK',
  options: [
    { name: 'set-xmark', arg: 1 },
    { name: 'set-mark', arg: 1 },
    { name: 'and-mark', arg: 1 },
    { name: 'or-mark', arg: 1 },
    { name: 'xor-mark', arg: 1 },
    { name: 'save-mark', arg: 0 },
    { name: 'restore-mark', arg: 0 },
    { name: 'left-shift-mark', arg: 1 },
    { name: 'right-shift-mark', arg: 1 },
    { name: 'ctmask', arg: 1 },
    { name: 'nfmask', arg: 1 },
    { name: 'mask', arg: 1 },
  ],
  init: () => ({ mode: undefined, ctmark: 0, ctmask: 0xffffffff, nfmask: 0xffffffff, shiftDir: 'left', shiftBits: 0 }),
  parse(d, opt, arg) {
    const u32 = () => parseUintOpt(arg!, 0, 0xffffffff, 'CONNMARK', opt);
    switch (opt) {
      case 'set-xmark': {
        const [v, m] = parseMarkMask(arg!, 'CONNMARK', opt);
        Object.assign(d, { mode: 'set', ctmark: v, ctmask: m });
        return;
      }
      case 'set-mark': {
        const [v, m] = parseMarkMask(arg!, 'CONNMARK', opt);
        Object.assign(d, { mode: 'set', ctmark: v, ctmask: (v | m) >>> 0 });
        return;
      }
      case 'and-mark':
        Object.assign(d, { mode: 'set', ctmark: 0, ctmask: ~u32() >>> 0 });
        return;
      case 'or-mark': {
        const v = u32();
        Object.assign(d, { mode: 'set', ctmark: v, ctmask: v });
        return;
      }
      case 'xor-mark':
        Object.assign(d, { mode: 'set', ctmark: u32(), ctmask: 0 });
        return;
      case 'save-mark':
        d.mode = 'save';
        return;
      case 'restore-mark':
        d.mode = 'restore';
        return;
      case 'left-shift-mark':
      case 'right-shift-mark':
        d.shiftBits = parseUintOpt(arg!, 0, 32, 'CONNMARK', opt);
        d.shiftDir = opt === 'left-shift-mark' ? 'left' : 'right';
        return;
      case 'ctmask':
        d.ctmask = u32();
        return;
      case 'nfmask':
        d.nfmask = u32();
        return;
      case 'mask':
        d.nfmask = d.ctmask = u32();
        return;
    }
  },
  final(_d, seen) {
    const ops = OPS.filter((o) => seen.has(o));
    if (ops.length === 0) fail('CONNMARK target: No operation specified', 'option');
    // xtables_options_fcheck walks the option table: the first option that excludes a later given one
    const table = ['set-xmark', 'set-mark', 'and-mark', 'or-mark', 'xor-mark', 'save-mark', 'restore-mark', 'ctmask', 'nfmask', 'mask'];
    for (const o of table) {
      if (!seen.has(o)) continue;
      const excl = OPS.includes(o) ? OPS.filter((x) => x !== o) : o === 'mask' ? ['ctmask', 'nfmask'] : ['mask'];
      // the conflicting option reported is the first one in option-id order
      const idOrder = ['set-mark', 'save-mark', 'restore-mark', 'and-mark', 'or-mark', 'xor-mark', 'set-xmark', 'ctmask', 'nfmask', 'mask'];
      for (const other of idOrder) {
        if (excl.includes(other) && seen.has(other)) fail(`CONNMARK: option "--${o}" cannot be used together with "--${other}".`, 'option');
      }
    }
  },
  save(d) {
    let s: string;
    if (d.mode === 'set') s = ` --set-xmark ${hex(d.ctmark)}/${hex(d.ctmask)}`;
    else s = ` --${d.mode}-mark --nfmask ${hex(d.nfmask)} --ctmask ${hex(d.ctmask)}`;
    if (d.shiftBits !== 0) s += ` --${d.shiftDir}-shift-mark ${d.shiftBits}`;
    return s;
  },
  check(d) {
    if (d.shiftBits > 31) return `xt_CONNMARK: shift of ${d.shiftBits} bits is out of range (EINVAL)`;
    return undefined;
  },
  lower: (c, t) => lowerConnmarkTarget(c, t, t.data),
  reference: connmarkTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * CONNMARK (xt_CONNMARK connmark_tg_shift) on `ct load/set mark` and `meta
 * load/set mark`, with constant masks (bitwise mask/xor), the shift
 * (bitwise lshift/rshift) and the two-register xor of Linux 6.13+ nft
 * bitwise for the parts of both marks:
 *   set:     ct mark = ((ct mark & ~ctmask) ^ ctmark) shifted
 *   save:    ct mark = (ct mark & ~ctmask) ^ ((mark & nfmask) shifted)
 *   restore: mark    = (mark & ~nfmask) ^ ((ct mark & ctmask) shifted)
 * An all-ones ctmask (save) or nfmask (restore) without a shift needs one
 * register. Without a conntrack the ct load BREAKs / the ct set does
 * nothing: XT_CONTINUE either way.
 */
function lowerConnmarkTarget(c: LowerCtx, _t: TargetNode & { kind: 'ext' }, d: ConnmarkTargetData): void {
  const all = 0xffffffff;
  const zero = [0, 0, 0, 0];
  const shift = (r: number) => {
    if (d.shiftBits !== 0) emitBitwiseShift(c.b, d.shiftDir === 'right' ? NFT_BITWISE_RSHIFT : NFT_BITWISE_LSHIFT, r, r, 4, d.shiftBits);
  };
  c.withReg(4, (r) => {
    if (d.mode === 'set') {
      emitCtGet(c.b, r, NFT_CT_MARK);
      emitBitwise(c.b, r, r, le32(~d.ctmask), le32(d.ctmark));
      shift(r);
      emitCtSet(c.b, NFT_CT_MARK, r);
      return;
    }
    const save = d.mode === 'save';
    const loadFrom = (reg: number) => (save ? emitMetaGet(c.b, reg, NFT_META_MARK) : emitCtGet(c.b, reg, NFT_CT_MARK));
    const loadTo = (reg: number) => (save ? emitCtGet(c.b, reg, NFT_CT_MARK) : emitMetaGet(c.b, reg, NFT_META_MARK));
    const fromMask = save ? d.nfmask : d.ctmask;
    const keepMask = save ? d.ctmask : d.nfmask;
    loadFrom(r);
    if (fromMask >>> 0 !== all) emitBitwise(c.b, r, r, le32(fromMask), zero);
    shift(r);
    if (keepMask >>> 0 !== all) {
      c.withReg(4, (r2) => {
        loadTo(r2);
        emitBitwise(c.b, r2, r2, le32(~keepMask), zero);
        emitBitwiseBool(c.b, NFT_BITWISE_XOR, r, r, r2, 4);
      });
    }
    if (save) emitCtSet(c.b, NFT_CT_MARK, r);
    else emitMetaSet(c.b, NFT_META_MARK, r);
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * CONNMARK target: net/netfilter/xt_connmark.c connmark_tg_shift() (kernel 6.18;
 * revision 1 is revision 2 with a zero shift). Without a conntrack entry
 * (M_CT_DIR < 0) it does nothing. Shifts are u32 shifts; a count of 32
 * behaves as on x86 (the count is taken mod 32), like JavaScript's.
 */
function connmarkTg(info: ConnmarkTargetData): TargetFn {
  const shift = (v: number): number => (info.shiftDir === 'right' ? v >>> info.shiftBits : v << info.shiftBits);
  return (par) => {
    const m = par.meta;
    if (m[M_CT_DIR]! < 0) return XT_CONTINUE;
    switch (info.mode) {
      case 'set':
        m[M_CT_MARK] = shift((m[M_CT_MARK]! & ~info.ctmask) ^ info.ctmark);
        break;
      case 'save':
        m[M_CT_MARK] = (m[M_CT_MARK]! & ~info.ctmask) ^ shift(m[M_MARK]! & info.nfmask);
        break;
      case 'restore':
        m[M_MARK] = (m[M_MARK]! & ~info.nfmask) ^ shift(m[M_CT_MARK]! & info.ctmask);
        break;
    }
    return XT_CONTINUE;
  };
}
