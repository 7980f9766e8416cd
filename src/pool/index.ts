// Pool and ThreadPool (Python's multiprocessing.pool): the whole API, on processes or worker
// threads, over the event-driven Scheduler. This file validates and shapes calls (chunks, order,
// callbacks, progress); the scheduler runs them.

import { getContext, cpuCount, type Context } from '../context.ts';
import { ProcessError, TimeoutError, describe, invalidArgument, outOfRange } from '../errors.ts';
import { referenceOf, type ModuleRef } from '../internal/function-ref.ts';
import { knownOptions, timeoutMs, waitFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { checkSendable } from '../reduction.ts';
import type { Target } from '../process.ts';
import { AsyncResult } from './async-result.ts';
import { Scheduler, type Outcome, type Task } from './scheduler.ts';
import { CALL, packNumbers, STAR, type Chunk } from './protocol.ts';
import { ResultArray } from './results.ts';
import { progressBar, type Progress } from './progress.ts';
import { IMapIterator, sourceOf, type Items } from './imap-iterator.ts';

export { AsyncResult } from './async-result.ts';
export { currentTask, type TaskContext } from './worker-loop.ts';
export type { IMapIterator } from './imap-iterator.ts';

export interface PoolOptions {
  /** Runs once in each worker before its first task (exported, like every target), with `initargs`. */
  // never[]: a function with typed parameters is accepted (its args are not checked against initargs).
  initializer?: Target<never[]>;
  initargs?: unknown[];
  /** Replace a worker after it ran this many tasks. @default no limit */
  maxtasksperchild?: number | null;
  /** Replace a worker whose memory (RSS, bytes) passed this after a task. @default no limit */
  maxMemoryPerChild?: number | null;
  /** Run a task again this many times when its worker dies under it. @default 0 */
  retries?: number;
  /** The backend: a Context or a start method. @default the default context */
  context?: Context | 'process' | 'thread';
  /** Milliseconds an aborted or timed-out task may take to stop before its worker is killed. @default 1000 */
  abortGraceMs?: number;
}

export interface CallOptions {
  /** Milliseconds the task may run, counted from its start (not its submission). */
  timeout?: number;
  /** Aborts the call: a queued task is dropped; a running one is stopped (its worker recycled). */
  signal?: AbortSignal;
}

export interface ApplyAsyncOptions<R> extends CallOptions {
  callback?: (result: R) => void;
  errorCallback?: (error: unknown) => void;
}

export interface MapOptions extends CallOptions {
  chunksize?: number;
  /** Show a progress bar (items done, rate, ETA) on a terminal; silent when stdout is not a TTY. */
  progress?: boolean;
}

export interface MapAsyncOptions<R> extends MapOptions {
  callback?: (results: R[]) => void;
  errorCallback?: (error: unknown) => void;
}

type Fn<A extends unknown[], R> = ((...args: A) => R) | ModuleRef;

/**
 * A pool of worker processes (Python's multiprocessing.Pool) that never hangs when a worker dies.
 * @example
 * await using pool = new Pool(4);
 * const squares = await pool.map(square, [1, 2, 3]);
 */
export class Pool {
  readonly #scheduler: Scheduler;
  /** The imap() and imapUnordered() streams still reading their input. */
  readonly #streams = new Set<IMapIterator<unknown>>();
  readonly #processes: number;

  constructor(processes: number = cpuCount(), options: PoolOptions = {}) {
    const where = `new ${new.target.name}()`;
    if (typeof options !== 'object' || options === null) throw invalidArgument(`${where}: expected options { initializer, initargs, maxtasksperchild, ... }, got ${describe(options)}.`);
    knownOptions(where, options, ['initializer', 'initargs', 'maxtasksperchild', 'maxMemoryPerChild', 'retries', 'context', 'abortGraceMs']);
    if (!Number.isInteger(processes) || processes < 1) throw outOfRange(`${where}: expected \`processes\` to be a positive integer (at least 1), got ${describe(processes)}.`);
    const context = contextOf(where, options.context ?? (new.target === ThreadPool ? 'thread' : undefined));
    const limit = (key: 'maxtasksperchild' | 'maxMemoryPerChild') => {
      const value = options[key];
      if (value == null) return null;
      if (!Number.isInteger(value) || value < 1) throw outOfRange(`${where}: expected \`${key}\` to be a positive integer or null, got ${describe(value)}.`);
      return value;
    };
    const retries = options.retries ?? 0;
    if (!Number.isInteger(retries) || retries < 0) throw outOfRange(`${where}: expected \`retries\` to be a non-negative integer, got ${describe(retries)}.`);
    if (options.initargs !== undefined && !Array.isArray(options.initargs)) throw invalidArgument(`${where}: expected \`initargs\` to be an array, got ${describe(options.initargs)}.`);
    this.#processes = processes;
    this.#scheduler = new Scheduler({
      processes,
      ProcessClass: context.Process,
      threads: context.getStartMethod() === 'thread',
      initializer: options.initializer === undefined ? null : referenceOf(options.initializer, `${where} (its initializer)`),
      // Checked now, and reduced at each worker's start: each copy of a Queue in them is counted.
      initargs: sendable(options.initargs ?? [], `${where}: initargs`),
      maxtasksperchild: limit('maxtasksperchild'),
      maxMemoryPerChild: limit('maxMemoryPerChild'),
      retries,
      abortGraceMs: options.abortGraceMs === undefined ? 1000 : timeoutMs(where, options.abortGraceMs),
    });
  }

  /** Runs f(...args) in a worker and resolves with its result. */
  async apply<A extends unknown[], R>(f: Fn<A, R>, args: A = [] as unknown as A, options: CallOptions = {}): Promise<Awaited<R>> {
    return await this.#applyAsync<R>('apply', f, args, options).get();
  }

  /** Starts f(...args) in a worker; callback/errorCallback run here, in completion order. */
  applyAsync<A extends unknown[], R>(f: Fn<A, R>, args: A = [] as unknown as A, options: ApplyAsyncOptions<Awaited<R>> = {}): AsyncResult<Awaited<R>> {
    return this.#applyAsync<R>('applyAsync', f, args, options);
  }

  // Errors name the call that was made (`method`): apply() and map() are their Async twins, awaited.
  #applyAsync<R>(method: string, f: unknown, args: unknown, options: ApplyAsyncOptions<Awaited<R>>): AsyncResult<Awaited<R>> {
    const fn = this.#prepare(method, f, options);
    if (!Array.isArray(args)) throw invalidArgument(`Pool.${method}(): expected \`args\` to be an array of arguments, got ${describe(args)}. Wrap a single argument: [value].`);
    const result = new AsyncResult<Awaited<R>>();
    sendable(args, `Pool.${method}(): args`);
    // The closure lives as long as the task: it holds the callbacks, not the options object.
    // As in Python (ApplyResult._set), the callback runs before the result is ready: ready() is
    // false inside it, and get() resolves after it.
    const { callback, errorCallback } = options;
    this.#submit(fn, args, CALL, options, (outcome) => {
      if ('error' in outcome) {
        callSafely(errorCallback, outcome.error);
        result.reject(outcome.error);
      } else {
        const value = outcome.results[0] as Awaited<R>;
        callSafely(callback, value);
        result.fulfill(value);
      }
    });
    return result;
  }

  /** f applied to every item, in order (Python's map; a number in place of options is the chunksize). */
  async map<T, R>(f: Fn<[T], R>, iterable: Iterable<T>, options: number | MapOptions = {}): Promise<Awaited<R>[]> {
    return await this.#mapAsync<Awaited<R>>('map', f, itemsOf('map', iterable), false, options).get();
  }

  mapAsync<T, R>(f: Fn<[T], R>, iterable: Iterable<T>, options: number | MapAsyncOptions<Awaited<R>> = {}): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync('mapAsync', f, itemsOf('mapAsync', iterable), false, options);
  }

  /** f(...args) for every argument list, in order (Python's starmap). */
  async starmap<A extends unknown[], R>(f: Fn<A, R>, iterable: Iterable<A>, options: number | MapOptions = {}): Promise<Awaited<R>[]> {
    return await this.#mapAsync<Awaited<R>>('starmap', f, itemsOf('starmap', iterable), true, options).get();
  }

  starmapAsync<A extends unknown[], R>(f: Fn<A, R>, iterable: Iterable<A>, options: number | MapAsyncOptions<Awaited<R>> = {}): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync('starmapAsync', f as Fn<unknown[], R>, itemsOf('starmapAsync', iterable), true, options);
  }

  /**
   * Results in order, as they come. The tasks start at the call, reading the input a bounded amount
   * ahead of the consumer; `next(timeout)` waits at most that long for a result (Python's).
   */
  imap<T, R>(f: Fn<[T], R>, iterable: Items<T>, options: number | MapOptions = 1): IMapIterator<Awaited<R>> {
    return this.#stream('imap', f, iterable, options, true);
  }

  /** Results in completion order; otherwise as imap(). */
  imapUnordered<T, R>(f: Fn<[T], R>, iterable: Items<T>, options: number | MapOptions = 1): IMapIterator<Awaited<R>> {
    return this.#stream('imapUnordered', f, iterable, options, false);
  }

  /** No more tasks; the workers exit once the queued ones are done. */
  close(): void {
    this.#scheduler.close();
    // As Python's task handler goes on feeding the tasks of an imap() made before close(), each
    // stream reads the rest of its input now, and join() waits for its tasks.
    for (const stream of this.#streams) stream.readAll();
  }

  /** Stops the workers now; tasks not finished reject. */
  terminate(): void {
    this.#scheduler.terminate();
    for (const stream of this.#streams) stream.abandonInput();
  }

  /**
   * Resolves once every worker has exited; call close() or terminate() first. A timeout (ms, or
   * `{ timeout, signal }`; Python's join() has none) rejects with TimeoutError when it passes first,
   * as JoinableQueue.join() does, and an aborted signal with its reason; the pool goes on closing.
   */
  async join(timeout?: number | WaitOptions): Promise<void> {
    const options = waitOptions('Pool.join()', timeout);
    if (this.#scheduler.state === 'running') {
      throw new ProcessError('Pool.join(): the pool is still running. Call close() (or terminate()) before join(), as in Python.', { code: 'ERR_MP_POOL_RUNNING' });
    }
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      const inputsRead = Promise.all([...this.#streams].map((stream) => stream.inputRead)).then(() => this.#scheduler.joined());
      if (!(await waitFor(inputsRead, options))) {
        const { workers } = this.#scheduler.stats();
        throw new TimeoutError(`Pool.join(): the pool's workers still run after ${options.timeout} ms (${workers.total}, ${workers.busy} of them on a task). terminate() ends them at once.`);
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Workers busy and idle; tasks queued, running, completed and failed. */
  stats(): ReturnType<Scheduler['stats']> {
    return this.#scheduler.stats();
  }

  /**
   * As Python's `with Pool() as pool:`, leaving the block terminates the pool; then it waits for the
   * workers as join() does, keeping the program alive meanwhile (an `await` on the bare exit would
   * let the event loop empty and end the program there, exit code 13).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }

  #prepare(method: string, f: unknown, options: CallOptions): ModuleRef {
    if (this.#scheduler.state !== 'running') {
      throw new ProcessError(`Pool.${method}(): the pool is ${this.#scheduler.state}; it takes no new tasks. Create a new Pool.`, { code: 'ERR_MP_POOL_NOT_RUNNING' });
    }
    if (typeof options !== 'object' || options === null) throw invalidArgument(`Pool.${method}(): expected options { ${callOptionNames[method]?.join(', ')} }, got ${describe(options)}.`);
    knownOptions(`Pool.${method}()`, options, callOptionNames[method] ?? []);
    if (options.timeout !== undefined) timeoutMs(`Pool.${method}()`, options.timeout);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidArgument(`Pool.${method}(): expected \`signal\` to be an AbortSignal, got ${describe(options.signal)}.`);
    const fn = referenceOf(f, `Pool.${method}()`);
    if (fn.args) sendable(fn.args, `Pool.${method}(): ${fn.name}'s bound args`);
    return fn;
  }

  #submit(fn: ModuleRef, items: Chunk, flags: number, options: CallOptions, settle: Task['settle'], offset?: number): void {
    const timeout = options.timeout === undefined ? undefined : Math.max(0, options.timeout); // checked in #prepare()
    this.#scheduler.submit({ id: this.#scheduler.newId(), fn, items, flags, timeout, signal: options.signal, settle, losses: 0, worker: undefined, timer: undefined, done: false, batch: 0, alone: false, offset });
  }

  #mapAsync<R>(method: string, f: unknown, values: unknown[], star: boolean, raw: number | MapAsyncOptions<R>): AsyncResult<R[]> {
    const options = mapOptions(method, raw);
    const fn = this.#prepare(method, f, options);
    const chunksize = options.chunksize ?? defaultChunksize(values.length, this.#processes);
    const chunks = chunked(values, chunksize, star, `Pool.${method}(): items`);
    const result = new AsyncResult<R[]>();
    // Made at full length when the first results come (see results.ts), each chunk's results
    // written at their place as they come: the joining is done while workers still compute.
    const results = new ResultArray<R>(values.length);
    let placed = 0;
    // Set before the callbacks run (they run before the result is ready, as in Python's
    // MapResult): a callback that ends the pool fails the other chunks, and must not be called again.
    let settled = false;
    const progress = progressBar(options.progress === true, values.length);
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      progress.stop();
      callSafely(options.errorCallback, error);
      result.reject(error);
    };
    if (chunks.length === 0) {
      result.fulfill([]);
      // After the call returns, as for any other map: never before the caller holds the result.
      queueMicrotask(() => callSafely(options.callback, []));
    }
    let offset = 0;
    for (const chunk of chunks) {
      const at = offset;
      offset += chunk.length;
      this.#submit(fn, chunk, star ? STAR : 0, options, (outcome) => {
        if ('error' in outcome) return fail(outcome.error);
        if (settled) return;
        try {
          results.place(at, outcome.results);
        } catch (error) {
          return fail(error); // an answer longer than V8's arrays take (RangeError): the map fails, the pool goes on
        }
        progress.tick(chunk.length);
        if (++placed === chunks.length) {
          settled = true;
          progress.stop();
          callSafely(options.callback, results.array);
          result.fulfill(results.array);
        }
      }, at);
    }
    return result;
  }

  #stream<T, R>(method: string, f: unknown, iterable: Items<T>, raw: number | MapOptions, ordered: boolean): IMapIterator<Awaited<R>> {
    const options = mapOptions(method, raw);
    const fn = this.#prepare(method, f, options);
    const source = sourceOf(iterable);
    const chunksize = options.chunksize ?? 1;
    const stream = new IMapIterator<Awaited<R>>({
      method,
      source,
      chunksize,
      ahead: this.#processes * Math.max(2, Math.ceil(STREAM_AHEAD_ITEMS_PER_WORKER / chunksize)),
      ordered,
      progress: progressBar(options.progress === true, Array.isArray(iterable) ? iterable.length : undefined),
      submit: (chunk, offset, settle) => {
        checkItems(chunk, offset, `Pool.${method}(): items`);
        this.#submit(fn, packNumbers(chunk) ?? chunk, 0, options, settle, offset);
      },
    });
    this.#streams.add(stream);
    void stream.inputRead.then(() => this.#streams.delete(stream));
    return stream;
  }
}

/**
 * imap()/imapUnordered() keep about this many items per worker submitted and not yet consumed (in
 * whole chunks, and at least two chunks: one running, one next): enough to keep the workers' pipes
 * full (Python feeds the whole input), bounded for endless inputs. 16 chunks of one item ran imap()
 * at half the speed of 128: a worker was topped up (and woken) every few tasks.
 */
const STREAM_AHEAD_ITEMS_PER_WORKER = 128;

/** A Pool of worker threads (Python's ThreadPool, but parallel). */
export class ThreadPool extends Pool {}

function contextOf(where: string, context: PoolOptions['context']): Context {
  if (context === undefined) return getContext();
  if (typeof context === 'string') return getContext(context);
  if (typeof context === 'object' && context !== null && typeof (context as Context).Process === 'function') return context as Context;
  throw invalidArgument(`${where}: expected \`context\` to be getContext(...) or 'process' or 'thread', got ${describe(context)}.`);
}

/** The items of a map()'s `iterable` as an array (an array as it is), or a TypeError naming the call. */
function itemsOf<T>(method: string, iterable: Iterable<T>): T[] {
  if (Array.isArray(iterable)) return iterable;
  if (typeof (iterable as Partial<Iterable<T>> | null)?.[Symbol.iterator] !== 'function') {
    throw invalidArgument(`Pool.${method}(): expected an iterable of items (an array, a Set, a generator...), got ${describe(iterable)}. For an async iterable, use imap().`);
  }
  return [...iterable];
}

// A callback that throws must not break the pool: it runs inside the pool's message handling, and
// CPython's pool hangs for good when its result thread dies this way. Its error surfaces instead as
// an uncaught exception, as one thrown by a timer callback does.
function callSafely<T>(callback: ((value: T) => void) | undefined, value: T): void {
  if (!callback) return;
  try {
    callback(value);
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}

// What each call takes in its options (Python's keyword arguments).
const callOptions = ['timeout', 'signal'];
const mapOptionNames = [...callOptions, 'chunksize', 'progress'];
const callOptionNames: Record<string, string[]> = {
  apply: callOptions,
  applyAsync: [...callOptions, 'callback', 'errorCallback'],
  map: mapOptionNames,
  starmap: mapOptionNames,
  mapAsync: [...mapOptionNames, 'callback', 'errorCallback'],
  starmapAsync: [...mapOptionNames, 'callback', 'errorCallback'],
  imap: mapOptionNames,
  imapUnordered: mapOptionNames,
};

function mapOptions<O extends MapOptions>(method: string, raw: number | O): O {
  const options = (typeof raw === 'number' ? { chunksize: raw } : raw ?? {}) as O;
  if (options.chunksize !== undefined && (!Number.isInteger(options.chunksize) || options.chunksize < 1)) {
    throw outOfRange(`Pool.${method}(): expected \`chunksize\` to be a positive integer, got ${describe(options.chunksize)}.`);
  }
  return options;
}

// Python's rule: about four chunks per worker.
function defaultChunksize(length: number, workers: number): number {
  const size = Math.floor(length / (workers * 4));
  return Math.max(1, length % (workers * 4) ? size + 1 : size);
}

// Checks at the call, naming where, that `values` can cross to a worker, but returns them as they
// are: the worker's pipe reduces them when it sends them (reducing them here too would count a
// Queue's copy in flight twice, and move a socket Connection before its task is sent).
function sendable<T>(values: T, where: string): T {
  checkSendable(values, where);
  return values;
}

// sendable() for a chunk of map()'s items or of a stream, naming an item by its index in the
// whole input: the path is worked out only for a chunk that fails, so that the common case costs
// one check per chunk.
function checkItems(chunk: unknown[], offset: number, where: string): void {
  try {
    checkSendable(chunk, where);
  } catch (error) {
    chunk.forEach((item, i) => sendable(item, `${where}[${offset + i}]`)); // throws, naming the item
    throw error;
  }
}

// Copies of the caller's items, as Python's map takes its own list (a retried task sends the same
// items); a chunk of plain numbers packed, never argument lists (starmap). Every chunk is checked
// before the first is sent, as Python pickles its tasks; a packed one needs no check (numbers
// always cross): checking a million of them took about 25 of the 130-170 ms map() spent in this
// process (the first map() of a pool, a busy machine).
function chunked(items: unknown[], size: number, star: boolean, where: string): Chunk[] {
  const chunks: Chunk[] = [];
  for (let i = 0; i < items.length; i += size) {
    const end = Math.min(i + size, items.length);
    const packed = star ? undefined : packNumbers(items, i, end);
    if (packed) {
      chunks.push(packed);
    } else {
      const chunk = items.slice(i, end);
      checkItems(chunk, i, where);
      chunks.push(chunk);
    }
  }
  return chunks;
}

export type { Progress };
