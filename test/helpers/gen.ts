/**
 * fast-check generators of iptables-restore text: rulesets with user chains
 * (including names such as `__proto__`), jumps and gotos (acyclic), and the
 * spellings iptables accepts for the same rule (abbreviated options, `=`
 * arguments, protocol numbers, implicit protocol matches, open port ranges,
 * dotted masks, quoted strings), so that the parser and the printer are
 * exercised on more than the canonical form.
 */
import fc from 'fast-check';

const octet = fc.integer({ min: 0, max: 255 });
export const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));

const prefix = fc.integer({ min: 0, max: 32 });
const dottedMask = fc.constantFrom('255.0.0.0', '255.255.0.0', '255.255.255.0', '255.0.255.0', '0.0.0.0');
const addr = fc.oneof(
  ipv4,
  fc.tuple(ipv4, prefix).map(([a, p]) => `${a}/${p}`),
  fc.tuple(ipv4, dottedMask).map(([a, m]) => `${a}/${m}`),
);

const ifname = fc.oneof(
  fc.constantFrom('eth0', 'eth+', 'lo', 'cni0', 'veth1234abcd', 'br-0a1b2c', '+', 'wg0'),
  fc.stringMatching(/^[a-z][a-z0-9]{0,13}\+?$/),
);

const port = fc.integer({ min: 0, max: 65535 });
const portRange = fc.oneof(
  port.map(String),
  fc.tuple(port, port).map(([a, b]) => `${Math.min(a, b)}:${Math.max(a, b)}`),
  port.map((p) => `${p}:`),
  port.map((p) => `:${p}`),
);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const hexOrDec = (n: number) => fc.constantFrom(String(n), '0x' + n.toString(16));
const markMask = fc.tuple(u32, fc.option(u32)).chain(([m, k]) =>
  fc.tuple(hexOrDec(m), k === null ? fc.constant('') : hexOrDec(k).map((s) => '/' + s)).map(([a, b]) => a + b),
);

const commentText = fc.oneof(
  fc.constantFrom('kubernetes service portals', 'ns1/svc1:p80', 'it\'s "quoted"', 'back\\slash', 'x', 'cali:wUHhoiAYhphO9Mso'),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\n\r\0]/.test(s) && s.trim().length > 0),
);

/** Quote a string for iptables-restore input (add_param_to_argv rules). */
export function quote(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

const neg = fc.boolean().map((b) => (b ? '! ' : ''));

/** A rule body (without `-A CHAIN` and the target). */
export const ruleBody = fc
  .record({
    src: fc.option(fc.tuple(neg, addr, fc.constantFrom('-s', '--source', '--src', '--sou'))),
    dst: fc.option(fc.tuple(neg, addr, fc.constantFrom('-d', '--destination', '--dst'))),
    iif: fc.option(fc.tuple(neg, ifname, fc.constantFrom('-i', '--in-interface', '--in-i'))),
    oif: fc.option(fc.tuple(neg, ifname, fc.constantFrom('-o', '--out-interface'))),
    proto: fc.option(fc.constantFrom('tcp', 'udp', '6', '17', 'icmp', 'TCP')),
    l4: fc.option(
      fc.record({
        sport: fc.option(fc.tuple(neg, portRange, fc.constantFrom('--sport', '--source-port', '--sp'))),
        dport: fc.option(fc.tuple(neg, portRange, fc.constantFrom('--dport', '--destination-port', '--dport='))),
        explicit: fc.boolean(),
      }),
    ),
    frag: fc.option(neg),
    comments: fc.array(commentText, { maxLength: 2 }),
    mark: fc.option(fc.tuple(neg, markMask)),
    markFirst: fc.boolean(),
  })
  .map((r) => {
    const parts: string[] = [];
    const pre: string[] = [];
    if (r.comments.length && !r.markFirst) for (const c of r.comments) pre.push(`-m comment --comment ${quote(c)}`);
    if (r.mark) pre.push(`-m mark ${r.mark[0]}--mark ${r.mark[1]}`);
    if (r.comments.length && r.markFirst) for (const c of r.comments) pre.push(`-m comment --comment ${quote(c)}`);
    if (r.src) parts.push(`${r.src[0]}${r.src[2]} ${r.src[1]}`);
    if (r.dst) parts.push(`${r.dst[0]}${r.dst[2]} ${r.dst[1]}`);
    if (r.iif) parts.push(`${r.iif[0]}${r.iif[2]} ${r.iif[1]}`);
    if (r.oif) parts.push(`${r.oif[0]}${r.oif[2]} ${r.oif[1]}`);
    let proto = r.proto;
    if (r.l4 && (r.l4.sport || r.l4.dport) && !(proto && /^(tcp|udp|6|17|TCP)$/.test(proto))) proto = 'tcp';
    if (proto) parts.push(`-p ${proto}`);
    if (r.frag !== null && !(r.l4 && (r.l4.sport || r.l4.dport))) parts.push(`${r.frag}-f`);
    parts.push(...pre);
    if (r.l4 && (r.l4.sport || r.l4.dport)) {
      const name = /^(udp|17)$/.test(proto!) ? 'udp' : 'tcp';
      if (r.l4.explicit) parts.push(`-m ${name}`);
      if (r.l4.sport) parts.push(`${r.l4.sport[0]}${r.l4.sport[2]} ${r.l4.sport[1]}`);
      if (r.l4.dport) {
        const o = r.l4.dport[2];
        parts.push(o.endsWith('=') ? `${r.l4.dport[0]}${o}${r.l4.dport[1]}` : `${r.l4.dport[0]}${o} ${r.l4.dport[1]}`);
      }
    }
    return parts.join(' ');
  });

/** Removes the `-i`/`-o` option (and its `!`) from a generated rule body. */
function stripIface(body: string, letter: 'i' | 'o'): string {
  const long = letter === 'i' ? '(?:--in-interface|--in-i)' : '--out-interface';
  return body.replace(new RegExp(`(?:! )?(?:-${letter}|${long}) \\S+ ?`), '');
}

const chainName = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'KUBE-SERVICES', 'cali-FORWARD', 'DOCKER', 'a', 'hasOwnProperty'),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,27}$/),
);

