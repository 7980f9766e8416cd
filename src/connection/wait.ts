// wait(objects, timeout) (Python's multiprocessing.connection.wait): resolves with the objects
// that are ready: Connections with a message to read (or at end of stream), Queues with an item,
// Processes that have exited.

import { describe, invalidArgument } from '../errors.ts';
import { timerFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { Process } from '../process.ts';
import { Queue, kWaitItem } from '../queues.ts';
import { Connection } from './connection.ts';

export type Waitable = Connection<unknown> | Queue<unknown> | Process;

/**
 * The objects that are ready now, or else the first to become ready within `timeout` ms ([] if none).
 * @example
 * for (const conn of await wait([a, b], 1000)) console.log(await conn.recv());
 */
export async function wait<W extends Waitable>(objects: Iterable<W>, timeout?: number | WaitOptions): Promise<W[]> {
  if (objects == null || typeof (objects as Partial<Iterable<W>>)[Symbol.iterator] !== 'function' || typeof objects === 'string') {
    throw invalidArgument(`wait(): expected a list (an iterable) of Connections, Queues or Processes, got ${describe(objects)}.`);
  }
  const list = [...objects];
  const options = waitOptions('wait()', timeout);
  for (const object of list) {
    if (!(object instanceof Connection || object instanceof Queue || object instanceof Process)) {
      throw invalidArgument(`wait(): expected Connections, Queues or Processes, got ${describe(object)}.`);
    }
  }
  options.signal?.throwIfAborted();
  const now = await readyOnes(list);
  if (now.length > 0 || options.timeout === 0 || list.length === 0) return now;
  // Aborted already, or while readyOnes() polled: the 'abort' event below would never come.
  options.signal?.throwIfAborted();
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ...list.map((object) => becomesReady(object, stop.signal)),
      new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true })),
      new Promise<void>((resolve) => (timer = timerFor(options.timeout, resolve))),
    ]);
    options.signal?.throwIfAborted();
    return await readyOnes(list);
  } finally {
    clearTimeout(timer);
    stop.abort();
    options.signal?.removeEventListener('abort', onAbort);
  }
}

async function readyOnes<W extends Waitable>(list: W[]): Promise<W[]> {
  const flags = await Promise.all(list.map(async (object) => {
    if (object instanceof Process) return object.exitCode !== null;
    if (object instanceof Queue) return !object.empty();
    return endOrMessage(object, 0);
  }));
  return list.filter((_, i) => flags[i]);
}

// A Connection is ready when recv() would not wait: a message, or the end of the stream (poll()
// says true for both, as Python's does).
async function endOrMessage(connection: Connection<unknown>, timeout: number | undefined, signal?: AbortSignal): Promise<boolean> {
  try {
    return await connection.poll({ timeout, signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    return true; // poll() on a closed end throws: recv() would not wait either
  }
}

async function becomesReady(object: Waitable, signal: AbortSignal): Promise<void> {
  try {
    if (object instanceof Process) await object.join({ signal });
    else if (object instanceof Queue) await object[kWaitItem](signal);
    else await endOrMessage(object, undefined, signal);
  } catch (error) {
    // A Process that cannot be joined (never started, or not a child of this one) fails the wait.
    if (!signal.aborted) throw error;
    await new Promise(() => {}); // aborted: this watcher never wins the race
  }
}
