import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { forEachBackend } from './helpers/backends.ts';
import { TestChannel } from './helpers/channel.ts';
import { killStrays } from './helpers/processes.ts';
import { ProcessError, type Process } from '../src/index.ts';
import { SharedMemory, ShareableList, type ShareableItem } from '../src/shared-memory.ts';
import { unlinkQuietly } from '../src/resource-tracker.ts';
import { shareList } from './fixtures/shm/targets.ts';
import { noPython, runPython, tag } from './fixtures/shm/interop.ts';

const timeout = 30_000;
const prefix = `mptest-${process.pid}-`;
let counter = 0;
/** A fresh user-chosen name; after() checks that none of them is left in /dev/shm. */
const uniqueName = (what: string) => `${prefix}${what}-${counter++}`;

let channel: TestChannel;

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  killStrays();
  await channel.close();
  const left = readdirSync('/dev/shm').filter((name) => name.startsWith(prefix));
  for (const name of left) unlinkQuietly(`/${name}`);
  assert.deepEqual(left, [], 'segments of this test file left in /dev/shm');
});

type Cleanup = { after: (fn: () => void) => void };

/** A list for one test, unlinked when the test ends. */
function listOf(t: Cleanup, items: Iterable<ShareableItem>, name?: string): ShareableList {
  const list = new ShareableList(items, name === undefined ? {} : { name });
  t.after(() => list.shm.unlink());
  return list;
}

const MIXED: ShareableItem[] = [42, -1.5, true, 'héllo wörld', Buffer.from('bytes\x01'), null, 2n ** 62n, false, 'sixteen chars...'];

