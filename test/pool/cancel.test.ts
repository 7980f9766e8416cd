// Per-call { timeout, signal } on both backends: the timeout counts from the task's start, not its
// submission; a timed-out or aborted task sees currentTask().signal fire inside its worker, and a
// task that ignores it has its worker killed after abortGraceMs and replaced; a queued task that is
// aborted is simply removed. Tasks block on the TestChannel; the only waits for time are the
// timeouts under test, asserted with lower bounds.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { setTimeout as outlast } from 'node:timers/promises';
import { forEachBackend } from '../helpers/backends.ts';
import { TestChannel, type Message } from '../helpers/channel.ts';
import { allGone, killStrays } from '../helpers/processes.ts';
import { RawValue, TimeoutError, type MapOptions, type Pool } from '../../src/index.ts';
import { poolFor } from '../fixtures/pool/harness.ts';
import { blockItem, blockTask, countRun, ignoreAbort, square, squareOrBlock, stopOnAbort, workerIdent } from '../fixtures/pool/targets.ts';

/** A task module that loads until the test releases it (see the fixture). */
const slowLoad = new URL('../fixtures/pool/slow-load.ts', import.meta.url).href;

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

/** Whether a message matching `match` has already arrived (it does not wait for one). */
async function arrived(match: (m: Message) => boolean): Promise<boolean> {
  const none = Symbol('none');
  return (await Promise.race([channel.next(match), Promise.resolve(none)])) !== none;
}

/** Whether `promise` has settled by now (it does not wait for it). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([promise.then(() => true, () => true), Promise.resolve(pending)])) !== pending;
}

/** An item of squareOrBlock(): a number (squared at once) or a chunk held until released. */
type Item = Parameters<typeof squareOrBlock>[0];

/**
 * One map-style call of the pool over `items`, with squareOrBlock: `done` settles as the call does;
 * `yielded` holds what imap/imapUnordered yielded before they threw, `callbackErrors` what the
 * errorCallback of mapAsync/starmapAsync was given.
 */
interface MapRun {
  done: Promise<unknown>;
  yielded?: unknown[];
  callbackErrors?: unknown[];
}

function drain(results: AsyncIterable<unknown>): MapRun {
  const yielded: unknown[] = [];
  // Iterating at once: imap() submits its chunks at the first next().
  const done = (async () => {
    for await (const value of results) yielded.push(value);
  })();
  return { done, yielded };
}

function withErrorCallback(start: (errorCallback: (error: unknown) => void) => Promise<unknown>): MapRun {
  const callbackErrors: unknown[] = [];
  return { done: start((error) => callbackErrors.push(error)), callbackErrors };
}

const asArgs = (items: Item[]): [Item][] => items.map((item) => [item]);

type MapCall = (pool: Pool, items: Item[], options: MapOptions) => MapRun;

/** The map-style calls, in pairs that run side by side in one test (a Pool of 2). */
const mapCallPairs: [string, MapCall][][] = [
  [
    ['map', (pool, items, options) => ({ done: pool.map(squareOrBlock, items, options) })],
    ['mapAsync', (pool, items, options) => withErrorCallback((errorCallback) => pool.mapAsync(squareOrBlock, items, { ...options, errorCallback }).get())],
  ],
  [
    ['starmap', (pool, items, options) => ({ done: pool.starmap(squareOrBlock, asArgs(items), options) })],
    ['starmapAsync', (pool, items, options) => withErrorCallback((errorCallback) => pool.starmapAsync(squareOrBlock, asArgs(items), { ...options, errorCallback }).get())],
  ],
  [
    ['imap', (pool, items, options) => drain(pool.imap(squareOrBlock, items, options))],
    ['imapUnordered', (pool, items, options) => drain(pool.imapUnordered(squareOrBlock, items, options))],
  ],
];

const mapCalls = new Map(mapCallPairs.flat());

/**
 * The map-style calls whose AbortSignal is tested below, in pairs as above (map's is tested with
 * blockItem in "per-call AbortSignal", imap's in streaming.test.ts).
 */
const abortCallPairs: [string, MapCall][][] = [
  ['mapAsync', 'starmapAsync'],
  ['starmap', 'imapUnordered'],
].map((pair) => pair.map((method) => [method, mapCalls.get(method) as MapCall]));

