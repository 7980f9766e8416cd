// Pipe and Connection across real processes and worker threads, over shared-memory rings: every
// behaviour is checked with the other end in another process (or thread). Tests synchronize on
// messages, Events and exits, never on sleeps; timeouts are checked by their outcome and a lower
// bound on the elapsed time only.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { forEachBackend } from './helpers/backends.ts';
import { testFile } from './helpers/test-file.ts';
import {
  BufferTooShort,
  Connection,
  ProcessError,
  TimeoutError,
  type Context,
} from '../src/index.ts';
import { wait } from '../src/connection/index.ts';
import { queueHolders } from '../src/queues.ts';
import {
  countUntilEof,
  echo,
  echoBytes,
  echoOnConnectionFromPipe,
  echoOnConnectionFromQueue,
  greetThenEcho,
  holdWithoutReading,
  reportEnds,
  sendAll,
  sendCount,
  sendOnGoThenHang,
  sendThenHang,
  sendWhenSet,
} from './fixtures/comm/pipes.ts';

const timeout = 60_000;
const file = testFile();
const { start, endAll } = file;

/** The connections a test opened, closed by its t.after() whatever happened. */
const opened = new Set<Connection>();

function pipe<T = unknown>(ctx: Context, duplex = true): [Connection<T>, Connection<T>] {
  const pair = ctx.Pipe(duplex) as [Connection<T>, Connection<T>];
  for (const conn of pair) opened.add(conn as Connection);
  return pair;
}

async function cleanUp(): Promise<void> {
  for (const conn of opened) conn.close();
  opened.clear();
  await endAll();
}

let labels = 0;
const label = (what: string) => `${what}-${++labels}`;
const since = (t0: number) => performance.now() - t0;

/** Asserts that `error` is a ProcessError with `code` (and a message matching `message`). */
function isProcessError(code: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  };
}

/** Asserts that `error` is the TypeError of a value that cannot cross, naming `type`. */
function notCloneable(type: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
    assert.equal((error as NodeJS.ErrnoException).code, 'ERR_MP_NOT_CLONEABLE');
    assert.match(error.message, type);
    return true;
  };
}

class Opaque {
  secret = 1;
}

