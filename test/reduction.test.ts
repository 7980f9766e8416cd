// Values cross processes by structured clone: what cannot be cloned is refused at start(), in the
// parent, naming where it was found, before anything is spawned; what can arrives intact, cycles
// and shared references included, on both backends.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from './helpers/backends.ts';
import { testFile } from './helpers/test-file.ts';
import { countSpawns } from './helpers/spawn-script.ts';
import { activeChildren, descendants, type Context, type Process } from '../src/index.ts';
import {
  ThreadWithCallback,
  WithCallback,
  cloneables,
  describeCloneables,
  neverRuns,
  reportCloneables,
} from './fixtures/clone-targets.ts';

const timeout = 20_000;
/** dumps()'s bytes, kept past the next dumps() (they may be its reused scratch). */
const copied = (bytes: Uint8Array): Uint8Array => bytes.slice();
// Its end-of-file check waits for children to exit and leaves tsx's esbuild service alone: an
// assertion that no descendant at all was left, right after SIGKILLing them, failed now and then
// on a clean clone (a freshly killed child not yet reaped, or esbuild started for a file not in
// tsx's cache yet).
const file = testFile();

class Point {
  x = 1;
  y = 2;
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

/** Asserts that start() throws ERR_MP_NOT_CLONEABLE matching `message`, and that nothing started. */
function assertRefused(p: Process, message: RegExp): void {
  const before = activeChildren().length;
  const descendantsBefore = descendants(process.pid).length;
  const spawns = countSpawns(() => {
    assert.throws(
      () => p.start(),
      (error: NodeJS.ErrnoException) => {
        assert.ok(error instanceof TypeError, `expected a TypeError, got ${error}`);
        assert.equal(error.code, 'ERR_MP_NOT_CLONEABLE');
        assert.match(error.message, message);
        return true;
      },
    );
  });
  assert.equal(spawns, 0, 'start() spawned a process or a worker before it refused the args');
  assert.equal(activeChildren().length, before);
  assert.equal(descendants(process.pid).length, descendantsBefore);
  assert.equal(p.pid, undefined);
  assert.equal(p.isAlive(), false);
  assert.equal(p.exitCode, null);
}

forEachBackend((ctx: Context, backend) => {
  describe('Process args that cannot be cloned', () => {
    it('a function nested in args is refused at start(), naming args[1].callback and the function', { timeout }, () => {
      const p = new ctx.Process({ target: neverRuns, args: ['first', { callback: function onDone() {} }] });
      assertRefused(p, /Process\.start\(\): Process-[\d:]+'s args\[1\]\.callback is the function onDone: functions cannot be sent/);
    });

    it('an anonymous arrow deep inside arrays and Maps is refused, naming the path', { timeout }, () => {
      const p = new ctx.Process({ target: neverRuns, args: [[0, { handlers: new Map([['done', () => 0]]) }]] });
      assertRefused(p, /args\[0\]\[1\]\.handlers\.get\(done\) is a function: functions cannot be sent/);
    });

    it('a class instance is refused, naming the class and saying to register it or send plain data', { timeout }, () => {
      const p = new ctx.Process({ target: neverRuns, args: [{ where: new Point() }] });
      assertRefused(p, /args\[0\]\.where is an instance of Point: a structured clone would drop its class, and its methods with it\. Register the class so that its instances cross, .*\(`registerClass\(Point\)`\), or send plain data instead/);
    });

    it('a class instance in a Set and a Promise are refused too', { timeout }, () => {
      assertRefused(new ctx.Process({ target: neverRuns, args: [new Set([new Point()])] }), /args\[0\] \(a Set item\) is an instance of Point/);
      assertRefused(new ctx.Process({ target: neverRuns, args: [Promise.resolve(1)] }), /args\[0\] is an instance of Promise/);
    });

    it('a symbol is refused with the same clear error (not a DataCloneError after spawning)', { timeout }, () => {
      const p = new ctx.Process({ target: neverRuns, args: [{ kind: Symbol('kind') }] });
      assertRefused(p, /args\[0\]\.kind is Symbol\(kind\): a symbol cannot be sent to another process/);
    });

    it("a function in a subclass's own field is refused, naming this.callback", { timeout }, () => {
      const p = backend === 'process' ? new WithCallback() : new ThreadWithCallback();
      assertRefused(p, /field this\.callback is the function callback/);
    });

    it('a SharedArrayBuffer is refused at start() on the process backend, before anything is spawned', { timeout, skip: backend === 'process' ? false : 'worker threads share it' }, () => {
      const p = new ctx.Process({ target: neverRuns, args: [{ counts: new SharedArrayBuffer(8) }] });
      assertRefused(p, /Process\.start\(\): Process-[\d:]+'s args or fields cannot be sent to the child: #<SharedArrayBuffer> could not be cloned\. Send plain data \(.*use SharedArray or SharedMemory\)/);
    });

    it('a refused start() can be followed by a good Process: nothing was left half-started', { timeout }, async () => {
      assertRefused(new ctx.Process({ target: neverRuns, args: [() => 0] }), /args\[0\] is a function/);
      const good = new ctx.Process({ target: reportCloneables, args: [file.channel.path, `after-refusal:${backend}`, cloneables()] });
      good.start();
      await file.channel.event('arrived', (m) => m.label === `after-refusal:${backend}`);
      await good.join();
      assert.equal(good.exitCode, 0);
    });
  });

  describe('Process args that can be cloned', () => {
    it('cycles, shared references, Map, Set, Date, RegExp, typed arrays, Buffer, bigint and Error arrive intact', { timeout }, async () => {
      const label = `cloneables:${backend}`;
      const value = cloneables();
      const expected = describeCloneables(value);
      const p = new ctx.Process({ target: reportCloneables, args: [file.channel.path, label, value] });
      p.start();
      const arrived = await file.channel.event('arrived', (m) => m.label === label);
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.deepEqual(arrived.facts, JSON.parse(JSON.stringify(expected)));
      // Spelled out, so that a failure says what went wrong even if both sides agreed on nonsense.
      const facts = arrived.facts as Record<string, Record<string, unknown>>;
      assert.deepEqual(facts.buffer, { isBuffer: true, text: 'hello' }, 'a Buffer arrives as a Buffer on every backend');
      assert.deepEqual(facts.slice, { isBuffer: true, text: '234', length: 3 });
      assert.equal(arrived.poolTravelled, false, "a small Buffer's slice carried the rest of the sender's Buffer pool");
      assert.equal(facts.bigint, 'bigint:1267650600228229401496703205376');
      assert.deepEqual(facts.error, { isRangeError: true, message: 'out of range', cause: { why: 'test' }, hasStack: true });
      assert.equal(arrived.facts && (arrived.facts as Record<string, unknown>).cycleSelf, true);
      assert.equal(arrived.facts && (arrived.facts as Record<string, unknown>).sharedIdentity, true);
    });

    it('the sender keeps its own value untouched (reduce() copies, it does not rewrite)', { timeout }, async () => {
      const label = `untouched:${backend}`;
      const value = cloneables();
      const p = new ctx.Process({ target: reportCloneables, args: [file.channel.path, label, value] });
      p.start();
      await file.channel.event('arrived', (m) => m.label === label);
      await p.join();
      assert.equal(Buffer.isBuffer(value.buffer), true);
      assert.equal(value.cyclic.self, value.cyclic);
      assert.equal(value.map.get('me'), value.map);
      assert.deepEqual(describeCloneables(value), describeCloneables(cloneables()));
    });
  });
});

describe('dumps() of large values (past the quick plain-data check and the plain-data codec)', () => {
  it('still finds a library object after thousands of plain objects, and it arrives as itself', async () => {
    const { dumps, loads } = await import('../src/reduction.ts');
    const { Lock } = await import('../src/index.ts');
    const value: unknown[] = Array.from({ length: 5000 }, (_, i) => ({ i }));
    value.push({ lock: new Lock() });
    const back = loads(copied(dumps(value, 'test')), 'test') as [...{ i: number }[], { lock: unknown }];
    assert.equal(back.length, 5001);
    assert.deepEqual(back[4999], { i: 4999 });
    assert.ok((back[5000] as { lock: unknown }).lock instanceof Lock);
  });

  it('keeps the holes of a sparse array that also holds a library object (its items stay at their indices)', async () => {
    const { dumps, loads } = await import('../src/reduction.ts');
    const { Lock } = await import('../src/index.ts');
    // eslint-disable-next-line no-sparse-arrays
    const value = [, 'second', , new Lock()];
    const back = loads(copied(dumps(value, 'test')), 'test') as unknown[];
    assert.equal(back.length, 4);
    assert.deepEqual([0 in back, back[1], 2 in back], [false, 'second', false]);
    assert.ok(back[3] instanceof Lock);
  });

  it('still refuses a function after thousands of plain objects, naming its path', async () => {
    const { dumps } = await import('../src/reduction.ts');
    const value: unknown[] = Array.from({ length: 3000 }, (_, i) => ({ i }));
    value.push({ callback: () => 1 });
    assert.throws(() => dumps(value, 'test'), (error: Error & { code?: string }) => error.code === 'ERR_MP_NOT_CLONEABLE' && error.message.startsWith('test[3000].callback is '));
  });
});

describe('dumps() and loads() of primitives (written without the serializer)', () => {
  it('numbers (-0, NaN, infinities, fractions, beyond 2^53), null, undefined and booleans come back exactly', async () => {
    const { dumps, loads } = await import('../src/reduction.ts');
    const values = [0, -0, 1, -1, 2 ** 31, 2 ** 53 + 2, -(2 ** 60), 0.1, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, null, undefined, true, false];
    const encoded = values.map((value) => copied(dumps(value, 'test')));
    encoded.forEach((bytes, i) => assert.ok(Object.is(loads(bytes, 'test'), values[i]), `${String(values[i])} came back as ${String(loads(bytes, 'test'))}`));
    assert.ok(encoded.every((bytes) => bytes.length <= 9), 'a byte, or nine for a number');
    // Not primitives of this kind: a string goes through the plain-data codec, a bigint through the serializer.
    assert.equal(loads(copied(dumps('text', 'test')), 'test'), 'text');
    assert.equal(loads(copied(dumps(12n, 'test')), 'test'), 12n);
  });
});
