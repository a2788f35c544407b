/**
 * Connection tracking and NAT for the node: the API the hooks call.
 *
 * One NfConntrack per network namespace (its sysctls from the snapshot:
 * `nfConntrackSysctl(record)` over the net.netfilter.nf_conntrack_* lines,
 * a CtSysctlError names a refused key), one NfNat over it when the ruleset
 * has a nat table. All state is in typed arrays; nothing allocates per
 * packet. A packet's conntrack is in its metadata: M_CT_ID (the conntrack's
 * number; -1 none; <= -2 a CT template), M_CT_STATE (NF_CT_STATE_* bit),
 * M_CT_DIR, M_CT_STATUS (IPS_*), M_CT_MARK. `now` is nanoseconds on any
 * fixed origin (a capture timestamp); the table keeps jiffies at HZ = 250.
 *
 * Per hook (priorities as hooks/priorities.ts names them):
 *
 *   raw table (-300), before conntrack:
 *     NOTRACK, CT --notrack        ct.nfCtSetUntracked(pkt)          ctstate UNTRACKED, skipped by conntrack and NAT
 *     CT --zone N [--zone-orig|--zone-reply|mark]
 *                                  tmpl = ct.nfCtTmplAlloc({zoneId, zoneDir, zoneFromMark}) once per rule,
 *                                  ct.nfCtSetTemplate(pkt, tmpl) per packet (ctstate NEW, status TEMPLATE|CONFIRMED)
 *     Both do nothing when the packet already has a conntrack, template or untracked mark (skb->_nfct).
 *
 *   PRE_ROUTING NF_IP_PRI_CONNTRACK (-200):  ct.nfConntrackIn(pkt, NF_INET_PRE_ROUTING, now)
 *   LOCAL_OUT   NF_IP_PRI_CONNTRACK (-200):  ct.nfConntrackLocal(pkt, now)  (IPv4 fragments skip conntrack)
 *     Reads the bytes from M_NHOFF to M_END, M_NFPROTO, M_MARK (zone from mark); looks up or creates
 *     (unconfirmed) the conntrack, runs the protocol tracker (TCP window tracking, UDP streams, ICMP
 *     errors RELATED to the quoted connection, SCTP, GRE, generic), writes the M_CT_* words.
 *     Returns NF_ACCEPT (INVALID packets included: M_CT_STATE = NF_CT_STATE_INVALID_BIT) or NF_DROP
 *     (nf_conntrack_max reached and nothing non-assured to evict). Checksums are verified here at
 *     PRE_ROUTING when nf_conntrack_checksum = 1 (a bad one is INVALID). A packet that already has a
 *     conntrack (looped back) keeps it.
 *
 *   mangle/nat/filter tables: the engines read the M_CT_* words (state, conntrack, connmark matches).
 *     A CONNMARK target writes M_CT_MARK; the kernel's ct->mark is the conntrack's, visible at once to
 *     every later rule and packet: call ct.nfCtMarkStore(pkt) after each table run that may have
 *     changed it (before another packet of the connection is looked up).
 *
 *   NAT, NF_IP_PRI_NAT_DST (-100) at PRE_ROUTING and LOCAL_OUT, NF_IP_PRI_NAT_SRC (100) at LOCAL_IN
 *   and POST_ROUTING (registered when a nat table exists):
 *     nfNatFn(nat, pkt, hook, outIfindex, lookup) — `lookup(pkt)` runs the nat table's chain for the
 *     hook and returns its verdict. It is called only for the first packet of a connection (ctstate
 *     NEW or RELATED) whose binding of this manip type (DNAT at PRE_ROUTING/LOCAL_OUT, SNAT at
 *     LOCAL_IN/POST_ROUTING) is not made yet. The targets inside make the binding:
 *       SNAT/DNAT:   nat.xtNatTarget(pkt, range, NF_NAT_MANIP_SRC | NF_NAT_MANIP_DST)
 *       MASQUERADE:  nfNatMasqueradeIpv4(nat, pkt, range, outIfindex, outAddrs, nexthop, otherDevAddrs)
 *                    nfNatMasqueradeIpv6(nat, pkt, range, outIfindex, candidates)
 *       REDIRECT:    nfNatRedirectIpv4(nat, pkt, range, hook, inDevAddrs) / nfNatRedirectIpv6(...)
 *       NETMAP:      nfNatNetmap(nat, pkt, range, hook)
 *     with `range = nfNatRangeFrom(targetData)` made once per rule (NatRangeData / NetmapData fields
 *     flags, minAddr, maxAddr, minPort, maxPort, basePort). When the chain ends without a binding the
 *     null binding is made (the identity mapping; a source port may still move to keep the reply
 *     tuple unique). Every packet (first or later, both directions) is then rewritten by the binding
 *     (addresses, ports or ICMP id, IPv4 header, TCP/UDP/ICMPv6 checksums incrementally, SCTP CRC).
 *     ICMP errors RELATED to a NATed connection are translated instead: the quoted packet with the
 *     opposite manip, the ICMP checksum recomputed, then the outer header.
 *     Afterwards nat.rerouteNeeded says: at PRE_ROUTING the destination changed (route again, the
 *     skb_dst_drop of nf_nat_ipv4_pre_routing: DNAT/REDIRECT may turn INPUT into FORWARD); at LOCAL_OUT
 *     the connection's destination is rewritten (ip_route_me_harder). A MASQUERADEd connection whose
 *     packets leave by another interface is killed and the packet dropped.
 *
 *   POST_ROUTING and LOCAL_IN, NF_IP_PRI_CONNTRACK_CONFIRM (INT_MAX; IPv6 NF_IP6_PRI_LAST, LOCAL_IN
 *   LAST - 1):  ct.nfConfirm(pkt, now) — the conntrack's helper sees the packet (FTP: helper_ftp.ts, its
 *     expectations in expect.ts, met by init_conntrack), then a new conntrack enters the table (its timeout now counts);
 *     a clash with an entry inserted meanwhile is resolved as nf_ct_resolve_clash (UDP/GRE merge or
 *     reply-only insertion) or the packet is dropped (NF_DROP).
 *
 *   When the packet leaves the model (sent, delivered, dropped by anything): ct.nfResetCt(pkt); the
 *   packet's reference goes, an unconfirmed conntrack of a dropped packet dies with it. A clone
 *   (TEE, REJECT's reply) that shares the conntrack takes ct.nfConntrackGet(id) first.
 *
 * Listing: conntrackList(ct, now[, extended]) prints `conntrack -L` lines (conntrackSummary(n) the
 * stderr line); conntrackListJson the same as data. ct.nfConntrackGc(now) is a full gc pass.
 */
export { NfConntrack, ctinfoOf, jiffiesAt, setNoCt, NF_CT_DEFAULT_ZONE_DIR, NF_CT_ZONE_DIR_ORIG, NF_CT_ZONE_DIR_REPL } from './core.js';
export type { NfCtTemplate, NfConntrackOptions, NfConntrackStats } from './core.js';
export { CtSysctlError, HZ, NfConntrackSysctl, nfConntrackSysctl } from './sysctl.js';
export { nfCtSetClosing } from './proto_tcp.js';
export { conntrackEntry, conntrackLine, conntrackList, conntrackListJson, conntrackSummary, statusNames } from './print.js';
export type { CtEntryJson, CtTupleJson } from './print.js';
