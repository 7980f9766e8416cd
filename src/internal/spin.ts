// Adaptive spinning before a park. Parking a waiter costs a trip through the native waiter thread
// and the event loop (tens of microseconds); a reply from a process running on another CPU often
// lands sooner. So a waiter first looks for a while, as glibc's adaptive mutexes and the JVM's
// locks do, but only while looking has been paying off: each object keeps a small score of how
// its recent waits went, so a consumer that waits long (an idle queue) stops burning CPU.

import { availableParallelism } from 'node:os';
import { monotonicMs } from './clock.ts';

/** The longest look before parking. Zero on one CPU: there, spinning only delays the writer. */
const MAX_SPIN_MS = availableParallelism() > 1 ? spinBudgetFromEnv() : 0;
const MAX_SCORE = 8;
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
      for (let i = 0; i < 32; i++) {
        if (ready()) {
          this.#score = Math.min(MAX_SCORE, this.#score + 1);
          return true;
        }
      }
      if (monotonicMs() >= end) return false;
    }
  }

  /** A parked wait ended: had it ended within the spin budget, looking would have paid. */
  settled(): void {
    if (MAX_SPIN_MS === 0) return;
    const paid = monotonicMs() - this.#startedAt <= MAX_SPIN_MS * 2;
    this.#score = paid ? Math.min(MAX_SCORE, this.#score + 1) : Math.max(0, this.#score - 1);
  }
}
