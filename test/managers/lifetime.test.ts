// A manager's lifetime: shutdown() (and `await using`) ends the server and its socket, and then
// pending and later calls reject with ERR_MP_MANAGER_GONE instead of hanging; so does SIGKILL of
// the server's process, in this process and in a child. A client that dies while its call waits
// takes nothing with it. Programs that forget shutdown(), keep proxies after it, or are SIGKILLed
// exit and leave no process and no socket file. SharedMemoryManager unlinks its segments.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from '../helpers/backends.ts';
import { allGone, isRunning } from '../helpers/processes.ts';
import { killRuns, runEnv, runScript, taggedProcesses } from '../helpers/spawn-script.ts';
import { Manager, Pipe, Process, ProcessError, activeChildren, descendants, getContext } from '../../src/index.ts';
import { Manager as DummyManager } from '../../src/dummy.ts';
import { SharedMemoryManager, SyncManager } from '../../src/managers/index.ts';
import { SharedMemory, ShareableList } from '../../src/shared-memory.ts';
import { assertNoLeftovers, managerFor, shutDownAfter, startEach } from '../fixtures/managers/harness.ts';
import { blockInEverything, getUntilManagerDies } from '../fixtures/managers/targets.ts';

const timeout = 60_000;
const scripts = new URL('../fixtures/managers/scripts/', import.meta.url);

after(async () => {
  killRuns();
  await assertNoLeftovers();
});

