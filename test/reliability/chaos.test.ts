// Faults injected at random moments, on both backends: a pool's tasks that throw, spin, time out,
// are aborted or end their worker, mixed at random, then close() or terminate(); producers of a
// Queue, the writer of a Pipe and the child at the other end of an echo ended wherever they are;
// children that use a Lock and a Queue ended mid-use; a manager that goes while children call it.
// Whatever the moment, every call settles, nothing is lost but what the ended side had not yet
// written, and what is left stays usable. The moments come from a seeded generator: a failure names
// its seed, and MULTIPROC_CHAOS_SEED=<seed> replays the same choices (the timing still varies).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { testFile } from '../helpers/test-file.ts';
import { between, pick, seeded } from '../helpers/random.ts';
import { descendants, Pipe, ProcessError, activeChildren, type Process } from '../../src/index.ts';
import { lockWordsOf } from '../helpers/lock-words.ts';
import { Manager } from '../../src/managers/index.ts';
import { deathFor, poolFor } from '../fixtures/pool/harness.ts';
import { callManagerForEver, chaosTask, echoForEver, lockAndQueueForEver, putForEver, putThenEnd, sendForEver, type Mode } from '../fixtures/chaos/targets.ts';

const timeout = 120_000;
const { start, endAll } = testFile();
const baseSeed = Number(process.env['MULTIPROC_CHAOS_SEED'] ?? 20261130);
const replay = (seed: number) => `seed ${seed} (MULTIPROC_CHAOS_SEED=${seed} replays it)`;
let seeds = 0;
/** A fresh generator per test, and the words that name its seed in a failure. */
function generator(): { random: () => number; seed: number; about: string } {
  const seed = baseSeed + seeds++;
  return { random: seeded(seed), seed, about: replay(seed) };
}

