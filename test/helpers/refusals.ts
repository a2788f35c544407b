/**
 * The userspace refusals of iptables-restore 1.8.9 that a restore file can
 * reach: every xtables_error(PARAMETER_PROBLEM, ...) of do_parse() and its
 * helpers (iptables/xshared.c: command_default, command_match,
 * xt_parse_target, add_command, parse_rulenumber, generic_opt_check,
 * set_option, assert_valid_chain_name, check_empty_interface,
 * ipv4_post_parse / ipv6_post_parse, tokenize_rule_counters, add_argv,
 * add_param), of do_command4() (iptables/iptables.c: goto to a missing
 * chain, a target that cannot be loaded) and of the libxtables parsers they
 * call (protocol, mask, interface name), each with one restore line that
 * reaches it. iptables/xtables.c (the nf_tables front end) goes through the
 * same do_parse(); its own refusal is a missing table, which nfvm makes at
 * the `*table` line. Not listed: the extensions' own messages (libxt_*.c,
 * test/extensions-t.test.ts), `-h`/`-V` (which print and exit 0), and the
 * ARP-only and --wait-interval paths a restore file cannot reach.
 *
 * `stderr` and `legacy` are what iptables-legacy-restore 1.8.9 printed and
 * returned for `*TABLE\nRULE\nCOMMIT\n`, recorded literally; `nft` is
 * iptables-nft-restore's exit status (its words differ for a missing chain:
 * "Chain 'X' does not exist"). test/kernel/refusals-kernel.test.ts checks
 * them against the installed tools. `at` is where nfvm reports the refusal
 * (line:col), '' when the line is accepted.
 *
 * Three accepted lines belong here too: iptables-restore takes a DROP policy
 * on a nat chain line (only `-P` is refused), and ignores a line naming the
 * other family (`-6` in iptables-restore, `-4` in ip6tables-restore).
 */
/** 252 words: one more than MAX_ARGC (255) leaves after the `iptables-restore -t TABLE` preamble. */
const MANY_ARGS = '-A INPUT ' + Array<string>(250).fill('-v').join(' ');
/** A word longer than add_param()'s 1024-byte buffer. */
const LONG_PARAM = '-A INPUT -m comment --comment ' + 'x'.repeat(1100);

export interface Refusal {
  family: 'ip' | 'ip6';
  table: string;
  rule: string;
  legacy: number;
  stderr: string;
  nft: number;
  at: string;
}

