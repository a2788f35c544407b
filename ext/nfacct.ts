/**
 * The extended accounting objects of nfnetlink_acct
 * (net/netfilter/nfnetlink_acct.c, Linux 6.18) that `-m nfacct` counts
 * into, as `nfacct list` prints them (nfacct 1.0.2 over libnetfilter_acct's
 * nfacct_snprintf, NFACCT_SNPRINTF_F_FULL):
 *
 *   { pkts = 00000000000000000005, bytes = 00000000000000000400 } = name;
 *   { pkts = …, bytes = …, quota = 00000000000000000300, mode = byte, overquota = no } = name;
 *
 * A node snapshot keeps that list as nfacct.txt. The objects belong to the
 * network namespace: every rule of both families naming one counts into it.
 * nfnl_acct_update() adds the packet and its skb->len bytes;
 * nfnl_acct_overquota() then compares the count the quota is in (packets
 * or bytes) with the quota: over it when strictly greater, and the
 * NFACCT_OVERQUOTA flag is set (and reported once) from the packet that
 * reaches it.
 */
import { NfvmError } from '../core/errors.js';
import type { XtSaveable } from './xtstate.js';

/** enum nfnl_acct_flags (uapi/linux/netfilter/nfnetlink_acct.h). */
export const NFACCT_F_QUOTA_PKTS = 1;
export const NFACCT_F_QUOTA_BYTES = 2;
export const NFACCT_F_OVERQUOTA = 4;
const NFACCT_F_QUOTA = NFACCT_F_QUOTA_PKTS | NFACCT_F_QUOTA_BYTES;
/** NFACCT_NAME_MAX: names of at most 31 bytes. */
export const NFACCT_NAME_MAX = 32;

/** nfnl_acct_overquota()'s answers. */
export const NFACCT_NO_QUOTA = -1;
export const NFACCT_UNDERQUOTA = 0;
export const NFACCT_OVERQUOTA = 1;

/** struct nf_acct: the counters (exact below 2^53, which nfacct.txt is held to), the flags and the quota. */
export class NfAcct implements XtSaveable {
  constructor(
    readonly name: string,
    public pkts: number,
    public bytes: number,
    public flags: number,
    readonly quota: number,
  ) {}

  save(): () => void {
    const [pkts, bytes, flags] = [this.pkts, this.bytes, this.flags];
    return () => {
      this.pkts = pkts;
      this.bytes = bytes;
      this.flags = flags;
    };
  }

  /** nfnl_acct_update(): one packet of `len` bytes. */
  update(len: number): void {
    this.pkts += 1;
    this.bytes += len;
  }

  /** nfnl_acct_overquota(). */
  overquota(): number {
    if ((this.flags & NFACCT_F_QUOTA) === 0) return NFACCT_NO_QUOTA;
    const now = this.flags & NFACCT_F_QUOTA_PKTS ? this.pkts : this.bytes;
    if (now >= this.quota) this.flags |= NFACCT_F_OVERQUOTA;
    return now > this.quota ? NFACCT_OVERQUOTA : NFACCT_UNDERQUOTA;
  }

  /** The object's line of `nfacct list`. */
  line(): string {
    const u = (v: number): string => String(v).padStart(20, '0');
    const quota = this.flags & NFACCT_F_QUOTA
      ? `, quota = ${u(this.quota)}, mode = ${this.flags & NFACCT_F_QUOTA_BYTES ? 'byte' : 'packet'}, overquota = ${this.flags & NFACCT_F_OVERQUOTA ? 'yes' : 'no'}`
      : '';
    return `{ pkts = ${u(this.pkts)}, bytes = ${u(this.bytes)}${quota} } = ${this.name};`;
  }
}

/** The node's accounting objects by name, in the order `nfacct list` prints them (creation order). */
export type NfacctObjects = ReadonlyMap<string, NfAcct>;

const LINE = /^\{ pkts = ([0-9]+), bytes = ([0-9]+)(?:, quota = ([0-9]+), mode = (byte|packet), overquota = (yes|no))? \} = (.+);$/;

/** The objects of an `nfacct list` output (nfacct.txt). */
export function parseNfacctList(text: string, file: string): Map<string, NfAcct> {
  const out = new Map<string, NfAcct>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, idx) => {
    const pos = { line: idx + 1, col: 1 };
    const m = LINE.exec(raw);
    if (!m) throw new NfvmError('syntax', 'not a line of `nfacct list`: { pkts = N, bytes = N[, quota = N, mode = byte|packet, overquota = yes|no] } = NAME;', file, pos, raw.slice(0, 40));
    const name = m[6]!;
    if (Buffer.byteLength(name) >= NFACCT_NAME_MAX) throw new NfvmError('value', `accounting object name longer than ${NFACCT_NAME_MAX - 1} bytes`, file, { line: pos.line, col: raw.length - name.length }, name);
    if (out.has(name)) throw new NfvmError('value', `accounting object ${name} listed twice`, file, pos, name);
    const num = (s: string, what: string): number => {
      const v = Number(s);
      if (!Number.isSafeInteger(v)) throw new NfvmError('value', `${what} ${s} of ${name} is above 2^53: nfvm keeps the counters exactly only below it`, file, pos, s);
      return v;
    };
    let flags = 0;
    let quota = 0;
    if (m[3] !== undefined) {
      flags = (m[4] === 'byte' ? NFACCT_F_QUOTA_BYTES : NFACCT_F_QUOTA_PKTS) | (m[5] === 'yes' ? NFACCT_F_OVERQUOTA : 0);
      quota = num(m[3], 'quota');
    }
    out.set(name, new NfAcct(name, num(m[1]!, 'packet count'), num(m[2]!, 'byte count'), flags, quota));
  });
  return out;
}

/** `nfacct list` of the objects. */
export function nfacctList(objects: NfacctObjects): string {
  let s = '';
  for (const o of objects.values()) s += `${o.line()}\n`;
  return s;
}
