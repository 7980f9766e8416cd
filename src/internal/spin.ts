// Adaptive spinning before a park. Parking a waiter costs a futex wake and a trip through the event
// loop (tens of microseconds); a reply from a process running on another CPU often lands sooner,
// and on one CPU a waiter that yields the CPU lets the writer run and reply at once. So a waiter
// first looks for a while, as glibc's adaptive mutexes and the JVM's locks do, but only while
// looking has been paying off: each object keeps a small score of how its recent waits went, so a
// consumer that waits long (an idle queue) stops burning CPU.

import { availableParallelism } from 'node:os';
import { monotonicMs } from './clock.ts';
import { native } from '../native/binding.ts';

/**
 * On one CPU (taskset, a one-CPU container) a waiter that only looked would keep the writer it
 * waits for off the CPU; there it yields between looks (sched_yield), so a runnable writer runs at
 * once, and the writer, seeing no parked reader, skips its futex wake (docs/communication.md has
 * the round trips before and after).
 */
const ONE_CPU = availableParallelism() === 1;
/** The longest look before parking. */
const MAX_SPIN_MS = spinBudgetFromEnv();
const MAX_SCORE = 8;
const LOOKS_PER_CLOCK_READ = ONE_CPU ? 1 : 32;
/** With a score of zero, one wait in this many still looks, to notice when looking pays again. */
const PROBE_EVERY = 16;

function spinBudgetFromEnv(): number {
  const us = Number(process.env.MULTIPROC_SPIN_US ?? 50);
  return Number.isFinite(us) && us >= 0 ? us / 1000 : 0.05;
}

/** How recent looks went, and whether the next one should happen. */
class Score {
  #value = MAX_SCORE;
  #skipped = 0;

  /** Whether the next look is worth it (a probe now and then even when looking has not paid). */
  get promising(): boolean {
    return this.#value > 0 || (this.#skipped + 1) % PROBE_EVERY === 0;
  }

  /** Says whether to look now, counting a skipped look. */
  take(): boolean {
    return this.#value > 0 || ++this.#skipped % PROBE_EVERY === 0;
  }

  paid(): true {
    this.#value = Math.min(MAX_SCORE, this.#value + 1);
    return true;
  }

  missed(): void {
    this.#value = Math.max(0, this.#value - 1);
  }

  /** A miss that says looking this way is wrong here for now, not just unlucky. */
  reset(): void {
    this.#value = 0;
  }
}

export class Spinner {
  readonly #score = new Score();
  /**
   * On one CPU, a look before the event loop's next turn. There the turn (an epoll call and the
   * loop's phases) cannot overlap the writer's work as it does on two CPUs, and a round trip has
   * two of them. It is wrong when the reply waits for a callback of this thread's own (a timer
   * that sends the request, say): one such miss stops early looks until a probe.
   */
  readonly #early = new Score();
  #startedAt = 0;

  /** Whether the next spin() would look at all (false: it parks at once). */
  willSpin(): boolean {
    return MAX_SPIN_MS > 0 && this.#score.promising;
  }

  /**
   * After willSpin(): whether to look before the event loop's next turn (on one CPU, while it
   * pays). It counts the waits it says no to: they are what brings the next probe (when only
   * spinEarly() counted them, one miss stopped early looks for good).
   */
  willSpinEarly(): boolean {
    return ONE_CPU && this.#early.take();
  }

  /** The look before the event loop's turn that willSpinEarly() allowed; a miss stops early looks for a while. */
  spinEarly(ready: () => boolean): boolean {
    if (this.#look(ready)) return this.#early.paid();
    this.#early.reset();
    return false;
  }

  /** Looks for `ready()` for a while; true once it is. Call settled() when a park ends the wait. */
  spin(ready: () => boolean): boolean {
    this.#startedAt = monotonicMs();
    if (MAX_SPIN_MS === 0 || !this.#score.take()) return false;
    return this.#look(ready) && this.#score.paid();
  }

  #look(ready: () => boolean): boolean {
    const end = monotonicMs() + MAX_SPIN_MS;
    const addon = ONE_CPU ? native() : undefined;
    for (;;) {
      for (let i = 0; i < LOOKS_PER_CLOCK_READ; i++) {
        if (ready()) return true;
        addon?.schedYield();
      }
      // A yield may have lasted the writer's whole turn: look once more before giving up.
      if (monotonicMs() >= end) return ready();
    }
  }

  /** A parked wait ended: had it ended within the spin budget, looking would have paid. */
  settled(): void {
    if (MAX_SPIN_MS === 0) return;
    if (monotonicMs() - this.#startedAt <= MAX_SPIN_MS * 2) this.#score.paid();
    else this.#score.missed();
  }
}
