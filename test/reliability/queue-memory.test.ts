// A Queue's shared memory is freed once nothing holds it: no Queue object in any process or thread
// (the garbage collector took them, or their thread exited) and no copy in flight. A program that
// makes a Queue per request does not keep a segment (and a mapping) per Queue until it exits.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { forEachBackend } from '../helpers/backends.ts';
import { queueStateOf } from '../helpers/queue-state.ts';
import { testFile } from '../helpers/test-file.ts';
import { Queue, SimpleQueue, registerClass, type Context, type Process } from '../../src/index.ts';
import { programSegments } from '../../src/resource-tracker.ts';
import { roundTrip } from '../fixtures/comm/queues.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const timeout = 60_000;
const { start, endAll } = testFile();

/** The segment of a queue's first ring. */
const firstRingOf = (queue: Queue<unknown>) => queueStateOf(queue).firstRing.segment;

const exists = (segment: string) => existsSync(`/dev/shm${segment}`);

/** Ring segments of this program made since `before` (arenas, 256 KiB each, hold the queues' words and locks). */
const ringsSince = (before: Set<string>) => programSegments().filter((name) => !before.has(name) && statSync(`/dev/shm${name}`).size !== 256 * 1024);

/** Collects garbage until `done()` holds (finalizers run in a later turn of the event loop); false after 50 rounds. */
async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let round = 0; round < 50; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    if (done()) return true;
  }
  return false;
}

describe('a Queue frees its memory once nothing holds it', () => {
  it('Queues made, used and dropped leave no ring behind', async () => {
    const rings = useAndDropQueues(100);
    assert.ok(rings.every(exists));
    assert.ok(await collectUntil(() => !rings.some(exists)), `rings left: ${rings.filter(exists).length} of 100`);
  });

  it('a queue that grew into larger rings frees all of them', async () => {
    const before = new Set(readdirSync('/dev/shm').map((name) => `/${name}`));
    growAndDrop(40);
    assert.ok(ringsSince(before).length >= 2, 'it grew past its first ring');
    assert.ok(await collectUntil(() => ringsSince(before).length === 0), `rings left: ${ringsSince(before).join(', ')}`);
  });

  it('a queue still held stays usable while objects of it are collected', async () => {
    const queue = new Queue<number>();
    const ring = firstRingOf(queue);
    for (let i = 0; i < 20; i++) {
      // Copies of it, as another process would get them (sent, then rebuilt), and dropped.
      const [copy] = structuredCloneThroughQueue(queue);
      copy.putNowait(i);
    }
    await collectUntil(() => false); // every copy collected
    assert.ok(exists(ring));
    for (let i = 0; i < 20; i++) assert.equal(await queue.get(), i);
  });

  it('a Queue in a value that cannot be rebuilt lets go of that copy: once dropped here, its ring is freed', async () => {
    const [ring, failure] = sendQueueBesideAFailure();
    assert.match(String(failure), /this class will not rebuild/);
    assert.ok(await collectUntil(() => !exists(ring)), 'the ring is gone: the copy that never arrived holds it no more');
  });

  it('a Queue rebuilt before a failure in the same value (a Map, whose entries are rebuilt aside) is not let go of twice: still held, it stays usable', async () => {
    const queue = new Queue<number>();
    const ring = firstRingOf(queue);
    assert.match(String(failToRebuildBeside(queue)), /this class will not rebuild/);
    await collectUntil(() => false); // the copy that was rebuilt, then dropped, is collected
    assert.ok(exists(ring), 'the queue this test holds keeps its ring');
    queue.putNowait(7);
    assert.equal(queue.getNowait(), 7);
  });

  forEachBackend((ctx) => {
    it('a child that got the queue lets go of it when it exits', { timeout }, async (t) => {
      t.after(endAll);
      const [p, ring] = startWithQueue(ctx);
      await p.join();
      assert.equal(p.exitCode, 0, 'the child found the queue and used it');
      assert.ok(await collectUntil(() => !exists(ring)), 'the ring is gone once the child exited and the parent dropped it');
    });
  });
});

// The queues are made in functions of their own: a variable of a test's async body could stay in
// its suspended frame (and keep the last queue alive) while the test waits for the collector.
function useAndDropQueues(count: number): string[] {
  const rings: string[] = [];
  for (let i = 0; i < count; i++) {
    const queue = i % 2 ? new Queue<number>() : new SimpleQueue<number>();
    queue.putNowait(i);
    assert.equal(queue.getNowait(), i);
    rings.push(firstRingOf(queue));
  }
  return rings;
}

/** A child that puts an item into a new queue and gets it back; the parent keeps no Queue object (nor does its Process). */
function startWithQueue(ctx: Context): [Process, string] {
  const queue = new Queue<string>();
  return [start(ctx, { target: roundTrip, args: [queue] }) as unknown as Process, firstRingOf(queue)];
}

/** Puts `count` items of 16 KiB (the queue grows past its first ring of 64 KiB), gets them all. */
function growAndDrop(count: number): void {
  const queue = new Queue<Buffer>();
  for (let i = 0; i < count; i++) queue.putNowait(Buffer.alloc(16 * 1024, i));
  for (let i = 0; i < count; i++) assert.equal(queue.getNowait()[0], i);
}

/** A Queue sent through another queue and rebuilt here, as a process that receives it rebuilds it. */
function structuredCloneThroughQueue<T>(queue: Queue<T>): [Queue<T>] {
  const carrier = new SimpleQueue<Queue<T>>();
  carrier.putNowait(queue);
  return [carrier.getNowait()];
}

/** An instance that travels, and fails to be rebuilt where it arrives. */
export class Unrebuildable {}
registerClass(Unrebuildable, {
  reduce: () => ({}),
  rebuild: () => {
    throw new Error('this class will not rebuild');
  },
});

/** Sends [an Unrebuildable, a new Queue] through another queue; the receiving get fails. Returns the Queue's ring and the error. */
function sendQueueBesideAFailure(): [string, unknown] {
  const carrier = new SimpleQueue<unknown>();
  const queue = new Queue<number>();
  carrier.putNowait([new Unrebuildable(), queue]);
  try {
    carrier.getNowait();
  } catch (error) {
    return [firstRingOf(queue), error];
  }
  throw new Error('the value was rebuilt');
}

/** Sends a Map of `queue` then an Unrebuildable through another queue; returns the receiving get's error. */
function failToRebuildBeside(queue: Queue<number>): unknown {
  const carrier = new SimpleQueue<unknown>();
  carrier.putNowait(new Map<string, unknown>([['queue', queue], ['bad', new Unrebuildable()]]));
  try {
    carrier.getNowait();
  } catch (error) {
    return error;
  }
  throw new Error('the value was rebuilt');
}
