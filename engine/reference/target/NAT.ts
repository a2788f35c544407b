/**
 * SNAT, DNAT, MASQUERADE and REDIRECT: net/netfilter/xt_nat.c,
 * xt_MASQUERADE.c, xt_REDIRECT.c (kernel 6.18). The translation needs the
 * conntrack model (issue 4); until then each records its event and returns
 * NF_ACCEPT, as the kernel's targets do once the binding is set up.
 */
import type { NatKind, NatRangeData } from '../../../ext/target/NAT.js';
import { NF_ACCEPT } from '../../../core/netfilter.js';
import type { TargetFn } from '../../../ext/xt.js';

export function NAT(kind: NatKind, info: NatRangeData): TargetFn {
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'NAT', chain: par.chain, rule: par.rule, target: kind, data: info });
    return NF_ACCEPT;
  };
}
