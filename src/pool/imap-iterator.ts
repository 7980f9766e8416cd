// Pool.imap() and imapUnordered()'s results (Python's IMapIterator). As in Python, the tasks start
// at the call, not at the first next(): the input is read and sent to the workers at once, a
// bounded amount ahead of the consumer (Python reads the whole input; an endless one must not be).
// `next(timeout)` waits for one result at most that long, as Python's `next(timeout)` does.

import { TimeoutError, invalidArgument, describe } from '../errors.ts';
import { deadlineOf } from '../internal/futex.ts';
import { monotonicMs } from '../internal/clock.ts';
import { waitFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import type { Outcome } from './scheduler.ts';
import type { Progress } from './progress.ts';
import { deferred, type Deferred } from '../internal/deferred.ts';
import { thrownToCaller } from '../internal/remote-error.ts';

export type Items<T> = Iterable<T> | AsyncIterable<T>;

type Source<T> = { sync: Iterator<T>; async?: undefined } | { sync?: undefined; async: AsyncIterator<T> };

export function sourceOf<T>(iterable: Items<T>): Source<T> {
  if (iterable && typeof (iterable as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') return { async: (iterable as AsyncIterable<T>)[Symbol.asyncIterator]() };
  if (iterable && typeof (iterable as Iterable<T>)[Symbol.iterator] === 'function') return { sync: (iterable as Iterable<T>)[Symbol.iterator]() };
  throw invalidArgument(`Pool: expected an iterable or async iterable of items, got ${describe(iterable)}.`);
}

export interface StreamOptions<T> {
  /** 'imap' or 'imapUnordered', for errors. */
  method: string;
  source: Source<T>;
  chunksize: number;
  /** How many chunks may be sent and not yet consumed. */
  ahead: number;
  ordered: boolean;
  progress: Progress;
  /** Checks a chunk's items (throws for one that cannot be sent, naming it by `offset`) and sends it. */
  submit: (chunk: T[], offset: number, settle: (outcome: Outcome) => void) => void;
}

/** The results of Pool.imap() or imapUnordered(): an async iterator whose next() also takes a timeout. */
export class IMapIterator<R> implements AsyncIterableIterator<R> {
  readonly #options: StreamOptions<unknown>;
  /** Outcomes of the chunks sent, by their number, until consumed. */
  readonly #done = new Map<number, Outcome>();
  #issued = 0;
  #consumed = 0;
  #pulled = 0;
  #exhausted = false;
  #closed = false;
  /** A chunk of an asynchronous input is being read. */
  #reading = false;
  /** The values of the chunk being handed out, from #at. */
  #values: readonly unknown[] = [];
  #at = 0;
  #wake: (() => void) | undefined;
  /** next() calls take their turns: each gets its own value. */
  #turn: Promise<unknown> = Promise.resolve();
  /** An error of the input: it comes after the results of every chunk sent before it. */
  #inputError: { error: unknown } | undefined;
  /** The pool was closed: the rest of the input is read and sent now, not as results are consumed. */
  #readingAll = false;
  readonly #inputDone: Deferred = deferred();

  /** @internal Made by Pool.imap() and imapUnordered(). */
  constructor(options: StreamOptions<unknown>) {
    this.#options = options;
    this.#fill(true);
  }

  /** @internal Resolves once the input is read to its end (or failed, or the iteration stopped): all its tasks are sent. */
  get inputRead(): Promise<void> {
    return this.#inputDone.promise;
  }

  /** @internal The pool was terminated: join() no longer waits for the input (what is read of it now fails, terminated). */
  abandonInput(): void {
    this.#inputDone.resolve();
  }

  /** @internal The pool was closed: read the rest of the input and send it at once (Python's pool has it all). */
  readAll(): void {
    this.#readingAll = true;
    this.#fill(true);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The next result. `timeout` (ms, or `{ timeout, signal }`) bounds the wait, as Python's
   * `next(timeout)`: TimeoutError when no result came in time (the iteration goes on: call next()
   * again), or the signal's reason.
   */
  // Async, and awaiting its turn: a task's error is thrown with the stack of the loop awaiting it.
  async next(timeout?: number | WaitOptions): Promise<IteratorResult<R>> {
    const options = waitOptions(`Pool.${this.#options.method}().next()`, timeout);
    const deadline = deadlineOf(`Pool.${this.#options.method}().next()`, options.timeout);
    const turn = this.#turn.then(() => this.#next(options, deadline));
    this.#turn = turn.catch(() => {});
    try {
      return await turn;
    } catch (error) {
      throw thrownToCaller(error, IMapIterator.prototype.next);
    }
  }

  /** Stops: closes the input; the chunks already sent still run, and their results are dropped. */
  async return(value?: unknown): Promise<IteratorResult<R>> {
    await this.#close();
    return { value: value as R, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<R>> {
    await this.#close();
    throw error;
  }

  async #next(options: WaitOptions, deadline: number | undefined): Promise<IteratorResult<R>> {
    const { ordered } = this.#options;
    for (;;) {
      if (this.#at < this.#values.length) return { value: this.#values[this.#at++] as R, done: false };
      if (this.#closed) return { value: undefined, done: true };
      this.#fill(false);
      const next = ordered ? (this.#done.has(this.#consumed) ? this.#consumed : undefined) : this.#done.keys().next().value;
      if (next !== undefined) {
        const outcome = this.#done.get(next) as Outcome;
        this.#done.delete(next);
        this.#consumed++;
        // As Python's next(): the error in its place, and the iteration goes on after it (a
        // `for await` loop ends there; next() again gives the results after it).
        if ('error' in outcome) throw outcome.error;
        this.#options.progress.tick(outcome.results.length);
        this.#values = outcome.results as readonly unknown[];
        this.#at = 0;
        continue;
      }
      if (this.#exhausted && this.#consumed === this.#issued) {
        await this.#close();
        if (this.#inputError) throw this.#inputError.error;
        return { value: undefined, done: true };
      }
      const left = deadline === undefined ? undefined : Math.max(0, deadline - monotonicMs());
      if (!(await waitFor(new Promise<void>((resolve) => (this.#wake = resolve)), { timeout: left, signal: options.signal }))) {
        throw new TimeoutError(`Pool.${this.#options.method}().next(): no result came within ${options.timeout} ms. The iteration goes on: call next() again.`);
      }
    }
  }

  // Sends chunks until `ahead` are out and not consumed. Topped up in bursts, once half of them were
  // consumed (`force` fills at once): one chunk per result consumed would send the workers one task
  // per message, each waking an idle worker. A synchronous input (an array, a generator) is read
  // without a tick per item; an asynchronous one a chunk at a time, the fill going on as each comes.
  #fill(force: boolean): void {
    const { ahead, source, chunksize } = this.#options;
    if (this.#reading || (!force && this.#issued - this.#consumed > ahead / 2)) return;
    // Once the pool is closed, the whole input: `ahead` chunks per turn of the event loop, so that
    // close() returns, and an endless input keeps only join() waiting (as in Python).
    let sent = 0;
    while (!this.#exhausted && !this.#closed && (this.#readingAll ? sent++ < ahead : this.#issued - this.#consumed < ahead)) {
      let chunk: unknown[] | Promise<unknown[]>;
      try {
        chunk = nextChunk(source, chunksize);
      } catch (error) {
        this.#inputFailed(error);
        return;
      }
      if (chunk instanceof Promise) {
        this.#reading = true;
        chunk.then(
          (read) => {
            this.#reading = false;
            if (this.#send(read)) this.#fill(true);
          },
          (error: unknown) => {
            this.#reading = false;
            this.#inputFailed(error);
          },
        );
        return;
      }
      if (!this.#send(chunk)) return;
    }
    if (this.#readingAll && !this.#exhausted && !this.#closed) setImmediate(() => this.#fill(true));
  }

  // As in Python, an error of the input (or an item that cannot cross) takes its place among the
  // results: the results before it come first.
  #send(chunk: unknown[]): boolean {
    if (this.#closed) return false;
    if (chunk.length === 0) {
      this.#exhausted = true;
      this.#inputDone.resolve();
      this.#wake?.();
      return false;
    }
    const index = this.#issued;
    try {
      this.#options.submit(chunk, this.#pulled, (outcome) => {
        this.#done.set(index, outcome);
        this.#wake?.();
      });
    } catch (error) {
      this.#inputFailed(error);
      return false;
    }
    this.#issued++;
    this.#pulled += chunk.length;
    return true;
  }

  #inputFailed(error: unknown): void {
    this.#inputError = { error };
    this.#exhausted = true;
    this.#inputDone.resolve();
    this.#wake?.();
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#values = [];
    this.#done.clear();
    this.#options.progress.stop();
    this.#inputDone.resolve();
    this.#wake?.();
    const { source } = this.#options;
    if (!source.async) {
      source.sync.return?.();
    } else if (this.#reading) {
      // An async generator runs return() only after the read under way: waiting for it could be
      // for ever (an input that waits for more), and the iteration is over now.
      source.async.return?.()?.catch(() => {});
    } else {
      await source.async.return?.();
    }
  }
}

function nextChunk<T>(source: Source<T>, size: number): T[] | Promise<T[]> {
  if (source.async) return nextChunkAsync(source.async, size);
  const chunk: T[] = [];
  while (chunk.length < size) {
    const next = source.sync.next();
    if (next.done) break;
    chunk.push(next.value);
  }
  return chunk;
}

async function nextChunkAsync<T>(source: AsyncIterator<T>, size: number): Promise<T[]> {
  const chunk: T[] = [];
  while (chunk.length < size) {
    const next = await source.next();
    if (next.done) break;
    chunk.push(next.value);
  }
  return chunk;
}
