// Never lose, never hang: what a producer put before it exited is all delivered, even when the
// parent joins the producer before it gets anything (CPython deadlocks there: its feeder thread
// waits for the pipe to drain before the child can exit); cancelJoinThread() is the one way to
// give that up; and a consumer SIGKILLed in the middle of get() does not block the others.

import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import type { Message } from '../helpers/channel.ts';
import { queueStateOf } from '../helpers/queue-state.ts';
import { testFile } from '../helpers/test-file.ts';
import { killRuns, runScript, taggedProcesses } from '../helpers/spawn-script.ts';
import { allGone } from '../helpers/processes.ts';
import { Empty, type Lock, type Process, type Queue } from '../../src/index.ts';
import { getAndHang, putBuffers, putPendingThenEnd, putPendingThenMaybeCancel, putRange, sendMiBsThenExit } from '../fixtures/comm/queues.ts';
import { holdLock } from '../fixtures/sync/locks.ts';

const timeout = 120_000;
const file = testFile();
const { start, endAll } = file;

/** The file.channel event `name` with `label`; rejects at once if `p` fails (exits non-zero) before it reports. */
function reportOf(p: Process, name: string, label: string): Promise<Message> {
  const failed = p.join().then(() => (p.exitCode === 0 ? new Promise<never>(() => {}) : Promise.reject(new Error(`${p.name} exited with ${p.exitCode} before it reported '${name}' (its error is on stderr)`))));
  return Promise.race([file.channel.event(name, (m) => m.label === label), failed]);
}

let labels = 0;
const label = (what: string) => `${what}-${++labels}`;

/**
 * The lock that a queue's producers take turns with. Holding it from a test is a fault injected
 * through the queue's internals: a real producer holds it only for the copy of one item, too
 * briefly for a test to keep it held on purpose.
 */
function writeLockOf(queue: Queue<unknown>): Lock {
  return queueStateOf(queue).writeLock;
}

/** Collects this process's warnings while the test runs. */
function captureWarnings(t: { after: (fn: () => void) => void }): (Error & { code?: string })[] {
  const warnings: (Error & { code?: string })[] = [];
  const listener = (warning: Error & { code?: string }) => warnings.push(warning);
  process.on('warning', listener);
  t.after(() => process.off('warning', listener));
  return warnings;
}

/** Gets `count` items and checks they are first..first+count-1 in order. */
async function getInOrder(queue: Queue<number>, first: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const item = await queue.get();
    if (item !== first + i) assert.fail(`item ${i} was ${item}, expected ${first + i}`);
  }
}

