// multiproc/connection's Listener and Client: Unix socket and TCP addresses, the authkey handshake
// (right, wrong, on one side only, on neither), messages both ways between real processes, the end
// of a connection, and idle sockets that must not keep a program alive.

import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { forEachBackend } from './helpers/backends.ts';
import { TestChannel } from './helpers/channel.ts';
import { killStrays } from './helpers/processes.ts';
import { assertTimesOutAndAborts } from './helpers/waits.ts';
import { TSX_IMPORT, killRuns, runEnv, runScript, taggedProcesses } from './helpers/spawn-script.ts';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AuthenticationError, ProcessError, type Context, type Process } from '../src/index.ts';
import { Client, Listener, type Address, type Connection } from '../src/connection/index.ts';
import { dumps } from '../src/reduction.ts';
import { connectThenBlock, dieHolding, echoClient, echoConnection, echoFromQueue, listenAndReturn, noop, putClientAndExit, sendAndClose, sendMany, sendThenClose, tryClient, waitForGate } from './fixtures/listener/targets.ts';

const timeout = 30_000;
const idleProgram = fileURLToPath(new URL('./fixtures/listener/idle-program.ts', import.meta.url));
let channel: TestChannel;
/** Every Unix socket path a test listened on: none may be left when the file ends. */
const socketPaths = new Set<string>();

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  killStrays();
  killRuns();
  await channel.close();
  const left = [...socketPaths].filter((path) => existsSync(path) || (dirname(path).includes('mp-listener-') && existsSync(dirname(path))));
  assert.deepEqual(left, [], 'socket files (or their private directories) left behind');
});

type Kind = 'unix' | 'tcp';
const kinds: Kind[] = ['unix', 'tcp'];

/** A ready Listener on a private Unix path or on 127.0.0.1 port 0, closed after the test. */
async function listening(t: TestContext, kind: Kind, authkey?: string | Uint8Array): Promise<Listener> {
  const listener = new Listener({ address: kind === 'tcp' ? { host: '127.0.0.1', port: 0 } : undefined, authkey });
  t.after(() => listener.close());
  await listener.ready();
  if (typeof listener.address === 'string') socketPaths.add(listener.address);
  return listener;
}

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

/** Closes `conn` after the test. */
function closing<C extends Connection<unknown>>(t: TestContext, conn: C): C {
  t.after(() => conn.close());
  return conn;
}

/**
 * A connected pair whose server end was sent through a Queue and received here: sent again, it
 * cannot be received anywhere ("received already"). The client and the received copy close after the test.
 */
async function receivedHere(t: TestContext, ctx: Context, listener: Listener): Promise<[Connection<string>, Connection<string>]> {
  const [server, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
  closing(t, client);
  const q = new ctx.Queue<Connection<string>>();
  t.after(() => q.close());
  await q.put(server);
  closing(t, await q.get({ timeout: 10_000 }));
  return [server, client];
}

/** A pool task running echoConnection(server, 1) echoes what `client` sends it, then returns 1. */
async function echoesThroughPool(task: Promise<number>, client: Connection<string>, text: string): Promise<void> {
  client.send(text);
  assert.equal(await client.recv({ timeout: 10_000 }), `echo ${text}`);
  assert.equal(await task, 1);
}

/** A hand-written server on a fresh Unix path: it accepts and never speaks (no Listener does that). */
async function silentServer(t: TestContext): Promise<{ path: string; server: Server }> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-listener-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'silent.sock');
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket.on('error', () => {}).resume()));
  t.after(() => {
    sockets.forEach((socket) => socket.destroy());
    server.close();
  });
  server.listen(path);
  await once(server, 'listening');
  return { path, server };
}

const isAuthError = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof AuthenticationError, `expected an AuthenticationError, got ${String(error)}`);
  assert.equal((error as AuthenticationError).code, 'ERR_MP_AUTHENTICATION');
  assert.match((error as Error).message, pattern);
  return true;
};

