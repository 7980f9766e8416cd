// SharedMemory (Python's multiprocessing.shared_memory.SharedMemory): a named POSIX shared memory
// segment, mapped into this process as a Uint8Array over a SharedArrayBuffer. Names are Python's:
// `new SharedMemory({ name: 'x' })` here and `SharedMemory('x')` in Python open /dev/shm/x.
// Who unlinks a segment, and when, is resource-tracker.ts's business (see docs/sharing.md#lifetime).

import { ProcessError, describe, invalidArgument, outOfRange } from './errors.ts';
import { native } from './native/binding.ts';
import { registerReducer } from './reduction.ts';
import { programSegmentName, trackCreated, unlinkQuietly, untrack } from './resource-tracker.ts';

export { ShareableList } from './shareable-list.ts';
export type { ShareableItem, ShareableValue, ShareableListOptions } from './shareable-list.ts';

export interface SharedMemoryOptions {
  /** The segment's name, without the leading slash (Python's convention). @default a fresh program-owned name */
  name?: string;
  /** Create the segment (failing if the name exists) instead of opening an existing one. @default false */
  create?: boolean;
  /** The size in bytes, when creating; ignored when opening (the segment's own size is used). @default 0 */
  size?: number;
}

/** Linux's NAME_MAX: the longest file name in /dev/shm, in bytes. */
const NAME_MAX = 255;

/**
 * A block of shared memory, by name.
 * @example
 * using shm = new SharedMemory({ create: true, size: 1024 });
 * shm.buf[0] = 42; // another process: new SharedMemory({ name: shm.name }).buf[0] === 42
 */
export class SharedMemory {
  /** The name without its leading slash, as Python reports it: pass it to open the segment elsewhere. */
  readonly name: string;
  /** The size in bytes: as created, or the existing segment's size. */
  readonly size: number;
  #buf: Uint8Array | null;
  readonly #created: boolean;

  constructor(options: SharedMemoryOptions = {}) {
    const { name, create = false, size = 0 } = validated(options);
    const path = name === undefined ? programSegmentName() : `/${name}`;
    const buffer = open(path, create, size);
    this.#buf = new Uint8Array(buffer);
    this.name = path.slice(1);
    this.size = buffer.byteLength;
    this.#created = create;
    if (create && name !== undefined) trackCreated(path);
  }

  /** The memory: a Uint8Array over the shared buffer. Throws after close(). */
  get buf(): Uint8Array {
    if (!this.#buf) {
      throw new ProcessError(`SharedMemory.buf: '${this.name}' was closed in this process. Open it again with new SharedMemory({ name: '${this.name}' }).`, { code: 'ERR_MP_CLOSED' });
    }
    return this.#buf;
  }

  /**
   * Stops using the memory in this process. The mapping itself goes when no view of it remains
   * (a SharedArrayBuffer cannot be unmapped while JS may still hold it). Closing twice is harmless.
   */
  close(): void {
    this.#buf = null;
  }

  /**
   * Removes the name, so that no process can open it any more; who has it mapped keeps using it.
   * Call it once, in one process. Unlinking a name that is already gone is harmless.
   */
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
    // As Python's __reduce__: the receiver opens the segment by name (it must not be unlinked yet).
    registerReducer(SharedMemory, 'SharedMemory', {
      reduce: (shm: SharedMemory) => shm.name,
      rebuild: (name: string) => new SharedMemory({ name }),
    });
  }
}

function validated(options: SharedMemoryOptions): SharedMemoryOptions {
  if (typeof options !== 'object' || options === null) {
    const hint = typeof options === 'string' ? ` To open a segment by name: new SharedMemory({ name: ${JSON.stringify(options)} }).` : '';
    throw invalidArgument(`new SharedMemory(): expected an options object { name, create, size }, got ${describe(options)}.${hint}`);
  }
  const { name, create = false, size = 0 } = options;
  if (name !== undefined) validateName(name);
  if (typeof create !== 'boolean') throw invalidArgument(`new SharedMemory(): expected \`create\` to be a boolean, got ${describe(create)}.`);
  if (!create && name === undefined) {
    throw invalidArgument('new SharedMemory(): give the `name` of the segment to open, or pass create: true to make a new one.');
  }
  if (typeof size !== 'number') throw invalidArgument(`new SharedMemory(): expected \`size\` to be a number of bytes, got ${describe(size)}.`);
  if (!Number.isSafeInteger(size) || size < 0 || (create && size === 0)) {
    throw outOfRange(`new SharedMemory(): expected \`size\` to be a positive integer number of bytes${create ? ' when creating' : ''}, got ${describe(size)}.`);
  }
  return { name, create, size };
}

// The name becomes a file in /dev/shm: one path component, as Python's names are.
function validateName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.includes('/') || name.includes('\0') || name === '.' || name === '..') {
    throw invalidArgument(`new SharedMemory(): expected \`name\` to be a non-empty string without '/' or NUL (not '.' or '..'), got ${describe(name)}.`);
  }
  if (Buffer.byteLength(name) > NAME_MAX) {
    throw outOfRange(`new SharedMemory(): \`name\` is ${Buffer.byteLength(name)} bytes long; a name in /dev/shm has at most ${NAME_MAX}. Choose a shorter name.`);
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
    if (typeof code === 'string' && code.startsWith('E')) {
      const action = create ? `create a segment of ${size} bytes named` : 'open the segment';
      throw new ProcessError(`new SharedMemory(): could not ${action} '${name}': ${(error as Error).message}.`, { code, cause: error });
    }
    throw error; // NativeAddonError: it already says how to fix it
  }
}
