// The native addon (native/*.cc) through its one wrapper, src/native/binding.ts: futex waits and
// wakes across processes and threads, synchronous and asynchronous; what an asynchronous wait does
// to the life of the process; the addon in worker threads; shared memory by name; and the error a
// missing or broken build gives.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { forEachBackend } from '../helpers/backends.ts';
import { testFile } from '../helpers/test-file.ts';
import { runScript } from '../helpers/spawn-script.ts';
import { missingExports, native, type FutexResult } from '../../src/native/binding.ts';
import { allocate, type Placed } from '../../src/internal/arena.ts';
import { programSegmentName, unlinkQuietly } from '../../src/resource-tracker.ts';
import { changeAndWake, waitSynchronously } from '../fixtures/sync/native.ts';
import { killPrograms, runObjectsProgram, segmentsOf } from '../fixtures/sync/leaks.ts';

const timeout = 30_000;
const root = fileURLToPath(new URL('../../', import.meta.url));
const addonPath = join(root, 'build/Release/mp_native.node');
const scripts = fileURLToPath(new URL('../fixtures/sync/scripts/', import.meta.url));
const file = testFile(killPrograms);
const { start, endAll } = file;

/** `length` zeroed futex words in the shared arena, and where they are (what a child attaches). */
function sharedWords(length: number): { words: Int32Array; slot: { segment: string; offset: number } } {
  const placed: Placed = allocate(length * 4);
  return { words: new Int32Array(placed.buffer, placed.offset, length), slot: { segment: placed.segment, offset: placed.offset } };
}

/** Ends every wait still pending on `words` (a test that failed half-way must not keep the process alive). */
function releaseAll(words: Int32Array): void {
  for (let i = 0; i < words.length; i++) {
    Atomics.add(words, i, 1);
    native().futexWake(words, i);
  }
}

const since = (t0: number) => performance.now() - t0;

describe('futexWaitAsync in this process', () => {
  it("resolves 'not-equal' at once when the word does not hold the expected value, and 'timed-out' after the timeout", { timeout }, async () => {
    const { words } = sharedWords(2);
    Atomics.store(words, 0, 5);
    assert.equal(await native().futexWaitAsync(words, 0, 4), 'not-equal');
    assert.equal(native().futexWait(words, 0, 4), 'not-equal');
    const t0 = performance.now();
    assert.equal(await native().futexWaitAsync(words, 1, 0, 40), 'timed-out');
    assert.ok(since(t0) >= 40, `a 40 ms wait timed out after ${since(t0)} ms`);
    const t1 = performance.now();
    assert.equal(native().futexWait(words, 1, 0, 20), 'timed-out');
    assert.ok(since(t1) >= 20, `a 20 ms synchronous wait timed out after ${since(t1)} ms`);
    assert.equal(await native().futexWaitAsync(words, 1, 0, 0), 'timed-out');
  });

  it("futexCancel(promise.id) settles a pending wait with 'cancelled'; cancelling twice or a finished wait does nothing", { timeout }, async () => {
    const { words } = sharedWords(1);
    const waiting = native().futexWaitAsync(words, 0, 0);
    assert.equal(typeof waiting.id, 'number');
    native().futexCancel(waiting.id ?? 0);
    native().futexCancel(waiting.id ?? 0);
    assert.equal(await waiting, 'cancelled');
    const other = native().futexWaitAsync(words, 0, 0, 10);
    assert.equal(await other, 'timed-out');
    native().futexCancel(other.id ?? 0);
    native().futexCancel(123_456_789);
  });

  it('100 concurrent waits on 100 words, and 100 on one word, all resolve', { timeout }, async (t) => {
    const { words } = sharedWords(101);
    t.after(() => releaseAll(words));
    const many = Array.from({ length: 100 }, (_, i) => native().futexWaitAsync(words, i, 0));
    const same = Array.from({ length: 100 }, () => native().futexWaitAsync(words, 100, 0));
    for (let i = 0; i <= 100; i++) {
      Atomics.store(words, i, 1);
      native().futexWake(words, i);
    }
    assert.deepEqual(new Set(await Promise.all([...many, ...same])), new Set<FutexResult>(['ok']));
  });

  it('with more waits on distinct words than one futex_waitv call can watch (128), a wake of any word still ends its wait', { timeout }, async (t) => {
    const { words } = sharedWords(301);
    t.after(() => releaseAll(words));
    const waits = Array.from({ length: 300 }, (_, i) => native().futexWaitAsync(words, i, 0));
    // Once a later wait has timed out, the waiter thread has taken in all 300 and sleeps again.
    assert.equal(await native().futexWaitAsync(words, 300, 0, 20), 'timed-out');
    // The last ones added are the ones a single call leaves out.
    const woken = [299, 250, 200, 150];
    for (const i of woken) {
      Atomics.store(words, i, 1);
      native().futexWake(words, i);
    }
    assert.deepEqual(await Promise.all(woken.map((i) => waits[i])), woken.map(() => 'ok'));
    releaseAll(words);
    assert.deepEqual(new Set(await Promise.all(waits)), new Set(['ok']));
  });

  it('rejects misuse with a TypeError: a word outside a SharedArrayBuffer, an index out of range, not an Int32Array', { timeout }, () => {
    assert.throws(() => native().futexWaitAsync(new Int32Array(2), 0, 0), /futex words must live in a SharedArrayBuffer/);
    assert.throws(() => native().futexWake(new Int32Array(new SharedArrayBuffer(8)), 2), /futex index out of range/);
    assert.throws(() => native().futexWait(new Uint32Array(new SharedArrayBuffer(8)) as unknown as Int32Array, 0, 0, 1), TypeError);
  });
});

