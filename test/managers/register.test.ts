// BaseManager.register() with a user's class or factory function exported by a fixture module:
// `await m.Counter()` creates the object in the server; its methods return values (async ones
// too) to any process; `exposed` limits what proxies may call, and the server enforces it even for
// a forged proxy; a throwing method rejects with the same-named error and the remote stack in
// `cause`; an unregistered typeid rejects with ERR_MP_UNKNOWN_TYPEID.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { forEachBackend } from '../helpers/backends.ts';
import { ProcessError, RemoteError, SharedArray, TimeoutError, activeChildren, type StartMethod } from '../../src/index.ts';
import { BaseManager, BaseProxy, type ManagerOptions } from '../../src/managers/index.ts';
import { makeProxy, proxyState } from '../../src/managers/proxy.ts';
import { assertNoLeftovers, joinedCleanly, shutDownAfter, startEach } from '../fixtures/managers/harness.ts';
import { CounterView, MathsManager, incrementTimes, initServer, makeTally, neverReady, useView, withholdAddress, type CounterProxy } from '../fixtures/managers/counter.ts';
import { Pipe } from '../../src/index.ts';

const timeout = 60_000;

after(() => assertNoLeftovers());

async function started<M extends BaseManager>(t: TestContext, manager: M): Promise<M> {
  await manager.start();
  return shutDownAfter(t, manager);
}

function maths(t: TestContext, backend: StartMethod, options: ManagerOptions = {}): Promise<MathsManager> {
  return started(t, new MathsManager({ context: backend, ...options }));
}

async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<ProcessError> {
  let caught: ProcessError | undefined;
  await assert.rejects(promise, (error: ProcessError) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    caught = error;
    return true;
  });
  return caught!;
}

/**
 * Blocks this thread until `word[0]` is `value` (another process sets it: its notify reaches only
 * its own process, so this looks again every few ms), or fails after 30 s.
 */
function waitForWord(word: Int32Array, value: number): void {
  for (let waited = 0; Atomics.load(word, 0) !== value; waited += 5) {
    assert.ok(waited < 30_000, `the shared word never became ${value}`);
    Atomics.wait(word, 0, Atomics.load(word, 0), 5);
  }
}

