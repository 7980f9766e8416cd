// The only import of the native addon (build/Release/mp_native.node, built from native/ by
// node-gyp at `npm install`). When it is missing or broken, NativeAddonError says what was looked
// for and the command that builds it.

import { libraryRequire } from '../internal/module-loaders.ts';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { ProcessError } from '../errors.ts';

export type FutexResult = 'ok' | 'not-equal' | 'timed-out' | 'cancelled';

export interface NativeBinding {
  /** A SharedArrayBuffer over /dev/shm/<name> (name starts with '/'); create fails if it exists. */
  shmOpen(name: string, create: boolean, size: number): SharedArrayBuffer;
  shmUnlink(name: string): void;
  /** Fills `bytes` with the kernel's random bytes (getrandom). */
  randomFill(bytes: Uint8Array): void;
  futexWait(words: Int32Array, index: number, expected: number, timeoutMs?: number): 'ok' | 'not-equal' | 'timed-out';
  futexWake(words: Int32Array, index: number, count?: number): number;
  /**
   * Resolves 'ok' once the word no longer holds `expected`; the promise's `id` cancels it. A wait
   * with keepAlive false does not keep the process alive (as an unref'd timer). `sticky`: the word
   * is only ever woken with wake-all and waited on again soon (see native/futex.h).
   */
  futexWaitAsync(words: Int32Array, index: number, expected: number, timeoutMs?: number, keepAlive?: boolean, sticky?: boolean): Promise<FutexResult> & { id?: number };
  futexCancel(id: number): void;
  /**
   * How this thread's asynchronous waits wait: 'io_uring' (the kernel completes them on the event
   * loop's own fd, Linux 6.7+) or 'thread' (a waiter thread; MULTIPROC_FUTEX_WAITER=thread forces it).
   */
  futexWaiter(): 'io_uring' | 'thread';
  /** sched_yield(2): lets another runnable thread have this CPU now. */
  schedYield(): void;
  /**
   * V8's structured clone of `value` into `scratch` at `offset`: its length when it fit, or else a
   * new Uint8Array of `offset` free bytes followed by the clone. Throws a TypeError (DataCloneError).
   */
  serialize(value: unknown, scratch: Uint8Array, offset: number): number | Uint8Array;
  /** The value of a clone that serialize() wrote (the bytes may be shared memory). */
  deserialize(bytes: Uint8Array, offset: number, length: number): unknown;
  /** Whether `object` has own enumerable string-keyed properties besides its elements (indices are not listed). */
  hasNamedProperties(object: object): boolean;
  /** An uninitialized ArrayBuffer of `length` (>= 64 KiB) bytes whose memory is reused once V8 frees it (native/recycle.cc). */
  allocRecycled(length: number): ArrayBuffer;
  /** Gives the memory that allocRecycled() keeps for reuse back to the kernel. */
  trimRecycled(): void;
  /** allocRecycled()'s blocks in this process: [mapped, reused, bytes kept now]. */
  recycledStats(): [mapped: number, reused: number, keptBytes: number];
  /** Sets PR_SET_PDEATHSIG and returns the parent pid as it is now. */
  setParentDeathSignal(signal: number): number;
  /**
   * A listening socket, bound now (native/listen.cc): a Unix socket at `path` ([fd]), or TCP on
   * `host`'s first address ([fd, bound host, bound port]). Throws Node-like errors (.code EADDRINUSE...).
   */
  listenSocket(path: string, backlog: number): [fd: number];
  listenSocket(host: string, port: number, backlog: number): [fd: number, host: string, port: number];
  /**
   * Keeps a duplicate of `fd` until a process asks for `key` (32 hex digits) with takeFd(); returns
   * this process's sharer address (native/fd-share.cc, Python's resource_sharer).
   */
  shareFd(fd: number, key: string): string;
  /**
   * The fd shared under `key` at `address` by process `pid`, now this process's; -1 if it was taken
   * already. Throws ECONNREFUSED when that process has exited, EPERM when another answers there.
   */
  takeFd(address: string, key: string, pid: number): number;
  /** Closes the duplicate kept under `key` (a send that failed); false if there was none. */
  unshareFd(key: string): boolean;
}

