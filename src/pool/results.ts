// The array that map() and starmap() return, made at its full length before the first results
// come, and filled chunk by chunk where each chunk's results go, in whatever order they come.
//
// Why not push() in order: an array grown by push() is copied into fresh memory at each growth,
// three times its final size in all; for a million numbers that was 7,500 page faults and most of
// the parent's time (130-140 ms against 35 for this, on a machine where a page fault costs 15 us).
// Why not `new Array(length)`: that array is of V8's holey kind for good, even once every index is
// set, and structured clone writes a holey array key by key (6x slower) if it is sent on. Here
// the array is one concat() of a packed block (one allocation of the right size, copied by
// memcpy), so it is packed; stores inside its length keep it packed.

import type { Chunk } from './protocol.ts';

const BLOCK = 8192;
/** Packed blocks to copy from: numbers (unboxed doubles) when results are numbers, any values otherwise. */
let numberBlock: unknown[] | undefined;
let valueBlock: unknown[] | undefined;

function blockOf(numbers: boolean): unknown[] {
  if (numbers) return (numberBlock ??= filled(0.5)); // a double, not a small integer: the block is of the double kind
  return (valueBlock ??= filled(undefined));
}

function filled(value: unknown): unknown[] {
  const block: unknown[] = [];
  for (let i = 0; i < BLOCK; i++) block.push(value);
  return block;
}

/**
 * A packed array of `length` elements, every one to be overwritten: of unboxed numbers if
 * `numbers` (the first results to come were numbers; a store of another value later changes the
 * array's kind, as it would a pushed array's), of any values otherwise.
 */
export function resultArray<R>(length: number, numbers: boolean): R[] {
  const block = blockOf(numbers);
  if (length <= BLOCK) return block.slice(0, length) as R[];
  const array = block.concat(...new Array<unknown[]>(Math.ceil(length / BLOCK) - 1).fill(block));
  array.length = length; // trimmed in place: still packed
  return array as R[];
}

/** Writes a chunk's results into `into` from index `offset`. */
export function placeItems(into: unknown[], offset: number, items: Chunk): void {
  for (let i = 0; i < items.length; i++) into[offset + i] = items[i];
}