describe('ShareableList', () => {
  it('holds ints, floats, bools, strings, bytes and null, and reads them back', { timeout }, (t) => {
    const list = listOf(t, MIXED);
    assert.equal(list.length, 9);
    assert.deepEqual(list.toArray(), [42, -1.5, true, 'héllo wörld', Buffer.from('bytes\x01'), null, 2n ** 62n, false, 'sixteen chars...']);
    assert.ok(list.get(4) instanceof Buffer, 'bytes read as a Buffer');
    assert.deepEqual([...list], list.toArray());
    assert.ok(list.shm instanceof SharedMemory);
    assert.match(list.shm.name, new RegExp(`^mp-${process.pid}-[0-9a-f]{16}$`), 'no name: a program-owned segment');
  });

  it("uses CPython's struct formats: q, d, xxxxxxx?, xxxxxx?x and a multiple of 8 above a str/bytes length", { timeout }, (t) => {
    const list = listOf(t, MIXED);
    // 'héllo wörld' is 13 bytes in UTF-8: a 16-byte slot; 'sixteen chars...' is 16: a 24-byte slot.
    assert.equal(list.format, 'qdxxxxxxx?16s8sxxxxxx?xqxxxxxxx?24s');
    const data = 8 + 8 + 8 + 16 + 8 + 8 + 8 + 8 + 24;
    const size = 8 + 8 * 10 + data + 8 * 9 + 9;
    assert.equal(list.shm.size, size, 'struct.calcsize of header, offsets, data, formats and codes');
    const view = new DataView(list.shm.buf.buffer);
    assert.equal(view.getBigInt64(0, true), 9n, 'the item count');
    assert.deepEqual(Array.from({ length: 10 }, (_, i) => Number(view.getBigInt64(8 + 8 * i, true))), [0, 8, 16, 24, 40, 48, 56, 64, 72, 96]);
    const codes = [...list.shm.buf.subarray(size - 9)];
    assert.deepEqual(codes, [0, 0, 0, 1, 2, 3, 0, 0, 1], 'back-transform codes: plain, str, bytes, None');
  });

  it('makes an empty list of 16 bytes, with or without an empty sequence', { timeout }, (t) => {
    for (const list of [new ShareableList(), new ShareableList([])]) {
      t.after(() => list.shm.unlink());
      assert.equal(list.length, 0);
      assert.equal(list.shm.size, 16);
      assert.deepEqual(list.toArray(), []);
      assert.equal(list.format, '');
    }
  });

  it('reads a safe integer as a number and a larger one as a bigint; -0, NaN, Infinity and fractions are floats', { timeout }, (t) => {
    const big = 2n ** 63n - 1n;
    const list = listOf(t, [Number.MAX_SAFE_INTEGER, 2n ** 53n, -(2n ** 63n), big, 7n, -0, Number.NaN, Infinity, 0.1]);
    assert.deepEqual(list.toArray(), [Number.MAX_SAFE_INTEGER, 2n ** 53n, -(2n ** 63n), big, 7, -0, Number.NaN, Infinity, 0.1]);
    assert.equal(list.format, 'qqqqqdddd');
    assert.ok(Object.is(list.get(5), -0));
  });

  it('set() stores any number, bigint, boolean or null in any slot, changing its format as Python does', { timeout }, (t) => {
    const list = listOf(t, ['a long string of 27 bytes..', 1, null]);
    list.set(0, 3.25);
    list.set(1, null);
    list.set(2, true);
    assert.deepEqual(list.toArray(), [3.25, null, true]);
    assert.equal(list.format, 'dxxxxxx?xxxxxxxx?');
    list.set(0, 'back to a string, 27 bytes.');
    assert.equal(list.get(0), 'back to a string, 27 bytes.');
    assert.equal(list.format, '32sxxxxxx?xxxxxxxx?', "a slot keeps its allocated size; a non-string slot's format becomes '<size>s'");
  });

  it('set() of a str or bytes that fits the slot overwrites all of a longer old value', { timeout }, (t) => {
    const list = listOf(t, ['abcdefghijk', Buffer.from('0123456789'), 5]);
    list.set(0, 'xy');
    list.set(1, Buffer.from([9]));
    list.set(2, 'eight ch'); // an int slot holds 8 bytes
    assert.deepEqual(list.toArray(), ['xy', Buffer.from([9]), 'eight ch']);
    assert.equal(list.format, '16s16s8s');
  });

  it('set() of a str or bytes larger than its slot throws a RangeError naming the sizes and the fix', { timeout }, (t) => {
    const list = listOf(t, ['short', 1, Buffer.from('ab')]);
    assert.throws(
      () => list.set(0, 'é'.repeat(5)),
      (e: RangeError & { code?: string }) =>
        e instanceof RangeError &&
        e.code === 'ERR_MP_OUT_OF_RANGE' &&
        e.message ===
          "ShareableList.set(): the string for index 0 is 10 bytes in UTF-8, but that slot holds 8: slot sizes are fixed when the list is created. Create the list with an item of at least 10 bytes at that index (a placeholder such as ' '.repeat(10)), or store a shorter value.",
    );
    assert.throws(() => list.set(1, 'nine char'), /the string for index 1 is 9 bytes in UTF-8, but that slot holds 8/);
    assert.throws(() => list.set(-1, Buffer.alloc(9, 1)), /the bytes for index -1 is 9 bytes, but that slot holds 8/);
    assert.deepEqual(list.toArray(), ['short', 1, Buffer.from('ab')], 'a refused set() changes nothing');
  });

  it('get() and set() take negative indexes; out-of-range and non-integer indexes throw', { timeout }, (t) => {
    const list = listOf(t, [1, 2, 3]);
    assert.equal(list.get(-1), 3);
    list.set(-3, 10);
    assert.equal(list.get(0), 10);
    for (const index of [3, -4]) {
      assert.throws(() => list.get(index), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: `ShareableList.get(): index ${index} is out of range (the list has 3 items: -3..2).` });
    }
    assert.throws(() => list.set(3, 1), { name: 'RangeError', message: 'ShareableList.set(): index 3 is out of range (the list has 3 items: -3..2).' });
    assert.throws(() => list.get(1.5), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: 'ShareableList.get(): expected an integer index, got 1.5 (number).' });
    assert.throws(() => list.get('0' as unknown as number), { name: 'TypeError', message: 'ShareableList.get(): expected an integer index, got "0" (string).' });
    assert.throws(() => new ShareableList().get(0), { message: 'ShareableList.get(): index 0 is out of range (the list is empty).' });
  });

  it('rejects items it cannot hold: TypeError naming the item and the kinds it holds; RangeError for ints beyond 64 bits', { timeout }, () => {
    const kinds = 'a ShareableList holds numbers, bigints (64-bit), booleans, strings, bytes (Uint8Array or Buffer) and null. Store other values as a string (JSON.stringify), or use a Manager list.';
    assert.throws(() => new ShareableList([1, { a: 1 } as never]), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: `new ShareableList(): item 1 is an instance of Object: ${kinds}` });
    assert.throws(() => new ShareableList([undefined as never]), { name: 'TypeError', message: `new ShareableList(): item 0 is undefined (undefined): ${kinds}` });
    assert.throws(() => new ShareableList([[1] as never]), { name: 'TypeError', message: `new ShareableList(): item 0 is an instance of Array: ${kinds}` });
    assert.throws(() => new ShareableList(['\ud800']), { name: 'TypeError', message: 'new ShareableList(): item 0 is a string with a lone surrogate, which UTF-8 (and Python) cannot encode. Fix the string, or store it as bytes.' });
    assert.throws(() => new ShareableList([2n ** 63n]), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: 'new ShareableList(): item 0 is 9223372036854775808n: an int item is 64-bit, from -(2n ** 63n) to 2n ** 63n - 1n. Store larger numbers as strings.' });
    assert.throws(() => new ShareableList(['x'.repeat(9_999_992)]), { name: 'RangeError', message: /item 0 is 9999992 bytes; a str or bytes item holds less than 9999992/ });
    assert.throws(() => new ShareableList('abc' as never), { name: 'TypeError', message: 'new ShareableList(): expected an iterable of items (an array), got "abc" (string). To open an existing list by name: new ShareableList(null, { name }).' });
    assert.throws(() => new ShareableList({ name: 'x' } as never), { name: 'TypeError', message: /got an instance of Object\. To open an existing list by name: new ShareableList\(null, \{ name \}\)\./ });
    const list = new ShareableList([1]);
    try {
      assert.throws(() => list.set(0, Symbol('s') as never), { name: 'TypeError', message: /^ShareableList\.set\(\): the value for index 0 is Symbol\(s\) \(symbol\)/ });
    } finally {
      list.shm.unlink();
    }
  });

  it('count() and index() compare by value: bytes by content, an int as number or bigint alike, true is not 1', { timeout }, (t) => {
    const list = listOf(t, [1, true, Buffer.from('ab'), 'ab', 1n, 2n ** 60n, null, 1.5]);
    assert.equal(list.count(1), 2);
    assert.equal(list.count(1n), 2);
    assert.equal(list.count(true), 1);
    assert.equal(list.count(new Uint8Array([0x61, 0x62])), 1);
    assert.equal(list.count('ab'), 1);
    assert.equal(list.count(null), 1);
    assert.equal(list.index(Buffer.from('ab')), 2);
    assert.equal(list.index(2n ** 60n), 5);
    assert.equal(list.index(Number(2n ** 60n)), 5);
    assert.equal(list.index(1.5), 7);
    assert.throws(() => list.index('zz'), {
      name: 'RangeError',
      code: 'ERR_MP_VALUE_NOT_FOUND',
      message: `ShareableList.index(): "zz" (string) is not in the list '${list.shm.name}'. Check with count() first.`,
    });
  });

  it("drops trailing NULs of str and bytes, as CPython does (python/cpython#96779); leading and inner NULs stay", { timeout }, (t) => {
    const list = listOf(t, ['a\0', Buffer.from([0, 1, 0, 0]), 'x\0y']);
    assert.deepEqual(list.toArray(), ['a', Buffer.from([0, 1]), 'x\0y']);
  });

  it('opens an existing list by name, seeing and making changes; create with a taken name or open a missing one throws', { timeout }, (t) => {
    const name = uniqueName('by-name');
    const list = listOf(t, [1, 'two', 3.5], name);
    assert.equal(list.shm.name, name);
    const other = new ShareableList(null, { name });
    const viaUndefined = new ShareableList(undefined, { name });
    assert.deepEqual(other.toArray(), [1, 'two', 3.5]);
    other.set(1, 'deux');
    assert.equal(list.get(1), 'deux');
    assert.equal(viaUndefined.get(1), 'deux');
    assert.equal(other.length, 3);
    assert.throws(() => new ShareableList([1], { name }), {
      name: 'ProcessError',
      code: 'EEXIST',
      message: `new ShareableList(): a segment named '${name}' already exists. Open the list with new ShareableList(null, { name: '${name}' }), or choose another name.`,
    });
    const missing = uniqueName('missing');
    assert.throws(() => new ShareableList(null, { name: missing }), {
      name: 'ProcessError',
      code: 'ENOENT',
      message: `new ShareableList(): no segment named '${missing}' exists (it was never created, or was unlinked). Create the list with new ShareableList(items, { name: '${missing}' }).`,
    });
    assert.throws(() => new ShareableList(null, { name: 7 as never }), { name: 'TypeError', message: 'new ShareableList(): expected `name` to be a string, got 7 (number).' });
  });

  it('refuses to open a segment that does not hold a list, with ProcessError ERR_MP_NOT_A_SHAREABLE_LIST', { timeout }, (t) => {
    const tiny = new SharedMemory({ name: uniqueName('tiny'), create: true, size: 4 });
    t.after(() => tiny.unlink());
    assert.throws(() => new ShareableList(null, { name: tiny.name }), {
      name: 'ProcessError',
      code: 'ERR_MP_NOT_A_SHAREABLE_LIST',
      message: `ShareableList: the segment '${tiny.name}' holds 4 bytes that do not start with a list header: it is not a ShareableList (or was overwritten). Open it with new SharedMemory({ name: '${tiny.name}' }) instead.`,
    });
    const garbage = new SharedMemory({ name: uniqueName('garbage'), create: true, size: 64 });
    t.after(() => garbage.unlink());
    garbage.buf.fill(0x41);
    assert.throws(() => new ShareableList(null, { name: garbage.name }), (e: ProcessError) => e.code === 'ERR_MP_NOT_A_SHAREABLE_LIST');
    const badFormat = listOf(t, [1]);
    badFormat.shm.buf.set(Buffer.from('zz'), 32); // item 0's format: after the header (24 bytes) and the data (8)
    assert.throws(() => badFormat.get(0), { code: 'ERR_MP_NOT_A_SHAREABLE_LIST', message: /holds an unsupported struct format 'zz'/ });
  });

  it('after shm.close() (or the end of a `using` block) every access throws ERR_MP_CLOSED naming the list', { timeout }, (t) => {
    const name = uniqueName('closed');
    t.after(() => unlinkQuietly(`/${name}`));
    let kept: ShareableList;
    {
      using list = new ShareableList([1, 'a'], { name });
      kept = list;
    }
    for (const use of [() => kept.get(0), () => kept.set(0, 2), () => kept.toArray(), () => kept.format]) {
      assert.throws(use, (e: ProcessError) => e instanceof ProcessError && e.code === 'ERR_MP_CLOSED' && e.message.includes(`the list's segment '${name}' was closed in this process. Open it again with new ShareableList(null, { name: '${name}' }).`));
    }
    assert.equal(String(kept), `ShareableList(<closed>, name='${name}')`);
    assert.equal(statSync(`/dev/shm/${name}`).size, kept.shm.size, 'closing leaves the segment');
  });

  it('prints like Python: ShareableList([...], name=...)', { timeout }, (t) => {
    const list = listOf(t, [1, 'a', null, 2n ** 62n, Buffer.from([255]), 0.5, false]);
    assert.equal(String(list), `ShareableList([1, "a", null, 4611686018427387904n, <Buffer ff>, 0.5, false], name='${list.shm.name}')`);
  });
});

