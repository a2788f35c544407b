/**
 * A memo of IPv4 input routes for a replay: the answer ip_route_input_slow()
 * gave a packet (a local unicast delivery, or forwarding out of a device by
 * a gateway), kept by every input that answer read, so that the next packet
 * with the same inputs gets it without the policy-rule walk, the FIB lookup
 * and fib_validate_source().
 *
 * The key is the source, destination, TOS, input device and mark, and, when
 * the node has policy rules of its own (which may select on the protocol and
 * ports, fib4_rule_match()), the flow's protocol and ports as the lookup's
 * flow key carries them. Everything else the answer reads is the node's
 * static configuration (routes, rules, addresses, device sysctls): a change
 * to a routing table or rule list (fibEpoch) empties the memo. The input
 * route has no other state as long as no nexthop or rule carries realms
 * (the route cached on the nexthop, nhc_rth_input, keeps the itag of the
 * packet that made it): Ipv4Route keeps no memo then. Drops, broadcasts,
 * multicasts and traced packets are not kept: they take the full path.
 *
 * Two ways a set, the way not used last replaced; nothing is allocated per
 * lookup.
 */
const SET_BITS = 12;
const SLOTS = 2 << SET_BITS;
/** Key words per slot: saddr, daddr, tos | ifindex << 8 | VALID, mark, protocol, ports. */
const KEY_WORDS = 6;
/** Set in the third key word of a filled slot (an emptied one is all 0). */
const VALID = 0x80000000 | 0;

export class InputRouteCache {
  private readonly keys = new Int32Array(SLOTS * KEY_WORDS);
  private readonly mru = new Uint8Array(SLOTS >>> 1);
  private epoch: number;
  /** Per slot: 1 a local unicast delivery, 0 forwarding. */
  readonly local = new Uint8Array(SLOTS);
  /** Per slot: the route's tclassid (M_RTCLASSID). */
  readonly tclassid = new Int32Array(SLOTS);
  readonly dev: string[] = new Array<string>(SLOTS).fill('');
  readonly gateway: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  readonly mtu = new Int32Array(SLOTS);
  /** The ICMP redirect's gateway (an unsigned address), -1 for none. */
  readonly redirect = new Float64Array(SLOTS);
  /** The key of the last find() that missed, and the slot it gives up. */
  private pending = new Int32Array(KEY_WORDS);
  private victim = -1;

  constructor(private readonly fibEpoch: { readonly value: number }) {
    this.epoch = fibEpoch.value;
  }

  /** The slot holding the answer to these inputs, or -1 (then keep() stores the answer to them). */
  find(saddr: number, daddr: number, tos: number, ifindex: number, mark: number, proto: number, ports: number): number {
    const tosDev = tos | (ifindex << 8) | VALID;
    if (this.epoch !== this.fibEpoch.value) {
      this.keys.fill(0);
      this.epoch = this.fibEpoch.value;
    }
    let h = Math.imul(saddr ^ Math.imul(daddr, 0x9e3779b1), 0x85ebca6b) ^ tosDev ^ Math.imul(mark ^ ports ^ (proto << 24), 0xc2b2ae35);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    const set = ((h >>> (32 - SET_BITS)) << 1) >>> 0;
    const k = this.keys;
    for (let i = set; i < set + 2; i++) {
      const o = i * KEY_WORDS;
      if (k[o] === (saddr | 0) && k[o + 1] === (daddr | 0) && k[o + 2] === tosDev && k[o + 3] === (mark | 0) && k[o + 4] === proto && k[o + 5] === ports) {
        this.mru[set >>> 1] = i & 1;
        return i;
      }
    }
    const p = this.pending;
    p[0] = saddr;
    p[1] = daddr;
    p[2] = tosDev;
    p[3] = mark;
    p[4] = proto;
    p[5] = ports;
    // the way the set used last stays
    this.victim = set + (this.mru[set >>> 1]! ^ 1);
    return -1;
  }

  /** Stores an answer for the inputs of the last find() that missed: its slot, for the caller to fill with the answer (-1: no miss pending). */
  keep(): number {
    const i = this.victim;
    if (i < 0) return -1;
    this.victim = -1;
    this.keys.set(this.pending, i * KEY_WORDS);
    this.mru[i >>> 1] = i & 1;
    return i;
  }
}
