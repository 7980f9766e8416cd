// Buffers for large messages: a received message of 64 KiB or more, and the part of a sent one
// that waits for room. A fresh 1 MiB allocation costs more in page faults (the kernel maps and
// zeroes 256 pages on first touch: 130-380 us here) than copying the message into it (45 us), so
// these come from the native addon's free list of blocks that V8 has freed (native/recycle.cc):
// a 1 MiB Pipe round trip took 0.6-1.3 ms instead of 1.75-2.5. Fresh blocks of 1 MiB and more are cut from huge pages.
// V8 frees a Buffer only at a garbage collection, about every 64 MiB of them, so the list keeps up
// to 128 MiB per process while large messages flow, and gives it all back once none was allocated
// for a second.

import { tryNative } from '../native/binding.ts';

const RECYCLED_FROM = 64 * 1024;
const TRIM_AFTER_IDLE_MS = 1000;

let trimTimer: NodeJS.Timeout | undefined;

/** An uninitialized Buffer of `length` bytes for a message. */
export function messageBuffer(length: number): Buffer {
  if (length < RECYCLED_FROM) return Buffer.allocUnsafe(length);
  return Buffer.from(messageArrayBuffer(length));
}

/**
 * An uninitialized ArrayBuffer of exactly `length` bytes, for a message or what one carries (a
 * Float64Array of a pool's chunk): from the free list from 64 KiB on, as messageBuffer().
 */
export function messageArrayBuffer(length: number): ArrayBuffer {
  const addon = length < RECYCLED_FROM ? undefined : tryNative();
  if (!addon) return new ArrayBuffer(length);
  if (trimTimer) trimTimer.refresh();
  else trimTimer = setTimeout(trim, TRIM_AFTER_IDLE_MS).unref();
  return addon.allocRecycled(length);
}

/** A copy of `bytes` in a messageBuffer(). */
export function copyMessage(bytes: Uint8Array): Buffer {
  const copy = messageBuffer(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

function trim(): void {
  trimTimer = undefined;
  tryNative()?.trimRecycled();
}
