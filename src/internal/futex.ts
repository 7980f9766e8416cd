// Waiting on a word of shared memory: the one wait primitive of the synchronization objects.
// A wait ends when the word no longer holds the value the waiter saw, when its deadline passes,
// or when its AbortSignal fires. Wakers change the word before they wake, so no wake is lost.

import { native } from '../native/binding.ts';
import { timeoutMs, timerFor } from './validate.ts';
import { monotonicMs } from './clock.ts';

export type Park = 'changed' | 'timed-out';

/** A deadline in monotonicMs() milliseconds from a timeout, or undefined for none. */
export function deadlineOf(where: string, timeout: number | undefined): number | undefined {
  return timeout === undefined ? undefined : monotonicMs() + timeoutMs(where, timeout);
}

function remaining(deadline: number | undefined, slice: number | undefined): number | undefined {
  const left = deadline === undefined ? undefined : Math.max(0, deadline - monotonicMs());
  if (slice === undefined) return left;
  return left === undefined ? slice : Math.min(left, slice);
}

/**
 * Waits (without blocking the event loop) while words[index] === expected, until `deadline`, at
 * most `slice` ms (so the caller can check a lock holder's liveness), or until `signal` aborts
 * (rejecting with its reason). A wait with `keepAlive` false does not keep the process alive.
 * `sticky`: the word is only woken with wake-all and waited on often (a ring's counters), so the
 * native waiter thread may keep watching it between waits.
 *
 * The timeout is a timer here that cancels the native wait: a native deadline sooner than the
 * waiter thread's would cost a wake of that thread per wait.
 */
export async function park(words: Int32Array, index: number, expected: number, deadline?: number, signal?: AbortSignal, slice?: number, keepAlive = true, sticky = false): Promise<Park> {
  signal?.throwIfAborted();
  const timeout = remaining(deadline, slice);
  if (timeout === 0) return Atomics.load(words, index) === expected ? 'timed-out' : 'changed';
  const waiting = native().futexWaitAsync(words, index, expected, undefined, keepAlive, sticky);
  const id = waiting.id;
  if (id === undefined) return (await waiting) === 'timed-out' ? 'timed-out' : 'changed'; // settled at once
  let timedOut = false;
  // Unref'd: the native wait itself keeps the process alive when it should.
  const timer = timerFor(timeout, () => {
    timedOut = true;
    native().futexCancel(id);
  })?.unref();
  const onAbort = () => native().futexCancel(id);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await waiting;
    if (result !== 'cancelled') return result === 'timed-out' ? 'timed-out' : 'changed';
    if (timedOut) return 'timed-out';
    throw signal?.reason;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The same wait, blocking this thread (for synchronous APIs and benchmarks in worker threads). */
export function parkSync(words: Int32Array, index: number, expected: number, deadline?: number, slice?: number): Park {
  const timeout = remaining(deadline, slice);
  if (timeout === 0) return Atomics.load(words, index) === expected ? 'timed-out' : 'changed';
  return native().futexWait(words, index, expected, timeout) === 'timed-out' ? 'timed-out' : 'changed';
}

/** Wakes up to `count` waiters of words[index] (all by default), in every process. */
export function wake(words: Int32Array, index: number, count = Number.MAX_SAFE_INTEGER): void {
  native().futexWake(words, index, Math.min(count, 0x7fffffff));
}

/** True when `deadline` has passed. */
export function expired(deadline: number | undefined): boolean {
  return deadline !== undefined && monotonicMs() >= deadline;
}
