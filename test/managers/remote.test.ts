// Remote managers: a server on TCP 127.0.0.1 (port 0) that other processes reach with
// `new RemoteManager({ address, authkey }).connect()`; the HMAC handshake guards it (a wrong key
// gets AuthenticationError and nothing is made or run, even for a client that skips the handshake
// and sends a request); Process.authkey is inherited by children and differs between programs;
// getServer().serveForever() in a child, stopped by a client's shutdown(). The server runs in a
// process: a TCP server in a worker thread of this test would behave the same, so once is enough.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { AuthenticationError, Pipe, Process, ProcessError, TimeoutError, descendants } from '../../src/index.ts';
import type { Address } from '../../src/connection/index.ts';
import { dumps } from '../../src/reduction.ts';
import { assertNoLeftovers, shutDownAfter } from '../fixtures/managers/harness.ts';
import { killRuns, lines, runScript } from '../helpers/spawn-script.ts';
import { BoardClient, RemoteManager, connectAndPost, serveBoard } from '../fixtures/managers/remote.ts';

const timeout = 60_000;
const localhost = { host: '127.0.0.1', port: 0 };

after(async () => {
  killRuns();
  await assertNoLeftovers();
});

async function startedRemote(t: TestContext, authkey?: string): Promise<RemoteManager> {
  const m = new RemoteManager({ address: localhost, ...(authkey === undefined ? {} : { authkey }) });
  await m.start();
  return shutDownAfter(t, m);
}

/** Runs connectAndPost in a child process and returns what it sent back. */
async function postFromChild(address: Address, authkey: string | undefined, text: string): Promise<Record<string, unknown>> {
  const [mine, theirs] = Pipe();
  const p = new Process({ target: connectAndPost, args: [address, authkey, text, theirs] });
  p.start();
  theirs.close();
  const result = (await mine.recv()) as Record<string, unknown>;
  mine.close();
  await p.join();
  assert.equal(p.exitCode, 0);
  return result;
}

