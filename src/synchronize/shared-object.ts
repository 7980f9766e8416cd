// What every synchronization object shares: a slot of program-owned shared memory (see
// internal/arena.ts), viewed as 32-bit words, that travels as (segment, offset) and is attached
// again on the other side.

import { threadId } from '../internal/threads.ts';
import { allocate, attach, type Slot } from '../internal/arena.ts';
import { registerReducer } from '../reduction.ts';

export const kSlot = Symbol('multiproc.slot');

let attaching: Slot | undefined;

/** The words of a new object: freshly allocated (zeroed, `fresh`), or those of the slot being attached. */
export function wordsFor(byteLength: number): { slot: Slot; words: Int32Array; fresh: boolean } {
  const fresh = attaching === undefined;
  const placed = attaching ? attach(attaching) : allocate(byteLength);
  attaching = undefined;
  return { slot: { segment: placed.segment, offset: placed.offset }, words: new Int32Array(placed.buffer, placed.offset, byteLength / 4), fresh };
}

/** Builds an object over an existing slot by running its constructor in "attach" mode. */
export function attachTo<T>(slot: Slot, build: () => T): T {
  attaching = slot;
  try {
    return build();
  } finally {
    attaching = undefined;
  }
}

let identity: { pid: number; tid: number } | undefined;

/** The identity of this thread in a lock word: pid, and the thread id (0 in a main thread). */
export function threadIdentity(): { pid: number; tid: number } {
  identity ??= { pid: process.pid, tid: threadId() };
  return identity;
}

/** Registers how a synchronization class travels: its slot plus the extra state it names. */
export function registerShared<T extends { [kSlot]: Slot }, Extra>(
  Class: abstract new (...args: never[]) => T,
  name: string,
  extra: (object: T) => Extra,
  build: (extra: Extra) => T,
): void {
  registerReducer(Class, name, {
    reduce: (object) => ({ slot: object[kSlot], extra: extra(object) }),
    rebuild: ({ slot, extra: state }: { slot: Slot; extra: Extra }) => attachTo(slot, () => build(state)),
  });
}
