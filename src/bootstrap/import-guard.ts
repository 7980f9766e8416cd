// The main guard for what a child's import leaves running. A target module that calls an async
// main() at its top level without the guard may start processes after its import has finished
// (after an await): that must fail as a start during the import does, or it would fork-bomb.
// An AsyncLocalStorage marks every async continuation born of the import, but its promise hooks
// slow every promise of the process (an await took 1.3 us instead of 0.07; Queue.put() 2.5 us
// instead of 0.8). So the marking lasts only while something born of the import can still run:
//   - until the microtasks the import queued have run: one turn of the event loop after it, before
//     the target starts;
//   - and while an async resource born of it lives (a timer, a socket, a request, a port): once
//     all are destroyed, nothing born of the import can run again, and the hooks are turned off.
// Promises are not counted: one only runs code when something settles it, and what settles it
// later is such a resource (or the target itself, which is not the import). Counting them kept the
// hooks on for good: the throwaway promise of each top-level await never settles. Nor are Node's
// module loader's file-close requests, which end a turn after the import and run no user code.

import { createHook } from 'node:async_hooks';
import type { Runtime } from '../internal/runtime.ts';

/** Imports with `load` under the import marking of `rt`; the marking ends when nothing of the import can run. */
export async function importGuarded<T>(rt: Runtime, load: () => Promise<T>): Promise<T> {
  const alive = new Set<number>();
  let imported = false;
  const hook = createHook({
    init(asyncId, type) {
      if (type !== 'PROMISE' && type !== 'FILEHANDLECLOSEREQ' && rt.importing.getStore()) alive.add(asyncId);
    },
    destroy(asyncId) {
      if (alive.delete(asyncId) && imported && alive.size === 0) stop();
    },
  });
  const stop = () => {
    hook.disable();
    rt.importing.disable();
    rt.importWatched = false;
  };
  hook.enable();
  rt.importWatched = true;
  try {
    const value = await rt.importing.run(true, load);
    await new Promise((resolve) => setImmediate(resolve));
    return value;
  } finally {
    imported = true;
    if (alive.size === 0) stop();
  }
}
