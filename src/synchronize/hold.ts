// Python's `with lock:` as a TypeScript `using` block: `using held = await lock.hold()` acquires,
// and the end of the block releases (once, however it is left). A wait that times out rejects
// with TimeoutError, as a `using` declaration cannot test acquire()'s false.

import { TimeoutError } from '../errors.ts';
import type { WaitOptions } from '../internal/validate.ts';

export async function holding(where: string, acquired: Promise<boolean>, release: () => void, timeout: number | WaitOptions | undefined): Promise<Disposable> {
  if (!(await acquired)) {
    const ms = typeof timeout === 'number' ? timeout : timeout?.timeout;
    throw new TimeoutError(`${where}: not acquired within ${ms} ms.`);
  }
  let held = true;
  return {
    [Symbol.dispose]() {
      if (!held) return;
      held = false;
      release();
    },
  };
}
