/**
 * A deterministic generator of kube-proxy (iptables mode) rulesets of any
 * size, in the shape kube-proxy's syncProxyRules() writes: per Service a
 * KUBE-SERVICES dispatch rule, a KUBE-SVC chain (masquerade mark for
 * off-cluster sources, then a `statistic --mode random` ladder over the
 * endpoints), and per endpoint a KUBE-SEP chain (hairpin mark, DNAT).
 * Used by the benchmarks and by `nfvm gen`.
 */
import type { CbHeader } from './classbench.js';

export interface KubeGenOptions {
  services: number;
  endpointsPerService: number;
  /** Deterministic seed for chain-name hashes. */
  seed?: number;
}

function hashName(prefix: string, n: number, seed: number): string {
  // 16 base32 characters, as kube-proxy's servicePortChainName() prints them
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let x = (n * 2654435761 + seed * 40503 + 0x9e3779b9) >>> 0;
  let s = '';
  for (let i = 0; i < 16; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    s += A[x & 31];
  }
  return prefix + s;
}

export function kubeProxyRuleset(o: KubeGenOptions): string {
  const seed = o.seed ?? 1;
  const chains: string[] = [];
  const rules: string[] = [];
  rules.push('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  rules.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  rules.push('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING');
  rules.push('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000');
  rules.push('-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN');
  rules.push('-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0');
  rules.push('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully');
  chains.push('KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SERVICES');
  const svcRules: string[] = [];
  for (let s = 0; s < o.services; s++) {
    const ip = `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`;
    const name = `ns${s % 97}/svc${s}:p80`;
    const svc = hashName('KUBE-SVC-', s, seed);
    chains.push(svc);
    svcRules.push(`-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc}`);
    rules.push(`-A ${svc} ! -s 10.0.0.0/8 -d ${ip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`);
    const n = o.endpointsPerService;
    for (let e = 0; e < n; e++) {
      const sep = hashName('KUBE-SEP-', s * 1024 + e, seed + 7);
      chains.push(sep);
      const ep = `10.${180 + (e & 63)}.${(s >> 8) & 255}.${s & 255}`;
      const left = n - e;
      const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
      rules.push(`-A ${svc} -m comment --comment "${name} -> ${ep}:8080"${stat} -j ${sep}`);
      rules.push(`-A ${sep} -s ${ep}/32 -m comment --comment "${name}" -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep} -p tcp -m comment --comment "${name}" -m tcp -j DNAT --to-destination ${ep}:8080`);
    }
  }
  svcRules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  const head = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]'];
  chains.sort();
  return [...head, ...chains.map((c) => `:${c} - [0:0]`), ...rules, ...svcRules, 'COMMIT', ''].join('\n');
}

/** The number of `-A` rules kubeProxyRuleset() writes. */
export function kubeRuleCount(o: KubeGenOptions): number {
  return 7 + 1 + o.services * (2 + 3 * o.endpointsPerService);
}

/**
 * ClusterIP traffic for a kube-proxy ruleset of `services` Services: `count`
 * TCP headers to random Services' cluster IPs (10.96.0.0/12 as
 * kubeProxyRuleset numbers them), port 80, from pod addresses of
 * 10.244.1.0/24 with distinct source ports (every header a new connection).
 */
export function clusterIpHeaders(services: number, count: number): CbHeader[] {
  const headers: CbHeader[] = [];
  let x = 12345;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const s = x % services;
    const dst = ((10 << 24) | ((96 + (s >> 16)) << 16) | (((s >> 8) & 255) << 8) | (s & 255)) >>> 0;
    headers.push({ src: ((10 << 24) | (244 << 16) | (1 << 8) | (7 + (i >> 14))) >>> 0, dst, sport: 1024 + (i & 16383), dport: 80, proto: 6, filter: 0 });
  }
  return headers;
}
