// Waits in a list, each ended by a wake, by its timeout or by its AbortSignal: Listener.accept()'s
// wait for a connection, a socket Connection's wait for a message. A wait that ends leaves the
// list at once, so nothing is handed to a waiter that stopped waiting.

import { timerFor } from './validate.ts';

export class WaitList<T> {
  readonly #list: ((value: T) => void)[] = [];

  get length(): number {
    return this.#list.length;
  }

  /**
   * Resolves with what wakes it, or 'timed-out' after `timeoutMs` (undefined, or longer than a
   * timer takes: no timeout); rejects with the signal's reason when it aborts. With `keepAlive`
   * false its timer does not keep the process alive.
   */
  wait(timeoutMs: number | undefined, signal?: AbortSignal, keepAlive = true): Promise<T | 'timed-out'> {
    return new Promise<T | 'timed-out'>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = timerFor(timeoutMs, () => settle(() => resolve('timed-out')));
      if (!keepAlive) timer?.unref();
      const onAbort = () => settle(() => reject(signal?.reason));
      const waiter = (value: T) => settle(() => resolve(value));
      const settle = (done: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.#list.indexOf(waiter);
        if (at >= 0) this.#list.splice(at, 1);
        done();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#list.push(waiter);
    });
  }

  /** Ends the longest wait with `value`; false when none waits. */
  wakeOne(value: T): boolean {
    const waiter = this.#list.shift();
    waiter?.(value);
    return waiter !== undefined;
  }

  wakeAll(value: T): void {
    for (const waiter of [...this.#list]) waiter(value);
  }
}
