import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from './helpers/backends.ts';
import { TestChannel } from './helpers/channel.ts';
import { allGone, isNode, isRunning, killStrays } from './helpers/processes.ts';
import {
  Process,
  ProcessError,
  activeChildren,
  currentProcess,
  parentProcess,
  type Context,
  type ProcessOptions,
} from '../src/index.ts';
import { startAbandonedOf } from '../src/process.ts';
import {
  Reporter,
  ThreadReporter,
  blockUntilReleased,
  exitWith,
  reportAfterAwaiting,
  reportSelf,
  startGrandchild,
  throwError,
} from './fixtures/targets.ts';
import renamedDefault, { renamedExport } from './fixtures/imported-target.ts';
import { NamedByFields, PidField, ThreadNamedByFields } from './fixtures/named-by-fields.js';
import { fileURLToPath } from 'node:url';
import { lines, runScript } from './helpers/spawn-script.ts';

const timeout = 30_000;
let channel: TestChannel;

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  killStrays();
  await channel.close();
});

/** Starts `target(...args)` on the context's backend and returns the process. */
function started<A extends unknown[]>(ctx: Context, options: ProcessOptions<A>): Process<A> {
  const p = new ctx.Process<A>(options);
  p.start();
  return p;
}

forEachBackend((ctx, backend) => {
  describe('Process', () => {
    it("a started Process that exited and was never joined is not kept: the next start() lets go of it, as Python's does", { timeout }, async () => {
      const { setFlagsFromString } = await import('node:v8');
      const { runInNewContext } = await import('node:vm');
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const { wait } = await import('../src/connection/index.ts');
      const forgotten = await startAndForget(ctx, 3);
      const next = new ctx.Process({ target: exitWith, args: [0] });
      next.start(); // forgets the ones that exited
      await next.join();
      let collected = false;
      for (let round = 0; round < 50 && !collected; round++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
        collected = forgotten.every((ref) => ref.deref() === undefined);
      }
      assert.ok(collected, 'the exited Process objects were collected');
      async function startAndForget(context: Context, count: number): Promise<WeakRef<Process>[]> {
        const started = Array.from({ length: count }, () => new context.Process({ target: exitWith, args: [0] }));
        for (const p of started) p.start();
        for (const p of started) await wait([p]); // exited; not joined
        return started.map((p) => new WeakRef(p));
      }
    });

    it('runs an exported function with its args, and reports its name, pid and parent', { timeout }, async () => {
      const p = new ctx.Process({ target: reportSelf, args: [channel.path, 'alvin'] });
      assert.equal(p.pid, undefined);
      assert.equal(p.exitCode, null);
      assert.match(p.name, /^Process-\d+$/);
      p.start();
      const seen = await channel.event('self', (m) => m.name === p.name);
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.equal(p.isAlive(), false);
      assert.equal((seen.args as unknown[])[0], 'alvin');
      assert.equal(seen.parentPid, process.pid);
      assert.equal(seen.parentName, 'MainProcess');
      assert.equal(seen.parentAlive, true);
      assert.equal(seen.isMainHere, false);
      if (backend === 'process') {
        assert.equal(seen.pid, p.pid);
        assert.notEqual(p.pid, process.pid);
        assert.equal(p.ident, p.pid);
      } else {
        assert.equal(seen.pid, process.pid, 'a thread target sees its parent pid');
        assert.equal(p.pid, process.pid);
        assert.equal(seen.ident, p.ident);
      }
    });

    it('carries bigint, Map, Date and nested values in args unchanged', { timeout }, async () => {
      const value = { big: 2n ** 70n, map: new Map<unknown, unknown>([[0, 'a'], ['0', 'b']]), when: new Date(5), bytes: Buffer.from('hi') };
      const p = started(ctx, { target: { module: new URL('./fixtures/echo-types.ts', import.meta.url).href, name: 'describeTypes' }, args: [channel.path, value] });
      const seen = await channel.event('types');
      await p.join();
      assert.deepEqual(seen.types, { big: 'bigint:1180591620717411303424', map: 'Map:0=a,0=b', when: 'Date:5', bytes: 'Uint8Array:hi' });
    });

    it('runs an overridden run() of an exported subclass, with its own fields, named MyClass-N', { timeout }, async () => {
      const p = new (subclassFor(ctx))(channel.path);
      assert.match(p.name, /^(Thread)?Reporter-\d+$/);
      p.start();
      const seen = await channel.event('subclass', (m) => m.name === p.name);
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.equal(seen.isReporter, true);
      assert.deepEqual(seen.payload, { n: 42, list: [1, 2, 3], when: new Date(0).toISOString() });
    });

    it('a subclass field named name or daemon (a JavaScript class field, defined on the instance) sets them, here and in the child', { timeout }, async () => {
      const Class = ctx.getStartMethod() === 'process' ? NamedByFields : ThreadNamedByFields;
      const p = new Class('indexer', channel.path);
      p.start();
      assert.equal(p.name, 'indexer');
      assert.equal(p.daemon, true);
      assert.match(String(p), /indexer/);
      const seen = await channel.event('named-by-fields');
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.deepEqual(seen, { event: 'named-by-fields', name: 'indexer', daemon: true, current: 'indexer' });
      assert.throws(() => new PidField().start(), { name: 'TypeError', message: /PidField has a field `pid`, which hides Process's read-only `pid`\. Rename the field\./ });
    });

    it('awaits an async target before the child exits', { timeout }, async () => {
      const p = started(ctx, { target: reportAfterAwaiting, args: [channel.path] });
      await channel.event('async-done');
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('exitCode is 1 when the target throws, and the code passed to process.exit()', { timeout }, async () => {
      const failing = started(ctx, { target: throwError, args: ['expected failure in a test'] });
      const exiting = started(ctx, { target: exitWith, args: [7] });
      await failing.join();
      await exiting.join();
      assert.equal(failing.exitCode, 1);
      assert.equal(exiting.exitCode, 7);
    });

    it("exitCode is a byte, as a process's exit status: process.exit(300) gives 44, process.exit(-1) 255 (not a signal)", { timeout }, async () => {
      const large = started(ctx, { target: exitWith, args: [300] });
      const negative = started(ctx, { target: exitWith, args: [-1] });
      await Promise.all([large.join(), negative.join()]);
      assert.deepEqual([large.exitCode, negative.exitCode], [44, 255]);
    });

    it('a target whose promise never settles ends with the event loop, with exitCode 13 and a line on stderr', { timeout }, async () => {
      const run = await runScript(fileURLToPath(new URL('./fixtures/scripts/never-settles.ts', import.meta.url)), [ctx.getStartMethod()]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(lines(run.stdout), ['exitCode=13']);
      assert.match(run.stderr, /^Process waits-for-nothing: its target never finished: the promise it returned never settled/m);
    });

    it('runs a target imported from another module, by its export name and as a default export', { timeout }, async () => {
      const a = started(ctx, { target: renamedExport, args: [channel.path] });
      const b = started(ctx, { target: renamedDefault, args: [channel.path] });
      await channel.event('renamed-export');
      await channel.event('default-export');
      await Promise.all([a.join(), b.join()]);
      assert.deepEqual([a.exitCode, b.exitCode], [0, 0]);
    });

    it('isAlive() while running; join(timeout) returns at the timeout; terminate() gives -15', { timeout }, async () => {
      const p = started(ctx, { target: blockUntilReleased, args: [channel.path, 'terminate'] });
      await channel.event('ready', (m) => m.label === 'terminate');
      assert.equal(p.isAlive(), true);
      assert.ok(activeChildren().includes(p));
      await p.join(20);
      assert.equal(p.exitCode, null, 'join(timeout) returned while the child still runs');
      p.terminate();
      await p.join();
      assert.equal(p.exitCode, -15);
      assert.equal(p.isAlive(), false);
      assert.ok(!activeChildren().includes(p));
    });

    it('terminate() or kill() at once after start() gives -15 or -9, as in Python (a thread ended before it ran any code reported 0)', { timeout }, async () => {
      const a = started(ctx, { target: blockUntilReleased, args: [channel.path, 'never'] });
      a.terminate();
      const b = started(ctx, { target: blockUntilReleased, args: [channel.path, 'never'] });
      b.kill();
      await Promise.all([a.join(), b.join()]);
      assert.deepEqual([a.exitCode, b.exitCode], [-15, -9]);
    });

    it('a running child has taken over its args: the parent keeps nothing it sent for it (startAbandoned settles before the exit)', { timeout }, async () => {
      const p = started(ctx, { target: blockUntilReleased, args: [channel.path, 'taken'] });
      await channel.event('ready', (m) => m.label === 'taken');
      assert.equal(await startAbandonedOf(p), false);
      p.kill();
      await p.join();
    });

    it('kill() gives -9', { timeout }, async () => {
      const p = started(ctx, { target: blockUntilReleased, args: [channel.path, 'kill'] });
      await channel.event('ready', (m) => m.label === 'kill');
      p.kill();
      await p.join();
      assert.equal(p.exitCode, -9);
    });

    it('join({ signal }) rejects with the abort reason and leaves the child running', { timeout }, async () => {
      const p = started(ctx, { target: blockUntilReleased, args: [channel.path, 'abort-join'] });
      await channel.event('ready', (m) => m.label === 'abort-join');
      const controller = new AbortController();
      const joining = p.join({ signal: controller.signal });
      controller.abort(new Error('stop waiting'));
      await assert.rejects(joining, /stop waiting/);
      assert.equal(p.isAlive(), true);
      p.kill();
      await p.join();
    });

    it('terminate({ tree: true }) ends the process and its descendants', { timeout }, async () => {
      const p = started(ctx, { target: startGrandchild, args: [channel.path, 'process', false] });
      const child = await channel.event('ready', (m) => m.label === 'child');
      const grandchild = await channel.event('ready', (m) => m.label === 'grandchild');
      p.terminate({ tree: true });
      await p.join();
      assert.equal(p.exitCode, -15);
      const pids = [grandchild.pid as number, ...(backend === 'process' ? [child.pid as number] : [])];
      assert.ok(await allGone(pids, 5000), `still running: ${pids}`);
    });

    it('kill({ tree: true }) ends the process and its descendants', { timeout }, async (t) => {
      // A non-daemonic grandchild process: a plain kill() of the child leaves it running, on both backends.
      const p = started(ctx, { target: startGrandchild, args: [channel.path, 'process', false] });
      const child = await channel.event('ready', (m) => m.label === 'child');
      const grandchild = await channel.event('ready', (m) => m.label === 'grandchild');
      const pids = [grandchild.pid as number, ...(backend === 'process' ? [child.pid as number] : [])];
      // If the kill missed one, it must not outlive the test: once its parent is gone, killStrays() cannot find it.
      t.after(() => {
        for (const pid of pids.filter((pid) => isRunning(pid) && isNode(pid))) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      });
      p.kill({ tree: true });
      await p.join();
      assert.equal(p.exitCode, -9);
      assert.ok(await allGone(pids, 5000), `still running: ${pids.filter(isRunning)} (of ${pids})`);
    });

    it("authkey: a child's is copied from this process's; set before start(), it is that child's alone (as Python's)", { timeout }, async () => {
      const mine = Buffer.from(currentProcess().authkey).toString('hex');
      const inherits = new ctx.Process({ target: reportSelf, args: [channel.path, 'inherits'] });
      const own = new ctx.Process({ target: reportSelf, args: [channel.path, 'own'] });
      assert.equal(Buffer.from(own.authkey).toString('hex'), mine);
      own.authkey = Buffer.from('a key of its own');
      assert.equal(Buffer.from(currentProcess().authkey).toString('hex'), mine, "setting a child's key left this process's");
      assert.equal(Buffer.from(own.authkey).toString(), 'a key of its own');
      inherits.start();
      own.start();
      const seen = await Promise.all(['inherits', 'own'].map((label) => channel.event('self', (m) => (m.args as unknown[])[0] === label)));
      await Promise.all([inherits.join(), own.join()]);
      assert.deepEqual(seen.map((m) => m.authkey), [mine, Buffer.from('a key of its own').toString('hex')]);
      assert.throws(() => (own.authkey = Buffer.from('late')), { name: 'ProcessError', code: 'ERR_MP_ALREADY_STARTED', message: /set authkey before start\(\)/ });
      assert.throws(() => (own.authkey = 'text' as never), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT' });
    });

    it('daemon is false by default and can be set before start()', { timeout }, async () => {
      const p = new ctx.Process({ target: reportSelf, args: [channel.path] });
      assert.equal(p.daemon, false);
      p.daemon = true;
      p.start();
      const seen = await channel.event('self', (m) => m.name === p.name);
      await p.join();
      assert.equal(seen.daemon, true);
      assert.throws(() => (p.daemon = false), (e: ProcessError) => e.code === 'ERR_MP_ALREADY_STARTED');
    });

    it('start() twice, join() before start(), close() while running and use after close() throw ProcessError', { timeout }, async () => {
      const fresh = new ctx.Process({ target: exitWith, args: [0] });
      await assert.rejects(fresh.join(), (e: ProcessError) => e instanceof ProcessError && e.code === 'ERR_MP_NOT_STARTED');
      const p = started(ctx, { target: blockUntilReleased, args: [channel.path, 'close'] });
      await channel.event('ready', (m) => m.label === 'close');
      assert.throws(() => p.start(), (e: ProcessError) => e.code === 'ERR_MP_ALREADY_STARTED' && /started once/.test(e.message));
      assert.throws(() => p.close(), (e: ProcessError) => e.code === 'ERR_MP_STILL_RUNNING' && /join\(\) or terminate\(\)/.test(e.message));
      channel.broadcast({ release: true });
      await p.join();
      p.close();
      assert.throws(() => p.isAlive(), (e: ProcessError) => e.code === 'ERR_MP_CLOSED');
      assert.throws(() => p.exitCode, (e: ProcessError) => e.code === 'ERR_MP_CLOSED');
    });
  });
});

/** The Reporter fixture, on the backend of `ctx` (a subclass of that context's Process). */
function subclassFor(ctx: Context): new (channel: string) => Process {
  return ctx.getStartMethod() === 'process' ? Reporter : ThreadReporter;
}

describe('the current and parent process', () => {
  it('currentProcess() is MainProcess here, and parentProcess() is null', () => {
    const me = currentProcess();
    assert.equal(me.name, 'MainProcess');
    assert.equal(me.pid, process.pid);
    assert.equal(me.isAlive(), true);
    assert.equal(parentProcess(), null);
    assert.throws(() => me.start(), (e: ProcessError) => e.code === 'ERR_MP_NOT_A_CHILD');
  });
});
