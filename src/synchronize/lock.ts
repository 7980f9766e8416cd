// Lock and RLock: mutexes in shared memory, usable across processes and worker threads.
//
// Words: [state, (unused), holder thread, recursion count]. state is 0 when free, else the
// holder's pid, with WAITERS set once someone may be waiting: the classic futex mutex, so an
// uncontended acquire and release are one atomic each and never leave JS, and release() calls
// into the kernel only when state says someone waits. The pid is part of the one atomic that takes
// the lock, so a holder killed at any instant is known by it: with the pid in a word of its own,
// written after the compare-exchange and cleared before the release, a process SIGKILLed between
// the two (rare: a few nanoseconds of a loop of acquire() and release(), as a Queue's producer
// runs) left a lock held by nobody anyone could name, for ever. The holder thread word (thread id
// + 1; 0 while not yet written) tells the threads of one process apart; a worker thread cannot be
// terminated between two statements that call nothing, so it is always written. Waiters wake every
// LIVENESS_MS to check that the holder still runs: the lock of a holder that died is taken over by
// the next waiter, with a warning (see docs/sharing.md).

import { ProcessError, outOfRange } from '../errors.ts';
import { deadlineOf, expired, park, parkSync, wake } from '../internal/futex.ts';
import { notABlock, refusedWait, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, threadIdentity, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';
import { threadHasExited } from '../internal/thread-exits.ts';
import { holding } from './hold.ts';
import { isRunning } from '../internal/liveness.ts';

const STATE = 0;
const HOLDER_THREAD = 2;
const COUNT = 3;
const FREE = 0;
/** In state: someone may be waiting, so release() wakes one. Linux pids are below 2**22. */
const WAITERS = 1 << 30;
const PID = WAITERS - 1;
/** A wait's options; `keepAlive: false` lets the process exit while it waits (as an unref'd timer). */
export interface LockWaitOptions extends WaitOptions {
  keepAlive?: boolean;
}

/** How often a waiter checks that the holder's process is alive. */
const LIVENESS_MS = 200;
/** How many times acquire() retries before it parks: a short critical section elsewhere ends soon. */
const SPINS = 100;

/**
 * A non-recursive lock (Python's multiprocessing.Lock). Any process or thread may release it.
 * @example
 * const lock = new Lock();
 * await lock.acquire(); try { ... } finally { lock.release(); }
 */
export class Lock {
  readonly [kSlot]: Slot;
  readonly #words: Int32Array;

  constructor() {
    const { slot, words } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
  }

  /** acquire(false) tries once, synchronously; acquire() and acquire(true, timeout) wait (a Promise). */
  acquire(block: false): boolean;
  acquire(block?: true, timeout?: number | LockWaitOptions): Promise<boolean>;
  acquire(block = true, timeout?: number | LockWaitOptions): boolean | Promise<boolean> {
    if (typeof block !== 'boolean') throw notABlock('Lock.acquire()', block);
    const refused = block && timeout !== undefined ? refusedWait('Lock.acquire()', timeout) : undefined;
    if (refused) return refused;
    if (tryLock(this.#words)) return block ? Promise.resolve(true) : true;
    if (!block) return false;
    return lockSlowly(this.#words, 'Lock.acquire()', timeout);
  }

  /**
   * @internal acquire(), blocking this thread until the lock is held: for work that must finish
   * where no Promise can settle any more (a Queue's items flushed at process exit). Held by this
   * thread already (an acquire() whose continuation the exit overtook), it is simply held.
   */
  acquireBlocking(): void {
    const words = this.#words;
    if (holderIsMe(words)) return;
    for (;;) {
      const state = markWaiting(words);
      if (state === FREE) return;
      if (parkSync(words, STATE, state, undefined, LIVENESS_MS) === 'timed-out' && takeFromEndedHolder(words, 'Lock.acquire()')) return;
    }
  }

  /**
   * @internal If the lock's holder has ended without releasing it (a dead process, an ended
   * thread), takes it over, with the MP_LOCK_HOLDER_DIED warning naming `where`; true if this
   * thread now holds it. A waiter does this on its own; this is for code that only tries the lock
   * and does not wait (a Queue's put() that keeps its item in the backlog instead).
   */
  recoverIfHolderEnded(where: string): boolean {
    return takeFromEndedHolder(this.#words, where);
  }

  /**
   * Python's `with lock:`: `using held = await lock.hold()` acquires, and the end of the block
   * releases. A timeout that passes rejects with TimeoutError.
   */
  hold(timeout?: number | LockWaitOptions): Promise<Disposable> {
    return holding('Lock.hold()', this.acquire(true, timeout), () => this.release(), timeout);
  }

  /** Releases the lock; throws if it is not held (Python's "released too many times"). */
  release(): void {
    if (Atomics.load(this.#words, STATE) === FREE) {
      throw new ProcessError('Lock.release(): the lock is not held; it was released too many times. Release once per acquire().', { code: 'ERR_MP_LOCK_NOT_HELD' });
    }
    unlock(this.#words);
  }

  /** True while some process or thread holds it. */
  locked(): boolean {
    return Atomics.load(this.#words, STATE) !== FREE;
  }

  /** True when this thread holds it (Condition uses it to check ownership). */
  isMine(): boolean {
    return this.locked() && holderIsMe(this.#words);
  }

  toString(): string {
    return `<Lock(owner=${this.locked() ? Atomics.load(this.#words, STATE) & PID : 'None'})>`;
  }
}

/**
 * A recursive lock (Python's multiprocessing.RLock): its holder may acquire it again, and must
 * release it as many times. Only the holding thread may release it.
 */
export class RLock {
  readonly [kSlot]: Slot;
  readonly #words: Int32Array;

  constructor() {
    const { slot, words } = wordsFor(16);
    this[kSlot] = slot;
    this.#words = words;
  }

  acquire(block: false): boolean;
  acquire(block?: true, timeout?: number | WaitOptions): Promise<boolean>;
  acquire(block = true, timeout?: number | WaitOptions): boolean | Promise<boolean> {
    if (typeof block !== 'boolean') throw notABlock('RLock.acquire()', block);
    const refused = block && timeout !== undefined ? refusedWait('RLock.acquire()', timeout) : undefined;
    if (refused) return refused;
    const words = this.#words;
    if (Atomics.load(words, STATE) !== FREE && holderIsMe(words)) {
      words[COUNT] = (words[COUNT] ?? 0) + 1;
      return block ? Promise.resolve(true) : true;
    }
    if (tryLock(words)) {
      words[COUNT] = 1;
      return block ? Promise.resolve(true) : true;
    }
    if (!block) return false;
    return lockSlowly(words, 'RLock.acquire()', timeout).then((acquired) => {
      if (acquired) words[COUNT] = 1;
      return acquired;
    });
  }

  /** As Lock.hold(), taking the RLock once more (`using` blocks nest in the holder). */
  hold(timeout?: number | WaitOptions): Promise<Disposable> {
    return holding('RLock.hold()', this.acquire(true, timeout), () => this.release(), timeout);
  }

  release(): void {
    const words = this.#words;
    if (Atomics.load(words, STATE) === FREE || !holderIsMe(words)) {
      throw new ProcessError('RLock.release(): this thread does not hold the lock. Only the thread that acquired an RLock can release it.', { code: 'ERR_MP_LOCK_NOT_OWNED' });
    }
    const count = (words[COUNT] ?? 1) - 1;
    words[COUNT] = count;
    if (count === 0) unlock(words);
  }

  locked(): boolean {
    return Atomics.load(this.#words, STATE) !== FREE;
  }

  isMine(): boolean {
    return this.locked() && holderIsMe(this.#words);
  }

  /** Releases every level this thread holds and returns how many (Condition.wait uses it). */
  releaseAll(): number {
    if (!this.isMine()) this.release(); // throws the not-owned error
    const count = this.#words[COUNT] ?? 1;
    this.#words[COUNT] = 0;
    unlock(this.#words);
    return count;
  }

  /**
   * After acquire(): restores the recursion count that releaseAll() returned, on top of the levels
   * another task of this thread may hold meanwhile (its acquire() then re-entered: same owner).
   */
  restoreCount(count: number): void {
    if (!Number.isInteger(count) || count < 1) throw outOfRange(`RLock.restoreCount(): expected a positive count, got ${count}.`);
    this.#words[COUNT] = (this.#words[COUNT] ?? 1) + count - 1;
  }

  toString(): string {
    const words = this.#words;
    return `<RLock(${this.locked() ? `${Atomics.load(words, STATE) & PID}, ${words[COUNT]}` : 'None, 0'})>`;
  }
}

/** This thread as a lock holder: its pid (in state) and its thread id + 1 (in the holder thread word). */
let myPid = 0;
let myThread = 0;

function identify(): void {
  const { pid, tid } = threadIdentity();
  myThread = tid + 1;
  myPid = pid;
}

// Nothing is called between taking the lock and naming the thread (see the top of this file).
function tryLock(words: Int32Array): boolean {
  if (myPid === 0) identify();
  if (Atomics.compareExchange(words, STATE, FREE, myPid) !== FREE) return false;
  words[HOLDER_THREAD] = myThread;
  return true;
}

/**
 * Takes the lock if it is free (marked as waited for: others may wait, as this caller did), else
 * sets WAITERS in its state. Returns FREE when taken, else the state to park on.
 */
function markWaiting(words: Int32Array): number {
  if (myPid === 0) identify();
  for (;;) {
    const state = Atomics.load(words, STATE);
    if (state === FREE) {
      if (Atomics.compareExchange(words, STATE, FREE, myPid | WAITERS) !== FREE) continue;
      words[HOLDER_THREAD] = myThread;
      return FREE;
    }
    if ((state & WAITERS) !== 0 || Atomics.compareExchange(words, STATE, state, state | WAITERS) === state) return state | WAITERS;
  }
}

function holderIsMe(words: Int32Array): boolean {
  if (myPid === 0) identify();
  return (Atomics.load(words, STATE) & PID) === myPid && Atomics.load(words, HOLDER_THREAD) === myThread;
}

// The holder thread word is cleared first: a stale one would let its thread believe it still
// holds a lock that another thread of its process has just taken. (The atomic on state orders the
// plain write for whoever takes the lock next.)
function unlock(words: Int32Array): void {
  words[HOLDER_THREAD] = 0;
  if ((Atomics.exchange(words, STATE, FREE) & WAITERS) !== 0) wake(words, STATE, 1);
}

async function lockSlowly(words: Int32Array, where: string, timeout: number | LockWaitOptions | undefined): Promise<boolean> {
  const options: LockWaitOptions = waitOptions(where, timeout);
  const deadline = deadlineOf(where, options.timeout);
  // Test, then test-and-set: a compare-exchange per look would take the lock word from its holder's
  // CPU every time, slowing the release it waits for.
  for (let i = 0; i < SPINS; i++) if (Atomics.load(words, STATE) === FREE && tryLock(words)) return true;
  for (;;) {
    const state = markWaiting(words);
    if (state === FREE) return true;
    if (expired(deadline)) return false;
    const parked = await park(words, STATE, state, deadline, options.signal, LIVENESS_MS, options.keepAlive ?? true);
    if (parked === 'timed-out' && takeFromEndedHolder(words, where)) return true;
  }
}

// A holder that died (SIGKILL, a crash) never releases. Its pid is in the state word: if that
// process is gone, the lock passes to this waiter, by a compare-exchange on the state (only one
// waiter can win it, and no live process can hold a lock under a dead pid), with a warning: the
// data it guarded may be half-updated. A thread of this process that ended (terminate(), or an
// exit without release()) is replaced alike, by a compare-exchange on the holder thread word: the
// state names only the process, whichever of its threads holds the lock.
function takeFromEndedHolder(words: Int32Array, where: string): boolean {
  if (myPid === 0) identify();
  for (;;) {
    const state = Atomics.load(words, STATE);
    const pid = state & PID;
    if (pid === FREE) return false;
    if (pid === process.pid) return takeFromEndedThread(words, where);
    if (isRunning(pid)) return false;
    if (Atomics.compareExchange(words, STATE, state, myPid | WAITERS) !== state) continue; // a waiter marked it, or took it over first
    words[HOLDER_THREAD] = myThread;
    Atomics.store(words, COUNT, 0);
    warnTakenOver(where, `pid ${pid}, died`, 'the dead process');
    return true;
  }
}

// The holder thread word names the holder once it has been written (0 before: a live thread in
// the middle of taking the lock) and is cleared before every release, so a word naming a thread
// of this process that has ended means that thread's hold is still the current one, as long as
// the state still names this process: since it was read, the lock may have passed to a thread of
// another process whose id is that number (its thread ids are its own). Then the word goes back.
function takeFromEndedThread(words: Int32Array, where: string): boolean {
  const holder = Atomics.load(words, HOLDER_THREAD);
  if (holder === 0 || holder === myThread || !threadHasExited(holder - 1)) return false;
  if (Atomics.compareExchange(words, HOLDER_THREAD, holder, myThread) !== holder) return false;
  if ((Atomics.load(words, STATE) & PID) !== myPid) {
    Atomics.compareExchange(words, HOLDER_THREAD, myThread, holder);
    return false;
  }
  Atomics.or(words, STATE, WAITERS); // others may be waiting, as this one was
  Atomics.store(words, COUNT, 0);
  warnTakenOver(where, `thread ${holder - 1} of this process (pid ${process.pid}), ended`, 'the thread');
  return true;
}

function warnTakenOver(where: string, holder: string, who: string): void {
  process.emitWarning(
    `${where}: the lock's holder, ${holder} while holding it; a waiter took it over so that the waiters can go on. ` +
      `Check the data it guarded: ${who} may have left it half-updated.`,
    { type: 'MultiprocWarning', code: 'MP_LOCK_HOLDER_DIED' },
  );
}


registerShared(Lock, 'Lock', () => null, () => new Lock());
registerShared(RLock, 'RLock', () => null, () => new RLock());
