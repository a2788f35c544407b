/** `ipvsadm-save -n` text: parse, print back as ipvsadm prints, located errors, snapshot loading. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NfvmError } from '../../../core/errors.js';
import { formatIpvsadmSave, parseIpvsadmSave, IP_VS_CONN_F_MASQ, IP_VS_CONN_F_DROUTE, IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2 } from '../../../hooks/ipvs/index.js';
import { buildNode } from '../../../hooks/snapshot/read.js';

// What kube-proxy's IPVS mode leaves (kube-proxy writes through netlink; ipvsadm-save prints it
// sorted: services by protocol/address/port, real servers by address/port; libipvs compares
// addresses by a wrapping int difference, so 172.18.0.3 - 10.96.0.1 < 0 puts the NodePort first).
const KUBE = `-A -t 172.18.0.3:30080 -s rr
-a -t 172.18.0.3:30080 -r 10.244.1.5:8080 -m -w 1
-a -t 172.18.0.3:30080 -r 10.244.1.6:8080 -m -w 1
-a -t 172.18.0.3:30080 -r 10.244.2.9:8080 -m -w 1
-A -t 10.96.0.1:443 -s rr
-a -t 10.96.0.1:443 -r 172.18.0.2:6443 -m -w 1
-A -t 10.96.0.10:53 -s rr
-a -t 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1
-a -t 10.96.0.10:53 -r 10.244.0.4:53 -m -w 1
-A -t 10.96.45.7:80 -s rr
-a -t 10.96.45.7:80 -r 10.244.1.5:8080 -m -w 1
-a -t 10.96.45.7:80 -r 10.244.1.6:8080 -m -w 1
-a -t 10.96.45.7:80 -r 10.244.2.9:8080 -m -w 1
-A -u 10.96.0.10:53 -s rr
-a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1
-a -u 10.96.0.10:53 -r 10.244.0.4:53 -m -w 0
`;

describe('ipvsadm-save -n', () => {
  it('reads a kube-proxy IPVS-mode table and prints it back byte for byte', () => {
    const cfg = parseIpvsadmSave(KUBE, 'ipvsadm-save.txt');
    expect(cfg.services.length).toBe(5);
    const web = cfg.services[3]!;
    expect(web).toMatchObject({ family: 4, protocol: 6, port: 80, sched: 'rr', flags: 0 });
    expect(web.dests.map((d) => [d.port, d.fwd, d.weight])).toEqual([[8080, IP_VS_CONN_F_MASQ, 1], [8080, IP_VS_CONN_F_MASQ, 1], [8080, IP_VS_CONN_F_MASQ, 1]]);
    expect(cfg.services[4]!.dests[1]!.weight).toBe(0);
    expect(formatIpvsadmSave(cfg)).toBe(KUBE);
  });

  it('persistence, netmask, fwmark, IPv6, scheduler flags, thresholds, and the ipvsadm defaults', () => {
    const text = [
      '-A -t 192.0.2.1:80 -s wrr -p 600 -M 255.255.255.0',
      '-a -t 192.0.2.1:80 -r 10.0.0.1 -g -w 3 -x 100 -y 50', // DR: the real server port is the service port
      '-A -f 7 -s sh -b sh-fallback,sh-port',
      '-a -f 7 -r 10.0.0.2:0 -i -w 2',
      '-A -t [2001:db8::1]:443 -s lc -p 60 -M 64',
      '-a -t [2001:db8::1]:443 -r [2001:db8::a]:8443 -m',
      '-A -u 192.0.2.9:53 -p', // bare -p: 300 s; no -s: wlc
      '-A -f 9 -6 -s rr',
    ].join('\n');
    const cfg = parseIpvsadmSave(text, 'x');
    const [a, f, v6, u, f6] = cfg.services;
    expect(a!.flags & IP_VS_SVC_F_PERSISTENT).toBeTruthy();
    expect([...a!.netmask]).toEqual([255, 255, 255, 0]);
    expect(a!.dests[0]).toMatchObject({ port: 80, fwd: IP_VS_CONN_F_DROUTE, weight: 3, uThreshold: 100, lThreshold: 50 });
    expect(f!.flags).toBe(IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2);
    expect(v6!.dests[0]).toMatchObject({ port: 8443, weight: 1 });
    expect(u).toMatchObject({ sched: 'wlc', timeout: 300 });
    expect(f6).toMatchObject({ family: 6, fwmark: 9 });
    // Printed in ipvs_cmp_services order (fwmark 0 first, AF_INET before AF_INET6, tcp before udp).
    expect(formatIpvsadmSave(cfg)).toBe([
      '-A -t 192.0.2.1:80 -s wrr -p 600 -M 255.255.255.0',
      '-a -t 192.0.2.1:80 -r 10.0.0.1:80 -g -w 3 -x 100 -y 50',
      '-A -u 192.0.2.9:53 -s wlc -p 300',
      '-A -t [2001:db8::1]:443 -s lc -p 60 -M 64',
      '-a -t [2001:db8::1]:443 -r [2001:db8::a]:8443 -m -w 1',
      '-A -f 7 -s sh -b sh-fallback,sh-port',
      '-a -f 7 -r 10.0.0.2:0 -i -w 2',
      '-A -f 9 -6 -s rr',
      '',
    ].join('\n'));
  });

  it('sorts addresses as libipvs does: a wrapping 32-bit difference', () => {
    // ipvs_cmp_services: r = ntohl(a) - ntohl(b) into an int; 200.0.0.1 - 10.0.0.1 = 0xbe000000 < 0.
    const cfg = parseIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-A -t 200.0.0.1:80 -s rr\n', 'x');
    expect(formatIpvsadmSave(cfg)).toBe('-A -t 200.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr\n');
  });

  const bad: [string, RegExp, number, number][] = [
    ['-A -t 10.0.0.1:80 -s nosuch', /unknown scheduler "nosuch"/, 1, 22],
    ['-A -t 10.0.0.1 -s rr', /bad service address/, 1, 7],
    ['-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s wrr', /already exists \(line 1\)/, 2, 7],
    ['-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m', /no such service/, 1, 7],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 70000', /bad value "70000"/, 2, 40],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1 -m\n-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m', /real server 10.1.1.1:80 already exists \(line 2\)/, 3, 22],
    ['-A -t 10.0.0.1:80 -s rr --frobnicate', /unknown option "--frobnicate"/, 1, 25],
    ['-X -t 10.0.0.1:80', /expected -A or -a/, 1, 1],
    ['-A -t 10.0.0.1:80 -s rr -M 255.0.0.0', /-M needs -p/, 1, 28],
    ['-A -t 10.0.0.1:80 -s', /requires a value/, 1, 21],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r [::1]:80 -m', /address family differs/, 2, 22],
    ['-A -t 10.0.0.1:80 -s sh -b mh-port', /unknown scheduler flag "mh-port"/, 1, 28],
  ];
  it.each(bad)('refuses %j with a located error', (text, re, line, col) => {
    let e: unknown;
    try {
      parseIpvsadmSave(text, 'ipvsadm-save.txt');
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(NfvmError);
    expect((e as NfvmError).message).toMatch(re);
    expect((e as NfvmError).pos).toEqual({ line, col });
    expect((e as NfvmError).file).toBe('ipvsadm-save.txt');
  });

  it('joins the snapshot: loaded when present, located errors name the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-ipvs-'));
    try {
      writeFileSync(join(dir, 'ipvsadm-save.txt'), KUBE);
      const files = new Map([['ipvsadm-save.txt', KUBE]]);
      const n = buildNode(dir, files);
      expect(n.ipvs?.services.length).toBe(5);
      expect(n.ipvs?.file).toBe(join(dir, 'ipvsadm-save.txt'));
      expect(buildNode(dir, new Map()).ipvs).toBeUndefined();
      expect(() => buildNode(dir, new Map([['ipvsadm-save.txt', '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r bogus -m\n']])))
        .toThrow(/ipvsadm-save\.txt:2:22: bad real server address "bogus"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
