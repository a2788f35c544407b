/**
 * The base options and commands of a rule line: the switch of iptables'
 * do_parse() (iptables/xshared.c, 1.8.x): -A/-I/-D/-R/-N/-X/-F/-Z/-P/-E and
 * their chain and rule number arguments, -s/-d/-p/-i/-o/-f (the IP part,
 * each once, `!` before the invertible ones), -j/-g, -m, -c, and the options
 * a restore file refuses.
 */
import type { AddrMask } from '../../core/ast.js';
import { parseAddrMask } from '../../ext/hostmask.js';
import { parseProtocol } from '../../ext/protocols.js';
import { strtoumax } from '../../ext/numbers.js';
import type { Arg } from './argv.js';
import { loadMatch, loadTarget } from './extension.js';
import type { CommandName, CommandParse } from './state.js';

/** XT_EXTENSION_MAXNAMELEN: chain, match and target names are at most 28 characters. */
export const XT_EXTENSION_MAXNAMELEN = 29;
/** IFNAMSIZ: interface names are at most 15 characters. */
export const IFNAMSIZ = 16;

const INVERTIBLE_BASE = new Set(['s', 'd', 'p', 'i', 'o', 'f']);

/** A base option may appear once; `!` only before the invertible ones. */
function setBase(cp: CommandParse, letter: string, a: Arg): void {
  if (cp.seenBase.has(letter)) {
    cp.err(a, `multiple -${letter} flags not allowed`);
  }
  cp.seenBase.add(letter);
  if (cp.invert && !INVERTIBLE_BASE.has(letter)) {
    cp.err(a, `cannot have ! before -${letter}`);
  }
}

function setCommand(cp: CommandParse, c: CommandName, a: Arg): void {
  if (cp.cmd !== undefined) cp.err(a, `Cannot use -${c} with -${cp.cmd}`);
  if (cp.invert) cp.err(a, `cannot have ! before -${c}`);
  cp.cmd = c;
  cp.cmdArg = a;
}

function parseRulenum(cp: CommandParse, a: Arg): number {
  const v = /^[0-9]+$/.test(a.text) ? Number(a.text) : NaN;
  if (!(v >= 1) || v > 0x7fffffff) cp.err(a, `Invalid rule number \`${a.text}'`, 'value');
  return v;
}

