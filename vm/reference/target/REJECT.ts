/**
 * REJECT target: net/ipv4/netfilter/ipt_REJECT.c reject_tg() and
 * net/ipv6/netfilter/ip6t_REJECT.c reject_tg6() (kernel 6.18): ask for an
 * ICMP error or a TCP reset, then NF_DROP. The reply is recorded by the name
 * of its kind; whether the stack actually sends it (never for non-first
 * fragments, ICMP errors, RSTs, broadcast destinations, ...) is decided by
 * nf_send_unreach()/nf_send_reset(), which belong to the node model (issue 4).
 */
import type { RejectData } from '../../../compiler/ext/target/REJECT.js';
import { NF_DROP } from '../../layout.js';
import type { TargetFn } from '../xt.js';

const REPLY4 = ['icmp-net-unreachable', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-port-unreachable', 'icmp-echo-reply', 'icmp-net-prohibited', 'icmp-host-prohibited', 'tcp-reset', 'icmp-admin-prohibited'];
const REPLY6 = ['icmp6-no-route', 'icmp6-adm-prohibited', 'icmp6-not-neighbour', 'icmp6-addr-unreachable', 'icmp6-port-unreachable', 'icmp6-echo-reply', 'tcp-reset', 'icmp6-policy-fail', 'icmp6-reject-route'];

export function REJECT(info: RejectData, family: 'ip' | 'ip6'): TargetFn {
  const reply = (family === 'ip' ? REPLY4 : REPLY6)[info.with] ?? `reject-with ${info.with}`;
  return (par) => {
    par.env.reject = { chain: par.chain, rule: par.rule };
    if (par.env.recording) par.env.actions.push({ kind: 'REJECT', chain: par.chain, rule: par.rule, with: reply });
    return NF_DROP;
  };
}
