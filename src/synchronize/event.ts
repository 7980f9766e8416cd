// Event in shared memory (Python's multiprocessing.Event). Words: [flag, waiters].

import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';

const FLAG = 0;
const WAITERS = 1;

/**
 * A flag that processes can wait for.
 * @example
 * const ready = new Event(); // child: ready.set(); parent: await ready.wait();
 */
export class Event {
  readonly [kSlot]: Slot;
  readonly #words: Int32Array;

  constructor() {
    const { slot, words } = wordsFor(8);
    this[kSlot] = slot;
    this.#words = words;
  }

  isSet(): boolean {
    return Atomics.load(this.#words, FLAG) === 1;
  }

  /** Sets the flag and wakes every waiter, in every process. */
  set(): void {
    if (Atomics.exchange(this.#words, FLAG, 1) === 0 && Atomics.load(this.#words, WAITERS) > 0) wake(this.#words, FLAG);
  }

  clear(): void {
    Atomics.store(this.#words, FLAG, 0);
  }

  /** Resolves true once the flag is set, or false when `timeout` ms pass first. */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const words = this.#words;
    if (Atomics.load(words, FLAG) === 1) return true;
    const options = waitOptions('Event.wait()', timeout);
    const deadline = deadlineOf('Event.wait()', options.timeout);
    Atomics.add(words, WAITERS, 1);
    try {
      while (Atomics.load(words, FLAG) === 0) {
        if (expired(deadline)) return false;
        await park(words, FLAG, 0, deadline, options.signal);
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
