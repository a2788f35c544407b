/** The hand-assembled programs of the golden cases (cases/*.payload), keyed by section name. */
import {
  NFT_BITWISE_LSHIFT, NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_GTE, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_GOTO,
  NFT_JUMP, NFT_META_IIFNAME, NFT_META_L4PROTO, NFT_META_MARK, NFT_META_NFTRACE, NFT_META_OIFNAME, NFT_NG_INCREMENTAL,
  NFT_PAYLOAD_NETWORK_HEADER as NH, NFT_PAYLOAD_TRANSPORT_HEADER as TH, NFT_RANGE_EQ, NFT_RANGE_NEQ, NFT_REG32_01,
  NFT_REG_1, NFT_REG_2, NFT_REG_3, NFT_REG_4, NFT_RETURN, NftSet, ProgramBuilder, emitBitwise, emitBitwiseShift,
  emitByteorder, emitCmp, emitCounter, emitImmediate, emitLimit, emitLog, emitLookup, emitMetaGet, emitMetaSet,
  emitNumgen, emitPayload, emitRange, emitVerdict, type Program, NAT_DNAT, NFTA_FIB_F_DADDR, NFT_CT_MARK,
  NFT_CT_STATE, NFT_REJECT_ICMP_UNREACH, emitCtGet, emitCtSet, emitFib, emitNat, emitQueue, emitReject, emitXtL4,
  emitXtMatchPorts, emitXtMatchTcpOpt, emitRandomCmp, NFT_CMP_LT, NFT_SET_ANONYMOUS, NFT_SET_CONSTANT, NFT_SET_INTERVAL,
} from '../../../vm/index.js';
import {
  NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
  NF_INET_PRE_ROUTING,
} from '../../../core/netfilter.js';
import { compileTable } from '../../../compiler/compile.js';
import { parseRestore } from '../../../compiler/parse/restore.js';
import { parseIpsetSave } from '../../../compiler/ipset.js';

const R1 = NFT_REG_1;
const bytes = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function filter(family = NFPROTO_IPV4, table = 'filter'): ProgramBuilder {
  const b = new ProgramBuilder(family, table);
  if (table === 'filter') {
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
    b.chain('FORWARD', { hook: NF_INET_FORWARD, policy: NF_ACCEPT });
    b.chain('OUTPUT', { hook: NF_INET_LOCAL_OUT, policy: NF_ACCEPT });
  }
  return b;
}

