// Event in shared memory (Python's multiprocessing.Event). Words: [flag, waiters, sets].
// Waiters park on `sets`, which every set() moves for good: a set() followed at once by clear()
// leaves the flag as it was, and a waiter that looked only at the flag would never see the set.

import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';

const FLAG = 0;
const WAITERS = 1;
/** Counts the set() calls that raised the flag. */
const SETS = 2;

/**
 * A flag that processes can wait for.
 * @example
 * const ready = new Event(); // child: ready.set(); parent: await ready.wait();
 */
export class Event {
  readonly [kSlot]: Slot;
  readonly #words: Int32Array;

  constructor() {
    const { slot, words } = wordsFor(12);
    this[kSlot] = slot;
    this.#words = words;
  }

  isSet(): boolean {
    return Atomics.load(this.#words, FLAG) === 1;
  }

  /** Sets the flag and wakes every waiter, in every process. */
  set(): void {
    const words = this.#words;
    if (Atomics.exchange(words, FLAG, 1) !== 0) return;
    Atomics.add(words, SETS, 1);
    if (Atomics.load(words, WAITERS) > 0) wake(words, SETS);
  }

  clear(): void {
    Atomics.store(this.#words, FLAG, 0);
  }

  /** Resolves true once the flag is set (even if cleared again since), or false when `timeout` ms pass first. */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const words = this.#words;
    if (Atomics.load(words, FLAG) === 1) return true;
    const options = waitOptions('Event.wait()', timeout);
    const deadline = deadlineOf('Event.wait()', options.timeout);
    Atomics.add(words, WAITERS, 1);
    try {
      const sets = Atomics.load(words, SETS);
      while (Atomics.load(words, FLAG) === 0 && Atomics.load(words, SETS) === sets) {
        if (expired(deadline)) return false;
        await park(words, SETS, sets, deadline, options.signal);
      }
      return true;
    } finally {
      Atomics.sub(words, WAITERS, 1);
    }
  }

  toString(): string {
    return `<Event(${this.isSet() ? 'set' : 'unset'})>`;
  }
}

registerShared(Event, 'Event', () => null, () => new Event());
