/**
 * Small helpers of the ebtables modules' reference faces: the kernel's
 * skb_header_pointer() over the bridge frame and the device names kept in
 * the packet's metadata.
 */
import { IFNAMSIZ } from '../../vm/layout.js';
import type { EbtParam } from './types.js';

/** skb_header_pointer(skb, off, len) != NULL: the absolute offset of `len` bytes at `off` from skb->data, or -1. */
export function ebtHeader(p: EbtParam, off: number, len: number): number {
  const at = p.nh + off;
  return off < 0 || at + len > p.end ? -1 : at;
}

/** A device name held in the metadata at word `w` (M_IIFNAME, M_BRIINAME, ...). */
export function metaName(p: EbtParam, w: number): string {
  const mb = p.pkt.metaBytes;
  let s = '';
  for (let i = w * 4; i < w * 4 + IFNAMSIZ && mb[i] !== 0; i++) s += String.fromCharCode(mb[i]!);
  return s;
}

/** ether_addr_equal() of 6 bytes at `at` with `mac`. */
export function macEqual(d: Uint8Array, at: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (d[at + i] !== mac[i]) return false;
  return true;
}