/**
 * The child's message, or a failure naming its exit code when it exits with an error first (so a
 * broken child fails the test at once instead of at its timeout). A child that exits with 0 sent
 * the message before it ended: wait for it.
 */
function fromChild(p: Process, event: string, match: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const message = channel.event(event, match);
  const exited = p.join().then(() => {
    if (p.exitCode !== 0) throw new Error(`${p.name} exited with code ${p.exitCode} before it sent '${event}' (see its stderr)`);
    return message;
  });
  return Promise.race([message, exited]);
}

forEachBackend((ctx, backend) => {
  describe('ShareableList across processes', () => {
    it('a ShareableList passed as a Process arg is the same list: writes are seen both ways', { timeout }, async (t) => {
      const label = `list-${backend}`;
      const items: ShareableItem[] = ['a 16-byte slot.', 2.5, 7, null];
      const list = listOf(t, items);
      const p = new ctx.Process({ target: shareList, args: [channel.path, label, list] });
      p.start();
      t.after(() => p.kill());
      const seen = await fromChild(p, 'list-seen', (m) => m.label === label);
      assert.deepEqual(seen, { event: 'list-seen', label, isShareableList: true, items: items.map(tag), format: '16sdqxxxxxx?x' });
      await channel.event('list-wrote', (m) => m.label === label);
      assert.deepEqual(list.toArray(), ['from child', 2.5, 2n ** 62n, null]);
      list.set(1, 'here');
      channel.broadcast({ go: label });
      const later = await channel.event('list-later', (m) => m.label === label);
      assert.equal(later.second, 'here');
      await p.join();
      assert.equal(p.exitCode, 0);
    });
  });
});

