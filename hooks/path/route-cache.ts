/**
 * A memo of input routes for a replay: the answer ip_route_input_slow() or
 * ip6_route_input() gave a packet (a local unicast delivery, or forwarding
 * out of a device by a gateway), kept by every input that answer read, so
 * that the next packet with the same inputs gets it without the policy-rule
 * walk, the FIB lookup and (IPv4) fib_validate_source().
 *
 * The key (filled by the caller into `key`): the source and destination
 * address words, the TOS or traffic class with the input device, the mark,
 * and, when a policy rule of the node selects on them (fib4_rule_match(),
 * fib6_rule_match(): ipproto, sport, dport), the flow's protocol and ports
 * as the lookup's flow key carries them (0 otherwise). Everything else the
 * answer reads is the node's static configuration (routes, rules, addresses,
 * device sysctls): a change to a routing table or rule list (fibEpoch)
 * empties the memo. The caller keeps no memo where the route depends on
 * earlier packets (IPv4 realms: the route cached on the nexthop,
 * nhc_rth_input, keeps the itag of the packet that made it). Drops,
 * broadcasts, multicasts and traced packets are not kept: they take the full
 * path.
 *
 * Two ways a set, the way not used last replaced, 16,384 sets: a capture
 * that cycles through a few thousand flows (each a key) keeps them (with
 * 4,096 sets, the quarter of the keys whose set drew three or more missed
 * every time); nothing is allocated per lookup.
 */
const SET_BITS = 14;
const SLOTS = 2 << SET_BITS;
/** Set in the TOS and device word of a key (an emptied slot is all 0). */
const VALID = 0x80000000 | 0;

/** The key words after the addresses: TOS | ifindex << 8 | VALID, mark, protocol, ports. */
const K_TOS_DEV = 0;
const K_MARK = 1;
const K_PROTO = 2;
const K_PORTS = 3;

export class InputRouteCache {
  /** The key of the packet being routed: the address words (`addrWords` source, then as many destination), then K_TOS_DEV...K_PORTS. */
  readonly key: Int32Array;
  /** Where K_TOS_DEV... start in `key`. */
  private readonly at: number;
  private readonly words: number;
  private readonly keys: Int32Array;
  private readonly mru = new Uint8Array(SLOTS >>> 1);
  private epoch: number;
  /** Per slot: 1 a local unicast delivery, 0 forwarding. */
  readonly local = new Uint8Array(SLOTS);
  /** Per slot: the route's tclassid (M_RTCLASSID, IPv4). */
  readonly tclassid = new Int32Array(SLOTS);
  readonly dev: string[] = new Array<string>(SLOTS).fill('');
  readonly gateway: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  /** The gateway's words (IPv6). */
  readonly gateway6: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(SLOTS).fill(undefined);
  readonly mtu = new Int32Array(SLOTS);
  /** The ICMP redirect's gateway (an unsigned address, IPv4), -1 for none. */
  readonly redirect = new Float64Array(SLOTS);
  /** The slot the last find() that missed gives up (-1: none pending). */
  private victim = -1;

  constructor(
    private readonly fibEpoch: { readonly value: number },
    addrWords: 1 | 4,
  ) {
    this.at = 2 * addrWords;
    this.words = this.at + 4;
    this.key = new Int32Array(this.words);
    this.keys = new Int32Array(SLOTS * this.words);
    this.epoch = fibEpoch.value;
  }

  /** Fills the key's words after the addresses (TOS 8 bits, ifindex below 2^23). */
  setRest(tos: number, ifindex: number, mark: number, proto: number, ports: number): void {
    const k = this.key;
    const a = this.at;
    k[a + K_TOS_DEV] = (tos & 0xff) | (ifindex << 8) | VALID;
    k[a + K_MARK] = mark;
    k[a + K_PROTO] = proto;
    k[a + K_PORTS] = ports;
  }

  /** The slot holding the answer to `key`, or -1 (then keep() stores the answer to it). */
  find(): number {
    if (this.epoch !== this.fibEpoch.value) {
      this.keys.fill(0);
      this.epoch = this.fibEpoch.value;
    }
    const k = this.key;
    const n = this.words;
    let h = 0x9e3779b9;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ k[i]!, 0x85ebca6b) ^ (h >>> 13);
    h ^= h >>> 16;
    h = Math.imul(h, 0x2c1b3c6d);
    const set = (h >>> (32 - SET_BITS)) << 1;
    const keys = this.keys;
    for (let s = set; s < set + 2; s++) {
      const o = s * n;
      let i = 0;
      while (i < n && keys[o + i] === k[i]) i++;
      if (i === n) {
        this.mru[set >>> 1] = s & 1;
        return s;
      }
    }
    // the way the set used last stays
    this.victim = set + (this.mru[set >>> 1]! ^ 1);
    return -1;
  }

  /** Stores `key` (as the last find() that missed had it) in that miss's slot, for the caller to fill with the answer; -1: no miss pending. */
  keep(): number {
    const s = this.victim;
    if (s < 0) return -1;
    this.victim = -1;
    this.keys.set(this.key, s * this.words);
    this.mru[s >>> 1] = s & 1;
    return s;
  }
}

/** A policy rule selects on the flow's protocol or ports (the memo then keys on them). */
export function rulesSelectPorts(rules: readonly { ipProto: number; sport: readonly [number, number]; dport: readonly [number, number] }[]): boolean {
  return rules.some((r) => r.ipProto !== 0 || r.sport[0] !== 0 || r.sport[1] !== 0 || r.dport[0] !== 0 || r.dport[1] !== 0);
}
