// Semaphore and BoundedSemaphore in shared memory. Words: [value, waiters, bound]. acquire()
// decrements value when it is positive; otherwise it parks on the value word until a release()
// changes it. release() wakes only when someone waits.

import { ProcessError, describe, badNumber } from '../errors.ts';
import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { notABlock, refusedWait, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';
import { holding } from './hold.ts';

const VALUE = 0;
const WAITERS = 1;
/** The initial value: a BoundedSemaphore never goes above it. */
const BOUND = 2;
/** Python's SEM_VALUE_MAX on Linux. */
export const SEM_VALUE_MAX = 0x7fffffff;

/**
 * A counting semaphore (Python's multiprocessing.Semaphore).
 * @example
 * const slots = new Semaphore(3); await slots.acquire(); try { ... } finally { slots.release(); }
 */
export class Semaphore {
  readonly [kSlot]: Slot;
  readonly #words: Int32Array;

  constructor(value = 1) {
    const where = `new ${new.target.name}()`;
    if (!Number.isInteger(value) || value < 0 || value > SEM_VALUE_MAX) {
      const message = `${where}: expected \`value\` to be an integer from 0 to ${SEM_VALUE_MAX}, got ${describe(value)}.`;
      throw badNumber(value, message);
    }
    const { slot, words, fresh } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
    if (fresh) {
      Atomics.store(words, VALUE, value);
      Atomics.store(words, BOUND, value);
    }
  }

  acquire(block: false): boolean;
  acquire(block?: true, timeout?: number | WaitOptions): Promise<boolean>;
  acquire(block = true, timeout?: number | WaitOptions): boolean | Promise<boolean> {
    if (typeof block !== 'boolean') throw notABlock(`${this.constructor.name}.acquire()`, block);
    const refused = block && timeout !== undefined ? refusedWait(`${this.constructor.name}.acquire()`, timeout) : undefined;
    if (refused) return refused;
    if (tryDecrement(this.#words)) return block ? Promise.resolve(true) : true;
    if (!block) return false;
    return acquireSlowly(this.#words, `${this.constructor.name}.acquire()`, timeout);
  }

  /** Adds `n` (default 1) to the value and wakes as many waiters. */
  /** Python's `with semaphore:`: `using held = await slots.hold()` takes one, and the end of the block gives it back. */
  hold(timeout?: number | WaitOptions): Promise<Disposable> {
    return holding(`${this.constructor.name}.hold()`, this.acquire(true, timeout), () => this.release(), timeout);
  }

  release(n = 1): void {
    const words = this.#words;
    if (!Number.isInteger(n) || n < 1) {
      const message = `${this.constructor.name}.release(): expected \`n\` to be a positive integer, got ${describe(n)}.`;
      throw badNumber(n, message);
    }
    const bound = Atomics.load(words, BOUND);
    for (;;) {
      const value = Atomics.load(words, VALUE);
      if (this instanceof BoundedSemaphore && value + n > bound) {
        throw new ProcessError(`BoundedSemaphore.release(): released too many times: the value would exceed its initial ${bound}. Release once per acquire().`, { code: 'ERR_MP_SEMAPHORE_OVER_RELEASED' });
      }
      // Python's "semaphore or lock released too many times": past it the shared word would wrap.
      if (value + n > SEM_VALUE_MAX) {
        throw new ProcessError(`${this.constructor.name}.release(): released too many times: the value would exceed SEM_VALUE_MAX (${SEM_VALUE_MAX}).`, { code: 'ERR_MP_SEMAPHORE_OVER_RELEASED' });
      }
      if (Atomics.compareExchange(words, VALUE, value, value + n) === value) break;
    }
    if (Atomics.load(words, WAITERS) > 0) wake(words, VALUE, n);
  }

  /** The current value (Python's get_value()). */
  getValue(): number {
    return Atomics.load(this.#words, VALUE);
  }

  toString(): string {
    return `<${this.constructor.name}(value=${this.getValue()})>`;
  }
}

/** A Semaphore whose release() throws once the value would exceed its initial value. */
export class BoundedSemaphore extends Semaphore {}

function tryDecrement(words: Int32Array): boolean {
  for (;;) {
    const value = Atomics.load(words, VALUE);
    if (value <= 0) return false;
    if (Atomics.compareExchange(words, VALUE, value, value - 1) === value) return true;
  }
}

async function acquireSlowly(words: Int32Array, where: string, timeout: number | WaitOptions | undefined): Promise<boolean> {
  const options = waitOptions(where, timeout);
  const deadline = deadlineOf(where, options.timeout);
  Atomics.add(words, WAITERS, 1);
  try {
    while (!tryDecrement(words)) {
      if (expired(deadline)) return false;
      await park(words, VALUE, 0, deadline, options.signal);
    }
    return true;
  } finally {
    Atomics.sub(words, WAITERS, 1);
  }
}

registerShared(Semaphore, 'Semaphore', () => null, () => new Semaphore(0));
registerShared(BoundedSemaphore, 'BoundedSemaphore', () => null, () => new BoundedSemaphore(0));
