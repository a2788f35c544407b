/** The NfvmError `fn` throws (anything else, or nothing, fails the test). */
import { expect } from 'vitest';
import { NfvmError } from '../../core/errors.js';

export function nfvmErrorOf(fn: () => unknown): NfvmError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NfvmError);
  return err as NfvmError;
}
