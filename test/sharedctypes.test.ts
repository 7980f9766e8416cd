// Value, SharedArray, RawValue and RawArray: every typecode's values, what each refuses and with
// which error, the locks, and real sharing with another process or thread on both backends. The
// last tests check that no shared-memory segment outlives the program that made it.

import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import assert from 'node:assert/strict';
import { forEachBackend } from './helpers/backends.ts';
import { testFile } from './helpers/test-file.ts';
import { ProcessError, type Typecode, type Value } from '../src/index.ts';
import { fillView, incrementElement, readThenWrite, show } from './fixtures/sync/shared.ts';
import { killPrograms, runObjectsProgram, segmentsOf } from './fixtures/sync/leaks.ts';

const timeout = 30_000;
const file = testFile(killPrograms);
const { start, endAll } = file;

const FLT_MAX = 3.4028234663852886e38;

/** Each typecode with its zero, its minimum and maximum, and other values it must keep exactly. */
const typecodes: { typecode: Typecode; zero: unknown; min: unknown; max: unknown; more: unknown[]; View: Function }[] = [
  { typecode: 'b', zero: 0, min: -128, max: 127, more: [-1], View: Int8Array },
  { typecode: 'B', zero: 0, min: 0, max: 255, more: [128], View: Uint8Array },
  { typecode: 'h', zero: 0, min: -32768, max: 32767, more: [-1], View: Int16Array },
  { typecode: 'H', zero: 0, min: 0, max: 65535, more: [32768], View: Uint16Array },
  { typecode: 'i', zero: 0, min: -(2 ** 31), max: 2 ** 31 - 1, more: [-1], View: Int32Array },
  { typecode: 'I', zero: 0, min: 0, max: 2 ** 32 - 1, more: [2 ** 31], View: Uint32Array },
  { typecode: 'l', zero: 0n, min: -(2n ** 63n), max: 2n ** 63n - 1n, more: [-1n], View: BigInt64Array },
  { typecode: 'L', zero: 0n, min: 0n, max: 2n ** 64n - 1n, more: [2n ** 63n], View: BigUint64Array },
  { typecode: 'q', zero: 0n, min: -(2n ** 63n), max: 2n ** 63n - 1n, more: [-1n, 2n ** 53n + 1n], View: BigInt64Array },
  { typecode: 'Q', zero: 0n, min: 0n, max: 2n ** 64n - 1n, more: [2n ** 53n + 1n], View: BigUint64Array },
  { typecode: 'f', zero: 0, min: -FLT_MAX, max: FLT_MAX, more: [1.5, -0, Infinity, -Infinity, NaN, Math.fround(0.1)], View: Float32Array },
  { typecode: 'd', zero: 0, min: -Number.MAX_VALUE, max: Number.MAX_VALUE, more: [Number.MIN_VALUE, -0, 0.1, NaN, Infinity], View: Float64Array },
  { typecode: 'c', zero: '\x00', min: '\x00', max: '\xff', more: ['a', 'é'], View: Uint8Array },
  { typecode: 'u', zero: '\x00', min: '\x00', max: '\u{10FFFF}', more: ['a', '€', '😀'], View: Uint32Array },
];

/** Values each typecode refuses with a TypeError naming it. */
const refused: [Typecode, unknown][] = [
  ['b', '1'],
  ['B', null],
  ['h', 1n],
  ['H', NaN],
  ['i', 1.5],
  ['I', Infinity],
  ['l', 1.5],
  ['L', '1'],
  ['q', 2 ** 53],
  ['Q', true],
  ['f', 1n],
  ['d', '0.5'],
  ['c', 'ab'],
  ['c', ''],
  ['c', '€'],
  ['c', 256],
  ['u', 'ab'],
  ['u', ''],
  ['u', '😀!'],
  ['u', 0x110000],
];

function isTypeErrorNaming(typecode: Typecode, where: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
    assert.match(error.message, where);
    assert.match(error.message, new RegExp(`typecode '${typecode}' holds`));
    return true;
  };
}

function isProcessError(code: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  };
}

function isBadTypecode(error: unknown): boolean {
  assert.ok(error instanceof TypeError);
  assert.equal((error as NodeJS.ErrnoException).code, 'ERR_MP_BAD_TYPECODE');
  assert.match(error.message, /expected a typecode of 'b', 'B', 'c', 'u', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'f', 'd', got /);
  return true;
}

