// Pool's Python API on both backends: apply, applyAsync (callbacks in the parent, in completion
// order), map/mapAsync/starmap/starmapAsync with Python's chunksize rule, AsyncResult, the
// initializer, maxtasksperchild, stats(), and close/join/terminate/`await using`. Busy tasks block
// on the TestChannel until the test releases them: nothing here waits for time to pass.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { forEachBackend } from '../helpers/backends.ts';
import { TestChannel } from '../helpers/channel.ts';
import { allGone, killStrays } from '../helpers/processes.ts';
import { AsyncResult, ProcessError, ThreadPool, TimeoutError, Value, WorkerLostError, getContext } from '../../src/index.ts';
import { assertTimesOutAndAborts } from '../helpers/waits.ts';
import { Pool as DummyPool } from '../../src/dummy.ts';
import { collect, deathFor, poolFor } from '../fixtures/pool/harness.ts';
import {
  add,
  leaveTimer,
  blockItem,
  blockTask,
  sleepMs,
  countInit,
  holdSecondWorker,
  describeNumber,
  doubleSometimesLater,
  failOnSeven,
  initArgsSeen,
  keepQueue,
  numberThenText,
  putIntoKept,
  same,
  square,
  withIdent,
  squareLater,
  squareOrBlock,
  taskIdOf,
  throwMyError,
  valueEveryThird,
  throwRangeWithCode,
  whereAmI,
  workerIdent,
} from '../fixtures/pool/targets.ts';

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

/** The sizes of the chunks a map ran, in order, from taskIdOf's [item, task id] results. */
function chunkSizes(results: [number, number][]): number[] {
  const sizes: number[] = [];
  let last: number | undefined;
  for (const [, id] of results) {
    if (id !== last) sizes.push(0);
    sizes[sizes.length - 1]!++;
    last = id;
  }
  return sizes;
}

