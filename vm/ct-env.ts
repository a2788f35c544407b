/**
 * What the node's connection tracking gives the engines: the interface the
 * ct and nat expressions (and the x_tables targets and matches of the
 * x_tables evaluator) reach the conntrack table and the NAT core through.
 * The node (hooks/) implements it; vm/, ext/ and engine/ only see this
 * interface, so nothing below hooks/ imports the conntrack model.
 *
 * Without it (an engine built alone, as in the engine tests) the targets act
 * on the packet's metadata only: NAT targets accept without a binding (their
 * action is recorded while tracing), CT/NOTRACK attach the template or the
 * untracked mark to the metadata, and the conntrack table reads as empty
 * (NO_CT_TABLE).
 *
 * The packet's own conntrack fields stay in its metadata (vm/layout.ts
 * M_CT_ID, M_CT_STATE, M_CT_DIR, M_CT_STATUS, M_CT_MARK); what is not there
 * (tuples, timeouts, the master's helper) is read through NfCtTable by the
 * conntrack's number, M_CT_ID.
 */
import {
  IPS_CONFIRMED, IPS_TEMPLATE, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_ESTABLISHED, IP_CT_IS_REPLY, IP_CT_NEW, IP_CT_RELATED, IP_CT_UNTRACKED,
  NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT, NF_CT_STATE_UNTRACKED_BIT,
} from '../core/netfilter.js';
import { M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS } from './layout.js';
import type { Packet } from './packet.js';

/** The NAT targets, as the nat expression's type word and natTarget's `kind`. */
export const NAT_SNAT = 0;
export const NAT_DNAT = 1;
export const NAT_MASQ = 2;
export const NAT_REDIR = 3;
export const NAT_NETMAP = 4;

/**
 * The CT target's template, packed in one word (made once per rule):
 *   bits 0-15  zone id (CT --zone N)
 *   bits 16-17 zone directions (NF_CT_ZONE_DIR_ORIG 1, _REPL 2; 3 both)
 *   bit  18    the zone id is the packet mark's low 16 bits (CT --zone mark)
 *   bits 19-23 helper (index in CT_HELPERS, 0 none)
 *   bit  30    NOTRACK / CT --notrack: the packet is untracked
 */
export const CT_TMPL_ZONE_MASK = 0xffff;
export const CT_TMPL_DIR_SHIFT = 16;
export const CT_TMPL_ZONE_MARK = 1 << 18;
export const CT_TMPL_HELPER_SHIFT = 19;
export const CT_TMPL_HELPER_MASK = 0x1f;
/** CT --timeout: the policy's number (1-based in the node's list; 0 none), bits 24-29. */
export const CT_TMPL_TIMEOUT_SHIFT = 24;
export const CT_TMPL_TIMEOUT_MASK = 0x3f;
export const CT_TMPL_NOTRACK = 1 << 30;

/**
 * The conntrack helpers a CT --helper can name, by index (nf_conntrack_*.c
 * register them under these names). Index 0 is "no helper".
 */
export const CT_HELPERS: readonly string[] = ['', 'ftp', 'tftp', 'irc', 'sip', 'amanda', 'sane', 'pptp', 'snmp', 'snmp_trap', 'netbios-ns', 'RAS', 'Q.931', 'h245'];
/** The helpers whose expectations are modelled, by their index in CT_HELPERS (hooks/conntrack/helper_ftp.ts, helper_tftp.ts). */
export const CT_HELPER_FTP = 1;
export const CT_HELPER_TFTP = 2;

/** The node's conntrack table and NAT core as the engines reach them. */
export interface NfCtEnv extends NfCtTable {
  /**
   * A NAT target (xt_snat_target / xt_dnat_target / masquerade_tg /
   * redirect_tg / netmap_tg): nf_nat_setup_info for the packet's conntrack
   * with the rule's range at `hook`; returns the verdict (NF_ACCEPT, or
   * NF_DROP when no address can be chosen). The range: NF_NAT_RANGE_* `flags`,
   * `alen` address bytes at min[minAt] and max[maxAt] (alen 0: none), the
   * proto range and base (host order).
   */
  natTarget(pkt: Packet, hook: number, kind: number, flags: number, min: Uint8Array, minAt: number, max: Uint8Array, maxAt: number, alen: number,
    minPort: number, maxPort: number, basePort: number): number;
  /** Sets label bit `bit` (0-127) of a conntrack that has the labels extension (xt_connlabel's --set). */
  labelSet(id: number, bit: number): void;
  /** xt_ct_target(): attaches the template `tmpl` (CT_TMPL_* word) unless the packet already has a conntrack, template or untracked mark. */
  ctTarget(pkt: Packet, tmpl: number): void;
}

/** Tuple word offsets of NfCtTable.tupleWord (struct nf_conntrack_tuple as host-order words). */
export const CT_T_SRC = 0;
export const CT_T_DST = 4;
/** src.u.all << 16 | dst.u.all (ports; ICMP id << 16 | type << 8 | code). */
export const CT_T_PORTS = 8;
/** l3num << 8 | protonum */
export const CT_T_PROTO = 9;

