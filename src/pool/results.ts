// The array that map() and starmap() return, made at its full length when the first results come,
// and filled chunk by chunk where each chunk's results go, in whatever order they come.
//
// Why not push() in order: an array grown by push() is copied into fresh memory at each growth,
// three times its final size in all; for a million numbers that was 7,500 page faults and most of
// the parent's time (130-140 ms against 35 for this, on a machine where a page fault costs 15 us).
// Why not `new Array(length)`: that array is of V8's holey kind for good, even once every index is
// set, and structured clone writes a holey array key by key (6x slower) if it is sent on. Here
// the array is one concat() of a packed block (one allocation of the right size, copied by
// memcpy), so it is packed; stores inside its length keep it packed.
//
// Numbers and other values are stored by two functions, each only ever given arrays of one kind.
// A store that has met arrays of both kinds makes V8 turn every array of unboxed numbers it meets
// into one of boxed values, on its first store (a map's results, after a map whose results were
// not numbers: a million numbers boxed, 400 ms of garbage collection). An array of numbers that
// meets another value is copied into an array of values once, here, instead.

import type { Chunk } from './protocol.ts';

const BLOCK = 8192;
/** Packed blocks to copy from: numbers (unboxed doubles), and any values. */
let numberBlock: number[] | undefined;
let valueBlock: unknown[] | undefined;

export class ResultArray<R> {
  readonly #length: number;
  #array: unknown[] | undefined;
  #numbers = false;

  constructor(length: number) {
    this.#length = length;
  }

  /** Writes a chunk's results from index `offset`. */
  place(offset: number, items: Chunk): void {
    const numbers = items instanceof Float64Array || allNumbers(items);
    if (this.#array === undefined) {
      this.#numbers = numbers;
      this.#array = numbers ? sized(this.#length, (numberBlock ??= numberFilled())) : sized(this.#length, (valueBlock ??= valueFilled()));
    } else if (this.#numbers && !numbers) {
      this.#numbers = false;
      const values = sized(this.#length, (valueBlock ??= valueFilled()));
      placeValues(values, 0, this.#array);
      this.#array = values;
    }
    if (this.#numbers) placeNumbers(this.#array as number[], offset, items as ArrayLike<number>);
    else placeValues(this.#array, offset, items);
  }

  /** The array, once every chunk was placed. */
  get array(): R[] {
    return (this.#array ?? []) as R[];
  }
}

function allNumbers(items: ArrayLike<unknown>): boolean {
  for (let i = 0; i < items.length; i++) if (typeof items[i] !== 'number') return false;
  return true;
}

function placeNumbers(into: number[], offset: number, items: ArrayLike<number>): void {
  for (let i = 0; i < items.length; i++) into[offset + i] = items[i] as number;
}

function placeValues(into: unknown[], offset: number, items: ArrayLike<unknown>): void {
  for (let i = 0; i < items.length; i++) into[offset + i] = items[i];
}

/** A packed array of `length` elements of `block`'s kind, every one to be overwritten. */
function sized<T>(length: number, block: T[]): T[] {
  if (length <= BLOCK) return block.slice(0, length);
  const array = block.concat(...new Array<T[]>(Math.ceil(length / BLOCK) - 1).fill(block));
  array.length = length; // trimmed in place: still packed
  return array;
}

// Filled by push() from an empty literal each: one literal for both would learn the more general
// kind at its allocation site and hand it to the other block.
function numberFilled(): number[] {
  const block: number[] = [];
  for (let i = 0; i < BLOCK; i++) block.push(0.5); // a double, not a small integer: the block is of the double kind
  return block;
}

function valueFilled(): unknown[] {
  const block: unknown[] = [];
  for (let i = 0; i < BLOCK; i++) block.push(undefined);
  return block;
}
