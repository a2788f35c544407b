/**
 * The netfilter hook registry: per family and hook point, a priority-ordered
 * array of hook entries, and the loop that runs them.
 *
 * Mirrors net/netfilter/core.c of Linux 6.18:
 *  - `nf_hook_entries_grow`: every registration builds a new array (here:
 *    a new frozen array swapped in, our RCU); the new entry is placed before
 *    the first existing entry whose priority is >= its own, so among equal
 *    priorities the entry registered LAST runs FIRST. (4.x's list code did the
 *    opposite.) Seen on 6.18: two nft base chains at output priority 0, the
 *    chain created second ran first (test/hooks/kernel.test.ts).
 *  - unregistration: the kernel swaps in an always-accepting `dummy_ops` and
 *    compacts at the next grow; that is the same order as removing the entry.
 *  - at most MAX_HOOK_COUNT (1024) entries per array (-E2BIG).
 *  - `nf_hook_slow`: run entries in order; NF_ACCEPT → next; NF_DROP → return
 *    the errno in the verdict or -EPERM; NF_QUEUE → nf_queue (continue only
 *    when nf_queue says so: no listener and the bypass flag); NF_STOLEN and
 *    anything else → 0 (consumed). All accepted → 1 (the caller runs okfn).
 */
import {
  NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK, NF_VERDICT_QBITS, NF_VERDICT_FLAG_QUEUE_BYPASS,
} from '../core/netfilter.js';

/** include/linux/netfilter.h: largest number of entries per (family, hook). */
export const MAX_HOOK_COUNT = 1024;
/** NFPROTO_NUMPROTO. */
export const NFPROTO_NUMPROTO = 13;
/** Hook numbers per family are below this (NF_MAX_HOOKS = NF_INET_NUMHOOKS + 1; bridge has 6). */
export const NF_MAX_HOOKS = 8;

export const EPERM = 1;
export const ESRCH = 3;
export const E2BIG = 7;

/** What every hook function receives besides the packet (struct nf_hook_state, plus outputs of nfHookSlow). */
export interface NfHookState {
  /** NF_INET_* (or NF_BR_*). */
  hook: number;
  /** NFPROTO_*. */
  pf: number;
  /** Input device name ('' when none). */
  in: string;
  /** Output device name ('' when none). */
  out: string;
  /** Set by nfHookSlow: index of the entry that ended the walk (-1 when all accepted). */
  index: number;
  /** Set by nfHookSlow: the full verdict of that entry (NF_ACCEPT when all accepted). */
  verdict: number;
  /**
   * nf_queue(): hand the packet to a userspace queue. Returns 1 to continue
   * with the next entry, anything else is returned by nfHookSlow. Absent:
   * no queue has a listener (-ESRCH), as in a fresh namespace.
   */
  nfQueue?: (index: number, verdict: number) => number;
}

export type NfHookFn<P, S extends NfHookState = NfHookState> = (pkt: P, state: S) => number;

/** struct nf_hook_ops, reduced to what ordering and running need. */
export interface NfHookOps<P, S extends NfHookState = NfHookState> {
  readonly priority: number;
  /** For traces and tests (the kernel has the function pointer). */
  readonly name: string;
  readonly hook: NfHookFn<P, S>;
}

