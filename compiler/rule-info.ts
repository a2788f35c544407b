/**
 * What each rule index of a compiled table stands for: the iptables (or
 * ebtables) chain and rule number, a builtin chain's policy, or the jump
 * into a builtin chain's body (compiler/compile.ts, `policyRules`).
 *
 * The compiler records one per rule of the Program; a kube-proxy node of
 * 30,000 Services has a nat table of about a million rules, so they are
 * kept in typed arrays (12 bytes a rule; an object each was 64 bytes, and
 * a million objects for V8 to copy and trace), and at() makes the
 * RuleInfo when a trace, the counters or a listing ask for it.
 */
import { Words } from '../vm/words.js';

export interface RuleInfo {
  /** The iptables chain. */
  chain: string;
  /** 1-based rule number in the chain (for 'policy': rule count + 1; for 'wrap': 0). */
  num: number;
  kind: 'rule' | 'policy' | 'wrap';
  /** Counter pair index of the rule's counter expression, -1 for 'wrap'. */
  counter: number;
  /**
   * get_chainname_rulenum()'s tail test: no IP part, no match, a standard
   * negative verdict (ACCEPT/DROP/QUEUE/RETURN); x_tables traces such a
   * rule as policy/return, like the chain's tail.
   */
  tailLike: boolean;
}

const KINDS: readonly RuleInfo['kind'][] = ['rule', 'policy', 'wrap'];

/** The bits of a rule's second word: the kind, the tail test, then the rule number. */
const enum W {
  KIND_MASK = 3,
  TAIL = 4,
  NUM_SHIFT = 3,
}

/** The RuleInfo of every rule index, in index order. */
export class RuleInfos implements Iterable<RuleInfo> {
  /** The chains' names, each once per run of consecutive rules of the chain. */
  private readonly names: string[] = [];
  /** Per rule: its chain (an index into names), its number, kind and tail test (W), its counter. */
  private readonly words: Words;

  /** Room for `capacity` rules from the start (the compiler knows how many it lowers). */
  constructor(capacity = 64) {
    this.words = new Words(3 * capacity);
  }

  get length(): number {
    return this.words.length / 3;
  }

  push(chain: string, num: number, kind: RuleInfo['kind'], counter: number, tailLike: boolean): void {
    const n = this.names.length;
    if (n === 0 || this.names[n - 1] !== chain) this.names.push(chain);
    this.words.push(this.names.length - 1);
    this.words.push((num << W.NUM_SHIFT) | (tailLike ? W.TAIL : 0) | KINDS.indexOf(kind));
    this.words.push(counter);
  }

  /** The RuleInfo of rule index i, or undefined past the end. */
  at(i: number): RuleInfo | undefined {
    if (!(i >= 0 && i < this.length)) return undefined;
    const w = this.words.get(3 * i + 1);
    return {
      chain: this.names[this.words.get(3 * i)]!,
      num: w >>> W.NUM_SHIFT,
      kind: KINDS[w & W.KIND_MASK]!,
      counter: this.words.get(3 * i + 2),
      tailLike: (w & W.TAIL) !== 0,
    };
  }

  forEach(fn: (info: RuleInfo, index: number) => void): void {
    for (let i = 0; i < this.length; i++) fn(this.at(i)!, i);
  }

  *[Symbol.iterator](): Iterator<RuleInfo> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }
}