forEachBackend((ctx, backend) => {
  describe('per-call timeout', () => {
    it('counts from the task\'s start: a short task queued behind a long one does not time out', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const long = pool.applyAsync(blockTask, [channel.path, 'long', 'long done']);
      await started('long');
      const submitted = performance.now();
      const short = pool.applyAsync(square, [3], { timeout: 1000 });
      // Longer than the short task's timeout passes while it waits in the queue.
      await short.wait(1500);
      assert.ok(performance.now() - submitted >= 1400);
      assert.equal(short.ready(), false, 'the queued task has not timed out');
      assert.equal(pool.stats().tasks.queued, 1);
      release('long');
      assert.equal(await long.get(), 'long done');
      assert.equal(await short.get(), 9, 'it ran well within its own timeout once started');
    });

    it('counts from the task\'s start, after its module loaded: a slow import does not time it out', { timeout }, async (t) => {
      process.env.MP_TEST_CHANNEL = channel.path; // before the pool: its workers take the environment as it is
      const pool = poolFor(t, ctx, 1);
      const result = pool.applyAsync({ module: slowLoad, name: 'loaded' }, [], { timeout: 300 });
      await channel.event('loading', (m) => m.label === 'slow-load');
      // Longer than the timeout passes while the worker loads the task's module.
      await result.wait(800);
      assert.equal(result.ready(), false, 'the task has not timed out while its module loaded');
      release('slow-load');
      assert.equal(await result.get(), 'loaded');
    });

    it('a task past its timeout rejects with TimeoutError; its currentTask().signal fires in the worker', { timeout }, async (t) => {
      // A long grace: the task stops by itself, however slowly a loaded machine lets it report that.
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 30_000 });
      const before = performance.now();
      const result = pool.applyAsync(stopOnAbort, [channel.path, 'timed-out'], { timeout: 200 });
      const { ident, hasSignal } = await started('timed-out');
      assert.equal(hasSignal, true, 'currentTask().signal is an AbortSignal inside the task');
      await assert.rejects(result.get(), (error: Error) => {
        assert.ok(error instanceof TimeoutError, String(error));
        assert.match(error.message, /longer than its timeout of 200 ms \(counted from its start\)/);
        return true;
      });
      assert.ok(performance.now() - before >= 195, 'not before its timeout');
      const aborted = await channel.event('aborted', (m) => m.label === 'timed-out');
      assert.match(String(aborted.reason), /timeout of 200 ms/);
      // The pool goes on, on a fresh worker: a task that was stopped may have left odd state behind.
      const next = await pool.apply(workerIdent);
      assert.notEqual(next, ident);
      assert.equal(await pool.apply(square, [4]), 16);
      assert.deepEqual([pool.stats().tasks.failed, pool.stats().workers.total], [1, 1]);
    });

    it('stats() counts a task that timed out as failed, not also running, while its worker is still being stopped', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 60_000 }); // the worker stays in its grace period for the whole test
      const result = pool.applyAsync(ignoreAbort, [channel.path, 'stats-timed-out'], { timeout: 100 });
      await started('stats-timed-out');
      const queued = pool.applyAsync(square, [2]);
      await assert.rejects(result.get(), TimeoutError);
      // The worker is busy stopping it (not idle), but the caller's task is over.
      assert.deepEqual(pool.stats(), { workers: { total: 1, busy: 1, idle: 0 }, tasks: { queued: 1, running: 0, completed: 0, failed: 1 } });
      pool.terminate(); // ends the stubborn worker now
      await assert.rejects(queued.get(), { code: 'ERR_MP_POOL_TERMINATED' });
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 0, failed: 2 });
    });

    it('a task that ignores its signal has its worker killed after abortGraceMs, and replaced', { timeout }, async (t) => {
      const grace = 300;
      const pool = poolFor(t, ctx, 1, { abortGraceMs: grace });
      const result = pool.applyAsync(ignoreAbort, [channel.path, 'stubborn'], { timeout: 100 });
      const { ident } = await started('stubborn');
      await assert.rejects(result.get(), TimeoutError);
      const timedOut = performance.now();
      const next = await pool.apply(workerIdent);
      assert.notEqual(next, ident, 'a new worker ran the next task');
      assert.ok(performance.now() - timedOut >= grace - 5, 'the old worker had its grace period first');
      if (backend === 'process') assert.ok(await allGone([ident as number], 5000), 'the old worker process is gone');
      assert.equal(pool.stats().workers.total, 1);
    });
  });

  describe('per-call timeout on the map-style calls', () => {
    const limit = 200;
    for (const pair of mapCallPairs) {
      const methods = pair.map(([method]) => method);
      it(`${methods.join(' and ')}: a chunk past its timeout, counted from that chunk's start, rejects the call with TimeoutError; the pool goes on`, { timeout }, async (t) => {
        const pool = poolFor(t, ctx, 2, { abortGraceMs: 100 }); // a held chunk ignores its signal: its worker is killed, and replaced
        // Both workers busy, so that every chunk of the calls waits in the queue. (A pool whose
        // workers cannot start fails these tasks: the test then fails at once, with the pool's error.)
        const aheads = methods.map((method) => `${backend}-${method}-ahead`);
        const blocking = aheads.map((label) => pool.applyAsync(blockTask, [channel.path, label]));
        await Promise.race([Promise.all(aheads.map(started)), Promise.all(blocking.map((result) => result.get()))]);
        // Chunks of one: 1 and 2 return at once, the third is held (it outlives its timeout).
        const calls = pair.map(([method, run]) => run(pool, [1, 2, { channel: channel.path, label: `${backend}-${method}-held` }], { chunksize: 1, timeout: limit }));
        // The one wait for time: longer than the timeout passes while every chunk waits in the queue.
        await outlast(limit + 150);
        for (const [i, call] of calls.entries()) assert.equal(await settled(call.done), false, `${methods[i]}: no chunk timed out while it waited in the queue`);
        const released = performance.now();
        aheads.forEach(release);
        assert.deepEqual(await Promise.all(blocking.map((result) => result.get())), aheads);
        for (const [i, call] of calls.entries()) {
          await assert.rejects(call.done, (error: Error & { code?: string }) => {
            assert.ok(error instanceof TimeoutError, `${methods[i]}: ${String(error)}`);
            assert.equal(error.code, 'ERR_MP_TIMEOUT');
            assert.match(error.message, new RegExp(`longer than its timeout of ${limit} ms \\(counted from its start\\)`));
            return true;
          });
          const elapsed = performance.now() - released;
          assert.ok(elapsed >= limit - 5, `${methods[i]} rejected ${elapsed.toFixed(0)} ms after its chunks could start: the clock starts with the held chunk`);
          // imapUnordered yields in completion order: 1 and 4 (in either order, on two workers) came before the timeout.
          if (call.yielded) assert.deepEqual([...call.yielded].sort(), [1, 4], `${methods[i]}: the results before the timed-out chunk came first`);
          if (call.callbackErrors) {
            assert.equal(call.callbackErrors.length, 1);
            assert.ok(call.callbackErrors[0] instanceof TimeoutError, `${methods[i]}: errorCallback got the TimeoutError`);
          }
        }
        assert.deepEqual(await pool.map(square, [1, 2, 3, 4, 5], 1), [1, 4, 9, 16, 25]);
        assert.equal(pool.stats().workers.total, 2);
      });
    }
  });

  describe('per-call AbortSignal', () => {
    it('a queued task that is aborted is removed: it rejects with the reason and never runs', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const runs = new RawValue('i', 0);
      const long = pool.applyAsync(blockTask, [channel.path, 'ahead']);
      await started('ahead');
      const controller = new AbortController();
      const queued = pool.applyAsync(countRun, [runs, channel.path, 'never'], { signal: controller.signal });
      assert.equal(pool.stats().tasks.queued, 1);
      const reason = new Error('changed my mind');
      controller.abort(reason);
      await assert.rejects(queued.get(), (error) => error === reason);
      assert.equal(pool.stats().tasks.queued, 0);
      release('ahead');
      await long.get();
      // Pool(1) runs in order: had the aborted task run, it would have run before this one.
      assert.equal(await pool.apply(countRun, [runs, channel.path, 'after']), 'after');
      await channel.event('ran', (m) => m.label === 'after');
      assert.equal(runs.value, 1, 'only the later task ran');
      assert.equal(await arrived((m) => m.event === 'ran' && m.label === 'never'), false);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the pool removed its abort listener');
    });

    it('a running task that is aborted rejects with AbortError, or the reason given; its signal fires; the pool goes on', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 30_000 }); // the task stops by itself (see above)
      const first = new AbortController();
      const plain = pool.applyAsync(stopOnAbort, [channel.path, 'abort-plain'], { signal: first.signal });
      await started('abort-plain');
      first.abort();
      await assert.rejects(plain.get(), { name: 'AbortError' });
      assert.match(String((await channel.event('aborted', (m) => m.label === 'abort-plain')).reason), /abort/i);

      const second = new AbortController();
      const reasoned = pool.applyAsync(stopOnAbort, [channel.path, 'abort-reason'], { signal: second.signal });
      await started('abort-reason');
      const reason = new RangeError('enough');
      second.abort(reason);
      await assert.rejects(reasoned.get(), (error) => error === reason);
      assert.equal((await channel.event('aborted', (m) => m.label === 'abort-reason')).reason, 'enough');

      assert.equal(await pool.apply(square, [6]), 36);
      assert.equal(pool.stats().tasks.failed, 2);
    });

    it('an already-aborted signal rejects at once, and the task never runs; stats() counts it failed, as one aborted in the queue', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const runs = new RawValue('i', 0);
      const reason = new Error('too late');
      await assert.rejects(pool.apply(countRun, [runs, channel.path, 'pre-aborted'], { signal: AbortSignal.abort(reason) }), (error) => error === reason);
      assert.equal(await pool.apply(square, [2]), 4);
      assert.equal(runs.value, 0);
      assert.deepEqual({ ...pool.stats().tasks }, { queued: 0, running: 0, completed: 1, failed: 1 });
    });

    it('aborting a map rejects it and removes its chunks that had not started', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2, { abortGraceMs: 100 });
      const controller = new AbortController();
      const items = ['m1', 'm2', 'm3', 'm4'].map((label) => ({ channel: channel.path, label }));
      const mapping = pool.map(blockItem, items, { chunksize: 1, signal: controller.signal });
      await Promise.all([started('m1'), started('m2')]);
      assert.equal(pool.stats().tasks.queued, 2);
      controller.abort(new Error('stop the map'));
      await assert.rejects(mapping, { message: 'stop the map' });
      assert.equal(pool.stats().tasks.queued, 0);
      // The two running chunks ignore their signal: their workers are killed and replaced.
      assert.deepEqual(await pool.map(square, [1, 2, 3]), [1, 4, 9]);
      assert.equal(await arrived((m) => m.event === 'started' && (m.label === 'm3' || m.label === 'm4')), false);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    });

    it('a task aborted while its worker still loads its module never runs, once the module is loaded', { timeout }, async (t) => {
      process.env.MP_TEST_CHANNEL = channel.path; // before the pool: its workers take the environment as it is
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 60_000 }); // the worker is not killed: it decides by itself
      const runs = new RawValue('i', 0);
      const controller = new AbortController();
      const result = pool.applyAsync({ module: slowLoad, name: 'countLoaded' }, [runs], { signal: controller.signal });
      await channel.event('loading', (m) => m.label === 'slow-load');
      const reason = new Error('not needed any more');
      controller.abort(reason);
      await assert.rejects(result.get(), (error) => error === reason);
      release('slow-load');
      // Pool(1): this runs on the worker that replaces the aborted task's, once that one has
      // finished with it (ran it or not) and exited, long before abortGraceMs.
      assert.equal(await pool.apply(square, [3]), 9);
      assert.equal(runs.value, 0, 'the aborted task never ran');
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 1, failed: 1 });
    });

    it('a task aborted while its module loads: a task sent after it to the same worker runs all the same, on another worker', { timeout }, async (t) => {
      process.env.MP_TEST_CHANNEL = channel.path;
      const pool = poolFor(t, ctx, 1, { abortGraceMs: 100 }); // the loading worker is killed soon after the abort
      const runs = new RawValue('i', 0);
      const controller = new AbortController();
      const aborted = pool.applyAsync({ module: slowLoad, name: 'countLoaded' }, [runs], { signal: controller.signal });
      const behind = pool.applyAsync({ module: slowLoad, name: 'countLoaded' }, [runs]); // sent ahead to the same worker
      await channel.event('loading', (m) => m.label === 'slow-load');
      controller.abort(new Error('not needed any more'));
      await assert.rejects(aborted.get(), /not needed any more/);
      // The replacement worker loads the module for the task taken back (the first never finishes loading).
      await channel.event('loading', (m) => m.label === 'slow-load');
      release('slow-load');
      assert.equal(await behind.get(), 'loaded');
      assert.equal(runs.value, 1, 'the aborted task never ran; the one behind it ran once');
    });

    it('one signal shared by a map of many chunks and by many calls holds one listener, prints no MaxListenersExceededWarning, and aborts them all', { timeout }, async (t) => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on('warning', onWarning);
      t.after(() => process.off('warning', onWarning));
      const pool = poolFor(t, ctx, 1);
      const items = Array.from({ length: 40 }, (_, i) => i);
      const first = new AbortController();
      const mapping = pool.map(square, items, { chunksize: 1, signal: first.signal });
      const applies = items.slice(0, 12).map((i) => pool.apply(square, [i], { signal: first.signal }));
      assert.equal(getEventListeners(first.signal, 'abort').length, 1);
      assert.deepEqual(await mapping, items.map((x) => x * x));
      assert.deepEqual(await Promise.all(applies), items.slice(0, 12).map((x) => x * x));
      assert.equal(getEventListeners(first.signal, 'abort').length, 0, 'the listener goes with the last task');

      // Aborted while queued behind a blocked task: every chunk and call rejects with the reason.
      const ahead = pool.applyAsync(blockTask, [channel.path, 'shared-signal-ahead']);
      await started('shared-signal-ahead');
      const second = new AbortController();
      const runs = new RawValue('i', 0);
      const calls = [
        pool.starmap(countRun, items.map((): [RawValue<'i'>, string, string] => [runs, channel.path, 'never']), { chunksize: 1, signal: second.signal }),
        ...items.slice(0, 12).map(() => pool.apply(countRun, [runs, channel.path, 'never'], { signal: second.signal })),
      ];
      assert.equal(getEventListeners(second.signal, 'abort').length, 1);
      const reason = new Error('all of them');
      second.abort(reason);
      for (const call of calls) await assert.rejects(call, (error) => error === reason);
      release('shared-signal-ahead');
      await ahead.get();
      assert.equal(await pool.apply(square, [5]), 25);
      assert.equal(runs.value, 0, 'no aborted task ran');
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 40 + 12 + 1 + 1, failed: 40 + 12 });
      await new Promise((resolve) => setImmediate(resolve)); // a warning is emitted on the next tick
      assert.deepEqual(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning').map(String), []);
    });

    it('a task that ends normally leaves no listener on its signal', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const controller = new AbortController();
      assert.equal(await pool.apply(square, [5], { signal: controller.signal, timeout: 60_000 }), 25);
      assert.deepEqual(await pool.map(square, [1, 2, 3], { signal: controller.signal, timeout: 60_000 }), [1, 4, 9]);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
      controller.abort();
      assert.equal(pool.stats().tasks.failed, 0, 'aborting after the end changes nothing');
    });
  });

  describe('per-call AbortSignal on the map-style calls', () => {
    for (const pair of abortCallPairs) {
      const methods = pair.map(([method]) => method);
      it(`${methods.join(' and ')}: aborting while a chunk runs rejects the call with the signal's reason, after the results before it; the pool goes on`, { timeout }, async (t) => {
        const pool = poolFor(t, ctx, 2, { abortGraceMs: 100 }); // a held chunk ignores its signal: its worker is killed, and replaced
        // Chunks of one, queued in call order: 1 and 2 return at once, the third is held. Once one
        // worker holds the first call's third chunk, the other runs all the rest, one at a time (no
        // task with a signal is sent ahead): when both held chunks have started, the results of 1 and
        // 2 of both calls have come back. (A call that ends before that fails the test at once.)
        const calls = pair.map(([method, run]) => {
          const controller = new AbortController();
          const held = `${backend}-${method}-abort-held`;
          const call = run(pool, [1, 2, { channel: channel.path, label: held }], { chunksize: 1, signal: controller.signal });
          return { ...call, method, controller, held, reason: new Error(`stop the ${method}`) };
        });
        await Promise.race([
          Promise.all(calls.map(({ held }) => started(held))),
          ...calls.map(({ done, method }) => done.then((value) => assert.fail(`${method} ended before its held chunk started: ${String(value)}`))),
        ]);
        const yieldedBefore = new Map(calls.map((call) => [call, call.yielded && [...call.yielded]]));
        for (const { done, method, yielded } of calls) {
          assert.equal(await settled(done), false, `${method} waits for its held chunk`);
          if (yielded) assert.deepEqual([...yielded].sort(), [1, 4], `${method} yielded the results that came back`);
        }
        for (const { controller, reason } of calls) controller.abort(reason);
        for (const call of calls) {
          const { done, method, reason, yielded, callbackErrors } = call;
          await assert.rejects(done, (error) => {
            assert.equal(error, reason, `${method} rejects with its signal's reason itself: ${String(error)}`);
            return true;
          });
          // imapUnordered: what it yielded before the abort, and nothing after.
          if (yielded) assert.deepEqual(yielded, yieldedBefore.get(call), `${method}: the results before the abort, nothing more`);
          if (callbackErrors) assert.deepEqual(callbackErrors.map((error) => error === reason), [true], `${method}: errorCallback got the reason once`);
        }
        assert.equal(pool.stats().tasks.queued, 0);
        // The held chunks ignore their signal: their workers are killed after abortGraceMs, and replaced.
        assert.deepEqual(await pool.map(square, [1, 2, 3, 4, 5], 1), [1, 4, 9, 16, 25]);
        assert.equal(pool.stats().workers.total, 2);
        for (const { method, callbackErrors } of calls) {
          if (callbackErrors) assert.equal(callbackErrors.length, 1, `${method}: errorCallback once, also after its worker was killed`);
        }
      });
    }

    it(`${abortCallPairs.flat().map(([method]) => method).join(', ')}: an already-aborted signal rejects at once, and no chunk runs`, { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const label = (method: string) => `${backend}-${method}-pre-aborted`;
      for (const [method, run] of abortCallPairs.flat()) {
        const signal = AbortSignal.abort(); // no reason given: an AbortError
        const call = run(pool, [1, { channel: channel.path, label: label(method), ran: true, value: 0 }, 3], { chunksize: 1, signal });
        // Nothing to wait for: the call has settled before the event loop gets to any I/O.
        const pending = Symbol('pending');
        const outcome = await Promise.race([
          call.done.then((value) => assert.fail(`${method} fulfilled: ${String(value)}`), (error: unknown) => error),
          new Promise((resolve) => setImmediate(resolve, pending)),
        ]);
        assert.notEqual(outcome, pending, `${method} rejected at once`);
        assert.equal(outcome, signal.reason, `${method} rejects with the signal's reason`);
        assert.equal((outcome as Error).name, 'AbortError');
        if (call.yielded) assert.deepEqual(call.yielded, [], `${method} yielded nothing`);
        if (call.callbackErrors) assert.deepEqual(call.callbackErrors.map((error) => error === signal.reason), [true], `${method}: errorCallback got the reason once`);
        const { queued, running, completed } = pool.stats().tasks;
        assert.deepEqual({ queued, running, completed }, { queued: 0, running: 0, completed: 0 }, `${method} submitted nothing`);
      }
      // Pool(1) runs in order: had a chunk of the calls above been queued, it would have run before this one.
      const after = { channel: channel.path, label: `${backend}-after-pre-aborted`, ran: true, value: 'after' };
      assert.deepEqual(await pool.map(squareOrBlock, [after]), ['after']);
      await channel.event('ran', (m) => m.label === after.label);
      for (const [method] of abortCallPairs.flat()) {
        assert.equal(await arrived((m) => m.event === 'ran' && m.label === label(method)), false, `${method}: its chunk never ran`);
      }
      assert.deepEqual(await pool.map(square, [1, 2, 3, 4, 5], 1), [1, 4, 9, 16, 25]);
      assert.equal(pool.stats().workers.total, 1);
    });
  });
});
