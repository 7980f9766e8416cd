// Barrier (Python's multiprocessing.Barrier) in shared memory. Words: [arrived, generation,
// broken, resets]. Each party adds itself to `arrived`; the last one runs the action, starts a new
// generation and wakes everyone. Waiters park on `generation`; reset() and abort() also move it so
// that every waiter wakes and sees why.

import { BrokenBarrierError, describe, invalidArgument } from '../errors.ts';
import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { importReference, isModuleRef, referenceOf, type ModuleRef } from '../internal/function-ref.ts';
import { timeoutMs, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';

const ARRIVED = 0;
const GENERATION = 1;
const BROKEN = 2;
const RESETS = 3;

type Action = (() => unknown) | ModuleRef;

/**
 * A barrier for `parties` processes or threads; wait() resolves with a distinct index from 0 to
 * parties - 1 once all have arrived.
 * @example
 * const start = new Barrier(3); // in each of 3 processes: await start.wait();
 */
export class Barrier {
  readonly [kSlot]: Slot;
  readonly parties: number;
  readonly #words: Int32Array;
  readonly #timeout: number | undefined;
  #action: Action | undefined;

  /** `action` runs in the last party to arrive, before the others are released; it crosses by reference (export it). */
  constructor(parties: number, action?: Action, timeout?: number) {
    if (!Number.isInteger(parties) || parties < 1) throw invalidArgument(`new Barrier(): expected \`parties\` to be a positive integer, got ${describe(parties)}.`);
    if (action !== undefined && typeof action !== 'function' && !isModuleRef(action)) {
      throw invalidArgument(`new Barrier(): expected \`action\` to be a function exported by its module, got ${describe(action)}.`);
    }
    const { slot, words } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
    this.parties = parties;
    this.#action = action;
    this.#timeout = timeout === undefined ? undefined : timeoutMs('new Barrier()', timeout);
  }

  /** Waits for all parties; rejects with BrokenBarrierError if the barrier breaks, is reset or times out. */
  async wait(timeout?: number | WaitOptions): Promise<number> {
    const options = waitOptions('Barrier.wait()', timeout ?? this.#timeout);
    const words = this.#words;
    this.#assertNotBroken();
    const generation = Atomics.load(words, GENERATION);
    const resets = Atomics.load(words, RESETS);
    const index = Atomics.add(words, ARRIVED, 1);
    if (index === this.parties - 1) {
      await this.#release();
      return index;
    }
    const deadline = deadlineOf('Barrier.wait()', options.timeout);
    try {
      while (Atomics.load(words, GENERATION) === generation) {
        if (expired(deadline)) {
          this.abort();
          break;
        }
        await park(words, GENERATION, generation, deadline, options.signal);
      }
    } catch (error) {
      this.abort(); // an aborted wait breaks the barrier for everyone, as a timeout does
      throw error;
    }
    if (Atomics.load(words, BROKEN) === 1 || Atomics.load(words, RESETS) !== resets) {
      throw new BrokenBarrierError(`Barrier.wait(): the barrier was ${Atomics.load(words, BROKEN) === 1 ? 'broken (aborted, timed out, or its action threw)' : 'reset'} while this party waited.`);
    }
    return index;
  }

  /** Returns the barrier to its empty state; parties waiting now get BrokenBarrierError. */
  reset(): void {
    const words = this.#words;
    Atomics.add(words, RESETS, 1);
    Atomics.store(words, ARRIVED, 0);
    Atomics.store(words, BROKEN, 0);
    Atomics.add(words, GENERATION, 1);
    wake(words, GENERATION);
  }

  /** Breaks the barrier: current and future wait() calls reject until reset(). */
  abort(): void {
    const words = this.#words;
    Atomics.store(words, BROKEN, 1);
    Atomics.add(words, GENERATION, 1);
    wake(words, GENERATION);
  }

  /** How many parties are waiting now. */
  get nWaiting(): number {
    return Atomics.load(this.#words, ARRIVED);
  }

  get broken(): boolean {
    return Atomics.load(this.#words, BROKEN) === 1;
  }

  async #release(): Promise<void> {
    const words = this.#words;
    try {
      if (this.#action !== undefined) {
        if (isModuleRef(this.#action)) this.#action = (await importReference(this.#action)) as () => unknown;
        await this.#action();
      }
    } catch (error) {
      this.abort();
      throw error;
    }
    Atomics.store(words, ARRIVED, 0);
    Atomics.add(words, GENERATION, 1);
    wake(words, GENERATION);
  }

  #assertNotBroken(): void {
    if (Atomics.load(this.#words, BROKEN) === 1) {
      throw new BrokenBarrierError('Barrier.wait(): the barrier is broken (aborted, timed out, or its action threw). Call reset() to use it again.');
    }
  }

  static {
    registerShared(
      Barrier,
      'Barrier',
      (barrier) => ({
        parties: barrier.parties,
        timeout: barrier.#timeout,
        action: barrier.#action === undefined ? undefined : referenceOf(barrier.#action, 'Barrier (its action)'),
      }),
      ({ parties, timeout, action }) => new Barrier(parties, action, timeout),
    );
  }
}
