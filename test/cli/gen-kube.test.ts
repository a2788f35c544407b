/**
 * `nfvm gen kube-proxy`: the snapshot of each mode parses, `nfvm save`
 * prints its rules back unchanged (it is written as iptables-save prints),
 * a traced Service packet reaches one of its endpoints, `trace
 * --all-branches` lists every endpoint with kube-proxy's probabilities, and
 * the rules have the shapes of kube-proxy's own rulesets in the corpus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, runCli } from '../helpers/cli.js';
import { corpusPath, describeCorpus } from '../helpers/corpus.js';
import { kubeHash, kubeProxySnapshot, kubeServices, kubeTextEstimate, statisticProbability, type KubeGenOptions } from '../../gen/kube-proxy.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { formatAddr } from '../../hooks/route/index.js';
import { saveRuleset } from '../../compiler/save.js';
import { formatIpvsadmSave, parseIpvsadmSave } from '../../hooks/ipvs/index.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { LINKTYPE_ETHERNET, writePcap } from '../../hooks/input/capture.js';

let cli: string;
let tmp: string;

beforeAll(async () => {
  cli = await buildCli();
  tmp = mkdtempSync(join(tmpdir(), 'nfvm-gen-'));
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function gen(o: KubeGenOptions): string {
  const dir = join(tmp, `node${n++}`);
  const args = ['gen', 'kube-proxy', '--services', String(o.services), '--endpoints', String(o.endpoints), '--mode', o.mode, '--seed', String(o.seed ?? 1)];
  if (o.nodePorts) args.push('--nodeports');
  if (o.localTrafficPolicy) args.push('--local-traffic-policy');
  const r = runCli(cli, [...args, dir]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return dir;
}

const noComments = (t: string): string => t.split('\n').filter((l) => !l.startsWith('#')).join('\n');

interface Outcome {
  probability: number;
  fate: { kind: string; nat?: string[] };
}

function outcomes(dir: string, packet: string): Outcome[] {
  const r = runCli(cli, ['trace', dir, '--packet', packet, '--all-branches', '--json']);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { outcomes: Outcome[] }).outcomes;
}

describe('nfvm gen kube-proxy', () => {
  for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
    it(`${mode} mode: the rules print back as iptables-save would (and the sets as ipset save would)`, () => {
      const o = { services: 40, endpoints: 3, mode, nodePorts: true, localTrafficPolicy: true, seed: 3 };
      const dir = gen(o);
      const files = readdirSync(dir).sort();
      expect(files).toEqual(
        mode === 'iptables' ? ['ip-addr.json', 'ip-link.json', 'ip-route.json', 'iptables-save.txt', 'sysctl.txt']
          : mode === 'ipvs' ? ['ip-addr.json', 'ip-link.json', 'ip-route.json', 'ipset-save.txt', 'iptables-save.txt', 'ipvsadm-save.txt', 'sysctl.txt']
            : ['ip-addr.json', 'ip-link.json', 'ip-route.json', 'ipset-save.txt', 'iptables-save.txt', 'nft-ruleset.txt', 'sysctl.txt'],
      );
      const rules = join(dir, 'iptables-save.txt');
      const ipset = files.includes('ipset-save.txt') ? ['--ipset', join(dir, 'ipset-save.txt')] : [];
      const r = runCli(cli, ['save', rules, ...ipset]);
      expect(r.err).toBe('');
      expect(noComments(r.out)).toBe(readFileSync(rules, 'utf8'));
      if (mode === 'ipvs') {
        const svcs = kubeServices(o);
        const ipvsText = readFileSync(join(dir, 'ipvsadm-save.txt'), 'utf8');
        // ipvsadm-save -n prints services and real servers sorted: the generated text is what it would print
        expect(formatIpvsadmSave(parseIpvsadmSave(ipvsText, 'ipvsadm-save.txt'))).toBe(ipvsText);
        const vs = ipvsText.split('\n').filter((l) => l.startsWith('-A '));
        expect(vs.length).toBe(svcs.length + svcs.filter((s) => s.nodePort !== undefined).length);
        const addrs = JSON.parse(readFileSync(join(dir, 'ip-addr.json'), 'utf8')) as { ifname: string; addr_info: { local: string }[] }[];
        expect(addrs.find((l) => l.ifname === 'kube-ipvs0')!.addr_info.map((a) => a.local)).toEqual(svcs.map((s) => s.clusterIp));
      }
    });
  }

  for (const mode of ['iptables', 'nftables'] as const) {
    it(`${mode} mode: a Service packet reaches each of its endpoints, with kube-proxy's probabilities`, () => {
      const o = { services: 100, endpoints: 4, mode, seed: 5 };
      const dir = gen(o);
      const svcs = kubeServices(o);
      for (const sv of [svcs[0]!, svcs[37]!, svcs[99]!]) {
        const pkt = `${sv.proto} 192.168.0.9:5555 > ${sv.clusterIp}:${sv.port} iif eth0`;
        const r = runCli(cli, ['trace', dir, '--packet', pkt]);
        expect(r.code, r.err).toBe(0);
        const last = r.out.trim().split('\n').pop()!;
        expect(sv.endpoints.map((e) => `DNAT to ${e}:${sv.targetPort}`).some((d) => last.startsWith(d)), last).toBe(true);
        const all = outcomes(dir, pkt);
        const reached = all.map((x) => x.fate.nat![0]).sort();
        expect(reached).toEqual(sv.endpoints.map((e) => `DNAT to ${e}:${sv.targetPort}`).sort());
        for (const x of all) expect(x.probability).toBeCloseTo(1 / sv.endpoints.length, 6);
      }
    });
  }

  it('ipvs mode: a ClusterIP is the node\'s own address (kube-ipvs0) and KUBE-SERVICES accepts it by set', () => {
    const o = { services: 50, endpoints: 2, mode: 'ipvs' as const };
    const dir = gen(o);
    const sv = kubeServices(o)[7]!;
    const r = runCli(cli, ['trace', dir, '--packet', `${sv.proto} 10.128.0.9:5555 > ${sv.clusterIp}:${sv.port} iif cni0`]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT');
    expect(r.out).toContain('-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN');
    // After filter INPUT, ip_vs_in_hook schedules the SYN to an endpoint and sends it out through OUTPUT and POSTROUTING.
    const lines = r.out.trim().split('\n');
    const input = lines.findIndex((l) => l.startsWith('TRACE: filter:INPUT:'));
    const sched = lines.findIndex((l) => l.startsWith(`# ipvs: ${sv.proto.toUpperCase()} 10.128.0.9:5555 > ${sv.clusterIp}:${sv.port} matches service`));
    expect(sched).toBeGreaterThan(input);
    expect(lines.findIndex((l) => l.startsWith('TRACE: nat:POSTROUTING:'))).toBeGreaterThan(sched);
    const last = lines.pop()!;
    expect(sv.endpoints.some((e) => last.startsWith(`IPVS DNAT to ${e}:${sv.targetPort}, forwarded out cni0 to ${e}`)), last).toBe(true);
  });

  it('ipvs mode: replayed clients of a ClusterIP reach every endpoint in turn (rr), counted as ipvsadm -L -n --stats counts', () => {
    const o = { services: 12, endpoints: 3, mode: 'ipvs' as const };
    const dir = gen(o);
    const sv = kubeServices(o).find((s) => s.proto === 'tcp')!;
    const frames = [0, 1, 2, 3, 4, 5].map((i) => ({ data: encodeSpec(parseSpec(`${sv.proto} 10.128.0.${9 + i}:${5555 + i} > ${sv.clusterIp}:${sv.port} src-mac 02:00:00:00:00:09 dst-mac 0a:58:0a:80:00:01`)).data }));
    const pcap = join(tmp, 'ipvs-rr.pcap');
    writeFileSync(pcap, writePcap(frames, { linktype: LINKTYPE_ETHERNET }));
    const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--iface', 'cni0', '--save', 'ipvs']);
    expect(r.code, r.err).toBe(0);
    const at = r.out.indexOf(`TCP  ${sv.clusterIp}:${sv.port}`);
    expect(at).toBeGreaterThan(0);
    const block = r.out.slice(at).split('\n').slice(0, 4);
    expect(block[0]).toMatch(/^TCP  \S+\s+6\s+6\s+0\s+240\s+0$/);
    for (const e of sv.endpoints) expect(block.some((l) => new RegExp(`^  -> ${e.replaceAll('.', '\\.')}:${sv.targetPort}\\s+2\\s+2\\s+0\\s+80\\s+0$`).test(l)), block.join('\n')).toBe(true);
  });

  it('nftables mode: the verdict map is looked up for the first packet of a connection only, as kube-proxy\'s nat chains see it', () => {
    const o = { services: 12, endpoints: 2, mode: 'nftables' as const };
    const dir = gen(o);
    const sv = kubeServices(o).find((s) => s.proto === 'udp')!;
    // one UDP flow of three datagrams, no reply: NEW all three times, the connection confirmed after the first
    const frames = [0, 1, 2].map(() => ({ data: encodeSpec(parseSpec(`udp 10.128.0.9:5555 > ${sv.clusterIp}:${sv.port} src-mac 02:00:00:00:00:09 dst-mac 0a:58:0a:80:00:01`)).data }));
    const pcap = join(tmp, 'nft-vmap.pcap');
    writeFileSync(pcap, writePcap(frames, { linktype: LINKTYPE_ETHERNET }));
    const r = runCli(cli, ['replay', dir, '--pcap', pcap, '--iface', 'cni0']);
    expect(r.code, r.err).toBe(0);
    const vmap = r.out.split('\n').filter((l) => l.includes('-A PREROUTING') && l.includes('service-ips verdict map'));
    expect(vmap).toHaveLength(1);
    expect(vmap[0]).toMatch(/^\[1:\d+\] /);
    // the nat chains saw the first datagram only: one pass through the Service's chain
    const svc = r.out.split('\n').filter((l) => l.includes(`-A ${sv.svcChain} `)).map((l) => Number(/^\[(\d+):/.exec(l)![1]));
    expect(svc.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('--local-traffic-policy: a NodePort packet reaches only the local endpoints', () => {
    const o = { services: 20, endpoints: 4, mode: 'iptables' as const, nodePorts: true, localTrafficPolicy: true };
    const dir = gen(o);
    const sv = kubeServices(o)[3]!;
    const local = sv.endpoints.filter((_, i) => sv.local[i]).map((e) => `DNAT to ${e}:${sv.targetPort}`).sort();
    expect(local.length).toBe(2);
    const all = outcomes(dir, `${sv.proto} 203.0.113.7:4444 > 192.168.0.2:${sv.nodePort} iif eth0`);
    expect(all.map((x) => x.fate.nat![0]).sort()).toEqual(local);
  });

  // kube-proxy keeps the client's address for a Local NodePort in every mode (iptables: KUBE-EXT without the
  // masquerade jump; IPVS: KUBE-NODE-PORT-LOCAL-* returns before KUBE-NODE-PORT-* marks; nftables: no
  // mark-for-masquerade) and masquerades a ClusterIP reached from outside the cluster
  for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
    it(`${mode} mode, --local-traffic-policy: a NodePort keeps the client's address, a ClusterIP from outside is masqueraded`, () => {
      const o = { services: 12, endpoints: 4, mode, nodePorts: true, localTrafficPolicy: true, seed: 9 };
      const dir = gen(o);
      for (const sv of kubeServices(o).filter((s) => s.nodePort !== undefined).slice(0, 4)) {
        const local = sv.endpoints.filter((_, i) => sv.local[i]);
        const np = runCli(cli, ['trace', dir, '--packet', `${sv.proto} 203.0.113.7:4444 > 192.168.0.2:${sv.nodePort} iif eth0`]);
        expect(np.code, np.err).toBe(0);
        const npLast = np.out.trim().split('\n').pop()!;
        expect(local.some((e) => npLast.includes(`DNAT to ${e}:${sv.targetPort}, forwarded out cni0`)), npLast).toBe(true);
        expect(npLast).not.toContain('SNAT');
        const cip = runCli(cli, ['trace', dir, '--packet', `${sv.proto} 203.0.113.7:4444 > ${sv.clusterIp}:${sv.port} iif eth0`]);
        expect(cip.code, cip.err).toBe(0);
        expect(cip.out.trim().split('\n').pop()).toMatch(/DNAT to [\d.]+:\d+, SNAT to 10\.128\.0\.1:\d+, forwarded out cni0/);
      }
    });
  }

  // syncProxyRules() for a Service without endpoints: filter rules reject its ClusterIP (KUBE-SERVICES) and its
  // NodePort (KUBE-EXTERNAL-SERVICES, --dst-type LOCAL); IPVS has the virtual service without real servers
  // (ip_vs_leave answers port unreachable); the health-check node port is accepted in every mode
  it('every mode: a Service without endpoints is refused on its ClusterIP and its NodePort, its health check answered', () => {
    for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
      const o = { services: 4, endpoints: 0, mode, nodePorts: true, localTrafficPolicy: true, seed: 2 };
      const dir = gen(o);
      kubeServices(o).forEach((sv, i) => {
        for (const [dst, port] of [[sv.clusterIp, sv.port], ['192.168.0.2', sv.nodePort!]] as const) {
          const r = runCli(cli, ['trace', dir, '--packet', `${sv.proto} 198.51.100.7:40000 > ${dst}:${port} iif eth0`]);
          expect(r.code, r.err).toBe(0);
          const last = r.out.trim().split('\n').pop()!;
          if (mode === 'ipvs') expect(last, `${mode} ${dst}:${port}`).toMatch(/has no real server .*ICMP port unreachable/);
          else expect(last, `${mode} ${dst}:${port}`).toBe(`rejected by filter:${dst === sv.clusterIp ? 'KUBE-SERVICES' : 'KUBE-EXTERNAL-SERVICES'} rule ${i + 1} with icmp-port-unreachable`);
        }
        const hc = runCli(cli, ['trace', dir, '--packet', `tcp 198.51.100.7:40000 > 192.168.0.2:${sv.healthCheckNodePort} syn iif eth0`]);
        expect(hc.out, mode).toContain(mode === 'ipvs' ? '-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port"' : `-A KUBE-NODEPORTS -p tcp -m comment --comment "${sv.name} health check node port"`);
      });
    }
  });

  // nfvm diff lists the outcomes of each side side by side; where one side has more (a Service's random ladder of
  // 2 endpoints against 3), the other's column says there is no such outcome (it crashed there)
  it('nfvm diff of a node whose Services gain an endpoint: 2 outcomes against 3, each listed', () => {
    const a = gen({ services: 6, endpoints: 2, mode: 'iptables', seed: 1 });
    const b = gen({ services: 6, endpoints: 3, mode: 'iptables', seed: 1 });
    const r = runCli(cli, ['diff', join(a, 'iptables-save.txt'), join(b, 'iptables-save.txt'), '--snapshot', a, '--packets', '500']);
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/OLD \(outcome 2 of 2, probability 0\.5\) +\| NEW \(outcome 2 of 3, probability 0\.3333\)/);
    expect(r.out).toMatch(/OLD +\| NEW \(outcome 3 of 3, probability 0\.3333\)\n {2}\(no such outcome\)/);
  });

  // A node has a default route: its own connection to a ClusterIP is routed before OUTPUT's DNAT (connect() fails
  // with ENETUNREACH without one), and a port no Service has leaves by the gateway
  it('every mode: the node routes as a node with a default gateway does, its own Service connections reach an endpoint', () => {
    for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
      const o = { services: 8, endpoints: 2, mode, seed: 4 };
      const dir = gen(o);
      const routes = JSON.parse(readFileSync(join(dir, 'ip-route.json'), 'utf8')) as { dst: string; gateway?: string; dev: string; table?: string; type?: string }[];
      expect(routes[0]).toEqual({ dst: 'default', gateway: '192.168.0.1', dev: 'eth0', flags: [] });
      // the routes the kernel makes for the addresses, as nfvm derives them when a snapshot has no ip-route.json
      const derived = buildNode('', new Map([...kubeProxySnapshot(o)].filter(([f]) => f !== 'ip-route.json')));
      const listed = buildNode('', kubeProxySnapshot(o));
      const dump = (x: typeof listed) => [...x.fib4.tables.values()].flatMap((t) => t.routes().map((q) => `${t.id} ${q.type} ${formatAddr(q.dst)}/${q.plen} ${q.nexthops[0]?.dev} ${q.nexthops[0]?.gateway ? formatAddr(q.nexthops[0].gateway) : ''} ${q.prefsrc ? formatAddr(q.prefsrc) : ''} ${q.scope}`)).sort();
      expect(dump(listed)).toEqual([...dump(derived), '254 1 0.0.0.0/0 eth0 192.168.0.1  0'].sort());
      expect(routes.filter((r) => r.type === 'broadcast').map((r) => r.dst)).toEqual(['10.255.255.255', '127.255.255.255', '192.168.0.255']);
      const sv = kubeServices(o).find((s) => s.proto === 'tcp')!;
      const own = runCli(cli, ['trace', dir, '--packet', `tcp 192.168.0.2:5000 > ${sv.clusterIp}:${sv.port} syn from local`]);
      expect(own.code, own.err).toBe(0);
      const last = own.out.trim().split('\n').pop()!;
      expect(sv.endpoints.some((e) => last.includes(`DNAT to ${e}:${sv.targetPort}, SNAT to 10.128.0.1:`) && last.endsWith(`sent out cni0 to ${e}`)), last).toBe(true);
      if (mode !== 'ipvs') {
        const other = runCli(cli, ['trace', dir, '--packet', `tcp 10.128.1.9:5000 > ${sv.clusterIp}:${sv.port + 1} syn iif cni0`]);
        expect(other.out.trim().split('\n').pop()).toBe('forwarded out eth0 via 192.168.0.1');
      }
    }
  });

  it('every mode: the file written piece by piece is the text made whole, and the rule count printed is its -A lines', () => {
    for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
      // megabytes of text: many pieces, and chains of one Service on both sides of a piece's end
      const o = { services: 1500, endpoints: 4, mode, nodePorts: true, localTrafficPolicy: true, seed: 3 };
      const dir = join(tmp, `node${n++}`);
      const r = runCli(cli, ['gen', 'kube-proxy', '--services', '1500', '--endpoints', '4', '--mode', mode, '--nodeports', '--local-traffic-policy', '--seed', '3', dir]);
      expect(r.code, r.err).toBe(0);
      const written = readFileSync(join(dir, 'iptables-save.txt'), 'latin1');
      const made = kubeProxySnapshot(o).get('iptables-save.txt')!;
      // IPVS mode's rules list sets, not Services: a few rules, one piece
      if (mode !== 'ipvs') expect(written.length).toBeGreaterThan(500_000);
      expect(written === made).toBe(true);
      expect(r.out).toContain(`${mode} mode: ${made.split('\n').filter((l) => l.startsWith('-A ')).length} iptables rules`);
    }
  });

  it('refuses bad options with a usage error and writes nothing', () => {
    const dir = join(tmp, 'bad');
    for (const args of [['--services', '0', '--endpoints', '1', '--mode', 'iptables'], ['--services', '5', '--endpoints', '1', '--mode', 'bpf'], ['--services', '5', '--endpoints', '1', '--mode', 'iptables', '--local-traffic-policy']]) {
      const r = runCli(cli, ['gen', 'kube-proxy', ...args, dir]);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^nfvm: gen/);
    }
    expect(() => readdirSync(dir)).toThrow();
  });

  it('refuses at once a node whose rules would not fit in a snapshot file nfvm reads', () => {
    const dir = join(tmp, 'huge');
    const t0 = performance.now();
    const r = runCli(cli, ['gen', 'kube-proxy', '--services', '200000', '--endpoints', '10', '--mode', 'iptables', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^nfvm: gen kube-proxy: --services x --endpoints: about \d+ MiB in the snapshot's largest file, more than the 256 MiB nfvm reads as a snapshot file/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(() => readdirSync(dir)).toThrow();
  });

  it('over-estimates the largest file of a snapshot, whatever the mode and options (kubeTextEstimate)', () => {
    for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
      for (const nodePorts of [false, true]) {
        for (const [services, endpoints] of [[50, 0], [300, 1], [300, 2], [200, 12], [20, 300], [3000, 1]] as const) {
          const o: KubeGenOptions = { services, endpoints, mode, nodePorts, localTrafficPolicy: nodePorts, seed: 3 };
          let largest = 0;
          for (const text of kubeProxySnapshot(o).values()) largest = Math.max(largest, text.length);
          expect(kubeTextEstimate(o), `${mode} ${services}x${endpoints}${nodePorts ? ' nodeports' : ''}`).toBeGreaterThan(largest);
        }
      }
    }
  });

  it('statistic probabilities as iptables-save prints what kube-proxy writes ("%0.10f")', () => {
    for (let k = 2; k <= 12; k++) {
      const written = (1 / k).toFixed(10);
      const saved = saveRuleset(parseRestore(`*nat\n:X - [0:0]\n-A X -m statistic --mode random --probability ${written} -j ACCEPT\nCOMMIT\n`));
      expect(saved).toContain(`--probability ${statisticProbability(0, k)} `);
    }
  });
});

/**
 * A rule's shape: its text with addresses, ports, chain hashes and Service
 * names replaced, so generated rules can be compared with kube-proxy's own.
 */
