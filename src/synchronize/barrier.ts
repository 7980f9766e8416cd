// Barrier (Python's multiprocessing.Barrier) in shared memory. Words: [state, broken, resets].
// `state` packs the round's generation (15 bits), a draining flag and how many parties arrived in
// this round (16 bits), so that a party joins a round and learns its index in one compare-exchange
// (reading the generation and counting oneself in two steps could join a round that had just
// ended). The last party to arrive sets `draining` while it runs the action: parties that arrive
// meanwhile wait and join the next round, as in Python, where the barrier drains before it fills
// again. Then it starts the next generation, with nobody arrived, and wakes everyone. Waiters park
// on `state`; reset() and abort() also start a new generation, so every waiter wakes and sees why.

import { BrokenBarrierError, describe, invalidArgument, badNumber } from '../errors.ts';
import { deadlineOf, expired, park, wake } from '../internal/futex.ts';
import { importReference, isModuleRef, referenceOf, type ModuleRef } from '../internal/function-ref.ts';
import { timeoutMs, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';

const STATE = 0;
const BROKEN = 1;
const RESETS = 2;
const COUNT = 0xffff;
const DRAINING = 0x10000;
const GENERATION_SHIFT = 17;
/** The most parties a barrier can count in its 16 bits. */
const MAX_PARTIES = COUNT;

const generationOf = (state: number) => state >>> GENERATION_SHIFT;
/** The state that starts the generation after `state`'s: nobody arrived, not draining (wraps). */
const nextGeneration = (state: number) => ((generationOf(state) + 1) << GENERATION_SHIFT) | 0;

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
    if (!Number.isInteger(parties) || parties < 1 || parties > MAX_PARTIES) {
      const message = `new Barrier(): expected \`parties\` to be an integer from 1 to ${MAX_PARTIES}, got ${describe(parties)}.`;
      throw badNumber(parties, message);
    }
    if (action !== undefined && typeof action !== 'function' && !isModuleRef(action)) {
      throw invalidArgument(`new Barrier(): expected \`action\` to be a function exported by its module, got ${describe(action)}.`);
    }
    // A barrier is for several processes: an action they cannot run is refused here, not when the
    // barrier is first sent.
    if (typeof action === 'function') referenceOf(action, 'new Barrier() (its action)');
    const { slot, words } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
    this.parties = parties;
    this.#action = action;
    this.#timeout = timeout === undefined ? undefined : timeoutMs('new Barrier()', timeout);
  }

  /** Waits for all parties; rejects with BrokenBarrierError if the barrier breaks, is reset or times out. */
  async wait(timeout?: number | WaitOptions): Promise<number> {
    // The barrier's own timeout stands for one not given, also beside a signal (Python's timeout=None).
    const given = waitOptions('Barrier.wait()', timeout);
    const options = given.timeout === undefined && this.#timeout !== undefined ? { ...given, timeout: this.#timeout } : given;
    const words = this.#words;
    this.#assertNotBroken();
    const resets = Atomics.load(words, RESETS);
    const deadline = deadlineOf('Barrier.wait()', options.timeout);
    let state = 0;
    let index = -1;
    // Join this round, unless its last party is still running the action: then the next one.
    while (index < 0) {
      this.#assertUnchanged(resets);
      state = Atomics.load(words, STATE);
      if ((state & DRAINING) !== 0) {
        await this.#park(state, deadline, options.signal);
        continue;
      }
      const joined = (state & COUNT) + 1 === this.parties ? (state + 1) | DRAINING : state + 1;
      if (Atomics.compareExchange(words, STATE, state, joined) !== state) continue;
      index = state & COUNT;
      state = joined;
    }
    if (index === this.parties - 1) {
      await this.#release(state);
      return index;
    }
    for (let now = Atomics.load(words, STATE); generationOf(now) === generationOf(state); now = Atomics.load(words, STATE)) {
      await this.#park(now, deadline, options.signal);
    }
    this.#assertUnchanged(resets);
    return index;
  }

  /** Returns the barrier to its empty state; parties waiting now get BrokenBarrierError. */
  reset(): void {
    Atomics.add(this.#words, RESETS, 1);
    Atomics.store(this.#words, BROKEN, 0);
    this.#startGeneration();
  }

  /** Breaks the barrier: current and future wait() calls reject until reset(). */
  abort(): void {
    Atomics.store(this.#words, BROKEN, 1);
    this.#startGeneration();
  }

  /** How many parties are waiting now (0 while broken, as in Python). */
  get nWaiting(): number {
    return this.broken ? 0 : Atomics.load(this.#words, STATE) & COUNT;
  }

  get broken(): boolean {
    return Atomics.load(this.#words, BROKEN) === 1;
  }

  // Parks until `state` changes. A passed deadline or an aborted signal breaks the barrier for
  // everyone (which also changes the state), as in Python.
  async #park(state: number, deadline: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (expired(deadline)) return this.abort();
    try {
      await park(this.#words, STATE, state, deadline, signal);
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  async #release(draining: number): Promise<void> {
    try {
      if (this.#action !== undefined) {
        if (isModuleRef(this.#action)) this.#action = (await importReference(this.#action)) as () => unknown;
        await this.#action();
      }
    } catch (error) {
      this.abort();
      throw error;
    }
    // A reset() or abort() during the action has started a new generation already: leave it be.
    if (Atomics.compareExchange(this.#words, STATE, draining, nextGeneration(draining)) === draining) wake(this.#words, STATE);
  }

  // Ends the current generation, whatever its state: its waiters wake and find out why.
  #startGeneration(): void {
    const words = this.#words;
    for (;;) {
      const state = Atomics.load(words, STATE);
      if (Atomics.compareExchange(words, STATE, state, nextGeneration(state)) === state) break;
    }
    wake(words, STATE);
  }

  // After a wake: the barrier broke, or was reset, since this party started waiting.
  #assertUnchanged(resets: number): void {
    const words = this.#words;
    if (Atomics.load(words, BROKEN) === 1 || Atomics.load(words, RESETS) !== resets) {
      throw new BrokenBarrierError(`Barrier.wait(): the barrier was ${Atomics.load(words, BROKEN) === 1 ? 'broken (aborted, timed out, or its action threw)' : 'reset'} while this party waited.`);
    }
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
