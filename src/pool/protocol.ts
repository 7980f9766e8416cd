// Messages between a Pool and its workers, as data.

import type { ModuleRef } from '../internal/function-ref.ts';
import { messageArrayBuffer } from '../internal/message-buffer.ts';
import type { ErrorData } from '../internal/remote-error.ts';

// Each message is a tuple whose first element says its kind: a tiny task's round trip is two
// messages, and as objects their keys and kind strings were most of the bytes to write and to
// compare on the other side (decoding a result as an object took 3x as long as a tuple: 3 us
// against 1 before V8 optimizes the pool's code, which is most of a burst of 20,000 tiny tasks).

// To the worker.
export const TASKS = 1;
export const ABORT = 2;
export const STOP = 3;
// From the worker.
export const RESULT = 4;
export const FAILURE = 5;
export const READY = 6;
export const STARTED = 7;
export const UNREADABLE = 8;

// A task's flags. Without STAR or CALL, the function is called on each item.
/** The items are argument lists: fn(...item) for each. */
export const STAR = 1;
/** The items are one argument list: one call, fn(...items), and one result (apply()). */
export const CALL = 2;
/** The task has a timeout: the worker says when it starts (its module loaded), and the clock starts then. */
export const TIMED = 4;
/** The task's function has leading arguments bound (partial()): its items are `[bound, items]`. */
export const BOUND = 8;

/**
 * Tasks to run in order, as columns: the i-th has id ids[i] and runs function number fns[i] over
 * items[i] as flags[i] say; each replies with all its results or its first error. `defines`
 * pairs each function number the worker has not met before with the function it stands for.
 * Columns rather than a tuple per task: a tiny task is then one array to write and to read (its
 * arguments), not three.
 */
export type TasksMessage = [kind: typeof TASKS, ids: number[], fns: number[], items: Chunk[], flags: number[], defines: (number | ModuleRef)[]];

export type AbortMessage = [kind: typeof ABORT, id: number, reason: string];

export type StopMessage = [kind: typeof STOP];

export type ToWorker = TasksMessage | AbortMessage | StopMessage;

/** `rss` is the worker's resident memory after the task (0 unless the pool has maxMemoryPerChild). */
export type ResultMessage = [kind: typeof RESULT, id: number, results: Chunk, rss: number];

/** `result`: set when the task's results could not be sent, the place in its chunk of the first that cannot cross (its error says why). */
export type FailureMessage = [kind: typeof FAILURE, id: number, error: ErrorData, rss: number, result?: number];

export type ReadyMessage = [kind: typeof READY];

/** A timed task's function was found and is being called. */
export type StartedMessage = [kind: typeof STARTED, id: number];

/**
 * The worker could not rebuild the TASKS message it met as its `batch`-th (counted from 0): an
 * argument could not be made there (a socket Connection received already, a queue whose memory is
 * gone). It runs what it had before that message, drops the later ones, and wants to be retired.
 */
export type UnreadableMessage = [kind: typeof UNREADABLE, batch: number, error: ErrorData];

export type FromWorker = ResultMessage | FailureMessage | ReadyMessage | StartedMessage | UnreadableMessage;

/** A chunk of arguments or results: an array, or a long run of numbers packed (see packNumbers()). */
export type Chunk = unknown[] | Float64Array;

/** Shorter runs are not worth a typed array (its clone has a fixed cost of its own). */
const PACK_MIN = 64;

/**
 * `values[from..to)` as a Float64Array when they are all numbers and there are enough of them;
 * undefined otherwise (send them as an array). V8 clones a Float64Array as its bytes, where an
 * array of numbers costs a tag per item and, on the other side, a heap-allocated number per
 * non-integer or large one: for the numeric chunks of map() most of the pool's time went there.
 * Every JS number is a double, so the round trip is exact (-0 and NaN included).
 */
export function packNumbers(values: unknown[], from = 0, to = values.length): Float64Array | undefined {
  if (!worthPacking(to - from)) return undefined;
  // One pass: copied while checked, given up at the first item that is not a number. A long one is
  // memory from the message free list (see message-buffer.ts): fresh memory cost the pool's
  // process a page fault per 4 KiB, 2,000 for the chunks of a million numbers.
  const numbers = new Float64Array(messageArrayBuffer(8 * (to - from)));
  for (let i = from; i < to; i++) {
    const value = values[i];
    if (typeof value !== 'number') return undefined;
    numbers[i - from] = value;
  }
  return numbers;
}

export function worthPacking(length: number): boolean {
  return length >= PACK_MIN;
}