describe('ShareableList and Python', { skip: noPython }, () => {
  it("a list made here opens in Python's ShareableList(name=...) with the same items and format, and Python's writes are seen here", { timeout }, async (t) => {
    const name = uniqueName('list-to-python');
    const list = listOf(t, MIXED, name);
    const format = list.format;
    const py = await runPython(
      `sl = ShareableList(name=sys.argv[1]); untrack(sl.shm)
dump(sl)
print(sl.format)
sl[0] = 'abc'; sl[1] = 2**63 - 1; sl[3] = None; sl[4] = b'xy'; sl[5] = 7.25; sl[6] = -3; sl[8] = 'tiny'
sl.shm.close()`,
      [name],
    );
    assert.equal(py.stderr, '');
    assert.equal(py.code, 0);
    assert.deepEqual(JSON.parse(py.lines[0]!), MIXED.map(tag));
    assert.equal(py.lines[1], format);
    assert.deepEqual(list.toArray(), ['abc', 2n ** 63n - 1n, true, null, Buffer.from('xy'), 7.25, -3, false, 'tiny']);
    assert.equal(list.format, '8sqxxxxxxx?xxxxxx?x8sd' + 'q' + 'xxxxxxx?24s');
  });

  it('a list made by Python (with a name) opens here with the same items and format, and Python reads what is set here', { timeout }, async (t) => {
    const name = uniqueName('list-from-python');
    t.after(() => unlinkQuietly(`/${name}`));
    const made = await runPython(
      `sl = ShareableList([7, 3.5, False, 'naïve', b'\\x00\\x01\\x02', None, -2**63, 'x' * 20, True], name=sys.argv[1]); untrack(sl.shm)
dump(sl)
print(sl.format)
sl.shm.close()`,
      [name],
    );
    assert.equal(made.stderr, '');
    assert.equal(made.code, 0);
    const list = new ShareableList(null, { name });
    assert.deepEqual(list.toArray(), [7, 3.5, false, 'naïve', Buffer.from([0, 1, 2]), null, -(2n ** 63n), 'x'.repeat(20), true]);
    assert.deepEqual(JSON.parse(made.lines[0]!), list.toArray().map(tag));
    assert.equal(list.format, made.lines[1]);
    list.set(0, 'seven');
    list.set(3, 'né');
    list.set(5, 0.25);
    list.set(6, 2n ** 40n);
    const read = await runPython(`sl = ShareableList(name=sys.argv[1]); untrack(sl.shm); dump(sl); print(sl.format); sl.shm.close()`, [name]);
    assert.equal(read.stderr, '');
    assert.deepEqual(JSON.parse(read.lines[0]!), ['seven', { float: '3.5' }, false, 'né', { bytes: '000102' }, { float: '0.25' }, { int: String(2n ** 40n) }, 'x'.repeat(20), true]);
    assert.equal(read.lines[1], list.format);
  });

  it('the same items make the same bytes here and in Python, byte for byte', { timeout }, async (t) => {
    const items: ShareableItem[] = [1, 2.5, true, 'hi', Buffer.from([1, 2]), null, -7, 2n ** 62n, 'hello world!', false, '', 'x'.repeat(8)];
    const list = listOf(t, items, uniqueName('same-bytes'));
    const pyName = uniqueName('same-bytes-py');
    t.after(() => unlinkQuietly(`/${pyName}`));
    const made = await runPython(
      `sl = ShareableList([1, 2.5, True, 'hi', bytes([1, 2]), None, -7, 2**62, 'hello world!', False, '', 'x' * 8], name=sys.argv[1]); untrack(sl.shm); sl.shm.close()`,
      [pyName],
    );
    assert.equal(made.stderr, '');
    const python = new SharedMemory({ name: pyName });
    assert.equal(python.size, list.shm.size);
    assert.deepEqual(Buffer.from(list.shm.buf).toString('hex'), Buffer.from(python.buf).toString('hex'));
  });
});
