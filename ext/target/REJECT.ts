/**
 * REJECT target: iptables `extensions/libipt_REJECT.c` (IPv4) and
 * `extensions/libip6t_REJECT.c` (IPv6); kernel `net/ipv4/netfilter/ipt_REJECT.c`
 * and `net/ipv6/netfilter/ip6t_REJECT.c`.
 *
 * `--reject-with TYPE` takes a name or its alias, matched case-insensitively
 * as a PREFIX (strncasecmp with the argument's length), first entry of the
 * table wins: `--reject-with icmp` is icmp-net-unreachable, and even an empty
 * argument selects the first entry. The value is the kernel's
 * `enum ipt_reject_with` / `enum ip6t_reject_with`; the default is
 * icmp-port-unreachable / icmp6-port-unreachable and iptables-save always
 * prints ` --reject-with <long name>`.
 *
 * Kernel: `.table = "filter"`, hooks INPUT/FORWARD/OUTPUT; checkentry refuses
 * echo-reply and refuses tcp-reset unless the rule has `-p tcp` (not inverted).
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { Family } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { NF_DROP } from '../../core/netfilter.js';
import { NFT_REJECT_ICMP_UNREACH, NFT_REJECT_TCP_RST, emitReject } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import type { TargetFn } from '../xt.js';

interface RejectData {
  /** `enum ipt_reject_with` (IPv4) or `enum ip6t_reject_with` (IPv6) value. */
  with: number;
}

interface RejectName {
  readonly name: string;
  readonly alias: string;
  readonly with: number;
}

/** IPv4 `enum ipt_reject_with` (4 = echo-reply, no longer accepted). */
const IPT_REJECT = {
  ICMP_NET_UNREACHABLE: 0,
  ICMP_HOST_UNREACHABLE: 1,
  ICMP_PROT_UNREACHABLE: 2,
  ICMP_PORT_UNREACHABLE: 3,
  ICMP_ECHOREPLY: 4,
  ICMP_NET_PROHIBITED: 5,
  ICMP_HOST_PROHIBITED: 6,
  TCP_RESET: 7,
  ICMP_ADMIN_PROHIBITED: 8,
} as const;

/** IPv6 `enum ip6t_reject_with` (2 not-neighbour and 5 echo-reply are not offered). */
const IP6T_REJECT = {
  ICMP6_NO_ROUTE: 0,
  ICMP6_ADM_PROHIBITED: 1,
  ICMP6_NOT_NEIGHBOUR: 2,
  ICMP6_ADDR_UNREACH: 3,
  ICMP6_PORT_UNREACH: 4,
  ICMP6_ECHOREPLY: 5,
  TCP_RESET: 6,
  ICMP6_POLICY_FAIL: 7,
  ICMP6_REJECT_ROUTE: 8,
} as const;

/** libipt_REJECT.c reject_table[], in enum order (the order the prefix search walks). */
const NAMES4: readonly RejectName[] = [
  { name: 'icmp-net-unreachable', alias: 'net-unreach', with: 0 },
  { name: 'icmp-host-unreachable', alias: 'host-unreach', with: 1 },
  { name: 'icmp-proto-unreachable', alias: 'proto-unreach', with: 2 },
  { name: 'icmp-port-unreachable', alias: 'port-unreach', with: 3 },
  { name: 'icmp-net-prohibited', alias: 'net-prohib', with: 5 },
  { name: 'icmp-host-prohibited', alias: 'host-prohib', with: 6 },
  { name: 'tcp-reset', alias: 'tcp-rst', with: 7 },
  { name: 'icmp-admin-prohibited', alias: 'admin-prohib', with: 8 },
];

/** libip6t_REJECT.c reject_table[]. */
const NAMES6: readonly RejectName[] = [
  { name: 'icmp6-no-route', alias: 'no-route', with: 0 },
  { name: 'icmp6-adm-prohibited', alias: 'adm-prohibited', with: 1 },
  { name: 'icmp6-addr-unreachable', alias: 'addr-unreach', with: 3 },
  { name: 'icmp6-port-unreachable', alias: 'port-unreach', with: 4 },
  { name: 'tcp-reset', alias: 'tcp-reset', with: 6 },
  { name: 'icmp6-policy-fail', alias: 'policy-fail', with: 7 },
  { name: 'icmp6-reject-route', alias: 'reject-route', with: 8 },
];

/** strncasecmp(full, arg, strlen(arg)) == 0: `arg` is a case-insensitive prefix of `full`. */
function isPrefix(full: string, arg: string): boolean {
  return arg.length <= full.length && full.slice(0, arg.length).toLowerCase() === arg.toLowerCase();
}

const IPPROTO_TCP = 6;
const FILTER_HOOKS = (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD) | (1 << Hook.LOCAL_OUT);

