// The manager's Queue, JoinableQueue, Value and Array proxies across processes (and threads):
// FIFO order, Empty and Full (the library's own classes) with block false or a timeout, puts and
// gets that wait for each other across processes, taskDone()/join(), and Value/Array get/set/copy.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { Empty, Full, ProcessError, TimeoutError } from '../../src/index.ts';
import { assertNoLeftovers, joinedCleanly, managerFor, startEach, timed } from '../fixtures/managers/harness.ts';
import { consumeJoinable, putEach, putWhenRoom, setItems, setValue } from '../fixtures/managers/targets.ts';

const timeout = 60_000;

after(() => assertNoLeftovers());

forEachBackend((ctx, backend) => {
  describe('QueueProxy', () => {
    it('delivers what another process put, in order, values unchanged', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<unknown>();
      const items = [1, 'two', { three: [3n] }, new Map([[4, 'four']]), null];
      await joinedCleanly(startEach(ctx, putEach, [[q, items]]));
      assert.equal(await q.qsize(), items.length);
      const got = [];
      for (let i = 0; i < items.length; i++) got.push(await q.get());
      assert.deepEqual(got, items);
      assert.equal(await q.empty(), true);
    });

    it('a get() that waits is answered by another process\'s put()', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<string>();
      const got = q.get();
      await joinedCleanly(startEach(ctx, putEach, [[q, ['late']]]));
      assert.equal(await got, 'late');
    });

    it('get(false), getNowait() and get(true, ms) on an empty queue reject with Empty', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue();
      await assert.rejects(q.get(false), (error: Error & { code?: string }) => error instanceof Empty && error.code === 'ERR_MP_EMPTY' && /empty/.test(error.message));
      await assert.rejects(q.getNowait(), Empty);
      // The library's own class, made anew here: thrown with the stack of the code that awaits it.
      async function getsNothing() {
        await q.get(false);
      }
      await assert.rejects(getsNothing(), (error: Error) => error instanceof Empty && /^Empty: .*\n\s+at async getsNothing \(.*queues-values\.test\.ts/.test(error.stack ?? ''));
      const waited = await timed(() => q.get(true, 50));
      assert.ok(waited.error instanceof Empty, String(waited.error));
      assert.ok(waited.ms >= 40, `get(true, 50) gave up after ${waited.ms} ms`);
    });

    it('put(x, false), putNowait() and put(x, true, ms) on a full queue reject with Full; a put that waits goes in when another process takes an item', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<string>(1);
      const done = await m.Queue<string>();
      await q.put('first');
      assert.equal(await q.full(), true);
      await assert.rejects(q.put('no', false), (error: Error & { code?: string }) => error instanceof Full && error.code === 'ERR_MP_FULL');
      await assert.rejects(q.putNowait('no'), Full);
      const waited = await timed(() => q.put('no', true, 50));
      assert.ok(waited.error instanceof Full, String(waited.error));
      assert.ok(waited.ms >= 40, `put(x, true, 50) gave up after ${waited.ms} ms`);
      const child = startEach(ctx, putWhenRoom, [[q, 'second', done]]);
      assert.equal(await q.get(), 'first');
      assert.equal(await done.get(), 'put');
      await joinedCleanly(child);
      assert.equal(await q.get(), 'second');
      assert.equal(await q.qsize(), 0);
    });

    it("put() and get() also take the library Queue's options ({ block, timeout }); a bad timeout or block rejects", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<string>(1);
      await q.put('first', { timeout: 1000 });
      await assert.rejects(q.put('no', { block: false }), Full);
      const putWaited = await timed(() => q.put('no', { timeout: 50 }));
      assert.ok(putWaited.error instanceof Full, String(putWaited.error));
      assert.ok(putWaited.ms >= 40, `put(x, { timeout: 50 }) gave up after ${putWaited.ms} ms`);
      assert.equal(await q.get({ timeout: 1000 }), 'first');
      await assert.rejects(q.get({ block: false }), Empty);
      const getWaited = await timed(() => q.get({ timeout: 50 }));
      assert.ok(getWaited.error instanceof Empty, String(getWaited.error));
      assert.ok(getWaited.ms >= 40, `get({ timeout: 50 }) gave up after ${getWaited.ms} ms`);
      assert.equal((await timed(() => q.get(true, { timeout: 50 }))).error instanceof Empty, true);
      await assert.rejects(q.get(true, Number.NaN), (error: Error & { code?: string }) => error instanceof RangeError && error.code === 'ERR_MP_OUT_OF_RANGE' && /Queue\.get\(\)/.test(error.message));
      assert.equal((await timed(() => q.get(true, -1))).error instanceof Empty, true, 'a negative timeout waits not at all, as for the library\'s own Queue');
      await assert.rejects(q.get({ timeout: 'soon' as never }), (error: Error & { code?: string }) => error instanceof TypeError && error.code === 'ERR_MP_INVALID_ARGUMENT');
      await assert.rejects(q.get({ block: 'no' as never }), TypeError);
      await assert.rejects(q.get(50 as never), (error: Error) => error instanceof TypeError && /expected Python's \(block, timeout\) or options/.test(error.message));
      // A wait longer than Node's longest timer waits (it does not time out at once).
      const long = q.get(true, 2 ** 32);
      await q.put('late');
      assert.equal(await long, 'late');
    });
  });

  describe('JoinableQueue proxy', () => {
    it('join() resolves once another process has called taskDone() for every item; one taskDone() too many rejects', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.JoinableQueue<string>();
      const out = await m.list<unknown>();
      for (const item of ['a', 'b', 'c']) await q.put(item);
      let joined = false;
      const joining = q.join().then(() => (joined = true));
      await q.qsize(); // answered after join() reached the server
      assert.equal(joined, false, 'join() waits while items are unfinished');
      const child = startEach(ctx, consumeJoinable, [[q, 3, out]]);
      await joining;
      await joinedCleanly(child);
      assert.deepEqual(await out.copy(), ['a', 'b', 'c']);
      await q.join(); // nothing unfinished: at once
      await assert.rejects(q.taskDone(), (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_TASK_DONE_TOO_MANY');
    });

    it('join(ms) and join({ timeout }) reject with TimeoutError while items are unfinished', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.JoinableQueue<string>();
      await q.put('never done');
      const waited = await timed(() => q.join(50));
      assert.ok(waited.error instanceof TimeoutError, String(waited.error));
      assert.ok(waited.ms >= 40, `join(50) gave up after ${waited.ms} ms`);
      const optioned = await timed(() => q.join({ timeout: 50 }));
      assert.ok(optioned.error instanceof TimeoutError, String(optioned.error));
      assert.ok(optioned.ms >= 40, `join({ timeout: 50 }) gave up after ${optioned.ms} ms`);
    });
  });

  describe('ValueProxy', () => {
    it('get()/set() see another process\'s set(); the start value defaults to 0', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const v = await m.Value<number>('i', 5);
      assert.equal(await v.get(), 5);
      await joinedCleanly(startEach(ctx, setValue, [[v, 42]]));
      assert.equal(await v.get(), 42);
      const d = await m.Value<number>('d');
      assert.equal(await d.get(), 0);
      await d.set(2.5);
      assert.equal(await d.get(), 2.5);
    });
  });

  describe('ArrayProxy', () => {
    it('get()/set() with negative indices from another process; copy() is a plain array; length(); a bad index rejects', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const a = await m.Array<number>('i', [1, 2, 3]);
      await joinedCleanly(startEach(ctx, setItems, [[a, [[0, 10], [-1, 30]]]]));
      assert.equal(await a.get(-1), 30);
      assert.equal(await a.length(), 3);
      const copy = await a.copy();
      assert.deepEqual(copy, [10, 2, 30]);
      copy[1] = 99;
      assert.equal(await a.get(1), 2, 'copy() is detached');
      await assert.rejects(a.get(3), (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_INDEX_ERROR');
      await assert.rejects(a.set(-4, 1), (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_INDEX_ERROR');
      const zeros = await m.Array<number>('d', 4);
      assert.deepEqual(await zeros.copy(), [0, 0, 0, 0]);
    });

    it("holds items of its typecode, as Python's array.array: others reject with a TypeError", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      await assert.rejects(m.Array('i', [1, 'x']), { name: 'TypeError', message: /^Array\(\) \(item 1\): typecode 'i' holds an integer/ });
      await assert.rejects(m.Array('z', 2), { name: 'TypeError', code: 'ERR_MP_BAD_TYPECODE' });
      const ints = await m.Array<number>('i', 2);
      await assert.rejects(ints.set(0, 2.5), { name: 'TypeError', message: /^Array\.set\(\): typecode 'i' holds an integer/ });
      assert.deepEqual(await ints.copy(), [0, 0]);
      const longs = await m.Array<bigint>('q', [1, 2n] as bigint[]);
      assert.deepEqual(await longs.copy(), [1n, 2n], "'q' holds bigints, as a SharedArray('q') does");
      assert.deepEqual(await (await m.Array<string>('c', ['h', 105] as string[])).copy(), ['h', 'i']);
    });
  });
});