export class HookError extends Error {
  override name = 'HookError';
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

const EMPTY: readonly never[] = Object.freeze([]);

function checkSlot(pf: number, hook: number): void {
  if (!Number.isInteger(pf) || pf < 0 || pf >= NFPROTO_NUMPROTO) throw new RangeError(`family ${pf} out of range`);
  if (!Number.isInteger(hook) || hook < 0 || hook >= NF_MAX_HOOKS) throw new RangeError(`hook ${hook} out of range`);
}

/**
 * nf_hook_entries_grow(): the old array with `reg` inserted before the first
 * entry whose priority is not lower than its own.
 */
export function hookEntriesGrow<T extends { readonly priority: number }>(old: readonly T[], reg: T): readonly T[] {
  if (old.length + 1 > MAX_HOOK_COUNT) throw new HookError(`more than ${MAX_HOOK_COUNT} hooks at one point`, E2BIG);
  const next: T[] = [];
  let inserted = false;
  for (let i = 0; i < old.length; ) {
    if (inserted || reg.priority > old[i]!.priority) next.push(old[i++]!);
    else {
      next.push(reg);
      inserted = true;
    }
  }
  if (!inserted) next.push(reg);
  return Object.freeze(next);
}

/** The registry of one network namespace; `O` is the ops type its users register (struct nf_hook_ops plus what they carry). */
export class NfHookRegistry<P, S extends NfHookState = NfHookState, O extends NfHookOps<P, S> = NfHookOps<P, S>> {
  /** [pf * NF_MAX_HOOKS + hook] → frozen entries. */
  private readonly slots: (readonly O[])[] = [];

  constructor() {
    for (let i = 0; i < NFPROTO_NUMPROTO * NF_MAX_HOOKS; i++) this.slots.push(EMPTY);
  }

  /** nf_register_net_hook(). Throws HookError(E2BIG) past MAX_HOOK_COUNT. */
  register(pf: number, hook: number, ops: O): void {
    checkSlot(pf, hook);
    const k = pf * NF_MAX_HOOKS + hook;
    this.slots[k] = hookEntriesGrow(this.slots[k]!, ops);
  }

  /** nf_unregister_net_hook(): removes the first entry that is `ops`; false when it is not registered. */
  unregister(pf: number, hook: number, ops: O): boolean {
    checkSlot(pf, hook);
    const k = pf * NF_MAX_HOOKS + hook;
    const old = this.slots[k]!;
    const i = old.indexOf(ops);
    if (i < 0) return false;
    this.slots[k] = old.length === 1 ? EMPTY : Object.freeze([...old.slice(0, i), ...old.slice(i + 1)]);
    return true;
  }

  /** The current array (frozen; a later register/unregister swaps in a new one). */
  entries(pf: number, hook: number): readonly O[] {
    // Every packet asks at every hook: the common case (small integers in range) costs two compares.
    if ((pf >>> 0) < NFPROTO_NUMPROTO && (hook >>> 0) < NF_MAX_HOOKS && (pf | 0) === pf && (hook | 0) === hook) return this.slots[pf * NF_MAX_HOOKS + hook]!;
    checkSlot(pf, hook);
    return this.slots[pf * NF_MAX_HOOKS + hook]!;
  }

  /** nf_hook_slow() over the current array of (pf, hook); see nfHookSlow. */
  nfHookSlow(pf: number, hook: number, pkt: P, state: S): number {
    return nfHookSlow(this.entries(pf, hook), pkt, state);
  }
}

/**
 * nf_hook_slow(): 1 when every entry accepted (the caller continues with
 * okfn), 0 when an entry stole or queued the packet, a negative errno when
 * one dropped it. `state.index`/`state.verdict` tell which entry ended it.
 */
export function nfHookSlow<P, S extends NfHookState>(e: readonly NfHookOps<P, S>[], pkt: P, state: S): number {
  for (let s = 0; s < e.length; s++) {
    const verdict = e[s]!.hook(pkt, state);
    switch (verdict & NF_VERDICT_MASK) {
      case NF_ACCEPT:
        break;
      case NF_DROP: {
        state.index = s;
        state.verdict = verdict;
        const err = -(verdict >>> NF_VERDICT_QBITS);
        return err !== 0 ? err : -EPERM;
      }
      case NF_QUEUE: {
        const ret = state.nfQueue ? state.nfQueue(s, verdict) : (verdict & NF_VERDICT_FLAG_QUEUE_BYPASS) !== 0 ? 1 : 0;
        if (ret === 1) break;
        state.index = s;
        state.verdict = verdict;
        return ret;
      }
      case NF_STOLEN:
      default:
        state.index = s;
        state.verdict = verdict;
        return 0;
    }
  }
  state.index = -1;
  state.verdict = NF_ACCEPT;
  return 1;
}