forEachBackend((ctx, backend) => {
  const other = backend === 'process' ? 'another process' : 'another thread';

  describe(`futex across ${backend === 'process' ? 'processes' : 'threads'}`, () => {
    it(`an asynchronous wait here resolves 'ok' once ${other} changes the word and wakes it`, { timeout }, async (t) => {
      t.after(endAll);
      const { words, slot } = sharedWords(4);
      t.after(() => releaseAll(words));
      const waiting = native().futexWaitAsync(words, 2, 0);
      start(ctx, { target: changeAndWake, args: [slot, 4, [2], 7] });
      assert.equal(await waiting, 'ok');
      assert.equal(Atomics.load(words, 2), 7);
    });

    it(`100 asynchronous waits here, on 100 words, all resolve when ${other} wakes them`, { timeout }, async (t) => {
      t.after(endAll);
      const { words, slot } = sharedWords(100);
      t.after(() => releaseAll(words));
      const waits = Array.from({ length: 100 }, (_, i) => native().futexWaitAsync(words, i, 0));
      start(ctx, { target: changeAndWake, args: [slot, 100, Array.from({ length: 100 }, (_, i) => i), 1] });
      assert.deepEqual(new Set(await Promise.all(waits)), new Set(['ok']));
    });

    it(`a synchronous futexWait in ${other} is woken from here`, { timeout }, async (t) => {
      t.after(endAll);
      const { words, slot } = sharedWords(1);
      t.after(() => releaseAll(words));
      start(ctx, { target: waitSynchronously, args: [file.channel.path, slot, 1, 0, 0] });
      await file.channel.event('about-to-wait');
      // futexWake() says how many it woke: 0 until the other side sleeps in the kernel on this word.
      while (native().futexWake(words, 0) === 0) await nextTurn();
      assert.equal((await file.channel.event('sync-waited')).result, 'ok');
    });
  });
});

describe('random bytes for segment names and the authkey', () => {
  it('randomFill() fills a Uint8Array (a view too) from the kernel, differently each time, and refuses anything else', () => {
    const [a, b] = [new Uint8Array(64), new Uint8Array(64)];
    native().randomFill(a);
    native().randomFill(b);
    assert.notDeepEqual(a, b);
    const framed = new Uint8Array(100);
    native().randomFill(framed.subarray(10, 90));
    assert.ok(framed.subarray(0, 10).every((byte) => byte === 0) && framed.subarray(90).every((byte) => byte === 0), 'wrote outside the view');
    assert.ok(framed.subarray(10, 90).some((byte) => byte !== 0));
    assert.throws(() => native().randomFill(new Uint16Array(4) as unknown as Uint8Array), TypeError);
  });
});

