// The pool's task queue (internal/deque.ts): first in, first out across growth and wrap-around,
// unshift() for tasks put back at the front, drain() in order.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deque } from '../src/internal/deque.ts';

describe('Deque', () => {
  it('keeps order while it grows with its items wrapped around the end of its array', () => {
    const deque = new Deque<number>();
    const expected: number[] = [];
    let next = 0;
    // Shifting some before each growth leaves the head mid-array, so every growth copies a wrapped run.
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 7 + round * 5; i++) {
        deque.push(next);
        expected.push(next++);
      }
      for (let i = 0; i < 3; i++) assert.equal(deque.shift(), expected.shift());
      assert.equal(deque.length, expected.length);
    }
    deque.unshift(-1);
    expected.unshift(-1);
    assert.equal(deque.peek(), -1);
    assert.deepEqual(deque.drain(), expected);
    assert.equal(deque.length, 0);
    assert.equal(deque.shift(), undefined);
  });

  it('grows by unshift() too, and stays in order', () => {
    const deque = new Deque<number>();
    for (let i = 0; i < 40; i++) deque.unshift(i);
    assert.deepEqual(deque.drain(), Array.from({ length: 40 }, (_, i) => 39 - i));
  });
});
