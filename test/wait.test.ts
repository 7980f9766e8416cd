// multiproc/connection's wait(objects, timeout): Python's multiprocessing.connection.wait over
// Connections (Pipe ends and sockets), Queues and Processes, with children on every backend.

import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { forEachBackend } from './helpers/backends.ts';
import { TestChannel } from './helpers/channel.ts';
import { killStrays } from './helpers/processes.ts';
import { ProcessError, Queue, type Context, type Process } from '../src/index.ts';
import { Client, Listener, Pipe, wait, type Connection, type Waitable } from '../src/connection/index.ts';
import { clientSendsWhenReleased, exitWhenReleased, putWhenReleased, sendWhenReleased } from './fixtures/listener/targets.ts';

const timeout = 30_000;
let channel: TestChannel;
const socketPaths = new Set<string>();
const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);

before(async () => {
  channel = await TestChannel.open();
  process.on('warning', onWarning);
});

after(async () => {
  process.off('warning', onWarning);
  killStrays();
  await channel.close();
  assert.deepEqual(warnings.map(String), [], 'no process warning (a TimeoutOverflowWarning, say)');
  assert.deepEqual([...socketPaths].filter((path) => existsSync(dirname(path))), [], 'socket files left behind');
});

/** Starts `target(...args)` on the context's backend; it is killed after the test if still running. */
function started<A extends unknown[]>(t: TestContext, ctx: Context, target: (...args: A) => unknown, args: NoInfer<A>): Process<A> {
  const p = new ctx.Process<A>({ target, args });
  p.start();
  t.after(async () => {
    if (p.exitCode === null) p.kill();
    await p.join();
  });
  return p;
}

/** A duplex Pipe, both ends closed after the test. */
function pipe(t: TestContext): [Connection, Connection] {
  const ends = Pipe();
  t.after(() => ends.forEach((end) => end.close()));
  return ends;
}

/** A Listener (private Unix path), closed after the test. */
async function listening(t: TestContext): Promise<Listener> {
  const listener = await new Listener().ready();
  t.after(() => listener.close());
  socketPaths.add(listener.address as string);
  return listener;
}

/** Both ends of a socket connection in this process, closed after the test. */
async function socketPair(t: TestContext, listener: Listener): Promise<[Connection, Connection]> {
  const ends = await Promise.all([listener.accept(), Client(listener.address)]);
  t.after(() => ends.forEach((end) => end.close()));
  return ends;
}

/** A Queue, closed after the test. */
function queue<T>(t: TestContext): Queue<T> {
  const q = new Queue<T>();
  t.after(() => q.close());
  return q;
}

function release(label: string): void {
  channel.broadcast({ release: label });
}

