// The manager's dict, list and Namespace proxies, used from other processes (and threads): keys
// keep their types, every method of API.md "Managers" does what Python's does, copy() gives plain
// values, and bad indices or missing items reject with Python's error as a code.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { forEachBackend } from '../helpers/backends.ts';
import { ProcessError } from '../../src/index.ts';
import { Namespace } from '../../src/managers/index.ts';
import { assertNoLeftovers, joinedCleanly, managerFor, startEach } from '../fixtures/managers/harness.ts';
import { appendEach, extendWith, setAttribute, setObjectKeys, setRichValues, setTypedKeys } from '../fixtures/managers/targets.ts';

const timeout = 60_000;

after(() => assertNoLeftovers());

/** Asserts that `promise` rejects with a ProcessError carrying `code` whose message matches. */
async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: ProcessError) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });
}

forEachBackend((ctx, backend) => {
  describe('DictProxy', () => {
    it('keeps the type of keys set in another process: 0 and "0", 2 and "2", 1n are five keys', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<unknown, unknown>();
      await joinedCleanly(startEach(ctx, setTypedKeys, [[d]]));
      assert.equal(await d.size(), 5);
      assert.equal(await d.get(0), '1');
      assert.equal(await d.get('0'), 'zero');
      assert.equal(await d.get('2'), 2);
      assert.equal(await d.get(2), 'two');
      assert.equal(await d.get(1n), 'big');
      assert.deepEqual(await d.keys(), [0, '0', '2', 2, 1n]);
    });

    it('finds array, object and Date keys set in another process by value, as Python finds tuples', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<unknown, unknown>([[[0], 'from init']]);
      await joinedCleanly(startEach(ctx, setObjectKeys, [[d]]));
      assert.equal(await d.size(), 5);
      assert.equal(await d.get([0]), 'from init');
      assert.equal(await d.get([1, 2]), 'tuple');
      assert.equal(await d.get(['1', 2]), 'other tuple', "['1', 2] and [1, 2] are two keys, as '1' and 1 are");
      assert.equal(await d.get({ y: [2, 3], x: 1 }), 'record', "an object's keys are compared in any order");
      assert.equal(await d.get(new Date(5)), 'date');
      assert.equal(await d.has([1, 2, 3]), false);
      assert.equal(await d.get([2, 1], 'missing'), 'missing');
      await d.set([1, 2], 'again');
      assert.equal(await d.size(), 5, 'setting an equal key replaces its value');
      assert.equal(await d.setdefault([1, 2], 'ignored'), 'again');
      assert.equal(await d.pop({ x: 1, y: [2, 3] }), 'record');
      assert.equal(await d.delete(new Date(5)), true);
      assert.deepEqual(await d.entries(), [[[0], 'from init'], [[1, 2], 'again'], [['1', 2], 'other tuple']]);
      assert.equal((await d.copy()).size, 3);
      // A Map, a Set or any other object as a key is refused, naming the fix, as Python refuses an unhashable key.
      await assert.rejects(d.set(new Set([1]), 'x'), { name: 'TypeError', code: 'ERR_MP_UNHASHABLE', message: /^dict\.set\(\): a key must be a primitive, .*got an instance of Set\..*key by a primitive/ });
      await assert.rejects(d.get([new Map()]), { name: 'TypeError', code: 'ERR_MP_UNHASHABLE', message: /^dict\.get\(\): .*got an instance of Map/ });
      assert.equal(await d.size(), 3);
    });

    it("a dict or list proxy passed to update() or dict() gives its contents, as Python iterates a proxy there", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const source = await m.dict<string, number>([['a', 1], ['b', 2]]);
      const pairs = await m.list<[string, number]>([['c', 3]]);
      const d = await m.dict<string, number>();
      await d.update(source);
      await d.update(pairs);
      assert.deepEqual(await d.entries(), [['a', 1], ['b', 2], ['c', 3]]);
      assert.deepEqual(await (await m.dict<string, number>(source)).entries(), [['a', 1], ['b', 2]]);
    });

    it('a value that cannot be sent rejects naming the call and where in its arguments; the proxy stays usable', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<string, unknown>();
      await assert.rejects(d.set('f', () => 1), { name: 'TypeError', code: 'ERR_MP_NOT_CLONEABLE', message: /^dict\.set\(\) args\[1\] is a function: / });
      await assert.rejects(d.update({ a: { b: Symbol('x') } }), { name: 'TypeError', code: 'ERR_MP_NOT_CLONEABLE', message: /^dict\.update\(\) args\[0\]\.a\.b is Symbol\(x\): / });
      await d.set('ok', 1);
      assert.deepEqual(await d.entries(), [['ok', 1]]);
    });

    it('carries Map, bigint, Date, bytes, Set and nested values unchanged', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<string, unknown>();
      await joinedCleanly(startEach(ctx, setRichValues, [[d]]));
      assert.deepEqual(await d.get('map'), new Map<unknown, unknown>([[1, 'one'], ['1', 'uno']]));
      assert.equal(await d.get('big'), 2n ** 70n);
      assert.deepEqual(await d.get('date'), new Date(5));
      assert.deepEqual(await d.get('bytes'), new Uint8Array([1, 2, 3]));
      assert.deepEqual(await d.get('nested'), { a: [1, { b: null }], s: new Set(['x']) });
    });

    it('get/set/has/delete, get with a fallback, keys/values/entries/items and size', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<string, number>([['a', 1], ['b', 2]]);
      assert.equal(await d.get('a'), 1);
      assert.equal(await d.get('zz'), undefined);
      assert.equal(await d.get('zz', -1), -1);
      assert.equal(await d.has('a'), true);
      assert.equal(await d.has('zz'), false);
      await d.set('c', 3);
      assert.equal(await d.delete('b'), true);
      assert.equal(await d.delete('b'), false);
      assert.deepEqual(await d.keys(), ['a', 'c']);
      assert.deepEqual(await d.values(), [1, 3]);
      assert.deepEqual(await d.entries(), [['a', 1], ['c', 3]]);
      assert.deepEqual(await d.items(), [['a', 1], ['c', 3]]);
      assert.equal(await d.size(), 2);
    });

    it('update() takes a Map, an object or entries; pop() with and without a default; setdefault(); clear()', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<unknown, unknown>({ a: 1 });
      await d.update(new Map([[1, 'one']]));
      await d.update({ b: 2 });
      await d.update([['c', 3]]);
      assert.deepEqual(await d.entries(), [['a', 1], [1, 'one'], ['b', 2], ['c', 3]]);
      assert.equal(await d.pop('a'), 1);
      assert.equal(await d.has('a'), false);
      assert.equal(await d.pop('a', 'fallback'), 'fallback');
      assert.equal(await d.pop('a', undefined), undefined, 'an explicit undefined default is a default');
      await rejectsWith(d.pop('a'), 'ERR_MP_KEY_ERROR', /no key a/);
      assert.equal(await d.setdefault('b', 99), 2, 'an existing key keeps its value');
      await d.set('last', 'L');
      assert.deepEqual(await d.popitem(), ['last', 'L'], 'popitem() takes the last pair set, as Python 3.7+');
      assert.equal(await d.has('last'), false);
      assert.equal(await d.setdefault('new', 7), 7);
      assert.equal(await d.get('new'), 7);
      await d.clear();
      assert.equal(await d.size(), 0);
      await rejectsWith(d.popitem(), 'ERR_MP_KEY_ERROR', /the dict is empty/);
    });

    it('copy() is a plain Map, detached from the managed dict', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<unknown, unknown>([[0, 'zero']]);
      const copy = await d.copy();
      assert.ok(copy instanceof Map);
      copy.set('local', true);
      assert.equal(await d.has('local'), false);
      assert.equal(d.typeid, 'dict');
      assert.match(String(d), /^<dict proxy #\d+ at .+>$/);
    });
  });

  describe('ListProxy', () => {
    it('a list proxy passed to extend() or list() gives its items, as Python iterates a proxy there', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const source = await m.list<number>([1, 2]);
      const l = await m.list<number>([0]);
      await l.extend(source);
      assert.deepEqual(await l.copy(), [0, 1, 2]);
      assert.deepEqual(await (await m.list<number>(source)).copy(), [1, 2]);
      const dict = await m.dict<string, number>([['a', 1], ['b', 2]]);
      await l.extend(dict as never);
      assert.deepEqual(await l.copy(), [0, 1, 2, 'a', 'b'], "a dict's proxy gives its keys, as Python's list.extend(d)");
      const value = await m.Value('i', 1);
      await assert.rejects(m.list(value as never), { name: 'TypeError', message: /cannot be iterated/ });
    });

    it('proxies stored in a list are told apart by the object they refer to: index(), count(), has() and remove() find the right one', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const [first, second] = [await m.Queue(), await m.Queue()];
      const l = await m.list<unknown>([first, second]);
      assert.equal(await l.index(second), 1);
      assert.equal(await l.count(first), 1);
      await l.remove(second);
      assert.equal(await l.has(second), false);
      assert.equal(await l.has(first), true);
      assert.equal(await l.length(), 1);
      await rejectsWith(l.index(second), 'ERR_MP_VALUE_ERROR');
    });

    it('takes append() and extend() from several processes; length() and copy() see them all', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list<unknown>();
      await joinedCleanly([...startEach(ctx, appendEach, [[l, ['a', 'b', 'c']]]), ...startEach(ctx, extendWith, [[l, [1, 2, 3]]])]);
      assert.equal(await l.length(), 6);
      const items = await l.copy();
      assert.ok(Array.isArray(items));
      assert.deepEqual(items.filter((x) => typeof x === 'string'), ['a', 'b', 'c'], 'one process\'s appends stay in order');
      assert.deepEqual(items.filter((x) => typeof x === 'number'), [1, 2, 3]);
    });

    it('get/set with negative indices, pop() at the end, at 0 and at -2, insert() as Python clamps it', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list(['a', 'b', 'c', 'd']);
      assert.equal(await l.get(0), 'a');
      assert.equal(await l.get(-1), 'd');
      assert.equal(await l.get(-4), 'a');
      await l.set(-2, 'C');
      assert.deepEqual(await l.copy(), ['a', 'b', 'C', 'd']);
      assert.equal(await l.pop(), 'd');
      assert.equal(await l.pop(0), 'a');
      await l.extend(['e', 'f']);
      assert.equal(await l.pop(-2), 'e');
      assert.deepEqual(await l.copy(), ['b', 'C', 'f']);
      await l.insert(0, 'first');
      await l.insert(-1, 'before last');
      await l.insert(100, 'end');
      await l.insert(-100, 'start');
      assert.deepEqual(await l.copy(), ['start', 'first', 'b', 'C', 'before last', 'f', 'end']);
    });

    it('index(), count() and remove() compare by value, as Python\'s == does, objects too', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list<unknown>([1, 'x', [1, 2], { k: 'v' }, 1, [1, 2]]);
      assert.equal(await l.index('x'), 1);
      assert.equal(await l.index([1, 2]), 2);
      assert.equal(await l.count(1), 2);
      assert.equal(await l.count([1, 2]), 2);
      assert.equal(await l.count('absent'), 0);
      await l.remove({ k: 'v' });
      await l.remove([1, 2]);
      assert.deepEqual(await l.copy(), [1, 'x', 1, [1, 2]]);
      assert.equal(await l.has([1, 2]), true, "has() is Python's `in`, by value");
      assert.equal(await l.has({ k: 'v' }), false);
    });

    it('slice() as Python\'s list[a:b]; sort() ascending and with { reverse: true }', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list([3, 1, 2, 5, 4]);
      assert.deepEqual(await l.slice(1, 3), [1, 2]);
      assert.deepEqual(await l.slice(-2), [5, 4]);
      assert.deepEqual(await l.slice(), [3, 1, 2, 5, 4]);
      await l.sort();
      assert.deepEqual(await l.copy(), [1, 2, 3, 4, 5]);
      await l.sort({ reverse: true });
      assert.deepEqual(await l.copy(), [5, 4, 3, 2, 1]);
      // As Python orders: numbers by value (10 after 9), arrays item by item, strings by character.
      const tuples = await m.list<unknown>([[10], [9], [1, 10], [1, 9], [1]]);
      await tuples.sort();
      assert.deepEqual(await tuples.copy(), [[1], [1, 9], [1, 10], [9], [10]]);
      const words = await m.list<unknown>(['b', 'a', 'B']);
      await words.sort();
      assert.deepEqual(await words.copy(), ['B', 'a', 'b']);
      const mixed = await m.list<unknown>([1, 'a', 0]);
      await assert.rejects(mixed.sort(), { name: 'TypeError', message: /^list\.sort\(\): .* cannot be compared/ });
    });

    it('rejects a bad index with ERR_MP_INDEX_ERROR and a missing item with ERR_MP_VALUE_ERROR', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list([10, 20, 30]);
      await rejectsWith(l.get(3), 'ERR_MP_INDEX_ERROR', /list index 3 out of range \(length 3\)/);
      await assert.rejects(l.get('1' as never), { name: 'TypeError', message: 'list indices must be integers, got "1" (string).' });
      await rejectsWith(l.get(-4), 'ERR_MP_INDEX_ERROR');
      await rejectsWith(l.set(5, 1), 'ERR_MP_INDEX_ERROR');
      await assert.rejects(l.get(1.5), { name: 'TypeError', message: /^list indices must be integers, got 1.5/ }, 'as Python: l[1.5] is a TypeError');
      await rejectsWith(l.remove(99), 'ERR_MP_VALUE_ERROR', /not in the list/);
      await rejectsWith(l.index(99), 'ERR_MP_VALUE_ERROR');
      const empty = await m.list();
      await rejectsWith(empty.pop(), 'ERR_MP_INDEX_ERROR');
      assert.deepEqual(await l.copy(), [10, 20, 30], 'a failed call changes nothing');
    });

    it('copy() is a plain array, detached from the managed list', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list([1, 2]);
      const copy = await l.copy();
      copy.push(3);
      assert.equal(await l.length(), 2);
    });
  });

  describe('NamespaceProxy', () => {
    it('sees attributes set in another process; has/delete/copy; a missing attribute rejects with ERR_MP_ATTRIBUTE_ERROR', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const ns = await m.Namespace({ x: 1 });
      await joinedCleanly(startEach(ctx, setAttribute, [[ns, 'y', { deep: [1n] }]]));
      assert.equal(await ns.get('x'), 1);
      assert.deepEqual(await ns.get('y'), { deep: [1n] });
      assert.equal(await ns.has('y'), true);
      assert.deepEqual(await ns.copy(), { x: 1, y: { deep: [1n] } });
      assert.equal(await ns.delete('x'), true);
      assert.equal(await ns.has('x'), false);
      await rejectsWith(ns.get('x'), 'ERR_MP_ATTRIBUTE_ERROR', /Namespace has no attribute 'x'/);
    });

    it("assigning a property of a proxy (Python's ns.x = 1, v.value = 5) throws, naming the call that reaches the server; nothing changes", { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const ns = await m.Namespace({ x: 1 });
      const v = await m.Value('i', 1);
      const d = await m.dict();
      assert.throws(() => Object.assign(ns, { x: 2 }), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: /^<Namespace proxy #\d+ at .*>: `proxy\.x = \.\.\.` would change only this process's proxy object, not the Namespace in the manager's server\. Call await proxy\.set\('x', value\) instead\.$/ });
      assert.throws(() => Object.assign(v, { value: 5 }), { message: /Call await proxy\.set\(value\) instead/ });
      assert.throws(() => Object.assign(d, { k: 1 }), { message: /Call await proxy\.set\('k', value\) instead/ });
      assert.equal(await ns.get('x'), 1);
      assert.equal(await v.get(), 1);
      assert.equal(await d.has('k'), false);
      assert.match(inspect(d), /^<dict proxy #\d+ at .+>$/, 'console.log() shows what it is a proxy of');
    });

    it("starts from a local Namespace (Python's managers.Namespace), and copy() makes one again", { timeout }, async (t) => {
      const local = new Namespace({ a: 1, b: 'x' });
      assert.equal(local.a, 1);
      assert.equal(String(local), "Namespace(a=1, b='x')");
      const m = await managerFor(t, backend);
      const ns = await m.Namespace(local);
      await ns.set('c', [2]);
      const back = new Namespace(await ns.copy());
      assert.ok(back instanceof Namespace);
      assert.deepEqual({ ...back }, { a: 1, b: 'x', c: [2] });
    });
  });
});
