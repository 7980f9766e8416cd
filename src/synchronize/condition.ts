// Condition (Python's multiprocessing.Condition) from a lock and two semaphores: `sleeping`
// counts waiters that may be notified, `wakeups` carries one token per notified waiter. notify()
// never blocks (Python's blocks until the woken wait; in one event loop that could deadlock).
// A wait that times out settles its account under the lock: if a notifier had already counted it,
// the token is its own and it reports being notified.

import { ProcessError } from '../errors.ts';
import { deadlineOf, expired } from '../internal/futex.ts';
import { waitOptions, type WaitOptions } from '../internal/validate.ts';
import { Lock, RLock } from './lock.ts';
import { Semaphore } from './semaphore.ts';
import { describe, invalidArgument } from '../errors.ts';
import { registerReducer } from '../reduction.ts';
import { monotonicMs } from '../internal/clock.ts';
import { holding } from './hold.ts';

/**
 * A condition variable over a Lock or RLock (an RLock by default).
 * @example
 * await cond.acquire(); try { while (!ready()) await cond.wait(); } finally { cond.release(); }
 */
export class Condition {
  readonly #lock: Lock | RLock;
  readonly #sleeping: Semaphore;
  readonly #wakeups: Semaphore;

  constructor(lock?: Lock | RLock) {
    if (lock !== undefined && !(lock instanceof Lock) && !(lock instanceof RLock)) {
      throw invalidArgument(`new Condition(): expected a Lock or RLock, got ${describe(lock)}.`);
    }
    this.#lock = lock ?? new RLock();
    this.#sleeping = rebuilding?.sleeping ?? new Semaphore(0);
    this.#wakeups = rebuilding?.wakeups ?? new Semaphore(0);
  }

  acquire(block: false): boolean;
  acquire(block?: true, timeout?: number | WaitOptions): Promise<boolean>;
  acquire(block = true, timeout?: number | WaitOptions): boolean | Promise<boolean> {
    return block ? this.#lock.acquire(true, timeout) : this.#lock.acquire(false);
  }
  /** Python's `with cond:`: `using held = await cond.hold()` takes its lock, and the end of the block releases it. */
  hold(timeout?: number | WaitOptions): Promise<Disposable> {
    return holding('Condition.hold()', this.acquire(true, timeout), () => this.release(), timeout);
  }


  release(): void {
    this.#lock.release();
  }

  /** Releases the lock, waits for notify() (or `timeout` ms), reacquires it; false on timeout. */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const options = waitOptions('Condition.wait()', timeout);
    this.#assertOwned('wait');
    this.#sleeping.release();
    const levels = this.#lock instanceof RLock ? this.#lock.releaseAll() : (this.#lock.release(), 1);
    let notified = false;
    let failure: unknown;
    try {
      notified = await this.#wakeups.acquire(true, options);
    } catch (error) {
      failure = error; // aborted: settle the account below, then rethrow unless a notify came first
    } finally {
      await this.#lock.acquire(true);
      if (this.#lock instanceof RLock) this.#lock.restoreCount(levels);
    }
    // Not woken: take our own sleeping mark back, unless a notifier already took it for us, in
    // which case its token is waiting in `wakeups` and the wait counts as notified.
    if (!notified && !this.#sleeping.acquire(false)) {
      this.#wakeups.acquire(false);
      notified = true;
    }
    if (failure !== undefined && !notified) throw failure;
    return notified;
  }

  /** Waits until predicate() is truthy (checking it first), or `timeout` ms; returns its last value. */
  async waitFor<T>(predicate: () => T, timeout?: number | WaitOptions): Promise<T> {
    const options = waitOptions('Condition.waitFor()', timeout);
    const deadline = deadlineOf('Condition.waitFor()', options.timeout);
    let result = predicate();
    while (!result) {
      if (expired(deadline)) break;
      const left = deadline === undefined ? undefined : Math.max(0, deadline - monotonicMs());
      await this.wait({ timeout: left, signal: options.signal });
      result = predicate();
    }
    return result;
  }

  /** Wakes up to `n` waiters; the caller must hold the lock. */
  notify(n = 1): void {
    this.#assertOwned('notify');
    for (let woken = 0; woken < n && this.#sleeping.acquire(false); woken++) this.#wakeups.release();
  }

  notifyAll(): void {
    this.notify(Number.MAX_SAFE_INTEGER);
  }

  #assertOwned(method: string): void {
    if (!this.#lock.isMine()) {
      throw new ProcessError(`Condition.${method}(): this thread does not hold the condition's lock. Call await cond.acquire() first.`, { code: 'ERR_MP_LOCK_NOT_OWNED' });
    }
  }

  toString(): string {
    return `<Condition(${String(this.#lock)}, ${this.#sleeping.getValue()} waiting)>`;
  }

  static {
    registerReducer(Condition, 'Condition', {
      reduce: (condition: Condition) => ({ lock: condition.#lock, sleeping: condition.#sleeping, wakeups: condition.#wakeups }),
      rebuild: (state: { lock: Lock | RLock; sleeping: Semaphore; wakeups: Semaphore }) => {
        rebuilding = state;
        try {
          return new Condition(state.lock);
        } finally {
          rebuilding = undefined;
        }
      },
    });
  }
}

let rebuilding: { sleeping: Semaphore; wakeups: Semaphore } | undefined;