function makeReject(family: Family): TargetModule<RejectData> {
  const names = family === 'ip' ? NAMES4 : NAMES6;
  const tcpReset = family === 'ip' ? IPT_REJECT.TCP_RESET : IP6T_REJECT.TCP_RESET;
  const echoReply = family === 'ip' ? IPT_REJECT.ICMP_ECHOREPLY : IP6T_REJECT.ICMP6_ECHOREPLY;
  const kmod = family === 'ip' ? 'ipt_REJECT' : 'ip6t_REJECT';
  return {
    kind: 'target',
    name: 'REJECT',
    family,
    options: [{ name: 'reject-with', arg: 1 }],
    tables: ['filter'],
    hooks: FILTER_HOOKS,
    init: () => ({ with: family === 'ip' ? IPT_REJECT.ICMP_PORT_UNREACHABLE : IP6T_REJECT.ICMP6_PORT_UNREACH }),
    parse(d, _opt, arg, _inv, ctx) {
      const a = arg!;
      for (const n of names) {
        if (isPrefix(n.name, a) || isPrefix(n.alias, a)) {
          d.with = n.with;
          return;
        }
      }
      if (family === 'ip' && (isPrefix('echo-reply', a) || isPrefix('echoreply', a))) {
        ctx.warn('--reject-with echo-reply no longer supported');
      }
      fail(`unknown reject type "${a}"`);
    },
    save(d) {
      const n = names.find((x) => x.with === d.with);
      return ` --reject-with ${n ? n.name : String(d.with)}`;
    },
    check(d, ctx) {
      if (d.with === echoReply) return `${kmod}: ECHOREPLY is not supported`;
      if (d.with === tcpReset && (ctx.rule.proto !== IPPROTO_TCP || ctx.rule.invProto)) {
        return `${kmod}: TCP_RESET invalid for non-tcp (the rule needs -p tcp)`;
      }
      return undefined;
    },
    lower: (c, t) => lowerReject(c, t.data),
    reference: rejectTg,
  };
}

export const REJECT4 = makeReject('ip');
export const REJECT6 = makeReject('ip6');

// --- lowering (the VM engine) ------------------------------------------------
/* REJECT → `reject` (NF_DROP and the reply event): tcp reset or an ICMP/ICMPv6 unreachable code. */
/** IPv4 `enum ipt_reject_with` → ICMP code (7 = tcp-reset). */
const REJECT4_CODE = [0, 1, 2, 3, 3, 9, 10, -1, 13];

/** IPv6 `enum ip6t_reject_with` → ICMPv6 code (6 = tcp-reset). */
const REJECT6_CODE = [0, 1, 2, 3, 4, 4, -1, 5, 6];

/**
 * What a REJECT rule's data asks for (reject_tg / reject_tg6): a TCP reset,
 * or the ICMP / ICMPv6 destination-unreachable code; its name as
 * iptables-save prints it.
 */
export function rejectReply(family: Family, d: RejectData): { name: string; tcpReset: boolean; code: number } {
  const v6 = family === 'ip6';
  const tcpReset = v6 ? d.with === IP6T_REJECT.TCP_RESET : d.with === IPT_REJECT.TCP_RESET;
  const code = tcpReset ? 0 : (v6 ? REJECT6_CODE : REJECT4_CODE)[d.with] ?? 3;
  const n = (v6 ? NAMES6 : NAMES4).find((x) => x.with === d.with);
  return { name: n ? n.name : String(d.with), tcpReset, code };
}

function lowerReject(c: LowerCtx, d: RejectData): void {
  const w = d.with;
  const tcpReset = c.v6 ? w === 6 : w === 7;
  const code = (c.v6 ? REJECT6_CODE : REJECT4_CODE)[w] ?? 3;
  emitReject(c.b, tcpReset ? NFT_REJECT_TCP_RST : NFT_REJECT_ICMP_UNREACH, tcpReset ? 0 : code);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * REJECT target: net/ipv4/netfilter/ipt_REJECT.c reject_tg() and
 * net/ipv6/netfilter/ip6t_REJECT.c reject_tg6() (kernel 6.18): ask for an
 * ICMP error or a TCP reset, then NF_DROP. The reply is recorded by the name
 * of its kind; whether the stack actually sends it (never for non-first
 * fragments, ICMP errors, RSTs, broadcast destinations, ...) is decided by
 * nf_send_unreach()/nf_send_reset(), which belong to the node model.
 */
const REPLY4 = ['icmp-net-unreachable', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-port-unreachable', 'icmp-echo-reply', 'icmp-net-prohibited', 'icmp-host-prohibited', 'tcp-reset', 'icmp-admin-prohibited'];
const REPLY6 = ['icmp6-no-route', 'icmp6-adm-prohibited', 'icmp6-not-neighbour', 'icmp6-addr-unreachable', 'icmp6-port-unreachable', 'icmp6-echo-reply', 'tcp-reset', 'icmp6-policy-fail', 'icmp6-reject-route'];

function rejectTg(info: RejectData, family: 'ip' | 'ip6'): TargetFn {
  const reply = (family === 'ip' ? REPLY4 : REPLY6)[info.with] ?? `reject-with ${info.with}`;
  return (par) => {
    par.env.reject = { chain: par.chain, rule: par.rule };
    if (par.env.recording) par.env.actions.push({ kind: 'REJECT', chain: par.chain, rule: par.rule, with: reply });
    return NF_DROP;
  };
}
