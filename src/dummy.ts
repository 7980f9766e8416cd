// multiproc/dummy: the API over worker threads (Python's multiprocessing.dummy, but parallel).

import { getContext } from './context.ts';

const context = getContext('thread');

/** A Process that runs on a worker thread. */
export const Process = context.Process;
/** A Pool of worker threads. */
export const Pool = context.Pool;
export { ThreadPool, AsyncResult, currentTask } from './pool/index.ts';
export { currentProcess, parentProcess, activeChildren } from './process.ts';
export { cpuCount, getContext } from './context.ts';
export { isMain } from './bootstrap/main-guard.ts';
export { Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier } from './synchronize/index.ts';
export { Value, SharedArray, RawValue, RawArray } from './sharedctypes.ts';
export { Pipe } from './connection/connection.ts';
export { Queue, SimpleQueue, JoinableQueue } from './queues.ts';
export { ProcessError, BufferTooShort, TimeoutError, AuthenticationError, RemoteError, WorkerLostError, Empty, Full, BrokenBarrierError } from './errors.ts';
