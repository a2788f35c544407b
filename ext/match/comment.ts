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

export const comment: MatchModule<CommentData> = {
  kind: 'match',
  name: 'comment',
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