forEachBackend((ctx, backend) => {
  const other = backend === 'process' ? 'another process' : 'another thread';

  describe('Pipe', () => {
    it(`a duplex Pipe carries objects both ways with ${other}`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [parent, child] = pipe(ctx);
      const p = start(ctx, { target: greetThenEcho, args: [child, { from: 'child' }] });
      child.close(); // Python's idiom: the child holds its own copy now
      assert.deepEqual(await parent.recv(), { from: 'child' });
      parent.send([12, { name: 'chen' }, 'hello']);
      assert.deepEqual(await parent.recv(), [12, { name: 'chen' }, 'hello']);
      parent.send('儿子你好!');
      assert.equal(await parent.recv(), '儿子你好!');
      parent.close();
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('a Pipe end whose send failed (a full Queue, a value that cannot cross beside it) is not counted as sent: closing it here ends the stream', { timeout }, async (t) => {
      const q = new ctx.Queue<unknown>(1);
      t.after(() => q.close());
      q.putNowait('filler');
      const [reader, writer] = ctx.Pipe(false);
      assert.throws(() => q.putNowait(writer), { name: 'Full' });
      await assert.rejects(q.put({ writer }, { timeout: 20 }), { name: 'Full' });
      assert.throws(() => q.putNowait([writer, () => 1]), { code: 'ERR_MP_NOT_CLONEABLE' });
      writer.send('sent here');
      writer.close();
      assert.equal(await reader.recv({ timeout: 10_000 }), 'sent here');
      await assert.rejects(reader.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' });
      reader.close();
    });

    it(`Pipe(false) gives [reader, writer]; the writer works from ${other}; the wrong direction throws ERR_MP_CONNECTION_DIRECTION`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      assert.deepEqual([reader.readable, reader.writable, writer.readable, writer.writable], [true, false, false, true]);
      assert.throws(() => reader.send('x'), isProcessError('ERR_MP_CONNECTION_DIRECTION', /Connection\.send\(\): this end is not writable/));
      assert.throws(() => reader.sendBytes(Buffer.from('x')), isProcessError('ERR_MP_CONNECTION_DIRECTION'));
      await assert.rejects(writer.recv(), isProcessError('ERR_MP_CONNECTION_DIRECTION', /Connection\.recv\(\): this end is not readable/));
      await assert.rejects(writer.recvBytes(), isProcessError('ERR_MP_CONNECTION_DIRECTION'));
      await assert.rejects(writer.recvBytesInto(Buffer.alloc(4)), isProcessError('ERR_MP_CONNECTION_DIRECTION'));
      await assert.rejects(writer.poll(), isProcessError('ERR_MP_CONNECTION_DIRECTION'));

      // Both ends travel; the child sends on the writer it got, and we read it here.
      const [farReader, farWriter] = pipe(ctx, false);
      const name = label('ends');
      const p = start(ctx, { target: reportEnds, args: [file.channel.path, name, farReader, writer] });
      writer.close();
      const ends = await file.channel.event('ends', (m) => m.label === name);
      assert.deepEqual(ends.reader, [true, false, false]);
      assert.deepEqual(ends.writer, [false, true, false]);
      assert.match(String(await reader.recv()), /^written in \d+$/);
      await assert.rejects(reader.recv(), isProcessError('ERR_MP_EOF'));
      await p.join();
      assert.equal(p.exitCode, 0);
      farWriter.close();
    });

    it('rejects a duplex argument that is not a boolean', () => {
      assert.throws(() => ctx.Pipe('yes' as unknown as boolean), TypeError);
    });

    it('a Connection is not constructed directly', () => {
      assert.throws(() => new (Connection as unknown as new () => unknown)(), { name: 'TypeError', message: /Pipe\(\), Listener\.accept\(\) or Client\(\)/ });
    });
  });

  describe('Connection', () => {
    it('sendBytes(buf, offset, size) sends that slice; recvBytes() and recvBytesInto(buf, offset) receive it', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echoBytes, args: [child] });
      child.close();

      conn.sendBytes(Buffer.from('abcdefgh'), 2, 3);
      assert.deepEqual(await conn.recvBytes(), Buffer.from('cde'));
      conn.sendBytes(Buffer.from('abcdefgh'), 5); // from offset to the end
      assert.deepEqual(await conn.recvBytes(), Buffer.from('fgh'));
      const view = new Uint16Array([1, 2, 3, 4]).subarray(1, 3); // a view with a byteOffset
      conn.sendBytes(view);
      assert.deepEqual(await conn.recvBytes(), Buffer.from(new Uint16Array([2, 3]).buffer));
      conn.sendBytes(new Uint8Array([9, 8, 7]).buffer); // an ArrayBuffer
      assert.deepEqual(await conn.recvBytes(100), Buffer.from([9, 8, 7]));
      conn.sendBytes(Buffer.alloc(0));
      assert.equal((await conn.recvBytes()).length, 0, 'an empty message is a message');

      const target = Buffer.alloc(10, 0x2e);
      conn.sendBytes(Buffer.from('xyz'));
      assert.equal(await conn.recvBytesInto(target, 4), 3);
      assert.equal(target.toString(), '....xyz...');
      const typed = new Uint8Array(8);
      conn.sendBytes(Buffer.from('hi'));
      assert.equal(await conn.recvBytesInto(typed), 2);
      assert.deepEqual([...typed.subarray(0, 2)], [104, 105]);

      assert.throws(() => conn.sendBytes(Buffer.from('abc'), 4), RangeError);
      assert.throws(() => conn.sendBytes(Buffer.from('abc'), 1, 3), { name: 'RangeError', message: /runs past the buffer/ });
      assert.throws(() => conn.sendBytes(Buffer.from('abc'), -1), RangeError);
      await assert.rejects(conn.recvBytes(-1), RangeError);
      await assert.rejects(conn.recvBytesInto(Buffer.alloc(2), 3), RangeError);

      conn.close();
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('recvBytesInto() with too small a buffer rejects with BufferTooShort carrying the message, and the connection goes on', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echoBytes, args: [child] });
      child.close();
      conn.sendBytes(Buffer.from('0123456789'));
      const small = Buffer.alloc(8);
      await assert.rejects(conn.recvBytesInto(small, 2), (error: unknown) => {
        assert.ok(error instanceof BufferTooShort, String(error));
        assert.equal(error.code, 'ERR_MP_BUFFER_TOO_SHORT');
        assert.match(error.message, /the message is 10 bytes and the buffer has room for 6/);
        assert.deepEqual((error as BufferTooShort & { received: Buffer }).received, Buffer.from('0123456789'));
        return true;
      });
      assert.equal(conn.closed, false);
      conn.sendBytes(Buffer.from('ok'));
      assert.equal(await conn.recvBytesInto(small), 2);
      conn.close();
      await p.join();
    });

    it('recvBytes(maxLength) of a longer message rejects with ERR_MP_MESSAGE_TOO_LONG and closes the connection, as Python does', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echoBytes, args: [child] });
      child.close();
      conn.sendBytes(Buffer.from('a message of 27 bytes......'));
      await assert.rejects(conn.recvBytes(10), isProcessError('ERR_MP_MESSAGE_TOO_LONG', /27 bytes, more than maxLength 10/));
      assert.equal(conn.closed, true);
      assert.throws(() => conn.send('x'), isProcessError('ERR_MP_CONNECTION_CLOSED'));
      await p.join(); // our close() was the end of stream for the child
      assert.equal(p.exitCode, 0);
    });

    it(`poll(0) is false on an empty connection; poll(timeout) turns true when ${other} sends`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const go = new ctx.Event();
      const p = start(ctx, { target: sendWhenSet, args: [child, go, 'arrived'] });
      child.close();
      assert.equal(await conn.poll(), false);
      assert.equal(await conn.poll(0), false);
      const t0 = performance.now();
      assert.equal(await conn.poll(60), false);
      assert.ok(since(t0) >= 60, `poll(60) gave up after ${since(t0)} ms`);
      const polling = conn.poll({}); // no timeout: waits for ever, as Python's poll(None)
      go.set();
      assert.equal(await polling, true);
      assert.equal(await conn.poll(0), true, 'poll() does not consume the message');
      assert.equal(await conn.recv(), 'arrived');
      await p.join();
      // The writer closed and nothing is left: as in Python, poll() says true at once (recv() would
      // not wait: it rejects with end of stream).
      assert.equal(await conn.poll(30_000), true);
      await assert.rejects(conn.recv(), isProcessError('ERR_MP_EOF'));
    });

    it('poll({ signal }) and recv({ signal }) reject with the abort reason', { timeout }, async (t) => {
      t.after(cleanUp);
      const [a] = pipe(ctx);
      const reason = new Error('stop waiting');
      const controller = new AbortController();
      const polling = a.poll({ signal: controller.signal });
      const receiving = a.recv({ signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(polling, (error) => error === reason);
      await assert.rejects(receiving, (error) => error === reason);
    });

    it('recv({ timeout }) rejects with TimeoutError and the connection stays usable', { timeout }, async (t) => {
      t.after(cleanUp);
      const [a, b] = pipe(ctx);
      const t0 = performance.now();
      await assert.rejects(a.recv({ timeout: 80 }), (error: unknown) => error instanceof TimeoutError && error.code === 'ERR_MP_TIMEOUT' && /before the timeout/.test(error.message));
      assert.ok(since(t0) >= 80, `recv({ timeout: 80 }) gave up after ${since(t0)} ms`);
      await assert.rejects(a.recv({ timeout: Number.NaN }), RangeError);
      await assert.rejects(a.recv({ timeout: -1 }), TimeoutError, 'a negative timeout waits not at all, as in Python');
      assert.equal(await a.poll(-1), false);
      b.send('late');
      assert.equal(await a.recv({ timeout: 10_000 }), 'late');
    });

    it('recvBytes() and recvBytesInto() take recv()\'s { timeout, signal } too; the connection stays usable', { timeout }, async (t) => {
      t.after(cleanUp);
      const [a, b] = pipe(ctx);
      const into = Buffer.alloc(16);
      let t0 = performance.now();
      await assert.rejects(a.recvBytes(undefined, { timeout: 60 }), (error: unknown) => error instanceof TimeoutError && /Connection\.recvBytes\(\)/.test(error.message));
      assert.ok(since(t0) >= 60, `recvBytes(undefined, { timeout: 60 }) gave up after ${since(t0)} ms`);
      t0 = performance.now();
      await assert.rejects(a.recvBytesInto(into, 0, { timeout: 60 }), (error: unknown) => error instanceof TimeoutError && /Connection\.recvBytesInto\(\)/.test(error.message));
      assert.ok(since(t0) >= 60, `recvBytesInto(buf, 0, { timeout: 60 }) gave up after ${since(t0)} ms`);
      await assert.rejects(a.recvBytes(10, { timeout: Number.NaN }), RangeError);
      const reason = new Error('stop');
      const controller = new AbortController();
      const receiving = a.recvBytesInto(into, 0, { signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(receiving, (error) => error === reason);
      b.sendBytes(Buffer.from('one'));
      b.sendBytes(Buffer.from('two'));
      assert.deepEqual(await a.recvBytes(100, { timeout: 10_000 }), Buffer.from('one'));
      assert.equal(await a.recvBytesInto(into, 4, { timeout: 10_000 }), 3);
      assert.equal(into.subarray(4, 7).toString(), 'two');
    });

    it('close() makes a recv() of this process that waits on that end reject with ERR_MP_CONNECTION_CLOSED (it does not hang)', { timeout }, async (t) => {
      t.after(cleanUp);
      const [a, b] = pipe(ctx);
      const waiting = a.recv();
      a.close();
      await assert.rejects(waiting, isProcessError('ERR_MP_CONNECTION_CLOSED', /while the call waited/));
      b.close();
    });

    it('closed/readable/writable; after close() send, sendBytes, recv and poll throw ERR_MP_CONNECTION_CLOSED; close() twice is fine', { timeout }, async (t) => {
      t.after(cleanUp);
      const [a, b] = pipe(ctx);
      assert.deepEqual([a.closed, a.readable, a.writable], [false, true, true]);
      a.close();
      a.close();
      assert.equal(a.closed, true);
      assert.throws(() => a.send(1), isProcessError('ERR_MP_CONNECTION_CLOSED', /Connection\.send\(\): this connection was closed/));
      assert.throws(() => a.sendBytes(Buffer.from('x')), isProcessError('ERR_MP_CONNECTION_CLOSED'));
      await assert.rejects(a.recv(), isProcessError('ERR_MP_CONNECTION_CLOSED'));
      await assert.rejects(a.recvBytes(), isProcessError('ERR_MP_CONNECTION_CLOSED'));
      await assert.rejects(a.poll(), isProcessError('ERR_MP_CONNECTION_CLOSED'));
      // The other end sees end of stream; its sends to a closed reader are dropped, never blocking.
      await assert.rejects(b.recv(), isProcessError('ERR_MP_EOF', /the other end was closed/));
      for (let i = 0; i < 4; i++) b.send(Buffer.alloc(1 << 20));
      await b.flushed();
      assert.throws(() => a.send(1), isProcessError('ERR_MP_CONNECTION_CLOSED'));
    });

    it('`await using` closes the connection at the end of the block, after what it sent is flushed', { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const name = label('using');
      const p = start(ctx, { target: countUntilEof, args: [file.channel.path, name, reader] });
      reader.close();
      let kept: Connection | undefined;
      {
        await using conn = writer;
        kept = conn;
        conn.send('inside the block');
        conn.send(Buffer.alloc(3 << 20)); // pending (more than the ring holds) when the block ends
      }
      assert.equal(kept.closed, true);
      assert.deepEqual((await file.channel.event('counted', (m) => m.label === name)).sizes, [-1, 3 << 20]);
      await p.join();
      assert.equal(p.exitCode, 0);
      {
        using x = ctx.Pipe()[0];
        kept = x;
      }
      assert.equal(kept.closed, true);
    });

    it(`recv() after every copy of the other end was closed, and the messages drained, rejects with ERR_MP_EOF`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const p = start(ctx, { target: sendAll, args: [writer, [1, 'two', { three: 3 }]] });
      // Our copy of the writer is still open: the child's close is not the end yet.
      assert.equal(await reader.recv(), 1);
      assert.equal(await reader.recv(), 'two');
      assert.deepEqual(await reader.recv(), { three: 3 });
      await p.join();
      await assert.rejects(reader.recv({ timeout: 300 }), TimeoutError, 'a copy of the writer is still open here');
      writer.close();
      await assert.rejects(reader.recv(), isProcessError('ERR_MP_EOF', /the other end was closed, and no message is left to read \(Python's EOFError\)/));
      await assert.rejects(reader.recvBytes(), isProcessError('ERR_MP_EOF'));
      assert.equal(await reader.poll(0), true, 'at end of stream poll() is true, as in Python: recv() would not wait');
    });

    it(`recv() when the writer's process was SIGKILLed (a thread: terminated) rejects with ERR_MP_EOF instead of hanging`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const never = new ctx.Event();
      const p = start(ctx, { target: sendThenHang, args: [child, never] });
      child.close();
      assert.equal(await conn.recv(), 'ready');
      const receiving = conn.recv();
      p.kill();
      await p.join();
      await assert.rejects(receiving, isProcessError('ERR_MP_EOF', /the other end's process exited without closing it/));
      await assert.rejects(conn.recv(), isProcessError('ERR_MP_EOF'));
    });

    it(`recv() when the writer's process was killed as it started, before it took the Pipe end from its args, rejects with ERR_MP_EOF; a Queue in its args is let go of`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx, false);
      const queue = new ctx.Queue<string>();
      const never = new ctx.Event();
      const p = start(ctx, { target: sendThenHang, args: [child, never, queue] });
      child.close();
      p.kill(); // at once: it has not run any code yet
      await p.join();
      await assert.rejects(conn.recv(), isProcessError('ERR_MP_EOF'));
      // The copy sent to it no longer holds the queue: this process's object is its one holder.
      assert.equal(queueHolders(queue), 1);
    });

    it(`with two writers, the death of one (the last to attach) is not the end of the stream; the death of both is`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const never = new ctx.Event();
      const go = new ctx.Event();
      const survivor = start(ctx, { target: sendOnGoThenHang, args: [writer, go, 'from the survivor', never] });
      assert.equal(await reader.recv(), 'ready');
      const killed = start(ctx, { target: sendThenHang, args: [writer, never] });
      assert.equal(await reader.recv(), 'ready');
      writer.close();
      killed.kill();
      await killed.join();
      // Longer than a waiting read's look at its writers (200 ms): the dead one alone is no end.
      assert.equal(await reader.poll(600), false, 'a writer still lives: no message, and not the end of the stream');
      go.set();
      assert.equal(await reader.recv(), 'from the survivor');
      const receiving = reader.recv();
      survivor.kill();
      await survivor.join();
      await assert.rejects(receiving, isProcessError('ERR_MP_EOF', /the other end's process exited without closing it/));
    });

    it(`poll(0) and wait() report a Connection whose only writer was killed as ready (recv() would not wait)`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const never = new ctx.Event();
      const p = start(ctx, { target: sendThenHang, args: [writer, never] });
      writer.close();
      assert.equal(await reader.recv(), 'ready');
      p.kill();
      await p.join();
      assert.deepEqual(await wait([reader], 10_000), [reader]);
      assert.equal(await reader.poll(0), true);
      await assert.rejects(reader.recv(), isProcessError('ERR_MP_EOF'));
    });

    it(`send() to a reader whose process was SIGKILLed (a thread: terminated) drops what is pending instead of waiting for ever`, { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const ready = new ctx.Event();
      const never = new ctx.Event();
      const p = start(ctx, { target: holdWithoutReading, args: [reader, ready, never] });
      reader.close();
      await ready.wait();
      for (let i = 0; i < 3; i++) writer.send(Buffer.alloc(1 << 20, i)); // more than the ring holds: some is pending
      p.kill();
      await p.join();
      await writer.flushed(); // resolves: the reader is gone, so the rest is dropped (a pipe's EPIPE)
      writer.send('dropped too');
      await writer.flushed();
    });

    it('several recv() calls in one process take turns, each getting a whole message in order', { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      const big = randomBytes(3 << 20);
      const receiving = [reader.recv(), reader.recv(), reader.recv()];
      const p = start(ctx, { target: sendAll, args: [writer, ['first', big, 'third']] });
      writer.close();
      const [first, second, third] = await Promise.all(receiving);
      assert.equal(first, 'first');
      assert.ok(Buffer.isBuffer(second) && second.equals(big));
      assert.equal(third, 'third');
      await p.join();
    });

    it('carries bigint, Map, Set, Date, RegExp, Error, Buffer, typed arrays and nested, cyclic values unchanged both ways', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echo, args: [child] });
      child.close();
      const cyclic: Record<string, unknown> = { name: 'self' };
      cyclic.self = cyclic;
      const value = {
        big: 2n ** 70n,
        negative: -(2n ** 64n),
        map: new Map<unknown, unknown>([[0, 'a'], ['0', 'b'], [1n, new Map([['deep', [1, 2]]])]]),
        set: new Set([1, '1', null]),
        when: new Date(5),
        pattern: /a+b/gi,
        error: new RangeError('kept'),
        buffer: Buffer.from('hi'),
        floats: new Float64Array([1.5, -0, NaN]),
        ints: new Int32Array([-1, 2 ** 31 - 1]),
        bigs: new BigInt64Array([-(2n ** 63n)]),
        bytes: new Uint8Array([1, 2, 3]).subarray(1),
        nested: [{ a: [{ b: undefined, c: null }] }, [[[]]]],
        numbers: [-0, NaN, Infinity, Number.MAX_SAFE_INTEGER],
        text: '儿子你好! \u0000 \ud83d\ude00',
        cyclic,
      };
      conn.send(value);
      const back = (await conn.recv()) as typeof value;
      assert.deepEqual(back, value);
      assert.ok(Buffer.isBuffer(back.buffer), 'a Buffer arrives a Buffer');
      assert.ok(back.floats instanceof Float64Array && back.ints instanceof Int32Array && back.bigs instanceof BigInt64Array);
      assert.ok(back.error instanceof RangeError);
      assert.equal(back.cyclic.self, back.cyclic, 'cycles are kept');
      assert.ok(Object.is(back.numbers[0], -0));
      for (const scalar of [null, undefined, 0, '', false, 2n ** 100n]) {
        conn.send(scalar);
        assert.equal(await conn.recv(), scalar);
      }
      conn.close();
      await p.join();
    });

    it('messages around the 64 KiB chunk size (whole, one byte over, several chunks) arrive intact and in order, both ways', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echo, args: [child] });
      child.close();
      const chunk = 64 * 1024 - 16; // a ring record's payload (src/internal/ring.ts CHUNK_BYTES less its header)
      const sizes = [chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 1, 15 * chunk + 3, 1 << 20, (1 << 20) + 7, 5];
      const sent = sizes.map((size) => randomBytes(size));
      // All at once: the later ones wait for room behind the earlier, in this process and the echo's.
      for (const bytes of sent) conn.send(bytes);
      for (const [i, bytes] of sent.entries()) assert.ok(((await conn.recv()) as Buffer).equals(bytes), `message ${i} (${sizes[i]} bytes) came back intact`);
      conn.close();
      await p.join();
    });

    for (const mib of [8, 32]) {
      it(`a ${mib} MiB item (larger than the 1 MiB ring) passes both ways intact, as an object and as bytes, though the sender reuses its buffer at once`, { timeout }, async (t) => {
        t.after(cleanUp);
        const [conn, child] = pipe(ctx);
        const objects = start(ctx, { target: echo, args: [child] });
        child.close();
        const original = randomBytes(mib << 20);
        const big = Buffer.from(original);
        // Most of each message waits in this process for room in the ring: what it sends is what
        // the buffer held at send(), whatever the caller writes into it afterwards.
        conn.send({ big, tail: 'end' });
        big.fill(0);
        const back = (await conn.recv()) as { big: Buffer; tail: string };
        assert.equal(back.tail, 'end');
        assert.ok(Buffer.isBuffer(back.big) && back.big.equals(original), 'the object came back intact');
        original.copy(big);
        conn.send(big);
        big.fill(0);
        assert.ok(((await conn.recv()) as Buffer).equals(original), 'the Buffer came back intact');
        conn.close();
        await objects.join();

        const [raw, rawChild] = pipe(ctx);
        const bytes = start(ctx, { target: echoBytes, args: [rawChild] });
        rawChild.close();
        original.copy(big);
        raw.sendBytes(big, 1, big.length - 2);
        big.fill(0);
        raw.sendBytes(Buffer.from('after'));
        const echoed = await raw.recvBytes();
        assert.equal(echoed.length, big.length - 2);
        assert.ok(echoed.equals(original.subarray(1, -1)), 'the bytes came back intact');
        assert.equal((await raw.recvBytes()).toString(), 'after', 'and the next message after them');
        raw.close();
        await bytes.join();
      });
    }

    it('send() never waits for a reader: 8 MiB sent before the reader starts is delivered once it reads', { timeout }, async (t) => {
      t.after(cleanUp);
      const [reader, writer] = pipe(ctx, false);
      for (let i = 0; i < 8; i++) writer.send(Buffer.alloc(1 << 20, i)); // returns at once though the ring holds 1 MiB
      writer.send('last');
      writer.close(); // the end of stream comes after what is still pending
      const name = label('pending');
      const p = start(ctx, { target: countUntilEof, args: [file.channel.path, name, reader] });
      reader.close();
      assert.deepEqual((await file.channel.event('counted', (m) => m.label === name)).sizes, [...Array(8).fill(1 << 20), -1]);
      await p.join();
      assert.equal(p.exitCode, 0);
      await writer.flushed();
    });

    it('a value that cannot be cloned throws TypeError ERR_MP_NOT_CLONEABLE naming its type, sends nothing, and the connection stays usable', { timeout }, async (t) => {
      t.after(cleanUp);
      const [conn, child] = pipe(ctx);
      const p = start(ctx, { target: echo, args: [child] });
      child.close();
      assert.throws(() => conn.send({ callback: function handler() {} }), notCloneable(/Connection\.send\(\)\.callback is the function handler/));
      assert.throws(() => conn.send([1, new Opaque()]), notCloneable(/Connection\.send\(\)\[1\] is an instance of Opaque/));
      assert.throws(() => conn.send(new WeakMap()), notCloneable(/instance of WeakMap/));
      assert.throws(() => conn.send(Promise.resolve(1)), notCloneable(/instance of Promise/));
      assert.throws(() => conn.send(Symbol('s')), notCloneable(/Symbol\(s\)/));
      assert.throws(() => conn.send(new Map([['k', () => 1]])), notCloneable(/function/));
      conn.send('still usable');
      assert.equal(await conn.recv(), 'still usable', 'nothing of the failed sends arrived');
      conn.close();
      await p.join();
    });

    it(`a Connection put in a Queue, or sent over another Pipe, arrives usable in ${other}`, { timeout }, async (t) => {
      t.after(cleanUp);
      const queue = new ctx.Queue<Connection>();
      const [viaQueue, viaQueueFar] = pipe(ctx);
      const p1 = start(ctx, { target: echoOnConnectionFromQueue, args: [queue] });
      await queue.put(viaQueueFar);
      viaQueueFar.close(); // the copy in the queue counts: closing ours is not the end of stream
      viaQueue.send({ via: 'queue' });
      assert.deepEqual(await viaQueue.recv(), { via: 'queue' });

      const [carrier, carrierFar] = pipe(ctx);
      const [viaPipe, viaPipeFar] = pipe(ctx);
      const p2 = start(ctx, { target: echoOnConnectionFromPipe, args: [carrierFar] });
      carrierFar.close();
      carrier.send(viaPipeFar);
      viaPipeFar.close();
      viaPipe.send({ via: 'pipe' });
      assert.deepEqual(await viaPipe.recv(), { via: 'pipe' });

      viaQueue.close();
      viaPipe.close();
      await Promise.all([p1.join(), p2.join()]);
      assert.deepEqual([p1.exitCode, p2.exitCode], [0, 0]);
      const [closedOne] = pipe(ctx);
      closedOne.close();
      assert.throws(() => carrier.send(closedOne), notCloneable(/a closed Connection cannot be sent/));
    });

    it(`100,000 small messages from ${other} arrive in order, then end of stream`, { timeout }, async (t) => {
      t.after(cleanUp);
      const n = 100_000;
      const [reader, writer] = pipe<number>(ctx, false);
      const p = start(ctx, { target: sendCount, args: [writer, n] });
      writer.close();
      for (let i = 0; i < n; i++) {
        const got = await reader.recv();
        if (got !== i) assert.fail(`message ${i} was ${got}`);
      }
      await assert.rejects(reader.recv(), isProcessError('ERR_MP_EOF'));
      await p.join();
      assert.equal(p.exitCode, 0);
    });
  });
});
