/**
 * What the packet path reports: the fate of a packet and the steps it took
 * (hooks run, rules met, routing decisions), for `nfvm trace` and the
 * library.
 */

/** Why a packet was dropped outside a rule (the kernel's drop points on the path). */
export type DropReason =
  | 'rule' // a rule's DROP/REJECT (or a target that drops)
  | 'policy' // a builtin chain's policy
  | 'hotdrop' // a match could not read the header it needs (x_tables hotdrop)
  | 'hook' // a hook entry dropped it (not a table rule: e.g. a custom hook)
  | 'queue' // NF_QUEUE with no program listening (and no bypass)
  | 'other-host' // PACKET_OTHERHOST: the frame's destination MAC is not the device's (ip_rcv_core)
  | 'bad-header' // ip_rcv_core: short, wrong version/ihl, bad checksum, bad length
  | 'not-ip' // not an IPv4/IPv6 frame (ARP and the like are not modelled)
  | 'martian-source' // ip_route_input_slow / fib_validate_source: -EINVAL
  | 'martian-destination'
  | 'rp-filter' // fib_validate_source: -EXDEV (reverse path check failed)
  | 'no-route' // no route / unreachable / prohibit / blackhole (ip_error)
  | 'ip-forward-off' // the input device does not forward (IN_DEV_FORWARD)
  | 'ttl' // ip_forward: TTL <= 1, ICMP time exceeded
  | 'mtu' // ip_forward: DF set and larger than the egress MTU, ICMP fragmentation needed
  | 'not-host' // ip_forward: a forwarded packet that was not PACKET_HOST (link-layer broadcast/multicast)
  | 'has-socket' // ip_forward, ip6_forward: a packet with a socket (skb->sk: TPROXY gave it one) is not forwarded
  | 'multicast' // a multicast group no device joined (multicast routing is not modelled)
  | 'reassembly' // a fragment held for reassembly (ip_local_deliver / nf_defrag), never completed here
  | 'ipv6-disabled'
  | 'reroute' // ip_route_me_harder failed after mangle OUTPUT or NAT changed the packet
  | 'conntrack' // nf_conntrack_in (table full: nf_conntrack_max) or nf_confirm (clash) dropped it
  | 'nat' // the NAT core dropped it (hooks/nat/core.ts NatDrop: a MASQUERADEd connection leaving elsewhere, an ICMP redirect about a NATed connection, a header it cannot rewrite, ...)
  | 'device' // the egress device is down or unknown
  | 'xfrm-policy' // an IPsec policy: a block policy, or one whose state does not exist (xfrm_policy_check, xfrm_lookup)
  | 'ipvs' // IPVS dropped it (no real server: ip_vs_leave; a transmitter's tx_error; a connection reused with its old conntrack)
  | 'bridge'; // the bridge did not take the frame (port state, VLAN filter, source address, link-local group)

/** Where a netfilter verdict came from. */
export interface VerdictSource {
  /** iptables table ('' for a hook entry that is not a table). */
  table: string;
  /** Builtin chain of the hook. */
  hook: string;
  /** Chain holding the rule that decided ('' when unknown). */
  chain: string;
  /** 1-based rule number; 0 for a policy or when unknown. */
  rule: number;
  /** The policy (ACCEPT/DROP) when the policy decided. */
  policy: string;
  /** Hook entry name (the kernel module). */
  entry: string;
}

/** The frame br_dev_xmit made of a packet sent out of a bridge device, and the ports it left by. */
export interface BridgeOut {
  ports: string[];
  srcMac: string;
  dstMac: string;
}

export type Fate = (
  /** `socket`: the listening socket it reached (ss's `tcp 0.0.0.0:22`); `l4`: what the transport made of it. */
  | { kind: 'delivered'; addr: string; dev: string; cast: 'unicast' | 'broadcast' | 'multicast'; socket?: string | undefined; l4?: string }
  | { kind: 'forwarded'; dev: string; via: string | undefined; dst: string; bridge?: BridgeOut }
  | { kind: 'sent'; dev: string; via: string | undefined; dst: string; cast: 'unicast' | 'broadcast' | 'multicast'; bridge?: BridgeOut }
  | { kind: 'dropped'; reason: DropReason; detail: string; by: VerdictSource | undefined }
  /**
   * A REJECT rule: the packet is dropped and the reply `with` names (its
   * `--reject-with`: a TCP reset, or the ICMP / ICMPv6 unreachable `code`)
   * is the node's to send.
   */
  | { kind: 'rejected'; with: string; tcpReset: boolean; code: number; by: VerdictSource }
  | { kind: 'queued'; queue: number; by: VerdictSource | undefined }
  | { kind: 'stolen'; by: VerdictSource | undefined }
  /**
   * A frame a bridge forwarded (hooks/bridge/): the copy for each port it
   * went to (`fate` undefined: transmitted; otherwise what stopped it
   * there) and, when a copy went up to the bridge device too (broadcast,
   * multicast), what became of that one.
   */
  | { kind: 'bridged'; bridge: string; ports: { port: string; fate: Fate | undefined }[]; local: Fate | undefined }
) & {
  /** The NAT rewrites the packet went through before its fate (`DNAT to 10.244.1.5:8080`), when any. */
  nat?: string[];
};

