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
import { findTarget, KNOWN_FOREIGN_TARGETS } from '../../ext/registry.js';
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

/** add_command(): `!` first, then a second command (-L, -S and -C only report the clash: nfvm runs none of them). */
function setCommand(cp: CommandParse, c: CommandName | 'C' | 'L' | 'S', a: Arg): void {
  if (cp.invert) cp.err(a, "unexpected '!' flag");
  if (cp.cmd !== undefined) cp.err(a, `Cannot use -${c} with -${cp.cmd}`);
  if (c === 'C' || c === 'L' || c === 'S') cp.err(a, `-${c} cannot be used in a restore file`);
  cp.cmd = c;
  cp.cmdArg = a;
}

function parseRulenum(cp: CommandParse, a: Arg): number {
  const v = /^[0-9]+$/.test(a.text) ? Number(a.text) : NaN;
  if (!(v >= 1) || v > 0x7fffffff) cp.err(a, `Invalid rule number \`${a.text}'`, 'value');
  return v;
}

/**
 * assert_valid_chain_name() of `-N`: the length, a leading `-` or `!`, a
 * target's name (ACCEPT, DROP, QUEUE, RETURN or an extension's), blanks.
 */
export function assertValidChainName(cp: CommandParse, name: string, a: Arg): void {
  if (name.length >= XT_EXTENSION_MAXNAMELEN) cp.err(a, `chain name \`${name}' too long (must be under ${XT_EXTENSION_MAXNAMELEN} chars)`, 'value');
  if (name[0] === '-' || name[0] === '!') cp.err(a, `chain name not allowed to start with \`${name[0]}'`, 'value');
  if (STANDARD_VERDICTS.has(name) || findTarget(name, cp.family) || KNOWN_FOREIGN_TARGETS.has(name)) cp.err(a, 'chain name may not clash with target name', 'value');
  if (/\s/.test(name)) cp.err(a, `Invalid chain name \`${name}'`, 'value');
}

const STANDARD_VERDICTS = new Set(['ACCEPT', 'DROP', 'QUEUE', 'RETURN']);

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
      if (letter === 'N') assertValidChainName(cp, value!, vpos);
      setCommand(cp, letter, a);
      cp.chain = value!;
      cp.chainPos = cp.at(vpos);
      cp.chainArg = vpos;
      if (letter === 'I' || letter === 'D') {
        if (cp.hasNextArg()) cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      } else if (letter === 'R') {
        if (!cp.hasNextArg()) cp.err(a, '-R requires a rule number');
        cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      } else if (letter === 'P') {
        if (!cp.hasNextArg()) cp.err(a, '-P requires a chain and a policy');
        cp.policyArg = cp.args[cp.i++]!;
        cp.policy = cp.policyArg.text;
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
        cp.chainArg = cp.args[cp.i];
        cp.chainPos = cp.at(cp.args[cp.i]);
        cp.chain = cp.args[cp.i++]!.text;
      }
      if (letter === 'Z' && cp.hasNextArg()) cp.rulenum = parseRulenum(cp, cp.args[cp.i++]!);
      return;
    case 'C':
    case 'L':
    case 'S':
      return setCommand(cp, letter, a);
    case 's':
    case 'd': {
      setBase(cp, letter, a);
      let list: AddrMask[];
      try {
        // one address (the usual case) without the split
        list = value!.indexOf(',') < 0 ? [parseAddrMask(cp.family, value!)] : value!.split(',').map((part) => parseAddrMask(cp.family, part));
      } catch (e) {
        return cp.rethrow(e, vpos);
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
      if (value === '') cp.err(vpos, 'Empty interface is likely to be undesired', 'value');
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
      if (cp.family !== 'ip') cp.err(a, "`-f' is not supported in IPv6, use -m frag instead");
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
      if (letter === 'j') loadTarget(cp, name, vpos, a.col);
      return;
    }
    case 'm': {
      if (cp.invert) cp.err(a, 'unexpected ! flag before --match');
      const name = value!;
      if (name.length >= XT_EXTENSION_MAXNAMELEN) cp.err(vpos, `Invalid match name \`${name}' (${XT_EXTENSION_MAXNAMELEN - 1} chars max)`, 'value');
      loadMatch(cp, name, vpos, a.col);
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
      if (bc === undefined) cp.err(a, '-c requires packet and byte counter');
      const p = strtoumax(pc);
      if (p.end === 0 || pc.length === 0) cp.err(vpos, '-c packet counter not numeric', 'value');
      const b = strtoumax(bc!);
      if (b.end === 0 || bc!.length === 0) cp.err(vpos, '-c byte counter not numeric', 'value');
      cp.rule.counters = { packets: p.value, bytes: b.value };
      return;
    }
    case 't':
      if (cp.invert) cp.err(a, 'unexpected ! flag before --table');
      // iptables-restore put `-t TABLE` in front of the line: a second -t is refused
      return cp.err(a, `The -t option cannot be used in ${cp.family === 'ip6' ? 'ip6tables' : 'iptables'}-restore.`);
    case '4':
    case '6':
      // the other family's line: iptables-restore ignores the whole line, options after it unread
      if ((letter === '4') !== (cp.family === 'ip')) cp.ignored = true;
      return;
    case 'v':
      // -v may repeat (only the first sets OPT_VERBOSE)
      if (!cp.seenBase.has('v')) setBase(cp, letter, a);
      return;
    case 'n':
    case 'x':
    case '0':
      // only -L takes them; generic_opt_check refuses them after the loop (CommandParse.optionCheck)
      setBase(cp, letter, a);
      return;
    case 'w':
    case 'W':
      return cp.err(a, `You cannot use \`-${letter}' from iptables-restore`);
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