forEachBackend((ctx, backend) => {
  const other = backend === 'process' ? 'another process' : 'another thread';

  describe('Value and RawValue', () => {
    it('every typecode keeps its zero, minimum, maximum and other edge values (64-bit as bigint, c as a 1-character string)', { timeout }, () => {
      for (const { typecode, zero, min, max, more } of typecodes) {
        for (const Class of [ctx.Value, ctx.RawValue]) {
          assert.equal(new Class(typecode).value, zero, `${Class.name}('${typecode}')`);
          for (const edge of [min, max, ...more]) {
            assert.equal(new Class(typecode, edge as never).value, edge, `${Class.name}('${typecode}', ${show(edge)})`);
            const value = new Class(typecode);
            value.value = edge as never;
            assert.equal(value.value, edge, `${Class.name}('${typecode}').value = ${show(edge)}`);
          }
        }
      }
      // At run time (the types ask for bigint and string), safe integers are accepted for 64-bit
      // typecodes and read back as bigint, and 'c' takes a byte as a number too.
      assert.equal(new ctx.Value('q', -5 as never).value, -5n);
      assert.equal(new ctx.Value('c', 65 as never).value, 'A');
      // And a 1-byte Buffer, as Python's Value('c', b'A'); a longer one is refused.
      assert.equal(new ctx.Value('c', Buffer.from('A')).value, 'A');
      assert.throws(() => new ctx.Value('c', Buffer.from('AB')), { code: 'ERR_MP_INVALID_ARGUMENT', message: /typecode 'c' holds one byte: .* or a 1-byte Buffer, got an instance of Buffer/ });
      // 'f' is a float32: what it keeps is the nearest float32.
      assert.equal(new ctx.Value('f', 0.1).value, Math.fround(0.1));
      assert.equal(String(new ctx.Value('i', 7)), "<Value('i', 7)>");
      assert.equal(inspect(new ctx.Value('d', 3.5)), "<Value('d', 3.5)>", 'console.log() shows the value');
    });

    it('a value of the wrong type is refused with a TypeError naming the typecode', { timeout }, () => {
      for (const [typecode, bad] of refused) {
        assert.throws(() => new ctx.Value(typecode, bad as never), isTypeErrorNaming(typecode, /^new Value\(\): /), `Value('${typecode}', ${show(bad)})`);
        const value = new ctx.RawValue(typecode);
        assert.throws(() => (value.value = bad as never), isTypeErrorNaming(typecode, /^RawValue\.value: /), `RawValue('${typecode}').value = ${show(bad)}`);
        assert.equal(value.value, typecodes.find((t) => t.typecode === typecode)?.zero, 'a refused value must leave the old one');
      }
    });

    it('an unknown typecode throws ERR_MP_BAD_TYPECODE', { timeout }, () => {
      for (const bad of ['x', 'int', 'I ', '', undefined, 5]) {
        assert.throws(() => new ctx.Value(bad as never, 0 as never), isBadTypecode, `Value(${String(bad)})`);
        assert.throws(() => new ctx.RawValue(bad as never), isBadTypecode);
        assert.throws(() => new ctx.SharedArray(bad as never, 1), isBadTypecode);
        assert.throws(() => new ctx.RawArray(bad as never, [1] as never), isBadTypecode);
      }
    });

    it('getLock() is a new RLock by default, the lock given, and throws ERR_MP_NO_LOCK without one', { timeout }, () => {
      assert.ok(new ctx.Value('i', 0).getLock() instanceof ctx.RLock);
      const lock = new ctx.Lock();
      assert.equal(new ctx.Value('i', 0, { lock }).getLock(), lock);
      const rlock = new ctx.RLock();
      assert.equal(new ctx.Value('d', 0, { lock: rlock }).getLock(), rlock);
      assert.notEqual(new ctx.Value('i').getLock(), new ctx.Value('i').getLock());
      assert.throws(() => new ctx.Value('i', 0, { lock: false }).getLock(), isProcessError('ERR_MP_NO_LOCK', /^Value\.getLock\(\): this value has no lock/));
      assert.throws(() => new ctx.RawValue('i', 0).getLock(), isProcessError('ERR_MP_NO_LOCK', /^RawValue\.getLock\(\): this value has no lock \(created as RawValue or with lock: false\)/));
      assert.throws(() => new ctx.Value('i', 0, { lock: 'yes' as never }), (error: Error) => error instanceof TypeError && /expected `lock` to be true, false, a Lock or an RLock/.test(error.message));
    });
  });

  describe('SharedArray and RawArray', () => {
    it('a length gives zeros; an iterable gives its items; toArray(), get() and iteration read them', { timeout }, () => {
      for (const { typecode, zero, min, max } of typecodes) {
        const zeros = new ctx.SharedArray(typecode, 3);
        assert.equal(zeros.length, 3);
        assert.deepEqual(zeros.toArray(), [zero, zero, zero]);
        function* items() {
          yield min;
          yield max;
        }
        const filled = new ctx.RawArray(typecode, items() as never);
        assert.deepEqual(filled.toArray(), [min, max], `RawArray('${typecode}', generator)`);
        assert.deepEqual([...filled], [min, max]);
        assert.equal(filled.get(1), max);
      }
      assert.deepEqual(new ctx.SharedArray('i', new Set([3, 1, 2])).toArray(), [3, 1, 2]);
      assert.deepEqual(new ctx.SharedArray('d', 0).toArray(), []);
      assert.equal(String(new ctx.SharedArray('c', ['h', 'i'])), "<SharedArray('c', [h, i])>");
      assert.equal(inspect(new ctx.SharedArray('i', [1, 2])), "<SharedArray('i', [1, 2])>", 'console.log() shows the items');
      assert.match(inspect(new ctx.SharedArray('b', 150)), /^<SharedArray\('b', \[0(, 0){99}, \.\.\. 50 more\]\)>$/, 'the first hundred');
      assert.throws(() => new ctx.SharedArray('i', -1), RangeError);
      assert.throws(() => new ctx.SharedArray('i', 1.5), RangeError);
      assert.throws(() => new ctx.SharedArray('i', { length: 3 } as never), { name: 'TypeError', message: /^new SharedArray\(\): expected a length \(a non-negative integer\) or an iterable of initial values, got an instance of Object\.$/ });
      assert.throws(() => new ctx.SharedArray('i', [1, 2, 'x'] as never), isTypeErrorNaming('i', /^new SharedArray\(\) \(item 2\): /));
    });

    it('get() and set() take a negative index from the end, as Python, check the index (RangeError) and set() the value type (TypeError)', { timeout }, () => {
      const array = new ctx.SharedArray('h', [1, 2, 3]);
      assert.deepEqual([array.get(-1), array.get(-3)], [3, 1]);
      array.set(-3, 9);
      assert.equal(array.get(0), 9);
      array.set(0, 1);
      for (const index of [-4, 3, 1.5, NaN, '0']) {
        assert.throws(() => array.get(index as number), (error: Error) => error instanceof RangeError && /^SharedArray\.get\(\): index .* is out of range -3\.\.2/.test(error.message), `get(${String(index)})`);
        assert.throws(() => array.set(index as number, 0), (error: Error) => error instanceof RangeError && /^SharedArray\.set\(\): index/.test(error.message), `set(${String(index)})`);
      }
      array.set(2, -7);
      assert.equal(array.get(2), -7);
      assert.throws(() => array.set(0, 1.5), isTypeErrorNaming('h', /^SharedArray\.set\(\): /));
      assert.throws(() => new ctx.RawArray('q', 2).set(0, 'x' as never), isTypeErrorNaming('q', /^RawArray\.set\(\): /));
      assert.deepEqual(array.toArray(), [1, 2, -7]);
    });

    it('view is the live typed array over the shared memory', { timeout }, () => {
      for (const { typecode, max, View } of typecodes) {
        const array = new ctx.SharedArray(typecode, 4);
        assert.ok(array.view instanceof View, `SharedArray('${typecode}').view is a ${View.name}`);
        assert.ok(array.view.buffer instanceof SharedArrayBuffer);
        assert.equal(array.view.length, 4);
        assert.equal(array.view, array.view, 'the same view every time');
        array.set(3, max as never);
        assert.equal(array.view[3], typecode === 'c' ? 255 : typecode === 'u' ? 0x10ffff : max);
        (array.view as unknown as unknown[])[0] = typeof max === 'bigint' ? 5n : 5;
        assert.equal(array.get(0), typecode === 'c' || typecode === 'u' ? '\x05' : typeof max === 'bigint' ? 5n : 5);
      }
    });

    it("a 'c' array is a byte string (value up to the first NUL, raw all bytes) and a 'u' array a string, as in Python", { timeout }, () => {
      const bytes = new ctx.SharedArray('c', 6);
      bytes.value = 'hi';
      assert.equal(bytes.value, 'hi');
      assert.deepEqual([...bytes.raw], [104, 105, 0, 0, 0, 0]);
      bytes.raw = Uint8Array.of(120, 121, 122, 0, 33, 33);
      assert.equal(bytes.value, 'xyz', 'value stops at the first NUL');
      bytes.value = 'abcdef';
      assert.equal(bytes.value, 'abcdef', 'a string of the whole length has no NUL after it');
      bytes.value = 'é';
      assert.deepEqual([...bytes.raw], [0xe9, 0, 99, 100, 101, 102], 'a shorter value writes a NUL after itself, and leaves the rest');
      bytes.raw = 'QR';
      assert.equal(bytes.value, 'QRcdef', 'raw writes its bytes only: no NUL after them');
      assert.equal(bytes.raw.buffer instanceof SharedArrayBuffer, false, 'raw is a copy');
      assert.equal(new ctx.RawArray('c', 'hello').value, 'hello', 'made from a string');
      assert.throws(() => (bytes.value = 'abcdefg'), { name: 'RangeError', message: /SharedArray\.value: the string has 7 characters, more than the array's 6/ });
      assert.throws(() => (bytes.raw = new Uint8Array(7)), { name: 'RangeError', message: /7 bytes are more than the array's 6/ });
      assert.throws(() => (bytes.value = '€'), isTypeErrorNaming('c', /SharedArray\.value \(character 0\)/));
      assert.throws(() => (bytes.value = 'xyé€'), isTypeErrorNaming('c', /SharedArray\.value \(character 3\)/));
      assert.equal(bytes.value, 'QRcdef', 'a refused string wrote nothing');
      const long = new ctx.RawArray('c', 300_000);
      (long.view as Uint8Array).fill(97);
      assert.equal(long.value.length, 300_000, 'a long array reads whole');
      const text = new ctx.SharedArray('u', 4);
      text.value = '😀é';
      assert.equal(text.value, '😀é');
      assert.deepEqual(text.toArray(), ['😀', 'é', '\x00', '\x00']);
      const longText = new ctx.RawArray('u', 100_000);
      (longText.view as Uint32Array).fill(0x1f600);
      (longText.view as Uint32Array)[1] = 0x110000;
      assert.equal(longText.value, `😀\ufffd${'😀'.repeat(99_998)}`, 'a code point no character has reads as U+FFFD');
      text.value = 'abcd';
      assert.equal(text.value, 'abcd', 'four code points fill four elements');
      assert.throws(() => (text.value = 'abcde'), { name: 'RangeError' });
      assert.throws(() => (text as unknown as { raw: Uint8Array }).raw, { code: 'ERR_MP_BAD_TYPECODE', message: /SharedArray\.raw: only arrays of typecode 'c' have it \(this one is 'u'\)/ });
      const ints = new ctx.SharedArray('i', 2) as unknown as { value: string };
      assert.throws(() => ints.value, { code: 'ERR_MP_BAD_TYPECODE', message: /SharedArray\.value: only arrays of typecodes 'c' and 'u' have it \(this one is 'i'\); use get\(i\), toArray\(\) or view/ });
      assert.throws(() => (ints.value = 'x'), { code: 'ERR_MP_BAD_TYPECODE' });
    });

    it("get() of a 'u' item that is no character (a number above 0x10FFFF written through view) throws a RangeError naming the array, index and number, as Python's ValueError", { timeout }, () => {
      const text = new ctx.SharedArray('u', 'a😀b');
      (text.view as Uint32Array)[1] = 0x110000;
      const naming = (index: number) => ({ name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: new RegExp(`^SharedArray\\.get\\(${index}\\): this 'u' array's item ${index} holds 0x110000, which is no character .*written through \\.view`) });
      assert.throws(() => text.get(1), naming(1));
      assert.throws(() => text.get(-2), naming(1), 'the index it read, counted from the start');
      assert.throws(() => text.toArray(), naming(1));
      assert.equal(text.get(2), 'b', 'the other items read as before');
      assert.equal(text.value, 'a\ufffdb', 'value reads it as U+FFFD');
    });

    it('getLock() is an RLock by default, the lock given, and throws ERR_MP_NO_LOCK for a RawArray or lock: false', { timeout }, () => {
      assert.ok(new ctx.SharedArray('i', 1).getLock() instanceof ctx.RLock);
      const lock = new ctx.Lock();
      assert.equal(new ctx.SharedArray('i', 1, { lock }).getLock(), lock);
      assert.throws(() => new ctx.RawArray('i', 1).getLock(), isProcessError('ERR_MP_NO_LOCK', /^RawArray\.getLock\(\): this array has no lock/));
      assert.throws(() => new ctx.SharedArray('i', 1, { lock: false }).getLock(), isProcessError('ERR_MP_NO_LOCK'));
    });
  });

  describe(`sharing with ${other}`, () => {
    it(`every typecode written here is read there, and what ${other} writes is seen here`, { timeout }, async (t) => {
      t.after(endAll);
      const values = new Map<Typecode, Value>();
      const arrays = new Map<Typecode, InstanceType<typeof ctx.SharedArray>>();
      const writes = new Map<Typecode, unknown>();
      for (const { typecode, min, max } of typecodes) {
        values.set(typecode, new ctx.Value(typecode, min as never));
        arrays.set(typecode, new ctx.RawArray(typecode, [min, min] as never));
        writes.set(typecode, max);
      }
      const p = start(ctx, { target: readThenWrite, args: [file.channel.path, values, arrays, writes] as never });
      const { seen } = await file.channel.event('read-then-wrote');
      await p.join();
      assert.equal(p.exitCode, 0);
      for (const { typecode, min, max } of typecodes) {
        assert.deepEqual((seen as Record<string, string[]>)[typecode], [show(min), show(min), show(min)], `${other} read '${typecode}'`);
        assert.equal(values.get(typecode)?.value, max, `Value('${typecode}') written in ${other}`);
        assert.deepEqual(arrays.get(typecode)?.toArray(), [min, max], `RawArray('${typecode}') written in ${other}`);
      }
    });

    it(`a SharedArray's lock travels with it: 2 ${backend === 'process' ? 'processes' : 'threads'} x 5,000 increments of one element under getLock() are exact`, { timeout }, async (t) => {
      t.after(endAll);
      const array = new ctx.SharedArray('q', 3);
      const ps = [start(ctx, { target: incrementElement, args: [array, 1, 5000] }), start(ctx, { target: incrementElement, args: [array, 1, 5000] })];
      const lock = array.getLock();
      for (let i = 0; i < 5000; i++) {
        await lock.acquire();
        array.set(1, array.get(1) + 1n);
        lock.release();
      }
      await Promise.all(ps.map((p) => p.join()));
      assert.deepEqual(array.toArray(), [0n, 15_000n, 0n]);
    });

    it(`an array too big for the shared arena (its own segment) is shared with ${other} through its view`, { timeout }, async (t) => {
      t.after(endAll);
      const array = new ctx.RawArray('B', 300_000);
      start(ctx, { target: fillView, args: [file.channel.path, array, 7] });
      const filled = await file.channel.event('filled');
      assert.deepEqual([filled.length, filled.last], [300_000, 7]);
      assert.ok(array.view.every((byte) => byte === 7));
    });
  });
});

describe('shared memory after the program ends', () => {
  for (const end of ['exit', 'throw'] as const) {
    it(`no /dev/shm/mp-<pid>-* segment outlives a program that ends with ${end === 'exit' ? 'process.exit()' : 'an uncaught error'}`, { timeout }, async () => {
      const run = await runObjectsProgram('sharedctypes', end);
      assert.equal(run.code, end === 'exit' ? 3 : 1, run.stderr);
      assert.ok(run.segments.length >= 2, `expected an arena and the big array's own segment, got ${run.segments}`);
      assert.deepEqual(segmentsOf(run.pid), []);
    });
  }

  it('nor one that is ended by SIGTERM', { timeout }, async () => {
    const run = await runObjectsProgram('sharedctypes', 'wait', 'SIGTERM');
    assert.equal(run.signal, 'SIGTERM', `the program should die of SIGTERM after cleaning up: ${run.stderr}`);
    assert.ok(run.segments.length >= 2);
    assert.deepEqual(segmentsOf(run.pid), []);
  });
});