export const REFUSALS: readonly Refusal[] = [
  { family: 'ip', table: 'filter', rule: "-A INPUT --bogus", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unknown option \"--bogus\"\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -y", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unknown option \"-y\"\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -p", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): option \"-p\" requires an argument\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -p tcp --dport", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): option \"--dport\" requires an argument\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:17' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! -m tcp", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unexpected ! flag before --match\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:12' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -j \"\"", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid target name (too short)\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -j AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid target name `AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' (28 chars max)\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -j \"A B\"", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid target name `A B'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "! -A INPUT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unexpected '!' flag\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:3' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -I INPUT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Cannot use -I with -A\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -L", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Cannot use -L with -A\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-I INPUT 0 -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid rule number `0'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-I INPUT x", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid rule number `x'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-D INPUT 1 -p tcp", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Illegal option `-p' with this command\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -n", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Illegal option `-n' with this command\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-A INPUT --line-numbers", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Illegal option `-0' with this command\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-F INPUT -p tcp", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Illegal option `-p' with this command\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-P INPUT DROP -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Illegal option `-j' with this command\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -s 1.2.3.4 -s 5.6.7.8", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): multiple -s flags not allowed\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:21' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): cannot have ! before -j\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:12' },
  { family: 'ip', table: 'filter', rule: "-N -foo", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name not allowed to start with `-'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-N !foo", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name not allowed to start with `!'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-N ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name may not clash with target name\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-N LOG", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name may not clash with target name\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-N \"a b\"", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Invalid chain name `a b'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-N AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name `AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' too long (must be under 29 chars)\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-A AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): chain name `AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' too long (must be under 29 chars)\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:4' },
  { family: 'ip', table: 'filter', rule: "-R INPUT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -R requires a rule number\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-E foo", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -E requires old-chain-name and new-chain-name\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-P INPUT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -P requires a chain and a policy\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! -p all", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): rule would never match protocol\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:15' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! -t filter", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unexpected ! flag before --table\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:12' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -t filter", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): The -t option cannot be used in iptables-restore.\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -w", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): You cannot use `-w' from iptables-restore\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -W", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): You cannot use `-W' from iptables-restore\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -c 1", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -c requires packet and byte counter\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -c x 1", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -c packet counter not numeric\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -c 1 x", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): -c byte counter not numeric\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! ! -p tcp", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): multiple consecutive ! not allowed\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:12' },
  { family: 'ip', table: 'nat', rule: "-A PREROUTING -j DROP", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): \nThe \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited.\n\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:18' },
  { family: 'ip', table: 'nat', rule: "-A PREROUTING -p tcp -g DROP", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): \nThe \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited.\n\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:25' },
  { family: 'ip', table: 'nat', rule: "-P PREROUTING DROP", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): \nThe \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited.\n\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:15' },
  { family: 'ip', table: 'nat', rule: "-I PREROUTING 1 -j DROP", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): \nThe \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited.\n\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:20' },
  { family: 'ip', table: 'filter', rule: "-A INPUT foo", legacy: 2, stderr: "Bad argument `foo'\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT !", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): nothing appropriate following !\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-R INPUT 1 -s 1.2.3.4,5.6.7.8 -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Replacement rule does not specify a unique address\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -o eth0", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Can't use -o with INPUT\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A OUTPUT -i eth0", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Can't use -i with OUTPUT\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:11' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -i \"\"", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Empty interface is likely to be undesired\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT ! -s 1.2.3.4,5.6.7.8", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): ! not allowed with multiple source or destination IP addresses\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:12' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -- foo", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unknown arguments found on commandline\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip6', table: 'filter', rule: "-A INPUT -f", legacy: 2, stderr: "ip6tables-restore v1.8.9 (legacy): `-f' is not supported in IPv6, use -m frag instead\nError occurred at line: 2\nTry `ip6tables-restore -h' or 'ip6tables-restore --help' for more information.\n", nft: 2, at: '2:10' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -g NOSUCH", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): goto 'NOSUCH' is not a chain\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -j NOSUCH", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Couldn't load target `NOSUCH':No such file or directory\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -p nosuch", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): unknown protocol \"nosuch\" specified\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -s 1.2.3.4/33", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): invalid mask `33' specified\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -i aaaaaaaaaaaaaaaaa", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): interface name `aaaaaaaaaaaaaaaaa' must be shorter than IFNAMSIZ (15)\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:13' },
  { family: 'ip', table: 'filter', rule: "[1:2 -A INPUT -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Bad line 2: need ]\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'filter', rule: "[12] -A INPUT -j ACCEPT", legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Bad line 2: need ]\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:1' },
  { family: 'ip', table: 'nat', rule: ":PREROUTING DROP [0:0]", legacy: 0, stderr: "", nft: 0, at: '' },
  { family: 'ip', table: 'filter', rule: "-A INPUT -p tcp -6 -j ACCEPT", legacy: 0, stderr: "", nft: 0, at: '' },
  { family: 'ip6', table: 'filter', rule: "-A INPUT -p tcp -4 -j ACCEPT", legacy: 0, stderr: "", nft: 0, at: '' },
  { family: 'ip', table: 'filter', rule: MANY_ARGS, legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Parser cannot handle more arguments\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:757' },
  { family: 'ip', table: 'filter', rule: LONG_PARAM, legacy: 2, stderr: "iptables-restore v1.8.9 (legacy): Parameter too long!\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", nft: 2, at: '2:31' },
];

/** The restore input of a case. */
export function refusalInput(r: Refusal): string {
  return `*${r.table}\n${r.rule}\nCOMMIT\n`;
}

/** iptables' reason in its stderr: without the program prefix, the line report and the surrounding blank lines. */
export function refusalReason(stderr: string): string {
  return stderr
    .replace(/^ip6?tables-restore v[0-9.]+ \(legacy\): /, '')
    .replace(/\nError occurred at line: \d+\nTry `ip6?tables-restore -h' or 'ip6?tables-restore --help' for more information\.\n$/, '')
    .trim();
}