async function rejectsGone(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: ProcessError) => {
    assert.ok(error instanceof ProcessError, `expected a ProcessError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_MP_MANAGER_GONE');
    return true;
  });
}

/** The private directory of a manager's default Unix socket. */
function socketDir(address: unknown): string {
  assert.equal(typeof address, 'string');
  const dir = dirname(address as string);
  assert.match(basename(dir), /^mp-listener-/);
  return dir;
}

/** Starts a SyncManager on the process backend and finds its server's pid (the one new descendant). */
async function managerWithPid(): Promise<{ manager: SyncManager; pid: number }> {
  const before = new Set(descendants(process.pid));
  const manager = await Manager({ context: 'process' });
  const fresh = descendants(process.pid).filter((pid) => !before.has(pid));
  assert.equal(fresh.length, 1, `one new process, the server: ${fresh.join(', ')}`);
  return { manager, pid: fresh[0]! };
}

forEachBackend((_ctx, backend) => {
  describe('BaseManager.shutdown()', () => {
    it('rejects the calls waiting then and every later call with ERR_MP_MANAGER_GONE, and removes the socket', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const q = await m.Queue();
      const d = await m.dict();
      const dir = socketDir(m.address);
      const pending = rejectsGone(q.get()); // waits in the server
      const timed = rejectsGone(q.get(true, 60_000)); // a timed wait does not hold the server up either
      // Each waiting call's error is its own, with the stack of the code that awaits it.
      async function waitsInTheServer() {
        await q.get();
      }
      const withItsStack = assert.rejects(waitsInTheServer(), (error: Error) => /^ProcessError: [^\n]*gone[^\n]*\n\s+at async waitsInTheServer \(.*lifetime\.test\.ts/.test(error.stack ?? ''));
      await q.qsize();
      await m.shutdown();
      await pending;
      await timed;
      await withItsStack;
      await rejectsGone(d.get('x'));
      await rejectsGone(q.put(1));
      await rejectsGone(m.dict());
      await m.shutdown(); // twice is harmless
      assert.equal(existsSync(dir), false, 'the socket and its directory are gone');
      assert.match(String(m), /^<SyncManager shutdown/);
    });

    it('`await using` shuts the manager down at the end of the block', { timeout }, async () => {
      let d;
      let dir;
      {
        await using m = await Manager({ context: backend });
        dir = socketDir(m.address);
        d = await m.dict<string, number>();
        await d.set('in', 1);
        assert.equal(await d.get('in'), 1);
      }
      await rejectsGone(d.get('in'));
      assert.equal(existsSync(dir), false);
    });

    it('start() twice throws ERR_MP_MANAGER_STARTED; `address` or a create before start() throws ERR_MP_MANAGER_NOT_STARTED, naming the call and how to start', { timeout }, async (t) => {
      const m = new SyncManager({ context: backend });
      assert.throws(() => m.address, { code: 'ERR_MP_MANAGER_NOT_STARTED' });
      await assert.rejects(m.dict(), { code: 'ERR_MP_MANAGER_NOT_STARTED', message: /^SyncManager\.dict\(\): the manager has not started\. Start it first: `await m\.start\(\)`, or `await using m = await new SyncManager\(\)\.start\(\);` \(Python's `with SyncManager\(\) as m:` starts it/ });
      await m.start();
      shutDownAfter(t, m);
      await assert.rejects(m.start(), { code: 'ERR_MP_MANAGER_STARTED' });
    });
  });

  describe('SharedMemoryManager', () => {
    it('makes SharedMemory segments that other processes open by name, and unlinks them all at shutdown()', { timeout }, async (t) => {
      const smm = new SharedMemoryManager({ context: backend });
      await smm.start();
      shutDownAfter(t, smm);
      const a = await smm.SharedMemory(1024);
      const b = await smm.SharedMemory({ size: 10 }); // Python's smm.SharedMemory(size=10)
      assert.equal(b.size, 10);
      // Bad input names the manager's call, not the constructor under it.
      await assert.rejects(smm.SharedMemory(0), { name: 'RangeError', message: /^SharedMemoryManager\.SharedMemory\(\): expected `size`, a positive integer number of bytes \(or \{ size \}\), got 0/ });
      await assert.rejects(smm.SharedMemory({ size: '1' } as never), { name: 'TypeError', message: /^SharedMemoryManager\.SharedMemory\(\): expected `size`/ });
      await assert.rejects(smm.SharedMemory({ sise: 10 } as never), { message: /SharedMemoryManager\.SharedMemory\(\).*sise.*size/ });
      await assert.rejects(smm.ShareableList('abc' as never), { name: 'TypeError', message: /^SharedMemoryManager\.ShareableList\(\): expected an iterable of items/ });
      t.after(() => {
        a.unlink(); // harmless once the manager did it
        b.unlink();
      });
      assert.equal(a.size, 1024);
      assert.ok(existsSync(`/dev/shm/${a.name}`));
      assert.ok(existsSync(`/dev/shm/${b.name}`));
      a.buf[0] = 42;
      const seen = new SharedMemory({ name: a.name });
      assert.equal(seen.buf[0], 42);
      seen.close();
      await smm.shutdown();
      assert.equal(existsSync(`/dev/shm/${a.name}`), false);
      assert.equal(existsSync(`/dev/shm/${b.name}`), false);
      assert.equal(a.buf[0], 42, 'this process keeps its mapping');
    });

    it('makes ShareableLists that other processes open by name, and unlinks them at shutdown()', { timeout }, async (t) => {
      const smm = new SharedMemoryManager({ context: backend });
      await smm.start();
      shutDownAfter(t, smm);
      const list = await smm.ShareableList([1, 'two', 3.5, null, true]);
      t.after(() => list.shm.unlink()); // harmless once the manager did it
      const name = list.shm.name;
      assert.ok(existsSync(`/dev/shm/${name}`));
      const seen = new ShareableList(null, { name });
      assert.deepEqual([...seen], [1, 'two', 3.5, null, true]);
      seen.set(0, 42);
      assert.equal(list.get(0), 42);
      seen.shm.close();
      await smm.shutdown();
      assert.equal(existsSync(`/dev/shm/${name}`), false);
    });
  });
});

describe('manager death', () => {
  it('SIGKILL of the server rejects a waiting call and every later one with ERR_MP_MANAGER_GONE, here and in a child', { timeout }, async (t) => {
    const { manager, pid } = await managerWithPid();
    shutDownAfter(t, manager);
    const dir = socketDir(manager.address);
    const q = await manager.Queue();
    const d = await manager.dict();
    const [mine, theirs] = Pipe();
    const child = new Process({ target: getUntilManagerDies, args: [q, theirs] });
    child.start();
    theirs.close();
    assert.equal(await mine.recv(), 'waiting');
    const pending = rejectsGone(q.get());
    await q.qsize();
    process.kill(pid, 'SIGKILL');
    await pending;
    await rejectsGone(d.set('x', 1));
    await rejectsGone(manager.dict());
    assert.deepEqual(await mine.recv(), { pending: 'ERR_MP_MANAGER_GONE', later: 'ERR_MP_MANAGER_GONE' });
    mine.close();
    await child.join();
    assert.equal(child.exitCode, 0);
    await manager.shutdown(); // resolves: the server is already gone
    assert.equal(existsSync(dir), false, 'shutdown() removed the socket the killed server left');
  });

  it('a client that dies while its calls wait takes nothing: not the next item, not the lock; a Barrier it waited at breaks', { timeout }, async (t) => {
    const m = await managerFor(t, 'process');
    const q = await m.Queue<string>();
    const lock = await m.Lock();
    const b = await m.Barrier(2);
    const report = await m.Queue<string>();
    await lock.acquire();
    const [child] = startEach(getContext('process'), blockInEverything, [[q, lock, b, report]]);
    assert.equal(await report.get(), 'waiting');
    child!.kill();
    await child!.join();
    // The server ends all of a connection's waits at once when it sees the connection end, and a
    // Barrier whose party went breaks: once it is broken, the get and the acquire have ended too.
    // (No event tells this process when the server saw it: poll the fact, bounded.)
    const deadline = Date.now() + 10_000;
    while (!(await b.broken())) {
      assert.ok(Date.now() < deadline, 'the server did not notice the dead client');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await q.put('item');
    await lock.release();
    assert.equal(await q.get(false), 'item', 'the dead getter did not take it');
    assert.equal(await lock.acquire(false), true, 'the dead acquirer did not take it');
  });
});

describe('programs that use a manager', () => {
  it('a program that forgets shutdown() exits 0 by itself, and its server and socket go with it', { timeout }, async () => {
    const result = await runScript(fileURLToPath(new URL('forgets-shutdown.ts', scripts)));
    assert.equal(result.stderr, '');
    assert.deepEqual([result.code, result.signal], [0, null]);
    const facts = JSON.parse(result.stdout) as { address: string; serverPid: number; a: number; l: number[] };
    assert.deepEqual([facts.a, facts.l], [1, [2]]);
    const left = taggedProcesses(result.tag);
    assert.ok(await allGone([facts.serverPid, ...left], 10_000), `processes left: ${[facts.serverPid, ...left].filter(isRunning).join(', ')}`);
    assert.equal(existsSync(dirname(facts.address)), false, 'the server removed its socket when its parent ended');
  });

  it("multiproc/dummy's Manager() runs its server on a thread of this process", { timeout }, async () => {
    let d;
    {
      await using m = await DummyManager();
      const servers = activeChildren().filter((child) => child.name === 'SyncManager-server');
      assert.equal(servers.length, 1);
      assert.equal(servers[0]!.pid, process.pid, 'a thread child has this process\'s pid');
      d = await m.dict<string, number>();
      await d.set('x', 1);
      assert.equal(await d.get('x'), 1);
    }
    await rejectsGone(d.get('x'));
  });

  for (const backend of ['process', 'thread']) {
    it(`a program whose manager shut down (server on ${backend}) exits 0 though it keeps the proxies`, { timeout }, async () => {
      const result = await runScript(fileURLToPath(new URL('shutdown-keeps-proxies.ts', scripts)), [backend]);
      assert.equal(result.stderr, '');
      assert.deepEqual([result.code, result.signal], [0, null]);
      const facts = JSON.parse(result.stdout) as { address: string; after: string };
      assert.equal(facts.after, 'ERR_MP_MANAGER_GONE');
      assert.equal(existsSync(dirname(facts.address)), false);
      assert.ok(await allGone(taggedProcesses(result.tag), 10_000));
    });
  }

  it('a program SIGKILLed while its manager runs takes the (daemonic) server with it, socket included', { timeout }, async (t) => {
    const tag = randomUUID();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('killed-parent.ts', scripts))], { env: runEnv(tag), stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => {
      for (const pid of taggedProcesses(tag)) process.kill(pid, 'SIGKILL');
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    for await (const chunk of child.stdout) {
      out += chunk as string;
      if (out.includes('\n')) break;
    }
    const facts = JSON.parse(out) as { address: string; serverPid: number };
    assert.ok(isRunning(facts.serverPid));
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    assert.ok(await allGone([facts.serverPid], 10_000), 'the server ended with its parent');
    const dir = dirname(facts.address);
    const removed = !existsSync(dir);
    if (!removed) rmSync(dir, { recursive: true, force: true });
    assert.ok(removed, 'the server removed its socket as it ended');
  });
});
