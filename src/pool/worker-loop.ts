// The loop every pool worker runs (in a child process or a worker thread): run the initializer,
// then take tasks from the pool's pipe one at a time, call the function on each argument list,
// and send back the results or the error. An 'abort' for the running task fires the AbortSignal
// that currentTask().signal gives the task.

import type { Connection } from '../connection/connection.ts';
import { invalidArgument } from '../errors.ts';
import { importReference, type ModuleRef } from '../internal/function-ref.ts';
import { debug } from '../logging.ts';
import { messageArrayBuffer } from '../internal/message-buffer.ts';
import { describeError } from '../internal/remote-error.ts';
import { runtime } from '../internal/runtime.ts';
import { isMainThread } from '../internal/threads.ts';
import { checkSendable, discardLibraryObjects, holdsLibraryObjects, loads } from '../reduction.ts';
import { claimerFor, type ClaimPlace } from './claims.ts';
import { ABORT, BOUND, CALL, FAILURE, READY, RESULT, STAR, STARTED, STOP, TIMED, UNREADABLE, worthPacking, type Chunk, type FromWorker, type ToWorker } from './protocol.ts';

export interface TaskContext {
  /** Aborted when the caller's timeout passes or its AbortSignal fires: stop early, or be killed after a grace period. */
  readonly signal: AbortSignal;
  /** The task's id in its pool. */
  readonly id: number;
}

/** The task this worker runs now: what currentTask() gives, and what an 'abort' message is for. */
let running: RunningTask | undefined;

/** The running pool task's context (its AbortSignal), inside a pool worker; undefined elsewhere. */
export function currentTask(): TaskContext | undefined {
  return running;
}

/** The pool's functions by its numbers for them (a Task's `fn`), and what each number stands for. */
const byNumber: (Function | undefined)[] = [];
const references: (ModuleRef | undefined)[] = [];

