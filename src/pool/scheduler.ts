// The pool's engine: one event-driven scheduler, not CPython's three threads. It keeps which task
// each worker holds, so that every worker exit is charged to its task: a worker that dies mid-task
// fails exactly that task with WorkerLostError (or re-runs it, with `retries`), is replaced, and the
// pool goes on. Handlers, one per event: submit, ready, result, exit, timeout/abort.

import { constants } from 'node:os';
import { Connection, Pipe } from '../connection/connection.ts';
import { NOT_READY, RingTransport } from '../connection/ring-transport.ts';
import { ProcessError, TimeoutError, WorkerLostError } from '../errors.ts';
import { referenceKey, unbind, type ModuleRef } from '../internal/function-ref.ts';
import { Deque } from '../internal/deque.ts';
import { awayFromCaller, rebuildError, type ErrorData } from '../internal/remote-error.ts';
import { describeChild, exitOf, startAbandonedOf, type Process } from '../process.ts';
import { checkSendable } from '../reduction.ts';
import { ABORT, BOUND, CALL, FAILURE, READY, RESULT, STARTED, STOP, TASKS, TIMED, UNREADABLE, type Chunk, type FailureMessage, type FromWorker, type ResultMessage, type ToWorker } from './protocol.ts';
import { poolWorkerTarget } from './worker-loop.ts';
import { ClaimCells, takeBack, type ClaimCell } from './claims.ts';
import { SignalWatch } from './signals.ts';
import { deferred, type Deferred } from '../internal/deferred.ts';
import { monotonicMs } from '../internal/clock.ts';
import { timerFor } from '../internal/validate.ts';
import { debug, subwarning } from '../logging.ts';

export interface SchedulerOptions {
  processes: number;
  ProcessClass: typeof Process;
  /** Whether the workers are threads of this process (their claim words need no shared-memory segment). */
  threads: boolean;
  initializer: ModuleRef | null;
  initargs: unknown[];
  maxtasksperchild: number | null;
  maxMemoryPerChild: number | null;
  retries: number;
  /** How long an aborted task may take to stop by itself before its worker is killed. */
  abortGraceMs: number;
}

export type Outcome = { results: Chunk } | { error: unknown };

export interface Task {
  id: number;
  fn: ModuleRef;
  items: Chunk;
  /** STAR or CALL (protocol.ts), or 0: how the worker calls `fn` on `items`. */
  flags: number;
  timeout?: number | undefined;
  signal?: AbortSignal | undefined;
  settle(outcome: Outcome): void;
  /** Workers this task was running on when they died. */
  losses: number;
  /** Which of its worker's TASKS messages carries it (see #unreadable). */
  batch: number;
  /** Its number among the tasks sent to its worker (see claims.ts). */
  position?: number;
  /** Sent in a TASKS message of its own: a message that carried it with others could not be read. */
  alone: boolean;
  worker?: Worker | undefined;
  timer?: NodeJS.Timeout | undefined;
  done?: boolean;
  /** Where its items start in the call's input (map, imap): errors about one item name it by its index there. */
  offset?: number | undefined;
}

interface Worker {
  process: Process;
  conn: Connection<ToWorker | FromWorker>;
  ready: boolean;
  /** Tasks sent to this worker, in order: the first is running, the others wait in its pipe. */
  tasks: Task[];
  /** The tasks #sendBatches() is giving it this time. */
  batch: Batch;
  /** TASKS messages sent to it. */
  batchesSent: number;
  /** Tasks sent to it, and its word in shared memory saying how many of them it started or was taken back (claims.ts). */
  sent: number;
  claims: ClaimCell | undefined;
  /** The numbers of the functions this worker has been told (see #assign). */
  functions: Set<number>;
  tasksRun: number;
  /** Set when the worker is being stopped or killed: it takes no more tasks. */
  retiring: boolean;
  stopSent: boolean;
  /** How many tasks it may hold (see PREFETCH_BUDGET_MS), and what that is judged from. */
  prefetch: number;
  /** Its recent time per task (an average): the time between two results while it went straight on. */
  taskMs: number | undefined;
  /** When its last result came, if it had more tasks then (and so went straight on to the next). */
  busySince: number | undefined;
  /** Set when its process (or thread) has ended: it takes no more tasks while the pool reads what it sent. */
  gone?: boolean;
  /** Ends when the worker's end of the pipe is closed (by it, or for it once it is gone) and all it sent is read. */
  listening?: Promise<void>;
}

export type PoolState = 'running' | 'closed' | 'terminated';

