// What a child loads: not the whole library, but the bootstrap, its target's module, and the
// modules of the library objects it receives, imported as they arrive (in its args, or later in
// a message). Targets here live in a module that imports nothing of multiproc, as a pool task's
// module or a worker script often does; they report through the objects they were given.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from './helpers/backends.ts';
import { testFile } from './helpers/test-file.ts';
import { runScript } from './helpers/spawn-script.ts';
import { Event, Lock, Pipe, Queue, Value } from '../src/index.ts';
import { SharedMemory } from '../src/shared-memory.ts';
import { ShareableList } from '../src/shareable-list.ts';
import { loads, dumps, reducerModules, registeredReducers } from '../src/reduction.ts';
import { getNowaitThenGet, locksInCollections, putFromTask, useFromArgs, useFromMessages, type Report } from './fixtures/lazy/targets.ts';

const timeout = 60_000;
const { start, endAll } = testFile();

/** A 16-byte segment, closed and unlinked when the test ends. */
function segment(t: { after(fn: () => void): void }): SharedMemory {
  const shm = new SharedMemory({ create: true, size: 16 });
  t.after(() => {
    shm.close();
    shm.unlink();
  });
  return shm;
}

/** Asserts that the child loaded the modules of what it received, and not the rest of the library. */
function assertLoadedOnly(loaded: string[], expected: string[], notExpected: string[]): void {
  for (const name of expected) assert.ok(loaded.includes(name), `the child did not register ${name}: ${loaded.join(', ')}`);
  for (const name of notExpected) assert.ok(!loaded.includes(name), `the child loaded ${name}'s module without receiving one: ${loaded.join(', ')}`);
}

describe('the reducer table', () => {
  it('names every reducer the library registers', () => {
    void ShareableList; // imported for its registration: now every library module is loaded here
    const missing = registeredReducers().filter((name) => name !== 'Buffer' && !(name in reducerModules));
    assert.deepEqual(missing, []);
  });

  // From src/ only: the built library is one module, which registers every reducer as it loads.
  it('imports, for each name, the module that registers it', { timeout }, async () => {
    const script = fileURLToPath(new URL('./fixtures/scripts/reducer-modules.ts', import.meta.url));
    const run = await runScript(script, [fileURLToPath(new URL('../src/reduction.ts', import.meta.url))]);
    assert.equal(run.code, 0, run.stderr);
    const { before, after } = JSON.parse(run.stdout) as { before: string[]; after: Record<string, boolean> };
    assert.deepEqual(before, ['Buffer'], 'reduction.ts alone registers only Buffer');
    assert.deepEqual(Object.keys(after).filter((name) => !after[name]), []);
  });

  it('a library object inside a Set or as a Map key arrives rebuilt', () => {
    const lock = new Lock();
    const bytes = dumps({ set: new Set([lock]), map: new Map([[lock, 'key']]) }, 'test').slice();
    const { set, map } = loads(bytes, 'test') as { set: Set<Lock>; map: Map<Lock, string> };
    const [fromSet] = set;
    assert.ok(fromSet instanceof Lock);
    assert.equal([...map.keys()][0], fromSet);
    assert.equal(map.get(fromSet), 'key');
  });
});

forEachBackend((ctx) => {
  describe('a child whose module does not import multiproc', () => {
    it('gets a Queue, a Lock, a Value and a SharedMemory in its args, and uses them', { timeout }, async (t) => {
      t.after(endAll);
      const results = new Queue<Report>();
      const value = new Value('i', 41);
      const shm = segment(t);
      const child = start(ctx, { target: useFromArgs, args: [results, new Lock(), value, shm] });
      const report = await results.get();
      await child.join();
      assert.equal(child.exitCode, 0);
      assert.deepEqual({ value: report.value, byte: report.byte }, { value: 42, byte: 42 });
      assert.equal(value.value, 42);
      assert.equal(shm.buf[0], 42);
      assertLoadedOnly(report.loaded, ['Queue', 'Lock', 'Value', 'SharedMemory'], ['ManagerProxy', 'Barrier', 'Condition', 'Event', 'Connection']);
    });

    it('gets a Queue and a Lock through a Pipe, then a Value and a SharedMemory through that Queue, and uses them', { timeout }, async (t) => {
      t.after(endAll);
      const [conn, childEnd] = Pipe<unknown>();
      const queue = new Queue();
      const lock = new Lock();
      const value = new Value('i', 1);
      const shm = segment(t);
      const child = start(ctx, { target: useFromMessages, args: [childEnd] });
      conn.send({ queue, lock });
      await queue.put({ value, shm });
      const report = (await conn.recv()) as Report;
      await child.join();
      assert.equal(child.exitCode, 0);
      assert.deepEqual({ value: report.value, byte: report.byte }, { value: 2, byte: 42 });
      assert.equal(value.value, 2);
      assert.equal(shm.buf[0], 42);
      assertLoadedOnly(report.loaded, ['Connection', 'Queue', 'Lock', 'Value', 'SharedMemory'], ['ManagerProxy', 'Barrier', 'Condition', 'Event']);
      conn.close();
    });

    it('gets a Lock in a Set and as a Map key through a Pipe: one usable Lock', { timeout }, async (t) => {
      t.after(endAll);
      const [conn, childEnd] = Pipe<unknown>();
      const lock = new Lock();
      const child = start(ctx, { target: locksInCollections, args: [childEnd] });
      conn.send({ set: new Set([lock]), map: new Map([[lock, 'key']]) });
      assert.deepEqual(await conn.recv(), { same: true, usable: true, value: 'key' });
      await child.join();
      assert.equal(child.exitCode, 0);
      conn.close();
    });

    it('getNowait() of an item holding an object whose module it has not loaded throws ERR_MP_NOT_LOADED, naming it and the fix; the item stays for get()', { timeout }, async (t) => {
      t.after(endAll);
      const queue = new Queue<{ event: Event }>();
      const results = new Queue<Record<string, unknown>>();
      const event = new Event();
      queue.putNowait({ event });
      const child = start(ctx, { target: getNowaitThenGet, args: [queue, results] });
      const { error, sizeAfter, sizeAtEnd } = (await results.get()) as { error: { name: string; code: string; message: string } | null; sizeAfter: number; sizeAtEnd: number };
      await child.join();
      assert.equal(child.exitCode, 0);
      assert.ok(error, 'getNowait() did not throw');
      assert.equal(error.name, 'ProcessError');
      assert.equal(error.code, 'ERR_MP_NOT_LOADED');
      assert.match(error.message, /^Queue\.getNowait\(\): .*holds an Event/);
      assert.match(error.message, /import 'multiproc';/);
      assert.doesNotMatch(error.message, /bug in multiproc/);
      assert.equal(sizeAfter, 1, 'the item left the queue');
      assert.equal(sizeAtEnd, 0);
      assert.equal(event.isSet(), true, 'get() did not return the same item');
    });
  });

  describe('a pool task whose module does not import multiproc', () => {
    it('gets a Queue in its args and puts into it', { timeout }, async (t) => {
      const pool = new ctx.Pool(1);
      t.after(async () => {
        pool.terminate();
        await pool.join();
      });
      const queue = new Queue<string>();
      const loaded = await pool.apply(putFromTask, [queue, 'from the task']);
      assert.equal(await queue.get(), 'from the task');
      assertLoadedOnly(loaded, ['Connection', 'Queue'], ['ManagerProxy', 'ShareableList', 'SharedMemory', 'Value', 'Barrier']);
    });
  });
});