forEachBackend((ctx, backend) => {
  describe('Pool.apply() and applyAsync()', () => {
    it('apply() resolves with the result of a sync or async function; args default to none', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      assert.equal(await pool.apply(square, [7]), 49);
      assert.equal(await pool.apply(squareLater, [8]), 64);
      assert.equal(await pool.apply(add, [2, 3]), 5);
      assert.equal(typeof (await pool.apply(workerIdent)), 'number');
      const where = await pool.apply(whereAmI);
      assert.equal(where.thread, backend === 'thread');
      if (backend === 'process') assert.notEqual(where.pid, process.pid);
      else assert.equal(where.pid, process.pid, 'a worker thread shares the parent pid');
    });

    it('applyAsync() runs callback and errorCallback in the parent, in completion order', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 4);
      const order: string[] = [];
      const results = ['a', 'b', 'c'].map((label) =>
        pool.applyAsync(blockTask, [channel.path, `cb-${label}`, label.toUpperCase()], {
          callback: (value) => order.push(`ok:${String(value)}`),
          errorCallback: () => order.push('never'),
        }),
      );
      await Promise.all(['a', 'b', 'c'].map((label) => started(`cb-${label}`)));
      const failing = pool.applyAsync(throwRangeWithCode, ['bad'], {
        callback: () => order.push('never'),
        errorCallback: (error) => order.push(`error:${(error as Error).message}`),
      });
      await assert.rejects(failing.get(), RangeError);
      release('cb-b');
      assert.equal(await results[1]!.get(), 'B');
      release('cb-c');
      assert.equal(await results[2]!.get(), 'C');
      release('cb-a');
      assert.equal(await results[0]!.get(), 'A');
      // Each callback ran before its get() resolved, here in the parent (it pushes to our array).
      assert.deepEqual(order, ['error:bad', 'ok:B', 'ok:C', 'ok:A']);
    });

    it('tasks submitted one by one run in parallel on idle workers, not queued behind each other', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 3);
      assert.deepEqual(await pool.map(square, range(12), 1), range(12).map((x) => x * x)); // warm: the workers are up
      const labels = ['par-a', 'par-b', 'par-c'];
      const results = labels.map((label) => pool.applyAsync(blockTask, [channel.path, label]));
      // Each blocks until released: they can all start only if each went to its own worker.
      const idents = await Promise.all(labels.map(async (label) => (await started(label)).ident));
      assert.equal(new Set(idents).size, 3);
      assert.deepEqual(pool.stats().workers, { total: 3, busy: 3, idle: 0 });
      for (const label of labels) release(label);
      assert.deepEqual(await Promise.all(results.map((r) => r.get())), labels);
    });

    it('thousands of applyAsync() in one loop (sent to the workers in batches) all complete, spread over every worker', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      // Both workers up first (each holds one of these until released), so that both can take batches.
      const up = ['up-a', 'up-b'].map((label) => pool.applyAsync(blockTask, [channel.path, label]));
      await Promise.all([started('up-a'), started('up-b')]);
      release('up-a');
      release('up-b');
      await Promise.all(up.map((r) => r.get()));
      const results = range(3000).map((i) => pool.applyAsync(withIdent, [i]));
      const values = await Promise.all(results.map((r) => r.get()));
      assert.deepEqual(values.map(([x]) => x), range(3000));
      assert.equal(new Set(values.map(([, ident]) => ident)).size, 2, 'both workers ran some');
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 3002, failed: 0 });
    });

    it('sends long tasks ahead two at a time: behind a task that blocks, at most one other waits', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      // 12 tasks of 10 ms teach the pool that tasks here are long: about 1 ms of work is sent ahead,
      // and never fewer than 2 tasks (the running one and the next).
      await pool.map(sleepMs, Array<number>(12).fill(10), 1);
      const blocked = pool.applyAsync(blockTask, [channel.path, 'behind']);
      await started('behind');
      const quick = range(20).map((i) => pool.applyAsync(square, [i]));
      // If more than one had gone to the blocked worker, fewer than 19 could finish before its release.
      await new Promise<void>((resolve) => {
        let done = 0;
        for (const result of quick) void result.get().then(() => ++done === 19 && resolve());
      });
      release('behind');
      assert.equal(await blocked.get(), 'behind');
      assert.deepEqual(await Promise.all(quick.map((r) => r.get())), range(20).map((x) => x * x));
    });

    it('tasks sent ahead behind a task that blocks are taken back by a worker that goes idle: none waits while a worker could run it', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      // Both workers timed on tiny tasks: each is then sent up to 256 tasks ahead, a guess that the
      // tasks below prove wrong (Python's pool gives each task to whichever worker is idle).
      await pool.map(square, range(2000), 1);
      const blocked = ['ahead-a', 'ahead-b'].map((label) => pool.applyAsync(blockTask, [channel.path, label]));
      const [a, b] = await Promise.all([started('ahead-a'), started('ahead-b')]);
      assert.notEqual(a.ident, b.ident);
      // Both busy: these are sent ahead, half behind each blocked task.
      const quick = range(10).map((i) => pool.applyAsync(withIdent, [i]));
      assert.equal(pool.stats().tasks.queued, 10);
      release('ahead-b');
      // With 'ahead-a' still blocked, the freed worker runs all ten, those sent behind it included.
      const values = await Promise.all(quick.map((r) => r.get()));
      assert.deepEqual(values.map(([x]) => x), range(10));
      assert.deepEqual(new Set(values.map(([, ident]) => ident)), new Set([b.ident]));
      assert.deepEqual({ ...pool.stats().tasks, completed: 0 }, { queued: 0, running: 1, completed: 0, failed: 0 });
      release('ahead-a');
      assert.deepEqual(await Promise.all(blocked.map((r) => r.get())), ['ahead-a', 'ahead-b']);
      // The blocked worker dropped the tasks taken from it: nothing ran twice, and it goes on.
      assert.deepEqual(await pool.map(square, range(100), 1), range(100).map((x) => x * x));
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 2000 + 2 + 10 + 100, failed: 0 });
    });

    it('a worker ready late goes by the timed worker: behind a blocked task it holds at most one other', { timeout }, async (t) => {
      // One worker is held in its initializer while the other learns that tasks here take 10 ms;
      // then each gets a task that blocks, and 20 short ones follow. Whichever is released first
      // must be able to run 19 of them: the late worker, untimed, must not hold more than one.
      for (const first of ['first', 'second'] as const) {
        const counter = new Value('i', 0);
        const pool = poolFor(t, ctx, 2, { initializer: holdSecondWorker, initargs: [counter, channel.path, `late-${first}`] });
        await started(`late-${first}`);
        await pool.map(sleepMs, Array<number>(12).fill(10), 1);
        release(`late-${first}`);
        const blocked = ['a', 'b'].map((label) => pool.applyAsync(blockTask, [channel.path, `${label}-${first}`]));
        await Promise.all(['a', 'b'].map((label) => started(`${label}-${first}`)));
        const quick = range(20).map((i) => pool.applyAsync(square, [i]));
        const [freed, held] = first === 'first' ? ['a', 'b'] : ['b', 'a'];
        release(`${freed}-${first}`);
        await new Promise<void>((resolve) => {
          let done = 0;
          for (const result of quick) void result.get().then(() => ++done === 19 && resolve());
        });
        release(`${held}-${first}`);
        await Promise.all(blocked.map((r) => r.get()));
        assert.deepEqual(await Promise.all(quick.map((r) => r.get())), range(20).map((x) => x * x));
        pool.terminate();
        await pool.join();
      }
    });

    it('a worker whose first task blocks takes nothing behind it: a map of short tasks runs whole on the other', { timeout }, async (t) => {
      // The other worker, timed on short tasks, sends up to 256 ahead; the blocked one, not timed
      // yet, used to be given as many, and took every other task of the map behind its blocked one.
      const pool = poolFor(t, ctx, 2);
      const blocked = pool.applyAsync(blockTask, [channel.path, 'first-blocks']);
      await started('first-blocks');
      assert.equal(await pool.apply(square, [3]), 9); // on the other worker, which is now timed
      assert.deepEqual(await pool.map(square, range(2000), 1), range(2000).map((x) => x * x));
      release('first-blocks');
      assert.equal(await blocked.get(), 'first-blocks');
    });

    it('applyAsync() throws at once for args that are not an array, or a function that is not exported', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      assert.throws(() => pool.applyAsync(square, 3 as unknown as [number]), { name: 'TypeError', message: /expected `args` to be an array.*\[value\]/ });
      const local = (x: number) => x;
      assert.throws(() => pool.applyAsync(local, [1]), { name: 'TypeError', message: /Pool\.applyAsync\(\).*local/ });
      assert.throws(() => pool.applyAsync(square, [1], { timeout: Number.NaN }), RangeError);
      assert.throws(() => pool.applyAsync(square, [1], { signal: 'stop' as unknown as AbortSignal }), { name: 'TypeError', message: /AbortSignal/ });
      await assert.rejects(pool.apply(square, 3 as unknown as [number]), TypeError);
    });
  });

  describe('AsyncResult', () => {
    it('ready(), successful() (throws before ready), get(timeout) → TimeoutError, wait(timeout)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const result = pool.applyAsync(blockTask, [channel.path, 'ar', 'done']);
      assert.ok(result instanceof AsyncResult);
      await started('ar');
      assert.equal(result.ready(), false);
      assert.throws(() => result.successful(), { name: 'ProcessError', code: 'ERR_MP_NOT_READY', message: /not ready yet/ });
      const before = performance.now();
      await assert.rejects(result.get(50), TimeoutError);
      assert.ok(performance.now() - before >= 45, 'get(50) waited about 50 ms');
      assert.equal(await result.wait(20), undefined, 'wait(timeout) resolves, even when not ready');
      assert.equal(result.ready(), false);
      release('ar');
      await result.wait();
      assert.equal(result.ready(), true);
      assert.equal(result.successful(), true);
      assert.equal(await result.get(), 'done');
      assert.equal(await result.get(0), 'done', 'get() of a ready result does not time out');

      const failed = pool.applyAsync(throwMyError, ['nope']);
      await failed.wait();
      assert.equal(failed.successful(), false);
      await assert.rejects(failed.get(), { name: 'MyError', message: 'nope' });
      await assert.rejects(failed.get(), { name: 'MyError' }, 'get() rejects every time it is called');
    });
  });

  describe('AsyncResult and callbacks', () => {
    it('ready() is false while callback or errorCallback runs, as in Python; get() resolves after them', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const seen: string[] = [];
      const ok: AsyncResult<number> = pool.applyAsync(square, [3], { callback: (value) => seen.push(`callback ${value}: ready ${ok.ready()}`) });
      assert.equal(await ok.get(), 9);
      const failed: AsyncResult<number> = pool.applyAsync(failOnSeven, [7], { errorCallback: () => seen.push(`errorCallback: ready ${failed.ready()}`) });
      await assert.rejects(failed.get(), TypeError);
      const mapped: AsyncResult<number[]> = pool.mapAsync(square, [1, 2, 3], { chunksize: 1, callback: (values) => seen.push(`map callback ${values}: ready ${mapped.ready()}`) });
      assert.deepEqual(await mapped.get(), [1, 4, 9]);
      const mapFailed: AsyncResult<number[]> = pool.mapAsync(failOnSeven, [6, 7, 8], { chunksize: 1, errorCallback: () => seen.push(`map errorCallback: ready ${mapFailed.ready()}`) });
      await assert.rejects(mapFailed.get(), TypeError);
      // Each callback ran once, before its get() settled, and saw its result not ready yet.
      assert.deepEqual(seen, ['callback 9: ready false', 'errorCallback: ready false', 'map callback 1,4,9: ready false', 'map errorCallback: ready false']);
      assert.deepEqual([ok.ready(), failed.ready(), mapped.ready(), mapFailed.ready()], [true, true, true, true]);
    });

    it('an errorCallback that terminates the pool is called once, though the other chunks then fail too', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const errors: unknown[] = [];
      const items = ['cb-end-1', 'cb-end-2'].map((label) => ({ channel: channel.path, label }));
      const mapping = pool.mapAsync(blockItem, items, { chunksize: 1, errorCallback: (error) => {
        errors.push(error);
        pool.terminate(); // fails the other chunk, still running, while this callback runs
      } });
      await Promise.all([started('cb-end-1'), started('cb-end-2')]);
      channel.broadcast({ release: 'cb-end-1', die: deathFor(backend) });
      await assert.rejects(mapping.get(), WorkerLostError);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof WorkerLostError);
    });
  });

  describe('Pool.map() and mapAsync()', () => {
    it('refuses an input that is not iterable, naming the call; an empty mapAsync() calls its callback after it returns', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await assert.rejects(pool.map(square, 5 as never), { name: 'TypeError', message: /^Pool\.map\(\): expected an iterable of items .*got 5 \(number\)\. For an async iterable, use imap\(\)\.$/ });
      assert.throws(() => pool.starmapAsync(add, {} as never), { name: 'TypeError', message: /^Pool\.starmapAsync\(\): expected an iterable/ });
      let called = false;
      const result = pool.mapAsync(square, [], { callback: () => (called = true) });
      assert.equal(called, false, 'not before mapAsync() returned');
      assert.deepEqual(await result.get(), []);
      await Promise.resolve();
      assert.equal(called, true);
    });

    it('results that hold library objects arrive usable and in order among plain ones', { timeout }, async (t) => {
      // The pool takes plain results as they lie in shared memory; one with a library object goes
      // the way of recv() (its module may need importing): the two ways must keep the order.
      const pool = poolFor(t, ctx, 2);
      const results = await pool.map(valueEveryThird, range(30), 1);
      results.forEach((result, i) => {
        if (i % 3 === 0) {
          assert.ok(result instanceof Value, `result ${i} is ${String(result)}`);
          assert.equal(result.value, i);
        } else {
          assert.equal(result, i);
        }
      });
    });

    it('returns results in order, chunked by Python\'s default rule (about 4 chunks per worker)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      // divmod(100, 2 * 4) = (12, 4): chunksize 13, so 7 chunks of 13 and one of 9.
      const hundred = await pool.map(taskIdOf, range(100));
      assert.deepEqual(hundred.map(([x]) => x), range(100));
      assert.deepEqual(chunkSizes(hundred), [13, 13, 13, 13, 13, 13, 13, 9]);
      // divmod(16, 8) = (2, 0): chunksize 2.
      assert.deepEqual(chunkSizes(await pool.map(taskIdOf, range(16))), Array(8).fill(2));
      // divmod(5, 8) = (0, 5): chunksize 1.
      assert.deepEqual(chunkSizes(await pool.map(taskIdOf, range(5))), [1, 1, 1, 1, 1]);
      assert.deepEqual(await pool.map(square, []), []);
    });

    it('returns results in order when the chunks are released last-first', { timeout }, async (t) => {
      // The results are joined chunk by chunk once the chunks before have come: a chunk that
      // finishes before the first one waits for it.
      const pool = poolFor(t, ctx, 3);
      const labels = ['a', 'b', 'c'].map((name) => `${backend}-reverse-${name}`);
      const mapped = pool.map(blockItem, labels.map((label) => ({ channel: channel.path, label, value: label.toUpperCase() })), 1);
      await Promise.all(labels.map(started));
      for (const label of [...labels].reverse()) release(label);
      assert.deepEqual(await mapped, labels.map((label) => label.toUpperCase()));
    });

    it('takes the chunksize as a number in third place, or in an options object', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const byNumber = await pool.map(taskIdOf, range(10), 4);
      assert.deepEqual(byNumber.map(([x]) => x), range(10));
      assert.deepEqual(chunkSizes(byNumber), [4, 4, 2]);
      assert.deepEqual(chunkSizes(await pool.map(taskIdOf, range(10), { chunksize: 5 })), [5, 5]);
      assert.deepEqual(chunkSizes(await pool.map(taskIdOf, range(3), { chunksize: 100 })), [3]);
      await assert.rejects(pool.map(square, [1], 0), { name: 'RangeError', message: /chunksize.*positive integer/ });
      await assert.rejects(pool.map(square, [1], { chunksize: 1.5 }), RangeError);
    });

    it('accepts any iterable: an array, a Set, a generator', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      function* numbers() {
        yield* [1, 2, 3];
      }
      assert.deepEqual(await pool.map(square, new Set([1, 2, 3])), [1, 4, 9]);
      assert.deepEqual(await pool.map(square, numbers()), [1, 4, 9]);
      assert.deepEqual(await pool.map(squareLater, range(50), 7), range(50).map((x) => x * x));
    });

    it('fails as a whole with the first error of an item, as Python does', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      await assert.rejects(pool.map(failOnSeven, range(20), 3), { name: 'TypeError', message: 'seven is not allowed' });
      assert.deepEqual(await pool.map(failOnSeven, [1, 2]), [1, 2], 'the pool goes on');
    });

    it('carries long runs of numbers exactly both ways (packed as bytes): -0, NaN, Infinity, fractions, beyond 2^53', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const special = [-0, NaN, Infinity, -Infinity, 0.1, 2 ** 53 + 2, -(2 ** 60), Number.MIN_VALUE, Number.MAX_VALUE];
      const items = [...special, ...range(200)];
      const back = await pool.map(same, items, 100);
      assert.ok(Array.isArray(back), 'a plain array, not a typed one');
      assert.equal(back.length, items.length);
      back.forEach((value, i) => assert.ok(Object.is(value, items[i]), `item ${i}: ${String(value)} is not ${String(items[i])}`));
      const seen = await pool.map(describeNumber, [-0, ...range(99)], 100);
      assert.deepEqual(seen[0], ['number', true], 'the task gets -0 as a number');
      assert.ok(seen.every(([type]) => type === 'number'));
      assert.deepEqual(await collect(pool.imap(same, range(300), 100)), range(300), 'imap chunks too');
    });

    // map() makes its result at full length and writes each chunk's results at their place as
    // they come (src/pool/results.ts): here the first chunk comes last. The array must be of V8's
    // packed kind, which structured clone writes densely (tag 'A'; a holey one is 'a', key by key).
    it('places chunks that complete out of order, into a packed array, numbers or not', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const isDense = (array: unknown[]) => serialize(array)[2] === 0x41;
      const squares = range(20_000).map((x) => x * x);
      for (const [label, value] of [['numbers', 0], ['text', undefined]] as const) {
        // Chunks of 100: the first is held back, the second (on the other worker) says when it ran.
        const items: Parameters<typeof squareOrBlock>[0][] = [{ channel: channel.path, label, value }, ...range(20_000).slice(1)];
        items[199] = { channel: channel.path, label: `${label} second chunk`, value: 199 ** 2, ran: true };
        const mapping = pool.map(squareOrBlock, items, 100);
        await started(label);
        await channel.event('ran', (m) => m.label === `${label} second chunk`);
        release(label);
        const results = await mapping;
        assert.ok(isDense(results), `${label}: a packed array`); // first: node's deepEqual can leave an array holey
        assert.deepEqual(results, [value ?? label, ...squares.slice(1)], label);
      }
      assert.ok(isDense(await pool.map(square, range(10))), 'a short one too');
    });

    it('a chunk whose results stop being numbers, or mix values and Promises, comes back whole and in order', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const mixed = await pool.map(numberThenText, range(300), 150);
      assert.deepEqual(mixed, range(300).map((x) => (x < 100 ? x : `#${x}`)));
      assert.deepEqual(await pool.map(doubleSometimesLater, range(200), 100), range(200).map((x) => x * 2));
      const mixedInput: unknown[] = [...range(100), 'text', ...range(100)];
      assert.deepEqual(await pool.map(same, mixedInput, 201), mixedInput, 'a chunk that is not all numbers travels as it is');
    });

    it('mapAsync() returns an AsyncResult and calls callback or errorCallback with the whole result', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const seen: unknown[] = [];
      const ok = pool.mapAsync(square, range(10), { chunksize: 3, callback: (results) => seen.push(results), errorCallback: () => seen.push('never') });
      assert.ok(ok instanceof AsyncResult);
      assert.deepEqual(await ok.get(), range(10).map((x) => x * x));
      const bad = pool.mapAsync(failOnSeven, range(10), { callback: () => seen.push('never'), errorCallback: (e) => seen.push((e as Error).message) });
      await bad.wait();
      assert.equal(bad.successful(), false);
      assert.deepEqual(seen, [range(10).map((x) => x * x), 'seven is not allowed']);
      const empty: unknown[] = [];
      assert.deepEqual(await pool.mapAsync(square, [], { callback: (r) => empty.push(r) }).get(), []);
      assert.deepEqual(empty, [[]], 'an empty map calls back too');
    });
  });

  describe('Pool.starmap() and starmapAsync()', () => {
    it('spreads each argument list, in order, with a chunksize and callbacks', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const pairs: [number, number][] = range(30).map((i) => [i, 100 * i]);
      const expected = pairs.map(([a, b]) => a + b);
      assert.deepEqual(await pool.starmap(add, pairs), expected);
      assert.deepEqual(await pool.starmap(add, pairs, 4), expected);
      assert.deepEqual(await pool.starmap(add, new Set(pairs), { chunksize: 7 }), expected);
      const seen: unknown[] = [];
      const result = pool.starmapAsync(add, pairs, { callback: (r) => seen.push(r) });
      assert.deepEqual(await result.get(), expected);
      assert.deepEqual(seen, [expected]);
      await assert.rejects(pool.starmapAsync(throwRangeWithCode, [['x']]).get(), { name: 'RangeError', message: 'x', code: 'ERR_FIXTURE_RANGE' });
    });
  });

  describe('initializer and maxtasksperchild', () => {
    it('runs the initializer once per worker, with initargs (library objects arrive usable)', { timeout }, async (t) => {
      const counter = new Value('i', 0);
      const pool = poolFor(t, ctx, 2, { initializer: countInit, initargs: [counter, 'tag', { n: 42 }] });
      const seen = await pool.map(initArgsSeen, range(12), 1);
      for (const [args] of seen) assert.deepEqual(args, ['tag', { n: 42 }]);
      pool.close();
      await pool.join();
      // Every worker ran it before its first task (and before it could stop), and only once.
      assert.equal(counter.value, 2);
    });

    it('a worker whose task left a timer running still ends when it is done: maxtasksperchild replaces it, and close() + join() return (Python\'s worker exits)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { maxtasksperchild: 1 });
      const first = await pool.apply(leaveTimer, []);
      const second = await pool.apply(leaveTimer, []);
      assert.notEqual(second, first, 'the second task ran in a new worker');
      pool.close();
      await pool.join();
    });

    it('a Queue in initargs serves every worker, the replacements of recycled ones too, and outlives them all', { timeout }, async (t) => {
      const q = new ctx.Queue<number>();
      t.after(() => q.close());
      const pool = poolFor(t, ctx, 2, { initializer: keepQueue, initargs: [q], maxtasksperchild: 1 });
      assert.deepEqual(await pool.map(putIntoKept, range(8), 1), range(8));
      pool.close();
      await pool.join();
      const got: number[] = [];
      for (let i = 0; i < 8; i++) got.push(await q.get({ timeout: 10_000 }));
      assert.deepEqual(got.sort((a, b) => a - b), range(8));
      q.putNowait(99);
      assert.equal(await q.get({ timeout: 10_000 }), 99, 'the queue is still whole here after 8 workers that held it exited');
    });

    it('close() at once: the initializer still runs in every worker; without one, join() ends the workers still starting', { timeout }, async (t) => {
      const counter = new Value('i', 0);
      const pool = poolFor(t, ctx, 2, { initializer: countInit, initargs: [counter, 'tag', { n: 1 }] });
      pool.close();
      await pool.join();
      assert.equal(counter.value, 2);
      // No worker can be ready before an event-loop turn: both are ended while they start.
      const bare = poolFor(t, ctx, 2);
      bare.close();
      await bare.join();
      assert.deepEqual(bare.stats().workers, { total: 0, busy: 0, idle: 0 });
      assert.deepEqual(bare.stats().tasks, { queued: 0, running: 0, completed: 0, failed: 0 });
    });

    it('maxtasksperchild: a worker is replaced after that many tasks (distinct workers afterwards)', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { maxtasksperchild: 2 });
      const idents = await pool.map(workerIdent, range(6), 1);
      assert.equal(idents.length, 6);
      for (let i = 0; i < 6; i += 2) assert.equal(idents[i], idents[i + 1], `tasks ${i} and ${i + 1} share a worker: ${idents}`);
      assert.equal(new Set(idents).size, 3, `three workers ran two tasks each: ${idents}`);
      if (backend === 'process') assert.ok(await allGone([idents[0]!, idents[2]!], 5000), 'the worn-out workers exited');
      assert.equal(pool.stats().workers.total, 1);
      // close(), not terminate(): terminating a worker thread while its replacement starts can crash
      // the process in the native addon (see programs.test.ts, 'terminate() right after ...').
      pool.close();
      await pool.join();
    });

    it('several functions, given as functions and as { module, name } written anew at each call, each reach every worker, replacements included', { timeout }, async (t) => {
      // A function crosses to a worker once and then as a number: a worker that is new (here
      // after every 3 tasks) must be told again, and two references to one export are one function.
      const pool = poolFor(t, ctx, 1, { maxtasksperchild: 3 });
      const squareRef = () => ({ module: new URL('../fixtures/pool/targets.ts', import.meta.url).href, name: 'square' });
      const calls = range(12).map((i) => (i % 3 === 0 ? pool.apply(square, [i]) : i % 3 === 1 ? pool.apply(squareRef() as unknown as typeof square, [i]) : pool.apply(add, [i, 1])));
      assert.deepEqual(await Promise.all(calls), range(12).map((i) => (i % 3 === 2 ? i + 1 : i * i)));
      assert.deepEqual(await pool.map(same, ['a', 'b'], 1), ['a', 'b']);
      pool.close();
      await pool.join();
    });

    it('a { module, name } naming no export, or one that is not a function, rejects with ERR_MP_EXPORT_NOT_FOUND; the pool goes on', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const module = new URL('../fixtures/pool/targets.ts', import.meta.url).href;
      const ref = (name: string) => ({ module, name }) as unknown as typeof square;
      await assert.rejects(pool.apply(ref('noSuchExport'), [1]), { name: 'TypeError', code: 'ERR_MP_EXPORT_NOT_FOUND', message: /no export named 'noSuchExport'/ });
      await assert.rejects(pool.apply(ref('notAFunction'), [1]), { name: 'TypeError', code: 'ERR_MP_EXPORT_NOT_FOUND', message: /exports 'notAFunction' as number, not a function/ });
      assert.equal(await pool.apply(square, [3]), 9);
    });

    it('rejects bad options at once, naming them', { timeout }, () => {
      assert.throws(() => new ctx.Pool(0), { name: 'RangeError', message: /`processes`.*positive integer/ });
      assert.throws(() => new ctx.Pool(1.5), RangeError);
      assert.throws(() => new ctx.Pool(1, { maxtasksperchild: 0 }), { name: 'RangeError', message: /maxtasksperchild/ });
      assert.throws(() => new ctx.Pool(1, { maxMemoryPerChild: -1 }), { name: 'RangeError', message: /maxMemoryPerChild/ });
      assert.throws(() => new ctx.Pool(1, { retries: -1 }), { name: 'RangeError', message: /retries/ });
      assert.throws(() => new ctx.Pool(1, { initargs: 'x' as unknown as unknown[] }), { name: 'TypeError', message: /initargs/ });
      assert.throws(() => new ctx.Pool(1, { initializer: (() => {}) as () => void }), TypeError);
    });
  });

  describe('Pool.stats()', () => {
    it('counts workers busy and idle, tasks queued, running, completed and failed', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      assert.deepEqual(pool.stats(), { workers: { total: 2, busy: 0, idle: 2 }, tasks: { queued: 0, running: 0, completed: 0, failed: 0 } });
      const a = pool.applyAsync(blockTask, [channel.path, 'stats-a']);
      const b = pool.applyAsync(blockTask, [channel.path, 'stats-b']);
      await Promise.all([started('stats-a'), started('stats-b')]);
      const c = pool.applyAsync(square, [3]);
      const d = pool.applyAsync(square, [4]);
      assert.deepEqual(pool.stats(), { workers: { total: 2, busy: 2, idle: 0 }, tasks: { queued: 2, running: 2, completed: 0, failed: 0 } });
      release('stats-a');
      release('stats-b');
      await Promise.all([a.get(), b.get(), c.get(), d.get()]);
      await assert.rejects(pool.apply(throwMyError, ['x']), { name: 'MyError' });
      assert.deepEqual(pool.stats(), { workers: { total: 2, busy: 0, idle: 2 }, tasks: { queued: 0, running: 0, completed: 4, failed: 1 } });
    });
  });

  describe('close(), join(), terminate(), await using', () => {
    it('join() before close() rejects with ERR_MP_POOL_RUNNING', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await assert.rejects(pool.join(), { name: 'ProcessError', code: 'ERR_MP_POOL_RUNNING', message: /close\(\).*before join\(\)/ });
    });

    it('a call after close() is refused with ERR_MP_POOL_NOT_RUNNING', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      pool.close();
      assert.throws(() => pool.applyAsync(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING', message: /closed.*no new tasks/ });
      assert.throws(() => pool.mapAsync(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING' });
      assert.throws(() => pool.starmapAsync(add, [[1, 2]]), { code: 'ERR_MP_POOL_NOT_RUNNING' });
      await assert.rejects(pool.apply(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING' });
      await assert.rejects(pool.map(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING' });
      assert.throws(() => pool.imap(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING' }, 'at the call, not at the first next()');
      assert.throws(() => pool.imapUnordered(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING' });
      await pool.join();
    });

    it('close() lets running and queued tasks finish; then join() resolves and the workers are gone', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const first = pool.applyAsync(blockTask, [channel.path, 'close-first', 1]);
      const { ident } = await started('close-first');
      const queued = [2, 3, 4].map((x) => pool.applyAsync(square, [x]));
      pool.close();
      let joined = false;
      const joining = pool.join().then(() => (joined = true));
      assert.equal(first.ready(), false);
      release('close-first');
      await joining;
      assert.equal(joined, true);
      assert.equal(await first.get(), 1);
      assert.deepEqual(await Promise.all(queued.map((r) => r.get())), [4, 9, 16]);
      assert.equal(pool.stats().workers.total, 0);
      if (backend === 'process') assert.ok(await allGone([ident as number], 5000));
    });

    it('join(timeout) rejects with TimeoutError while a task runs, join({ signal }) with the reason; the pool goes on closing', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const running = pool.applyAsync(blockTask, [channel.path, 'join-timeout', 5]);
      await started('join-timeout');
      pool.close();
      await assertTimesOutAndAborts((options) => pool.join(options), 20, /^Pool\.join\(\): the pool's workers still run after 20 ms \(1, 1 of them on a task\)\. terminate\(\) ends them at once\.$/);
      assert.equal(running.ready(), false, 'the task still runs');
      release('join-timeout');
      await pool.join({ timeout: 20_000 });
      assert.equal(await running.get(), 5);
      assert.equal(pool.stats().workers.total, 0);
    });

    it('terminate() rejects running and queued tasks, and join() resolves', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const running = pool.applyAsync(blockTask, [channel.path, 'terminate-running']);
      const { ident } = await started('terminate-running');
      const queued = pool.applyAsync(square, [2]);
      pool.terminate();
      await assert.rejects(running.get(), (error: ProcessError) => {
        assert.equal(error.code, 'ERR_MP_POOL_TERMINATED', String(error));
        assert.match(error.message, /terminated/);
        return true;
      });
      await assert.rejects(queued.get(), { code: 'ERR_MP_POOL_TERMINATED', message: /terminated before this task ran/ });
      await pool.join();
      assert.equal(pool.stats().workers.total, 0);
      if (backend === 'process') assert.ok(await allGone([ident as number], 5000));
      assert.throws(() => pool.applyAsync(square, [1]), { code: 'ERR_MP_POOL_NOT_RUNNING', message: /terminated/ });
    });

    it('`await using` terminates the pool at the end of the block, as Python\'s `with`', { timeout }, async () => {
      let result: AsyncResult<unknown>;
      let ident: unknown;
      {
        await using pool = new ctx.Pool(1);
        result = pool.applyAsync(blockTask, [channel.path, 'using']);
        ({ ident } = await started('using'));
      }
      assert.equal(result.ready(), true);
      await assert.rejects(result.get(), ProcessError);
      if (backend === 'process') assert.ok(await allGone([ident as number], 5000));
    });
  });
});

describe('ThreadPool and multiproc/dummy', () => {
  it('ThreadPool, getContext(\'thread\').Pool and dummy.Pool run tasks on worker threads of this process', { timeout }, async (t) => {
    for (const Class of [ThreadPool, getContext('thread').Pool, DummyPool]) {
      const pool = new Class(1);
      t.after(() => pool.terminate());
      const where = await pool.apply(whereAmI);
      assert.deepEqual([where.thread, where.pid], [true, process.pid], Class.name);
      assert.deepEqual(await pool.map(square, [1, 2]), [1, 4]);
      pool.close();
      await pool.join();
    }
  });

  it('Pool with { context: \'thread\' } runs on threads too; the default is processes', { timeout }, async (t) => {
    const threads = new (getContext().Pool)(1, { context: 'thread' });
    const processes = new (getContext().Pool)(1);
    t.after(() => {
      threads.terminate();
      processes.terminate();
    });
    assert.equal((await threads.apply(whereAmI)).thread, true);
    assert.equal((await processes.apply(whereAmI)).thread, false);
  });
});
