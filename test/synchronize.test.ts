// Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier across real processes and
// worker threads: each behaviour is checked with the other side in another process (or thread),
// synchronized on the TestChannel, Events, Barriers and exits, never on sleeps. Timeouts are
// checked by their outcome and a lower bound on the elapsed time only.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { forEachBackend } from './helpers/backends.ts';
import type { Message } from './helpers/channel.ts';
import { testFile } from './helpers/test-file.ts';
import { BrokenBarrierError, ProcessError } from '../src/index.ts';
import { acquireAndReportWarnings, holdLock, incrementEach, takeThenDieUnnamed, tryThenRelease } from './fixtures/sync/locks.ts';
import { holdSlot, releaseSemaphore } from './fixtures/sync/semaphores.ts';
import { pulseEvent, waitForEvent } from './fixtures/sync/events.ts';
import { ackWhenFlagged, consumeBounded, produceBounded, setFlagAndNotifyAll, waitToBeNotified } from './fixtures/sync/conditions.ts';
import { abortBarrier, countAction, countActionRunsIn, failingAction, gatedAction, holdActionUntil, resetBarrier, waitAtBarrier, waitInRounds } from './fixtures/sync/barriers.ts';
import { useNestedObjects } from './fixtures/sync/travel.ts';
import { square } from './fixtures/pool/targets.ts';
import { killPrograms, runObjectsProgram, segmentsOf } from './fixtures/sync/leaks.ts';

const timeout = 30_000;
const file = testFile(killPrograms);
const { start, endAll } = file;

/** The `count` messages with `event === name` (and `label` in `labels`, when given). */
function events(name: string, count: number, labels?: string[]): Promise<Message[]> {
  return Promise.all(Array.from({ length: count }, () => file.channel.event(name, (m) => !labels || labels.includes(m.label as string))));
}

/** A unique label per test, so that a message left over by an earlier test never matches. */
let labels = 0;
const label = (what: string) => `${what}-${++labels}`;

/** Asserts that `error` is a ProcessError with `code` (and a message matching `message`). */
function isProcessError(code: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  };
}

/** Collects this process's warnings while the test runs. */
function captureWarnings(t: { after: (fn: () => void) => void }): (Error & { code?: string })[] {
  const warnings: (Error & { code?: string })[] = [];
  const listener = (warning: Error & { code?: string }) => warnings.push(warning);
  process.on('warning', listener);
  t.after(() => process.off('warning', listener));
  return warnings;
}

const since = (t0: number) => performance.now() - t0;