forEachBackend((ctx, backend) => {
  describe('BaseManager.register()', () => {
    it('`await m.Counter(5)` creates a Counter in the server; processes increment it; methods return values', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const counter = await m.Counter(5);
      assert.ok(counter instanceof BaseProxy);
      assert.equal(counter.typeid, 'Counter');
      assert.equal(await counter.increment(10), 15);
      await joinedCleanly(startEach(ctx, incrementTimes, [[counter, 10], [counter, 10], [counter, 10]]));
      assert.equal(await counter.value(), 45);
      assert.equal(await counter.valueLater(), 45, 'an async method resolves with its value');
      const other = await m.create<CounterProxy>('Counter');
      assert.equal(await other.value(), 0, 'create(typeid) makes a new, separate object');
    });

    it("a user's type registered as 'Queue' gets its arguments as they are: a `signal` in them is data, not a built-in wait's option", { timeout }, async (t) => {
      const m = await maths(t, backend);
      const echo = await m.Queue();
      assert.deepEqual(await echo.put({ item: 1 }, { signal: 'SIGTERM' }), [{ item: 1 }, { signal: 'SIGTERM' }]);
    });

    it("start({ initializer, initargs }) runs the initializer in the server before it serves (Python's start(initializer, initargs))", { timeout }, async (t) => {
      const m = shutDownAfter(t, await new MathsManager({ context: backend }).start({ initializer: initServer, initargs: ['a', 1, { b: [2] }] }));
      assert.deepEqual(await (await m.ServerInit()).args(), ['a', 1, { b: [2] }]);
      const plain = await maths(t, backend);
      assert.equal(await (await plain.ServerInit()).args(), null, 'no initializer: nothing ran');
      const localInit = (): void => {};
      await assert.rejects(new MathsManager({ context: backend }).start({ initializer: localInit }), { code: 'ERR_MP_TARGET_NOT_REFERENCEABLE', message: /^MathsManager\.start\(\) \(its initializer\): function localInit cannot be sent/ });
      await assert.rejects(new MathsManager({ context: backend }).start({ initializer: initServer, initargs: 'a' as never }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /`initargs` to be an array/ });
    });

    it('a proxy of this manager passed to a registered method works there: its methods call the object (Python rebuilds a proxy in the server)', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const [three, ten] = [await m.Counter(3), await m.Counter(10)];
      assert.equal(await three.addTo(ten), 13);
      assert.equal(await ten.value(), 13);
      assert.equal(await ten.addTo(ten), 26, 'its own proxy too');
    });

    it('a proxy passed to its own server answers there as anywhere: every exposed method (`toString`, `oid` too), with copies of arguments and results', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const [shelf, other] = [await m.Shelf(), await m.Shelf()];
      assert.deepEqual(await shelf.useOther(other), { toString: 'a shelf of 1', oid: 'the shelf answers oid()' });
      assert.deepEqual(await other.first(), { n: 1 }, "the server's method changed its own copies, not the stored item");
      assert.equal(await other.callMethod('toString'), 'a shelf of 1', 'as through a proxy');
    });

    it('a proxy of an earlier server at the same address, passed to a method of the new one, is not taken for the new server\'s object of that id', { timeout }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'mp-restart-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const address = join(dir, 'server.sock');
      const first = await new MathsManager({ context: backend, address }).start();
      const stale = await first.Counter(1);
      await first.shutdown();
      const second = shutDownAfter(t, await new MathsManager({ context: backend, address }).start());
      const sameId = await second.Counter(100);
      const adder = await second.Counter(5);
      await rejectsWithCode(adder.addTo(stale), 'ERR_MP_MANAGER_GONE', /the manager there now is another/);
      assert.equal(await sameId.value(), 100, 'untouched');
    });

    it("shutdown() ends the server even while a registered object keeps a timer running (Python's server exits once it stops serving)", { timeout }, async () => {
      const m = await new MathsManager({ context: backend }).start();
      const server = activeChildren().find((p) => p.name === 'MathsManager-server');
      assert.ok(server);
      assert.equal(await (await m.Ticker()).ticks(), 0);
      await m.shutdown(); // it joins the server
      assert.equal(server.exitCode, 0);
    });

    it('start({ timeout, signal }): a server not ready in time (its initializer never finishes) is killed, and start() rejects', { timeout }, async () => {
      const servers = () => activeChildren().filter((p) => p.name === 'MathsManager-server');
      await assert.rejects(new MathsManager({ context: backend }).start({ initializer: neverReady, timeout: 100 }), (error: Error) => {
        assert.ok(error instanceof TimeoutError);
        assert.match(error.message, /^MathsManager\.start\(\): the server process \(pid \d+\) was not ready within 100 ms; it was killed/);
        return true;
      });
      const stopping = new AbortController();
      const started = new MathsManager({ context: backend }).start({ initializer: neverReady, signal: stopping.signal });
      stopping.abort(new Error('stop waiting'));
      await assert.rejects(started, { message: 'stop waiting' });
      for (const server of servers()) await server.join();
      assert.deepEqual(servers(), []);
      await assert.rejects(new MathsManager({ context: backend }).start({ signal: AbortSignal.abort(new Error('not now')) }), { message: 'not now' });
      await assert.rejects(new MathsManager({ context: backend }).start({ timeout: 'soon' as never }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /expected `timeout` to be a number/ });
    });

    it('start() that gives up (timeout or abort) once the server made its socket leaves no socket directory behind', { timeout }, async (t) => {
      for (const giveUp of ['timeout', 'abort'] as const) {
        const [mine, theirs] = Pipe<string>();
        const made = new SharedArray('i', 1);
        const stopping = new AbortController();
        const starting = new MathsManager({ context: backend }).start({ initializer: withholdAddress, initargs: [theirs, made], ...(giveUp === 'timeout' ? { timeout: 1 } : { signal: stopping.signal }) });
        theirs.close();
        // Holds this thread until the server made its socket, so start()'s 1 ms timer fires only after.
        if (giveUp === 'timeout') waitForWord(made.view as Int32Array, 1);
        const address = await mine.recv();
        t.after(() => rmSync(dirname(address), { recursive: true, force: true })); // if the test fails
        stopping.abort(new Error('stop waiting'));
        await assert.rejects(starting, giveUp === 'timeout' ? TimeoutError : { message: 'stop waiting' });
        mine.close();
        assert.equal(existsSync(dirname(address)), false, `${giveUp}: the server's socket directory ${dirname(address)} was removed`);
      }
    });

    it('a proxytype makes its proxies instances of that class, here and in a child that receives one', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const view = await m.ViewedCounter(1);
      assert.ok(view instanceof CounterView);
      assert.ok(view instanceof BaseProxy);
      assert.equal(await view.twice(), 3);
      assert.equal(await view.current(), 3);
      const [mine, theirs] = Pipe();
      await joinedCleanly(startEach(ctx, useView, [[view, theirs]]));
      theirs.close();
      const seen = (await mine.recv()) as { isView: boolean; twice: number; current: number };
      mine.close();
      assert.deepEqual({ isView: seen.isView, twice: seen.twice, current: seen.current }, { isView: true, twice: 5, current: 5 });
      assert.equal(await view.current(), 5);
    });

    it('serves what a factory function returns, with its methods', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const tally = await m.Tally(100);
      assert.equal(await tally.add(5), 105);
      assert.equal(await tally.add(-1), 104);
    });

    it('exposes only the public methods by default: a `_name` rejects with ERR_MP_NOT_EXPOSED, in the proxy and in the server', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const counter = await m.Counter(3);
      await rejectsWithCode(counter._reset(), 'ERR_MP_NOT_EXPOSED', /'_reset' is not exposed/);
      // A proxy that claims more than the server exposed (a forged one): the server refuses too.
      const forged = makeProxy<CounterProxy>({ ...proxyState(counter), exposed: [...proxyState(counter).exposed, '_reset', 'constructor'] });
      await rejectsWithCode(forged._reset(), 'ERR_MP_NOT_EXPOSED', /Counter\._reset\(\): the method is not exposed/);
      await rejectsWithCode(forged.callMethod('constructor'), 'ERR_MP_NOT_EXPOSED');
      assert.equal(await counter.value(), 3, 'nothing ran');
    });

    it('`exposed` limits the methods: calling another rejects with ERR_MP_NOT_EXPOSED, even from a forged proxy', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const readOnly = await m.ReadOnlyCounter(7);
      assert.deepEqual(proxyState(readOnly).exposed, ['value']);
      assert.equal(await readOnly.value(), 7);
      await rejectsWithCode(readOnly.increment(), 'ERR_MP_NOT_EXPOSED', /exposed: value/);
      const forged = makeProxy<CounterProxy>({ ...proxyState(readOnly), exposed: ['value', 'increment'] });
      const error = await rejectsWithCode(forged.increment(), 'ERR_MP_NOT_EXPOSED');
      assert.ok(error.cause instanceof RemoteError, 'the server said no');
      assert.equal(await readOnly.value(), 7, 'nothing ran');
    });

    it('a method that throws rejects with an error of the same name and message, and the remote stack in `cause`', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const counter = await m.Counter();
      await assert.rejects(counter.fail('too big'), (error: Error) => {
        assert.ok(error instanceof RangeError);
        assert.equal(error.message, 'too big');
        assert.ok(error.cause instanceof RemoteError);
        const remote = error.cause as RemoteError;
        assert.match(remote.stack ?? '', /RangeError: too big/);
        assert.match(remote.stack ?? '', /counter\.ts/, 'the stack is the server\'s, through the fixture');
        assert.match(remote.message, /Counter\.fail\(\)/);
        return true;
      });
      await assert.rejects(counter.failWithOwnClass(), (error: Error) => {
        assert.equal(error.name, 'ParseError');
        assert.equal(error.message, 'bad input at 3:7');
        assert.match((error.cause as Error).stack ?? '', /ParseError/);
        return true;
      });
      assert.equal(await counter.increment(), 1, 'the object is still usable');
    });

    it('is thrown with the stack of the code that awaits the call (the remote stack stays in `cause`)', { timeout }, async (t) => {
      const m = await maths(t, backend);
      const counter = await m.Counter();
      async function callsFail() {
        await counter.fail('too big');
      }
      await assert.rejects(callsFail(), (error: Error) => {
        assert.ok(error instanceof RangeError);
        assert.match(error.stack ?? '', /^RangeError: too big\n\s+at async callsFail \(.*register\.test\.ts/, error.stack);
        assert.match((error.cause as Error).stack ?? '', /counter\.ts/);
        return true;
      });
    });

    it('an unregistered typeid rejects with ERR_MP_UNKNOWN_TYPEID, SyncManager\'s own types included', { timeout }, async (t) => {
      const m = await maths(t, backend);
      await rejectsWithCode(m.create('Nope'), 'ERR_MP_UNKNOWN_TYPEID', /no type 'Nope' is registered/);
      await rejectsWithCode(m.create('dict'), 'ERR_MP_UNKNOWN_TYPEID');
      for (const name of ['toString', 'constructor', 'valueOf', '__proto__', 'hasOwnProperty']) {
        await rejectsWithCode(m.create(name), 'ERR_MP_UNKNOWN_TYPEID', new RegExp(`no type '${name}' is registered`));
      }
    });

    it('a subclass inherits its parent\'s types, and what it registers stays its own', { timeout }, async (t) => {
      class MoreMaths extends MathsManager {}
      MoreMaths.register('Tally2', makeTally);
      const more = await started(t, new MoreMaths({ context: backend }));
      assert.equal(await (await more.Counter(1)).value(), 1);
      const tally = await more.create<{ add(n: number): Promise<number> }>('Tally2', 1);
      assert.equal(await tally.add(1), 2);
      const m = await maths(t, backend);
      await rejectsWithCode(m.create('Tally2', 1), 'ERR_MP_UNKNOWN_TYPEID');
      assert.equal('Tally2' in MathsManager.prototype, false);
    });
  });
});

describe('BaseManager.register() arguments', () => {
  it('rejects a typeid that is not an identifier, `exposed` that is not a list of names, and a factory its module does not export', () => {
    class Local {}
    class Checked extends BaseManager {}
    assert.throws(() => Checked.register('not an id', Local), { code: 'ERR_MP_INVALID_ARGUMENT' });
    assert.throws(() => Checked.register('X', makeTally, { exposed: 'add' as unknown as string[] }), { code: 'ERR_MP_INVALID_ARGUMENT' });
    assert.throws(() => Checked.register('Local', Local), /not exported/);
  });

  it('rejects a proxytype that is not a BaseProxy subclass, and one its module does not export', () => {
    class Checked extends BaseManager {}
    class LocalView extends BaseProxy {}
    assert.throws(() => Checked.register('A', makeTally, { proxytype: class NotAProxy {} as never }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /extends BaseProxy/ });
    assert.throws(() => Checked.register('B', makeTally, { proxytype: LocalView }), /not exported/);
  });
});
