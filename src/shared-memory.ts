// SharedMemory (Python's multiprocessing.shared_memory.SharedMemory): a named POSIX shared memory
// segment, mapped into this process as a Uint8Array over a SharedArrayBuffer. Names are Python's:
// `new SharedMemory({ name: 'x' })` here and `SharedMemory('x')` in Python open /dev/shm/x.

import { ProcessError, describe, invalidArgument, outOfRange } from './errors.ts';
import { native } from './native/binding.ts';
import { registerReducer } from './reduction.ts';
import { programSegmentName, trackCreated, unlinkQuietly, untrack } from './resource-tracker.ts';

export interface SharedMemoryOptions {
  /** The segment's name, without the leading slash (Python's convention). @default a fresh unique name */
  name?: string;
  /** Create the segment (failing if the name exists) instead of opening an existing one. @default false */
  create?: boolean;
  /** The size in bytes, when creating. @default 0 */
  size?: number;
}

/**
 * A block of shared memory, by name.
 * @example
 * using shm = new SharedMemory({ create: true, size: 1024 });
 * shm.buf[0] = 42; // another process: new SharedMemory({ name: shm.name }).buf[0] === 42
 */
export class SharedMemory {
  readonly name: string;
  readonly size: number;
  #buffer: SharedArrayBuffer | null;
  #buf: Uint8Array | null;
  readonly #created: boolean;

  constructor(options: SharedMemoryOptions = {}) {
    const { name, create = false, size = 0 } = options;
    if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.includes('/'))) {
      throw invalidArgument(`new SharedMemory(): expected \`name\` to be a non-empty string without '/', got ${describe(name)}.`);
    }
    if (typeof create !== 'boolean') throw invalidArgument(`new SharedMemory(): expected \`create\` to be a boolean, got ${describe(create)}.`);
    if (!create && name === undefined) {
      throw invalidArgument('new SharedMemory(): give the `name` of the segment to open, or pass create: true to make a new one.');
    }
    if (create && (!Number.isSafeInteger(size) || size <= 0)) {
      throw outOfRange(`new SharedMemory(): expected \`size\` to be a positive number of bytes when creating, got ${describe(size)}.`);
    }
    const path = name === undefined ? programSegmentName() : `/${name}`;
    this.#buffer = open(path, create, size);
    this.#buf = new Uint8Array(this.#buffer);
    this.name = path.slice(1);
    this.size = this.#buffer.byteLength;
    this.#created = create;
    if (create && name !== undefined) trackCreated(path);
  }

  /** The memory: a Uint8Array over the shared buffer. Throws after close(). */
  get buf(): Uint8Array {
    if (!this.#buf) throw new ProcessError(`SharedMemory.buf: '${this.name}' was closed in this process. Open it again with new SharedMemory({ name }).`, { code: 'ERR_MP_CLOSED' });
    return this.#buf;
  }

  /** Stops using the memory in this process (the mapping goes once no view of it remains). */
  close(): void {
    this.#buf = null;
    this.#buffer = null;
  }

  /** Removes the name, so no new process can open it; who has it mapped keeps using it. */
  unlink(): void {
    unlinkQuietly(`/${this.name}`);
    untrack(`/${this.name}`);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  toString(): string {
    return `SharedMemory('${this.name}', size=${this.size}${this.#created ? ', created' : ''})`;
  }

  static {
    registerReducer(SharedMemory, 'SharedMemory', {
      reduce: (shm: SharedMemory) => shm.name,
      rebuild: (name: string) => new SharedMemory({ name }),
    });
  }
}

function open(path: string, create: boolean, size: number): SharedArrayBuffer {
  try {
    return native().shmOpen(path, create, size);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const name = path.slice(1);
    if (code === 'EEXIST') {
      throw new ProcessError(`new SharedMemory(): a segment named '${name}' already exists. Open it with { name: '${name}' } (create: false), or choose another name.`, { code: 'EEXIST', cause: error });
    }
    if (code === 'ENOENT') {
      throw new ProcessError(`new SharedMemory(): no segment named '${name}' exists (it was never created, or was unlinked). Create it with { name: '${name}', create: true, size }.`, { code: 'ENOENT', cause: error });
    }
    throw error;
  }
}
