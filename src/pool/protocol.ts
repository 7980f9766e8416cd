// Messages between a Pool and its workers, as data.

import type { ModuleRef } from '../internal/function-ref.ts';
import type { ErrorData } from '../internal/remote-error.ts';

/** Run `fn` on each of `items` (spread as argument lists when `star`); reply with all results or the first error. */
export interface TaskMessage {
  type: 'task';
  id: number;
  /** The pool's number for the function; `define` says which function it is, the first time a worker meets it. */
  fn: number;
  define?: ModuleRef;
  items: Chunk;
  star: boolean;
  /** The task has a timeout: the worker says when it starts (its module loaded), and the clock starts then. */
  timed?: true;
}

/** Several tasks at once, run in order (one message, one wake). */
export interface TasksMessage {
  type: 'tasks';
  tasks: TaskMessage[];
}

export interface AbortMessage {
  type: 'abort';
  id: number;
  reason: string;
}

export interface StopMessage {
  type: 'stop';
}

export type ToWorker = TaskMessage | TasksMessage | AbortMessage | StopMessage;

export interface ResultMessage {
  type: 'result';
  id: number;
  ok: true;
  results: Chunk;
  rss: number;
}

export interface FailureMessage {
  type: 'result';
  id: number;
  ok: false;
  error: ErrorData;
  rss: number;
}

export interface ReadyMessage {
  type: 'ready';
}

/** A timed task's function was found and is being called. */
export interface StartedMessage {
  type: 'started';
  id: number;
}

export type FromWorker = ResultMessage | FailureMessage | ReadyMessage | StartedMessage;

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
  // One pass: copied while checked, given up at the first item that is not a number.
  const numbers = new Float64Array(to - from);
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

/** Appends a chunk's items to `into`, a JS array (a packed chunk's numbers stay unboxed in it). */
export function appendItems(into: unknown[], items: Chunk): void {
  for (let i = 0; i < items.length; i++) into.push(items[i]);
}
