/**
 * comment match: net/netfilter/xt_comment.c comment_mt() (kernel 6.18): always true.
 */
import type { MatchFn } from '../../../ext/xt.js';

export function comment(): MatchFn {
  return () => true;
}
