// A Context gives the whole API over one backend, as CPython's context.py does: getContext('thread')
// runs every Process on a worker thread. The default context follows the start method.

import { availableParallelism } from 'node:os';
import { Process as BaseProcess, activeChildren, bindBackend, currentProcess, parentProcess, useStartMethodBackend } from './process.ts';
import { backendNamed, chooseStartMethod, currentStartMethod, startMethods } from './internal/start-method.ts';
import { isMain } from './bootstrap/main-guard.ts';
import { descendants, killTree } from './process-tree.ts';
import type { Backend, BackendName } from './backends/backend.ts';
import { Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, SEM_VALUE_MAX, Semaphore } from './synchronize/index.ts';
import { RawArray, RawValue, SharedArray, Value } from './sharedctypes.ts';
import { Connection, Pipe } from './connection/connection.ts';
import { JoinableQueue, Queue, SimpleQueue } from './queues.ts';
import { AsyncResult, Pool as BasePool, ThreadPool, currentTask, type PoolOptions } from './pool/index.ts';
import { registerClass } from './reduction.ts';
import { partial } from './partial.ts';
import { Logger, getLogger, logToStderr } from './logging.ts';
import { NativeAddonError } from './native/binding.ts';
import { Manager, type ManagerOptions, type SyncManager } from './managers/index.ts';
import { AuthenticationError, BrokenBarrierError, BufferTooShort, Empty, Full, ProcessError, RemoteError, TimeoutError, WorkerLostError } from './errors.ts';

export type StartMethod = BackendName;

// The base Process class starts on the start method's backend (a context's class on its own).
useStartMethodBackend(() => backendNamed('start()', currentStartMethod()));

/** The number of CPUs this process may use (os.availableParallelism()). */
export function cpuCount(): number {
  return availableParallelism();
}

// A context's own subclasses keep their base class's name (Pool, Process: it shows in repr()).
// They are anonymous class expressions named by the object key on purpose: a class expression
// named Pool that extends the imported Pool breaks in the bundle (esbuild 0.28 renames neither,
// and the heritage then refers to the class itself).
function contextPool(context: Context): typeof BasePool {
  return {
    Pool: class extends BasePool {
      constructor(processes?: number, options: PoolOptions = {}) {
        super(processes, { context, ...options });
      }
    },
  }.Pool;
}

function contextProcess(): typeof BaseProcess {
  return { Process: class<A extends unknown[] = unknown[]> extends BaseProcess<A> {} }.Process as typeof BaseProcess;
}

export class Context {
  /** The Process class of this context: `new ctx.Process({ target })`, or subclass it. */
  readonly Process: typeof BaseProcess;
  /** The Pool class of this context: `new ctx.Pool(4)` runs its workers on this backend. */
  readonly Pool: typeof BasePool;
  readonly ThreadPool = ThreadPool;

  /** Starts a SyncManager whose server runs on this context's backend. */
  Manager(options: ManagerOptions = {}): Promise<SyncManager> {
    return Manager({ context: this, ...options });
  }
  readonly #method: StartMethod | undefined;

  constructor(backend: Backend | undefined) {
    this.#method = backend?.name;
    this.Pool = backend ? contextPool(this) : BasePool;
    if (backend) {
      const Process = contextProcess();
      bindBackend(Process, backend);
      this.Process = Process;
    } else {
      this.Process = BaseProcess;
    }
  }

  // Shared memory works the same between processes and between threads: one class for both.
  readonly Lock = Lock;
  readonly RLock = RLock;
  readonly Semaphore = Semaphore;
  readonly BoundedSemaphore = BoundedSemaphore;
  readonly Condition = Condition;
  readonly Event = Event;
  readonly Barrier = Barrier;
  readonly Value = Value;
  readonly SharedArray = SharedArray;
  readonly RawValue = RawValue;
  readonly RawArray = RawArray;
  readonly Queue = Queue;
  readonly SimpleQueue = SimpleQueue;
  readonly JoinableQueue = JoinableQueue;
  readonly Pipe = Pipe;
  readonly Connection = Connection;
  readonly SEM_VALUE_MAX = SEM_VALUE_MAX;
  readonly AsyncResult = AsyncResult;
  readonly currentTask = currentTask;
  readonly registerClass = registerClass;
  readonly partial = partial;
  readonly getLogger = getLogger;
  readonly logToStderr = logToStderr;
  readonly Logger = Logger;

  // The error classes, as Python's context has them (ctx.TimeoutError...): the same classes everywhere.
  readonly ProcessError = ProcessError;
  readonly BufferTooShort = BufferTooShort;
  readonly TimeoutError = TimeoutError;
  readonly AuthenticationError = AuthenticationError;
  readonly RemoteError = RemoteError;
  readonly WorkerLostError = WorkerLostError;
  readonly Empty = Empty;
  readonly Full = Full;
  readonly BrokenBarrierError = BrokenBarrierError;
  readonly NativeAddonError = NativeAddonError;

  readonly currentProcess = currentProcess;
  readonly parentProcess = parentProcess;
  readonly activeChildren = activeChildren;
  readonly cpuCount = cpuCount;
  readonly isMain = isMain;
  readonly killTree = killTree;
  readonly descendants = descendants;
  readonly getContext = getContext;
  readonly getAllStartMethods = getAllStartMethods;
  readonly setStartMethod = setStartMethod;

  /** This context's start method ('process' or 'thread'). */
  getStartMethod(): StartMethod {
    return this.#method ?? getStartMethod();
  }
}

const contexts = new Map<StartMethod | 'default', Context>();

/** The context of a start method ('process' or 'thread'), or the default one. */
export function getContext(method?: StartMethod): Context {
  const key = method === undefined ? 'default' : backendNamed('getContext()', method).name;
  let context = contexts.get(key);
  if (!context) {
    context = new Context(key === 'default' ? undefined : backendNamed('getContext()', key));
    contexts.set(key, context);
  }
  return context;
}

/** Sets the default start method, once (Python's set_start_method); `{ force: true }` sets it again. */
export function setStartMethod(method: StartMethod, options: { force?: boolean } = {}): void {
  chooseStartMethod(method, options.force === true);
}

/** The default start method; reading it fixes it, as in Python. */
/**
 * The default start method; reading it fixes it ('process' unless set), as in Python. With
 * `allowNone` (Python's allow_none), null while none was set, and nothing is fixed.
 */
export function getStartMethod(allowNone?: false): StartMethod;
export function getStartMethod(allowNone: boolean): StartMethod | null;
export function getStartMethod(allowNone = false): StartMethod | null {
  return (currentStartMethod(!allowNone) as StartMethod | undefined) ?? null;
}

export function getAllStartMethods(): StartMethod[] {
  return startMethods();
}
