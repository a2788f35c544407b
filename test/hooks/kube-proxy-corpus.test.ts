/**
 * kube-proxy's own packet-flow expectations (Kubernetes TestTracePacket:
 * ../shared/corpus/kubernetes-kube-proxy/tracepacket.rules and
 * tracepacket.flows.tsv, read in place) on the kernel-faithful node.
 *
 * The node: 192.168.0.2/24 on eth0 (the default route via 192.168.0.1),
 * 192.168.1.2/24 on eth1 (the cluster network 10.0.0.0/8 behind
 * 192.168.1.1), 192.168.99.11 on eth0 (the node IPs kube-proxy's tracer
 * calls LOCAL), pods 10.180.0.0/16 on cni0. Each flow is a TCP SYN; a
 * source that is a node IP is sent from the node itself (it would be a
 * martian arriving on a device), others arrive on the device their
 * network is behind. The DNAT destination must be one of the expected
 * endpoints, and over many seeds (statistic --mode random) every one of
 * them; the masquerade decision is whether kube-proxy's MASQUERADE rule
 * (KUBE-POSTROUTING) was reached; DROP / ACCEPT / REJECT are the fates.
 *
 * Where the kernel-faithful answer differs from the tracer's by design:
 * the tracer runs nat PREROUTING even for the node's own packets, the
 * kernel nat OUTPUT (the same KUBE-SERVICES rules, so the same answer
 * here); the tracer never matches conntrack state, the kernel's first
 * packet is NEW, so the `--ctstate NEW` jumps of filter are taken (again
 * the same answers for these flows).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { corpusPath, HAVE_CORPUS } from '../helpers/corpus.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type NodeModel } from '../../hooks/node.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import type { PathResult } from '../../hooks/path/fate.js';

const RULES = corpusPath('kubernetes-kube-proxy', 'tracepacket.rules');
const FLOWS = corpusPath('kubernetes-kube-proxy', 'tracepacket.flows.tsv');
const present = HAVE_CORPUS && existsSync(RULES) && existsSync(FLOWS);
// without the corpus the whole corpus line is printed by test/global-setup.ts; a corpus without these two files is a failure under CI
if (!present && HAVE_CORPUS && process.env.CI) throw new Error(`kube-proxy tracepacket corpus missing at ${RULES} (required under CI)`);

const NODE_IPS = ['192.168.0.2', '192.168.1.2', '192.168.99.11'];

function link(ifindex: number, name: string, mac: string, addrs: [string, number][]) {
  return {
    ifindex, ifname: name, flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', group: 'default',
    link_type: ifindex === 1 ? 'loopback' : 'ether', address: mac,
    addr_info: addrs.map(([local, prefixlen]) => ({ family: 'inet', local, prefixlen, scope: ifindex === 1 ? 'host' : 'global', label: name })),
  };
}

/** The node as snapshot files (ip -j output and sysctl.txt) with the corpus ruleset. */
function nodeFiles(rules: string): Map<string, string> {
  const links = [
    link(1, 'lo', '00:00:00:00:00:00', [['127.0.0.1', 8]]),
    link(2, 'eth0', '02:00:00:00:00:02', [['192.168.0.2', 24], ['192.168.99.11', 32]]),
    link(3, 'eth1', '02:00:00:00:00:03', [['192.168.1.2', 24]]),
    link(4, 'cni0', '02:00:00:00:00:04', [['10.180.0.254', 16]]),
  ];
  const routes = [
    { dst: 'default', gateway: '192.168.0.1', dev: 'eth0', flags: [] },
    { dst: '10.0.0.0/8', gateway: '192.168.1.1', dev: 'eth1', flags: [] },
    { dst: '192.168.0.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.0.2', flags: [] },
    { dst: '192.168.1.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.2', flags: [] },
    { dst: '10.180.0.0/16', dev: 'cni0', protocol: 'kernel', scope: 'link', prefsrc: '10.180.0.254', flags: [] },
    // the local table, as `ip -j route show table all` shows it
    { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: [] },
    ...links.slice(1).flatMap((l) => l.addr_info.map((a) => ({ type: 'local', dst: a.local, dev: l.ifname, table: 'local', protocol: 'kernel', scope: 'host', prefsrc: a.local, flags: [] }))),
  ];
  return new Map([
    ['ip-link.json', JSON.stringify(links.map(({ addr_info: _a, ...l }) => l))],
    ['ip-addr.json', JSON.stringify(links)],
    ['ip-route.json', JSON.stringify(routes)],
    ['iptables-save.txt', rules],
    ['sysctl.txt', 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.default.rp_filter = 0\n'],
  ]);
}

/**
 * The corpus file as iptables-restore takes it: its multi-word comments are
 * unquoted (README "Quirk"), which real iptables-restore refuses; quoted
 * here, up to the next option.
 */
function quoted(text: string): string {
  return text.replace(/--comment (?!")(.+?)(?= -[a-zA-Z])/g, (_m, c: string) => `--comment "${c}"`);
}

interface Flow { name: string; proto: string; src: string; dst: string; port: number; output: string; masq: boolean }

function flows(): Flow[] {
  const [, ...rows] = readFileSync(FLOWS, 'utf8').trimEnd().split('\n');
  return rows.map((r) => {
    const [name, proto, src, dst, port, output, masq] = r.split('\t') as [string, string, string, string, string, string, string];
    return { name, proto, src, dst, port: Number(port), output, masq: masq === 'true' };
  });
}

/** The flow's packet through a fresh node seeded `seed`: the result and whether MASQUERADE was reached. */
function send(files: Map<string, string>, f: Flow, seed: number): { r: PathResult; masq: boolean; model: NodeModel } {
  const model = buildNodeModel(buildNode('', files), { seed });
  model.setTrace(true);
  const where = NODE_IPS.includes(f.src) ? 'from local' : f.src.startsWith('10.') ? 'iif eth1' : 'iif eth0';
  const spec = parseSpec(`${f.proto} ${f.src}:40000 > ${f.dst}:${f.port} syn ${where}`);
  const { pkt, iif, ct } = specInput(model, spec);
  const r = iif === '' ? model.send(pkt, '', { ct }) : model.receive(pkt, iif, { ct });
  const masq = r.steps.some((s) => s.kind === 'trace' && s.chain === 'KUBE-POSTROUTING' && / -j MASQUERADE$/.test(s.rule));
  return { r, masq, model };
}

describe.skipIf(!present)(present ? 'kube-proxy TestTracePacket flows on the kernel-faithful node' : `kube-proxy TestTracePacket flows (skipped: ${RULES} not found)`, () => {
  const files = present ? nodeFiles(quoted(readFileSync(RULES, 'utf8'))) : new Map<string, string>();
  for (const f of present ? flows() : []) {
    it(`${f.name}: ${f.src} > ${f.dst}:${f.port} → ${f.output || '(unchanged)'}${f.masq ? ', masquerade' : ''}`, () => {
      const seen = new Set<string>();
      for (let seed = 1; seed <= 24; seed++) {
        const { r, masq } = send(files, f, seed);
        const dnat = r.fate.nat?.find((n) => n.startsWith('DNAT to '))?.slice(8);
        const verdict = r.fate.kind === 'dropped' ? 'DROP' : r.fate.kind === 'rejected' ? 'REJECT' : undefined;
        if (f.output === 'DROP' || f.output === 'REJECT') {
          expect(verdict).toBe(f.output);
        } else if (f.output === 'ACCEPT') {
          // the health check port: delivered after filter INPUT's ACCEPT
          expect(r.fate.kind).toBe('delivered');
          expect(r.steps.some((s) => s.kind === 'trace' && s.table === 'filter' && / -j ACCEPT$/.test(s.rule) && s.type === 'rule')).toBe(true);
        } else if (f.output === '') {
          expect(dnat).toBeUndefined();
          expect(r.fate.kind).toBe('forwarded');
        } else {
          expect(dnat, `seed ${seed}: ${r.fate.kind}`).toBeDefined();
          seen.add(dnat!);
        }
        expect(masq, `seed ${seed}: the masquerade decision`).toBe(f.masq);
      }
      if (f.output && !['DROP', 'REJECT', 'ACCEPT'].includes(f.output)) {
        // every expected endpoint is reached over the seeds, and nothing else
        expect([...seen].sort()).toEqual(f.output.split(', ').sort());
      }
    });
  }
});
