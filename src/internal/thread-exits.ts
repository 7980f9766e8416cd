// Which of this process's worker threads have ended, by thread id: one bitmap in a
// SharedArrayBuffer that every thread the library starts receives in its start message, so that a
// lock held by a thread that ended (terminated, or gone without release()) is recovered as a dead
// process's lock is. Node never reuses a thread id within a process. Threads past the map's ids,
// and threads the library did not start, are never reported ended: their locks are not recovered.

import { runtime } from './runtime.ts';

/** Thread ids the map covers (8 KiB). */
const TRACKED = 1 << 16;

/** The map to hand a thread child (made by the first thread that starts one). */
export function threadExitMap(): SharedArrayBuffer {
  const rt = runtime();
  rt.threadExits ??= new Int32Array(new SharedArrayBuffer(TRACKED / 8));
  return rt.threadExits.buffer as SharedArrayBuffer;
}

export function noteThreadExit(tid: number): void {
  if (tid <= 0 || tid >= TRACKED) return;
  threadExitMap();
  Atomics.or(runtime().threadExits!, tid >>> 5, 1 << (tid & 31));
}

export function threadHasExited(tid: number): boolean {
  const map = runtime().threadExits;
  return map !== null && tid > 0 && tid < TRACKED && (Atomics.load(map, tid >>> 5) & (1 << (tid & 31))) !== 0;
}
