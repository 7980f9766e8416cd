// Queue, SimpleQueue and JoinableQueue (Python's multiprocessing.queues): multi-producer,
// multi-consumer, across processes and worker threads, over shared-memory rings.
//
// Never lose, never hang: put() writes into the ring at once; when the ring is full it does not
// wait for a reader but seals it and chains a ring twice as large (written first, then named in
// the full one), so a producer can put everything and exit while nobody reads, as Python's feeder
// thread lets it (without Python's deadlock when the parent joins the producer first). Producers
// take turns through a write lock, consumers through a read lock. When the write lock is busy,
// put() queues the item in this process and a flusher writes it soon; the flusher keeps the
// process alive until its items are in shared memory, unless cancelJoinThread() was called.

import { Empty, Full, ProcessError, TimeoutError, describe, invalidArgument, badNumber } from './errors.ts';
import { allocate, attach, forget, type Slot } from './internal/arena.ts';
import { deadlineOf, expired, park, wake } from './internal/futex.ts';
import { Ring, Tag } from './internal/ring.ts';
import { timeoutMs, waitFor, waitOptions, type WaitOptions } from './internal/validate.ts';
import { dumpsKeepingEffects, isScratch, loadsAt, loadsImportingAt, registerReducer, takeEffects, type Effects } from './reduction.ts';
import { Lock } from './synchronize/lock.ts';
import { Semaphore } from './synchronize/semaphore.ts';
import { ExitStep, atExit } from './internal/at-exit.ts';

const FIRST_RING_BYTES = 1 << 16;
// Queue-wide words: messages put and got (qsize), and JoinableQueue's unfinished tasks.
// A cache line each for the producers' count, the consumers' and the joinable count (see arena.ts).
const PUT = 0;
/** How many wait() calls watch PUT: a put wakes them only when there are some (a syscall saved). */
const ITEM_WAITERS = 1;
const GOT = 16;
const UNFINISHED = 32;
/** How many Queue objects, in every process and thread, and copies in flight hold the queue (see holdQueue()). */
const HOLDERS = 33;
const WORDS_BYTES = 192;
const kState = Symbol('multiproc.queueState');
/** What put() returns when it did not wait (a settled promise can be handed out any number of times). */
const DONE: Promise<void> = Promise.resolve();
const NO_OPTIONS: Readonly<PutOptions & GetOptions> = Object.freeze({});
/** What a read returns when no item is here (undefined and null are items). */
const NOTHING: unique symbol = Symbol('nothing');
/** Decodes the item of `length` bytes at `start` in `data`; `own`: they are the item's own (false: they lie in a ring, to be freed next). */
type Take<R> = (data: Uint8Array, start: number, length: number, own: boolean) => R;
/** The queues whose flusher has items to write in this thread (see #flushBlocking()). */
const unflushed = new Set<Queue<unknown>>();
let flushAtExit: (queue: Queue<unknown>) => void;
/** @internal Resolves once an item may be in the queue (for connection.wait()). */
export const kWaitItem = Symbol('multiproc.waitItem');

export interface PutOptions {
  /** Wait for room in a bounded queue (false: throw Full at once). @default true */
  block?: boolean;
  /** Milliseconds to wait for room before Full. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface GetOptions {
  /** Wait for an item (false: throw Empty at once). @default true */
  block?: boolean;
  /** Milliseconds to wait for an item before Empty. */
  timeout?: number;
  signal?: AbortSignal;
}

/** What a Queue is in every process: where its words, rings and locks live. */
interface SharedState {
  words: Slot;
  firstRing: Slot;
  readLock: Lock;
  writeLock: Lock;
  slots: Semaphore | null;
  maxsize: number;
}

/**
 * A FIFO queue between processes and threads (Python's multiprocessing.Queue).
 * @example
 * const q = new Queue<number>(); q.putNowait(123); await q.get(); // 123
 */