function shape(rule: string): string {
  return rule
    .replace(/KUBE-(SVC|SEP|EXT|SVL|FW)-[A-Z2-7]{16}/g, 'KUBE-$1-H')
    .replace(/ns\d+\/svc\d+:p\d+/g, 'SVCPORT')
    .replace(/\d+\.\d+\.\d+\.\d+(\/\d+)?(:\d+)?/g, 'ADDR')
    .replace(/--dport \d+/g, '--dport P')
    .replace(/--probability [0-9.]+/g, '--probability X');
}

describeCorpus('nfvm gen kube-proxy against kube-proxy\'s rulesets', () => {
  it('chain names are kube-proxy\'s hashes (servicePortChainName, servicePortEndpointChainName)', () => {
    const text = readFileSync(corpusPath('kubernetes-kube-proxy', 'overall-expected.partial.rules'), 'utf8');
    expect(text).toContain(`KUBE-SVC-${kubeHash('ns1/svc1:p80tcp')}`);
    expect(text).toContain(`KUBE-SEP-${kubeHash('ns1/svc1:p80tcp10.180.0.1:80')}`);
  });

  it('the KUBE-* rules of a generated iptables-mode node have the shapes of kube-proxy\'s', () => {
    // the corpus writes multi-word comments unquoted (its test helper joins words): quoted as iptables-save prints them
    const corpus = readFileSync(corpusPath('kubernetes-kube-proxy', 'tracepacket.rules'), 'utf8').replace(/--comment (?!")(.+?)(?= -[a-zA-Z])/g, (_m, c: string) => `--comment "${c}"`);
    const theirs = new Set(saveRuleset(parseRestore(corpus)).split('\n').filter((l) => l.startsWith('-A ')).map(shape));
    const o = { services: 30, endpoints: 3, mode: 'iptables' as const, nodePorts: true, seed: 2 };
    const dir = gen(o);
    const ours = readFileSync(join(dir, 'iptables-save.txt'), 'utf8').split('\n').filter((l) => l.startsWith('-A ')).map(shape);
    // kube-proxy's fixtures use 10.0.0.0/8 as the cluster CIDR and port 80 only: every generated shape is one of theirs
    // (UDP Services have the TCP shapes with udp; kube-proxy adds --random-fully where iptables has it, as on this kernel, the fixtures' fake iptables has not)
    const unknown = [...new Set(ours.map((s) => s.replace(/\budp\b/g, 'tcp')))].filter((s) => !theirs.has(s));
    expect(unknown).toEqual(['-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully']);
    // and the shapes every Service has in kube-proxy's output are all generated
    for (const s of ['-A KUBE-SERVICES -d ADDR -p tcp -m comment --comment "SVCPORT cluster IP" -m tcp --dport P -j KUBE-SVC-H',
      '-A KUBE-SVC-H ! -s ADDR -d ADDR -p tcp -m comment --comment "SVCPORT cluster IP" -m tcp --dport P -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-H -s ADDR -m comment --comment "SVCPORT" -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-H -p tcp -m comment --comment "SVCPORT" -m tcp -j DNAT --to-destination ADDR',
      '-A KUBE-NODEPORTS -p tcp -m comment --comment "SVCPORT" -m tcp --dport P -j KUBE-EXT-H']) {
      expect(theirs.has(s), s).toBe(true);
      expect(ours, s).toContain(s);
    }
  });
});
