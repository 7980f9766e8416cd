// Shared memory for the library's own objects (Lock, Event, Value...): many small objects share a
// few program-owned segments, so that ten thousand Locks cost one mapping, not ten thousand (the
// kernel caps a process at about 65,000). An object travels as (segment name, byte offset); the
// receiving process maps the segment once and keeps it (mappings are cached by name).

import { native } from '../native/binding.ts';
import { programSegmentName } from '../resource-tracker.ts';

/** Where an object's words live; what its reducer sends. */
export interface Slot {
  segment: string;
  offset: number;
}

/** A slot's memory: the segment's buffer and the slot's byte offset in it. */
export interface Placed extends Slot {
  buffer: SharedArrayBuffer;
}

const ARENA_BYTES = 1 << 18; // 256 KiB: 4,096 locks
/**
 * Every object starts on a cache line of its own: two objects that different processes update
 * (a queue's read lock, taken by its consumers, and its write lock, by its producers) must not
 * share one, or each update takes the line from the other CPU (false sharing).
 */
const CACHE_LINE = 64;
const mapped = new Map<string, SharedArrayBuffer>();
let current: { name: string; buffer: SharedArrayBuffer; used: number } | undefined;

const linesFor = (bytes: number) => Math.max(1, Math.ceil(bytes / CACHE_LINE)) * CACHE_LINE;

/** Whether allocate(bytes) gives a segment of its own (at offset 0), which its owner may unlink. */
export function ownSegmentFor(bytes: number): boolean {
  return linesFor(bytes) > ARENA_BYTES / 4;
}

/** `bytes` of zeroed shared memory, on cache lines of its own; large requests get a segment of their own. */
export function allocate(bytes: number): Placed {
  const size = linesFor(bytes);
  if (ownSegmentFor(bytes)) {
    const segment = programSegmentName();
    const buffer = native().shmOpen(segment, true, size);
    mapped.set(segment, buffer);
    return { segment, offset: 0, buffer };
  }
  if (!current || current.used + size > ARENA_BYTES) {
    const name = programSegmentName();
    current = { name, buffer: native().shmOpen(name, true, ARENA_BYTES), used: 0 };
    mapped.set(name, current.buffer);
  }
  const offset = current.used;
  current.used += size;
  return { segment: current.name, offset, buffer: current.buffer };
}

/**
 * Stops caching the mapping of a segment of its own that this thread no longer uses: it is unmapped
 * once the views still over it are garbage (the native addon unmaps it then), and attach() maps
 * it again if it comes back. Never for an arena, whose other slots live on.
 */
export function forget(segment: string): void {
  if (current?.name !== segment) mapped.delete(segment);
}

/** The memory of a slot that another process (or thread) allocated. */
export function attach(slot: Slot): Placed {
  let buffer = mapped.get(slot.segment);
  if (!buffer) {
    buffer = native().shmOpen(slot.segment, false, 0);
    mapped.set(slot.segment, buffer);
  }
  return { ...slot, buffer };
}