describe('remote managers over TCP', () => {
  it('listen on 127.0.0.1 with the real port; a second process connect()s with the authkey and shares the object', { timeout }, async (t) => {
    const m = await startedRemote(t, 'sesame');
    const address = m.address as { host: string; port: number };
    assert.equal(address.host, '127.0.0.1');
    assert.ok(address.port > 0);
    assert.deepEqual(await postFromChild(address, 'sesame', 'hello'), { posts: ['hello'] });
    const b = await m.board();
    assert.deepEqual(await b.posts(), ['hello']);
    // And a manager in this process connected the same way.
    const client = await new RemoteManager({ address, authkey: 'sesame' }).connect();
    assert.equal(await (await client.board()).post('from the parent'), 2);
    // A client class that registered 'board' without a factory, as Python's clients do, has the method too.
    const bare = await new BoardClient({ address, authkey: 'sesame' }).connect();
    assert.equal(typeof bare.board, 'function');
    assert.deepEqual(await (await bare.board()).posts(), ['hello', 'from the parent']);
  });

  it('connect() where no server listens rejects with ERR_MP_CONNECT, naming the manager call and how to start one', { timeout }, async () => {
    const nowhere = join(mkdtempSync(join(tmpdir(), 'mp-nowhere-')), 'socket');
    try {
      await assert.rejects(new RemoteManager({ address: nowhere, authkey: 'k' }).connect(), { code: 'ERR_MP_CONNECT', message: /^RemoteManager\.connect\(\): no manager server answers at .*socket \(.*\)\. Start one there first/ });
    } finally {
      rmSync(dirname(nowhere), { recursive: true, force: true });
    }
  });

  it('a wrong authkey gets AuthenticationError, in the client and in a child, and the server makes nothing for it', { timeout }, async (t) => {
    const m = await startedRemote(t, 'sesame');
    const stats = await m.stats();
    const handedOut = await stats.boardsHandedOut();
    await assert.rejects(new RemoteManager({ address: m.address, authkey: 'wrong' }).connect(), AuthenticationError);
    assert.deepEqual(await postFromChild(m.address, 'wrong', 'intruder'), { error: 'AuthenticationError', code: 'ERR_MP_AUTHENTICATION' });
    assert.equal(await stats.boardsHandedOut(), handedOut, 'no board was created for a refused client');
    assert.deepEqual(await (await m.board()).posts(), []);
  });

  it('connect({ timeout, signal }) bounds the wait for a server that accepts and never answers', { timeout }, async () => {
    const accepted = new Set<Socket>();
    const silent = createServer((socket) => accepted.add(socket.on('error', () => {}).resume())); // reads (and drops) what comes: its end is seen
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const address = { host: '127.0.0.1', port: (silent.address() as AddressInfo).port };
    try {
      await assert.rejects(new RemoteManager({ address, authkey: 'sesame' }).connect({ timeout: 100 }), (error: Error) => {
        assert.ok(error instanceof TimeoutError);
        assert.match(error.message, /^RemoteManager\.connect\(\): the server at 127\.0\.0\.1:\d+ did not answer within 100 ms/);
        return true;
      });
      const stopping = new AbortController();
      const reached = once(silent, 'connection');
      const connecting = new RemoteManager({ address, authkey: 'sesame' }).connect({ signal: stopping.signal });
      await reached; // a new attempt: the one that timed out was forgotten
      stopping.abort(new Error('gave up'));
      await assert.rejects(connecting, { message: 'gave up' });
      // Each attempt that was given up closed its socket (it would keep this process alive).
      await Promise.all([...accepted].map((socket) => socket.closed || once(socket, 'close')));
    } finally {
      for (const socket of accepted) socket.destroy(); // the attempts end: their connection reset
      silent.close();
    }
  });

  it('a client that skips the handshake and sends a request gets only handshake frames back, then the connection ends', { timeout }, async (t) => {
    const m = await startedRemote(t, 'sesame');
    const stats = await m.stats();
    const before = await stats.boardsHandedOut();
    const { port } = m.address as { host: string; port: number };
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    // A well-formed request frame ([u32 length][u8 tag 0 = object][bytes]), where the challenge answer should be.
    const body = dumps({ id: 1, op: 'create', typeid: 'board', args: [] }, 'test');
    const header = Buffer.alloc(5);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt8(0, 4);
    socket.write(Buffer.concat([header, body]));
    await once(socket, 'close');
    const bytes = Buffer.concat(received);
    const tags: number[] = [];
    for (let offset = 0; offset + 5 <= bytes.length; offset += 5 + bytes.readUInt32LE(offset)) tags.push(bytes.readUInt8(offset + 4));
    assert.ok(tags.length > 0, 'the server sent its challenge');
    assert.deepEqual(tags, tags.map(() => 0xa5), 'every frame was a handshake frame: no reply to the request');
    assert.ok(bytes.includes('#FAILURE#'), 'and it refused');
    assert.equal(await stats.boardsHandedOut(), before, 'the request was not run');
  });

  it('uses this program\'s Process.authkey by default: a child inherits it, another program has its own and is refused', { timeout }, async (t) => {
    const m = await startedRemote(t);
    assert.deepEqual(await postFromChild(m.address, undefined, 'family'), { posts: ['family'] });
    const file = fileURLToPath(new URL('../fixtures/managers/scripts/connect-own-key.ts', import.meta.url));
    const result = await runScript(file, [String((m.address as { port: number }).port)]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { error: 'AuthenticationError', code: 'ERR_MP_AUTHENTICATION' });
    assert.deepEqual(await (await m.board()).posts(), ['family']);
  });

  it("getServer().serveForever() awaited at the top level of the module that defines and registers the served type (Python's example in one file) creates objects for a client", { timeout }, async () => {
    const run = await runScript(fileURLToPath(new URL('../fixtures/managers/scripts/serve-here.ts', import.meta.url)));
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(lines(run.stdout), ['put: 1', 'serveForever() returned']);
  });

  it('getServer().serveForever() in a child serves this process until a client\'s shutdown() stops it', { timeout }, async () => {
    const [mine, theirs] = Pipe();
    const p = new Process({ target: serveBoard, args: ['sesame', theirs] });
    p.start();
    theirs.close();
    const address = (await mine.recv()) as Address;
    await assert.rejects(new RemoteManager({ address, authkey: 'nope' }).connect(), AuthenticationError);
    const m = await new RemoteManager({ address, authkey: 'sesame' }).connect();
    const b = await m.board();
    assert.equal(await b.post('served'), 1);
    assert.deepEqual(await b.posts(), ['served']);
    await m.shutdown();
    assert.equal(await mine.recv(), 'stopped', 'serveForever() returned');
    mine.close();
    await p.join();
    assert.equal(p.exitCode, 0);
    await assert.rejects(b.posts(), { code: 'ERR_MP_MANAGER_GONE' });
  });

  it('after its server dies, a manager restarted at the same port serves new proxies and refuses the old ones with ERR_MP_MANAGER_GONE', { timeout }, async (t) => {
    const before = new Set(descendants(process.pid));
    const first = await startedRemote(t, 'sesame');
    const serverPid = descendants(process.pid).find((pid) => !before.has(pid))!;
    const address = first.address as { host: string; port: number };
    const old = await first.board();
    await old.post('before');
    process.kill(serverPid, 'SIGKILL');
    await assert.rejects(old.posts(), { code: 'ERR_MP_MANAGER_GONE' });
    const second = shutDownAfter(t, new RemoteManager({ address, authkey: 'sesame' }));
    await second.start();
    assert.deepEqual(second.address, address);
    const client = await new RemoteManager({ address, authkey: 'sesame' }).connect();
    const board = await client.board();
    assert.deepEqual(await board.posts(), [], 'a new server, a new board');
    await assert.rejects(old.posts(), (error: ProcessError) => error.code === 'ERR_MP_MANAGER_GONE' && /restarted/.test(error.message));
    await assert.rejects(old.post('stale'), { code: 'ERR_MP_MANAGER_GONE' });
    assert.deepEqual(await board.posts(), [], 'the old proxy reached nothing');
  });

  it('listens on a Unix socket path the user chose, and removes it at shutdown()', { timeout }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-manager-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'manager.sock');
    const m = new RemoteManager({ address: path, authkey: 'sesame' });
    await m.start();
    assert.equal(m.address, path);
    assert.ok(existsSync(path));
    assert.deepEqual(await postFromChild(path, 'sesame', 'over unix'), { posts: ['over unix'] });
    await m.shutdown();
    assert.equal(existsSync(path), false);
  });
});