forEachBackend((ctx, backend) => {
  const child = backend === 'process' ? 'child process' : 'thread';

  describe('no loss at exit', () => {
    it(`a ${child} puts 10,000 items and exits; joined first, it has delivered all of them, in order`, { timeout }, async (t) => {
      t.after(endAll);
      const n = 10_000;
      const q = new ctx.Queue<number>();
      const p = start(ctx, { target: putRange, args: [q, 0, n] });
      await p.join(); // before any get(): CPython deadlocks here
      assert.equal(p.exitCode, 0);
      assert.equal(q.qsize(), n);
      await getInOrder(q, 0, n);
      assert.throws(() => q.getNowait(), Empty);
    });

    it(`a ${child} puts 200 items of 100 KB (20 MB, many times the first ring) and exits; joined first, all arrive intact`, { timeout }, async (t) => {
      t.after(endAll);
      const count = 200;
      const size = 100_000;
      const q = new ctx.Queue<Buffer>();
      const p = start(ctx, { target: putBuffers, args: [q, count, size] });
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.equal(q.qsize(), count);
      for (let i = 0; i < count; i++) {
        const item = await q.get();
        assert.equal(item.length, size);
        if (item[0] !== i % 256 || item[size - 1] !== i % 256 || !item.equals(Buffer.alloc(size, i % 256))) assert.fail(`item ${i} changed on the way`);
      }
      assert.equal(q.empty(), true);
    });

    it(`two ${child}s put 10,000 items each and exit; joined first, all 20,000 arrive, each producer's in order`, { timeout }, async (t) => {
      t.after(endAll);
      const n = 10_000;
      const q = new ctx.Queue<number>();
      const producers = [0, 1].map((id) => start(ctx, { target: putRange, args: [q, id * 1_000_000, n] }));
      await Promise.all(producers.map((p) => p.join()));
      assert.deepEqual(producers.map((p) => p.exitCode), [0, 0]);
      assert.equal(q.qsize(), 2 * n);
      const next = [0, 1_000_000];
      for (let i = 0; i < 2 * n; i++) {
        const item = await q.get();
        const producer = Math.floor(item / 1_000_000);
        if (item !== next[producer]) assert.fail(`producer ${producer}'s item ${item} came when ${next[producer]} was due`);
        next[producer] = item + 1;
      }
      assert.deepEqual(next, [n, 1_000_000 + n]);
    });

    it(`while the write lock is held elsewhere, a ${child} that put items waits to flush them before it exits`, { timeout }, async (t) => {
      t.after(endAll);
      const q = new ctx.Queue<number>();
      const writeLock = writeLockOf(q);
      assert.equal(writeLock.acquire(false), true);
      t.after(() => writeLock.locked() && writeLock.release());
      const name = label('pending');
      const p = start(ctx, { target: putPendingThenMaybeCancel, args: [file.channel.path, name, q, 100, false] });
      const reported = await reportOf(p, 'put-pending', name);
      assert.equal(reported.qsize, 100, 'the child counts the items it has yet to flush');
      await p.join(300);
      assert.equal(p.isAlive(), true, 'the child exited with its items still unflushed');
      assert.equal(q.qsize(), 0, 'nothing is in shared memory yet');
      writeLock.release();
      await p.join();
      assert.equal(p.exitCode, 0);
      await getInOrder(q, 0, 100);
    });

    for (const how of ['exit', 'throw'] as const) {
      const ending = how === 'exit' ? 'calls process.exit(0)' : 'throws an uncaught error from a timer';
      it(`while the write lock is held elsewhere, a ${child} that put items and then ${ending} flushes them as it exits`, { timeout }, async (t) => {
        t.after(endAll);
        const q = new ctx.Queue<number>();
        const writeLock = writeLockOf(q);
        assert.equal(writeLock.acquire(false), true);
        t.after(() => writeLock.locked() && writeLock.release());
        const name = label(`pending-${how}`);
        const p = start(ctx, { target: putPendingThenEnd, args: [file.channel.path, name, q, 100, how] });
        assert.equal((await reportOf(p, 'put-pending', name)).qsize, 100);
        await p.join(300);
        assert.equal(p.isAlive(), true, 'the child exited with its items still unflushed');
        writeLock.release();
        await p.join();
        assert.equal(p.exitCode, how === 'exit' ? 0 : 1);
        assert.equal(q.qsize(), 100);
        await getInOrder(q, 0, 100);
      });
    }

    it(`a ${child} that sends 5 MiB on a Pipe (five times its ring) and calls process.exit(0) delivers all of it`, { timeout }, async (t) => {
      t.after(endAll);
      const [reader, writer] = ctx.Pipe<Buffer>(false);
      t.after(() => reader.close());
      const p = start(ctx, { target: sendMiBsThenExit, args: [writer, 5] });
      writer.close();
      for (let i = 0; i < 5; i++) {
        const message = await reader.recv({ timeout: 30_000 });
        if (!message.equals(Buffer.alloc(1 << 20, i))) assert.fail(`message ${i} (${message.length} bytes) changed on the way`);
      }
      await assert.rejects(reader.recv({ timeout: 30_000 }), { code: 'ERR_MP_EOF' });
      await p.join();
      assert.equal(p.exitCode, 0);
    });

    it(`a ${child} that called cancelJoinThread() exits without waiting for the held write lock; its unflushed items are lost, as documented`, { timeout }, async (t) => {
      t.after(endAll);
      const q = new ctx.Queue<number>();
      const writeLock = writeLockOf(q);
      assert.equal(writeLock.acquire(false), true);
      t.after(() => writeLock.locked() && writeLock.release());
      const name = label('cancelled');
      const p = start(ctx, { target: putPendingThenMaybeCancel, args: [file.channel.path, name, q, 100, true] });
      await p.join(); // while we still hold the lock
      assert.equal(p.exitCode, 0);
      assert.equal((await reportOf(p, 'put-pending', name)).qsize, 100);
      writeLock.release();
      // What was delivered: nothing. The 100 items never left the child, which exited holding them.
      assert.equal(q.qsize(), 0);
      assert.throws(() => q.getNowait(), Empty);
      q.putNowait(7);
      assert.equal(await q.get(), 7, 'the queue works on');
    });
  });

  describe('no hang', () => {
    /** A queue whose write lock a child holds (see holdLock: until the test releases `name`). */
    async function writeLockHeldByChild(name: string): Promise<{ q: Queue<number>; writeLock: Lock; holder: Process }> {
      const q = new ctx.Queue<number>();
      const writeLock = writeLockOf(q);
      const holder = start(ctx, { target: holdLock, args: [file.channel.path, writeLock, name] });
      await file.channel.event('holding', (m) => m.label === name);
      return { q, writeLock, holder };
    }

    // A loop of `await put()` waits only for microtasks, so the flusher (a wait for the write lock)
    // never ran while another process held that lock: the backlog took every item. Found by a
    // randomized test (test/reliability/chaos.test.ts), where the holder had died holding it and
    // the producer copied items into its backlog until it ran out of memory (8 GiB).
    it(`a loop of await put() while a ${child} holds the queue's write lock waits once this process's backlog is large (65,536 items), until the lock is let go`, { timeout }, async (t) => {
      t.after(endAll);
      const name = label('slow-writer');
      const { q } = await writeLockHeldByChild(name);
      const n = 70_000;
      let put = 0;
      const loop = (async () => {
        for (; put < n; put++) await q.put(put);
      })();
      await new Promise(setImmediate); // the loop ran as far as it could without waiting
      assert.equal(put, 65_535, 'the put() that made the backlog 65,536 items long waits');
      file.channel.broadcast({ release: name });
      await loop;
      await getInOrder(q, 0, n);
    });

    it(`a loop of putNowait() after a ${child} died holding the queue's write lock recovers the lock itself, without waiting`, { timeout }, async (t) => {
      t.after(endAll);
      const warnings = captureWarnings(t);
      const { q, writeLock, holder } = await writeLockHeldByChild(label('dead-writer'));
      holder.kill();
      await holder.join();
      for (let i = 0; i < 5000; i++) q.putNowait(i);
      assert.equal(writeLock.locked(), false, 'the dead holder still has the write lock: every item is still in this process');
      await new Promise(setImmediate); // process.emitWarning() emits on the next tick
      assert.deepEqual(warnings.map((w) => w.code), ['MP_LOCK_HOLDER_DIED']);
      assert.match(warnings[0]?.message ?? '', /^Queue\.put\(\): the lock's holder/);
      await getInOrder(q, 0, 5000);
    });

    const skip = backend === 'thread' ? "a worker thread cannot be SIGKILLed apart from its process, and the read lock's holder pid stays alive: recovery is for dead processes" : false;
    it('a consumer SIGKILLed while it waits in get() (holding the read lock) does not block the other consumers', { timeout, skip }, async (t) => {
      t.after(endAll);
      const warnings = captureWarnings(t);
      const q = new ctx.Queue<string>();
      const name = label('getting');
      const p = start(ctx, { target: getAndHang, args: [file.channel.path, name, q] });
      const { pid } = await reportOf(p, 'getting', name);
      p.kill();
      await p.join();
      q.putNowait('for the next consumer');
      q.putNowait('and the one after');
      assert.equal(await q.get(), 'for the next consumer');
      assert.equal(await q.get(), 'and the one after');
      await new Promise(setImmediate); // process.emitWarning() emits on the next tick
      const died = warnings.filter((w) => w.code === 'MP_LOCK_HOLDER_DIED');
      assert.equal(died.length, 1, `warnings: ${warnings.map((w) => w.message).join('; ')}`);
      assert.equal(died[0]?.name, 'MultiprocWarning');
      assert.match(died[0]?.message ?? '', new RegExp(`holder, pid ${pid}, died while holding it`));
    });
  });
});

// The flush at exit waits for readers that will read; never for one that cannot (the exit ends it,
// or it is this very process), and never for the write lock this thread holds itself.
describe('no hang at process.exit() with writes pending', () => {
  const script = fileURLToPath(new URL('../fixtures/scripts/exit-with-pending.ts', import.meta.url));
  for (const when of ['started', 'starting'] as const) {
    it(`2 MB for a child that reads them slowly, sent once it has ${when}: all of it reaches the child (its reading end and its memory outlive the parent's exit)`, { timeout: 60_000 }, async () => {
      const run = await runScript(script, ['to-child', when]);
      assert.equal(run.stderr, '');
      assert.deepEqual([run.code, run.stdout], [0, 'the child got 20 of 20\n']);
    });
  }

  it('nothing pending, a child started right before process.exit(): it gets the Queue, Lock and Value in its args (the exit unlinks their memory only once the child has attached it)', { timeout: 60_000 }, async () => {
    const run = await runScript(script, ['just-started']);
    assert.equal(run.stderr, '');
    assert.deepEqual([run.code, run.stdout], [0, 'the child put 42\n']);
  });

  const cases: [string, string[]][] = [
    ["a Pipe whose only reader is the exiting process's own end", ['own-reader']],
    ['a process Pool whose busy worker has 16 MiB of tasks queued to it (daemonic: terminated at exit)', ['busy-pool', 'process']],
    ['a thread Pool whose busy worker has 16 MiB of tasks queued to it (its thread ends with the process)', ['busy-pool', 'thread']],
    ["a Queue whose items wait behind the write lock that this very thread holds", ['held-lock']],
  ];
  after(killRuns);
  for (const [what, args] of cases) {
    it(`${what}: exits at once, code 0`, { timeout: 60_000 }, async () => {
      const run = await runScript(script, args);
      assert.equal(run.stderr, '', 'no write gave up after waiting 10 s for its reader');
      assert.deepEqual([run.code, run.signal], [0, null]);
      assert.ok(await allGone(taggedProcesses(run.tag), 10_000), 'no worker is left'); // a terminated one may take a moment
    });
  }
});
