// node:worker_threads, loaded when first needed. A worker thread has it already (Node's worker
// bootstrap loads it); in a process's main thread loading it takes about 4 ms, which every child
// process paid as it started (the library required it at its top level), mostly to learn what a
// child process knows: that it runs in a main thread.

import type * as WorkerThreads from 'node:worker_threads';
import { runtime } from './runtime.ts';

let loaded: typeof WorkerThreads | undefined;

export function workerThreads(): typeof WorkerThreads {
  loaded ??= process.getBuiltinModule('node:worker_threads');
  return loaded;
}

/** Whether this code runs in a process's main thread (a child process does: it need not ask). */
export function isMainThread(): boolean {
  return runtime().role === 'process-child' || workerThreads().isMainThread;
}

/** This thread's id: 0 in a process's main thread. */
export function threadId(): number {
  return runtime().role === 'process-child' ? 0 : workerThreads().threadId;
}