describe('Listener', () => {
  it('listens on a socket file in a private directory (0700) by default, and removes both on close()', { timeout }, async (t) => {
    const listener = await listening(t, 'unix');
    const path = listener.address as string;
    assert.equal(typeof path, 'string');
    assert.ok(lstatSync(path).isSocket(), 'the socket file exists while listening');
    const dir = lstatSync(dirname(path));
    assert.ok(dir.isDirectory());
    assert.equal(dir.mode & 0o777, 0o700, 'only this user may enter the directory');
    listener.close();
    assert.equal(existsSync(path), false, 'socket file removed');
    assert.equal(existsSync(dirname(path)), false, 'private directory removed');
  });

  it('`using` closes it at the end of the block (its socket file goes), `await using` too, and the Connections it gave', { timeout }, async () => {
    let path = '';
    const conns: Connection[] = [];
    {
      using listener = new Listener();
      await listener.ready();
      path = listener.address as string;
      socketPaths.add(path);
      const accepting = listener.accept();
      await using client = await Client(path);
      await using server = await accepting;
      conns.push(server, client);
      client.send('inside');
      assert.equal(await server.recv({ timeout: 10_000 }), 'inside');
    }
    assert.equal(existsSync(path), false, 'socket file removed at the end of the block');
    assert.deepEqual(conns.map((conn) => conn.closed), [true, true]);
    let disposed: Listener | undefined;
    {
      await using tcp = new Listener({ address: { host: '127.0.0.1', port: 0 } });
      await tcp.ready();
      disposed = tcp;
    }
    await assert.rejects(disposed.accept(), { code: 'ERR_MP_LISTENER_CLOSED' });
  });

  it('creates a socket file at a given path with mode 0600, and removes it on close()', { timeout }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-listener-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'given.sock');
    socketPaths.add(path);
    const listener = new Listener({ address: path });
    t.after(() => listener.close());
    await listener.ready();
    assert.equal(listener.address, path);
    const stat = lstatSync(path);
    assert.ok(stat.isSocket());
    assert.equal(stat.mode & 0o777, 0o600);
    const [server, client] = await Promise.all([listener.accept(), Client(path)]);
    closing(t, server);
    closing(t, client);
    client.send('over a given path');
    assert.equal(await server.recv({ timeout: 10_000 }), 'over a given path');
    listener.close();
    assert.equal(existsSync(path), false, 'socket file removed on close()');
    assert.ok(existsSync(dir), "the user's directory stays");
  });

  it('on TCP 127.0.0.1 port 0, address has the real port as soon as the constructor returns (after close() it stays)', { timeout }, async (t) => {
    const listener = new Listener({ address: { host: '127.0.0.1', port: 0 } });
    t.after(() => listener.close());
    const address = listener.address as { host: string; port: number };
    assert.equal(address.host, '127.0.0.1');
    assert.ok(Number.isInteger(address.port) && address.port > 0, `a real port, got ${address.port}`);
    assert.equal(await listener.ready(), listener);
    assert.deepEqual(listener.address, address);
    assert.equal(listener.lastAccepted, null);
    const [server, client] = await Promise.all([listener.accept(), Client({ host: '127.0.0.1', port: address.port })]);
    closing(t, server);
    closing(t, client);
    const peer = listener.lastAccepted as { host: string; port: number } | null; // (the assert above narrowed the getter)
    assert.equal(peer?.host, '127.0.0.1', "lastAccepted is the client's address (Python's last_accepted)");
    assert.ok(Number.isInteger(peer?.port) && (peer?.port as number) > 0 && peer?.port !== address.port);
    server.send({ port: address.port });
    assert.deepEqual(await client.recv({ timeout: 10_000 }), { port: address.port });
    listener.close();
    assert.deepEqual(listener.address, address);
  });

  it('new Listener() throws ERR_MP_LISTEN, naming the address, when it is in use (as Python raises in the constructor)', { timeout }, async (t) => {
    const first = await listening(t, 'tcp');
    const port = (first.address as { port: number }).port;
    assert.throws(() => new Listener({ address: { host: '127.0.0.1', port } }), (error: ProcessError) => {
      assert.ok(error instanceof ProcessError);
      assert.equal(error.code, 'ERR_MP_LISTEN');
      assert.match(error.message, new RegExp(`^new Listener\\(\\): cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*Choose another address\\.$`));
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
      return true;
    });
    const unix = await listening(t, 'unix');
    assert.throws(() => new Listener({ address: unix.address }), { code: 'ERR_MP_LISTEN', message: /EADDRINUSE/ });
    assert.throws(() => new Listener({ address: { host: '127.0.0.1', port: 65536 } }), { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: /`port` to be from 0 to 65535, got 65536/ });
    // A host name other than localhost is resolved by Node, on a later turn: its errors come from ready().
    const named = new Listener({ address: { host: 'no-such-host.invalid', port: 0 } });
    t.after(() => named.close());
    await assert.rejects(named.ready(), { code: 'ERR_MP_LISTEN', message: /no-such-host\.invalid:0/ });
  });

  it("close() of an accepted or a client Connection makes its own waiting recv() reject with ERR_MP_CONNECTION_CLOSED, not end of stream", { timeout }, async (t) => {
    for (const kind of kinds) {
      const listener = await listening(t, kind);
      const [server, client] = await Promise.all([listener.accept(), Client(listener.address)]);
      closing(t, client);
      for (const conn of [server, client]) {
        const waiting = conn.recv();
        conn.close();
        await assert.rejects(waiting, (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_CONNECTION_CLOSED' && /while the call waited/.test(error.message));
      }
    }
  });

  it('close() makes a pending accept() reject with ERR_MP_LISTENER_CLOSED, and a later one too', { timeout }, async (t) => {
    for (const kind of kinds) {
      const listener = await listening(t, kind);
      const pending = listener.accept();
      listener.close();
      const closed = (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_LISTENER_CLOSED' && /was closed/.test(error.message);
      await assert.rejects(pending, closed);
      await assert.rejects(listener.accept(), closed);
      // Closed in the turn it was made, before Node bound it (which then never says 'listening').
      const brief = new Listener({ address: kind === 'tcp' ? { host: '127.0.0.1', port: 0 } : undefined });
      const early = brief.accept();
      brief.close();
      await assert.rejects(early, closed);
      await assert.rejects(brief.ready(), closed);
    }
  });

  it('accept(timeout) rejects with TimeoutError, accept({ signal }) with the reason; a client that connects afterwards is the next accept()\'s', { timeout }, async (t) => {
    for (const kind of kinds) {
      const listener = await listening(t, kind);
      await assertTimesOutAndAborts((options) => listener.accept(options), 30, /^Listener\.accept\(\) on .+: no client connected within 30 ms\.$/);
      await assert.rejects(listener.accept({ signal: AbortSignal.abort(new Error('stop accepting')) }), /stop accepting/, 'an aborted signal rejects at once');
      // Neither wait took the connection that comes now.
      const client = await Client(listener.address);
      const server = await listener.accept({ timeout: 20_000 });
      client.send('after the timeouts');
      assert.equal(await server.recv(), 'after the timeouts');
      client.close();
      server.close();
      await assert.rejects(listener.accept('soon' as never), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT' });
    }
  });

  it('refuses a peer that sends a message instead of answering the challenge, and delivers nothing of it', { timeout }, async (t) => {
    const listener = await listening(t, 'unix', 'secret');
    const accepted = listener.accept();
    // A hand-written peer on a real socket: a client that skips the handshake and sends a frame
    // of the wire format ([u32 length][u8 tag 0 = object]) cannot be produced through Client().
    const raw = createConnection(listener.address as string);
    t.after(() => raw.destroy());
    raw.on('error', () => {});
    raw.resume(); // reads (and drops) the challenge, so that it sees the server's end
    await once(raw, 'connect');
    const payload = Buffer.from('sneaky');
    const header = Buffer.alloc(5);
    header.writeUInt32LE(payload.length, 0);
    raw.write(Buffer.concat([header, payload]));
    await assert.rejects(accepted, isAuthError(/sent a message instead of taking part in the authkey handshake/));
    await once(raw, 'close'); // refused: the server closed the connection
    // The Listener still works for a client with the key.
    const [server, client] = await Promise.all([listener.accept(), Client(listener.address, { authkey: 'secret' })]);
    closing(t, server);
    closing(t, client);
    client.send('honest');
    assert.equal(await server.recv({ timeout: 10_000 }), 'honest');
  });

  it('without a key, delivers what a client sent before it closed, even when accept() runs only after the client is gone', { timeout }, async (t) => {
    const listener = await listening(t, 'unix');
    const accepted = listener.accept();
    // A keyless client's frames, as Client() writes them: NO_AUTHKEY (handshake tag 0xa5), then one object.
    const frame = (bytes: Uint8Array, tag: number) => Buffer.concat([Buffer.from([...new Uint8Array(new Uint32Array([bytes.length]).buffer), tag]), bytes]);
    const frames = Buffer.concat([frame(Buffer.from('#NO-AUTHKEY#'), 0xa5), frame(Buffer.from(dumps('last words', 'test')), 0)]);
    const closed = new Int32Array(new SharedArrayBuffer(4));
    // A raw client on a worker thread connects, writes, closes and says so, while this thread's
    // event loop is blocked: the connection, its data and its end all wait in the kernel, and the
    // accept() that follows runs with the client already gone (a write to it would fail, EPIPE).
    const worker = new Worker(
      `const { workerData: { path, frames, closed } } = require('node:worker_threads');
       const socket = require('node:net').createConnection(path, () => socket.end(frames));
       socket.on('finish', () => socket.destroy()); // gone at once: no waiting for the Listener's end
       socket.on('close', () => { Atomics.store(closed, 0, 1); Atomics.notify(closed, 0); });`,
      // No loader: the worker must start while this thread is blocked.
      { eval: true, execArgv: [], workerData: { path: listener.address, frames, closed } },
    );
    t.after(() => worker.terminate());
    assert.notEqual(Atomics.wait(closed, 0, 0, 10_000), 'timed-out', 'the raw client did not close');
    const conn = closing(t, await accepted);
    assert.equal(await conn.recv({ timeout: 10_000 }), 'last words');
    await assert.rejects(conn.recv(), (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_EOF');
  });

  it('rejects an authkey that is neither a string nor bytes with a TypeError', { timeout }, () => {
    assert.throws(() => new Listener({ authkey: 42 as unknown as string }), (error: TypeError) => error instanceof TypeError && /authkey/.test(error.message));
  });
});

// The two sides of a silent peer wait out the same 20 s handshake timeout, side by side.
describe('the authkey handshake with a peer that never answers', { concurrency: true }, () => {
  const handshakeTimeout = 20_000;

  it('makes accept() reject with AuthenticationError after the handshake timeout, not hang', { timeout: handshakeTimeout + 20_000 }, async (t) => {
    const listener = await listening(t, 'unix', 'secret');
    const startedAt = performance.now();
    const accepted = listener.accept();
    // A hand-written peer: connects and never speaks (no Client() does that).
    const silent = createConnection(listener.address as string);
    t.after(() => silent.destroy());
    silent.on('error', () => {});
    silent.resume();
    await assert.rejects(accepted, isAuthError(/did not answer within 20 s/));
    assert.ok(performance.now() - startedAt >= handshakeTimeout - 1);
  });

  it('makes Client() with a key reject with AuthenticationError after the handshake timeout, not hang', { timeout: handshakeTimeout + 20_000 }, async (t) => {
    const { path } = await silentServer(t);
    const startedAt = performance.now();
    await assert.rejects(Client(path, { authkey: 'secret' }), isAuthError(/did not answer within 20 s/));
    assert.ok(performance.now() - startedAt >= handshakeTimeout - 1);
  });
});

describe('Client', () => {
  it('with { timeout } or { signal } gives up on a server that never answers the handshake, and closes its socket', { timeout }, async (t) => {
    const { path, server } = await silentServer(t);
    const closedOnServer = () => once(server, 'connection').then(([socket]) => once(socket as Socket, 'close'));
    let closed = closedOnServer();
    await assert.rejects(Client(path, { authkey: 'secret', timeout: 50 }), { name: 'TimeoutError', code: 'ERR_MP_TIMEOUT', message: `Client(): no connection to ${path} within 50 ms.` });
    await closed;
    closed = closedOnServer();
    const controller = new AbortController();
    const connecting = Client(path, { authkey: 'secret', signal: controller.signal });
    await once(server, 'connection');
    const reason = new Error('stop connecting');
    controller.abort(reason);
    await assert.rejects(connecting, (error) => error === reason);
    await closed;
    await assert.rejects(Client(path, { signal: AbortSignal.abort(reason) }), (error) => error === reason, 'an aborted signal: no connection at all');
    await assert.rejects(Client(path, { timeout: Number.NaN }), RangeError);
  });

  it('to a Unix path with no Listener rejects with ERR_MP_CONNECT, naming the path', { timeout }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-listener-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'nobody.sock');
    await assert.rejects(Client(path), (error: ProcessError) => {
      assert.ok(error instanceof ProcessError);
      assert.equal(error.code, 'ERR_MP_CONNECT');
      assert.ok(error.message.includes(path), error.message);
      return true;
    });
  });

  it('to a TCP port with no Listener rejects with ERR_MP_CONNECT, naming host and port', { timeout }, async (t) => {
    // A port that was just free: bound by a Listener, then closed.
    const listener = await listening(t, 'tcp');
    const address = listener.address as { host: string; port: number };
    listener.close();
    await assert.rejects(Client(address), (error: ProcessError) => {
      assert.ok(error instanceof ProcessError);
      assert.equal(error.code, 'ERR_MP_CONNECT');
      assert.ok(error.message.includes(`127.0.0.1:${address.port}`), error.message);
      return true;
    });
  });

  it('with the same key as bytes on one side and a string on the other connects', { timeout }, async (t) => {
    const listener = await listening(t, 'tcp', Buffer.from('sésame'));
    const [server, client] = await Promise.all([listener.accept(), Client(listener.address, { authkey: 'sésame' })]);
    closing(t, server);
    closing(t, client);
    client.send(1);
    assert.equal(await server.recv({ timeout: 10_000 }), 1);
  });

  it('recv() of a socket Connection closed by the other end in this process rejects with ERR_MP_EOF after the last message', { timeout }, async (t) => {
    const listener = await listening(t, 'unix');
    const [server, client] = await Promise.all([listener.accept(), Client(listener.address)]);
    closing(t, server);
    client.send('before close');
    client.close();
    assert.equal(await server.recv({ timeout: 10_000 }), 'before close');
    await assert.rejects(server.recv({ timeout: 10_000 }), (error: ProcessError) => error.code === 'ERR_MP_EOF');
    assert.equal(await server.poll(), true, 'the end of the stream counts as readable');
  });

  it('send() after the other end closed is dropped as on a Pipe, not refused as if the end were one-way', { timeout }, async (t) => {
    const listener = await listening(t, 'unix');
    const [server, client] = await Promise.all([listener.accept(), Client(listener.address)]);
    closing(t, server);
    client.close();
    await assert.rejects(server.recv({ timeout: 10_000 }), (error: ProcessError) => error.code === 'ERR_MP_EOF');
    // Node destroys the socket a few turns of the event loop after the end: sends before and after it.
    for (let turn = 0; turn < 50; turn++) {
      assert.equal(server.writable, true);
      server.send({ turn });
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
});

forEachBackend((ctx, backend) => {
  describe('Client in a child', () => {
    for (const kind of kinds) {
      it(`with the right key (${kind}) exchanges objects and bytes both ways`, { timeout }, async (t) => {
        const listener = await listening(t, kind, 'right key');
        const label = `${backend}-${kind}-echo`;
        const p = started(t, ctx, echoClient, [channel.path, listener.address, 'right key', label]);
        const conn = closing(t, await listener.accept());
        assert.deepEqual(await conn.recv({ timeout: 10_000 }), { hello: label, pid: p.pid });
        const value = { big: 2n ** 70n, map: new Map<unknown, unknown>([[1, 'one']]), when: new Date(7), nested: [{ s: 'é' }, null, -0] };
        conn.send(value);
        assert.deepEqual(await conn.recv({ timeout: 10_000 }), value);
        conn.sendBytes(Buffer.from('0123456789'), 2, 5);
        assert.deepEqual(await conn.recvBytes(), Buffer.from('23456'));
        conn.sendBytes(new Uint8Array([1, 2, 3]));
        const into = Buffer.alloc(8);
        assert.equal(await conn.recvBytesInto(into, 4), 3);
        assert.deepEqual([...into], [0, 0, 0, 0, 1, 2, 3, 0]);
        conn.send('bye');
        const done = await channel.event('echo-done', (m) => m.label === label);
        assert.equal(done.echoed, 3);
        await p.join();
        assert.equal(p.exitCode, 0);
        await assert.rejects(conn.recv({ timeout: 10_000 }), (error: ProcessError) => error.code === 'ERR_MP_EOF');
      });
    }

    it('carries 16 MiB messages, as bytes and as an object, both ways', { timeout: 60_000 }, async (t) => {
      const listener = await listening(t, 'unix', 'k');
      const label = `${backend}-large`;
      started(t, ctx, echoClient, [channel.path, listener.address, 'k', label]);
      const conn = closing(t, await listener.accept());
      await conn.recv({ timeout: 10_000 });
      const big = Buffer.alloc(16 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
      conn.sendBytes(big);
      const back = await conn.recvBytes();
      assert.equal(back.length, big.length);
      assert.ok(back.equals(big), 'the bytes came back unchanged');
      const array = new Float64Array(2 * 1024 * 1024).map((_, i) => i / 3);
      conn.send({ array, tail: 'end' });
      const echoed = (await conn.recv()) as { array: Float64Array; tail: string };
      assert.equal(echoed.tail, 'end');
      assert.ok(echoed.array instanceof Float64Array);
      assert.ok(Buffer.from(echoed.array.buffer, echoed.array.byteOffset, echoed.array.byteLength).equals(Buffer.from(array.buffer)));
      conn.send('bye');
      await channel.event('echo-done', (m) => m.label === label);
    });

    it('delivers 10,000 messages from the child in order, objects interleaved with bytes', { timeout: 60_000 }, async (t) => {
      const listener = await listening(t, 'tcp');
      const count = 10_000;
      const p = started(t, ctx, sendMany, [channel.path, listener.address, count]);
      const conn = closing(t, await listener.accept());
      for (let i = 0; i < count; i++) {
        assert.deepEqual(await conn.recv({ timeout: 10_000 }), { i });
        if (i % 100 === 99) assert.deepEqual(await conn.recv({ timeout: 10_000 }), Buffer.from(`bytes-${i}`));
      }
      assert.equal(await conn.recv({ timeout: 10_000 }), 'end');
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('echoes 5,000 messages sent at once by the parent, in order', { timeout: 60_000 }, async (t) => {
      const listener = await listening(t, 'unix', 'k');
      const label = `${backend}-order`;
      started(t, ctx, echoClient, [channel.path, listener.address, 'k', label]);
      const conn = closing(t, await listener.accept());
      await conn.recv({ timeout: 10_000 });
      for (let i = 0; i < 5000; i++) conn.send([i, 'x'.repeat(i % 50)]);
      for (let i = 0; i < 5000; i++) assert.deepEqual(await conn.recv({ timeout: 10_000 }), [i, 'x'.repeat(i % 50)]);
      conn.send('bye');
      const done = await channel.event('echo-done', (m) => m.label === label);
      assert.equal(done.echoed, 5000);
    });

    it('with a wrong key: Client() and accept() both reject with AuthenticationError, and the Listener stays usable', { timeout }, async (t) => {
      const listener = await listening(t, 'unix', 'right key');
      const accepted = listener.accept();
      const bad = `${backend}-wrong-key`;
      const badChild = started(t, ctx, tryClient, [channel.path, listener.address, 'wrong key', bad]);
      await assert.rejects(accepted, isAuthError(/did not prove it knows the authkey/));
      const seen = await channel.event('client', (m) => m.label === bad);
      assert.equal(seen.connected, false);
      assert.deepEqual({ name: (seen.error as Record<string, unknown>).name, code: (seen.error as Record<string, unknown>).code }, { name: 'AuthenticationError', code: 'ERR_MP_AUTHENTICATION' });
      assert.match(String((seen.error as Record<string, unknown>).message), /refused our authkey/);
      await badChild.join();
      assert.equal(badChild.exitCode, 0);
      await servesNextClient(t, ctx, listener, 'right key', `${backend}-after-wrong-key`);
    });

    it('without a key, to a Listener with one: accept() rejects in the handshake, the messages the client sent are never delivered, and its recv() rejects', { timeout }, async (t) => {
      const listener = await listening(t, 'tcp', 'right key');
      const accepted = listener.accept();
      const label = `${backend}-keyless-client`;
      started(t, ctx, tryClient, [channel.path, listener.address, undefined, label]);
      await assert.rejects(accepted, isAuthError(/has no authkey, and this side has one/));
      const seen = await channel.event('client', (m) => m.label === label);
      assert.equal(seen.connected, true, 'a Client() without a key cannot know before it reads');
      assert.equal(seen.received, null, 'the challenge was not delivered as a message');
      assert.equal((seen.recvError as Record<string, unknown>).name, 'AuthenticationError');
      assert.match(String((seen.recvError as Record<string, unknown>).message), /has an authkey and began the authkey handshake, but this side has none/);
      // The next connection's first message is its own: nothing of the keyless client's leaked.
      await servesNextClient(t, ctx, listener, 'right key', `${backend}-after-keyless-client`);
    });

    it('with a key, to a Listener without one: Client() rejects, and recv() on the accepted Connection rejects, both with AuthenticationError', { timeout }, async (t) => {
      const listener = await listening(t, 'unix');
      const label = `${backend}-keyed-client`;
      started(t, ctx, tryClient, [channel.path, listener.address, 'some key', label]);
      const conn = closing(t, await listener.accept()); // no key here: accept() has nothing to check
      await assert.rejects(conn.recv({ timeout: 10_000 }), isAuthError(/has an authkey and began the authkey handshake, but this side has none/));
      assert.equal(await conn.poll(), true, 'a refused connection is ready: recv() would reject, not wait');
      const seen = await channel.event('client', (m) => m.label === label);
      assert.equal(seen.connected, false);
      assert.equal((seen.error as Record<string, unknown>).name, 'AuthenticationError');
      assert.match(String((seen.error as Record<string, unknown>).message), /has no authkey, and this side has one/);
      await servesNextClient(t, ctx, listener, undefined, `${backend}-after-keyed-client`);
    });

    it('with no key on either side connects', { timeout }, async (t) => {
      const listener = await listening(t, 'tcp');
      await servesNextClient(t, ctx, listener, undefined, `${backend}-no-keys`);
    });

    it('recv() rejects with ERR_MP_EOF once the child closed its end, after its last message', { timeout }, async (t) => {
      const listener = await listening(t, 'unix');
      const p = started(t, ctx, sendThenClose, [channel.path, listener.address]);
      const conn = closing(t, await listener.accept());
      assert.equal(await conn.recv({ timeout: 10_000 }), 'last words');
      await assert.rejects(conn.recv(), (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_EOF');
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it('recv() rejects, without hanging, when the child is killed', { timeout }, async (t) => {
      const listener = await listening(t, 'tcp');
      const label = `${backend}-killed`;
      const p = started(t, ctx, connectThenBlock, [channel.path, listener.address, label]);
      const conn = closing(t, await listener.accept());
      assert.equal(await conn.recv({ timeout: 10_000 }), 'hi');
      await channel.event('ready', (m) => m.label === label);
      const pending = conn.recv(); // no timeout: only the end of the connection can settle it
      p.kill();
      await p.join();
      assert.equal(p.exitCode, -9);
      await assert.rejects(pending, (error: ProcessError) => error instanceof ProcessError && error.code === 'ERR_MP_EOF');
    });

    it('a Listener the child did not close has its socket files removed when the child exits', { timeout }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'mp-listener-test-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const label = `${backend}-unclosed`;
      const p = started(t, ctx, listenAndReturn, [channel.path, join(dir, 'child.sock'), label]);
      const seen = await channel.event('listening', (m) => m.label === label);
      const privatePath = seen.privatePath as string;
      socketPaths.add(privatePath);
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.equal(existsSync(privatePath), false);
      assert.equal(existsSync(dirname(privatePath)), false, 'the private directory went too');
      assert.equal(existsSync(seen.givenPath as string), false);
    });

    it('a socket Connection moves to a child sent as a Process arg, with what this side had read of it; here it is closed, and says where it went', { timeout }, async (t) => {
      const listener = await listening(t, 'tcp', 'secret');
      const [server, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address, { authkey: 'secret' })]);
      closing(t, client);
      client.send('before');
      assert.equal(await server.poll(10_000), true, 'read on this side, not received yet');
      const p = started(t, ctx, echoConnection, [server, 2]);
      assert.equal(server.closed, true);
      assert.throws(() => server.send('here'), { code: 'ERR_MP_CONNECTION_CLOSED', message: /sent to another process or thread .*use it there/ });
      client.send('after');
      assert.deepEqual([await client.recv({ timeout: 10_000 }), await client.recv({ timeout: 10_000 })], ['echo before', 'echo after']);
      await p.join();
      assert.equal(p.exitCode, 0);
      await assert.rejects(client.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' }, 'the child closed it: the end reaches the client');
    });

    it('a socket Connection moves through a Queue and to a pool task; one refused while a recv() waits on it stays usable', { timeout }, async (t) => {
      const listener = await listening(t, 'unix');
      const q = new ctx.Queue<Connection<string>>();
      t.after(() => q.close());
      const p = started(t, ctx, echoFromQueue, [q, 1]);
      const [server, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, client);
      await q.put(server);
      client.send('queued');
      assert.equal(await client.recv({ timeout: 10_000 }), 'echo queued');
      await p.join();
      assert.equal(p.exitCode, 0);

      await using pool = new ctx.Pool(1);
      const [server2, client2] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, client2);
      const waiting = server2.recv({ timeout: 10_000 });
      assert.throws(() => pool.applyAsync(echoConnection, [server2, 1]), { code: 'ERR_MP_NOT_CLONEABLE', message: /a recv\(\) or poll\(\) on it is waiting in this process/ });
      client2.send('first');
      assert.equal(await waiting, 'first', 'the refused send left it as it was');
      await echoesThroughPool(pool.apply(echoConnection, [server2, 1]), client2, 'pooled');
    });

    it("a pool task whose socket Connection cannot be received in the worker fails with the reason (also when retried after its worker died), and the pool goes on", { timeout }, async (t) => {
      const listener = await listening(t, 'unix');
      const [behind, behindClient] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, behindClient);
      const [server] = await receivedHere(t, ctx, listener);
      await using pool = new ctx.Pool(1, { retries: 1 });
      // Sent in one message (the worker is still starting): sent again alone, the others run, and
      // the socket Connection behind the one that failed was not taken by the worker that failed.
      const innocent = pool.apply(noop, []);
      const failing = pool.apply(echoConnection, [server, 1]);
      const echoedBehind = pool.apply(echoConnection, [behind, 1]);
      await assert.rejects(failing, (error: ProcessError) => {
        assert.equal(error.code, 'ERR_MP_CONNECTION_LOST');
        assert.match(error.message, /^Pool: worker pid \d+ could not rebuild the arguments of task \d+ \(echoConnection\): .*was received already/s);
        assert.doesNotMatch(error.message, /retried/);
        return true;
      });
      assert.equal(await innocent, undefined);
      await echoesThroughPool(echoedBehind, behindClient, 'behind');

      // The first worker receives it and dies with it; the retry cannot receive it again.
      const [server2, client2] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, client2);
      await assert.rejects(pool.apply(dieHolding, [server2, backend === 'process' ? 'kill' : 'exit']), {
        code: 'ERR_MP_CONNECTION_LOST',
        message: /could not rebuild the arguments of task \d+ \(dieHolding\): .*was received already.*retried after its worker died/s,
      });
      await assert.rejects(client2.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' }, 'it went with the dead worker');
      const [server3, client3] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, client3);
      await echoesThroughPool(pool.apply(echoConnection, [server3, 1]), client3, 'after');
    });

    // What a copy of a Pipe end counted when it was sent is let go where the copy is dropped
    // unbuilt: kept, the reader would wait for ever for a writer that does not exist.
    it('a value that cannot be rebuilt (a socket Connection received already, then a Pipe end) lets go of the Pipe end: its reader sees the end', { timeout }, async (t) => {
      const [server] = await receivedHere(t, ctx, await listening(t, 'unix'));
      const q = new ctx.Queue<Connection<string>[]>();
      t.after(() => q.close());
      const [reader, writer] = ctx.Pipe<string>(false);
      closing(t, reader);
      await q.put([server, writer]);
      await assert.rejects(q.get({ timeout: 10_000 }), { code: 'ERR_MP_CONNECTION_LOST' });
      writer.close();
      await assert.rejects(reader.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' });
    });

    it('tasks sent to a worker behind a message it could not rebuild let go of the Pipe ends they carry: sent again, they run, and the reader sees the end', { timeout }, async (t) => {
      const [server] = await receivedHere(t, ctx, await listening(t, 'unix'));
      const [reader, writer] = ctx.Pipe<string>(false);
      closing(t, reader);
      await using pool = new ctx.Pool(1);
      await pool.map(noop, Array.from({ length: 100 }, () => []), 1); // tiny tasks: more are sent ahead
      const gate = new ctx.Event();
      const holding = pool.apply(waitForGate, [gate]);
      const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
      await nextTurn();
      const failing = assert.rejects(pool.apply(echoConnection, [server, 1]), { code: 'ERR_MP_CONNECTION_LOST', message: /could not rebuild the arguments/ });
      await nextTurn(); // a message of its own, then one more
      const sending = pool.apply(sendAndClose, [writer, 'sent']);
      await nextTurn();
      gate.set();
      const first = await holding;
      await failing;
      assert.notEqual(await sending, first, 'sent again, to the worker that replaced the one that could not read');
      writer.close();
      assert.equal(await reader.recv({ timeout: 10_000 }), 'sent');
      await assert.rejects(reader.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' });
    });

    it('a socket Connection whose send failed (a full Queue, a Process that could not start) stays here, whole and usable', { timeout }, async (t) => {
      const listener = await listening(t, 'tcp');
      const q = new ctx.Queue<unknown>(1);
      t.after(() => q.close());
      q.putNowait('filler');
      const [server, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, server);
      closing(t, client);
      client.send('read before');
      assert.equal(await server.poll(10_000), true);
      assert.throws(() => q.putNowait(server), { name: 'Full' });
      await assert.rejects(q.put(server, { timeout: 20 }), { name: 'Full' });
      const p = new ctx.Process({ target: echoConnection, args: [server, 1] });
      Object.assign(p, { unsendable: () => 1 }); // a field that cannot cross: start() fails after the args
      assert.throws(() => p.start(), { code: 'ERR_MP_NOT_CLONEABLE', message: /field this\.unsendable/ });
      assert.equal(server.closed, false);
      client.send('read after');
      assert.deepEqual([await server.recv({ timeout: 10_000 }), await server.recv({ timeout: 10_000 })], ['read before', 'read after']);
      server.send('answer');
      assert.equal(await client.recv({ timeout: 10_000 }), 'answer');
    });

    it('a socket Connection is received once; one whose sending process exited first cannot be, and says why', { timeout }, async (t) => {
      const listener = await listening(t, 'unix');
      const q = new ctx.Queue<Connection<string>>();
      t.after(() => q.close());
      const [server, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address)]);
      closing(t, client);
      await q.put(server);
      await q.put(server);
      closing(t, await q.get({ timeout: 10_000 }));
      await assert.rejects(q.get({ timeout: 10_000 }), { code: 'ERR_MP_CONNECTION_LOST', message: /was received already.*moves to where it is received, once/s });

      const p = started(t, ctx, putClientAndExit, [listener.address, q]);
      closing(t, await listener.accept());
      await p.join();
      assert.equal(p.exitCode, 0);
      if (backend === 'process') {
        await assert.rejects(q.get({ timeout: 10_000 }), { code: 'ERR_MP_CONNECTION_LOST', message: new RegExp(`sent by process ${p.pid} cannot be received: that process has exited`) });
      } else {
        closing(t, await q.get({ timeout: 10_000 })); // a thread's process lives on: its socket does too
      }
    });
  });
});

/** Starts an echo child with `authkey` and checks the next accepted Connection is its own, from its first message. */
async function servesNextClient(t: TestContext, ctx: Context, listener: Listener, authkey: string | undefined, label: string): Promise<void> {
  const p = started(t, ctx, echoClient, [channel.path, listener.address, authkey, label]);
  const conn = closing(t, await listener.accept());
  assert.deepEqual(await conn.recv({ timeout: 10_000 }), { hello: label, pid: p.pid });
  conn.send({ round: 'trip' });
  assert.deepEqual(await conn.recv({ timeout: 10_000 }), { round: 'trip' });
  conn.send('bye');
  await channel.event('echo-done', (m) => m.label === label);
  await p.join();
  assert.equal(p.exitCode, 0);
}

describe('idle sockets', () => {
  const cases: { mode: string; args?: string[]; why: string }[] = [
    { mode: 'unix', why: 'a Listener on a private path and both ends of a connection' },
    { mode: 'tcp', why: 'a TCP Listener and both ends of a connection' },
    { mode: 'user-path', args: ['given.sock', 'a key'], why: 'a Listener on a given path with an authkey' },
    { mode: 'unaccepted', why: 'a connection that was never accepted' },
  ];
  for (const { mode, args, why } of cases) {
    it(`do not keep a program alive after its main code: ${why}; its socket file goes at exit`, { timeout }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'mp-listener-test-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const argv = [mode, ...(args ?? []).map((a, i) => (i === 0 ? join(dir, a) : a))];
      const run = await runScript(idleProgram, argv);
      assert.equal(run.stderr, '');
      assert.deepEqual({ code: run.code, signal: run.signal }, { code: 0, signal: null });
      const facts = JSON.parse(run.stdout) as { address: Address; reply?: unknown };
      if (mode !== 'unaccepted') assert.deepEqual(facts.reply, { pong: { ping: 1 } });
      if (typeof facts.address === 'string') {
        socketPaths.add(facts.address);
        assert.equal(existsSync(facts.address), false, 'the socket file was removed at exit');
        if (mode !== 'user-path') assert.equal(existsSync(dirname(facts.address)), false, 'the private directory was removed at exit');
      } else {
        assert.ok(facts.address.port > 0);
      }
      assert.deepEqual(taggedProcesses(run.tag), []);
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`the socket file and its private directory go when ${signal} ends the program (no handler of its own)`, { timeout }, async (t) => {
      const program = spawn(process.execPath, [...TSX_IMPORT, idleProgram, 'unix', '', '', 'stay'], { stdio: ['ignore', 'pipe', 'pipe'], env: runEnv(`listener-${signal}`) });
      t.after(() => program.kill('SIGKILL'));
      let stderr = '';
      program.stderr.on('data', (chunk) => (stderr += chunk));
      const exited = once(program, 'exit');
      const [line] = (await once(createInterface({ input: program.stdout }), 'line')) as [string];
      const { address } = JSON.parse(line) as { address: string };
      socketPaths.add(address);
      assert.equal(existsSync(address), true);
      program.kill(signal);
      assert.deepEqual(await exited, [null, signal], 'the program still dies of the signal');
      assert.equal(existsSync(dirname(address)), false, 'the private directory was removed');
      assert.equal(stderr, '');
    });
  }
});