/** The error code of a rejection, or 'fulfilled'. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'fulfilled';
  } catch (error) {
    return (error as { code?: string }).code ?? (error as Error).name;
  }
}

forEachBackend((ctx, backend) => {
  const death: Mode = deathFor(backend);

  describe('a Pool under random failures', () => {
    it('every call settles as its task allows, stats() adds them up, and close() or terminate() ends every worker', { timeout }, async (t) => {
      const { random, about } = generator();
      const before = new Set(activeChildren());
      const pool = poolFor(t, ctx, 3, { maxtasksperchild: 10, retries: 1 });
      // A worker's end costs a new worker (a second one with the retry), hundreds of ms in a test
      // run under tsx: two kinds of end on the process backend, one (process.exit()) on threads.
      const modes: Mode[] = ['ok', 'ok', 'ok', 'ok', 'throw', 'slow', 'spin', 'abortable', ...new Set<Mode>([death, 'exit'])];
      const calls = Array.from({ length: 50 }, (_, i) => {
        const mode = pick(random, modes);
        const options: { timeout?: number; signal?: AbortSignal } = {};
        if (random() < 0.15) options.timeout = 5 + random() * 40;
        if (random() < 0.15) {
          const controller = new AbortController();
          setTimeout(() => controller.abort(), random() * 100).unref();
          options.signal = controller.signal;
        }
        const settled = pool.applyAsync(chaosTask, [i, mode], options).get().then(
          (value) => ({ value, error: undefined }),
          (error: Error) => ({ value: undefined, error }),
        );
        return { i, mode, options, settled };
      });
      const chunks = 10;
      const mapped = pool.map(chaosTask, Array.from({ length: 50 }, (_, i) => i), 50 / chunks);
      assert.deepEqual(await mapped, Array.from({ length: 50 }, (_, i) => i * 2), about);

      let values = 0;
      let errors = 0;
      for (const call of calls) {
        const { value, error } = await call.settled;
        const what = `task ${call.i} (${call.mode}, ${JSON.stringify({ timeout: call.options.timeout, signal: call.options.signal !== undefined })}), ${about}`;
        if (error === undefined) {
          values++;
          assert.ok(['ok', 'slow', 'spin', 'abortable'].includes(call.mode), `${what}: fulfilled with ${value}`);
          assert.equal(value, call.i * 2, what);
          continue;
        }
        errors++;
        const allowed = new Set<string>();
        if (call.options.timeout !== undefined) allowed.add('TimeoutError');
        if (call.options.signal !== undefined) allowed.add('AbortError');
        if (call.mode === 'throw') allowed.add('RangeError');
        if (call.mode === 'kill' || call.mode === 'exit') allowed.add('WorkerLostError');
        assert.ok(allowed.has(error.name), `${what}: rejected with ${error.name}: ${error.message}`);
        if (error.name === 'RangeError') assert.equal(error.message, `item ${call.i}`, what);
      }
      const { tasks } = pool.stats();
      assert.deepEqual(tasks, { queued: 0, running: 0, completed: values + chunks, failed: errors }, about);

      if (random() < 0.5) pool.close();
      else pool.terminate();
      await pool.join();
      assert.deepEqual(activeChildren().filter((child) => !before.has(child)), [], `every worker ended, ${about}`);
    });
  });

  describe('a side ended at a random moment', () => {
    it("a Queue's producers ended mid-put lose only the items they had not yet put; a later producer's items all arrive", { timeout }, async (t) => {
      t.after(endAll);
      const { random, about } = generator();
      const queue = new ctx.Queue<{ tag: string; i: number } | null>();
      const tags = ['p0', 'p1', 'p2'];
      const producers = new Map(tags.map((tag) => [tag, start(ctx, { target: putForEver, args: [queue, tag] })]));
      // Each producer ends once this many of its items came out: a moment the test sees, while the
      // producer is somewhere ahead in its loop.
      const endAfter = new Map(tags.map((tag) => [tag, between(random, 1, 400)]));
      const next = new Map(tags.map((tag) => [tag, 0]));
      const take = (item: { tag: string; i: number } | null) => {
        assert.ok(item !== null, about);
        assert.equal(item.i, next.get(item.tag), `${item.tag}'s items come in order, none lost or twice, ${about}`);
        next.set(item.tag, item.i + 1);
        return item.tag;
      };
      while (producers.size > 0) {
        const tag = take(await queue.get());
        if (producers.has(tag) && next.get(tag)! >= endAfter.get(tag)!) {
          const producer = producers.get(tag)!;
          producer.kill();
          await producer.join();
          producers.delete(tag);
        }
      }
      const finisher = start(ctx, { target: putThenEnd, args: [queue, 'final', 100] });
      next.set('final', 0);
      for (let item = await queue.get(); item !== null; item = await queue.get()) take(item);
      assert.equal(next.get('final'), 100, `the finisher's 100 items, ${about}`);
      await finisher.join();
      assert.equal(finisher.exitCode, 0);
    });

    it('the writer of a Pipe ended mid-send: the reader gets what was sent, in order, then ERR_MP_EOF', { timeout }, async (t) => {
      t.after(endAll);
      const { random, about } = generator();
      for (let run = 0; run < 3; run++) {
        const [reader, writer] = Pipe<{ i: number; pad: string }>(false);
        const child = start(ctx, { target: sendForEver, args: [writer] });
        writer.close();
        const endAt = between(random, 1, 2000);
        let next = 0;
        for (; next < endAt; next++) assert.equal((await reader.recv()).i, next, about);
        child.kill();
        await child.join();
        let end: unknown;
        for (;;) {
          try {
            assert.equal((await reader.recv()).i, next++, `in order after the end, ${about}`);
          } catch (error) {
            end = error;
            break;
          }
        }
        assert.equal((end as ProcessError).code, 'ERR_MP_EOF', `${String(end)}, ${about}`);
        reader.close();
      }
    });

    it('the other end of an echo ended mid-exchange: recv() gets the echo or ERR_MP_EOF, never waits for ever', { timeout }, async (t) => {
      t.after(endAll);
      const { random, about } = generator();
      for (let run = 0; run < 3; run++) {
        const [mine, theirs] = Pipe<unknown>();
        const child = start(ctx, { target: echoForEver, args: [theirs] });
        theirs.close();
        const endAt = between(random, 0, 300);
        for (let n = 0; n < endAt; n++) {
          mine.send({ n, big: n % 50 === 0 ? Buffer.alloc(200_000) : null });
          assert.equal(((await mine.recv()) as { n: number }).n, n, about);
        }
        mine.send({ n: endAt });
        child.kill();
        await child.join();
        const last = await codeOf(mine.recv());
        assert.ok(last === 'fulfilled' || last === 'ERR_MP_EOF', `${last}, ${about}`);
        assert.equal(await codeOf(mine.recv()), 'ERR_MP_EOF', about);
        mine.close();
      }
    });

    it('children ended while they use a Lock and a Queue leave both usable: the lock is recovered, items still pass', { timeout }, async (t) => {
      t.after(endAll);
      const { random, about } = generator();
      const warned: string[] = [];
      const onWarning = (warning: Error & { code?: string }) => warned.push(warning.code ?? warning.name);
      process.on('warning', onWarning);
      t.after(() => process.off('warning', onWarning));
      for (let run = 0; run < 8; run++) {
        const queue = new ctx.Queue<unknown>();
        const lock = new ctx.Lock();
        const child: Process = start(ctx, { target: lockAndQueueForEver, args: [queue, lock] });
        for (let n = between(random, 1, 60); n > 0; n--) await queue.get();
        child.kill();
        await child.join();
        const words = [...lockWordsOf(lock)];
        const acquired = await lock.acquire(true, 10_000);
        assert.equal(acquired, true, `the lock, run ${run}: words ${words.join(',')} before, ${lockWordsOf(lock).join(',')} now; its child ${child.pid} (ident ${child.ident}), ${about}`);
        lock.release();
        await queue.put('after');
        let item: unknown;
        do item = await queue.get({ timeout: 10_000 });
        while (item !== 'after');
      }
      assert.ok(warned.every((code) => code === 'MP_LOCK_HOLDER_DIED'), `only warnings of recovered locks: ${warned.join(', ')}, ${about}`);
    });
  });

  describe('a manager that goes while children call it', () => {
    it('every call rejects with ERR_MP_MANAGER_GONE, here and in the children, which end; nothing waits for ever', { timeout }, async (t) => {
      t.after(endAll);
      const { random, about } = generator();
      const before = new Set(descendants(process.pid));
      const manager = await Manager({ context: backend });
      t.after(() => manager.shutdown());
      const server = descendants(process.pid).find((pid) => !before.has(pid));
      const dict = await manager.dict<string, number>();
      const list = await manager.list<number>();
      const children: Process[] = ['c0', 'c1'].map((tag) => start(ctx, { target: callManagerForEver, args: [dict, list, tag] }));
      const goAfter = between(random, 20, 300);
      while ((await list.length()) < goAfter);
      const mine = codeOf(
        (async () => {
          for (;;) {
            await dict.get('c01');
            await list.length();
          }
        })(),
      );
      if (backend === 'process' && server !== undefined && random() < 0.5) process.kill(server, 'SIGKILL');
      else await manager.shutdown();
      assert.equal(await mine, 'ERR_MP_MANAGER_GONE', about);
      // A call after the manager went tries to reach it again, and says which call could not.
      await assert.rejects(dict.get('c01'), { code: 'ERR_MP_MANAGER_GONE', message: /^dict\.get\(\): cannot reach the proxy's manager/ }, about);
      for (const child of children) await child.join();
      assert.deepEqual(children.map((child) => child.exitCode), [2, 2], `the children end on their calls' ERR_MP_MANAGER_GONE, ${about}`);
    });
  });
});