forEachBackend((ctx, backend) => {
  const many = backend === 'process' ? 'processes' : 'threads';
  const other = backend === 'process' ? 'another process' : 'another thread';

  describe('mutual exclusion', () => {
    const times = 10_000;
    it(`4 ${many} x ${times} increments under a Lock, an RLock and a Value's own lock give exactly ${4 * times} each`, { timeout }, async (t) => {
      t.after(endAll);
      const underLock = new ctx.RawValue('i', 0);
      const underRLock = new ctx.RawValue('i', 0);
      const value = new ctx.Value('i', 0);
      const lock = new ctx.Lock();
      const rlock = new ctx.RLock();
      const gate = new ctx.Barrier(4);
      const counters = [{ counter: underLock, lock }, { counter: underRLock, lock: rlock }, { counter: value }];
      const ps = Array.from({ length: 4 }, () => start(ctx, { target: incrementEach, args: [counters, times, gate] }));
      await Promise.all(ps.map((p) => p.join()));
      assert.deepEqual(ps.map((p) => p.exitCode), [0, 0, 0, 0]);
      assert.deepEqual([underLock.value, underRLock.value, value.value], [4 * times, 4 * times, 4 * times]);
      assert.deepEqual([lock.locked(), rlock.locked(), value.getLock().locked()], [false, false, false]);
    });
  });

  describe('Lock', () => {
    it('acquire(false) answers at once: true when free, false while held; locked() tells', { timeout }, () => {
      const lock = new ctx.Lock();
      assert.equal(lock.locked(), false);
      assert.equal(lock.acquire(false), true);
      assert.equal(lock.locked(), true);
      assert.equal(lock.acquire(false), false, 'a Lock is not recursive');
      lock.release();
      assert.equal(lock.locked(), false);
      assert.equal(lock.acquire(false), true);
      lock.release();
      assert.match(String(lock), /^<Lock\(owner=None\)>$/);
    });

    it(`release() works from ${other}; release() of an unlocked lock throws ERR_MP_LOCK_NOT_HELD`, { timeout }, async (t) => {
      t.after(endAll);
      const lock = new ctx.Lock();
      assert.throws(() => lock.release(), isProcessError('ERR_MP_LOCK_NOT_HELD', /^Lock\.release\(\): the lock is not held/));
      assert.equal(await lock.acquire(), true);
      const name = label('release');
      start(ctx, { target: tryThenRelease, args: [file.channel.path, lock, name] });
      const released = await file.channel.event('released-here', (m) => m.label === name);
      assert.equal(released.acquired, false, `acquire(false) in ${other} took a lock held here`);
      assert.equal(released.ok, true, `release() in ${other} failed: ${String(released.message)}`);
      assert.equal(lock.locked(), false);
      assert.throws(() => lock.release(), isProcessError('ERR_MP_LOCK_NOT_HELD'));
    });

    it(`while ${other} holds it: acquire(true, timeout) resolves false after the timeout, acquire({ signal }) rejects with the reason, and the lock works afterwards`, { timeout }, async (t) => {
      t.after(endAll);
      const lock = new ctx.Lock();
      const name = label('holder');
      start(ctx, { target: holdLock, args: [file.channel.path, lock, name] });
      await file.channel.event('holding', (m) => m.label === name);
      assert.equal(lock.locked(), true);
      assert.equal(lock.acquire(false), false);

      let t0 = performance.now();
      assert.equal(await lock.acquire(true, 150), false);
      assert.ok(since(t0) >= 150, `acquire(true, 150) gave up after ${since(t0)} ms`);
      t0 = performance.now();
      assert.equal(await lock.acquire(true, { timeout: 60 }), false);
      assert.ok(since(t0) >= 60, `acquire(true, { timeout: 60 }) gave up after ${since(t0)} ms`);

      const reason = new Error('stop waiting for the lock');
      const controller = new AbortController();
      const aborted = lock.acquire(true, { signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(aborted, (error) => error === reason);
      await assert.rejects(lock.acquire(true, { signal: AbortSignal.abort(reason) }), (error) => error === reason);
      assert.equal(lock.locked(), true, 'an aborted acquire() must not free the lock');

      // The aborted waits left the lock marked contended: the holder's release must still hand it on.
      const waiting = lock.acquire(true, { timeout: 20_000, signal: new AbortController().signal });
      file.channel.broadcast({ release: name });
      assert.equal(await waiting, true);
      await file.channel.event('let-go', (m) => m.label === name);
      lock.release();
      assert.equal(lock.locked(), false);
      assert.equal(lock.acquire(false), true);
      lock.release();
    });

    it('acquire(true, timeout) validates the timeout and rejects (never throws) when it is invalid; a negative one waits not at all, as in Python', { timeout }, async () => {
      const lock = new ctx.Lock();
      lock.acquire(false);
      assert.equal(await lock.acquire(true, -1), false);
      await assert.rejects(lock.acquire(true, 'soon' as unknown as number), TypeError);
      await assert.rejects(lock.acquire(true, Number.NaN), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE' }, 'NaN is a number that is no timeout, as killTree() says');
      lock.release();
    });
  });

  describe('RLock', () => {
    it(`its holder may acquire it again and must release it as many times; ${other} can neither take nor release it meanwhile`, { timeout }, async (t) => {
      t.after(endAll);
      const rlock = new ctx.RLock();
      assert.equal(rlock.acquire(false), true);
      assert.equal(await rlock.acquire(), true);
      assert.equal(await rlock.acquire(true, 10), true);
      const name = label('release');
      start(ctx, { target: tryThenRelease, args: [file.channel.path, rlock, name] });
      const released = await file.channel.event('released-here', (m) => m.label === name);
      assert.equal(released.acquired, false, `acquire(false) in ${other} took an RLock held here`);
      assert.deepEqual([released.ok, released.name, released.code], [false, 'ProcessError', 'ERR_MP_LOCK_NOT_OWNED']);
      rlock.release();
      rlock.release();
      assert.equal(rlock.locked(), true, 'still held after 2 of 3 releases');
      rlock.release();
      assert.equal(rlock.locked(), false);
      assert.throws(() => rlock.release(), isProcessError('ERR_MP_LOCK_NOT_OWNED', /^RLock\.release\(\): this thread does not hold the lock/));
    });
  });

  describe(backend === 'thread' ? 'a lock whose holder thread was terminated' : 'a lock whose holder was SIGKILLed', () => {
    // kill() of a thread child terminates its worker thread: the lock names the thread, whose id
    // this process keeps in its map of ended threads.
    const holderOf = (holder: { ident: number | undefined }, pid: unknown) => (backend === 'thread' ? `thread ${holder.ident} of this process \\(pid ${process.pid}\\), ended` : `pid ${pid}, died`);

    for (const kind of ['Lock', 'RLock'] as const) {
      it(`a waiter here recovers the ${kind} and gets a MP_LOCK_HOLDER_DIED warning naming the dead pid`, { timeout }, async (t) => {
        t.after(endAll);
        const warnings = captureWarnings(t);
        const lock = kind === 'Lock' ? new ctx.Lock() : new ctx.RLock();
        const name = label('doomed');
        const holder = start(ctx, { target: holdLock, args: [file.channel.path, lock, name] });
        const { pid } = await file.channel.event('holding', (m) => m.label === name);
        const waiting = lock.acquire(true, 20_000);
        holder.kill();
        await holder.join();
        assert.equal(holder.exitCode, -9);
        assert.equal(await waiting, true, 'the waiter did not get the lock of a dead holder');
        await nextTurn(); // emitWarning() delivers on process.nextTick
        const died = warnings.filter((w) => w.code === 'MP_LOCK_HOLDER_DIED');
        assert.equal(died.length, 1);
        assert.equal(died[0]?.name, 'MultiprocWarning');
        assert.match(died[0]?.message ?? '', new RegExp(`^${kind}\\.acquire\\(\\): the lock's holder, ${holderOf(holder, pid)} while holding it`));
        lock.release();
        assert.equal(lock.locked(), false);
      });
    }

    it('a waiter in another process recovers it and sees the warning', { timeout }, async (t) => {
      t.after(endAll);
      const lock = new ctx.Lock();
      const name = label('doomed');
      const holder = start(ctx, { target: holdLock, args: [file.channel.path, lock, name] });
      const { pid } = await file.channel.event('holding', (m) => m.label === name);
      const waiter = label('waiter');
      start(ctx, { target: acquireAndReportWarnings, args: [file.channel.path, lock, waiter, 20_000] });
      await file.channel.event('waiting', (m) => m.label === waiter);
      holder.kill();
      const acquired = await file.channel.event('acquired', (m) => m.label === waiter);
      assert.equal(acquired.acquired, true);
      const warnings = acquired.warnings as { code: string; message: string }[];
      assert.deepEqual(warnings.map((w) => w.code), ['MP_LOCK_HOLDER_DIED']);
      assert.match(warnings[0]?.message ?? '', new RegExp(`holder, ${holderOf(holder, pid)}`));
      assert.equal(lock.locked(), false);
    });

    it('a holder killed right after the atomic operation that took the lock, before anything else, is known by it and recovered', { timeout, skip: backend === 'thread' ? 'a worker thread cannot be ended between two statements that call nothing' : false }, async (t) => {
      t.after(endAll);
      const warnings = captureWarnings(t);
      const lock = new ctx.Lock();
      const holder = start(ctx, { target: takeThenDieUnnamed, args: [lock] });
      await holder.join();
      assert.equal(holder.exitCode, -9);
      assert.equal(await lock.acquire(true, 5000), true, 'the lock names no holder: nobody can recover it');
      await nextTurn();
      assert.deepEqual(warnings.map((w) => w.code), ['MP_LOCK_HOLDER_DIED']);
      assert.match(warnings[0]?.message ?? '', new RegExp(`holder, pid ${holder.pid}, died`));
      lock.release();
    });

    it('with waiters here and in another process, both get the lock in turn and exactly one recovers it', { timeout }, async (t) => {
      t.after(endAll);
      const warnings = captureWarnings(t);
      const lock = new ctx.Lock();
      const name = label('doomed');
      const holder = start(ctx, { target: holdLock, args: [file.channel.path, lock, name] });
      await file.channel.event('holding', (m) => m.label === name);
      const waiter = label('waiter');
      start(ctx, { target: acquireAndReportWarnings, args: [file.channel.path, lock, waiter, 20_000] });
      await file.channel.event('waiting', (m) => m.label === waiter);
      const waiting = lock.acquire(true, 20_000);
      holder.kill();
      assert.equal(await waiting, true);
      lock.release();
      const acquired = await file.channel.event('acquired', (m) => m.label === waiter);
      assert.equal(acquired.acquired, true);
      await nextTurn();
      const here = warnings.filter((w) => w.code === 'MP_LOCK_HOLDER_DIED').length;
      const there = (acquired.warnings as { code: string }[]).filter((w) => w.code === 'MP_LOCK_HOLDER_DIED').length;
      assert.equal(here + there, 1, `recovered ${here} time(s) here and ${there} time(s) in the other process`);
    });
  });

  describe('Semaphore and BoundedSemaphore', () => {
    it(`Semaphore(2) lets exactly 2 of 5 ${many} in at once`, { timeout }, async (t) => {
      t.after(endAll);
      const slots = new ctx.Semaphore(2);
      const lock = new ctx.Lock();
      const inside = new ctx.RawValue('i', 0);
      const most = new ctx.RawValue('i', 0);
      const twoInside = new ctx.Event();
      const gate = new ctx.Barrier(5);
      const ps = Array.from({ length: 5 }, () => start(ctx, { target: holdSlot, args: [slots, lock, inside, most, twoInside, gate] }));
      await Promise.all(ps.map((p) => p.join()));
      assert.deepEqual(ps.map((p) => p.exitCode), [0, 0, 0, 0, 0]);
      assert.equal(most.value, 2);
      assert.equal(inside.value, 0);
      assert.equal(slots.getValue(), 2);
    });

    it('acquire(false) and acquire(true, timeout) of Semaphore(0) give false, acquire({ signal }) rejects; release(n) adds n, even above the initial value', { timeout }, async () => {
      const semaphore = new ctx.Semaphore(0);
      assert.equal(semaphore.getValue(), 0);
      assert.equal(semaphore.acquire(false), false);
      const t0 = performance.now();
      assert.equal(await semaphore.acquire(true, 50), false);
      assert.ok(since(t0) >= 50, `acquire(true, 50) gave up after ${since(t0)} ms`);
      semaphore.release();
      semaphore.release(2);
      assert.equal(semaphore.getValue(), 3);
      assert.equal(semaphore.acquire(false), true);
      assert.equal(await semaphore.acquire(), true);
      assert.equal(semaphore.getValue(), 1);
      assert.equal(new ctx.Semaphore().getValue(), 1);
      const reason = new Error('no longer interested');
      const controller = new AbortController();
      const empty = new ctx.Semaphore(0);
      const aborted = empty.acquire(true, { signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(aborted, (error) => error === reason);
      empty.release();
      assert.equal(empty.acquire(false), true, 'an aborted acquire() must not take the value');
      // A number out of range is a RangeError, anything else a TypeError, as everywhere.
      assert.throws(() => new ctx.Semaphore(-1), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: /expected `value` to be an integer from 0/ });
      assert.throws(() => new ctx.BoundedSemaphore(1.5), RangeError);
      assert.throws(() => new ctx.Semaphore('2' as never), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT' });
      assert.throws(() => semaphore.release(0), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: /expected `n` to be a positive integer/ });
      assert.throws(() => semaphore.release('1' as never), TypeError);
      assert.throws(() => new ctx.Barrier(0), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: /`parties` to be an integer from 1/ });
      assert.throws(() => new ctx.Barrier(70_000), RangeError);
      assert.throws(() => new ctx.Barrier('3' as never), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT' });
    });

    it(`a release() in ${other} wakes a waiter here`, { timeout }, async (t) => {
      t.after(endAll);
      const semaphore = new ctx.Semaphore(0);
      const waiting = semaphore.acquire(true, 20_000);
      const name = label('sem');
      start(ctx, { target: releaseSemaphore, args: [file.channel.path, semaphore, name] });
      assert.equal(await waiting, true);
      assert.equal((await file.channel.event('sem-released', (m) => m.label === name)).ok, true);
      assert.equal(semaphore.getValue(), 0);
    });

    it(`BoundedSemaphore: release() above the initial value throws ERR_MP_SEMAPHORE_OVER_RELEASED, here and in ${other}; any Semaphore above SEM_VALUE_MAX`, { timeout }, async (t) => {
      t.after(endAll);
      const bounded = new ctx.BoundedSemaphore(2);
      assert.throws(() => bounded.release(), isProcessError('ERR_MP_SEMAPHORE_OVER_RELEASED', /^BoundedSemaphore\.release\(\): released too many times/));
      assert.equal(bounded.acquire(false), true);
      assert.throws(() => bounded.release(2), isProcessError('ERR_MP_SEMAPHORE_OVER_RELEASED'));
      bounded.release();
      assert.equal(bounded.getValue(), 2);
      // Any semaphore: past SEM_VALUE_MAX the value would wrap (Python: "released too many times").
      const full = new ctx.Semaphore(2 ** 31 - 2);
      full.release();
      assert.throws(() => full.release(), isProcessError('ERR_MP_SEMAPHORE_OVER_RELEASED', /^Semaphore\.release\(\): released too many times: the value would exceed SEM_VALUE_MAX/));
      assert.throws(() => full.release(2 ** 32), isProcessError('ERR_MP_SEMAPHORE_OVER_RELEASED'));
      assert.deepEqual([full.getValue(), full.acquire(false)], [2 ** 31 - 1, true]);
      const name = label('bounded');
      start(ctx, { target: releaseSemaphore, args: [file.channel.path, bounded, name] });
      const released = await file.channel.event('sem-released', (m) => m.label === name);
      assert.deepEqual([released.ok, released.name, released.code], [false, 'ProcessError', 'ERR_MP_SEMAPHORE_OVER_RELEASED']);
      assert.equal(bounded.getValue(), 2);
    });
  });

  describe('Event', () => {
    it(`set() wakes waiters in 3 other ${many}`, { timeout }, async (t) => {
      t.after(endAll);
      const event = new ctx.Event();
      const names = [label('w'), label('w'), label('w')];
      for (const name of names) start(ctx, { target: waitForEvent, args: [file.channel.path, event, name] });
      await events('waiting', 3, names);
      assert.equal(event.isSet(), false);
      event.set();
      const woken = await events('woken', 3, names);
      assert.deepEqual(woken.map((m) => [m.result, m.isSet]), [[true, true], [true, true], [true, true]]);
    });

    it(`a set() here or in ${other} wakes the waiters even when clear() follows at once (a pulse): wait() resolves true`, { timeout }, async (t) => {
      t.after(endAll);
      // Python: wait() "returns True if and only if the internal flag has been set to true, either
      // before the wait call or after the wait starts". The flag may be down again by the time a
      // waiter looks at it: the set() must not be lost.
      const event = new ctx.Event();
      const here = event.wait(5_000);
      event.set();
      event.clear();
      assert.equal(await here, true, 'a pulse in this process was lost');
      // Generous: the wait spans starting the pulsing child, which is slow on a loaded machine.
      const there = event.wait(60_000);
      const pulser = start(ctx, { target: pulseEvent, args: [event] });
      assert.equal(await there, true, `a pulse in ${other} was lost`);
      await pulser.join();
      assert.equal(event.isSet(), false);
    });

    it('wait(timeout) resolves false after the timeout; isSet(), set() and clear()', { timeout }, async () => {
      const event = new ctx.Event();
      assert.equal(event.isSet(), false);
      const t0 = performance.now();
      assert.equal(await event.wait(50), false);
      assert.ok(since(t0) >= 50, `wait(50) gave up after ${since(t0)} ms`);
      event.set();
      event.set();
      assert.equal(event.isSet(), true);
      assert.equal(await event.wait(), true);
      assert.equal(await event.wait(0), true);
      event.clear();
      assert.equal(event.isSet(), false);
      assert.equal(await event.wait(0), false);
      const reason = new Error('no longer interested');
      const controller = new AbortController();
      const waiting = event.wait({ signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(waiting, (error) => error === reason);
    });
  });

  describe('Condition', () => {
    // notify() does not wait for the waiters it wakes (Python's does): a thread that notifies and
    // then waits itself must not take the wakeup that was counted for the waiter already there.
    it(`a waiter that comes after a notify() does not take the wakeup meant for the one in ${other} (notify, then wait at once)`, { timeout }, async (t) => {
      t.after(endAll);
      const cond = new ctx.Condition(new ctx.Lock());
      const [flag, ack] = [new ctx.RawValue('i', 0), new ctx.RawValue('i', 0)];
      const inWait = new ctx.Event();
      const p = start(ctx, { target: ackWhenFlagged, args: [cond, flag, ack, inWait] });
      await inWait.wait();
      await cond.acquire(); // the child gave the lock up inside wait()
      flag.value = 1;
      cond.notifyAll();
      cond.release();
      // Waiting at once is the case under test; the woken child may take the lock first (then
      // there is no stolen wakeup to fear, and this waits for the lock as any waiter would).
      if (!cond.acquire(false)) await cond.acquire();
      const acked = await cond.waitFor(() => ack.value === 1, 20_000);
      cond.release();
      assert.equal(acked, true, `the child was notified and answered (${String(cond)})`);
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it(`a bounded buffer on Condition(Lock): 2 producers and 2 consumers in ${many} pass 2,000 items with notifyAll(), none left waiting`, { timeout }, async (t) => {
      t.after(endAll);
      const cond = new ctx.Condition(new ctx.Lock());
      const [filled, taken] = [new ctx.RawValue('i', 0), new ctx.RawValue('i', 0)];
      const procs = [
        ...[0, 1].map(() => start(ctx, { target: produceBounded, args: [cond, filled, 4, 1000] })),
        ...[0, 1].map(() => start(ctx, { target: consumeBounded, args: [cond, filled, taken, 1000] })),
      ];
      for (const p of procs) await p.join();
      assert.deepEqual([taken.value, filled.value, procs.map((p) => p.exitCode)], [2000, 0, [0, 0, 0, 0]]);
      assert.equal(String(cond), '<Condition(<Lock(owner=None)>, 0 waiting)>');
    });

    it(`notify(1) wakes exactly one of 3 waiting ${many}; notifyAll() wakes the other two`, { timeout }, async (t) => {
      t.after(endAll);
      const cond = new ctx.Condition();
      const ready = new ctx.RawValue('i', 0);
      const allReady = new ctx.Event();
      const phase = new ctx.RawValue('i', 0);
      const names = [label('c'), label('c'), label('c')];
      for (const name of names) start(ctx, { target: waitToBeNotified, args: [file.channel.path, cond, ready, 3, allReady, phase, name] });
      // The third waiter sets allReady while it holds the lock, which it gives up only inside
      // wait(): once we hold the lock, all three are waiting.
      await allReady.wait();
      await cond.acquire();
      phase.value = 1;
      cond.notify(1);
      cond.release();
      const first = await file.channel.event('notified', (m) => names.includes(m.label as string));
      assert.deepEqual([first.notified, first.phase], [true, 1]);
      await cond.acquire();
      phase.value = 2;
      cond.notifyAll();
      cond.release();
      const rest = await events('notified', 2, names);
      assert.deepEqual(rest.map((m) => [m.notified, m.phase]), [[true, 2], [true, 2]], 'notify(1) woke more than one waiter');
    });

    it('wait(timeout) resolves false after the timeout, and wait({ signal }) rejects, with the lock held again (at the same RLock depth)', { timeout }, async () => {
      const rlock = new ctx.RLock();
      const cond = new ctx.Condition(rlock);
      await cond.acquire();
      await cond.acquire();
      const t0 = performance.now();
      assert.equal(await cond.wait(50), false);
      assert.ok(since(t0) >= 50, `wait(50) gave up after ${since(t0)} ms`);
      cond.release();
      assert.equal(rlock.locked(), true, 'the RLock lost a level of recursion in wait()');
      cond.release();
      assert.equal(rlock.locked(), false);
      assert.throws(() => cond.release(), isProcessError('ERR_MP_LOCK_NOT_OWNED'));

      const lock = new ctx.Lock();
      const plain = new ctx.Condition(lock);
      assert.equal(plain.acquire(false), true);
      assert.equal(await plain.wait({ timeout: 10 }), false);
      assert.equal(lock.locked(), true);
      const reason = new Error('no longer interested');
      const controller = new AbortController();
      const waiting = plain.wait({ signal: controller.signal });
      assert.equal(lock.locked(), false, 'wait() gives the lock up while it waits');
      controller.abort(reason);
      await assert.rejects(waiting, (error) => error === reason);
      assert.equal(lock.locked(), true, 'an aborted wait() takes the lock back before it rejects');
      plain.release();
    });

    it('notify(), notifyAll() and wait() without holding the lock throw (or reject with) ERR_MP_LOCK_NOT_OWNED', { timeout }, async () => {
      const cond = new ctx.Condition(new ctx.Lock());
      const notOwned = isProcessError('ERR_MP_LOCK_NOT_OWNED', /^Condition\.(notify|wait)\(\): this thread does not hold the condition's lock/);
      assert.throws(() => cond.notify(), notOwned);
      assert.throws(() => cond.notifyAll(), notOwned);
      await assert.rejects(cond.wait(10), notOwned);
      assert.throws(() => new ctx.Condition({} as never), TypeError);
    });

    it(`waitFor(predicate, timeout) returns once ${other} makes the predicate true, or its last value after the timeout`, { timeout }, async (t) => {
      t.after(endAll);
      const cond = new ctx.Condition();
      const flag = new ctx.RawValue('i', 0);
      // We hold the lock until waitFor() waits, so the other side cannot notify too early.
      await cond.acquire();
      start(ctx, { target: setFlagAndNotifyAll, args: [cond, flag] });
      assert.equal(await cond.waitFor(() => flag.value === 1, 20_000), true);
      cond.release();

      await cond.acquire();
      const t0 = performance.now();
      assert.equal(await cond.waitFor(() => (flag.value === 2 ? 'two' : 0), 50), 0);
      assert.ok(since(t0) >= 50, `waitFor(predicate, 50) gave up after ${since(t0)} ms`);
      assert.equal(await cond.waitFor(() => 'already', 0), 'already');
      cond.release();
    });
  });

  describe('Barrier', () => {
    it(`3 parties in 3 ${many} get indices 0, 1 and 2; the action runs once, before any party goes on`, { timeout }, async (t) => {
      t.after(endAll);
      const runs = new ctx.RawValue('i', 0);
      countActionRunsIn(runs);
      const barrier = new ctx.Barrier(3, countAction);
      assert.deepEqual([barrier.parties, barrier.nWaiting, barrier.broken], [3, 0, false]);
      const names = [label('b'), label('b'), label('b')];
      for (const name of names) start(ctx, { target: waitAtBarrier, args: [file.channel.path, barrier, runs, name] });
      const passed = await events('passed', 3, names);
      assert.deepEqual(passed.map((m) => m.error), [undefined, undefined, undefined], String(passed.map((m) => m.message)));
      assert.deepEqual(passed.map((m) => m.index).sort(), [0, 1, 2]);
      assert.deepEqual(passed.map((m) => m.runs), [1, 1, 1], 'a party went on before the action ran, or it ran twice');
      assert.equal(runs.value, 1);
      assert.deepEqual([barrier.nWaiting, barrier.broken], [0, false]);
    });

    it(`Barrier(3) shared by 4 ${many} for 200 rounds: each round gives 0, 1 and 2 once, and runs the action once`, { timeout }, async (t) => {
      t.after(endAll);
      const rounds = 200;
      const runs = new ctx.RawValue('i', 0);
      const tickets = new ctx.RawValue('i', 0);
      const counts = new ctx.SharedArray('i', 4);
      const barrier = new ctx.Barrier(3, countAction);
      const ps = Array.from({ length: 4 }, () => start(ctx, { target: waitInRounds, args: [barrier, tickets, counts, runs, 3 * rounds] }));
      await Promise.all(ps.map((p) => p.join()));
      assert.deepEqual(ps.map((p) => p.exitCode), [0, 0, 0, 0]);
      assert.deepEqual(counts.toArray(), [rounds, rounds, rounds, 0], 'a round gave an index twice, or one out of range');
      assert.equal(runs.value, rounds);
    });

    it('nWaiting counts the parties waiting now; a barrier can be used again', { timeout }, async () => {
      const barrier = new ctx.Barrier(3);
      for (let round = 0; round < 2; round++) {
        const first = barrier.wait();
        assert.equal(barrier.nWaiting, 1);
        const second = barrier.wait();
        assert.equal(barrier.nWaiting, 2);
        const indices = await Promise.all([first, second, barrier.wait()]);
        assert.deepEqual(indices.sort(), [0, 1, 2]);
        assert.equal(barrier.nWaiting, 0);
      }
    });

    it(`a timeout breaks it: a waiter here and one in ${other} get BrokenBarrierError, and it stays broken until reset()`, { timeout }, async (t) => {
      t.after(endAll);
      const runs = new ctx.RawValue('i', 0);
      const barrier = new ctx.Barrier(3, undefined, 100);
      const name = label('b');
      start(ctx, { target: waitAtBarrier, args: [file.channel.path, barrier, runs, name] });
      await file.channel.event('arriving', (m) => m.label === name);
      // Our own wait has a long timeout: the other party's default 100 ms is what breaks it.
      await assert.rejects(barrier.wait(20_000), BrokenBarrierError);
      const passed = await file.channel.event('passed', (m) => m.label === name);
      assert.deepEqual([passed.error, passed.code], ['BrokenBarrierError', 'ERR_MP_BROKEN_BARRIER']);
      assert.deepEqual([barrier.broken, barrier.nWaiting], [true, 0], 'as in Python, a broken barrier has no waiting parties');
      await assert.rejects(barrier.wait(), /the barrier is broken.*Call reset\(\)/);
      barrier.reset();
      assert.deepEqual([barrier.broken, barrier.nWaiting], [false, 0]);
      let t0 = performance.now();
      await assert.rejects(barrier.wait(), BrokenBarrierError);
      assert.ok(since(t0) >= 100, `wait() with the barrier's timeout 100 broke after ${since(t0)} ms`);
      barrier.reset();
      t0 = performance.now();
      await assert.rejects(barrier.wait(30), BrokenBarrierError);
      assert.ok(since(t0) >= 30, `wait(30) broke after ${since(t0)} ms`);
      barrier.reset();
      await assert.rejects(barrier.wait({ signal: new AbortController().signal }), BrokenBarrierError, "options without a timeout keep the barrier's");
    });

    it(`abort() in ${other} breaks the barrier for a waiter here; reset() makes it usable again`, { timeout }, async (t) => {
      t.after(endAll);
      const barrier = new ctx.Barrier(2);
      const waiting = barrier.wait();
      start(ctx, { target: abortBarrier, args: [barrier] });
      await assert.rejects(waiting, (error: Error) => error instanceof BrokenBarrierError && /was broken/.test(error.message));
      assert.equal(barrier.broken, true);
      await assert.rejects(barrier.wait(), BrokenBarrierError);
      barrier.reset();
      assert.equal(barrier.broken, false);
      assert.deepEqual((await Promise.all([barrier.wait(), barrier.wait()])).sort(), [0, 1]);
    });

    it(`reset() in ${other} gives a waiter here BrokenBarrierError, and leaves the barrier usable`, { timeout }, async (t) => {
      t.after(endAll);
      const barrier = new ctx.Barrier(2);
      const waiting = barrier.wait();
      start(ctx, { target: resetBarrier, args: [barrier] });
      await assert.rejects(waiting, (error: Error) => error instanceof BrokenBarrierError && /was reset/.test(error.message));
      assert.deepEqual([barrier.broken, barrier.nWaiting], [false, 0]);
      assert.deepEqual((await Promise.all([barrier.wait(), barrier.wait()])).sort(), [0, 1]);
    });

    it('a party that arrives while the action runs waits for the next round', { timeout }, async () => {
      // As in Python, where the barrier drains before it fills again: the third wait() below belongs
      // to the second round, so it resolves only once a fourth party arrives, with index 0 or 1.
      let open!: () => void;
      let started!: () => void;
      const actionStarted = new Promise<void>((resolve) => (started = resolve));
      holdActionUntil(new Promise<void>((resolve) => (open = resolve)), started);
      const barrier = new ctx.Barrier(2, gatedAction);
      const first = barrier.wait();
      const second = barrier.wait(); // the last party: runs gatedAction, which waits for open()
      await actionStarted;
      const early = barrier.wait(5_000);
      open();
      assert.deepEqual((await Promise.all([first, second])).sort(), [0, 1]);
      // The early party is in the new round, alone: it cannot have resolved. (When it rejoins after
      // its wake is not ordered with the first round's parties: nWaiting may still read 0 here.)
      const none = Symbol('pending');
      assert.equal(await Promise.race([early, Promise.resolve(none)]), none, 'the early party waits for the next round');
      const late = barrier.wait(5_000);
      assert.deepEqual((await Promise.all([early, late])).sort(), [0, 1]);
      assert.equal(barrier.nWaiting, 0);
    });

    it('an aborted wait({ signal }) rejects with the reason and breaks the barrier for the other parties', { timeout }, async () => {
      const barrier = new ctx.Barrier(3);
      const other = barrier.wait();
      const reason = new Error('no longer interested');
      const controller = new AbortController();
      const mine = barrier.wait({ signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(mine, (error) => error === reason);
      await assert.rejects(other, BrokenBarrierError);
      assert.deepEqual([barrier.broken, barrier.nWaiting], [true, 0]);
    });

    it('an action that throws breaks the barrier: its party gets the error, the others BrokenBarrierError', { timeout }, async () => {
      const barrier = new ctx.Barrier(2, failingAction);
      const first = barrier.wait();
      await assert.rejects(barrier.wait(), /the barrier action failed on purpose/);
      await assert.rejects(first, BrokenBarrierError);
      assert.equal(barrier.broken, true);
    });
  });

  describe('objects passed as Process args', () => {
    it(`arrive usable in ${other}, nested in objects, arrays and Maps; a Value's lock travels with it`, { timeout }, async (t) => {
      t.after(endAll);
      const lock = new ctx.Lock();
      const valueLock = new ctx.Lock();
      const value = new ctx.Value('i', 7, { lock: valueLock });
      const event = new ctx.Event();
      const semaphore = new ctx.Semaphore(0);
      const rlock = new ctx.RLock();
      const cond = new ctx.Condition();
      const barrier = new ctx.Barrier(2);
      const array = new ctx.SharedArray('d', 3);
      lock.acquire(false);
      valueLock.acquire(false);
      start(ctx, {
        target: useNestedObjects,
        args: [
          file.channel.path,
          { nested: { deeper: { lock, value } }, list: [event, semaphore, rlock], map: new Map<string, unknown>([['cond', cond], ['barrier', barrier], ['array', array], ['valueLock', valueLock]]) },
          lock,
        ] as Parameters<typeof useNestedObjects>,
      });
      const mine = await barrier.wait();
      const used = await file.channel.event('used');
      assert.deepEqual(used, {
        event: 'used',
        lockFree: false,
        valueLockFree: false,
        sameLockObject: true,
        valueLockIsItsLock: true,
        rlock: true,
        cond: true,
        valueSeen: 7,
        index: 1 - mine,
      });
      assert.equal(value.value, 42);
      assert.deepEqual(array.toArray(), [0, 2.5, 0]);
      assert.equal(semaphore.getValue(), 1);
      assert.equal(event.isSet(), true);
      assert.deepEqual([rlock.locked(), cond.acquire(false)], [false, true]);
      cond.release();
      lock.release();
      valueLock.release();
    });
  });
});

describe('shared memory after the program ends', () => {
  it('no /dev/shm/mp-<pid>-* segment outlives a program that made every kind of lock here, in a child process and in a thread, and ended normally', { timeout }, async () => {
    const run = await runObjectsProgram('sync', 'return');
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.segments.length >= 3, `expected the arenas of the program, its process child and its thread child, got ${run.segments}`);
    assert.deepEqual(segmentsOf(run.pid), []);
  });
});

describe('a Condition over an RLock, used by two async tasks of one thread (one owner, as in Python)', () => {
  it("a waiter notified while another task holds the lock takes it back on top of that task's level: both release cleanly", { timeout }, async () => {
    const { Condition } = await import('../src/index.ts');
    const cond = new Condition();
    const items: string[] = [];
    await cond.acquire();
    const consumer = (async () => {
      while (items.length === 0) await cond.wait();
      const item = items.shift();
      cond.release();
      return item;
    })(); // it runs to its wait(), which gives the lock up
    await cond.acquire(); // the producer task
    items.push('item');
    cond.notify();
    while (items.length > 0) await nextTurn(); // the consumer took the lock back (re-entering it) and the item
    cond.release();
    assert.equal(await consumer, 'item');
    assert.equal(String(cond), '<Condition(<RLock(None, 0)>, 0 waiting)>');
  });
});

describe('a bad timeout', () => {
  it('is refused whether or not the wait would have ended at once (a free Lock, RLock or Semaphore)', async () => {
    const { Lock, RLock, Semaphore } = await import('../src/index.ts');
    for (const object of [new Lock(), new RLock(), new Semaphore(1)]) {
      const name = object.constructor.name;
      await assert.rejects(object.acquire(true, '5' as never), { name: 'TypeError', message: new RegExp(`^${name}\\.acquire\\(\\): expected `) });
      await assert.rejects(object.acquire(true, Number.NaN), { name: 'RangeError' });
      assert.equal(await object.acquire(true, 5), true, 'still free: the refused calls took nothing');
    }
  });

  it('given first, in place of `block` (acquire(100), acquire({ timeout: 100 })), is refused: it waited for ever', async () => {
    const { Condition, Lock, RLock, Semaphore } = await import('../src/index.ts');
    for (const object of [new Lock(), new RLock(), new Semaphore(1), new Condition()]) {
      const name = object.constructor.name;
      for (const first of [100, { timeout: 100 }, 'yes']) {
        assert.throws(() => object.acquire(first as never), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: new RegExp(`^${name}\\.acquire\\(\\): expected \`block\` to be true or false, got .*acquire\\(true, 100\\) or acquire\\(true, \\{ timeout: 100 \\}\\)\\.$`) });
      }
      assert.equal(object.acquire(false), true, 'still free: the refused calls took nothing');
    }
  });
});

describe("hold(): Python's `with lock:` as a `using` block", () => {
  it('Lock, RLock, Semaphore and Condition: acquired in the block, released at its end (also when it throws); a timeout rejects with TimeoutError', { timeout }, async () => {
    const { Lock, RLock, Semaphore, Condition, TimeoutError } = await import('../src/index.ts');
    const lock = new Lock();
    {
      using held = await lock.hold();
      assert.equal(lock.locked(), true);
      await assert.rejects(lock.hold(10), (error: Error & { code?: string }) => error instanceof TimeoutError && error.code === 'ERR_MP_TIMEOUT' && /^Lock\.hold\(\): not acquired within 10 ms\.$/.test(error.message));
      held[Symbol.dispose]();
      held[Symbol.dispose](); // once only: a second dispose does not release what another took
      assert.equal(lock.locked(), false);
      assert.equal(lock.acquire(false), true, 'taken by someone else meanwhile');
    }
    assert.equal(lock.locked(), true, "the block's end did not release the other holder's lock");
    lock.release();
    await assert.rejects(async () => {
      using held = await lock.hold();
      void held;
      throw new Error('inside the block');
    }, /inside the block/);
    assert.equal(lock.locked(), false, 'a block left by an error released it');

    const rlock = new RLock();
    {
      using outer = await rlock.hold();
      {
        using inner = await rlock.hold();
        void inner;
      }
      assert.equal(rlock.locked(), true, 'the outer hold is still there');
      void outer;
    }
    assert.equal(rlock.locked(), false);

    const slots = new Semaphore(2);
    {
      using a = await slots.hold();
      using b = await slots.hold({ timeout: 1000 });
      assert.equal(slots.getValue(), 0);
      await assert.rejects(slots.hold(5), TimeoutError);
      void a;
      void b;
    }
    assert.equal(slots.getValue(), 2);

    const cond = new Condition();
    await (async () => {
      using held = await cond.hold();
      void held;
      assert.equal(await cond.wait(5), false, 'wait() inside the block, as inside `with cond:`');
    })();
    assert.equal(cond.acquire(false), true, 'the block released the condition');
    cond.release();
  });
});

// Node fires a timer past its longest (2^31 - 1 ms, ~24.8 days) after 1 ms, with a warning: a
// wait given such a timeout looped on it, a warning each time, instead of waiting.
describe('a timeout past the longest timer (Infinity, 3e9 ms)', () => {
  it('waits for ever, with no warning: Event, Semaphore, Condition, Barrier and JoinableQueue waits, and a pool task', { timeout }, async () => {
    const { Barrier, Condition, Event, JoinableQueue, Semaphore, ThreadPool } = await import('../src/index.ts');
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const event = new Event();
      const semaphore = new Semaphore(0);
      const condition = new Condition();
      const barrier = new Barrier(2);
      const queue = new JoinableQueue<number>();
      await queue.put(1);
      await condition.acquire();
      const waits = [event.wait(Infinity), semaphore.acquire(true, 3e9), condition.wait(3e9), barrier.wait(Infinity), queue.join({ timeout: 3e9 })];
      await nextTurn();
      await nextTurn(); // a warning would have come by now (the timers are made at once)
      assert.deepEqual(warnings.map((w) => w.name), []);
      event.set();
      semaphore.release();
      await condition.acquire(); // the wait released it
      condition.notify();
      condition.release();
      const other = barrier.wait();
      await queue.get();
      queue.taskDone();
      assert.deepEqual((await Promise.all(waits)).slice(0, 3), [true, true, true]);
      await other;
      condition.release(); // the wait took it again
      queue.close();
      await using pool = new ThreadPool(1);
      assert.equal(await pool.apply(square, [3], { timeout: 3e9 }), 9);
      assert.deepEqual(warnings.map((w) => w.name), []);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
