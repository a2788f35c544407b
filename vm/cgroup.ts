/**
 * The cgroup v2 hierarchy as packets and rules name it: every path nfvm
 * meets (a rule's `--path`, a socket's `cgroup:` in ss.txt, a packet spec's
 * `cgroup`) gets a number, the word a packet's metadata carries in
 * M_SK_CGROUP (sock_cgroup_ptr(&sk->sk_cgrp_data)). Number 0 is the root
 * (cgrp_dfl_root.cgrp). Each cgroup knows its parent and its level, so
 * cgroup_is_descendant() is a walk of at most (level difference) parents,
 * with no allocation.
 *
 * A path is read as cgroup_get_from_path() walks it (kernfs_walk_ns): split
 * at `/`, empty components skipped, so `/a//b/`, `a/b` and `/a/b` are one
 * cgroup and `` and `/` the root; `.` and `..` are names like any other
 * (kernfs has no such entries: a rule naming them is refused when the tree
 * is known).
 */
import { NfvmError } from '../core/errors.js';

/** The root cgroup's number. */
export const CGROUP_ROOT = 0;
/** How many cgroups nfvm numbers at most (a bound on the table's memory). */
const MAX_CGROUPS = 1 << 20;

let parents = new Int32Array(64);
let levels = new Int32Array(64);
const byPath = new Map<string, number>([['/', CGROUP_ROOT]]);
const paths: string[] = ['/'];
parents[0] = -1;

/** `path` as cgroup_get_from_path() walks it: `/` then the non-empty components joined by `/`. */
export function cgroupCanonical(path: string): string {
  return '/' + path.split('/').filter((c) => c !== '').join('/');
}

/** The number of the cgroup at `path` (cgroupCanonical), numbering it and its ancestors when new. */
export function cgroupId(path: string): number {
  const canon = cgroupCanonical(path);
  const known = byPath.get(canon);
  if (known !== undefined) return known;
  const cut = canon.lastIndexOf('/');
  const parent = cgroupId(cut === 0 ? '/' : canon.slice(0, cut));
  const id = paths.length;
  if (id >= MAX_CGROUPS) throw new NfvmError('value', `more than ${MAX_CGROUPS} cgroups`, '', undefined, path);
  if (id >= parents.length) {
    const grow = (a: Int32Array) => {
      const b = new Int32Array(a.length * 2);
      b.set(a);
      return b;
    };
    parents = grow(parents);
    levels = grow(levels);
  }
  parents[id] = parent;
  levels[id] = levels[parent]! + 1;
  paths.push(canon);
  byPath.set(canon, id);
  return id;
}

/** The path of cgroup number `id`. */
export function cgroupPath(id: number): string {
  return paths[id] ?? '/';
}

/**
 * cgroup_is_descendant(cgrp, ancestor): `cgrp` is `ancestor` or below it
 * (the kernel compares cgrp->ancestors[ancestor->level] with ancestor).
 */
export function cgroupIsDescendant(cgrp: number, ancestor: number): boolean {
  const lv = levels[ancestor]!;
  let c = cgrp;
  if (c < 0 || c >= paths.length) return false;
  for (let l = levels[c]!; l > lv; l--) c = parents[c]!;
  return c === ancestor;
}