/** One TRACE line: a rule or policy the packet met (TraceKind names). */
export interface TraceStep {
  kind: 'trace';
  table: string;
  chain: string;
  type: 'rule' | 'return' | 'policy';
  num: number;
  /** `TRACE: table:chain:type:num ` + the nf_log body at that hook. */
  line: string;
  /**
   * What the step met, as iptables prints it: the rule as iptables-save
   * does (`-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT`), a builtin chain's
   * policy as `-P INPUT DROP`, '' for the implicit return of a user chain.
   */
  rule: string;
}

/** A decision of the path outside netfilter (routing, checks), in words. */
export interface NoteStep {
  /** route: a routing decision; check: the path's checks; hook: a hook entry; conntrack: the packet's connection; nat: a NAT rewrite. */
  kind: 'route' | 'check' | 'hook' | 'conntrack' | 'nat';
  text: string;
}

export type PathStep = TraceStep | NoteStep;

/** A packet the node's own stack sent in answer to another (hooks/answer), and what became of it. */
export interface AnswerResult {
  /** icmp-echo-reply, tcp-reset, icmp-port-unreachable, icmp6-time-exceeded, ... */
  kind: string;
  /** The kernel function that sent it and why. */
  why: string;
  /** 1: an answer to the packet, 2: to that answer, ... */
  depth: number;
  steps: PathStep[];
  fate: Fate;
  /** The IP packet as built; after POSTROUTING when it was sent. */
  packet: Uint8Array;
  /** Header fields the kernel fills in its own way (Answer.kernelFields): nfvm's bytes differ there. */
  kernelFields: readonly string[];
  /** A copy of the packet TEE sent to its gateway (kind 'tee-clone'), not an answer to it. */
  clone?: boolean;
}

/** A packet that left the node (forwarded, or an answer sent out of a device): the bytes from the IP header. */
export interface Emitted {
  dev: string;
  /** 'forwarded' or the answer's kind. */
  kind: string;
  packet: Uint8Array;
  kernelFields: readonly string[];
}

export interface PathResult {
  fate: Fate;
  steps: PathStep[];
  /** What the node's stack sent in answer, in order. */
  answers: AnswerResult[];
  /** The packets that left the node, when the model records them (NodeModel.recordEmitted). */
  emitted?: Emitted[];
}

function by(v: VerdictSource | undefined): string {
  if (!v) return '';
  if (v.table === '') return ` by hook ${v.entry} in ${v.hook}`;
  if (v.policy) return ` by ${v.table}:${v.chain} policy ${v.policy}`;
  if (v.rule > 0) return ` by ${v.table}:${v.chain} rule ${v.rule}`;
  return ` in ${v.table}:${v.hook}`;
}

/** The fate in words: `delivered locally to 10.0.0.1`, `DNAT to 10.244.1.5:8080, forwarded out eth1 via 10.1.0.2`, `dropped by filter:FORWARD rule 2`, ... */
export function fateText(f: Fate): string {
  return f.nat?.length ? `${f.nat.join(', ')}, ${fateWords(f)}` : fateWords(f);
}

function fateWords(f: Fate): string {
  switch (f.kind) {
    case 'delivered': {
      const where = `${f.addr}${f.cast === 'unicast' ? '' : ` (${f.cast})`} on ${f.dev}`;
      return f.socket ? `delivered locally to ${f.socket} (${where})` : `delivered locally to ${where}`;
    }
    case 'forwarded':
      return f.via ? `forwarded out ${f.dev} via ${f.via}` : `forwarded out ${f.dev} to ${f.dst} (directly connected)`;
    case 'sent':
      return `sent out ${f.dev}${f.via ? ` via ${f.via}` : ` to ${f.dst}`}${f.cast === 'unicast' ? '' : ` (${f.cast})`}`;
    case 'dropped':
      if (f.reason === 'rule' || f.reason === 'policy') return `dropped${by(f.by)}${f.detail ? ` (${f.detail})` : ''}`;
      return `dropped: ${f.detail}${by(f.by)}`;
    case 'rejected':
      return `rejected${by(f.by)} with ${f.with}`;
    case 'queued':
      return `queued to queue ${f.queue}${by(f.by)}`;
    case 'stolen':
      return `stolen${by(f.by)}`;
    case 'bridged': {
      const out = f.ports.map((p) => (p.fate ? `${p.port}: ${fateText(p.fate)}` : `out ${p.port}`));
      const parts = [out.length ? `bridged by ${f.bridge}: ${out.join('; ')}` : `bridged by ${f.bridge}: no port to send it to`];
      if (f.local) parts.push(`up to ${f.bridge}: ${fateText(f.local)}`);
      return parts.join('; ');
    }
  }
}