export const GOLDEN: Record<string, () => Program> = {
  'iptables-nft -A INPUT -s 192.168.1.0/24 -p tcp --dport 22 -j ACCEPT (kernel-facts §1.7)': () => {
    const b = filter();
    b.rule('INPUT');
    emitPayload(b, R1, NH, 12, 3);
    emitCmp(b, NFT_CMP_EQ, R1, [192, 168, 1]);
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitPayload(b, R1, TH, 2, 2);
    emitCmp(b, NFT_CMP_EQ, R1, [0, 22]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  },
  '-A INPUT -d 10.1.2.3/32 -s 172.16.0.0/12 -j DROP (a whole-byte mask loads 4 bytes; /12 needs a bitwise)': () => {
    const b = filter();
    b.rule('INPUT');
    emitPayload(b, R1, NH, 12, 4);
    emitBitwise(b, R1, R1, [255, 240, 0, 0], [0, 0, 0, 0]);
    emitCmp(b, NFT_CMP_EQ, R1, [172, 16, 0, 0]);
    emitPayload(b, R1, NH, 16, 4);
    emitCmp(b, NFT_CMP_EQ, R1, [10, 1, 2, 3]);
    emitCounter(b);
    emitVerdict(b, NF_DROP);
    return b.finish();
  },
  '-A FORWARD -i eth0 ! -o br0 -j ACCEPT (exact names compare the NUL)': () => {
    const b = filter();
    b.rule('FORWARD');
    emitMetaGet(b, R1, NFT_META_IIFNAME);
    emitCmp(b, NFT_CMP_EQ, R1, [...bytes('eth0'), 0]);
    emitMetaGet(b, R1, NFT_META_OIFNAME);
    emitCmp(b, NFT_CMP_NEQ, R1, [...bytes('br0'), 0]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  },
  '-A FORWARD -i eth+ -j ACCEPT (a wildcard compares the prefix only)': () => {
    const b = filter();
    b.rule('FORWARD');
    emitMetaGet(b, R1, NFT_META_IIFNAME);
    emitCmp(b, NFT_CMP_EQ, R1, bytes('eth'));
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  },
  '-A INPUT -f -j DROP': () => fragRule(NFT_CMP_NEQ, NF_DROP),
  '-A INPUT ! -f -j ACCEPT': () => fragRule(NFT_CMP_EQ, NF_ACCEPT),
  '-A OUTPUT -m mark --mark 0x1/0xff -j ACCEPT': () => {
    const b = filter();
    b.rule('OUTPUT');
    emitMetaGet(b, R1, NFT_META_MARK);
    emitBitwise(b, R1, R1, [0xff, 0, 0, 0], [0, 0, 0, 0]);
    emitCmp(b, NFT_CMP_EQ, R1, [1, 0, 0, 0]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  },
  '-A OUTPUT -m mark ! --mark 0x4000 -j DROP (full mask: no bitwise)': () => {
    const b = filter();
    b.rule('OUTPUT');
    emitMetaGet(b, R1, NFT_META_MARK);
    emitCmp(b, NFT_CMP_NEQ, R1, [0, 0x40, 0, 0]);
    emitCounter(b);
    emitVerdict(b, NF_DROP);
    return b.finish();
  },
  '-A INPUT -p tcp --dport 1024:65535 --sport 0:1023 -j ACCEPT (port ranges)': () => {
    const b = filter();
    b.rule('INPUT');
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitPayload(b, R1, TH, 0, 2);
    emitCmp(b, NFT_CMP_LTE, R1, [0x03, 0xff]);
    emitPayload(b, R1, TH, 2, 2);
    emitRange(b, NFT_RANGE_EQ, R1, [0x04, 0x00], [0xff, 0xff]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  },
  '-A INPUT -p udp ! --dport 100:200 -j DROP': () => {
    const b = filter();
    b.rule('INPUT');
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [17]);
    emitPayload(b, R1, TH, 2, 2);
    emitRange(b, NFT_RANGE_NEQ, R1, [0, 100], [0, 200]);
    emitCounter(b);
    emitVerdict(b, NF_DROP);
    return b.finish();
  },
  '-A INPUT -p tcp --sport 1024 --dport 22 (both single ports: one 4-byte load)': () => {
    const b = filter();
    b.rule('INPUT');
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitPayload(b, R1, TH, 0, 4);
    emitCmp(b, NFT_CMP_EQ, R1, [0x04, 0x00, 0x00, 0x16]);
    emitCounter(b);
    return b.finish();
  },
  '-A INPUT -p tcp --syn -j SSH; -A INPUT -g LOGDROP': () => {
    const b = filter();
    b.chain('SSH');
    b.chain('LOGDROP');
    b.rule('INPUT');
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitPayload(b, R1, TH, 13, 1);
    emitBitwise(b, R1, R1, [0x17], [0]);
    emitCmp(b, NFT_CMP_EQ, R1, [0x02]);
    emitCounter(b);
    emitVerdict(b, NFT_JUMP, 'SSH');
    b.rule('INPUT');
    emitCounter(b);
    emitVerdict(b, NFT_GOTO, 'LOGDROP');
    b.rule('SSH');
    emitVerdict(b, NFT_RETURN);
    b.rule('LOGDROP');
    emitLog(b, { prefix: 'dropped:', level: 4 });
    emitLimit(b, 3, 60, 5);
    emitVerdict(b, NF_DROP);
    return b.finish();
  },
  '-t raw -A PREROUTING -j TRACE': () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'raw');
    b.chain('PREROUTING', { hook: NF_INET_PRE_ROUTING, policy: NF_ACCEPT });
    b.rule('PREROUTING');
    emitCounter(b);
    emitImmediate(b, NFT_REG32_01, [1, 0, 0, 0]);
    emitMetaSet(b, NFT_META_NFTRACE, NFT_REG32_01);
    return b.finish();
  },
  'ip6 -s 2001:db8::/32 -m set --match-set blocked src and misc expressions': () => {
    const b = filter(NFPROTO_IPV6);
    b.addSet(new NftSet('blocked', 16));
    b.rule('INPUT');
    emitPayload(b, R1, NH, 8, 4);
    emitCmp(b, NFT_CMP_EQ, R1, [0x20, 0x01, 0x0d, 0xb8]);
    emitPayload(b, R1, NH, 8, 16);
    emitLookup(b, R1, 'blocked');
    emitCounter(b);
    emitVerdict(b, NF_DROP);
    b.rule('INPUT');
    emitMetaGet(b, R1, NFT_META_L4PROTO);
    emitCmp(b, NFT_CMP_GTE, R1, [17]);
    emitPayload(b, R1, NH, 24, 16);
    emitLookup(b, R1, 'blocked', true);
    emitMetaGet(b, NFT_REG_2, NFT_META_MARK);
    emitByteorder(b, NFT_BYTEORDER_HTON, NFT_REG_2, NFT_REG_2, 4, 4);
    emitCmp(b, NFT_CMP_GT, NFT_REG_2, [0, 0, 1, 0]);
    emitNumgen(b, NFT_REG_3, NFT_NG_INCREMENTAL, 4, 10);
    emitBitwiseShift(b, NFT_BITWISE_LSHIFT, NFT_REG_3, NFT_REG_3, 4, 8);
    emitImmediate(b, NFT_REG_4, [1, 2, 3, 4, 5]);
    emitLog(b, { group: 2, qthreshold: 1 });
    emitMetaSet(b, NFT_META_MARK, NFT_REG_3);
    return b.finish();
  },
  'legacy -A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m addrtype --dst-type LOCAL -j CONNMARK --set-xmark 0x1/0xff; -j REJECT; -j NFQUEUE': () => {
    const b = filter();
    b.rule('INPUT');
    emitMetaGet(b, R1, NFT_META_L4PROTO);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitXtL4(b, 20, true);
    emitPayload(b, R1, TH, 2, 2);
    emitCmp(b, NFT_CMP_EQ, R1, [0, 22]);
    emitCtGet(b, R1, NFT_CT_STATE);
    emitBitwise(b, R1, R1, [8, 0, 0, 0], [0, 0, 0, 0]);
    emitCmp(b, NFT_CMP_NEQ, R1, [0, 0, 0, 0]);
    emitFib(b, R1, NFTA_FIB_F_DADDR);
    emitCmp(b, NFT_CMP_EQ, R1, [2, 0, 0, 0]);
    emitCounter(b);
    emitCtGet(b, R1, NFT_CT_MARK);
    emitBitwise(b, R1, R1, [0, 0xff, 0xff, 0xff], [1, 0, 0, 0]);
    emitCtSet(b, NFT_CT_MARK, R1);
    b.rule('INPUT');
    emitCounter(b);
    emitReject(b, NFT_REJECT_ICMP_UNREACH, 3);
    b.rule('INPUT');
    emitCounter(b);
    emitQueue(b, 5, 1, 0);
    return b.finish();
  },
  'legacy -A FORWARD -m statistic --mode random --probability 0.33333333349 -j ACCEPT; ! --probability 0.5 (four expressions, one record)': () => {
    const b = filter();
    b.rule('FORWARD');
    emitRandomCmp(b, R1, NFT_CMP_LT, [0x2a, 0xaa, 0xaa, 0xab]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    b.rule('FORWARD');
    emitRandomCmp(b, R1, NFT_CMP_GTE, [0x40, 0, 0, 0]);
    emitCounter(b);
    return b.finish();
  },
  'legacy -A INPUT -p tcp -m multiport --ports 22,80:90 -m tcp ! --tcp-option 8': () => {
    const b = filter();
    const set = new NftSet('__set0', 2, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL);
    set.addRange([0, 22], [0, 22]).addRange([0, 80], [0, 90]);
    b.addSet(set);
    b.rule('INPUT');
    emitMetaGet(b, R1, NFT_META_L4PROTO);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitXtL4(b, 4);
    emitPayload(b, R1, TH, 0, 2);
    emitPayload(b, NFT_REG_2, TH, 2, 2);
    emitXtMatchPorts(b, R1, NFT_REG_2, '__set0', false);
    emitXtL4(b, 20, true);
    emitXtMatchTcpOpt(b, 8, true);
    emitCounter(b);
    return b.finish();
  },
  'legacy -t nat -A PREROUTING -p tcp -j DNAT --to-destination 10.244.1.30:8443': () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'nat');
    b.chain('PREROUTING', { hook: NF_INET_PRE_ROUTING, policy: NF_ACCEPT });
    b.rule('PREROUTING');
    emitMetaGet(b, R1, NFT_META_L4PROTO);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitCounter(b);
    emitNat(b, NAT_DNAT, { minAddr: Uint8Array.of(10, 244, 1, 30), maxAddr: Uint8Array.of(10, 244, 1, 30), minPort: 8443, maxPort: 8443 });
    return b.finish();
  },
  'legacy -A INPUT -p tcp --dport 22 -m limit --limit 3/min --limit-burst 4 -j ACCEPT (xt_limit through nft_compat)': () => {
    const text = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '-A INPUT -p tcp --dport 22 -m limit --limit 3/min --limit-burst 4 -j ACCEPT', 'COMMIT', ''].join('\n');
    return compileTable(parseRestore(text), 'filter', { optimize: 0, backend: 'legacy' }).program;
  },
  'optimize=1 -A INPUT -s 10.0.0.N -j DROP for N = 1..16 (a classifier before the run)': () => {
    const rules = Array.from({ length: 16 }, (_, i) => `-A INPUT -s 10.0.0.${i + 1} -j DROP`);
    const text = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...rules, 'COMMIT', ''].join('\n');
    return compileTable(parseRestore(text), 'filter', { optimize: 1 }).program;
  },
  'nft -A INPUT -m set --match-set bl src -j SET --add-set seen src,dst (xt compat)': () => {
    const text = ['*filter', ':INPUT ACCEPT [0:0]', '-A INPUT -m set --match-set bl src -j SET --add-set seen src,dst', 'COMMIT', ''].join('\n');
    const ipsets = parseIpsetSave('create bl hash:net\ncreate seen hash:ip,port\n', 'sets');
    return compileTable(parseRestore(text), 'filter', { backend: 'nft', optimize: 0, engine: { ipsets } }).program;
  },
  'iptables-nft -t mangle -A FORWARD -p tcp -m tcp --syn -m u32 --u32 "0x0=0x0" -m string --string "GET /" --algo bm -j TCPMSS --set-mss 1400 (nft_compat match and target)': () => {
    const text = '*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp -m tcp --syn -m u32 --u32 "0x0=0x0" -m string --string "GET /" --algo bm -j TCPMSS --set-mss 1400\nCOMMIT\n';
    return compileTable(parseRestore(text), 'mangle', { backend: 'nft' }).program;
  },
  'ip6tables-nft -t mangle -A POSTROUTING -m frag --fragfirst -j HL --hl-set 64': () => {
    const text = '*mangle\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m frag --fragfirst -j HL --hl-set 64\nCOMMIT\n';
    return compileTable(parseRestore(text, { family: 'ip6' }), 'mangle', { backend: 'nft' }).program;
  },
};

function fragRule(op: number, verdict: number): Program {
  const b = filter();
  b.rule('INPUT');
  emitPayload(b, R1, NH, 6, 2);
  emitBitwise(b, R1, R1, [0x1f, 0xff], [0, 0]);
  emitCmp(b, op, R1, [0, 0]);
  emitCounter(b);
  emitVerdict(b, verdict);
  return b.finish();
}

