// The loop every pool worker runs (in a child process or a worker thread): run the initializer,
// then take tasks from the pool's pipe one at a time, call the function on each argument list,
// and send back the results or the error. An 'abort' for the running task fires the AbortSignal
// that currentTask().signal gives the task.

import { isMainThread } from 'node:worker_threads';
import type { Connection } from '../connection/connection.ts';
import { importReference, type ModuleRef } from '../internal/function-ref.ts';
import { describeError } from '../internal/remote-error.ts';
import type { FromWorker, TaskMessage, ToWorker } from './protocol.ts';

export interface TaskContext {
  /** Aborted when the caller's timeout passes or its AbortSignal fires: stop early, or be killed after a grace period. */
  readonly signal: AbortSignal;
  /** The task's id in its pool. */
  readonly id: number;
}

let current: TaskContext | undefined;

/** The running pool task's context (its AbortSignal), inside a pool worker; undefined elsewhere. */
export function currentTask(): TaskContext | undefined {
  return current;
}

const functions = new Map<string, Function>();

async function resolve(ref: ModuleRef): Promise<Function> {
  const key = `${ref.module}#${ref.name}`;
  let fn = functions.get(key);
  if (!fn) {
    const value = await importReference(ref);
    if (typeof value !== 'function') throw new TypeError(`${ref.module} exports '${ref.name}' as ${typeof value}, not a function; it cannot be a pool task.`);
    fn = value as Function;
    functions.set(key, fn);
  }
  return fn;
}

/** A pool worker's target: exported, so that it crosses by reference like any target. */
export async function poolWorker(conn: Connection<ToWorker | FromWorker>, initializer: ModuleRef | null, initargs: unknown[], reportMemory = false): Promise<void> {
  // Reading the RSS costs a read of /proc per task: only for a pool with maxMemoryPerChild.
  rss = reportMemory ? () => process.memoryUsage.rss() : () => 0;
  // Ctrl-C reaches the whole process group. The pool's own process decides what it means (it ends,
  // and its daemonic workers with it); a worker that died of it first would fail its task with
  // WorkerLostError, racing the program's own end (a stack trace, exit code 1). Python's recipe
  // for Pool workers is the same: ignore SIGINT. (A worker thread gets no signals of its own.)
  if (isMainThread) process.on('SIGINT', ignoreSigint);
  if (initializer) await (await resolve(initializer))(...initargs);
  conn.send({ type: 'ready' });
  let running: { id: number; controller: AbortController } | undefined;
  let work: Promise<void> = Promise.resolve();
  for (;;) {
    let message: ToWorker;
    try {
      message = (await conn.recv()) as ToWorker;
    } catch {
      return; // the pool is gone: nothing more to do
    }
    if (message.type === 'stop') break;
    if (message.type === 'abort') {
      if (running?.id === message.id) running.controller.abort(new Error(message.reason));
      continue;
    }
    const controller = new AbortController();
    running = { id: message.id, controller };
    work = work.then(() => runTask(conn, message as TaskMessage, controller.signal)).finally(() => {
      if (running?.controller === controller) running = undefined;
    });
  }
  await work;
  conn.close();
  await conn.flushed();
}

function ignoreSigint(): void {}

let rss = (): number => 0;

async function runTask(conn: Connection<ToWorker | FromWorker>, task: TaskMessage, signal: AbortSignal): Promise<void> {
  current = { signal, id: task.id };
  let reply: FromWorker;
  try {
    const fn = await resolve(task.fn);
    const results: unknown[] = new Array(task.items.length);
    for (let i = 0; i < task.items.length; i++) {
      const result: unknown = task.star ? fn(...(task.items[i] as unknown[])) : fn(task.items[i]);
      // Await only what is awaitable: a tick per item would cost more than a small function.
      results[i] = result instanceof Promise ? await result : result;
    }
    reply = { type: 'result', id: task.id, ok: true, results, rss: rss() };
  } catch (error) {
    reply = { type: 'result', id: task.id, ok: false, error: describeError(error), rss: rss() };
  } finally {
    current = undefined;
  }
  try {
    conn.send(reply);
  } catch (error) {
    // The result cannot cross (a function in it, a class instance): say so instead of hanging.
    conn.send({ type: 'result', id: task.id, ok: false, error: describeError(error), rss: rss() });
  }
}