describe('wait()', () => {
  it('rejects for a Process that was never started (it would never end), as Python refuses its sentinel', { timeout }, async () => {
    const { Process } = await import('../src/index.ts');
    const unstarted = new Process({ target: exitWhenReleased, args: ['', 'never'] });
    await assert.rejects(wait([unstarted]), { code: 'ERR_MP_NOT_STARTED' });
  });

  it('resolves with [] after the timeout when nothing is ready', { timeout }, async (t) => {
    const [pipeEnd] = pipe(t);
    const listener = await listening(t);
    const [server] = await socketPair(t, listener);
    const q = queue<number>(t);
    const startedAt = performance.now();
    assert.deepEqual(await wait([pipeEnd, server, q], 200), []);
    // A lower bound only; Node's timers run on a loop clock that may lag performance.now() by a ms.
    assert.ok(performance.now() - startedAt >= 199, `waited ${performance.now() - startedAt} ms`);
    assert.deepEqual(await wait([pipeEnd, server, q], { timeout: 0 }), []);
  });

  it('returns every object that is ready at once, in the order given, without waiting', { timeout }, async (t) => {
    const [a, b] = pipe(t);
    const [idle] = pipe(t);
    const listener = await listening(t);
    const [server, client] = await socketPair(t, listener);
    const [quiet] = await socketPair(t, listener);
    const q = queue<string>(t);
    const empty = queue<string>(t);
    b.send('to a');
    client.send('to server');
    await q.put('item');
    await client.flushed();
    // The socket's message is in once poll() says so; wait() sees the same fact.
    assert.equal(await server.poll(10_000), true);
    const ready = await wait([idle, q, server, empty, a, quiet], 10_000);
    assert.deepEqual(ready, [q, server, a]);
    assert.equal(await a.recv(), 'to a');
    assert.equal(await server.recv(), 'to server');
    assert.equal(await q.get(), 'item');
  });

  it('counts a Connection at the end of its stream as ready: recv() would reject, not wait', { timeout }, async (t) => {
    const [pipeReader, pipeWriter] = pipe(t);
    const listener = await listening(t);
    const [server, client] = await socketPair(t, listener);
    const [open] = pipe(t);
    const pending = wait([open, pipeReader, server]);
    pipeWriter.close();
    assert.deepEqual(await pending, [pipeReader]);
    const socketEnd = wait([open, server]);
    client.close();
    assert.deepEqual(await socketEnd, [server]);
    assert.deepEqual(await wait([open, pipeReader, server], 0), [pipeReader, server]);
    await assert.rejects(pipeReader.recv(), (error: ProcessError) => error.code === 'ERR_MP_EOF');
    await assert.rejects(server.recv(), (error: ProcessError) => error.code === 'ERR_MP_EOF');
  });

  it('rejects with the reason when its AbortSignal aborts, already or while it waits', { timeout }, async (t) => {
    const [end] = pipe(t);
    const q = queue<number>(t);
    const reason = new Error('stop waiting');
    await assert.rejects(wait([end, q], { signal: AbortSignal.abort(reason) }), (error) => error === reason);
    const controller = new AbortController();
    const pending = wait([end, q], { timeout: 60_000, signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    // And without a timeout at all.
    const forever = new AbortController();
    const waiting = wait([end, q], { signal: forever.signal });
    forever.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
    // A wait that ends by its timeout, or by a ready object, leaves no listener on the signal.
    const unused = new AbortController();
    assert.deepEqual(await wait([end, q], { timeout: 20, signal: unused.signal }), []);
    await q.put(1);
    assert.deepEqual(await wait([end, q], { signal: unused.signal }), [q]);
    for (const signal of [controller.signal, forever.signal, unused.signal]) assert.equal(getEventListeners(signal, 'abort').length, 0);
  });

  it('does not treat a timeout longer than a Node timer allows as an immediate one', { timeout }, async (t) => {
    const [reader, writer] = pipe(t);
    const listener = await listening(t);
    const [server, client] = await socketPair(t, listener);
    const pending = wait([reader, server], 2 ** 32);
    const early = await wait([reader, server], 50); // runs after the long wait has started
    assert.deepEqual(early, []);
    client.send('now');
    assert.deepEqual(await pending, [server]);
    assert.equal(await server.poll(2 ** 32), true);
    assert.equal(await server.recv({ timeout: 2 ** 32 }), 'now');
    writer.send('pipe');
    assert.deepEqual(await wait([reader], 2 ** 32), [reader]);
  });

  it('rejects bad input with a TypeError (and a negative timeout with a RangeError)', { timeout }, async (t) => {
    const [end] = pipe(t);
    const typeError = (pattern: RegExp) => (error: NodeJS.ErrnoException) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.equal(error.code, 'ERR_MP_INVALID_ARGUMENT');
      assert.match(error.message, pattern);
      return true;
    };
    await assert.rejects(wait(42 as unknown as Waitable[]), typeError(/expected a list .* got 42/));
    await assert.rejects(wait(null as unknown as Waitable[]), typeError(/expected a list/));
    await assert.rejects(wait('conn' as unknown as Waitable[]), typeError(/expected a list/));
    await assert.rejects(wait([end, {} as Waitable]), typeError(/expected Connections, Queues or Processes/));
    await assert.rejects(wait([end, Buffer.alloc(1) as unknown as Waitable]), typeError(/expected Connections, Queues or Processes/));
    await assert.rejects(wait([end], 'soon' as unknown as number), typeError(/timeout/));
    await assert.rejects(wait([end], { signal: 'abort' as unknown as AbortSignal }), typeError(/signal/));
    await assert.rejects(wait([end], Number.NaN), (error: NodeJS.ErrnoException) => error instanceof RangeError && error.code === 'ERR_MP_OUT_OF_RANGE');
    assert.deepEqual(await wait([end], -1), [], 'a negative timeout waits not at all, as in Python');
  });
});

forEachBackend((ctx, backend) => {
  describe('wait() with a child', () => {
    it('returns the Pipe end that got a message from the child, among idle Pipe ends and sockets', { timeout }, async (t) => {
      const [idleA] = pipe(t);
      const [reader, writer] = pipe(t);
      const [idleB] = pipe(t);
      const listener = await listening(t);
      const [server] = await socketPair(t, listener);
      const label = `${backend}-pipe`;
      const p = started(t, ctx, sendWhenReleased, [channel.path, writer, { from: 'child' }, label]);
      await channel.event('ready', (m) => m.label === label);
      const pending = wait([idleA, server, reader, idleB], 20_000);
      release(label);
      assert.deepEqual(await pending, [reader]);
      assert.deepEqual(await reader.recv(), { from: 'child' });
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('returns the socket Connection that got a message from a child Client, among Pipe ends and other sockets', { timeout }, async (t) => {
      const listener = await listening(t);
      const label = `${backend}-socket`;
      const p = started(t, ctx, clientSendsWhenReleased, [channel.path, listener.address, 'from the child', label]);
      const fromChild = await listener.accept();
      t.after(() => fromChild.close());
      await channel.event('ready', (m) => m.label === label);
      const [quiet] = await socketPair(t, listener);
      const [idle] = pipe(t);
      const pending = wait([quiet, idle, fromChild], 20_000);
      release(label);
      assert.deepEqual(await pending, [fromChild]);
      assert.equal(await fromChild.recv(), 'from the child');
      fromChild.close(); // the child waits for this end to close, then exits
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('returns the Queue that got an item from the child', { timeout }, async (t) => {
      const q = queue<{ n: number }>(t);
      const other = queue<{ n: number }>(t);
      const [idle] = pipe(t);
      const label = `${backend}-queue`;
      const p = started(t, ctx, putWhenReleased, [channel.path, q as Queue<unknown>, { n: 7 }, label]);
      await channel.event('ready', (m) => m.label === label);
      const pending = wait([other, idle, q], 20_000);
      release(label);
      assert.deepEqual(await pending, [q]);
      assert.deepEqual(await q.get(), { n: 7 });
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('returns the Process that exits, and an exited one at once', { timeout }, async (t) => {
      const label = `${backend}-exit`;
      const p = started(t, ctx, exitWhenReleased, [channel.path, label]);
      const [idle] = pipe(t);
      await channel.event('ready', (m) => m.label === label);
      assert.deepEqual(await wait([p, idle], 0), []);
      const pending = wait([idle, p], 20_000);
      release(label);
      assert.deepEqual(await pending, [p]);
      assert.equal(p.exitCode, 0);
      assert.deepEqual(await wait([idle, p]), [p], 'an exited process is ready at once, even without a timeout');
    });

    it('returns several objects that became ready together: a Pipe end, a Queue and the Process', { timeout }, async (t) => {
      const [reader, writer] = pipe(t);
      const q = queue<string>(t);
      const [idle] = pipe(t);
      const labels = [`${backend}-several-pipe`, `${backend}-several-queue`];
      const sender = started(t, ctx, sendWhenReleased, [channel.path, writer, 'message', labels[0] as string]);
      const putter = started(t, ctx, putWhenReleased, [channel.path, q as Queue<unknown>, 'item', labels[1] as string]);
      await Promise.all(labels.map((label) => channel.event('ready', (m) => m.label === label)));
      release(labels[0] as string);
      release(labels[1] as string);
      await sender.join();
      await putter.join();
      assert.deepEqual(await wait([idle, reader, q, sender, putter], 20_000), [reader, q, sender, putter]);
      assert.equal(await reader.recv(), 'message');
      assert.equal(await q.get(), 'item');
    });
  });
});