/**
 * Tasks are sent ahead to a worker, so it starts the next one without a round trip to the pool:
 * about this much work, judged by its recent time per task. Short tasks go in long runs (a worker
 * is topped up, and woken, once per half of them: tiny tasks spent a fifth of the pool's time in
 * those wakes with 16 at a time), long ones two at a time. The bound is in time, not in tasks: what
 * waits behind a task that runs long is about this much work, whatever the count.
 * Tasks with a timeout or an AbortSignal are never queued behind another (a timeout's clock starts
 * when the worker starts the task), nor is anything queued behind them.
 */
const PREFETCH_BUDGET_MS = 1;
/** Before any worker's time per task is known. */
const PREFETCH_START = 16;
/** A worker's, once another's time per task is known and before its own is: its running task only. */
const UNTIMED_PREFETCH = 1;
const PREFETCH_MIN = 2;
const PREFETCH_MAX = 256;
/** How many of a worker's messages the pool takes in a row without awaiting (see #listen). */
const TAKEN_AT_ONCE = 64;

/** A TasksMessage's columns, filled by #assign(). */
interface Batch {
  ids: number[];
  fns: number[];
  items: Chunk[];
  flags: number[];
  defines: (number | ModuleRef)[];
}

const emptyBatch = (): Batch => ({ ids: [], fns: [], items: [], flags: [], defines: [] });

const itemCount = (task: Task) => (task.flags & CALL ? 1 : task.items.length);

const abortable = (task: Task) => task.timeout !== undefined || task.signal !== undefined;

/** A worker's exit as the errors tell it: the signal's name (SIGKILL for exit code -9), or the exit code. */
function exitOfWorker(exitCode: number | null): { signal: string | null; how: string } {
  if (exitCode === null || exitCode >= 0) return { signal: null, how: `exit code ${exitCode}` };
  const signal = Object.keys(constants.signals).find((name) => constants.signals[name as NodeJS.Signals] === -exitCode) ?? String(-exitCode);
  return { signal, how: `signal ${signal}` };
}