/** Every function of the addon that the library calls; a build from older sources lacks some. */
const EXPORTS = [
  'shmOpen', 'shmUnlink', 'randomFill', 'futexWait', 'futexWake', 'futexWaitAsync', 'futexCancel', 'futexWaiter', 'schedYield',
  'serialize', 'deserialize', 'hasNamedProperties', 'allocRecycled', 'trimRecycled', 'recycledStats', 'setParentDeathSignal',
  'listenSocket', 'shareFd', 'takeFd', 'unshareFd',
] as const satisfies readonly (keyof NativeBinding)[];
// The list above names every member of NativeBinding (a compile-time check).
const everyExportListed: [Exclude<keyof NativeBinding, (typeof EXPORTS)[number]>] extends [never] ? true : never = true;
void everyExportListed;

/** The functions of NativeBinding that `binding` lacks (an addon built before they were added). */
export function missingExports(binding: object): string[] {
  return EXPORTS.filter((name) => typeof (binding as Record<string, unknown>)[name] !== 'function');
}

/** The native addon could not be loaded: built for another Node, not built, or not on Linux. */
export class NativeAddonError extends ProcessError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ERR_MP_NATIVE_ADDON', cause });
  }
}
Object.defineProperty(NativeAddonError.prototype, 'name', { value: 'NativeAddonError', enumerable: false, writable: true, configurable: true });

// The package root, two levels above this code: src/native/binding.ts, or the built
// dist/internal/multiproc.js that contains it (scripts/build.ts).
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const candidates = ['build/Release/mp_native.node', 'build/Debug/mp_native.node'].map((path) => join(packageRoot, path));

let binding: NativeBinding | undefined;
let failure: NativeAddonError | undefined;

/** The addon, loaded once; throws NativeAddonError (the same one every time) when it cannot load. */
export function native(): NativeBinding {
  if (binding) return binding;
  if (failure) throw failure;
  try {
    binding = load();
    return binding;
  } catch (error) {
    failure = error instanceof NativeAddonError ? error : new NativeAddonError(String(error), error);
    throw failure;
  }
}

/** The addon, or undefined when it cannot load (for features that have a fallback). */
export function tryNative(): NativeBinding | undefined {
  try {
    return native();
  } catch {
    return undefined;
  }
}

function load(): NativeBinding {
  const where = `platform=${process.platform} arch=${process.arch} node=${process.versions.node} abi=${process.versions.modules}`;
  if (process.platform !== 'linux') {
    throw new NativeAddonError(
      `multiproc's shared memory and locks need Linux (futex, /dev/shm); this is ${where}. ` +
        'Processes, pipes and queues work elsewhere; for shared memory, run on Linux.',
    );
  }
  const found = candidates.find((path) => existsSync(path));
  const fix = `Run \`npm rebuild multiproc\` (or \`npm run build:native\` in its folder, ${packageRoot}); it needs g++, make and python3.`;
  if (!found) {
    const looked = candidates.map((path) => relative(process.cwd(), path) || path).join(', ');
    throw new NativeAddonError(`The native addon mp_native.node is missing (looked for ${looked}; ${where}). ${fix}`);
  }
  let binding: NativeBinding;
  try {
    binding = libraryRequire()(found) as NativeBinding;
  } catch (error) {
    throw new NativeAddonError(`The native addon ${found} did not load (${where}): ${(error as Error).message}. It may have been built for another Node version. ${fix}`, error);
  }
  const missing = missingExports(binding);
  if (missing.length > 0) throw new NativeAddonError(`The native addon ${found} was built from older sources: it lacks ${missing.join(', ')} (${where}). ${fix}`);
  return binding;
}
