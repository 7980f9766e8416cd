// imap and imapUnordered on both backends: arrays, iterables, generators and async iterables;
// input order versus completion order; errors in their place; and backpressure: over an endless
// input they read only a bounded number of items ahead of the consumer.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { TestChannel } from '../helpers/channel.ts';
import { killStrays } from '../helpers/processes.ts';
import { collect, poolFor } from '../fixtures/pool/harness.ts';
import { blockItem, failOnSeven, square, squareLater, squareOrBlock } from '../fixtures/pool/targets.ts';
import { TimeoutError, activeChildren } from '../../src/index.ts';

/** The chunks per worker that imap() keeps in flight: about 128 items, at least 2 chunks. */
const aheadChunks = (chunksize: number): number => Math.max(2, Math.ceil(128 / chunksize));
const timeout = 60_000;
let channel: TestChannel;

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  killStrays();
  await channel.close();
});

const started = (label: string) => channel.event('started', (m) => m.label === label);
const release = (label: string) => channel.broadcast({ release: label });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const squares = (n: number) => range(n).map((x) => x * x);

/** Whether `promise` has settled by now (it does not wait for it). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([promise.then(() => true, () => true), Promise.resolve(pending)])) !== pending;
}

/** Resolves once `fact()` holds; checks every few ms, for facts that have no event (bounded by the test's timeout). */
async function until(fact: () => boolean): Promise<void> {
  while (!fact()) await new Promise((resolve) => setTimeout(resolve, 5));
}

function* numbers(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

async function* asyncNumbers(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    yield i;
  }
}

/** An async input that yields `items`, then throws 'the input broke'. */
async function* brokenAfter(items: number[]): AsyncGenerator<number> {
  yield* items;
  throw new Error('the input broke');
}

/** What a loop over `results` got before it threw the input's error. */
async function seenBeforeItBroke(results: AsyncIterable<number>): Promise<number[]> {
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const x of results) seen.push(x);
    })(),
    { message: 'the input broke' },
  );
  return seen;
}

