// The per-thread state that says where this code runs: in the main process, in a child process or
// in a worker thread started by multiproc, and whether that child is still importing its target.
// It lives on globalThis under a registered symbol so that two copies of the library loaded in one
// thread (say, src/ through tsx and dist/ through a dependency) still agree on it.

import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from './random.ts';

export type Role = 'main' | 'process-child' | 'thread-child';

export interface ParentInfo {
  readonly name: string;
  readonly pid: number;
  readonly ident: number;
}

export interface Runtime {
  role: Role;
  /** True while a child imports its target's module (Python's "bootstrapping phase"). */
  bootstrapping: boolean;
  /**
   * Holds true in every async continuation that the import of the target's module started (an
   * unawaited `main()` at its top level, say), so those cannot start processes either.
   */
  importing: AsyncLocalStorage<boolean>;
  /** True while the import guard's hooks watch those continuations: they slow every promise of this thread. */
  importWatched: boolean;
  /** The Process identity of this process: [] in the main process, [1] in Process-1, [1, 2] in Process-1:2. */
  identity: number[];
  /** Counts the processes this process has created, for their names and identities. */
  counter: number;
  parent: ParentInfo | null;
  /** The Process object that describes this process or thread (set lazily in the main process). */
  current: unknown;
  /** In a thread child: shared slots where it records the pids of the processes it forks. */
  childPids: Int32Array | null;
  /** Which of this process's threads have ended (see thread-exits.ts): shared by all of them. */
  threadExits: Int32Array | null;
  /** The pid of the program's main process: shared-memory names carry it (see resource-tracker.ts). */
  rootPid: number;
  /** Python's current_process().authkey: random in the main process, inherited by children. */
  authkey: Uint8Array;
}

const kRuntime = Symbol.for('multiproc.runtime');

type WithRuntime = typeof globalThis & { [kRuntime]?: Runtime };

export function runtime(): Runtime {
  const global = globalThis as WithRuntime;
  global[kRuntime] ??= freshRuntime();
  return global[kRuntime];
}

function freshRuntime(): Runtime {
  let authkey: Uint8Array | undefined;
  return {
    role: 'main',
    bootstrapping: false,
    importing: new AsyncLocalStorage<boolean>(),
    importWatched: false,
    identity: [],
    counter: 0,
    parent: null,
    current: undefined,
    childPids: null,
    threadExits: null,
    rootPid: process.pid,
    // Made on first use: a child, which inherits its parent's key, never generates one.
    get authkey(): Uint8Array {
      return (authkey ??= randomBytes(32));
    },
    set authkey(value: Uint8Array) {
      authkey = value;
    },
  };
}
