// Condition (Python's multiprocessing.Condition) over a Lock or RLock, with words of its own:
// SLEEPING counts waiters not yet notified, TOKENS one per notified waiter that has yet to wake,
// and NOTIFIES counts the notify() calls that woke anyone. notify() never blocks (Python's blocks
// until the woken waiters have woken; in one event loop that could deadlock), so a token must not
// go to a waiter that came after it: a waiter may take one only once a notify() came after it
// entered wait() (NOTIFIES moved). Otherwise a thread that notified and then waited itself took
// the token meant for the waiter it notified, which slept on. Under the lock, SLEEPING + TOKENS
// is the number of waiters, and the tokens never outnumber the waiters that may take them.
// A wait that times out settles its account under the lock: if a notify reached it meanwhile, a
// token is its own and it reports being notified.

import { ProcessError } from '../errors.ts';
import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { notABlock, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { Lock, RLock } from './lock.ts';
import { describe, invalidArgument } from '../errors.ts';
import { monotonicMs } from '../internal/clock.ts';
import { holding } from './hold.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';

const SLEEPING = 0;
const TOKENS = 1;
/** The futex word waiters park on: every notify() that woke anyone moves it. */
const NOTIFIES = 2;
/** How many waiters are parked on NOTIFIES: a notify() wakes them only when there are some. */
const PARKED = 3;

/**
 * A condition variable over a Lock or RLock (an RLock by default).
 * @example
 * await cond.acquire(); try { while (!ready()) await cond.wait(); } finally { cond.release(); }
 */
export class Condition {
  readonly [kSlot]: Slot;
  readonly #lock: Lock | RLock;
  readonly #words: Int32Array;

  constructor(lock?: Lock | RLock) {
    if (lock !== undefined && !(lock instanceof Lock) && !(lock instanceof RLock)) {
      throw invalidArgument(`new Condition(): expected a Lock or RLock, got ${describe(lock)}.`);
    }
    this.#lock = lock ?? new RLock();
    const { slot, words } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
  }

  acquire(block: false): boolean;
  acquire(block?: true, timeout?: number | WaitOptions): Promise<boolean>;
  acquire(block = true, timeout?: number | WaitOptions): boolean | Promise<boolean> {
    if (typeof block !== 'boolean') throw notABlock('Condition.acquire()', block);
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
    const words = this.#words;
    const deadline = deadlineOf('Condition.wait()', options.timeout);
    const entered = Atomics.load(words, NOTIFIES);
    Atomics.add(words, SLEEPING, 1);
    const levels = this.#lock instanceof RLock ? this.#lock.releaseAll() : (this.#lock.release(), 1);
    let notified = false;
    let failure: unknown;
    try {
      for (;;) {
        const notifies = Atomics.load(words, NOTIFIES);
        if (notifies !== entered && this.#takeToken()) {
          notified = true;
          break;
        }
        if (expired(deadline)) break;
        Atomics.add(words, PARKED, 1);
        try {
          await park(words, NOTIFIES, notifies, deadline, options.signal);
        } finally {
          Atomics.sub(words, PARKED, 1);
        }
      }
    } catch (error) {
      failure = error; // aborted: settle the account below, then rethrow unless a notify came first
    } finally {
      await this.#lock.acquire(true);
      if (this.#lock instanceof RLock) this.#lock.restoreCount(levels);
    }
    // Not woken: a notify that came meanwhile left a token for it; else it stops counting as a sleeper.
    if (!notified) {
      if (Atomics.load(words, NOTIFIES) !== entered && this.#takeToken()) notified = true;
      else Atomics.sub(words, SLEEPING, 1);
    }
    if (failure !== undefined && !notified) throw failure;
    return notified;
  }

  #takeToken(): boolean {
    const words = this.#words;
    for (let tokens = Atomics.load(words, TOKENS); tokens > 0; tokens = Atomics.load(words, TOKENS)) {
      if (Atomics.compareExchange(words, TOKENS, tokens, tokens - 1) === tokens) return true;
    }
    return false;
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
    const words = this.#words;
    const woken = Math.min(n, Atomics.load(words, SLEEPING));
    if (woken <= 0) return;
    Atomics.sub(words, SLEEPING, woken);
    Atomics.add(words, TOKENS, woken);
    Atomics.add(words, NOTIFIES, 1);
    if (Atomics.load(words, PARKED) > 0) wake(words, NOTIFIES);
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
    return `<Condition(${String(this.#lock)}, ${Atomics.load(this.#words, SLEEPING)} waiting)>`;
  }

  static {
    registerShared(Condition, 'Condition', (condition) => condition.#lock, (lock) => new Condition(lock));
  }
}
