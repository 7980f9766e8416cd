// Adaptive spinning before a park. Parking a waiter costs a futex wake and a trip through the event
// loop (tens of microseconds); a reply from a process running on another CPU often lands sooner,
// and on one CPU a waiter that yields the CPU lets the writer run and reply at once. So a waiter first looks for a while, as glibc's adaptive mutexes and the JVM's
// locks do, but only while looking has been paying off: each object keeps a small score of how
// its recent waits went, so a consumer that waits long (an idle queue) stops burning CPU.

import { availableParallelism } from 'node:os';
import { monotonicMs } from './clock.ts';
import { native } from '../native/binding.ts';

/**
 * On one CPU (taskset, a one-CPU container) a waiter that only looked would keep the writer it
 * waits for off the CPU; there it yields between looks (sched_yield), so a runnable writer runs at
 * once, and the writer, seeing no parked reader, skips its futex wake. Pinned Pipe round trips:
 * 31-37 -> 22-28 us between processes, 22-28 -> 13-25 between threads (alternating runs).
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

export class Spinner {
  #score = MAX_SCORE;
  #skipped = 0;
  #startedAt = 0;

  /** Whether the next spin() would look at all (false: it parks at once). */
  willSpin(): boolean {
    return MAX_SPIN_MS > 0 && (this.#score > 0 || (this.#skipped + 1) % PROBE_EVERY === 0);
  }

  /** Looks for `ready()` for a while; true once it is. Call settled() when a park ends the wait. */
  spin(ready: () => boolean): boolean {
    const start = monotonicMs();
    this.#startedAt = start;
    if (MAX_SPIN_MS === 0) return false;
    if (this.#score === 0 && ++this.#skipped % PROBE_EVERY !== 0) return false;
    const end = start + MAX_SPIN_MS;
    for (;;) {
      for (let i = 0; i < LOOKS_PER_CLOCK_READ; i++) {
        if (ready()) return this.#paid();
        if (ONE_CPU) native().schedYield();
      }
      // A yield may have lasted the writer's whole turn: look once more before giving up.
      if (monotonicMs() >= end) return ready() ? this.#paid() : false;
    }
  }

  #paid(): true {
    this.#score = Math.min(MAX_SCORE, this.#score + 1);
    return true;
  }

  /** A parked wait ended: had it ended within the spin budget, looking would have paid. */
  settled(): void {
    if (MAX_SPIN_MS === 0) return;
    const paid = monotonicMs() - this.#startedAt <= MAX_SPIN_MS * 2;
    this.#score = paid ? Math.min(MAX_SCORE, this.#score + 1) : Math.max(0, this.#score - 1);
  }
}