const targetSimple = fc.oneof(
  fc.constantFrom('-j ACCEPT', '-j DROP', '-j RETURN', '--jump ACCEPT', ''),
  fc.tuple(markMask, fc.constantFrom('--set-xmark', '--set-mark')).map(([m, o]) => `-j MARK ${o} ${m}`),
  u32.map((v) => `-j MARK --or-mark ${v}`),
);

/** A whole filter-table ruleset as iptables-restore text. */
export const ruleset = fc
  .uniqueArray(chainName, { maxLength: 6, selector: (s) => s })
  .filter((cs) => cs.every((c) => !['INPUT', 'FORWARD', 'OUTPUT', 'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'MARK'].includes(c)))
  .chain((users) => {
    const chains = ['INPUT', 'FORWARD', 'OUTPUT', ...users];
    // rules of chain i may jump only to user chains after it: the graph stays acyclic
    const rule = (i: number) =>
      fc.tuple(
        fc.option(fc.tuple(fc.bigInt({ min: 0n, max: 1n << 40n }), fc.bigInt({ min: 0n, max: 1n << 50n }))),
        // iptables refuses -o in INPUT and -i in OUTPUT
        ruleBody.map((b) => (i === 0 ? stripIface(b, 'o') : i === 2 ? stripIface(b, 'i') : b)),
        users.length > 0 && i < chains.length - 1
          ? fc.oneof(targetSimple, fc.integer({ min: Math.max(i + 1, 3), max: chains.length - 1 }).chain((j) => fc.constantFrom(`-j ${chains[j]}`, `-g ${chains[j]}`)))
          : targetSimple,
      );
    return fc.tuple(
      fc.constant(chains),
      fc.tuple(...chains.map((_, i) => fc.array(rule(i), { maxLength: 4 }))),
      fc.tuple(...[0, 1, 2].map(() => fc.constantFrom('ACCEPT', 'DROP'))),
    );
  })
  .map(([chains, rules, policies]) => {
    const lines = ['*filter'];
    chains.forEach((c, i) => lines.push(`:${c} ${i < 3 ? policies[i] : '-'} [${i}:${i * 60}]`));
    chains.forEach((c, i) => {
      for (const [ctr, body, tgt] of rules[i]!) {
        lines.push(`${ctr ? `[${ctr[0]}:${ctr[1]}] ` : ''}-A ${c} ${body} ${tgt}`.replace(/ +/g, ' ').trimEnd());
      }
    });
    lines.push('COMMIT');
    return lines.join('\n') + '\n';
  });