/** An endless async input that counts what was pulled from it and whether it was closed. */
function endless() {
  const state = { pulled: 0, closed: false };
  async function* items(): AsyncGenerator<number> {
    try {
      for (;;) {
        state.pulled++;
        yield state.pulled - 1;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, items: items() };
}

forEachBackend((ctx) => {
  describe('Pool.imap()', () => {
    it('yields results in input order from an array, a Set, a generator and an async generator', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      assert.deepEqual(await collect(pool.imap(square, range(10))), squares(10));
      assert.deepEqual(await collect(pool.imap(square, new Set(range(10)))), squares(10));
      assert.deepEqual(await collect(pool.imap(squareLater, numbers(25))), squares(25));
      assert.deepEqual(await collect(pool.imap(square, asyncNumbers(25))), squares(25));
      assert.deepEqual(await collect(pool.imap(square, [])), []);
    });

    it('takes a chunksize as a number or in options, and keeps the order', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      assert.deepEqual(await collect(pool.imap(square, numbers(50), 7)), squares(50));
      assert.deepEqual(await collect(pool.imap(square, asyncNumbers(50), { chunksize: 4 })), squares(50));
      assert.deepEqual(await collect(pool.imapUnordered(square, numbers(50), 6)).then((r) => r.sort((a, b) => a - b)), squares(50));
      // Bad input is refused at the call, as apply() and map() refuse it, not at the first next().
      assert.throws(() => pool.imap(square, [1], 0), { name: 'RangeError', message: /chunksize/ });
      assert.throws(() => pool.imap(square, 5 as unknown as number[]), { name: 'TypeError', message: /iterable/ });
      assert.throws(() => pool.imapUnordered((x: number) => x, [1]), { name: 'TypeError', message: /export/ });
    });

    it('waits for the next item in order, though later ones finished first', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 3);
      const items = ['o-a', 'o-b', 'o-c'].map((label) => ({ channel: channel.path, label }));
      const results = pool.imap(blockItem, items);
      const first = results.next();
      await Promise.all(items.map(({ label }) => started(label)));
      release('o-c');
      release('o-b');
      await until(() => pool.stats().tasks.completed === 2);
      assert.equal(await settled(first), false, 'the first result is not there yet');
      release('o-a');
      assert.deepEqual(await first, { value: 'o-a', done: false });
      assert.deepEqual(await collect(results), ['o-b', 'o-c']);
    });

    it('yields the results before a failing item, then throws its error', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const x of pool.imap(failOnSeven, range(20))) seen.push(x);
        })(),
        { name: 'TypeError', message: 'seven is not allowed' },
      );
      assert.deepEqual(seen, range(7));
    });

    it("next() after a function's error gives the results after it, as Python's imap(): the error takes its item's place", { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      for (const results of [pool.imap(failOnSeven, range(10)), pool.imapUnordered(failOnSeven, range(10))]) {
        const got: unknown[] = [];
        for (let i = 0; i < 10; i++) {
          try {
            got.push((await results.next()).value);
          } catch (error) {
            got.push((error as Error).message);
          }
        }
        assert.deepEqual(got.sort((a, b) => String(a).localeCompare(String(b))), [...range(10).filter((x) => x !== 7), 'seven is not allowed'].sort((a, b) => String(a).localeCompare(String(b))));
        assert.deepEqual(await results.next(), { value: undefined, done: true });
      }
      const ordered: unknown[] = [];
      const results = pool.imap(failOnSeven, range(10));
      for (let i = 0; i < 10; i++) ordered.push(await results.next().then(({ value }) => value, (error: Error) => error.message));
      assert.deepEqual(ordered, [0, 1, 2, 3, 4, 5, 6, 'seven is not allowed', 8, 9], 'imap: in its place');
    });

    it('an error of the input itself comes in its place, after the results before it (as in Python)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      assert.deepEqual(await seenBeforeItBroke(pool.imap(square, brokenAfter([1, 2, 3]))), [1, 4, 9]);
      const unsendable = [1, 2, Symbol('no') as unknown as number];
      const got: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const x of pool.imap(square, unsendable)) got.push(x);
        })(),
        { code: 'ERR_MP_NOT_CLONEABLE', message: /Pool\.imap\(\): items\[2\] is Symbol\(no\)/ },
      );
      assert.deepEqual(got, [1, 4]);
    });

    it('starts the tasks at the call, before the first next(), as Python does', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const results = pool.imap(blockItem, [{ channel: channel.path, label: 'eager-a', value: 'a' }, { channel: channel.path, label: 'eager-b', value: 'b' }]);
      await Promise.all([started('eager-a'), started('eager-b')]); // no next() yet
      release('eager-a');
      release('eager-b');
      assert.deepEqual(await collect(results), ['a', 'b']);
    });

    it('next(timeout) rejects with TimeoutError when no result came in time, and the iteration goes on; concurrent next() calls get one value each, in order', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const results = pool.imap(squareOrBlock, [{ channel: channel.path, label: 'next-timeout', value: 'late' }, 7]);
      await started('next-timeout');
      const t0 = performance.now();
      await assert.rejects(results.next(30), (error: Error & { code?: string }) => {
        assert.ok(error instanceof TimeoutError, String(error));
        assert.equal(error.code, 'ERR_MP_TIMEOUT');
        assert.match(error.message, /^Pool\.imap\(\)\.next\(\): no result came within 30 ms\. The iteration goes on: call next\(\) again\.$/);
        return true;
      });
      assert.ok(performance.now() - t0 >= 29, 'next(30) gave up early');
      await assert.rejects(results.next({ timeout: Number.NaN }), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE' });
      await assert.rejects(results.next({ timeout: -1 }), { name: 'TimeoutError', message: /within 0 ms/ }, 'a negative timeout waits not at all, as in Python');
      const both = Promise.all([results.next({ timeout: 20_000 }), results.next()]);
      release('next-timeout');
      assert.deepEqual(await both, [{ value: 'late', done: false }, { value: 49, done: false }]);
      assert.deepEqual(await results.next(), { value: undefined, done: true });
    });

    it('an AbortSignal in options stops the iteration with its reason', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 100 });
      const controller = new AbortController();
      const results = pool.imap(blockItem, [{ channel: channel.path, label: 'imap-abort' }], { signal: controller.signal });
      const first = results.next();
      await started('imap-abort');
      controller.abort(new Error('enough streaming'));
      await assert.rejects(first, { message: 'enough streaming' });
      assert.deepEqual(await pool.map(square, [3]), [9]);
    });
  });

  describe('Pool.imap() and the pool ending', () => {
    it('close() while an imap() reads an async input: the rest of the input is sent, join() waits for it, and no worker is left', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const results = pool.imap(square, asyncNumbers(300));
      assert.deepEqual(await results.next(), { value: 0, done: false });
      pool.close();
      await pool.join();
      assert.deepEqual(pool.stats().workers, { total: 0, busy: 0, idle: 0 });
      const rest = await collect(results);
      assert.deepEqual([0, ...rest], squares(300), 'every result, read after join()');
      assert.deepEqual(activeChildren(), [], 'no worker was started after join()');
    });

    it('terminate() while an imap() reads its input: what was not sent rejects with ERR_MP_POOL_TERMINATED, and no worker is started again', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const results = pool.imap(square, range(2000));
      assert.deepEqual(await results.next(), { value: 0, done: false });
      await until(() => pool.stats().tasks.completed === 2 * aheadChunks(1)); // what was sent ahead is done: the next reads send more
      pool.terminate();
      await pool.join();
      await assert.rejects(collect(results), { code: 'ERR_MP_POOL_TERMINATED' });
      assert.deepEqual(pool.stats().workers, { total: 0, busy: 0, idle: 0 });
      assert.deepEqual(activeChildren(), [], 'no worker was started for the rest of the input');
    });

    it('break out of the loop while the async input waits for its next item returns at once (the input is closed once that read ends)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      let letGo!: () => void;
      const stalled = new Promise<void>((resolve) => (letGo = resolve));
      let closed = false;
      async function* stalling(): AsyncGenerator<number> {
        try {
          yield 1;
          await stalled; // no next item until the test lets it go
          yield 2;
        } finally {
          closed = true;
        }
      }
      for await (const x of pool.imap(square, stalling())) {
        assert.equal(x, 1);
        break; // returns although the input's next read is still waiting
      }
      assert.equal(closed, false, 'still in its read');
      letGo();
      await until(() => closed);
    });
  });

  describe('Pool.imapUnordered()', () => {
    it('an error of the input comes after the results of every item before it', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const seen = await seenBeforeItBroke(pool.imapUnordered(squareLater, brokenAfter([1, 2])));
      assert.deepEqual(seen.sort((a, b) => a - b), [1, 4]);
    });

    it('yields results in completion order', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 3);
      const items = ['u-a', 'u-b', 'u-c'].map((label) => ({ channel: channel.path, label }));
      const results = pool.imapUnordered(blockItem, items);
      const first = results.next();
      await Promise.all(items.map(({ label }) => started(label)));
      release('u-b');
      assert.deepEqual(await first, { value: 'u-b', done: false });
      const second = results.next();
      release('u-c');
      assert.deepEqual(await second, { value: 'u-c', done: false });
      release('u-a');
      assert.deepEqual(await collect(results), ['u-a']);
    });

    it('accepts generators and async iterables, and gives every result once', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
      assert.deepEqual(sorted(await collect(pool.imapUnordered(squareLater, numbers(40)))), squares(40));
      assert.deepEqual(sorted(await collect(pool.imapUnordered(square, asyncNumbers(40), 3))), squares(40));
    });
  });

  describe('backpressure', () => {
    for (const [method, chunksize] of [['imap', 1], ['imap', 3], ['imapUnordered', 1], ['imapUnordered', 4]] as const) {
      it(`${method} (chunksize ${chunksize}) over an endless async input reads a bounded amount ahead, and closes it on break`, { timeout }, async (t) => {
        const processes = 2;
        const pool = poolFor(t, ctx, processes);
        const { state, items } = endless();
        const k = 25;
        let received = 0;
        let maxAhead = 0;
        for await (const value of pool[method](square, items, chunksize)) {
          assert.equal(typeof value, 'number');
          received++;
          maxAhead = Math.max(maxAhead, state.pulled - received);
          if (received === k) break;
        }
        // About 128 items per worker (in whole chunks, at least 2) are in flight beyond the chunk being consumed (docs/pool.md).
        const bound = processes * aheadChunks(chunksize) * chunksize + chunksize;
        assert.ok(maxAhead <= bound, `read ${maxAhead} items ahead of the consumer (bound ${bound})`);
        assert.ok(state.pulled <= k + bound, `pulled ${state.pulled} items for ${k} results`);
        assert.equal(state.closed, true, 'breaking out of the loop closed the input');
        assert.deepEqual(await pool.map(square, [2]), [4], 'the pool is still usable');
      });
    }

    it('an endless sync generator is bounded too', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      let pulled = 0;
      function* forever(): Generator<number> {
        for (;;) yield pulled++;
      }
      const out: number[] = [];
      for await (const value of pool.imap(square, forever())) {
        out.push(value);
        if (out.length === 10) break;
      }
      assert.deepEqual(out, squares(10));
      assert.ok(pulled <= 10 + 2 * aheadChunks(1) + 1, `pulled ${pulled}`);
    });
  });
});
