// multiproc/dummy: the API over worker threads (Python's multiprocessing.dummy, but parallel).

import { getContext } from './context.ts';
import type { Process as BaseProcess } from './process.ts';
import type { Pool as BasePool } from './pool/index.ts';
import type { ManagerOptions, SyncManager } from './managers/index.ts';

const context = getContext('thread');

/** A Process that runs on a worker thread. */
export const Process = context.Process;
export type Process<A extends unknown[] = unknown[]> = BaseProcess<A>;
/** A Pool of worker threads. */
export const Pool = context.Pool;
export type Pool = BasePool;

/** Starts a SyncManager whose server runs on a worker thread of this process (Python's dummy.Manager). */
// Named by its object key: the bundle renames a function declaration that shares the root
// Manager's name (Manager2), and the name shows in stack traces and repr.
export const Manager: (options?: ManagerOptions) => Promise<SyncManager> = {
  Manager(options: ManagerOptions = {}): Promise<SyncManager> {
    return context.Manager(options);
  },
}.Manager;
export { ThreadPool, AsyncResult, currentTask } from './pool/index.ts';
export { currentProcess, parentProcess, activeChildren } from './process.ts';
export { cpuCount, getContext } from './context.ts';
export { isMain } from './bootstrap/main-guard.ts';
export { Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier } from './synchronize/index.ts';
export { Value, SharedArray, RawValue, RawArray } from './sharedctypes.ts';
export { Pipe } from './connection/connection.ts';
export { registerClass } from './reduction.ts';
export { partial } from './partial.ts';
export { getLogger, logToStderr, Logger } from './logging.ts';
export type { LogLevel, LogRecord, LogHandler } from './logging.ts';
export { Queue, SimpleQueue, JoinableQueue } from './queues.ts';
export { ProcessError, BufferTooShort, TimeoutError, AuthenticationError, RemoteError, WorkerLostError, Empty, Full, BrokenBarrierError } from './errors.ts';