/** One base option or command (the switch of do_parse), with its value. */
export function handleBase(cp: CommandParse, letter: string, value: string | undefined, a: Arg, valArg: Arg | undefined): void {
  const vpos = valArg ?? a;
  // `-d ! ADDR` (iptables before 1.4.3): iptables 1.8 takes `!` as the value and then refuses it or ADDR
  if (value === '!' && 'sdpio'.includes(letter) && cp.hasNextArg()) {
    const w = cp.args[cp.i]!.text;
    cp.err(vpos, `intrapositioned negation \`-${letter} ! ${w}' is not accepted by iptables 1.8 (it reads \`!' as the value); write \`! -${letter} ${w}'`, 'syntax');
  }
  switch (letter) {
    case 'A':
    case 'D':
    case 'I':
    case 'R':
    case 'N':
    case 'P':
    case 'E':
      setCommand(cp, letter, a);
      cp.chain = value!;
      cp.chainPos = cp.at(vpos);
      if (letter === 'I' || letter === 'D') {
        if (cp.hasNextArg()) cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      } else if (letter === 'R') {
        if (!cp.hasNextArg()) cp.err(a, '-R requires a rule number');
        cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      } else if (letter === 'P') {
        if (!cp.hasNextArg()) cp.err(a, '-P requires a chain and a policy');
        cp.policy = cp.args[cp.i++]!.text;
      } else if (letter === 'E') {
        if (!cp.hasNextArg()) cp.err(a, '-E requires old-chain-name and new-chain-name');
        cp.newName = cp.args[cp.i++]!.text;
      }
      return;
    case 'F':
    case 'X':
    case 'Z':
      setCommand(cp, letter, a);
      if (value !== undefined) {
        cp.chain = value;
        cp.chainPos = cp.at(vpos);
      } else if (cp.hasNextArg()) {
        cp.chainPos = cp.at(cp.args[cp.i]);
        cp.chain = cp.args[cp.i++]!.text;
      }
      if (letter === 'Z' && cp.hasNextArg()) cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      return;
    case 'C':
    case 'L':
    case 'S':
      return cp.err(a, `-${letter} cannot be used in a restore file`);
    case 's':
    case 'd': {
      setBase(cp, letter, a);
      const list: AddrMask[] = [];
      for (const part of value!.split(',')) {
        try {
          list.push(parseAddrMask(cp.family, part));
        } catch (e) {
          cp.rethrow(e, vpos);
        }
      }
      if (letter === 's') {
        cp.srcList = list;
        cp.rule.invSrc = cp.invert;
      } else {
        cp.dstList = list;
        cp.rule.invDst = cp.invert;
      }
      if (cp.invert && list.length > 1) cp.err(a, '! not allowed with multiple source or destination IP addresses');
      return;
    }
    case 'p': {
      setBase(cp, letter, a);
      let p: number;
      try {
        p = parseProtocol(value!);
      } catch (e) {
        return cp.rethrow(e, vpos);
      }
      if (p === 0 && cp.invert) cp.err(vpos, 'rule would never match protocol', 'value');
      cp.rule.proto = p;
      cp.rule.invProto = cp.invert;
      cp.protoText = value!.toLowerCase();
      return;
    }
    case 'i':
    case 'o': {
      setBase(cp, letter, a);
      cp.ifaceArg[letter] = a;
      const name = value!;
      if (name.length + 1 > IFNAMSIZ) {
        cp.err(vpos, `interface name \`${name}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`, 'value');
      }
      if (!name.endsWith('+') && /[/ ]/.test(name)) {
        cp.env.warn(cp.at(vpos), `Warning: weird character in interface \`${name}' ('/' and ' ' are not allowed by the kernel).`);
      }
      if (letter === 'i') {
        cp.rule.iif = name;
        cp.rule.invIif = cp.invert;
      } else {
        cp.rule.oif = name;
        cp.rule.invOif = cp.invert;
      }
      return;
    }
    case 'f':
      if (cp.family !== 'ip') cp.err(a, 'unknown option "-f"');
      setBase(cp, letter, a);
      cp.rule.frag = true;
      cp.rule.invFrag = cp.invert;
      return;
    case 'j':
    case 'g': {
      if (cp.seenBase.has('j') || cp.seenBase.has('g')) cp.err(a, `multiple -${letter} flags not allowed`);
      setBase(cp, letter, a);
      const name = value!;
      if (name.length < 1) cp.err(vpos, 'Invalid target name (too short)', 'value');
      if (name.length >= XT_EXTENSION_MAXNAMELEN) cp.err(vpos, `Invalid target name \`${name}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, 'value');
      if (/\s/.test(name)) cp.err(vpos, `Invalid target name \`${name}'`, 'value');
      cp.jumpName = name;
      cp.jumpArg = vpos;
      cp.isGoto = letter === 'g';
      if (letter === 'j') loadTarget(cp, name, vpos, cp.at(a));
      return;
    }
    case 'm': {
      if (cp.invert) cp.err(a, 'unexpected ! flag before --match');
      const name = value!;
      if (name.length >= XT_EXTENSION_MAXNAMELEN) cp.err(vpos, `Invalid match name \`${name}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, 'value');
      loadMatch(cp, name, vpos, cp.at(a));
      return;
    }
    case 'c': {
      setBase(cp, letter, a);
      const v = value!;
      let pc = v;
      let bc: string | undefined;
      const comma = v.indexOf(',');
      if (comma >= 0) {
        pc = v.slice(0, comma);
        bc = v.slice(comma + 1);
      } else if (cp.hasNextArg()) {
        bc = cp.args[cp.i++]!.text;
      }
      if (bc === undefined) cp.err(a, '-c does not take the counter value [packets, bytes]');
      const p = strtoumax(pc);
      if (p.end === 0 || pc.length === 0) cp.err(vpos, '-c packet counter not numeric', 'value');
      const b = strtoumax(bc!);
      if (b.end === 0 || bc!.length === 0) cp.err(vpos, '-c byte counter not numeric', 'value');
      cp.rule.counters = { packets: p.value, bytes: b.value };
      return;
    }
    case 't':
      return cp.err(a, 'The -t option cannot be used in a restore file');
    case '4':
      if (cp.family === 'ip6') cp.err(a, 'This is the IPv6 version of ip6tables.');
      return;
    case '6':
      if (cp.family === 'ip') cp.err(a, 'This is the IPv4 version of iptables.');
      return;
    case 'n':
    case 'v':
    case 'x':
    case '0':
    case 'w':
    case 'W':
    case 'M':
      return;
    case 'V':
    case 'h':
      return cp.err(a, `-${letter} cannot be used in a restore file`);
    case 'b':
      return cp.err(a, 'unknown option "-b"');
    default:
      return cp.err(a, `unknown option "-${letter}"`);
  }
}
