// A Lock's words in shared memory, for tests that put a lock into a state only a kill at one
// instant leaves, or print its state when it fails (white-box: the layout is src/synchronize/lock.ts's).

import type { Lock } from '../../src/index.ts';
import { attach } from '../../src/internal/arena.ts';
import { kSlot } from '../../src/synchronize/shared-object.ts';

/** [state, (unused), holder thread, recursion count]. */
export function lockWordsOf(lock: Lock): Int32Array {
  const { buffer, offset } = attach(lock[kSlot]);
  return new Int32Array(buffer, offset, 4);
}
