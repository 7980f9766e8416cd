// The manager's Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier proxies
// across processes (and threads). Children report through a manager Queue; a child sends its
// blocking call before its report, so the test knows the call waits in the server when the report
// arrives (the server takes one connection's requests in order). Timed waits assert the outcome
// and a lower bound only.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { BrokenBarrierError, Empty, Event, ProcessError, TimeoutError, Value, partial } from '../../src/index.ts';
import { assertNoLeftovers, joinedCleanly, managerFor, startEach, take, timed } from '../fixtures/managers/harness.ts';
import {
  barrierParty,
  awaitEvent,
  barrierPartyCounting,
  countRound,
  failRound,
  holdLock,
  holdRLockTwice,
  holdSemaphore,
  incrementUnderLock,
  setReadyAndNotify,
  waitForCondition,
  waitForEvent,
} from '../fixtures/managers/targets.ts';

const timeout = 60_000;

after(() => assertNoLeftovers());

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: ProcessError) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

forEachBackend((ctx, backend) => {
  describe('LockProxy', () => {
    it('hold() is `with lock:` for Lock and Semaphore proxies: held in the block, released at its end; a timeout rejects with TimeoutError', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const lock = await m.Lock();
      {
        await using held = await lock.hold();
        void held;
        assert.equal(await lock.locked(), true);
        await assert.rejects(lock.hold(10), (error: Error) => error instanceof TimeoutError && /^Lock\.hold\(\): not acquired within 10 ms\.$/.test(error.message));
      }
      assert.equal(await lock.locked(), false, 'released at the end of the block');
      const slots = await m.Semaphore(1);
      {
        await using slot = await slots.hold();
        void slot;
        assert.equal(await slots.getValue(), 0);
      }
      assert.equal(await slots.getValue(), 1);
    });

    it('makes 4 processes\' read-modify-writes of a dict counter exclusive: the count is exact', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const lock = await m.Lock();
      const d = await m.dict<string, number>({ count: 0 });
      const times = 25;
      await joinedCleanly(startEach(ctx, incrementUnderLock, Array.from({ length: 4 }, () => [lock, d, 'count', times] as [typeof lock, typeof d, string, number])));
      assert.equal(await d.get('count'), 4 * times);
      assert.equal(await lock.locked(), false);
    });

    it('acquire(false) and acquire(true, ms) give false while another process holds it; anyone may release a Lock', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const lock = await m.Lock();
      const q = await m.Queue<string>();
      await joinedCleanly(startEach(ctx, holdLock, [[lock, q]]));
      assert.equal(await q.get(), 'held');
      assert.equal(await lock.locked(), true);
      assert.equal(await lock.acquire(false), false);
      const waited = await timed(() => lock.acquire(true, 50));
      assert.equal(waited.value, false);
      assert.ok(waited.ms >= 40, `acquire(true, 50) gave up after ${waited.ms} ms`);
      const optioned = await timed(() => lock.acquire(true, { timeout: 50 }));
      assert.equal(optioned.value, false, 'acquire(true, { timeout }) as the library\'s own Lock takes it');
      assert.ok(optioned.ms >= 40, `acquire(true, { timeout: 50 }) gave up after ${optioned.ms} ms`);
      await assert.rejects(lock.acquire(true, Number.NaN), RangeError);
      assert.equal(await lock.acquire(true, -5), false, 'a negative timeout waits not at all, as for the library\'s own Lock');
      await assert.rejects(lock.acquire('yes' as never), TypeError);
      await lock.release(); // a plain Lock has no owner, as in Python
      assert.equal(await lock.acquire(false), true);
      await lock.release();
      await rejectsWithCode(lock.release(), 'ERR_MP_LOCK_NOT_HELD');
    });
  });

  describe('RLock proxy', () => {
    it('lets its owner take it again, stays held until released as often, and rejects release() by a non-owner', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const rlock = await m.RLock();
      const q = await m.Queue<string>();
      const [step1, step2] = [await m.Event(), await m.Event()];
      const child = startEach(ctx, holdRLockTwice, [[rlock, q, step1, step2]]);
      assert.equal(await q.get(), 'held twice');
      assert.equal(await rlock.acquire(false), false, 'another process (or thread) does not own it');
      await rejectsWithCode(rlock.release(), 'ERR_MP_LOCK_NOT_OWNED');
      await step1.set();
      assert.equal(await q.get(), 'released once');
      assert.equal(await rlock.acquire(false), false, 'still held once');
      await step2.set();
      assert.equal(await q.get(), 'released');
      await joinedCleanly(child);
      assert.equal(await rlock.acquire(false), true);
      assert.equal(await rlock.acquire(false), true, 'and this process may take it again too');
      await rlock.release();
      await rlock.release();
      assert.equal(await rlock.locked(), false);
    });
  });

  describe('SemaphoreProxy', () => {
    it('lets in at most `value` processes at once, and the rest when they leave', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const sem = await m.Semaphore(2);
      const q = await m.Queue<number>();
      const go = await m.Event();
      const children = startEach(ctx, holdSemaphore, [0, 1, 2, 3].map((id) => [sem, q, go, id] as [typeof sem, typeof q, typeof go, number]));
      const first = await take(q, 2);
      assert.equal(await sem.getValue(), 0);
      assert.equal(await sem.acquire(false), false);
      assert.equal(await q.qsize(), 0, 'no third process got in');
      await go.set();
      const rest = await take(q, 2);
      await joinedCleanly(children);
      assert.deepEqual([...first, ...rest].sort(), [0, 1, 2, 3]);
      assert.equal(await sem.getValue(), 2);
    });

    it('a Semaphore may be released above its start value; a BoundedSemaphore rejects that with ERR_MP_SEMAPHORE_OVER_RELEASED', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const sem = await m.Semaphore(1);
      await sem.release();
      assert.equal(await sem.getValue(), 2);
      const bounded = await m.BoundedSemaphore(1);
      await rejectsWithCode(bounded.release(), 'ERR_MP_SEMAPHORE_OVER_RELEASED');
      assert.equal(await bounded.acquire(), true);
      const waited = await timed(() => bounded.acquire(true, 50));
      assert.equal(waited.value, false);
      assert.ok(waited.ms >= 40, `acquire(true, 50) gave up after ${waited.ms} ms`);
      await bounded.release();
      assert.equal(await bounded.getValue(), 1);
    });

    it('a Semaphore refuses a negative or fractional value, and release(n) an n below 1, as Python does', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      await assert.rejects(m.Semaphore(-1), { name: 'RangeError', message: /^Semaphore\(\): expected `value` to be an integer of at least 0, got -1/ });
      await assert.rejects(m.BoundedSemaphore(1.5), { name: 'RangeError', message: /^BoundedSemaphore\(\): expected `value`/ });
      await assert.rejects(m.Semaphore('2' as never), { name: 'TypeError' });
      const sem = await m.Semaphore(0);
      await assert.rejects(sem.release(-2), { name: 'RangeError', message: /^Semaphore\.release\(\): expected `n` to be an integer of at least 1, got -2/ });
      assert.deepEqual([await sem.getValue(), await sem.acquire(false)], [0, false]);
    });
  });

  describe('EventProxy', () => {
    it('set() wakes the processes waiting in wait(), which give true', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const e = await m.Event();
      const q = await m.Queue<unknown[]>();
      const children = startEach(ctx, waitForEvent, [0, 1, 2].map((id) => [e, q, id] as [typeof e, typeof q, number]));
      const waiting = await take(q, 3);
      assert.deepEqual(waiting.map(([what]) => what), ['waiting', 'waiting', 'waiting']);
      assert.equal(await e.isSet(), false);
      assert.equal(await q.qsize(), 0, 'nobody woke before set()');
      await e.set();
      const woke = await take(q, 3);
      await joinedCleanly(children);
      assert.deepEqual(woke.map(([what, , result]) => [what, result]), [['woke', true], ['woke', true], ['woke', true]]);
      assert.deepEqual(woke.map(([, id]) => id).sort(), [0, 1, 2]);
    });

    it('wait(ms) gives false when nobody sets it; clear() unsets it', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const e = await m.Event();
      const waited = await timed(() => e.wait(50));
      assert.equal(waited.value, false);
      assert.ok(waited.ms >= 40, `wait(50) gave up after ${waited.ms} ms`);
      assert.equal((await timed(() => e.wait({ timeout: 30 }))).value, false);
      await e.set();
      assert.equal(await e.wait(50), true);
      assert.equal(await e.wait({ timeout: 50 }), true);
      await assert.rejects(e.wait(Number.NaN), RangeError);
      await e.clear();
      assert.equal(await e.isSet(), false);
    });
  });

  describe('ConditionProxy', () => {
    it("a wait() that takes the RLock back while another task of its caller holds it adds its levels to that task's: both release cleanly", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const cond = await m.Condition();
      await cond.acquire();
      const waited = cond.wait(); // it gives the lock up in the server...
      await cond.acquire(); // ...so this call (another task of this caller, as it were) takes it fresh
      await cond.notify();
      assert.equal(await waited, true, 'notified: it took the lock back, re-entering');
      await cond.release();
      await cond.release();
      await rejectsWithCode(cond.release(), 'ERR_MP_LOCK_NOT_HELD');
    });

    it('notify() wakes one waiting process and notifyAll() the rest; each gets the lock back', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const cond = await m.Condition();
      const q = await m.Queue<unknown[]>();
      const children = startEach(ctx, waitForCondition, [0, 1, 2].map((id) => [cond, q, id] as [typeof cond, typeof q, number]));
      assert.deepEqual((await take(q, 3)).map(([what]) => what), ['waiting', 'waiting', 'waiting']);
      await cond.acquire();
      await cond.notify();
      await cond.release();
      const [first] = await take(q, 1);
      assert.equal(first?.[0], 'notified');
      assert.equal(first?.[2], true);
      await assert.rejects(q.get(true, 100), Empty, 'notify() woke only one');
      await cond.acquire();
      await cond.notifyAll();
      await cond.release();
      const rest = await take(q, 2);
      await joinedCleanly(children);
      assert.deepEqual([first, ...rest].map((r) => r?.[1]).sort(), [0, 1, 2]);
    });

    it("waitFor(predicate, timeout) runs the predicate here between waits (Python's wait_for)", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const cond = await m.Condition();
      const ns = await m.Namespace({ ready: false });
      await cond.acquire();
      assert.equal(await cond.waitFor(async () => (await ns.get('ready')) as boolean, 30), false, 'the predicate still false when the time ran out');
      const children = startEach(ctx, setReadyAndNotify, [[cond, ns]]);
      assert.equal(await cond.waitFor(async () => (await ns.get('ready')) as boolean, 20_000), true);
      assert.equal(await cond.waitFor(() => 'at once'), 'at once', 'a true predicate does not wait');
      await assert.rejects(cond.waitFor('ready' as never), { name: 'TypeError', message: /expected a predicate function/ });
      await cond.release();
      await joinedCleanly(children);
    });

    it("Condition(lock) uses the manager's own Lock: held through either proxy, here and in a child; other locks are refused", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const lock = await m.Lock();
      const cond = await m.Condition(lock);
      await cond.acquire();
      assert.equal(await lock.locked(), true, 'acquiring the condition acquires its lock');
      assert.equal(await lock.acquire(false), false);
      await cond.release();
      assert.equal(await lock.locked(), false);
      const q = await m.Queue<unknown[]>();
      const children = startEach(ctx, waitForCondition, [[cond, q, 7]]);
      assert.deepEqual(await take(q, 1), [['waiting', 7]]);
      assert.equal(await lock.locked(), false, 'wait() released the lock');
      await lock.acquire(); // the lock's own proxy: the condition is owned through it
      await cond.notify();
      await lock.release();
      assert.deepEqual(await take(q, 1), [['notified', 7, true]]);
      await joinedCleanly(children);
      const rlock = await m.RLock();
      const reentrant = await m.Condition(rlock);
      await reentrant.acquire();
      await rlock.acquire();
      await rlock.release();
      await reentrant.release();
      await assert.rejects(m.Condition((await m.Event()) as never), { name: 'TypeError', message: /Condition\(lock\): expected a Lock or RLock of this same manager \(await manager\.Lock\(\)\), got a proxy of its Event/ });
      await assert.rejects(m.Condition(new ctx.Lock() as never), { name: 'TypeError', message: /Condition\(lock\): expected a Lock or RLock of this same manager.*got an instance of Lock/s });
    });

    it('notify()/wait() without its lock reject with ERR_MP_LOCK_NOT_OWNED; wait(ms) gives false and keeps the lock', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const cond = await m.Condition();
      await rejectsWithCode(cond.notify(), 'ERR_MP_LOCK_NOT_OWNED');
      await rejectsWithCode(cond.wait(10), 'ERR_MP_LOCK_NOT_OWNED');
      await cond.acquire();
      await cond.acquire(); // its lock is an RLock, as in Python
      const waited = await timed(() => cond.wait(50));
      assert.equal(waited.value, false);
      assert.ok(waited.ms >= 40, `wait(50) gave up after ${waited.ms} ms`);
      await cond.notify(); // still the owner, at both levels
      await cond.release();
      await cond.release();
      await rejectsWithCode(cond.release(), 'ERR_MP_LOCK_NOT_HELD');
    });
  });

  describe("a proxy wait's AbortSignal", () => {
    // Each wait is sent, then another call of the same proxy: served in order, its answer means
    // the wait is on in the server.
    it('ends a Queue get() and put() in the server: they reject with the reason and take or add nothing', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<string>(1);
      const controller = new AbortController();
      const got = q.get({ signal: controller.signal });
      await q.qsize();
      const reason = new Error('stop getting');
      controller.abort(reason);
      await assert.rejects(got, (error) => error === reason);
      await q.put('kept');
      assert.equal(await q.qsize(), 1, 'the aborted get() took nothing');
      const putting = new AbortController();
      const put = q.put('never', { signal: putting.signal });
      await q.qsize();
      putting.abort(reason);
      await assert.rejects(put, (error) => error === reason);
      assert.deepEqual([await q.get(), await q.qsize()], ['kept', 0], 'the aborted put() added nothing');
      await assert.rejects(q.get({ signal: AbortSignal.abort(reason) }), (error) => error === reason, 'an aborted signal: no request at all');
      await assert.rejects(q.get({ signal: 'stop' as never }), { name: 'TypeError', message: /^Queue\.get\(\): expected `signal` to be an AbortSignal/ });
    });

    it('never loses what the wait got first: an abort that comes after the server answered leaves the result', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue<string>();
      await q.put('item');
      const controller = new AbortController();
      const got = q.get({ signal: controller.signal }); // sent now; the cancel goes after it
      controller.abort(new Error('too late'));
      assert.equal(await got, 'item');
      assert.equal(await q.qsize(), 0);
    });

    it('ends a Lock or Semaphore acquire(), an Event wait() and a Barrier wait() (which breaks it, as a local one); a Condition wait() refuses one', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const reason = new Error('stop waiting');
      const lock = await m.Lock();
      await lock.acquire();
      const controller = new AbortController();
      const acquiring = lock.acquire(true, { signal: controller.signal });
      await lock.locked();
      controller.abort(reason);
      await assert.rejects(acquiring, (error) => error === reason);
      await lock.release();
      assert.equal(await lock.locked(), false, 'the aborted acquire() did not take the lock');
      const early = new AbortController();
      await lock.acquire();
      const optionsFirst = lock.acquire({ timeout: 60_000, signal: early.signal } as never); // the library Lock's acquire({ timeout, signal }) form
      await lock.locked();
      early.abort(reason);
      await assert.rejects(optionsFirst, (error) => error === reason);
      await lock.release();
      const slots = await m.Semaphore(0);
      const sem = new AbortController();
      const taking = slots.acquire(true, { timeout: 60_000, signal: sem.signal });
      await slots.getValue();
      sem.abort(reason);
      await assert.rejects(taking, (error) => error === reason);
      await slots.release();
      assert.equal(await slots.getValue(), 1);
      const event = await m.Event();
      const ev = new AbortController();
      const waitingEvent = event.wait({ signal: ev.signal });
      await event.isSet();
      ev.abort(reason);
      await assert.rejects(waitingEvent, (error) => error === reason);
      const barrier = await m.Barrier(2);
      const bar = new AbortController();
      const atBarrier = barrier.wait({ signal: bar.signal });
      await barrier.nWaiting();
      bar.abort(reason);
      await assert.rejects(atBarrier, (error) => error === reason);
      assert.equal(await barrier.broken(), true);
      const cond = await m.Condition();
      await cond.acquire();
      await assert.rejects(cond.wait({ signal: new AbortController().signal } as never), { name: 'TypeError', message: /Condition\.wait\(\): takes no AbortSignal/ });
      await cond.release();
      const held = await m.Condition(lock);
      await lock.acquire();
      const condition = new AbortController();
      const acquiringCondition = held.acquire(true, { signal: condition.signal });
      await lock.locked(); // one connection to the manager: served after the acquire
      condition.abort(reason);
      await assert.rejects(acquiringCondition, (error) => error === reason);
      await lock.release();
    });
  });

  describe('BarrierProxy', () => {
    it('lets 3 processes through together, each with a distinct index 0..2', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const b = await m.Barrier(3);
      const q = await m.Queue<unknown[]>();
      const children = startEach(ctx, barrierParty, [0, 1, 2].map((id) => [b, q, id] as [typeof b, typeof q, number]));
      const reports = await take(q, 6);
      await joinedCleanly(children);
      const passed = reports.filter(([what]) => what === 'passed');
      assert.equal(passed.length, 3, JSON.stringify(reports));
      assert.deepEqual(passed.map(([, , index]) => index).sort(), [0, 1, 2]);
      assert.equal(await b.nWaiting(), 0);
    });

    it("Barrier(parties, null, timeout): parties() as Python's, and the default timeout breaks a lone waiter; an action that cannot cross is refused", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const b = await m.Barrier(2, null, 20);
      assert.equal(await b.parties(), 2);
      await assert.rejects(b.wait(), BrokenBarrierError, 'the default timeout of 20 ms passed');
      assert.equal(await b.broken(), true);
      assert.throws(() => m.Barrier(2, () => {}), { code: 'ERR_MP_TARGET_NOT_REFERENCEABLE', message: /SyncManager\.Barrier\(\) \(its action\)/ });
      await assert.rejects(m.create('Barrier', 2, 'not null'), { name: 'TypeError', message: /expected `action` to be a function exported by its module/ });
      await assert.rejects(m.Barrier(0), { name: 'TypeError', message: /`parties` to be a positive integer/ });
    });

    it('an action runs once per round, in the server, before any party is released (as in Python)', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const rounds = new Value('i', 0);
      const b = await m.Barrier(3, partial(countRound, rounds));
      const q = await m.Queue<unknown[]>();
      for (let round = 1; round <= 2; round++) {
        const children = startEach(ctx, barrierPartyCounting, [0, 1].map((id) => [b, q, id, rounds] as [typeof b, typeof q, number, typeof rounds]));
        await b.wait();
        assert.equal(rounds.value, round, 'the action ran before this party was released');
        const reports = await take(q, 2);
        await joinedCleanly(children);
        assert.deepEqual(reports.map(([what, , seen]) => [what, seen]), [['passed', round], ['passed', round]], 'each party saw the action done');
      }
    });

    it('a party that gives up while the action runs (its abort, its timeout) passes with its round, as Python re-checks under the lock', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const go = new Event();
      const b = await m.Barrier(2, partial(awaitEvent, go));
      const controller = new AbortController();
      const first = b.wait({ signal: controller.signal });
      await b.nWaiting(); // served after first's wait: it waits
      const last = b.wait(); // the round fills: the action runs, and waits for go
      await b.nWaiting();
      controller.abort(new Error('too late'));
      await b.broken(); // served after the cancel
      go.set();
      assert.deepEqual([await first, await last].sort(), [0, 1]);
      assert.equal(await b.broken(), false);
    });

    it('an action that throws breaks the barrier: the last party gets its error, the others BrokenBarrierError', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const rounds = new Value('i', 0);
      const b = await m.Barrier(2, failRound);
      const q = await m.Queue<unknown[]>();
      const [child] = startEach(ctx, barrierPartyCounting, [[b, q, 0, rounds] as [typeof b, typeof q, number, typeof rounds]]);
      while ((await b.nWaiting()) < 1) await new Promise((resolve) => setImmediate(resolve)); // the child waits first
      await assert.rejects(b.wait(), { name: 'RangeError', message: 'failRound: the action threw' });
      assert.deepEqual(await take(q, 1), [['broken', 0, 'BrokenBarrierError']]);
      await joinedCleanly([child!]);
      assert.equal(await b.broken(), true);
    });

    it('abort() breaks the waiting processes with BrokenBarrierError, and later waits too, until reset()', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const b = await m.Barrier(3);
      const q = await m.Queue<unknown[]>();
      const children = startEach(ctx, barrierParty, [0, 1].map((id) => [b, q, id] as [typeof b, typeof q, number]));
      assert.deepEqual((await take(q, 2)).map(([what]) => what), ['waiting', 'waiting']);
      assert.equal(await b.nWaiting(), 2);
      await b.abort();
      const broken = await take(q, 2);
      await joinedCleanly(children);
      assert.deepEqual(broken.map(([what, , name, isClass]) => [what, name, isClass]), [['broken', 'BrokenBarrierError', true], ['broken', 'BrokenBarrierError', true]]);
      assert.equal(await b.broken(), true);
      await assert.rejects(b.wait(), BrokenBarrierError);
      await b.reset();
      assert.equal(await b.broken(), false);
    });

    it('reset() breaks the parties waiting then, and the barrier works again afterwards', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const b = await m.Barrier(3);
      const q = await m.Queue<unknown[]>();
      const early = startEach(ctx, barrierParty, [0, 1].map((id) => [b, q, id] as [typeof b, typeof q, number]));
      await take(q, 2);
      await b.reset();
      assert.deepEqual((await take(q, 2)).map(([what, , name]) => [what, name]), [['broken', 'BrokenBarrierError'], ['broken', 'BrokenBarrierError']]);
      await joinedCleanly(early);
      const again = startEach(ctx, barrierParty, [2, 3].map((id) => [b, q, id] as [typeof b, typeof q, number]));
      await take(q, 2); // both wait
      const mine = await b.wait(); // the third party: everyone passes
      const reports = await take(q, 2);
      await joinedCleanly(again);
      assert.deepEqual(reports.map(([what]) => what), ['passed', 'passed']);
      assert.deepEqual([mine, ...reports.map(([, , index]) => index)].sort(), [0, 1, 2]);
    });

    it('wait(ms) that runs out breaks the barrier for everyone, as Python\'s does', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const b = await m.Barrier(2);
      const waited = await timed(() => b.wait(50));
      assert.ok(waited.error instanceof BrokenBarrierError, String(waited.error));
      assert.ok(waited.ms >= 40, `wait(50) gave up after ${waited.ms} ms`);
      assert.equal(await b.broken(), true);
    });
  });
});
