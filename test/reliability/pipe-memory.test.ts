// A Pipe's shared memory is freed once no process holds either end of it, as a pipe's buffer is
// once every copy of its file descriptors is closed: a program that makes a Pipe per request, or a
// Pool whose workers are replaced, does not keep a segment (and a mapping) per Pipe until it exits.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { testFile } from '../helpers/test-file.ts';
import { Lock, Pipe } from '../../src/index.ts';
import { programSegments } from '../../src/resource-tracker.ts';
import { sendAndKeep } from '../fixtures/comm/pipes.ts';
import { poolFor } from '../fixtures/pool/harness.ts';
import { sleepMs, square } from '../fixtures/pool/targets.ts';

const timeout = 60_000;
const { start, endAll } = testFile();

/** This program's segments that were not there in `before`. */
const newSince = (before: Set<string>) => programSegments().filter((name) => !before.has(name));

describe('a Pipe frees its memory once no process holds it', () => {
  it('closing both ends unlinks both rings; while one end is open they stay', () => {
    const before = new Set(programSegments());
    const [a, b] = Pipe();
    assert.equal(newSince(before).length, 2, 'one segment per direction');
    a.close();
    assert.equal(newSince(before).length, 2, 'b still holds both rings');
    b.close();
    assert.deepEqual(newSince(before), []);
  });

  it('500 Pipes made, used and closed leave no segment behind', async () => {
    const before = new Set(programSegments());
    for (let i = 0; i < 500; i++) {
      const [reader, writer] = Pipe<number>(false);
      writer.send(i);
      assert.equal(await reader.recv(), i);
      writer.close();
      reader.close();
    }
    assert.deepEqual(newSince(before), []);
  });

  forEachBackend((ctx) => {
    it('an end sent to a child that never closes it is let go when the child exits', { timeout }, async (t) => {
      t.after(endAll);
      const before = new Set(programSegments());
      const [reader, writer] = Pipe<string>(false);
      const p = start(ctx, { target: sendAndKeep, args: [writer, 'hi'] });
      writer.close();
      assert.equal(await reader.recv(), 'hi');
      await p.join();
      assert.equal(p.exitCode, 0);
      assert.equal(newSince(before).length, 1, 'the reader still holds it');
      reader.close();
      assert.deepEqual(newSince(before), []);
    });

    it('a Pool that replaces its workers (maxtasksperchild) does not keep their pipes', { timeout }, async (t) => {
      // A pool keeps a word per worker in this process's arena (shared memory that lasts as long as
      // the program, as a Lock's): made first, so that only the pipes count below.
      void new Lock();
      const before = new Set(programSegments());
      const pool = poolFor(t, ctx, 1, { maxtasksperchild: 1 });
      for (let i = 0; i < 8; i++) assert.equal(await pool.apply(square, [i]), i * i);
      pool.close();
      await pool.join();
      // Eight workers had a pipe each (two segments): the pool handles a worker's exit once it has
      // read all the worker sent, and closes its own end then.
      assert.deepEqual(newSince(before), []);
    });

    it('nor does a Pool closed at once, whose workers are killed while they start', { timeout }, async () => {
      const before = new Set(programSegments());
      const pool = new ctx.Pool(2);
      pool.close();
      await pool.join();
      // Killed, they closed nothing: the pool closes their ends for them.
      assert.deepEqual(newSince(before), []);
    });

    it('nor does a terminated Pool whose workers were busy', { timeout }, async (t) => {
      const before = new Set(programSegments());
      const pool = poolFor(t, ctx, 2);
      assert.equal(await pool.apply(square, [4]), 16);
      const running = pool.applyAsync(sleepMs, [60_000]);
      running.get().catch(() => {});
      pool.terminate();
      await pool.join();
      assert.deepEqual(newSince(before), []);
    });
  });
});
