/**
 * The benchmarks' kube-proxy rulesets: iptables mode of `nfvm gen
 * kube-proxy` (gen/kube-proxy.ts), and ClusterIP traffic to them.
 */
import { iptablesRules, kubeServices, type KubeService } from '../gen/kube-proxy.js';
import type { CbHeader } from './classbench.js';

export interface KubeGenOptions {
  services: number;
  endpointsPerService: number;
  /** Picks each Service's port and protocol (gen/kube-proxy.ts). */
  seed?: number;
}

const services = (o: KubeGenOptions): KubeService[] => kubeServices({ services: o.services, endpoints: o.endpointsPerService, mode: 'iptables', seed: o.seed });

/** kube-proxy's iptables-mode iptables-save text (filter and nat) for `o.services` ClusterIP Services. */
export function kubeProxyRuleset(o: KubeGenOptions): string {
  return iptablesRules(services(o));
}

/** The number of `-A` rules kubeProxyRuleset() writes: 17 base rules, 2 + 3M per Service (1, its REJECT, without endpoints). */
export function kubeRuleCount(o: KubeGenOptions): number {
  return 17 + o.services * (o.endpointsPerService > 0 ? 2 + 3 * o.endpointsPerService : 1);
}

/**
 * ClusterIP traffic for a kube-proxy ruleset of `services` Services (seed
 * `seed`): `count` headers to random Services' cluster IPs and ports, from
 * pod addresses of 10.128.0.0/9 with distinct source ports (every header a
 * new connection).
 */
export function clusterIpHeaders(services: number, count: number, seed?: number): CbHeader[] {
  const svcs = kubeServices({ services, endpoints: 1, mode: 'iptables', seed });
  const headers: CbHeader[] = [];
  let x = 12345;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const sv = svcs[x % services]!;
    const [a, b, c, d] = sv.clusterIp.split('.').map(Number) as [number, number, number, number];
    const dst = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
    headers.push({ src: ((10 << 24) | (200 << 16) | (1 << 8) | (7 + (i >> 14))) >>> 0, dst, sport: 1024 + (i & 16383), dport: sv.port, proto: sv.proto === 'tcp' ? 6 : 17, filter: 0 });
  }
  return headers;
}