describe('the life of a process with asynchronous waits', () => {
  const outcomes = { timeout: 'timed-out', cancel: 'cancelled', 'woken-by-worker': 'ok' } as const;
  for (const how of ['timeout', 'cancel', 'woken-by-worker'] as const) {
    it(`a program whose wait ends (${how}) and then has nothing left to do exits`, { timeout }, async () => {
      const run = await runScript(join(scripts, 'wait-then-exit.ts'), [how]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), outcomes[how]);
    });
  }

  // Node unloads an addon with the last environment that loaded it: here, the worker's.
  it('a program where only a worker thread loaded the addon (and waited, and mapped shared memory) exits cleanly', { timeout }, async () => {
    const raw = await runScript(join(scripts, 'wait-then-exit.ts'), ['worker-only']);
    assert.deepEqual([raw.signal, raw.code, raw.stdout.trim()], [null, 0, 'timed-out'], raw.stderr);
    const library = await runScript(join(scripts, 'wait-then-exit.ts'), ['thread-child-only']);
    assert.deepEqual([library.signal, library.code, library.stdout.trim()], [null, 0, 'exit code 0'], library.stderr);
  });

  it('process.exit() ends a program at once while a wait is pending, and its segments are gone', { timeout }, async () => {
    const run = await runObjectsProgram('sync', 'exit-while-waiting', undefined, false);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.segments.length > 0);
    assert.deepEqual(segmentsOf(run.pid), []);
  });
});

describe('the addon in worker threads', () => {
  it('loads in two worker threads at once; their waits are woken from the main thread and they map segments by name', { timeout }, async () => {
    const name = programSegmentName();
    const buffer = native().shmOpen(name, true, 64);
    const words = new Int32Array(buffer);
    Atomics.store(words, 1, 42);
    const source = `const { workerData, parentPort } = require('node:worker_threads');
      const addon = require(workerData.addon);
      const mapped = new Int32Array(addon.shmOpen(workerData.name, false, 0));
      addon.futexWaitAsync(mapped, 0, 0).then((result) => parentPort.postMessage({ result }));
      parentPort.postMessage({ seen: Atomics.load(mapped, 1) }); // the wait above has started`;
    const workers = [0, 1].map(() => new Worker(source, { eval: true, workerData: { addon: addonPath, name } }));
    const exited = workers.map((w) => once(w, 'exit')); // listen now: a worker may end before we look
    try {
      const seen = await Promise.all(workers.map(async (w) => ((await once(w, 'message')) as [{ seen: number }])[0].seen));
      assert.deepEqual(seen, [42, 42]);
      const results = workers.map(async (w) => ((await once(w, 'message')) as [{ result: string }])[0].result);
      Atomics.store(words, 0, 1);
      native().futexWake(words, 0);
      assert.deepEqual(await Promise.all(results), ['ok', 'ok']);
      assert.deepEqual(await Promise.all(exited), [[0], [0]]);
    } finally {
      for (const w of workers) await w.terminate();
      unlinkQuietly(name);
    }
  });

  it('a worker with a pending wait can be terminated at once', { timeout }, async () => {
    const source = `const { parentPort } = require('node:worker_threads');
      const words = new Int32Array(new SharedArrayBuffer(4));
      require(${JSON.stringify(addonPath)}).futexWaitAsync(words, 0, 0);
      parentPort.postMessage('waiting');`;
    const worker = new Worker(source, { eval: true });
    await once(worker, 'message');
    const exited = once(worker, 'exit');
    await worker.terminate();
    assert.deepEqual(await exited, [1]);
  });
});

describe('shmOpen and shmUnlink', () => {
  it('fail like Node system calls: ENOENT and EEXIST with .code and .syscall; TypeError for bad arguments', { timeout }, () => {
    const name = programSegmentName();
    assert.throws(() => native().shmOpen(name, false, 0), (error: NodeJS.ErrnoException) => error.code === 'ENOENT' && error.syscall === 'shm_open' && error.message.includes(name));
    const buffer = native().shmOpen(name, true, 16);
    try {
      assert.ok(buffer instanceof SharedArrayBuffer);
      assert.equal(buffer.byteLength, 16);
      assert.equal(native().shmOpen(name, false, 0).byteLength, 16);
      assert.throws(() => native().shmOpen(name, true, 16), (error: NodeJS.ErrnoException) => error.code === 'EEXIST');
    } finally {
      native().shmUnlink(name);
    }
    assert.throws(() => native().shmUnlink(name), (error: NodeJS.ErrnoException) => error.code === 'ENOENT' && error.syscall === 'shm_unlink');
    assert.throws(() => native().shmOpen(42 as unknown as string, true, 1), TypeError);
  });
});