export class Queue<T = unknown> {
  readonly [kState]: SharedState;
  readonly #words: Int32Array;
  #readRing: Ring;
  #writeRing: Ring;
  /** The segments of the rings this thread has mapped for this queue (see holdQueue()). */
  readonly #rings: Set<string>;
  readonly #pending = new Backlog();
  #flushing: Promise<void> | undefined;
  #closed = false;
  #cancelled = false;
  /** Aborts the flusher's keep-alive wait for the write lock (cancelJoinThread() after put()). */
  #keepingAlive: AbortController | undefined;
  /**
   * An item that getNowait() took but could not rebuild (ERR_MP_NOT_LOADED: it holds a library
   * object whose module this process has not loaded). Not lost: still counted in the queue, it is
   * the next item of this process's get(), which imports that module.
   */
  #held: Uint8Array | undefined;

  /** `maxsize` > 0 bounds the queue: put() waits (or throws Full) while it holds that many items. */
  constructor(maxsize = 0) {
    const where = `new ${new.target.name}()`;
    if (!Number.isInteger(maxsize) || maxsize < 0) {
      const message = `${where}: expected \`maxsize\` to be a non-negative integer (0: unbounded), got ${describe(maxsize)}.`;
      throw badNumber(maxsize, message);
    }
    const fresh = rebuilding === undefined;
    const state = rebuilding ?? freshState(maxsize);
    this[kState] = state;
    const words = attach(state.words);
    this.#words = new Int32Array(words.buffer, words.offset, WORDS_BYTES / 4);
    // A new queue has one holder, this object; a copy that arrives was counted when it was sent.
    if (fresh) Atomics.store(this.#words, HOLDERS, 1);
    this.#rings = holdQueue(this, state, this.#words);
    this.#readRing = this.#writeRing = Ring.attach(state.firstRing);
  }

  /** Puts `obj`, waiting for room in a bounded queue; rejects with Full after `timeout`. */
  // Not an async function: a put() that needs no wait (every put into an unbounded queue) returns
  // a promise made once, instead of a new promise and an async frame per call. Errors still reject.
  put(obj: T, options?: PutOptions): Promise<void>;
  /** Python's order: `put(obj, block, timeout)`. */
  put(obj: T, block: boolean, timeout?: number): Promise<void>;
  put(obj: T, options: PutOptions | boolean = NO_OPTIONS, pythonTimeout?: number): Promise<void> {
    try {
      if (typeof options !== 'object' || options === null) options = positional('Queue.put()', options, pythonTimeout);
      const bytes = this.#prepare('put', obj);
      // What reducing the item did (a socket Connection in it moved) is final once it is in the
      // queue, and undone if a bounded queue stays full.
      const effects = takeEffects();
      if (this[kState].slots) return this.#putBounded(bytes, options, effects);
      const backedUp = this.#enqueue(bytes);
      effects?.commit();
      return backedUp ?? DONE;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #putBounded(bytes: Uint8Array, options: PutOptions, effects: Effects | null): Promise<void> {
    const slots = this[kState].slots!;
    try {
      if (options.block !== false) {
        const timeout = options.timeout === undefined ? undefined : timeoutMs('Queue.put()', options.timeout);
        if (!(await slots.acquire(true, { timeout, signal: options.signal }))) throw this.#full(timeout);
      } else if (!slots.acquire(false)) {
        throw this.#full(0);
      }
    } catch (error) {
      effects?.undo();
      throw error;
    }
    const backedUp = this.#enqueue(bytes);
    effects?.commit();
    await backedUp;
  }

  /** Puts `obj` without waiting; throws Full when a bounded queue is full. */
  putNowait(obj: T): void {
    const bytes = this.#prepare('putNowait', obj);
    const effects = takeEffects();
    if (this[kState].slots && !this[kState].slots.acquire(false)) {
      effects?.undo();
      throw this.#full(0);
    }
    this.#enqueue(bytes);
    effects?.commit();
  }

  /** The next item, waiting for one; rejects with Empty after `timeout` (or at once with block: false). */
  // Not an async function either: an item that is here now costs one promise, not an async frame.
  get(options?: GetOptions): Promise<T>;
  /** Python's order: `get(block, timeout)`; `get(false)` is getNowait() as a Promise. */
  get(block: boolean, timeout?: number): Promise<T>;
  get(options: GetOptions | boolean = NO_OPTIONS, pythonTimeout?: number): Promise<T> {
    try {
      if (typeof options !== 'object' || options === null) options = positional('Queue.get()', options, pythonTimeout);
      this.#assertOpen('get');
      const now = options.block === false;
      const timeout = now || options.timeout === undefined ? undefined : timeoutMs('Queue.get()', options.timeout);
      const deadline = deadlineOf('Queue.get()', timeout);
      // The common case without a wait: the read lock is free and an item is here.
      const ready = this.#takeNow(this.#took);
      if (ready !== NOTHING) return Promise.resolve(ready);
      if (now) throw this.#empty(0);
      return this.#getWaiting(deadline, options.signal, timeout);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #getWaiting(deadline: number | undefined, signal: AbortSignal | undefined, timeout: number | undefined): Promise<T> {
    const { readLock } = this[kState];
    if (!(await readLock.acquire(true, { timeout, signal }))) throw this.#empty(timeout);
    try {
      return await this.#readWaiting(deadline, signal, timeout);
    } finally {
      readLock.release();
    }
  }

  /** The next item if one is here now (and no other consumer is mid-read); otherwise throws Empty. */
  getNowait(): T {
    this.#assertOpen('getNowait');
    const item = this.#takeNow(this.#tookNow);
    if (item === NOTHING) throw this.#empty(0);
    return item;
  }

  /** Items in the queue now, counting those this process has yet to flush. */
  qsize(): number {
    return ((Atomics.load(this.#words, PUT) - Atomics.load(this.#words, GOT)) >>> 0) + this.#pending.length;
  }

  empty(): boolean {
    return this.qsize() === 0;
  }

  full(): boolean {
    return this[kState].maxsize > 0 && this.qsize() >= this[kState].maxsize;
  }

  /** This process puts no more; what it put is still delivered. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Resolves once every item this process put is in shared memory (Python's join_thread()). A
   * timeout (ms, or `{ timeout, signal }`; Python's has none) rejects with TimeoutError when it
   * passes first, and an aborted signal with its reason; the items go on being flushed.
   */
  async joinThread(timeout?: number | WaitOptions): Promise<void> {
    const options = waitOptions('Queue.joinThread()', timeout);
    if (!this.#closed) throw new ProcessError('Queue.joinThread(): call close() first, as in Python: joinThread() waits for the items of a closed queue.', { code: 'ERR_MP_QUEUE_NOT_CLOSED' });
    if (!(await waitFor(this.#flushing ?? Promise.resolve(), options))) {
      throw new TimeoutError(`Queue.joinThread(): items this process put still wait for the queue's write lock after ${options.timeout} ms (another process holds it).`);
    }
  }

  /** Lets this process exit without waiting to flush what it put (those items may be lost). */
  cancelJoinThread(): void {
    this.#cancelled = true;
    this.#keepingAlive?.abort(); // a flush already waiting stops holding the process open
  }

  /** Yields items as they come, for ever (break out of the loop to stop). */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) yield await this.get();
  }

  toString(): string {
    return `<${this.constructor.name}(qsize=${this.qsize()}${this[kState].maxsize ? `, maxsize=${this[kState].maxsize}` : ''})>`;
  }

  /** @internal Waits until the put counter moves (an item came) or `signal` aborts. */
  async [kWaitItem](signal: AbortSignal): Promise<void> {
    const put = Atomics.load(this.#words, PUT);
    if (!this.empty()) return;
    Atomics.add(this.#words, ITEM_WAITERS, 1);
    try {
      await park(this.#words, PUT, put, undefined, signal);
    } finally {
      Atomics.sub(this.#words, ITEM_WAITERS, 1);
    }
  }

  /** Called when an item was put (JoinableQueue counts it as an unfinished task). */
  protected onPut(): void {}

  /** @internal The queue-wide words, for JoinableQueue. */
  protected get words(): Int32Array {
    return this.#words;
  }

  #prepare(method: string, obj: T): Uint8Array {
    this.#assertOpen(method);
    return dumpsKeepingEffects(obj, `Queue.${method}()`);
  }

  #assertOpen(method: string): void {
    if (this.#closed) {
      throw new ProcessError(`Queue.${method}(): the queue was closed in this process (pid ${process.pid}). close() is final here; other processes can still use it.`, { code: 'ERR_MP_QUEUE_CLOSED' });
    }
  }

  // Whenever the write lock is free, the item is written at once, after what waits in the backlog.
  // Left to the flusher, a backlog took every later item of a producer that puts in a loop (`await
  // put()` only queues microtasks, and the flusher's wait for the lock ends in a macrotask): with
  // two producers, one of them copied its items into an ever larger backlog, a third of its time.
  // Returns the flush to wait for once the backlog is large: another process keeps the write lock
  // (stopped, or dead), and a loop of `await put()`, which waits for nothing but microtasks, would
  // grow the backlog until the process ran out of memory without ever letting the flusher run.
  #enqueue(bytes: Uint8Array): Promise<void> | undefined {
    this.onPut();
    const { writeLock } = this[kState];
    const pending = this.#pending;
    // Every so many items the backlog takes, a look at once at whether the lock's holder has ended
    // (the flusher's wait would find out too, but a loop of put() or putNowait() keeps it from running).
    if (writeLock.acquire(false) || ((pending.length & (BACKLOG_CHECK_ITEMS - 1)) === BACKLOG_CHECK_ITEMS - 1 && writeLock.recoverIfHolderEnded('Queue.put()'))) {
      try {
        if (pending.length > 0) pending.drain(this.#writeOne);
        this.#write(bytes);
      } finally {
        writeLock.release();
      }
      return undefined;
    }
    pending.push(bytes);
    this.#flushing ??= this.#flush();
    return pending.length >= BACKLOG_WAIT_ITEMS || pending.bytes >= BACKLOG_WAIT_BYTES ? this.#flushing : undefined;
  }

  readonly #writeOne = (bytes: Uint8Array): void => this.#write(bytes);

  async #flush(): Promise<void> {
    const { writeLock } = this[kState];
    unflushed.add(this);
    while (this.#pending.length > 0) {
      // The wait keeps the process alive (items must not be lost at exit) unless cancelJoinThread().
      await this.#lockForFlush(writeLock);
      try {
        this.#pending.drain(this.#writeOne);
      } finally {
        writeLock.release();
      }
    }
    this.#flushing = undefined;
    unflushed.delete(this);
  }

  // At exit (process.exit(), an uncaught error), where the flusher's wait for the write lock can
  // no longer end: the items are written now, blocking this thread for the lock, as Python's
  // exit joins the feeder thread. Unless cancelJoinThread() was called.
  #flushBlocking(): void {
    if (this.#cancelled || this.#pending.length === 0) return;
    const { writeLock } = this[kState];
    writeLock.acquireBlocking();
    try {
      this.#pending.drain(this.#writeOne);
    } finally {
      writeLock.release();
    }
  }

  // cancelJoinThread() may come while the flusher already waits, kept alive: it aborts that wait,
  // and the flusher waits again without holding the process open.
  async #lockForFlush(writeLock: Lock): Promise<void> {
    while (!this.#cancelled) {
      const keepingAlive = (this.#keepingAlive = new AbortController());
      try {
        await writeLock.acquire(true, { signal: keepingAlive.signal });
        return;
      } catch (error) {
        if (!keepingAlive.signal.aborted) throw error;
      } finally {
        this.#keepingAlive = undefined;
      }
    }
    await writeLock.acquire(true, { keepAlive: false });
  }

  // Under the write lock: into the newest ring, or a new one twice as large when it is full.
  #write(bytes: Uint8Array): void {
    // Count the item before a consumer can see it: counted after, a consumer's GOT could pass PUT
    // for a moment and qsize() read 2**32 - 1 (empty() false, full() true) on an empty queue.
    Atomics.add(this.#words, PUT, 1);
    let ring = this.#writeRing;
    while (ring.sealed()) ring = Ring.attach({ segment: ring.nextName(), offset: 0 });
    if (!ring.tryWrite(bytes, Tag.Object)) {
      const next = Ring.create(Math.max(ring.capacity * 2, 2 * (bytes.length + 64)));
      if (!next.tryWrite(bytes, Tag.Object)) throw new Error(`bug in multiproc: a fresh ring of ${next.capacity} bytes refused ${bytes.length} bytes`);
      ring.seal(next.slot.segment);
      ring = next;
    }
    if (ring !== this.#writeRing) {
      this.#writeRing = ring;
      this.#rings.add(ring.slot.segment);
    }
    if (Atomics.load(this.#words, ITEM_WAITERS) > 0) wake(this.#words, PUT);
  }

  // The held item, or the next one if the read lock is free and an item is here now, decoded by
  // `take`; NOTHING when there is none.
  #takeNow<R>(take: Take<R>): R | typeof NOTHING {
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      return take(held, 0, held.byteLength, true);
    }
    const { readLock } = this[kState];
    if (!readLock.acquire(false)) return NOTHING;
    try {
      return this.#readNow(take);
    } finally {
      readLock.release();
    }
  }

  // Under the read lock. The item is decoded where it lies in the ring, then freed: copying it out
  // first cost a quarter of a get() of an int.
  #readNow<R>(take: Take<R>): R | typeof NOTHING {
    for (;;) {
      const ring = this.#readRing;
      const start = ring.peekStart();
      if (start >= 0) {
        try {
          return take(ring.data, start, ring.peekedLength(), false);
        } finally {
          ring.release();
        }
      }
      if (!this.#readRing.sealed() || this.#readRing.hasData()) return NOTHING;
      this.#readRing = Ring.attach({ segment: this.#readRing.nextName(), offset: 0 });
      this.#rings.add(this.#readRing.slot.segment);
    }
  }

  async #readWaiting(deadline: number | undefined, signal: AbortSignal | undefined, timeout: number | undefined): Promise<T> {
    for (;;) {
      const item = this.#readNow(this.#took);
      if (item !== NOTHING) return item;
      const ready = await this.#readRing.waitReadable(deadline, signal);
      if (ready === 'timed-out') throw this.#empty(timeout);
    }
  }

  // The item of get(), which can wait: a library object's module not loaded here is imported first.
  readonly #took = (data: Uint8Array, start: number, length: number, own: boolean): T | Promise<T> => {
    this.#count();
    return loadsImportingAt(data, start, length, 'Queue.get()', own) as T | Promise<T>;
  };

  // The item of getNowait(), which cannot wait for an import: such an item is kept for the next get().
  readonly #tookNow = (data: Uint8Array, start: number, length: number, own: boolean): T => {
    let item: T;
    try {
      item = loadsAt(data, start, length, 'Queue.getNowait()', own) as T;
    } catch (error) {
      if ((error as ProcessError).code === 'ERR_MP_NOT_LOADED') this.#held = own ? data : data.slice(start, start + length);
      else this.#count();
      throw error;
    }
    this.#count();
    return item;
  };

  #count(): void {
    Atomics.add(this.#words, GOT, 1);
    this[kState].slots?.release();
  }

  #full(timeout: number | undefined): Full {
    return new Full(`Queue.put(): the queue is full (maxsize ${this[kState].maxsize})${timeout ? ` and stayed full for ${timeout} ms` : ''}. Wait for consumers (put() without a timeout), or raise maxsize.`);
  }

  #empty(timeout: number | undefined): Empty {
    return new Empty(`Queue.get(): the queue is empty${timeout ? ` and stayed empty for ${timeout} ms` : ''}.`);
  }

  static {
    flushAtExit = (queue) => queue.#flushBlocking();
    registerReducer(Queue, 'Queue', {
      reduce: (queue: Queue<unknown>) => {
        Atomics.add(queue.#words, HOLDERS, 1); // the copy in flight holds it until it arrives
        return { ...queue[kState], joinable: queue instanceof JoinableQueue, simple: queue instanceof SimpleQueue };
      },
      undo: (queue: Queue<unknown>) => {
        Atomics.sub(queue.#words, HOLDERS, 1); // that copy was never sent (this process still holds the queue)
      },
      discard: (state: SharedState) => {
        const words = attach(state.words);
        if (Atomics.sub(new Int32Array(words.buffer, words.offset, WORDS_BYTES / 4), HOLDERS, 1) === 1) freeRings(state.firstRing);
      },
      rebuild: (state: SharedState & { joinable: boolean; simple: boolean }) => {
        rebuilding = state;
        try {
          return state.joinable ? new JoinableQueue(state.maxsize) : state.simple ? new SimpleQueue() : new Queue(state.maxsize);
        } finally {
          rebuilding = undefined;
        }
      },
    });
  }
}

let rebuilding: SharedState | undefined;

/**
 * The items this process put while another producer held the write lock, waiting for the flusher:
 * dumps()'s reused scratch bytes are copied end to end into one buffer, kept from flush to flush.
 * A Buffer per item made that path allocate (and collect) an object per put: with two producers
 * contending, a fifth of each one's time went to allocating and collecting them. Bytes of their own
 * (a large item) are kept as they are.
 */
const BACKLOG_BYTES = 1 << 12;
/** A backlog of this many items, or bytes, makes put() wait until it is flushed (see #enqueue()). */
const BACKLOG_WAIT_ITEMS = 1 << 16;
const BACKLOG_WAIT_BYTES = 1 << 24;
/** How often (in items taken into the backlog) put() looks whether the write lock's holder has ended. */
const BACKLOG_CHECK_ITEMS = 1 << 12;
/** A backlog that grew past these (large items, a long wait) starts again small once flushed. */
const BACKLOG_KEPT_BYTES = 1 << 20;
const BACKLOG_KEPT_ITEMS = 1 << 12;

class Backlog {
  #bytes = new Uint8Array(BACKLOG_BYTES);
  #used = 0;
  /** Per item, in order: where its copied bytes end in #bytes, or the item's own bytes. */
  #items: (number | Uint8Array)[] = [];
  #count = 0;
  /** The bytes of the items kept as they are (not copied into #bytes). */
  #ownBytes = 0;

  get length(): number {
    return this.#count;
  }

  /** The items' bytes. */
  get bytes(): number {
    return this.#used + this.#ownBytes;
  }

  push(bytes: Uint8Array): void {
    if (!isScratch(bytes)) {
      this.#items[this.#count++] = bytes;
      this.#ownBytes += bytes.byteLength;
      return;
    }
    const end = this.#used + bytes.byteLength;
    if (end > this.#bytes.byteLength) this.#grow(end);
    this.#bytes.set(bytes, this.#used);
    this.#used = end;
    this.#items[this.#count++] = end;
  }

  /** Hands every item to `write`, in order, and empties. */
  drain(write: (bytes: Uint8Array) => void): void {
    const count = this.#count;
    // Emptied first: an item `write` fails on (a ring that cannot be made) fails the batch, as before.
    this.#count = 0;
    this.#used = 0;
    this.#ownBytes = 0;
    let start = 0;
    for (let i = 0; i < count; i++) {
      const item = this.#items[i] as number | Uint8Array;
      this.#items[i] = 0; // holds no item's bytes
      if (typeof item === 'number') {
        write(this.#bytes.subarray(start, item));
        start = item;
      } else {
        write(item);
      }
    }
    if (this.#bytes.byteLength > BACKLOG_KEPT_BYTES) this.#bytes = new Uint8Array(BACKLOG_BYTES);
    if (count > BACKLOG_KEPT_ITEMS) this.#items = [];
  }

  #grow(needed: number): void {
    let size = this.#bytes.byteLength * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#used));
    this.#bytes = grown;
  }
}

// A queue's rings (the first is a 64 KiB segment of its own; the ones it grows into are larger) are
// freed once nothing holds the queue: HOLDERS counts its Queue objects in every process and thread,
// and the copies sent and not yet rebuilt. An object that the garbage collector takes lets go of
// its hold, and a thread that exits lets go of all of its own (as a process's descriptors close when
// it exits); the last one unlinks the rings. Before, a program that made a Queue per request kept a
// segment and a mapping per Queue until it ended (the kernel caps a process at about 65,000).
interface HeldHere {
  objects: number;
  words: Int32Array;
  firstRing: Slot;
  /** The ring segments this thread mapped for the queue, to let go of when its last object goes. */
  rings: Set<string>;
}
/** This thread's Queue objects, by queue (its words' place). */
const heldHere = new Map<string, HeldHere>();
const collected = new FinalizationRegistry<string>((key) => letGo(key, 1));
let lettingGoAtExit = false;

function holdQueue(queue: Queue<unknown>, state: SharedState, words: Int32Array): Set<string> {
  const key = `${state.words.segment}:${state.words.offset}`;
  let held = heldHere.get(key);
  if (!held) {
    held = { objects: 0, words, firstRing: state.firstRing, rings: new Set([state.firstRing.segment]) };
    heldHere.set(key, held);
  }
  held.objects++;
  collected.register(queue, key);
  if (!lettingGoAtExit) {
    lettingGoAtExit = true;
    atExit(ExitStep.Flush, () => {
      for (const queue of unflushed) flushAtExit(queue);
    });
    atExit(ExitStep.LetGo, () => {
      for (const [key, { objects }] of [...heldHere]) letGo(key, objects);
    });
  }
  return held.rings;
}

function letGo(key: string, objects: number): void {
  const held = heldHere.get(key);
  if (!held) return;
  held.objects -= objects;
  // The rings first, through the mappings this thread still has (forgotten first, each would be
  // mapped again just to read the name of the next).
  if (Atomics.sub(held.words, HOLDERS, objects) === objects) freeRings(held.firstRing);
  if (held.objects <= 0) {
    heldHere.delete(key);
    for (const segment of held.rings) forget(segment); // each ring is alone in its segment
  }
}

// Nothing holds the queue any more, anywhere: its rings go, from the first along the chain. One
// that is gone already ends it (the main process's exit unlinks every segment of the program first).
function freeRings(first: Slot): void {
  let slot: Slot | undefined = first;
  while (slot) {
    let ring: Ring;
    try {
      ring = Ring.attach(slot);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    slot = ring.sealed() ? { segment: ring.nextName(), offset: 0 } : undefined;
    ring.free();
  }
}

function freshState(maxsize: number): SharedState {
  const words = allocate(WORDS_BYTES);
  const ring = Ring.create(FIRST_RING_BYTES);
  return {
    words: { segment: words.segment, offset: words.offset },
    firstRing: ring.slot,
    readLock: new Lock(),
    writeLock: new Lock(),
    slots: maxsize > 0 ? new Semaphore(maxsize) : null,
    maxsize,
  };
}

/**
 * A Queue whose consumers report each item done, so that join() can wait for all of them
 * (Python's JoinableQueue).
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /** Marks one item as processed; throws if called more often than items were put. */
  taskDone(): void {
    const words = this.words;
    for (;;) {
      const unfinished = Atomics.load(words, UNFINISHED);
      if (unfinished <= 0) throw new ProcessError('JoinableQueue.taskDone(): called more times than there were items put. Call it once per item you got.', { code: 'ERR_MP_TASK_DONE_TOO_MANY' });
      if (Atomics.compareExchange(words, UNFINISHED, unfinished, unfinished - 1) === unfinished) {
        if (unfinished === 1) wake(words, UNFINISHED);
        return;
      }
    }
  }

  /** Resolves once every item put has been marked done with taskDone(); `timeout` in ms rejects with TimeoutError. */
  async join(timeout?: number | WaitOptions): Promise<void> {
    const options = waitOptions('JoinableQueue.join()', timeout);
    const words = this.words;
    const deadline = deadlineOf('JoinableQueue.join()', options.timeout);
    for (;;) {
      const unfinished = Atomics.load(words, UNFINISHED);
      if (unfinished === 0) return;
      if (expired(deadline)) throw new TimeoutError(`JoinableQueue.join(): ${unfinished} items are still unfinished after ${options.timeout} ms.`);
      await park(words, UNFINISHED, unfinished, deadline, options.signal);
    }
  }

  protected override onPut(): void {
    Atomics.add(this.words, UNFINISHED, 1);
  }
}

/** @internal For tests: how many Queue objects and copies in flight hold `queue` (its HOLDERS word). */
export function queueHolders(queue: Queue<unknown>): number {
  return Atomics.load((queue as unknown as { words: Int32Array }).words, HOLDERS);
}

/** A plain unbounded queue (Python's SimpleQueue): put, get, empty, close. */
export class SimpleQueue<T = unknown> extends Queue<T> {
  constructor() {
    super(0);
  }
}

/** put()'s and get()'s options from Python's positional `(block, timeout)`. */
function positional(where: string, block: unknown, timeout: number | undefined): PutOptions & GetOptions {
  if (typeof block !== 'boolean') {
    throw invalidArgument(`${where}: expected options ({ block, timeout, signal }) or Python's (block, timeout), got ${describe(block)}.`);
  }
  return { block, timeout };
}

export function isQueue(value: unknown): value is Queue<unknown> {
  return value instanceof Queue;
}
