/**
 * The node's cgroup v2 tree (cgroup2.txt in a snapshot): the directories
 * under the cgroup2 mount, one a line, each as a path from the tree's root
 * (`/`, `/system.slice`, `/a/b`), what `-m cgroup --path` resolves against
 * (cgroup_get_from_path() walks the caller's cgroup namespace root). A
 * directory's ancestors exist with it. `nfvm snapshot` captures it
 * (captureCgroupTree): the mount found in /proc/self/mountinfo (type
 * cgroup2; /sys/fs/cgroup on most systems, /sys/fs/cgroup/unified on hybrid
 * ones), then `find MOUNT -type d`.
 */
import { NfvmError } from '../../core/errors.js';
import { cgroupCanonical } from '../../vm/cgroup.js';

/** Parses cgroup2.txt: a line that is not a `/PATH` is an error at its line. */
export function parseCgroupTree(text: string, file: string): ReadonlySet<string> {
  const tree = new Set<string>(['/']);
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const l = lines[n]!.replace(/\r$/, '');
    if (l === '') continue;
    if (!l.startsWith('/')) throw new NfvmError('syntax', `expected a cgroup path from the tree's root (/PATH), not "${l}"`, file, { line: n + 1, col: 1 }, l);
    let p = cgroupCanonical(l);
    while (!tree.has(p)) {
      tree.add(p);
      p = p.slice(0, Math.max(1, p.lastIndexOf('/')));
    }
  }
  return tree;
}

/** The octal escapes of a /proc/self/mountinfo field (`\040` for a space). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The cgroup2 mount of a /proc/self/mountinfo text: its mount point and the
 * tree path of its root (field 4; `/` unless a subtree is mounted).
 */
export function cgroup2Mount(mountinfo: string): { point: string; root: string } | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup2' && pre.length >= 5) return { point: unescapeMountinfo(pre[4]!), root: unescapeMountinfo(pre[3]!) };
  }
  return undefined;
}

/** `find POINT -type d` lines as tree paths (cgroup2.txt's lines), the mount's root prefixed. */
export function cgroupTreeLines(found: string, mount: { point: string; root: string }): string {
  const point = mount.point.replace(/\/+$/, '');
  const root = mount.root === '/' ? '' : mount.root.replace(/\/+$/, '');
  const out: string[] = [];
  for (const l of found.split('\n')) {
    if (l !== point && !l.startsWith(`${point}/`)) continue;
    out.push(`${root}${l.slice(point.length)}` || '/');
  }
  return out.sort().join('\n') + '\n';
}
