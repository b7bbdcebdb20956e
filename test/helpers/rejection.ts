/** Reading a library call's error in full: the MacvtapError it rejects with. */
import { expect } from 'vitest';
import { MacvtapError } from '../../lib/index.js';

/** The MacvtapError a promise rejects with (asserted to be one); fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<MacvtapError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MacvtapError);
    return e as MacvtapError;
  }
  throw new Error('expected the call to reject, but it resolved');
}