/** Words of a tuple (struct nf_conntrack_tuple: CT_T_SRC 4, CT_T_DST 4, CT_T_PORTS, CT_T_PROTO). */
export const CT_TUPLE_WORDS = 10;
/** The default zone (nf_ct_zone_dflt) as NfCtTable.packetZone gives it: id 0, both directions. */
export const CT_ZONE_DFLT = 3 << 16;

/** The conntrack table, read-only, by conntrack number (M_CT_ID >= 0). */
export interface NfCtTable {
  /** Word `word` (CT_T_*) of the tuple of direction `dir` (IP_CT_DIR_*). */
  tupleWord(id: number, dir: number, word: number): number;
  /** nf_ct_expires(ct) / HZ: whole seconds to expiry (0 for a conntrack not confirmed yet). */
  expiresSec(id: number): number;
  /** The helper of the conntrack's master (ct->master's nfct_help), CT_HELPERS index; 0 without a master or helper. */
  masterHelper(id: number): number;
  /**
   * nf_conn_acct: the packets (`bytes` false) or bytes counted in direction
   * `dir` (IP_CT_DIR_*), -1 when the conntrack has no accounting extension
   * (accounting was off when it was created).
   */
  acctCounter(id: number, dir: number, bytes: boolean): number;
  /** Label bit `bit` (0-127) of the conntrack: 0 or 1; -1 without the labels extension (nf_ct_labels_find). */
  labelBit(id: number, bit: number): number;
  /** ct->status (IPS_* bits). */
  status(id: number): number;
  /** already_closed() (nf_conncount.c): a TCP conntrack in TIME_WAIT or CLOSE. */
  tcpClosed(id: number): boolean;
  /**
   * nf_ct_zone() of the packet's conntrack or template, as zone id | dir << 16
   * (a template's own zone, whatever its mark flag); CT_ZONE_DFLT without one.
   */
  packetZone(pkt: Packet): number;
  /**
   * nf_ct_get_tuplepr() of the packet into t[o..o+CT_TUPLE_WORDS), then
   * nf_conntrack_find_get() of it in the zone (packetZone form): the
   * conntrack found, -1 none, -2 when the packet gives no tuple.
   */
  lookupPacket(pkt: Packet, t: Int32Array, o: number, zone: number): number;
  /** nf_conntrack_find_get(): the conntrack whose tuple (either direction) is t[o..] in the zone (packetZone form), or -1; expired ones are gone. */
  findTuple(t: Int32Array, o: number, zone: number): number;
}

/**
 * What nf_ct_get(skb, &ctinfo) leaves in ctinfo, from the packet's words:
 * its conntrack's IP_CT_*, IP_CT_NEW for a template, IP_CT_UNTRACKED, and
 * IP_CT_ESTABLISHED (0, skb->_nfct empty) without any.
 */
export function nfCtInfo(m: Int32Array): number {
  const id = m[M_CT_ID]!;
  if (id <= -2) return IP_CT_NEW;
  if (id === -1) return m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT ? IP_CT_UNTRACKED : IP_CT_ESTABLISHED;
  return ctinfoOf(m);
}

/** ctinfo of a packet from its M_CT_STATE / M_CT_DIR words (-1: no conntrack). */
export function ctinfoOf(m: Int32Array): number {
  const s = m[M_CT_STATE]!;
  const rep = m[M_CT_DIR] === IP_CT_DIR_REPLY ? IP_CT_IS_REPLY : 0;
  if (s & NF_CT_STATE_ESTABLISHED_BIT) return IP_CT_ESTABLISHED + rep;
  if (s & NF_CT_STATE_RELATED_BIT) return IP_CT_RELATED + rep;
  if (s & NF_CT_STATE_NEW_BIT) return IP_CT_NEW;
  return -1;
}

/** The table of an engine without a node: no conntrack has anything to read. */
export const NO_CT_TABLE: NfCtTable = {
  tupleWord: () => 0,
  expiresSec: () => 0,
  masterHelper: () => 0,
  acctCounter: () => -1,
  labelBit: () => -1,
  status: () => 0,
  tcpClosed: () => false,
  packetZone: () => CT_ZONE_DFLT,
  // no conntrack module to read a tuple with (the kernel loads one with every extension that asks)
  lookupPacket: () => -2,
  findTuple: () => -1,
};

/**
 * xt_ct_target() on the metadata alone (no conntrack table): NOTRACK marks
 * the packet untracked, a template makes it look like a new connection
 * (ctstate NEW, status TEMPLATE|CONFIRMED, M_CT_ID -2), unless the packet
 * already has an nfct. The node's NfCtEnv.ctTarget does the same with real
 * templates.
 */
export function ctTargetMeta(m: Int32Array, tmpl: number): void {
  if (m[M_CT_ID] !== -1 || m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT) return;
  if (tmpl & CT_TMPL_NOTRACK) {
    m[M_CT_STATE] = NF_CT_STATE_UNTRACKED_BIT;
    m[M_CT_DIR] = -1;
    m[M_CT_STATUS] = 0;
    m[M_CT_MARK] = 0;
    return;
  }
  m[M_CT_ID] = -2;
  m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
  m[M_CT_DIR] = IP_CT_DIR_ORIGINAL;
  m[M_CT_STATUS] = IPS_TEMPLATE | IPS_CONFIRMED;
  m[M_CT_MARK] = 0;
}
