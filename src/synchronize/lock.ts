// Lock and RLock: mutexes in shared memory, usable across processes and worker threads.
//
// Words: [state, holder pid, holder thread id, recursion count]. state is 0 (free), 1 (held) or
// 2 (held, and someone may be waiting): the classic futex mutex, so an uncontended acquire and
// release are one atomic each and never leave JS, and release() calls into the kernel only when
// state says someone waits. Waiters wake every LIVENESS_MS to check that the holder's process still
// runs: a lock whose holder died is recovered by the next waiter, with a warning (see docs/sharing.md).

import { ProcessError, outOfRange } from '../errors.ts';
import { deadlineOf, expired, park, parkSync, wake } from '../internal/futex.ts';
import { notABlock, refusedWait, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { kSlot, registerShared, threadIdentity, wordsFor } from './shared-object.ts';
import type { Slot } from '../internal/arena.ts';
import { threadHasExited } from '../internal/thread-exits.ts';
import { holding } from './hold.ts';
import { isRunning } from '../internal/liveness.ts';

const STATE = 0;
const HOLDER_PID = 1;
const HOLDER_TID = 2;
const COUNT = 3;
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;
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
    while (Atomics.exchange(words, STATE, CONTENDED) !== FREE) {
      if (parkSync(words, STATE, CONTENDED, undefined, LIVENESS_MS) === 'timed-out') recoverFromDeadHolder(words, 'Lock.acquire()');
    }
    setHolder(words);
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
    return `<Lock(owner=${this.locked() ? this.#words[HOLDER_PID] : 'None'})>`;
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
    return `<RLock(${this.locked() ? `${Atomics.load(words, HOLDER_PID)}, ${words[COUNT]}` : 'None, 0'})>`;
  }
}

function tryLock(words: Int32Array): boolean {
  if (Atomics.compareExchange(words, STATE, FREE, HELD) !== FREE) return false;
  setHolder(words);
  return true;
}

// Plain writes: the holder words are read by waiters only as a hint (liveness, ownership), and the
// atomic on `state` that follows in release() orders them. An Atomics.store would cost a fence.
function setHolder(words: Int32Array): void {
  const { pid, tid } = threadIdentity();
  words[HOLDER_PID] = pid;
  words[HOLDER_TID] = tid;
}

function holderIsMe(words: Int32Array): boolean {
  const { pid, tid } = threadIdentity();
  return Atomics.load(words, HOLDER_PID) === pid && Atomics.load(words, HOLDER_TID) === tid;
}

// Clear the holder before freeing the state: a stale holder would let its thread believe it
// still owns a lock that another thread has just taken.
function unlock(words: Int32Array): void {
  words[HOLDER_PID] = 0;
  words[HOLDER_TID] = 0;
  if (Atomics.exchange(words, STATE, FREE) === CONTENDED) wake(words, STATE, 1);
}

async function lockSlowly(words: Int32Array, where: string, timeout: number | LockWaitOptions | undefined): Promise<boolean> {
  const options: LockWaitOptions = waitOptions(where, timeout);
  const deadline = deadlineOf(where, options.timeout);
  // Test, then test-and-set: a compare-exchange per look would take the lock word from its holder's
  // CPU every time, slowing the release it waits for.
  for (let i = 0; i < SPINS; i++) if (Atomics.load(words, STATE) === FREE && tryLock(words)) return true;
  // Mark the lock contended; if it was free meanwhile, we hold it (as CONTENDED, which only costs
  // the next release a wake call).
  while (Atomics.exchange(words, STATE, CONTENDED) !== FREE) {
    if (expired(deadline)) return false;
    const parked = await park(words, STATE, CONTENDED, deadline, options.signal, LIVENESS_MS, options.keepAlive ?? true);
    if (parked === 'timed-out') recoverFromDeadHolder(words, where);
  }
  setHolder(words);
  return true;
}

// A holder that died (SIGKILL, a crash) never releases. Its pid is in the lock word: if that
// process is gone, free the lock for the waiters, once (the compare-exchange on the pid makes
// sure only one waiter recovers it), and warn: the data it guarded may be half-updated. A thread
// of this process that ended (terminate(), or an exit without release()) is recovered alike,
// through the compare-exchange on its thread id, which no later thread of this process reuses.
function recoverFromDeadHolder(words: Int32Array, where: string): void {
  const pid = Atomics.load(words, HOLDER_PID);
  if (pid === 0) return;
  if (pid === process.pid) return recoverFromEndedThread(words, where);
  if (isRunning(pid)) return;
  if (Atomics.compareExchange(words, HOLDER_PID, pid, 0) !== pid) return;
  Atomics.store(words, HOLDER_TID, 0);
  free(words, where, `pid ${pid}, died`, 'the dead process');
}

function recoverFromEndedThread(words: Int32Array, where: string): void {
  const tid = Atomics.load(words, HOLDER_TID);
  if (tid === threadIdentity().tid || !threadHasExited(tid)) return;
  if (Atomics.compareExchange(words, HOLDER_TID, tid, 0) !== tid) return;
  // Another waiter recovered it first and a thread of another process with the same id took it
  // since: that holder is alive. Put its id back.
  if (Atomics.load(words, HOLDER_PID) !== process.pid) return void Atomics.compareExchange(words, HOLDER_TID, 0, tid);
  Atomics.store(words, HOLDER_PID, 0);
  free(words, where, `thread ${tid} of this process (pid ${process.pid}), ended`, 'the thread');
}

function free(words: Int32Array, where: string, holder: string, who: string): void {
  Atomics.store(words, COUNT, 0);
  Atomics.store(words, STATE, FREE);
  wake(words, STATE);
  process.emitWarning(
    `${where}: the lock's holder, ${holder} while holding it; the lock was released so its waiters can go on. ` +
      `Check the data it guarded: ${who} may have left it half-updated.`,
    { type: 'MultiprocWarning', code: 'MP_LOCK_HOLDER_DIED' },
  );
}


registerShared(Lock, 'Lock', () => null, () => new Lock());
registerShared(RLock, 'RLock', () => null, () => new RLock());
