// Small plain data is written without V8's serializer (src/internal/plain-data.ts). What comes
// back must be what structured clone gives: compared here against structuredClone() itself, key
// order and prototypes included, over hand-picked edge cases and a few thousand random values;
// shared references and cycles included; and what the codec does not take (extra array
// properties, holes, class instances, long strings) must still arrive right, through the serializer.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../src/internal/plain-data.ts';
import { dumps, loads } from '../src/reduction.ts';
import { seeded } from './helpers/random.ts';

const scratch = new Uint8Array(64 * 1024);

/** The value after a trip through the codec, or 'declined' when encode() left it to the serializer. */
function roundTrip(value: unknown): unknown {
  const end = encode(value, scratch, 3);
  if (end === undefined) return 'declined';
  return decode(scratch.slice(0, end), 3);
}

/** dumps()'s bytes, kept past the next dumps() (they may be its reused scratch). */
const copied = (bytes: Uint8Array): Uint8Array => bytes.slice();

/** Deep equality that also compares key order, prototypes, -0 and NaN, as structured clone keeps them. */
function assertSameClone(actual: unknown, expected: unknown, path = 'value', seen = new Map<object, unknown>()): void {
  if (typeof expected !== 'object' || expected === null) {
    assert.ok(Object.is(actual, expected), `${path}: ${String(actual)} is not ${String(expected)}`);
    return;
  }
  if (seen.has(expected)) {
    assert.equal(actual, seen.get(expected), `${path} should be the object met before`);
    return;
  }
  seen.set(expected, actual);
  assert.equal(typeof actual, 'object', `${path} is not an object`);
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${path} has another prototype`);
  assert.deepEqual(Reflect.ownKeys(actual as object), Reflect.ownKeys(expected), `${path} has other keys or another key order`);
  for (const key of Reflect.ownKeys(expected)) {
    assertSameClone((actual as Record<PropertyKey, unknown>)[key], (expected as Record<PropertyKey, unknown>)[key], `${path}.${String(key)}`, seen);
  }
}

const taken: [string, unknown][] = [
  ['the bench record', { id: 12345, name: 'sensor-0042', ok: true, value: 3.14159, tags: ['alpha', 'beta'], unit: 'ms' }],
  ['numbers', [0, -0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53 + 2, 0.1, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE]],
  ['null, undefined, booleans', [null, undefined, true, false, { a: undefined, b: null }]],
  ['strings: empty, ASCII, Latin-1, CJK, emoji, lone surrogates', ['', 'x', 'café', 'ÿ', '儿子你好!', '😀', '\ud800', 'a\udc00b', '\u0000\u007f\u0080', 'x'.repeat(24), 'y'.repeat(25), 'é'.repeat(1024)]],
  ['keys: integer-like first, then insertion order; unicode keys', { b: 1, 2: 'two', a: 2, 1: 'one', 名前: 'chen', '': 0, 'key with spaces': [] }],
  ['nested', { a: { b: { c: [[1, [2, [3]]], { d: 'e' }] } } }],
  ['an object without a prototype arrives with Object.prototype', Object.assign(Object.create(null) as object, { x: 1 })],
  ['empty containers', [{}, [], [[]], { a: {} }]],
  ['the seed Pipe message', [12, { name: 'chen' }, 'hello']],
  ['shared references', (() => {
    const shared = { x: 1 };
    const list = [shared];
    return { a: shared, b: [shared, list, list], c: { d: shared } };
  })()],
  ['cycles, through an object and through an array', (() => {
    const object: Record<string, unknown> = { name: 'self' };
    object.self = object;
    const array: unknown[] = [1];
    array.push(array, object);
    return [object, array];
  })()],
  ['a pool batch: 20 tasks sharing one function reference', (() => {
    const fn = { module: 'file:///app/tasks.js', name: 'square' };
    return { type: 'tasks', tasks: Array.from({ length: 20 }, (_, id) => ({ type: 'task', id, fn, items: [id], star: false })) };
  })()],
  ['a pool batch of 128 tiny tasks: more than 64 objects and arrays', { type: 'tasks', tasks: Array.from({ length: 128 }, (_, id) => ({ type: 'task', id, fn: 0, items: [[id]], star: true })) }],
  ['1,021 objects and arrays', Array.from({ length: 4 }, () => Array.from({ length: 254 }, (_, i) => ({ i })))],
  // From 16 numbers on, an array of numbers only is one run of float64s, of any length that fits.
  ['arrays of numbers only: 16, 257 and 5,000 long, with -0, NaN, infinities and large values', [
    Array.from({ length: 16 }, (_, i) => i - 8),
    Array.from({ length: 257 }, (_, i) => i * 1.5),
    Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? -0 : i % 11 === 0 ? NaN : i % 13 === 0 ? -Infinity : i * 1e10 + 0.5)),
  ]],
  ['an array of numbers met three times, and one holding itself', (() => {
    const numbers = Array.from({ length: 20 }, (_, i) => i);
    const selfish: unknown[] = Array.from({ length: 20 }, (_, i) => i);
    selfish.push(selfish);
    return { a: numbers, b: [numbers, numbers], selfish };
  })()],
  ['Float64Arrays of their own buffers (a pool chunk), one met twice: -0, NaN, infinities', (() => {
    const shared = new Float64Array([1.5, -0, NaN, Infinity, -Infinity, 2 ** 53 + 2, Number.MIN_VALUE]);
    return { a: shared, b: [shared, new Float64Array(3)], expando: Object.assign(new Float64Array([2]), { dropped: 'as clone drops it' }) };
  })()],
  ['arrays of numbers but one element: a string last, undefined in the middle', [
    [...Array.from({ length: 20 }, (_, i) => i), 'x'],
    Array.from({ length: 20 }, (_, i) => (i === 10 ? undefined : i)),
  ]],
];

const declined: [string, () => unknown][] = [
  ['an array with a property besides its elements', () => Object.assign([1, 2], { extra: true })],
  ['an array with a hole', () => [1, , 3]], // eslint-disable-line no-sparse-arrays
  // As many properties as holes: counting the keys alone took it for a plain array of three.
  ['an array with a hole and a property', () => Object.assign([1, , 3], { extra: true })], // eslint-disable-line no-sparse-arrays
  ['a RegExp match (index, input and groups besides the elements)', () => /(?<word>b)/.exec('abc')],
  ['an own __proto__ key', () => JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown],
  ['a class instance', () => ({ when: new Date(0) })],
  ['a Map', () => [new Map([[1, 2]])]],
  ['a typed array', () => ({ bytes: new Uint8Array([1, 2]) })],
  ['a Float64Array viewing part of a larger buffer (its clone carries the whole buffer)', () => [new Float64Array(new ArrayBuffer(64), 8, 3)]],
  ['an empty Float64Array', () => [new Float64Array(0)]],
  ['a bigint', () => [1n]],
  ['a string longer than 1024 characters', () => ['z'.repeat(1025)]],
  ['an array of more than 256 elements, not all numbers', () => Array.from({ length: 257 }, (_, i) => String(i))],
  ['an array of numbers with a property besides its elements', () => Object.assign(Array.from({ length: 300 }, (_, i) => i), { extra: true })],
  ['an array of numbers with a hole', () => {
    const holey = Array.from({ length: 300 }, (_, i) => i);
    delete holey[5];
    return holey;
  }],
  ['a short array of numbers with a hole and a property', () => Object.assign([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, , 16, 17], { extra: 1 })], // eslint-disable-line no-sparse-arrays
  ['more than 1024 objects and arrays', () => Array.from({ length: 5 }, () => Array.from({ length: 205 }, () => ({})))],
  ['nesting deeper than 16', () => {
    let value: unknown = 1;
    for (let i = 0; i < 17; i++) value = [value];
    return value;
  }],
  ['a getter that throws', () => ({ get broken(): never { throw new Error('no'); } })],
];

/**
 * A random plain value of depth `depth` at most, from a seeded generator (the same values every
 * run); now and then an object or array made before (`made`) again: a shared reference, or a cycle.
 */
function randomValue(next: () => number, depth: number, made: object[] = []): unknown {
  const kind = Math.floor(next() * (depth > 0 ? 10 : 7));
  switch (kind) {
    case 0: return Math.floor(next() * 2 ** 32) - 2 ** 31;
    case 1: return [NaN, -0, 0.5, 1e300, -1e-300, 2 ** 53][Math.floor(next() * 6)];
    case 2: return Array.from({ length: Math.floor(next() * 30) }, () => String.fromCharCode(Math.floor(next() * (next() < 0.8 ? 0x80 : 0x10000)))).join('');
    case 3: return next() < 0.5;
    case 4: return null;
    case 5: return undefined;
    case 6: return 'k'.repeat(Math.floor(next() * 40));
    case 7: {
      const array: unknown[] = [];
      made.push(array);
      const length = Math.floor(next() * 5);
      for (let i = 0; i < length; i++) array.push(randomValue(next, depth - 1, made));
      return array;
    }
    case 8: {
      const object: Record<string, unknown> = {};
      made.push(object);
      const keys = Math.floor(next() * 5);
      for (let i = 0; i < keys; i++) object[next() < 0.2 ? String(Math.floor(next() * 10)) : `key${Math.floor(next() * 8)}${next() < 0.1 ? 'é' : ''}`] = randomValue(next, depth - 1, made);
      return object;
    }
    default:
      return made.length > 0 && next() < 0.5 ? made[Math.floor(next() * made.length)] : null;
  }
}

describe('small plain data without the serializer', () => {
  it('an array of 100,000 numbers, longer than the scratch, is a run of float64s in a buffer of its own', () => {
    const numbers = Array.from({ length: 100_000 }, (_, i) => (i % 3 === 0 ? i : -i / 7));
    const bytes = dumps(numbers, 'test');
    assert.equal(bytes.byteLength, 1 + 5 + 8 * numbers.length, 'a format byte, a tag and a length, then the numbers');
    assertSameClone(loads(copied(bytes), 'test'), numbers);
  });

  for (const [name, value] of taken) {
    it(`${name}: comes back as structuredClone() gives it`, () => {
      const back = roundTrip(value);
      assert.notEqual(back, 'declined', 'the codec should take this value');
      assertSameClone(back, structuredClone(value));
    });
  }

  for (const [name, make] of declined) {
    it(`${name}: is left to the serializer, and still arrives as structured clone gives it`, () => {
      assert.equal(roundTrip(make()), 'declined');
      const value = make();
      let expected: unknown;
      try {
        expected = structuredClone(value);
      } catch (error) {
        // A getter's own error, or the serializer's, wrapped to say where.
        assert.throws(() => dumps(value, 'test'), (thrown: Error) => thrown === error || thrown.message.includes((error as Error).message) || (thrown as { code?: string }).code === 'ERR_MP_NOT_CLONEABLE');
        return;
      }
      assertSameClone(loads(copied(dumps(value, 'test')), 'test'), expected);
    });
  }

  it('objects of a shape met before (keys copied whole, objects made by a compiled literal) come back as structuredClone() gives them', () => {
    // The first trip reads the keys one by one, the second compiles the shape, the third and later use it.
    for (const [name, value] of taken) {
      for (let trip = 1; trip <= 4; trip++) assertSameClone(roundTrip(value), structuredClone(value), `${name}, trip ${trip}`);
    }
  });

  it('key lists that begin like a known one, or extend it, or reorder it, come back with their own keys', () => {
    const known = { id: 1, name: 'a', ok: true };
    const variants = [known, { id: 2 }, { id: 3, name: 'b' }, { id: 4, name: 'c', ok: false, extra: [1] }, { name: 'd', id: 5, ok: true }, { id: 6, ok: true, name: 'e' }, { id: 7, name: 'f', ok: true, 1: 'one' }];
    for (let round = 0; round < 3; round++) {
      for (const value of variants) assertSameClone(roundTrip(value), structuredClone(value));
      for (const value of [...variants].reverse()) assertSameClone(roundTrip({ outer: value, again: value, list: [value, { ...value }] }), structuredClone({ outer: value, again: value, list: [value, { ...value }] }));
    }
  });

  it('a cycle through an object of a compiled shape still refers to that object', () => {
    for (let trip = 0; trip < 4; trip++) {
      const node: Record<string, unknown> = { value: trip, next: null };
      node.next = node;
      const back = roundTrip(node) as Record<string, unknown>;
      assert.equal(back.next, back);
      assert.equal(back.value, trip);
    }
  });

  it('where code generation from strings is disallowed, objects of a known shape still arrive whole', { timeout: 60_000 }, async () => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      import { decode, encode } from ${JSON.stringify(new URL('../src/internal/plain-data.ts', import.meta.url).href)};
      const bytes = new Uint8Array(4096);
      const out = [];
      for (let i = 0; i < 4; i++) {
        const end = encode({ id: i, name: 'n' + i, tags: ['a'] }, bytes, 0);
        out.push(decode(bytes.slice(0, end), 0));
      }
      process.stdout.write(JSON.stringify(out));`;
    const run = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), [0, 1, 2, 3].map((i) => ({ id: i, name: `n${i}`, tags: ['a'] })));
  });

  it('a shared reference keeps its identity through dumps() and loads()', () => {
    const shared = { x: 1 };
    const [a, b] = loads(copied(dumps([shared, shared], 'test')), 'test') as [object, object];
    assert.equal(a, b);
  });

  it('3,000 random values come back as structuredClone() gives them, through dumps() and loads()', () => {
    const next = seeded(20261127);
    let taken = 0;
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(next, 4);
      if (roundTrip(value) !== 'declined') taken++;
      assertSameClone(loads(copied(dumps(value, 'test')), 'test'), structuredClone(value), `random value ${i}`);
    }
    assert.ok(taken > 2500, `the codec took only ${taken} of 3,000 small values`);
  });

  it('a getter that sends something itself while its object is written: both arrive whole', () => {
    let inner: Uint8Array | undefined;
    const record = {
      first: 'x'.repeat(20),
      get second(): string {
        inner = copied(dumps({ nested: [1, 2, 3], text: 'inner message' }, 'test'));
        return 'y'.repeat(20);
      },
      third: 3.5,
    };
    const outer = copied(dumps(record, 'test'));
    assert.deepEqual(loads(outer, 'test'), { first: 'x'.repeat(20), second: 'y'.repeat(20), third: 3.5 });
    assert.deepEqual(loads(inner as Uint8Array, 'test'), { nested: [1, 2, 3], text: 'inner message' });
  });

  it('plain data larger than the scratch (a pool batch with a chunk of 20,000 numbers) stays plain data, in a buffer of its own', () => {
    const chunk = Float64Array.from({ length: 20_000 }, (_, i) => (i % 5 === 0 ? -0 : i / 3));
    const list = Array.from({ length: 10_000 }, (_, i) => i * 0.25);
    const batch = [1, [7, 8], [chunk], [0], { list }];
    const plainFormat = copied(dumps({ a: 1 }, 'test'))[0];
    const bytes = copied(dumps(batch, 'test'));
    assert.equal(bytes[0], plainFormat, 'not the serializer\'s');
    const back = loads(bytes, 'test') as typeof batch;
    assertSameClone(back, batch);
    const array = (back[2] as Float64Array[])[0] as Float64Array;
    assert.equal(array.buffer.byteLength, chunk.byteLength, 'a buffer of its own length, as a clone has');
  });

  it('a Float64Array over shared memory or a resizable buffer is left to the serializer', () => {
    assert.equal(roundTrip([new Float64Array(new SharedArrayBuffer(16))]), 'declined');
    const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer;
    assert.equal(roundTrip([new Float64Array(new Resizable(16, { maxByteLength: 32 }))]), 'declined');
  });

  it('a value that does not fit the buffer is declined, and the next value is written from the start', () => {
    const small = new Uint8Array(32);
    assert.equal(encode({ text: 'x'.repeat(40) }, small, 0), undefined);
    const end = encode({ a: 1 }, small, 0);
    assert.ok(end !== undefined);
    assert.deepEqual(decode(small.slice(0, end), 0), { a: 1 });
  });

  it('keys whose bytes share a table slot still decode to themselves', () => {
    // Many distinct keys through a 256-entry table: collisions must compare bytes, not trust the hash.
    const object = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`k${i}`, i]));
    for (let round = 0; round < 2; round++) {
      for (let start = 0; start < 600; start += 50) {
        const part = Object.fromEntries(Object.entries(object).slice(start, start + 50));
        assertSameClone(roundTrip(part), part);
      }
    }
  });

  it('short string values whose bytes share a table slot still decode to themselves, in any order', () => {
    // Short values are reused by a hash of their bytes, as keys are: 1,000 of them through 256 slots.
    const values = Array.from({ length: 1000 }, (_, i) => `v${(i * 7919).toString(36)}`.slice(0, 1 + (i % 24)));
    for (const order of [values, [...values].reverse(), values]) {
      for (let start = 0; start < order.length; start += 100) {
        const part = order.slice(start, start + 100);
        assert.deepEqual(roundTrip(part), part);
      }
    }
  });
});
