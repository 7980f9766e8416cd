// The loop every pool worker runs (in a child process or a worker thread): run the initializer,
// then take tasks from the pool's pipe one at a time, call the function on each argument list,
// and send back the results or the error. An 'abort' for the running task fires the AbortSignal
// that currentTask().signal gives the task.

import { isMainThread } from 'node:worker_threads';
import type { Connection } from '../connection/connection.ts';
import { importReference, type ModuleRef } from '../internal/function-ref.ts';
import { describeError } from '../internal/remote-error.ts';
import { runtime } from '../internal/runtime.ts';
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
    const value = await importWhileBootstrapping(ref);
    if (typeof value !== 'function') throw new TypeError(`${ref.module} exports '${ref.name}' as ${typeof value}, not a function; it cannot be a pool task.`);
    fn = value as Function;
    functions.set(key, fn);
  }
  return fn;
}

// A task's module is imported here as a Process target's module is in any child: starting a
// process while its top level runs is the unguarded-main() mistake, and fails (bootstrapping).
// Nothing else runs in this worker meanwhile: the task waits for its function.
async function importWhileBootstrapping(ref: ModuleRef): Promise<unknown> {
  const rt = runtime();
  rt.bootstrapping = true;
  try {
    return await importReference(ref);
  } finally {
    rt.bootstrapping = false;
  }
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
  let running: RunningTask | undefined;
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
      if (running?.id === message.id) running.abort(new Error(message.reason));
      continue;
    }
    const task = message;
    work = work.then(async () => {
      running = new RunningTask(task.id);
      try {
        await runTask(conn, task, running);
      } finally {
        running = undefined;
      }
    });
  }
  await work;
  conn.close();
  await conn.flushed();
}

function ignoreSigint(): void {}

let rss = (): number => 0;

// The running task's context; its AbortController is made only when a task asks for its signal
// (or is aborted): most tasks never do, and one per task costs more than a small function.
class RunningTask implements TaskContext {
  readonly id: number;
  #controller: AbortController | undefined;

  constructor(id: number) {
    this.id = id;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }
}

async function runTask(conn: Connection<ToWorker | FromWorker>, task: TaskMessage, context: RunningTask): Promise<void> {
  current = context;
  let reply: FromWorker;
  try {
    const fn = await resolve(task.fn);
    // Pushed, not preallocated: V8 clones an array with holes (new Array(n)) as a sparse object,
    // key by key, several times slower to read on the other side.
    const results: unknown[] = [];
    for (let i = 0; i < task.items.length; i++) {
      const result: unknown = task.star ? fn(...(task.items[i] as unknown[])) : fn(task.items[i]);
      // Await only what is awaitable: a tick per item would cost more than a small function.
      results.push(result instanceof Promise ? await result : result);
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
