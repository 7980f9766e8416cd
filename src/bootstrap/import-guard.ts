// The main guard for what a child's import leaves running. A target module that calls an async
// main() at its top level without the guard may start processes after its import has finished
// (after an await): that must fail as a start during the import does, or it would fork-bomb.
// An AsyncLocalStorage marks every async continuation born of the import, but its promise hooks
// slow every promise of the process for its whole life. So the marking lasts only as long as
// something born of the import is still pending: once every promise it created has settled and
// every other async resource (timer, socket, request) has been destroyed, nothing born of it
// can run again, and the hooks are turned off.

import { createHook } from 'node:async_hooks';
import type { Runtime } from '../internal/runtime.ts';

/** Imports with `load` under the import marking of `rt`; the marking ends when nothing of the import is pending. */
export async function importGuarded<T>(rt: Runtime, load: () => Promise<T>): Promise<T> {
  const pending = new Set<number>();
  let imported = false;
  const settle = (asyncId: number) => {
    if (pending.delete(asyncId) && imported && pending.size === 0) stop();
  };
  const hook = createHook({
    init(asyncId) {
      if (rt.importing.getStore()) pending.add(asyncId);
    },
    promiseResolve: settle,
    destroy: settle,
  });
  const stop = () => {
    hook.disable();
    rt.importing.disable();
  };
  hook.enable();
  try {
    return await rt.importing.run(true, load);
  } finally {
    imported = true;
    if (pending.size === 0) stop();
  }
}