// Imported once per function and worker: the pool gives one function one number (the
// initializer, imported once before any task, is the other caller).
async function resolve(ref: ModuleRef): Promise<Function> {
  const value = await importWhileBootstrapping(ref);
  if (typeof value !== 'function') {
    throw invalidArgument(`${ref.module} exports '${ref.name}' as ${typeof value}, not a function; it cannot be a pool task. Pass { module, name } naming an exported function.`, 'ERR_MP_EXPORT_NOT_FOUND');
  }
  return value as Function;
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

/**
 * The pool's workers' target, named rather than looked up as a user's function is (that lookup
 * starts an inspector session: 40 ms on a program's first start). The built library exports it
 * under this same name (scripts/build.ts).
 */
export const poolWorkerTarget: ModuleRef = { module: import.meta.url, name: 'poolWorker' };

/** A pool worker's target: exported, so that it crosses by reference like any target. */
export async function poolWorker(conn: Connection<ToWorker | FromWorker>, initializer: ModuleRef | null, initargs: unknown[], reportMemory = false, claims: ClaimPlace | null = null): Promise<void> {
  // Reading the RSS costs a read of /proc per task: only for a pool with maxMemoryPerChild.
  rss = reportMemory ? () => process.memoryUsage.rss() : () => 0;
  // Ctrl-C reaches the whole process group. The pool's own process decides what it means (it ends,
  // and its daemonic workers with it); a worker that died of it first would fail its task with
  // WorkerLostError, racing the program's own end (a stack trace, exit code 1). Python's recipe
  // for Pool workers is the same: ignore SIGINT. (A worker thread gets no signals of its own.)
  if (isMainThread()) process.on('SIGINT', ignoreSigint);
  if (initializer) await (await resolve(initializer))(...initargs);
  conn.send([READY]);
  // Tasks run one at a time, in order. One whose function is at hand, with none ahead of it, runs
  // right here; the others (a module to import first, an async function still running) wait in
  // the chain of `work`, which cost a tiny task two async calls and a few promises.
  let work: Promise<void> = Promise.resolve();
  let waiting = 0;
  let received = 0;
  // TASKS messages met, and whether one could not be rebuilt here (then the later ones are dropped,
  // unread: the pool queues their tasks again for other workers, and retires this one).
  let batches = 0;
  let unreadable = false;
  // A task runs only if the pool has not taken it back for an idle worker (see claims.ts):
  // `position` numbers the tasks received, as the pool numbered them when it sent them.
  const { claim, takenBack } = claimerFor(claims);
  let position = 0;
  const chain = (start: () => Promise<void> | undefined) => {
    waiting++;
    work = work.then(start).finally(() => waiting--);
  };
  for (;;) {
    let message: ToWorker | null;
    try {
      message = unreadable ? await receiveSkippingTasks(conn) : ((await conn.recv()) as ToWorker);
    } catch (error) {
      // The pool is gone (its end closed, or its process died): nothing more to do.
      const code = (error as { code?: string }).code;
      if (code === 'ERR_MP_EOF') return exitWorker();
      if (code === 'ERR_MP_CONNECTION_CLOSED') throw error;
      // A message read whole whose arguments could not be rebuilt (only a TASKS message carries
      // any): its tasks fail with this error in the pool, instead of this worker dying of it and
      // its tasks failing as lost to a dead worker (or retried into the same error).
      if (!unreadable) conn.send([UNREADABLE, batches, describeError(error)]);
      unreadable = true;
      batches++;
      continue;
    }
    if (message === null) {
      batches++; // a TASKS message skipped unread
      continue;
    }
    const kind = message[0];
    if (kind === STOP) break;
    if (kind === ABORT) {
      if (running?.id === message[1]) running.abort(new Error(message[2]));
      continue;
    }
    batches++; // a TASKS message
    if (unreadable) continue;
    const ids = message[1], fns = message[2], items = message[3], flags = message[4], defines = message[5];
    received += ids.length;
    for (let i = 0; i < defines.length; i += 2) references[defines[i] as number] = defines[i + 1] as ModuleRef;
    for (let i = 0; i < ids.length; i++) {
      const task: Task = { id: ids[i] as number, fn: fns[i] as number, items: items[i] as Chunk, flags: flags[i] as number };
      const at = position++;
      const fn = byNumber[task.fn];
      if (waiting === 0 && fn !== undefined) {
        if (!claim(at)) continue;
        const rest = runTask(conn, task, fn, new RunningTask(task.id));
        if (rest) chain(() => rest);
      } else {
        // Claimed when its turn comes and its function is at hand: until then the pool may give
        // it to an idle worker, or take it back when it is aborted.
        chain(() => (takenBack(at) ? undefined : resolveThenRun(conn, task, () => claim(at))));
      }
    }
  }
  await work;
  debug(() => `worker exiting after ${received} tasks`);
  conn.close();
  await conn.flushed();
  exitWorker();
}

// Python's worker process ends when its loop does. Waiting for the event loop to empty instead
// would wait for ever on a timer or a socket that a task left open, and the pool, which replaces
// or joins a worker once it has exited, with it (maxtasksperchild, close() + join()).
function exitWorker(): never {
  process.exit(0);
}

function ignoreSigint(): void {}

// After a message it could not rebuild: a message that carries library objects (only a TASKS
// message does) is skipped without rebuilding them (null), so that what it carries stays the
// pool's to send again: a socket Connection rebuilt here would be taken, and lost with this worker.
// The counts their sending took (a Pipe end's, a Queue's) are let go: the pool counts them again
// when it sends the tasks again.
async function receiveSkippingTasks(conn: Connection<ToWorker | FromWorker>): Promise<ToWorker | null> {
  const bytes = await conn.recvBytes();
  if (!holdsLibraryObjects(bytes)) return loads(bytes, 'Connection.recv()') as ToWorker;
  await discardLibraryObjects(bytes);
  return null;
}

/** One task of a TasksMessage: function number `fn` over `items`, as `flags` say (protocol.ts). */
interface Task {
  id: number;
  fn: number;
  items: Chunk;
  flags: number;
}

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

  /** Whether it was aborted (without making a controller for a task that was not). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }
}

// The task's function is imported first (its module's first task in this worker). A task
// aborted meanwhile never starts: its caller has its error already, and a function called after
// that would do its work (and its side effects) for no one. The pool takes such a task back (the
// claim fails: nothing to reply, and the pool's 'stop' ends this worker); without shared memory it
// sends an 'abort', and the reply to it lets the pool retire this worker at once instead of killing
// it after abortGraceMs.
async function resolveThenRun(conn: Connection<ToWorker | FromWorker>, task: Task, claim: () => boolean): Promise<void> {
  const context = new RunningTask(task.id);
  running = context;
  let fn: Function;
  try {
    fn = byNumber[task.fn] ?? (byNumber[task.fn] = await resolve(references[task.fn] as ModuleRef));
  } catch (error) {
    if (claim()) return finishTask(conn, task, { error });
    running = undefined;
    return;
  }
  if (!claim()) {
    running = undefined;
    return;
  }
  if (context.aborted) return finishTask(conn, task, { error: context.signal.reason });
  await runTask(conn, task, fn, context);
}

// Runs the task and sends its result; a Promise while an async function has not finished.
function runTask(conn: Connection<ToWorker | FromWorker>, task: Task, fn: Function, context: RunningTask): Promise<void> | undefined {
  running = context;
  let called: Results | Promise<Results>;
  let items = task.items;
  try {
    if (task.flags & TIMED) conn.send([STARTED, task.id]);
    if (task.flags & BOUND) {
      const [bound, own] = items as [unknown[], Chunk];
      fn = fn.bind(null, ...bound);
      items = own;
    }
    // apply()'s argument list came as the task's items (one array less to send and decode): here
    // it is a chunk of one argument list again.
    called = task.flags & CALL ? callAll(fn, [items], true) : callAll(fn, items, (task.flags & STAR) !== 0);
  } catch (error) {
    return finishTask(conn, task, { error });
  }
  if (!(called instanceof Promise)) return finishTask(conn, task, { results: called });
  return called.then(
    (results) => finishTask(conn, task, { results }),
    (error: unknown) => finishTask(conn, task, { error }),
  );
}

function finishTask(conn: Connection<ToWorker | FromWorker>, task: Task, outcome: { results: Results } | { error: unknown }): undefined {
  running = undefined;
  const id = task.id;
  const reply: FromWorker = 'error' in outcome ? [FAILURE, id, describeError(outcome.error), rss()] : [RESULT, id, outcome.results.items(), rss()];
  try {
    conn.send(reply);
  } catch (error) {
    // The result cannot cross (a function in it, a class instance): say so instead of hanging,
    // naming the result that fails (the pool names it as the caller knows it), not the message
    // that carried it.
    const unsendable = 'results' in outcome ? firstUnsendable(outcome.results.items()) : undefined;
    conn.send(unsendable ? [FAILURE, id, describeError(unsendable.error), rss(), unsendable.index] : [FAILURE, id, describeError(error), rss()]);
  }
  return undefined;
}

function firstUnsendable(results: Chunk): { index: number; error: unknown } | undefined {
  if (results instanceof Float64Array) return undefined;
  for (let index = 0; index < results.length; index++) {
    try {
      checkSendable(results[index], 'its value');
    } catch (error) {
      return { index, error };
    }
  }
  return undefined;
}

// fn over a task's items, in a plain loop while the results are plain values: an async function's
// loop runs several times slower, and most pool functions are synchronous. The first Promise
// hands the rest of the chunk to an async loop that awaits each result.
function callAll(fn: Function, items: Chunk, star: boolean): Results | Promise<Results> {
  const results = new Results(items.length);
  for (let i = 0; i < items.length; i++) {
    const result: unknown = star ? fn(...(items[i] as unknown[])) : fn(items[i]);
    if (result instanceof Promise) return callAllAsync(fn, items, star, results, i, result);
    results.add(i, result);
  }
  return results;
}

async function callAllAsync(fn: Function, items: Chunk, star: boolean, results: Results, from: number, pending: Promise<unknown>): Promise<Results> {
  results.add(from, await pending);
  for (let i = from + 1; i < items.length; i++) {
    const result: unknown = star ? fn(...(items[i] as unknown[])) : fn(items[i]);
    results.add(i, result instanceof Promise ? await result : result);
  }
  return results;
}

// A chunk's results, written straight into a Float64Array while they are all numbers (the common
// numeric map(): no boxed number per result, and a clone that is the bytes), else into an array.
// Pushing into an array and packing it afterwards (packNumbers) took 5x as long: 5.4 against 1.0 ms
// for 125,000 squares.
// Pushed, never preallocated: V8 clones an array with holes as a sparse object, key by key.
class Results {
  #numbers: Float64Array | null;
  #values: unknown[] | null = null;

  constructor(length: number) {
    this.#numbers = worthPacking(length) ? new Float64Array(messageArrayBuffer(8 * length)) : null;
    if (!this.#numbers) this.#values = [];
  }

  add(index: number, value: unknown): void {
    if (this.#numbers) {
      if (typeof value === 'number') {
        this.#numbers[index] = value;
        return;
      }
      this.#values = Array.from(this.#numbers.subarray(0, index));
      this.#numbers = null;
    }
    (this.#values as unknown[]).push(value);
  }

  items(): Chunk {
    return this.#numbers ?? (this.#values as unknown[]);
  }
}
