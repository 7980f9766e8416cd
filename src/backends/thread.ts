// The `thread` backend: a worker_threads Worker running the same bootstrap as a child process.
// Loader hooks registered with `node --import tsx` do not reach worker threads on Node 20, so the
// worker registers tsx itself first when the parent runs under it.

import type { Worker } from 'node:worker_threads';
import { workerThreads } from '../internal/threads.ts';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TAKING_OVER_THREAD, type StartMessage } from '../internal/protocol.ts';
import { bootstrapUrl } from '../bootstrap/location.ts';
import { notCloneable, type Backend, type Child } from './backend.ts';
import { noteThreadExit, threadExitMap } from '../internal/thread-exits.ts';

/** How many forked pids a thread child can record for `terminate({ tree: true })`. */
export const CHILD_PID_SLOTS = 256;

export const threadBackend: Backend = {
  name: 'thread',
  spawn(message: StartMessage): Child {
    const childPids = new SharedArrayBuffer(CHILD_PID_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const started = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    let worker: Worker;
    try {
      worker = new (workerThreads().Worker)(workerSource(), { eval: true, workerData: { ...message, childPids, started, threadExits: threadExitMap(), libraryFiles: libraryFiles() } });
    } catch (error) {
      if ((error as Error).name !== 'DataCloneError') throw error;
      throw notCloneable(message.name, error, 'no symbols, functions or class instances');
    }
    return new ThreadChild(worker, new Int32Array(childPids), new Int32Array(started));
  },
};

let cachedSource: string | undefined;

function workerSource(): string {
  cachedSource ??= bootstrapSource();
  return cachedSource;
}

// The CommonJS bootstrap is required: the worker then loads the library without starting Node's
// asynchronous module loader (src/internal/import-module.ts). Under tsx, tsx registers first.
// The built library's script and code cache come along in workerData (see libraryFiles()).
function bootstrapSource(): string {
  const bootstrap = bootstrapUrl();
  // First, the word that says this thread ran any code of its own (see ThreadChild's exit code).
  const handOver = `const { workerData } = require('node:worker_threads'); Atomics.store(new Int32Array(workerData.started), 0, 1); globalThis[Symbol.for('multiproc.library files')] = workerData.libraryFiles;`;
  if (bootstrap.pathname.endsWith('.cjs')) return `${handOver}\nrequire(${JSON.stringify(fileURLToPath(bootstrap))});`;
  return [
    handOver,
    '(async () => {',
    ...loaderRegistrations().map((url) => `  (await import(${JSON.stringify(url)})).register();`),
    `  await import(${JSON.stringify(bootstrap.href)});`,
    '})();',
  ].join('\n');
}

/**
 * The built library's script and code cache, in shared memory: its loader (dist/internal/library.cjs,
 * from scripts/library-loader.cjs) in the new thread takes them instead of reading both files. Run
 * from src/, there are none.
 */
function libraryFiles(): unknown {
  const loader = fileURLToPath(new URL('../internal/library.cjs', bootstrapUrl()));
  const library = (globalThis as Record<symbol, { sharedFiles?: () => unknown } | undefined>)[Symbol.for(`multiproc.library ${loader}`)];
  return library?.sharedFiles?.() ?? null;
}

/** tsx's registration API, when this process runs under tsx (`node --import tsx` or the tsx CLI). */
function loaderRegistrations(): string[] {
  const argv = process.execArgv.join(' ');
  if (!/(^|[\s=/])tsx([\s/]|$)/.test(argv)) return [];
  const loader = process.execArgv.find((arg) => arg.includes('/tsx/'));
  const base = loader ? (loader.startsWith('file:') ? fileURLToPath(loader) : loader) : join(process.cwd(), 'noop.js');
  try {
    const manifestPath = process.getBuiltinModule('node:module').createRequire(base).resolve('tsx/package.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      exports: Record<string, { import?: { default?: string } } | string>;
    };
    const api = manifest.exports['./esm/api'];
    const relative = typeof api === 'object' ? api.import?.default : undefined;
    return relative ? [pathToFileURL(join(dirname(manifestPath), relative)).href] : [];
  } catch {
    return []; // tsx is not resolvable from here: a .ts target then fails in the worker, naming the file
  }
}

class ThreadChild implements Child {
  readonly #worker: Worker;
  readonly #childPids: Int32Array;
  readonly ident: number;
  readonly exited: Promise<void>;
  readonly startAbandoned: Promise<boolean>;
  #exitCode: number | null = null;
  #endedBy: number | null = null;

  constructor(worker: Worker, childPids: Int32Array, started: Int32Array) {
    this.#worker = worker;
    this.#childPids = childPids;
    this.ident = worker.threadId;
    this.startAbandoned = new Promise((resolve) => {
      worker.once('exit', () => resolve(Atomics.load(started, 0) !== TAKING_OVER_THREAD));
      // Settled as the thread takes its args over, not at its exit: until then the parent keeps
      // what it sent (Process.start()). Atomics.waitAsync keeps no process alive.
      const watch = (): void => {
        const now = Atomics.load(started, 0);
        if (now === TAKING_OVER_THREAD) return resolve(false);
        const waiting = Atomics.waitAsync(started, 0, now);
        if (waiting.async) void waiting.value.then(watch);
        else watch();
      };
      watch();
    });
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        noteThreadExit(this.ident);
        // A terminated worker exits with 1, or with 0 when terminate() reached it before it ran
        // any code (during Node's start-up): both are the signal's. One that ended on its own
        // before terminate() reached it keeps its code, as a process that exited before its
        // signal does. A code is a byte, as a process's exit status (process.exit(300) is 44; -1
        // is 255, not a signal).
        const terminated = this.#endedBy !== null && (code === 1 || Atomics.load(started, 0) === 0);
        this.#exitCode = terminated ? this.#endedBy : code & 0xff;
        resolve();
      });
    });
    // An error that escaped the bootstrap (it reports its target's errors itself): print it as a
    // child process would on its stderr; the 'exit' event then reports exit code 1.
    worker.on('error', (error) => console.error(error));
  }

  get pid(): number {
    return process.pid;
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.#exitCode !== null || this.#endedBy !== null) return;
    this.#endedBy = signal === 'SIGTERM' ? -15 : -9;
    void this.#worker.terminate();
  }

  treeRoots(): number[] {
    return [...this.#childPids].filter((pid) => pid > 0);
  }

  setRef(ref: boolean): void {
    if (ref) this.#worker.ref();
    else this.#worker.unref();
  }
}
