// multiproc: Python's multiprocessing for TypeScript on Node.js. The default context's API.

export { Process, currentProcess, parentProcess, activeChildren } from './process.ts';
export type { ProcessOptions, EndOptions, Target } from './process.ts';
export { Context, getContext, setStartMethod, getStartMethod, getAllStartMethods, cpuCount } from './context.ts';
export type { StartMethod } from './context.ts';
export { isMain } from './bootstrap/main-guard.ts';
export type { ModuleIdentity } from './bootstrap/main-guard.ts';
export { killTree, descendants } from './process-tree.ts';
export { Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier, SEM_VALUE_MAX } from './synchronize/index.ts';
export { Value, SharedArray, RawValue, RawArray } from './sharedctypes.ts';
export { Pipe, Connection } from './connection/connection.ts';
export { Queue, SimpleQueue, JoinableQueue } from './queues.ts';
export { Pool, ThreadPool, AsyncResult, currentTask } from './pool/index.ts';
export { Manager } from './managers/index.ts';
export { registerClass } from './reduction.ts';
export { partial } from './partial.ts';
export { getLogger, logToStderr, Logger } from './logging.ts';
export type { LogLevel, LogRecord, LogHandler } from './logging.ts';
export type { ClassReducer } from './reduction.ts';
export type { PoolOptions, CallOptions, ApplyAsyncOptions, MapOptions, MapAsyncOptions, TaskContext, IMapIterator } from './pool/index.ts';
export type { PutOptions, GetOptions } from './queues.ts';
export type { Typecode, CharTypecode, ValueOf, SharedOptions, LockOption } from './sharedctypes.ts';
export { NativeAddonError } from './native/binding.ts';
export type { KillTreeOptions } from './process-tree.ts';
export type { ModuleRef } from './internal/function-ref.ts';
export type { WaitOptions } from './internal/validate.ts';
export {
  ProcessError,
  BufferTooShort,
  TimeoutError,
  AuthenticationError,
  RemoteError,
  WorkerLostError,
  Empty,
  Full,
  BrokenBarrierError,
} from './errors.ts';
