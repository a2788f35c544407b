/**
 * comment match: libxt_comment.c, kernel xt_comment.c (always matches).
 * `struct xt_comment_info` holds 256 bytes: at most 255 bytes of text.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { saveString } from '../save.js';
import type { MatchFn } from '../xt.js';

interface CommentData {
  comment: string | undefined;
}

const XT_MAX_COMMENT_LEN = 256;

/** The data share() returned last. */
let lastShared: CommentData | undefined;

export const comment: MatchModule<CommentData> = {
  kind: 'match',
  name: 'comment',
  pure: true,
  options: [{ name: 'comment', arg: 1 }],
  init: () => ({ comment: undefined }),
  parse(d, _opt, arg) {
    if (Buffer.byteLength(arg!, 'utf8') > XT_MAX_COMMENT_LEN - 1) {
      fail(`comment: argument too long (must be at most ${XT_MAX_COMMENT_LEN - 1} characters)`);
    }
    d.comment = arg!;
  },
  final(d) {
    if (d.comment === undefined) fail('comment: option "--comment" must be specified', 'option');
  },
  // the rules of a chain often say the same (kube-proxy's endpoint chains): one object for a run of them
  share: (d) => (lastShared !== undefined && lastShared.comment === d.comment ? lastShared : (lastShared = d)),
  save: (d) => ' --comment ' + saveString(d.comment ?? ''),
  lower: () => {},
  reference: commentMt,
};

// --- reference semantics (--engine reference) --------------------------------
/**
 * comment match: net/netfilter/xt_comment.c comment_mt() (kernel 6.18): always true.
 */
function commentMt(): MatchFn {
  return () => true;
}