export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #workers = new Set<Worker>();
  readonly #queue = new Deque<Task>();
  readonly #takers: Worker[] = [];
  readonly #claimCells: ClaimCells;
  readonly #signals = new SignalWatch<Task>((task, reason) => this.#abort(task, reason));
  /** Tasks aborted while queued: they stay in #queue, done, until dispatch skips them. */
  #abortedInQueue = 0;
  #allExited: Deferred;
  #state: PoolState = 'running';
  #nextId = 1;
  #keepAlive: NodeJS.Timeout | undefined;
  #dispatchQueued = false;
  readonly #functionNumbers = new WeakMap<ModuleRef, number>();
  readonly #functionNumbersByKey = new Map<string, number>();
  readonly counts = { completed: 0, failed: 0 };

  constructor(options: SchedulerOptions) {
    this.#claimCells = new ClaimCells(options.threads);
    this.#options = options;
    this.#allExited = deferred();
    for (let i = 0; i < options.processes; i++) this.#spawn();
  }

  get state(): PoolState {
    return this.#state;
  }

  newId(): number {
    return this.#nextId++;
  }

  submit(task: Task): void {
    if (task.signal?.aborted) return this.#finish(task, { error: task.signal.reason }); // counted as failed, as a task aborted in the queue is
    // What an imap() still reads from its input after terminate() runs nowhere.
    if (this.#state === 'terminated') return this.#finish(task, { error: new ProcessError('Pool: the pool was terminated before this task ran.', { code: 'ERR_MP_POOL_TERMINATED' }) });
    if (task.signal) this.#signals.add(task.signal, task);
    this.#queue.push(task);
    // Workers that failed to start were not replaced (see #exited): try again for this task.
    while (this.#workers.size < this.#options.processes) this.#spawn();
    this.#dispatchSoon();
  }

  // Once for all the tasks submitted in this turn of the event loop (20,000 applyAsync() in a
  // loop are a few batches, not 20,000 messages).
  #dispatchSoon(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    queueMicrotask(() => {
      this.#dispatchQueued = false;
      this.#dispatch();
    });
  }

  close(): void {
    debug(() => 'closing pool');
    if (this.#state === 'running') this.#state = 'closed';
    this.#stopIdleWorkers();
    if (this.#workers.size === 0) this.#allExited.resolve(); // none left to wait for (they failed to start)
  }

  terminate(): void {
    debug(() => 'terminating pool');
    this.#state = 'terminated';
    for (const task of this.#takeQueue()) this.#finish(task, { error: new ProcessError('Pool: the pool was terminated before this task ran.', { code: 'ERR_MP_POOL_TERMINATED' }) });
    for (const worker of this.#workers) {
      // Charged to terminate(), not to a lost worker: the pool does not replace it and go on.
      worker.tasks.forEach((task, i) => this.#finish(task, { error: new ProcessError(`Pool: the pool was terminated ${i === 0 ? 'while this task ran' : 'before this task ran'}.`, { code: 'ERR_MP_POOL_TERMINATED' }) }));
      worker.retiring = true;
      worker.process.kill();
    }
    if (this.#workers.size === 0) this.#allExited.resolve();
  }

  /** Resolves once every worker has exited (after close() or terminate()). */
  joined(): Promise<void> {
    return this.#allExited.promise;
  }

  // Each task in one state. Tasks sent ahead to a busy worker wait in its pipe: queued, not
  // running. A task that timed out or was aborted is failed, though its worker may still be
  // stopping it (abortGraceMs): that worker is busy, not idle, but runs no task of the caller's.
  stats() {
    const workers = [...this.#workers];
    const busy = workers.filter((w) => w.tasks.length > 0).length;
    let running = 0;
    let prefetched = 0;
    for (const worker of workers) {
      worker.tasks.forEach((task, i) => {
        if (task.done) return;
        if (i === 0) running++;
        else prefetched++;
      });
    }
    return {
      workers: { total: workers.length, busy, idle: workers.length - busy },
      tasks: { queued: this.#queued + prefetched, running, completed: this.counts.completed, failed: this.counts.failed },
    };
  }

  #spawn(): void {
    // Work that came after every worker of a closed pool had exited (an imap() reading the rest
    // of its input): join() waits for the workers started for it too.
    if (this.#state !== 'running' && this.#workers.size === 0) this.#allExited = deferred();
    const [mine, theirs] = Pipe<ToWorker | FromWorker>();
    const { ProcessClass, initializer, initargs, maxMemoryPerChild } = this.#options;
    const claims = this.#claimCells.acquire();
    const process = new ProcessClass({ target: poolWorkerTarget, args: [theirs, initializer, initargs, maxMemoryPerChild !== null, claims?.place ?? null], daemon: true });
    process.name = process.name.replace('Process', 'PoolWorker'); // as Python names them
    process.start();
    theirs.close();
    const worker: Worker = { process, conn: mine, ready: false, tasks: [], batch: emptyBatch(), batchesSent: 0, sent: 0, claims, functions: new Set(), tasksRun: 0, retiring: false, stopSent: false, prefetch: this.#someTimed() ? UNTIMED_PREFETCH : PREFETCH_START, taskMs: undefined, busySince: undefined };
    this.#workers.add(worker);
    debug(() => `added worker ${describeChild(process)}`);
    worker.listening = this.#listen(worker);
    void exitOf(process).then(() => this.#gone(worker));
  }

  // Its end of the pipe was its alone: if it ended without closing it (killed), it is closed for
  // it, so that the pool reads all it sent and then sees the end. Only then is its exit handled: a
  // result it sent just before it died is a result, not a lost task. A worker that ended before it
  // took its end over never held it: Process.start() lets go of that copy (closed here too, its
  // counts would drop twice, and its rings would never be freed).
  async #gone(worker: Worker): Promise<void> {
    worker.gone = true;
    const transport = Connection.transportOf(worker.conn);
    if (transport instanceof RingTransport && !(await startAbandonedOf(worker.process))) transport.closeForGonePeer();
    try {
      await worker.listening;
    } finally {
      this.#exited(worker); // also if listening failed (a fault in the library), which then surfaces
    }
  }

  async #listen(worker: Worker): Promise<void> {
    let taken = 0;
    for (;;) {
      let message: FromWorker;
      try {
        // What is here already is taken without a Promise; at least every TAKEN_AT_ONCE messages
        // the loop awaits recv(), so that callbacks and awaits on the results run between them.
        const ready = ++taken % TAKEN_AT_ONCE === 0 ? NOT_READY : Connection.receiveReady(worker.conn);
        // Waiting for workers does not keep the process alive; the keep-alive timer does while tasks run.
        message = (ready !== NOT_READY ? ready : await worker.conn.recv({ keepAlive: false })) as FromWorker;
      } catch (error) {
        // The worker's end closed or its process died: #exited() handles it. Any other failure
        // to read it would leave its tasks waiting for ever: it is killed, and its task fails
        // with WorkerLostError (and is retried, with `retries`) as if it had died.
        if ((error as { code?: string }).code !== 'ERR_MP_EOF') {
          process.emitWarning(`Pool: could not read from worker pid ${worker.process.pid}; it is replaced: ${(error as Error)?.message ?? String(error)}`, { type: 'MultiprocWarning', code: 'MP_POOL_WORKER_UNREADABLE' });
          worker.process.kill();
        }
        return;
      }
      const kind = message[0];
      if (kind === RESULT || kind === FAILURE) {
        this.#result(worker, message);
      } else if (kind === READY) {
        worker.ready = true;
        this.#dispatch();
      } else if (kind === STARTED) {
        this.#started(worker, message[1]);
      } else if (kind === UNREADABLE) {
        this.#unreadable(worker, message[1], message[2]);
      }
    }
  }

  // After every event: queued tasks to the workers, tasks waiting behind others taken back for
  // idle workers, idle workers of a closed pool stopped.
  #dispatch(): void {
    if (this.#queue.length > 0) this.#sendBatches();
    if (this.#queued === 0) this.#rebalance();
    if (this.#state === 'closed') this.#stopIdleWorkers();
    this.#refreshKeepAlive();
  }

  // Round-robin, one task per worker per round, so that work spreads before it piles up. A worker
  // that still holds more than half its prefetch gets nothing this time: topped up in bursts, it
  // is woken once per burst instead of once per task (and works through the rest meanwhile). Each
  // worker's share of a round goes in one message.
  #sendBatches(): void {
    // The list is reused and each worker's batch kept on it until it is sent: this runs after
    // every result, and fresh lists per call (takers.map(emptyBatch)) cost the parent 7% more CPU
    // in the first 20,000 tiny tasks (alternating runs).
    const takers = this.#takers;
    takers.length = 0;
    for (const worker of this.#workers) if (worker.tasks.length <= worker.prefetch >> 1) takers.push(worker);
    let sent = takers.length > 0;
    while (this.#queue.length > 0 && sent) {
      sent = false;
      for (const worker of takers) {
        const task = this.#nextQueued();
        if (!task || !this.#accepts(worker, task) || !this.#fitsBatch(worker, task)) continue;
        this.#queue.shift();
        this.#assign(worker, task);
        sent = true;
      }
    }
    for (const worker of takers) {
      const batch = worker.batch;
      if (batch.ids.length === 0) continue;
      worker.batch = emptyBatch();
      try {
        worker.conn.send([TASKS, batch.ids, batch.fns, batch.items, batch.flags, batch.defines]);
        worker.batchesSent++;
        worker.sent += batch.ids.length;
      } catch (error) {
        this.#unsent(worker, batch, error);
      }
    }
    takers.length = 0;
  }

  // Python's idle worker takes the next task from the one queue; here tasks are sent ahead to a
  // worker on a guess of their time, and can wait there behind one that runs long (a guess made
  // on a tiny task of another call). While the queue is empty and a worker idles, it gets half
  // of what the busiest worker holds and has not started, taken back through that worker's word
  // (claims.ts): a task never waits behind another while a worker could run it. The rounds are
  // bounded: each takes back at least one task, or ends.
  #rebalance(): void {
    for (let rounds = this.#workers.size; rounds > 0 && this.#someIdle(); rounds--) {
      const holder = this.#mostWaiting();
      if (!holder) return;
      const waiting = holder.sent - Atomics.load((holder.claims as ClaimCell).word, 0);
      if (!this.#takeBack(holder, Math.ceil(waiting / 2))) return;
      this.#sendBatches();
    }
  }

  #someIdle(): boolean {
    for (const worker of this.#workers) if (worker.ready && !worker.retiring && !worker.gone && worker.tasks.length === 0) return true;
    return false;
  }

  /** The worker with the most tasks waiting behind a task it has started; undefined if none waits. */
  #mostWaiting(): Worker | undefined {
    let most: Worker | undefined;
    let waiting = 0;
    for (const worker of this.#workers) {
      if (!worker.claims || worker.retiring || worker.gone || worker.tasks.length < 2) continue;
      const decided = Atomics.load(worker.claims.word, 0);
      // Only behind a task it has started: one it has not even read yet is not stuck.
      if (decided <= ((worker.tasks[0] as Task).position as number)) continue;
      if (worker.sent - decided > waiting) [most, waiting] = [worker, worker.sent - decided];
    }
    return most;
  }

  // Up to `count` of the tasks it has not started, back to the front of the queue in their order;
  // the worker drops them when it reaches them.
  #takeBack(worker: Worker, count: number): boolean {
    const { from, taken } = takeBack(worker.claims as ClaimCell, worker.sent, count);
    if (taken === 0) return false;
    const at = worker.tasks.findIndex((task) => task.position === from);
    if (at < 0) throw new Error(`bug in multiproc: task number ${from} of worker ${describeChild(worker.process)} is not among its tasks`);
    const back = worker.tasks.splice(at, taken);
    debug(() => `took back ${taken} task(s) not started from worker ${describeChild(worker.process)} for an idle worker`);
    for (let i = back.length - 1; i >= 0; i--) {
      const task = back[i] as Task;
      task.worker = undefined;
      if (!task.done) this.#queue.unshift(task);
    }
    return true;
  }

  // The batch could not be sent: something in a task changed since its call checked it (a Pipe
  // end or socket Connection closed or busy since). Those tasks fail with the reason, as Python's
  // task handler fails a task it cannot pickle; the others go back to the queue, first.
  #unsent(worker: Worker, batch: Batch, error: unknown): void {
    const unsent = worker.tasks.splice(worker.tasks.length - batch.ids.length);
    for (let i = 0; i < batch.defines.length; i += 2) worker.functions.delete(batch.defines[i] as number);
    const failures = unsent.map((task) => {
      try {
        checkSendable(task.fn.args ? [task.fn.args, task.items] : task.items, `Pool: task ${task.id}'s arguments`);
        return null;
      } catch (reason) {
        (reason as Error).message += ' It changed after the call that passed it: a pool sends a task when a worker takes it, a moment later. Close (or use) what you pass to a task once its result is in.';
        return reason;
      }
    });
    const named = failures.some((reason) => reason !== null);
    for (let i = unsent.length - 1; i >= 0; i--) {
      const task = unsent[i] as Task;
      task.worker = undefined;
      // A failure that no single task explains fails them all: sent again, it would fail again.
      if (failures[i] !== null || !named) this.#finish(task, { error: failures[i] ?? error });
      else this.#queue.unshift(task);
    }
    if (named) this.#dispatchSoon();
  }

  /** Whether `task` may join the TASKS message being made for `worker` (see Task.alone). */
  #fitsBatch(worker: Worker, task: Task): boolean {
    return worker.batch.ids.length === 0 || (!task.alone && !(worker.tasks[worker.tasks.length - 1] as Task).alone);
  }

  #accepts(worker: Worker, task: Task): boolean {
    if (!worker.ready || worker.retiring || worker.gone) return false;
    const queued = worker.tasks.length;
    if (queued === 0) return true;
    const quota = this.#options.maxtasksperchild;
    if (quota && worker.tasksRun + queued >= quota) return false;
    // Never queue a task behind another while a worker is idle or still starting: it would wait
    // for the task ahead of it (forever, if that one waits for it) instead of running in parallel.
    for (const other of this.#workers) if (!other.retiring && (!other.ready || other.tasks.length === 0)) return false;
    return queued < worker.prefetch && !abortable(task) && !abortable(worker.tasks[queued - 1] as Task);
  }

  // The worker's time per task, from the time between results while it works straight through
  // (a result, then the next task already in its pipe), or from sending its first task (#assign);
  // its prefetch follows.
  #timeTask(worker: Worker): void {
    const now = monotonicMs();
    if (worker.busySince !== undefined) {
      const ms = now - worker.busySince;
      worker.taskMs = worker.taskMs === undefined ? ms : worker.taskMs * 0.8 + ms * 0.2;
      const fits = Math.round(PREFETCH_BUDGET_MS / Math.max(worker.taskMs, 1e-3));
      worker.prefetch = Math.min(PREFETCH_MAX, Math.max(PREFETCH_MIN, fits));
      // A worker not timed yet (it was ready late, or replaces one, or its first task still runs)
      // holds nothing behind the task it runs until its first result: with the first guess of 16,
      // a late worker given a task that blocks held up to 15 short ones behind it while the other
      // worker went idle, and with this worker's prefetch (up to 256 for short tasks) it took half
      // of a map behind a task that blocked.
      for (const other of this.#workers) if (other.taskMs === undefined) other.prefetch = UNTIMED_PREFETCH;
    }
    worker.busySince = worker.tasks.length > 0 ? now : undefined;
  }

  /** Whether some worker's time per task is known (a replacement then starts as an untimed worker, see #timeTask). */
  #someTimed(): boolean {
    for (const worker of this.#workers) if (worker.taskMs !== undefined) return true;
    return false;
  }

  // A function crosses to a worker once, as its module URL and export name, and then as a number:
  // the URL (tens of bytes) was most of a tiny task's message, encoded here and decoded there.
  #assign(worker: Worker, task: Task): void {
    // A worker's first task sent while it is idle is timed from here (its result's round trip
    // included): tasks sent one at a time, as while another worker is still starting, still teach
    // the pool. Later ones are timed only while it works straight through, without round trips.
    if (worker.taskMs === undefined && worker.tasks.length === 0) worker.busySince = monotonicMs();
    worker.tasks.push(task);
    task.worker = worker;
    task.batch = worker.batchesSent;
    task.position = worker.sent + worker.batch.ids.length;
    const fn = this.#functionNumber(task.fn);
    const { ids, fns, items, flags, defines } = worker.batch;
    // A partial()'s bound arguments travel with each task (as Python pickles a partial with each
    // task), and its function once, as any function: a new partial per call then costs the worker
    // no new function to import and keep.
    const bound = task.fn.args;
    ids.push(task.id);
    fns.push(fn);
    items.push(bound ? [bound, task.items] : task.items);
    flags.push(task.flags | (task.timeout !== undefined ? TIMED : 0) | (bound ? BOUND : 0));
    if (!worker.functions.has(fn)) {
      worker.functions.add(fn);
      defines.push(fn, unbind(task.fn)[0]);
    }
  }

  // By the reference's identity first (a function passed again gives the same reference), then by
  // its key (a `{ module, name }` written at each call is a new object each time).
  #functionNumber(fn: ModuleRef): number {
    let number = this.#functionNumbers.get(fn);
    if (number === undefined) {
      const key = referenceKey(fn);
      number = this.#functionNumbersByKey.get(key) ?? this.#functionNumbersByKey.size;
      this.#functionNumbersByKey.set(key, number);
      this.#functionNumbers.set(fn, number);
    }
    return number;
  }

  // A timed task's clock starts when its worker calls the function, not when it was sent: loading
  // the function's module (a worker's first task from it) is not the task's running time.
  #started(worker: Worker, id: number): void {
    const task = worker.tasks[0];
    if (!task || task.id !== id || task.done || task.timeout === undefined) return;
    task.timer = timerFor(task.timeout, () => this.#abort(task, new TimeoutError(`Pool: the task ran longer than its timeout of ${task.timeout} ms (counted from its start).`)));
  }

  #result(worker: Worker, message: ResultMessage | FailureMessage): void {
    // Indexed, not destructured: destructuring runs the array iterator, slow until V8 optimizes.
    const id = message[1], rss = message[3];
    const task = worker.tasks.shift();
    worker.tasksRun++;
    this.#timeTask(worker);
    if (task && task.id === id) {
      this.#finish(task, message[0] === RESULT ? { results: message[2] } : { error: this.#failure(worker, task, message) });
    }
    const { maxtasksperchild, maxMemoryPerChild } = this.#options;
    const worn = (maxtasksperchild && worker.tasksRun >= maxtasksperchild) || (maxMemoryPerChild && rss > maxMemoryPerChild);
    if (worn && !worker.retiring) debug(() => `recycling worker ${describeChild(worker.process)} after ${worker.tasksRun} tasks${maxMemoryPerChild && rss > maxMemoryPerChild ? ` (rss ${rss} bytes > maxMemoryPerChild)` : ''}`);
    if (worker.retiring || worn) this.#retire(worker);
    this.#dispatch();
  }

  // A result that could not be sent back is named as the caller knows it: the call's result, or
  // the result for an item of its input (the worker knows only the item's place in its chunk).
  #failure(worker: Worker, task: Task, message: FailureMessage): Error {
    const error = rebuildError(message[2], `pool worker ${worker.process.pid}`);
    const index = message[4];
    if (index === undefined) return error;
    const which = task.flags & CALL ? `the result of ${task.fn.name}() (task ${task.id})`
      : task.offset === undefined ? `the result for item ${index} of task ${task.id} (${task.fn.name})`
      : `the result for item ${task.offset + index} (${task.fn.name})`;
    error.message = `Pool: ${which} cannot be sent back from its worker: ${error.message}`;
    return error;
  }

  // The worker could not rebuild one of the TASKS messages sent to it: a task alone in it fails
  // with the reason (sent again it would fail again); several go back to the queue, each to be sent
  // alone, as the tasks sent after it do (the worker drops them); and the worker is retired once it
  // has finished the tasks before it. A report that names no task sent to it is a fault: the
  // worker is replaced.
  #unreadable(worker: Worker, batch: number, data: ErrorData): void {
    const tasks = worker.tasks;
    const from = tasks.findIndex((task) => task.batch === batch);
    if (from < 0) {
      process.emitWarning(`Pool: worker pid ${worker.process.pid} could not read a message the pool did not send it; it is replaced.`, { type: 'MultiprocWarning', code: 'MP_POOL_WORKER_UNREADABLE' });
      worker.process.kill();
      return;
    }
    let to = from;
    while (to < tasks.length && (tasks[to] as Task).batch === batch) to++;
    const unread = tasks.splice(from);
    if (to - from === 1) {
      const task = unread.shift() as Task;
      task.worker = undefined;
      this.#finish(task, { error: this.#unreadableError(worker, task, data) });
    } else {
      for (let i = 0; i < to - from; i++) (unread[i] as Task).alone = true;
    }
    for (let i = unread.length - 1; i >= 0; i--) {
      const task = unread[i] as Task;
      task.worker = undefined;
      if (!task.done) this.#queue.unshift(task);
    }
    this.#retire(worker);
    this.#dispatch();
  }

  #unreadableError(worker: Worker, task: Task, data: ErrorData): Error {
    const error = rebuildError(data, `pool worker ${worker.process.pid}`);
    const retried = task.losses > 0 && data.code === 'ERR_MP_CONNECTION_LOST'
      ? ` It was being retried after its worker died: a socket Connection moves to the worker that receives it, and was lost with that worker.`
      : '';
    error.message = `Pool: worker pid ${worker.process.pid} could not rebuild the arguments of task ${task.id} (${task.fn.name}): ${error.message}${retried}`;
    return error;
  }

  #exited(worker: Worker): void {
    this.#workers.delete(worker);
    if (worker.claims) this.#claimCells.release(worker.claims);
    debug(() => `cleaning up worker ${describeChild(worker.process)}, exitcode ${worker.process.exitCode}`);
    // The pool's end closes too: then no process holds the pipe, and its memory is freed (a pool
    // that replaces workers would otherwise keep every worker's pipe).
    worker.conn.close();
    const [task, ...unstarted] = worker.tasks;
    // Tasks that waited in the dead worker's pipe never started: they go back to the queue, first.
    for (const waiting of unstarted.reverse()) if (!waiting.done) this.#queue.unshift(waiting);
    if (task && !task.done) {
      task.losses++;
      task.worker = undefined;
      clearTimeout(task.timer);
      if (task.losses <= this.#options.retries && this.#state !== 'terminated') {
        subwarning(() => `worker ${describeChild(worker.process)} died (exitcode ${worker.process.exitCode}) while running task ${task.id}: retrying it (${task.losses} of ${this.#options.retries})`);
        this.#queue.unshift(task);
      } else {
        subwarning(() => `worker ${describeChild(worker.process)} died (exitcode ${worker.process.exitCode}) while running task ${task.id}: the task fails with WorkerLostError`);
        this.#finish(task, { error: this.#lostError(worker, task) });
      }
    }
    if (!worker.ready && !worker.retiring) {
      // It died before it was ready (its initializer threw, its module failed to load): a
      // replacement would fail the same way, forever, as CPython's pool does. It is not replaced
      // now; if no worker is left to run the queue, the queued tasks fail, naming the cause, and
      // the next submit() starts workers again.
      if (![...this.#workers].some((w) => !w.retiring)) {
        const error = this.#startError(worker);
        for (const waiting of this.#takeQueue()) this.#finish(waiting, { error });
      }
    } else if (this.#state !== 'terminated' && (this.#state === 'running' || this.#queued > 0)) {
      this.#spawn();
    }
    if (this.#workers.size === 0 && this.#state !== 'running') this.#allExited.resolve();
    this.#dispatch();
  }

  #startError(worker: Worker): ProcessError {
    const { pid, exitCode } = worker.process;
    const { signal, how } = exitOfWorker(exitCode);
    return new ProcessError(
      `Pool: worker pid ${pid} exited (${how}) before it was ready: its initializer threw, or its module failed to load (its stderr says why). ` +
        'The tasks waiting for a worker fail; the next call starts workers again.',
      { code: 'ERR_MP_POOL_WORKER_START', pid, exitCode, signal },
    );
  }

  #lostError(worker: Worker, task: Task): WorkerLostError {
    const { pid, exitCode } = worker.process;
    const { signal: signalName, how: signal } = exitOfWorker(exitCode);
    const poison = this.#options.retries > 0 ? ` It killed ${task.losses} workers (retries: ${this.#options.retries}): a poison item.` : '';
    return new WorkerLostError(
      `Pool: worker pid ${pid} died (${signal}) while running task ${task.id} (${task.fn.name}, ${itemCount(task)} item${itemCount(task) === 1 ? '' : 's'}).${poison} The pool replaced the worker and goes on.`,
      { pid, exitCode, signal: signalName },
    );
  }

  // A timeout or an abort: settle the caller now; a queued task just leaves the queue; a running
  // one's function sees its AbortSignal fire, and its worker is killed if it does not stop in time.
  #abort(task: Task, reason: unknown): void {
    if (task.done) return;
    const worker = task.worker;
    if (!worker) this.#abortedInQueue++; // it leaves the queue when dispatch reaches it
    this.#finish(task, { error: reason });
    if (!worker || worker.tasks[0] !== task) return;
    // Not started yet (its worker still loads its module): taken back, it never runs, whenever the
    // worker reads the 'abort'. The worker is stopped as it is after any abort: a module that never
    // ends loading would hold every task sent to it after this one.
    const takenBack = this.#takeBackUnstarted(worker, task);
    if (!takenBack) worker.conn.send([ABORT, task.id, String((reason as Error)?.message ?? reason)]);
    worker.retiring = true;
    if (takenBack) {
      // And the tasks sent after it, which have not started either: they go to other workers,
      // not down with this one if its module never ends loading.
      this.#takeBack(worker, worker.sent);
      this.#retire(worker);
      this.#dispatch();
    }
    timerFor(this.#options.abortGraceMs, () => {
      if (worker.tasks[0] === task || (takenBack && !worker.gone)) {
        subwarning(() => `task ${task.id} did not stop${takenBack ? ' (its module still loads)' : ''} within abortGraceMs of its abort: killing worker ${describeChild(worker.process)}`);
        worker.process.kill();
      }
      else this.#retire(worker); // it stopped in time: recycle it anyway, its state may be odd
    })?.unref();
  }

  // A task its worker has not claimed (claims.ts) leaves it: the worker skips it when it gets to it.
  #takeBackUnstarted(worker: Worker, task: Task): boolean {
    const position = task.position as number;
    if (!worker.claims || Atomics.compareExchange(worker.claims.word, 0, position, position + 1) !== position) return false;
    worker.tasks.shift();
    task.worker = undefined;
    return true;
  }

  #finish(task: Task, outcome: Outcome): void {
    if (task.done) return;
    task.done = true;
    clearTimeout(task.timer);
    if (task.signal) this.#signals.delete(task.signal, task);
    if ('error' in outcome) {
      this.counts.failed++;
      // Made here or in a worker (a signal's reason is the program's own): thrown at the caller's await.
      if (outcome.error !== task.signal?.reason) awayFromCaller(outcome.error);
    } else {
      this.counts.completed++;
    }
    task.settle(outcome);
    this.#refreshKeepAlive();
  }

  /** Tasks waiting in the queue, not counting the aborted ones still in it. */
  get #queued(): number {
    return this.#queue.length - this.#abortedInQueue;
  }

  /** The first queued task that was not aborted (the aborted ones before it leave the queue). */
  #nextQueued(): Task | undefined {
    for (let task = this.#queue.peek(); task; task = this.#queue.peek()) {
      if (!task.done) return task;
      this.#queue.shift();
      this.#abortedInQueue--;
    }
    return undefined;
  }

  #takeQueue(): Task[] {
    const tasks = this.#queue.drain().filter((task) => !task.done);
    this.#abortedInQueue = 0;
    return tasks;
  }

  #anyRunning(): boolean {
    for (const worker of this.#workers) if (worker.tasks.length > 0) return true;
    return false;
  }

  #retire(worker: Worker): void {
    if (worker.gone) return; // it exited already (an abort's grace timer can come after)
    worker.retiring = true;
    if (worker.tasks.length > 0 || worker.stopSent) return;
    worker.stopSent = true;
    // A worker still starting, with no initializer to run, has nothing to finish: ended now, it
    // spares join() the rest of its start (a Node process or thread booting: 10-30 ms).
    if (!worker.ready && this.#options.initializer === null) worker.process.kill();
    else worker.conn.send([STOP]);
  }

  #stopIdleWorkers(): void {
    if (this.#queued > 0) return;
    for (const worker of this.#workers) if (worker.tasks.length === 0 && !worker.retiring) this.#retire(worker);
  }

  // While tasks are queued or running, something must keep the process alive, as Python's
  // blocking get() does; an idle pool must not.
  #refreshKeepAlive(): void {
    const busy = this.#queued > 0 || this.#anyRunning();
    if (busy && !this.#keepAlive) this.#keepAlive = setInterval(() => {}, 1 << 30);
    if (!busy && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }
}

