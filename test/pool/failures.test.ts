// What Python's Pool gets wrong, on both backends: a worker that dies mid-task fails exactly that
// task with WorkerLostError and is replaced (no hang), `retries` and the poison item, errors that
// arrive as their own class with the remote stack in `cause`, results that cannot cross, and
// maxMemoryPerChild. On the process backend the test SIGKILLs the worker itself; a worker thread
// cannot be killed from outside without ending the test, so there the task calls process.exit(3),
// which ends just its thread.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { TestChannel } from '../helpers/channel.ts';
import { allGone, killStrays } from '../helpers/processes.ts';
import { ProcessError, RawValue, RemoteError, WorkerLostError, activeChildren } from '../../src/index.ts';
import { collect, deathFor, exitOfDeath, poolFor } from '../fixtures/pool/harness.ts';
import {
  alwaysDie,
  blockTask,
  dieNow,
  dieOnce,
  failingInit,
  functionAtSeven,
  retainMemory,
  returnFunction,
  returnInstance,
  square,
  throwMyError,
  throwRangeWithCode,
  throwString,
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
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Resolves true once `pid` is no longer among activeChildren(): its 'exit' event was handled. */
async function noticed(pid: number, limit = 5000): Promise<boolean> {
  const deadline = Date.now() + limit;
  while (activeChildren().some((child) => child.pid === pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

forEachBackend((ctx, backend) => {
  const death = deathFor(backend);
  const [deathCode, deathSignal] = exitOfDeath(backend);

  describe('a worker that dies mid-task', () => {
    it('fails exactly that task with WorkerLostError (pid, exit code or signal, the task); the rest complete; the worker is replaced', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const doomed = pool.applyAsync(blockTask, [channel.path, 'doomed']);
      const other = pool.applyAsync(blockTask, [channel.path, 'survivor', 'alive']);
      const [{ ident }] = await Promise.all([started('doomed'), started('survivor')]);
      // Both workers are busy: these wait, some of them in the doomed worker's pipe.
      const later = range(6).map((x) => pool.applyAsync(square, [x]));
      if (backend === 'process') process.kill(ident as number, 'SIGKILL');
      else channel.broadcast({ release: 'doomed', die: death });

      await assert.rejects(doomed.get(), (error: WorkerLostError) => {
        assert.ok(error instanceof WorkerLostError, String(error));
        assert.equal(error.code, 'ERR_MP_WORKER_LOST');
        assert.equal(error.pid, backend === 'process' ? ident : process.pid);
        assert.equal(error.exitCode, deathCode);
        assert.equal(error.signal, deathSignal);
        assert.match(error.message, /died \((signal SIGKILL|exit code 3)\) while running task \d+ \(blockTask, 1 item\)/);
        assert.match(error.message, /replaced the worker/);
        assert.doesNotMatch(error.message, /poison/);
        return true;
      });
      // The replacement took the tasks that waited behind the dead one; none of them was lost.
      assert.equal(pool.stats().workers.total, 2, 'the dead worker was replaced at once');
      channel.broadcast({ release: 'survivor' });
      assert.equal(await other.get(), 'alive');
      assert.deepEqual(await Promise.all(later.map((r) => r.get())), range(6).map((x) => x * x));
      assert.deepEqual(await pool.map(square, range(20)), range(20).map((x) => x * x));
      const { workers, tasks } = pool.stats();
      // completed counts tasks, and a map's task is a chunk: 1 + 6 applies, and 20 items in chunks of 3 (divmod(20, 8) = (2, 4)).
      assert.deepEqual([workers.total, tasks.failed, tasks.completed], [2, 1, 1 + 6 + 7]);
      if (backend === 'process') assert.ok(await allGone([ident as number], 5000));
    });

    it('a task that ends its own worker fails the same way, and a map with it fails with WorkerLostError', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      await assert.rejects(pool.apply(dieNow, [death]), { name: 'WorkerLostError', exitCode: deathCode });
      await assert.rejects(pool.starmap(dieNow, [[death]]), { name: 'WorkerLostError', message: /dieNow/ });
      assert.deepEqual(await pool.map(square, [1, 2, 3]), [1, 4, 9]);
      assert.equal(pool.stats().workers.total, 2);
    });

    it('a result its worker sent just before it died is delivered, not charged to the death', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await pool.apply(square, [0]); // ready: the next two go to the worker together
      const sentFirst = pool.applyAsync(square, [3]);
      const doomed = pool.applyAsync(dieNow, [death]);
      // The pool reads everything the worker wrote before it handles its exit, whichever it learns first.
      assert.equal(await sentFirst.get(), 9);
      await assert.rejects(doomed.get(), { name: 'WorkerLostError', exitCode: deathCode });
      assert.deepEqual(await pool.map(square, [1, 2]), [1, 4]);
      assert.equal(pool.stats().tasks.failed, 1);
    });

    it('an idle worker that is killed is replaced, and no task fails', { timeout, skip: backend === 'thread' ? 'a worker thread cannot be SIGKILLed from outside without ending the test process' : false }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const pid = await pool.apply(workerIdent);
      process.kill(pid, 'SIGKILL');
      // Wait until this process has seen the exit (the pool learns of it from the same 'exit'
      // event): a task sent in the instant before would count as lost (see docs/pool.md).
      assert.ok(await noticed(pid), 'the exit of the killed worker was seen');
      const next = await pool.apply(workerIdent);
      assert.notEqual(next, pid);
      assert.deepEqual([pool.stats().tasks.failed, pool.stats().workers.total], [0, 1]);
    });
  });

  describe('workers that fail to start', () => {
    it('an initializer that throws fails the waiting tasks with ERR_MP_POOL_WORKER_START: no hang, no endless restarts', { timeout }, async (t) => {
      // The workers print the initializer's error on stderr, as any failing process does.
      const pool = poolFor(t, ctx, 2, { initializer: failingInit, initargs: ['init broke'] });
      await assert.rejects(pool.apply(square, [2]), (error: ProcessError) => {
        assert.equal(error.name, 'ProcessError');
        assert.equal(error.code, 'ERR_MP_POOL_WORKER_START');
        assert.equal(error.exitCode, 1);
        assert.match(error.message, /exited \(exit code 1\) before it was ready: its initializer threw/);
        return true;
      });
      assert.equal(pool.stats().workers.total, 0, 'the failing workers were not restarted in a loop');
      await assert.rejects(pool.apply(square, [3]), { code: 'ERR_MP_POOL_WORKER_START' }, 'the next call starts workers again');
      pool.close();
      await pool.join();
    });
  });

  describe('retries', () => {
    it('re-runs a task whose worker died: with retries: 1, a task that kills its worker once succeeds', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1, { retries: 1 });
      const runs = new RawValue('i', 0);
      assert.equal(await pool.apply(dieOnce, [runs, death]), 'survived');
      assert.equal(runs.value, 2);
      assert.equal(pool.stats().tasks.failed, 0);
    });

    it('reports a poison item, which killed retries + 1 workers, as WorkerLostError; the pool goes on', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2, { retries: 2 });
      const runs = new RawValue('i', 0);
      await assert.rejects(pool.apply(alwaysDie, [runs, death]), (error: Error) => {
        assert.ok(error instanceof WorkerLostError);
        assert.match(error.message, /alwaysDie/);
        assert.match(error.message, /killed 3 workers \(retries: 2\): a poison item/);
        return true;
      });
      assert.equal(runs.value, 3);
      assert.deepEqual(await pool.map(square, range(10)), range(10).map((x) => x * x));
      assert.equal(pool.stats().workers.total, 2);
    });
  });

  describe('errors thrown by tasks', () => {
    it('arrive as the same class with message and code; cause is a RemoteError with the remote stack', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await assert.rejects(pool.apply(throwRangeWithCode, ['out of range here']), (error: Error & { code?: string }) => {
        assert.ok(error instanceof RangeError);
        assert.equal(error.message, 'out of range here');
        assert.equal(error.code, 'ERR_FIXTURE_RANGE');
        const cause = error.cause as RemoteError;
        assert.ok(cause instanceof RemoteError, `cause: ${String(cause)}`);
        assert.match(cause.message, /pool worker.*RangeError: out of range here/);
        assert.match(cause.stack ?? '', /at throwRangeWithCode \(.*fixtures\/pool\/targets\.ts/);
        return true;
      });
    });

    it("is thrown with the stack of the code that awaits the call (as Python's traceback ends at the pool.apply() line); a signal's reason keeps its own", { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const awaitedHere = (name: string) => (error: Error) => {
        assert.ok(error instanceof RangeError, String(error));
        assert.match(error.stack ?? '', new RegExp(`^RangeError: boom\\n\\s+at async (Pool\\.\\w+ .*\\n\\s+at async )?${name} \\(.*failures\\.test\\.ts`), error.stack);
        assert.match((error.cause as Error).stack ?? '', /at throwRangeWithCode/, 'the remote stack is in cause');
        return true;
      };
      async function callsApply() { await pool.apply(throwRangeWithCode, ['boom']); }
      async function callsMap() { await pool.map(throwRangeWithCode, ['boom']); }
      async function callsStarmap() { await pool.starmap(throwRangeWithCode, [['boom']]); }
      async function callsGet() { await pool.applyAsync(throwRangeWithCode, ['boom']).get(); }
      async function loopsOverImap() { for await (const value of pool.imap(throwRangeWithCode, ['boom'])) assert.fail(`a value: ${String(value)}`); }
      for (const f of [callsApply, callsMap, callsStarmap, callsGet, loopsOverImap]) await assert.rejects(f(), awaitedHere(f.name));
      const reason = new Error('the program\'s own reason');
      const stack = reason.stack;
      await assert.rejects(pool.apply(square, [2], { signal: AbortSignal.abort(reason) }), (error) => error === reason && reason.stack === stack);
    });

    it('an error of a custom class arrives as an error named after it; a thrown non-error as an Error', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await assert.rejects(pool.apply(throwMyError, ['custom']), (error: Error) => {
        assert.ok(error instanceof Error);
        assert.equal(error.name, 'MyError');
        assert.equal(error.constructor.name, 'MyError');
        assert.equal(error.message, 'custom');
        assert.match(String(error), /^MyError: custom/);
        assert.match((error.cause as Error).stack ?? '', /at throwMyError/);
        return true;
      });
      await assert.rejects(pool.apply(throwString), { name: 'Error', message: 'a plain string' });
    });

    it('a result that cannot cross (a function, a class instance) becomes an error that says so; no hang', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      await assert.rejects(pool.apply(returnFunction), { name: 'TypeError', code: 'ERR_MP_NOT_CLONEABLE', message: /is the function unsendable: functions cannot be sent/ });
      await assert.rejects(pool.apply(returnInstance), { name: 'TypeError', code: 'ERR_MP_NOT_CLONEABLE', message: /instance of Opaque/ });
      await assert.rejects(pool.map(returnFunction, [1, 2, 3]), { code: 'ERR_MP_NOT_CLONEABLE' });
      assert.equal(await pool.apply(square, [5]), 25, 'the worker goes on');
      assert.equal(pool.stats().tasks.failed, 5, 'failed counts tasks: the map ran 3 chunks of 1');
    });

    it('a result that cannot cross is named as the caller knows it: the call\'s result, or the result for an item of the input', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 2);
      const notTheMessage = (error: Error) => assert.doesNotMatch(error.message, /Connection\.send\(\)|\[2\]/, 'not the layout of the message that carried it');
      await assert.rejects(pool.apply(returnFunction), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_MP_NOT_CLONEABLE');
        assert.match(error.message, /^Pool: the result of returnFunction\(\) \(task \d+\) cannot be sent back from its worker: its value is the function unsendable: functions cannot be sent/);
        notTheMessage(error);
        return true;
      });
      const items = Array.from({ length: 10 }, (_, i) => i);
      // Item 7 is the second of its chunk (6, 7, 8): it is named by its place in the whole input.
      const item7 = /^Pool: the result for item 7 \(functionAtSeven\) cannot be sent back from its worker: its value\.format is the function format: functions cannot be sent/;
      for (const call of [pool.map(functionAtSeven, items, 3), collect(pool.imap(functionAtSeven, items, 3)), pool.starmap(functionAtSeven, items.map((x): [number] => [x]), 3)]) {
        await assert.rejects(call, (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_MP_NOT_CLONEABLE');
          assert.match(error.message, item7);
          notTheMessage(error);
          return true;
        });
      }
      assert.equal(await pool.apply(square, [5]), 25, 'the workers go on');
    });

    it('a Pipe end closed right after the call that passed it: that task fails, saying so; the tasks beside it run; no crash, no hang', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      const [reader, writer] = ctx.Pipe<string>(false);
      const before = pool.apply(square, [2]);
      const passed = pool.apply(square, [writer as unknown as number]);
      const after = pool.apply(square, [3]);
      writer.close(); // before the pool sent the task: its copy was never counted as sent
      await assert.rejects(passed, { code: 'ERR_MP_NOT_CLONEABLE', message: /Pool: task \d+'s arguments\[0\]: a closed Connection cannot be sent.*once its result is in/s });
      assert.deepEqual([await before, await after], [4, 9]);
      await assert.rejects(reader.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' }, 'the only writer closed: the reader sees the end');
      reader.close();
    });

    it('arguments that cannot cross are refused at the call, naming where they were found', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      assert.throws(() => pool.applyAsync(square, [(() => 1) as unknown as number]), { name: 'TypeError', message: /Pool\.applyAsync\(\): args\[0\]/ });
      await assert.rejects(pool.map(square, [1, Symbol('x') as unknown as number]), { message: /Pool\.map\(\): items\[1\]/ });
      // The error names the call made, not the Async twin that apply() and starmap() await.
      await assert.rejects(pool.apply(square, [(() => 1) as unknown as number]), { message: /^Pool\.apply\(\): args\[0\]/ });
      await assert.rejects(pool.starmap(square, [[Symbol('x') as unknown as number]]), { message: /^Pool\.starmap\(\): items\[0\]/ });
    });
  });

  describe('maxMemoryPerChild', () => {
    it('recycles a worker whose memory passed the limit after its task (a new worker afterwards)', { timeout }, async (t) => {
      // A worker process's RSS is its own; a worker thread's is the whole process's, so the limit
      // sits above what this test process uses now.
      const MB = 1024 * 1024;
      const limit = backend === 'process' ? 256 * MB : process.memoryUsage.rss() + 256 * MB;
      const pool = poolFor(t, ctx, 1, { maxMemoryPerChild: limit });
      const first = await pool.apply(workerIdent);
      assert.equal(await pool.apply(workerIdent), first, 'below the limit, the worker stays');
      assert.equal(await pool.apply(retainMemory, [400]), first, 'the task ran on that worker and kept 400 MB');
      const next = await pool.apply(workerIdent);
      assert.notEqual(next, first, 'then it was recycled');
      assert.equal(await pool.apply(workerIdent), next);
      if (backend === 'process') assert.ok(await allGone([first], 5000));
    });
  });
});