describe('NativeAddonError', () => {
  it('a copy of the package without build/ throws it, naming what it looked for, the platform and ABI, and `npm rebuild`', { timeout }, async (t) => {
    const copy = mkdtempSync(join(tmpdir(), 'mp-no-addon-'));
    t.after(() => rmSync(copy, { recursive: true, force: true }));
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    cpSync(join(root, 'src'), join(copy, 'src'), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules')); // tsx, to run the copy's src/
    const where = `platform=linux arch=${process.arch} node=${process.versions.node} abi=${process.versions.modules}`;
    const fix = `Run \`npm rebuild multiproc\` (or \`npm run build:native\` in its folder, ${copy}); it needs g++, make and python3.`;

    const missing = await runScript(join(scripts, 'addon-missing.ts'), [copy], { cwd: copy });
    assert.equal(missing.code, 0, missing.stderr);
    const seen = JSON.parse(missing.stdout) as Record<string, unknown>;
    assert.deepEqual(seen, {
      threw: true,
      name: 'NativeAddonError',
      code: 'ERR_MP_NATIVE_ADDON',
      message: `The native addon mp_native.node is missing (looked for build/Release/mp_native.node, build/Debug/mp_native.node; ${where}). ${fix}`,
      isNativeAddonError: true,
      isProcessError: true,
      sameErrorTwice: true,
      childExitCode: 0,
    });
    assert.match(seen.message as string, /build\/Release\/mp_native\.node.*abi=\d+.*`npm rebuild/);

    // A file that is there but is no addon (a broken or foreign build) says it did not load.
    mkdirSync(join(copy, 'build/Release'), { recursive: true });
    writeFileSync(join(copy, 'build/Release/mp_native.node'), 'not an ELF file');
    const broken = await runScript(join(scripts, 'addon-missing.ts'), [copy], { cwd: copy });
    const brokenSeen = JSON.parse(broken.stdout) as { message: string; code: string };
    assert.equal(brokenSeen.code, 'ERR_MP_NATIVE_ADDON');
    const addon = join(copy, 'build/Release/mp_native.node');
    assert.ok(brokenSeen.message.startsWith(`The native addon ${addon} did not load (${where}): `), brokenSeen.message);
    assert.ok(brokenSeen.message.endsWith(`. It may have been built for another Node version. ${fix}`), brokenSeen.message);
  });

  it('an addon built from older sources is refused at load, naming the functions it lacks (the check, on this build and on stand-ins)', () => {
    assert.deepEqual(missingExports(native()), []);
    const stale = { ...(native() as unknown as Record<string, unknown>) };
    delete stale.randomFill;
    delete stale.allocRecycled;
    assert.deepEqual(missingExports(stale), ['randomFill', 'allocRecycled']);
    // Every function the addon exports is on the list (and, above, every listed one is exported).
    assert.equal(missingExports({}).length, Object.values(native()).filter((value) => typeof value === 'function').length);
  });
});

describe('shared memory after the program ends', () => {
  it("a SIGINTed program's segments are gone; a SIGKILLed one's are removed by the next program", { timeout }, async () => {
    // Without children this time: the programs with children are in the other leak tests.
    const interrupted = await runObjectsProgram('sync', 'wait', 'SIGINT', false);
    assert.equal(interrupted.signal, 'SIGINT', interrupted.stderr);
    assert.ok(interrupted.segments.length > 0);
    assert.deepEqual(segmentsOf(interrupted.pid), []);
    const killed = await runObjectsProgram('sync', 'wait', 'SIGKILL', false);
    assert.equal(killed.signal, 'SIGKILL');
    // (Another multiproc program on this machine may sweep them first: either way they must go.)
    const next = await runObjectsProgram('sync', 'return', undefined, false);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(segmentsOf(killed.pid), []);
    assert.deepEqual(segmentsOf(next.pid), []);
  });
});
