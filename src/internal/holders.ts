// Who holds one end of a ring (a Pipe's), so that the other side can tell when every holder has
// gone without closing it (SIGKILL, a terminated thread), as the kernel tells a pipe's reader once
// every process that had the write end open is gone. A count of openers alone cannot: a killed
// holder never takes itself off it. One word naming the last opener could not either: with two
// writers, the death of the one that opened last read as the end of the stream while the other
// still wrote.
//
// The table lies in the ring's header: slots of one 64-bit word each, a holder's key in the high
// half and how many copies it holds in the low half, changed only by compare-exchange, so that no
// slot is ever seen with one holder's key and another's count. A holder is a thread (its pid and
// thread id), or a whole process for a copy it sent that is still on its way (whichever of its
// threads sent it, the copy outlives that thread). A copy moves to its receiver when it arrives:
// the receiver is added before the sender is taken off, so the table never looks empty meanwhile.
// A slot is free again when its count drops to 0, or when its holder is found dead by one that
// needs the slot. When every slot is taken by a live holder the table overflows, and from then on it never says
// that the end died (the reader waits, as for a holder it cannot see).

import { isRunning } from './liveness.ts';
import { threadHasExited } from './thread-exits.ts';
import { threadId } from './threads.ts';

const SLOTS = 8;
/** The table's size in a ring's header: its slots and an overflow word. */
export const HOLDERS_BYTES = (SLOTS + 1) * 8;
const OVERFLOWED = SLOTS;

/** Thread ids from this one on share a key, which only tells whether their process runs. */
const ANY_THREAD = 1023;
const KEY_SHIFT = 32n;
const COUNT_MASK = 0xffff_ffffn;

/** A holder: pid * 1024 + thread id (ANY_THREAD: the process as a whole). Linux pids are below 2^22. */
export type HolderKey = number;

function keyOf(pid: number, tid: number): HolderKey {
  return pid * (ANY_THREAD + 1) + Math.min(tid, ANY_THREAD);
}

let thisThread: HolderKey | undefined;

/** This thread, as the holder of the ends it opened. */
export function thisThreadKey(): HolderKey {
  thisThread ??= keyOf(process.pid, threadId());
  return thisThread;
}

/** This process as a whole: the holder of a copy it sent, until the copy arrives. */
export function thisProcessKey(): HolderKey {
  return keyOf(process.pid, ANY_THREAD);
}

function isAlive(key: HolderKey): boolean {
  const pid = Math.floor(key / (ANY_THREAD + 1));
  const tid = key % (ANY_THREAD + 1);
  if (pid !== process.pid) return isRunning(pid);
  // A thread of this process: only one this library started can be seen to have ended.
  return tid === ANY_THREAD || keyOf(pid, tid) === thisThreadKey() || !threadHasExited(tid);
}

const slot = (key: HolderKey, count: bigint) => (BigInt(key) << KEY_SHIFT) | count;
const keyIn = (value: bigint) => Number(value >> KEY_SHIFT);
const countIn = (value: bigint) => value & COUNT_MASK;

export class Holders {
  readonly #slots: BigUint64Array;

  /** The table at `offset` (8-aligned) in `buffer`; a new ring's header is zeroed: an empty table. */
  constructor(buffer: SharedArrayBuffer, offset: number) {
    this.#slots = new BigUint64Array(buffer, offset, SLOTS + 1);
  }

  /** One more copy held by `key`. */
  add(key: HolderKey): void {
    const slots = this.#slots;
    for (;;) {
      const own = this.#find(key);
      if (own >= 0) {
        const value = Atomics.load(slots, own);
        if (keyIn(value) === key && Atomics.compareExchange(slots, own, value, value + 1n) === value) return;
        continue; // it moved meanwhile
      }
      // A free slot, else one whose holder died: what a dead holder held no longer matters, as
      // long as one live holder is in the table (this one).
      const free = this.#find(0);
      const at = free >= 0 ? free : this.#findDead();
      if (at < 0) return void Atomics.store(slots, OVERFLOWED, 1n);
      const before = Atomics.load(slots, at);
      if ((before === 0n || !isAlive(keyIn(before))) && Atomics.compareExchange(slots, at, before, slot(key, 1n)) === before) return;
    }
  }

  #find(key: HolderKey): number {
    for (let i = 0; i < SLOTS; i++) if (keyIn(Atomics.load(this.#slots, i)) === key) return i;
    return -1;
  }

  #findDead(): number {
    for (let i = 0; i < SLOTS; i++) {
      const value = Atomics.load(this.#slots, i);
      if (value !== 0n && !isAlive(keyIn(value))) return i;
    }
    return -1;
  }

  /** One copy fewer held by `key` (nothing if it holds none: a table that overflowed may lack it). */
  remove(key: HolderKey): void {
    const slots = this.#slots;
    for (let i = 0; i < SLOTS; i++) {
      const value = Atomics.load(slots, i);
      if (keyIn(value) !== key || countIn(value) === 0n) continue;
      if (Atomics.compareExchange(slots, i, value, countIn(value) === 1n ? 0n : value - 1n) === value) return;
      i = -1; // it moved meanwhile: look again
    }
  }

  /** A copy that `from` sent has arrived, held by `to` now. */
  transfer(from: HolderKey, to: HolderKey): void {
    this.add(to);
    this.remove(from);
  }

  /** Takes off one copy of a holder that died holding it, if one is known. */
  removeDead(): void {
    const at = this.#findDead();
    if (at >= 0) this.remove(keyIn(Atomics.load(this.#slots, at)));
  }

  /** Whether every holder is known and dead (false too when none is left: the end was closed). */
  allDead(): boolean {
    if (Atomics.load(this.#slots, OVERFLOWED) !== 0n) return false;
    let dead = false;
    for (let i = 0; i < SLOTS; i++) {
      const value = Atomics.load(this.#slots, i);
      if (countIn(value) === 0n) continue;
      if (isAlive(keyIn(value))) return false;
      dead = true;
    }
    return dead;
  }
}
