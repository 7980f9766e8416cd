// Taking back tasks sent ahead to a worker, so that an idle worker can run them (Python's workers
// all take from one queue: a task never waits behind a long one while a worker idles). The pool
// sends tasks ahead on a guess of their time (scheduler.ts, PREFETCH_BUDGET_MS), and a guess can
// be wrong: a task of a function that took microseconds can take seconds.
//
// Each worker has one 32-bit word of shared memory: how many of the tasks sent to it (counted in
// the order sent, from 0) are decided, either started by it or taken back by the pool. The worker
// starts its task number n only by moving the word from n to n + 1; the pool takes back tasks
// n..m-1 only by moving it from n to m. Both use compare-and-exchange, so each task is either run
// there or taken back, never both, and the pool never waits for the worker (which may be deep in
// a task that blocks its thread) to agree.

import { allocate, attach, type Slot } from '../internal/arena.ts';

/** Where a worker's word is: a slot of shared memory, or for a worker thread, memory of this process. */
export type ClaimPlace = Slot | SharedArrayBuffer;

/** A worker's word, on the pool's side. */
export interface ClaimCell {
  place: ClaimPlace;
  word: Int32Array;
}

/**
 * The words of a pool's workers. A word goes back to the free list when its worker has exited, so
 * a pool that replaces workers (maxtasksperchild) needs as many as run at once, not one per worker.
 */
export class ClaimCells {
  readonly #free: ClaimCell[] = [];
  #unavailable = false;
  /** The workers are threads of this process: a SharedArrayBuffer, without a segment to make and map (2-4 ms of a pool's start). */
  readonly #threads: boolean;

  constructor(threads: boolean) {
    this.#threads = threads;
  }

  /** A zeroed word for a new worker; undefined without shared memory (its tasks are then never taken back). */
  acquire(): ClaimCell | undefined {
    const reused = this.#free.pop();
    if (reused) {
      Atomics.store(reused.word, 0, 0);
      return reused;
    }
    if (this.#threads) {
      const buffer = new SharedArrayBuffer(4);
      return { place: buffer, word: new Int32Array(buffer) };
    }
    if (this.#unavailable) return undefined;
    try {
      const placed = allocate(4);
      return { place: { segment: placed.segment, offset: placed.offset }, word: new Int32Array(placed.buffer, placed.offset, 1) };
    } catch {
      // No native addon (no shared memory): the pool works as before it could take tasks back,
      // each task running where it was sent. Nothing else depends on the word.
      this.#unavailable = true;
      return undefined;
    }
  }

  /** Its worker has exited: no one else touches the word. */
  release(cell: ClaimCell): void {
    this.#free.push(cell);
  }
}

/**
 * Takes back up to `count` tasks from the first one the worker has not started: returns the
 * number of that first task and how many were taken (0 when it has started them all meanwhile,
 * or when `sent` tasks were all decided).
 */
export function takeBack(cell: ClaimCell, sent: number, count: number): { from: number; taken: number } {
  for (;;) {
    const from = Atomics.load(cell.word, 0);
    const taken = Math.min(count, sent - from);
    if (taken <= 0) return { from, taken: 0 };
    if (Atomics.compareExchange(cell.word, 0, from, from + taken) === from) return { from, taken };
  }
}

/**
 * The worker's side: `claim(n)` is true when task number n is this worker's to run, false when
 * the pool took it back (the worker then drops it, sending nothing); `takenBack(n)` only looks
 * (a task taken back needs no module loaded for it). Without a word, every task is the worker's.
 */
export function claimerFor(place: ClaimPlace | null): { claim: (position: number) => boolean; takenBack: (position: number) => boolean } {
  if (!place) return { claim: () => true, takenBack: () => false };
  const word = place instanceof SharedArrayBuffer ? new Int32Array(place) : new Int32Array(attach(place).buffer, place.offset, 1);
  return {
    claim: (position) => Atomics.compareExchange(word, 0, position, position + 1) === position,
    takenBack: (position) => Atomics.load(word, 0) > position,
  };
}
