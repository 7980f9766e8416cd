// ShareableList (Python's multiprocessing.shared_memory.ShareableList): a fixed-length list of
// numbers, booleans, strings, bytes and null in one shared-memory segment, in CPython's own layout,
// so that a list made here opens in Python's ShareableList(name=...) and the other way round.
//
// The segment, as CPython 3.11 writes it (native byte order, every part 8-byte aligned):
//   0                    int64   N, the number of items
//   8                    int64 × (N + 1)   where each item's slot starts, from the data area's start
//   (N + 2) × 8          the data area: one slot per item (8 bytes, or a multiple of 8 for str/bytes)
//   then                 8 bytes × N: each item's struct format, NUL-padded ('q', 'd', 'xxxxxxx?', 'xxxxxx?x', '16s')
//   then                 int8 × N: how to read each item back (0 plain, 1 str, 2 bytes, 3 None)
// No lock guards it, in Python or here: hold a Lock when processes write items others read.

import { endianness } from 'node:os';
import { ProcessError, describe, invalidArgument, outOfRange } from './errors.ts';
import { registerReducer } from './reduction.ts';
import { SharedMemory } from './shared-memory.ts';

/** What an item can be set to: int (number or bigint), float, bool, str, bytes, None. */
export type ShareableItem = number | bigint | boolean | string | Uint8Array | null;
/** What an item reads as: an int is a number when it is a safe integer, a bigint otherwise; bytes are a Buffer (a copy). */
export type ShareableValue = number | bigint | boolean | string | Buffer | null;

export interface ShareableListOptions {
  /** The segment's name: created with the sequence, or opened when there is none. @default a fresh program-owned name */
  name?: string;
}

const LE = endianness() === 'LE';
const INT = 'q';
const FLOAT = 'd';
const BOOL = 'xxxxxxx?';
const NONE = 'xxxxxx?x';
/** CPython's back-transform codes. */
const PLAIN = 0;
const STR = 1;
const BYTES = 2;
const NONE_CODE = 3;
/** A struct format has at most 8 characters: '9999999s' is the largest str/bytes slot. */
const MAX_SLOT = 9_999_999;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** An item ready to be written: its format, back-transform code and, for str/bytes, its bytes. */
interface Packed {
  format: string;
  code: number;
  value: number | bigint | boolean | Uint8Array | null;
}

interface Memory {
  bytes: Uint8Array;
  view: DataView;
}

/**
 * A list in shared memory whose length and str/bytes slot sizes are fixed at creation.
 * @example
 * const list = new ShareableList([1, 2.5, 'text', null]);      // another process: new ShareableList(null, { name: list.shm.name })
 * list.set(0, 42); list.get(2); // 'text'
 */
export class ShareableList implements Iterable<ShareableValue> {
  /** The segment holding the list: close() and unlink() it as any SharedMemory. */
  readonly shm: SharedMemory;
  /** The number of items (fixed). */
  readonly length: number;
  /** Where each slot starts, relative to the data area; one more entry marks the end. */
  readonly #offsets: number[];
  #memory: Memory | undefined;

  /** `new ShareableList(items, { name? })` creates a list; `new ShareableList(null, { name })` opens one. */
  constructor(sequence?: Iterable<ShareableItem> | null, options: ShareableListOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgument(`new ShareableList(): expected options { name }, got ${describe(options)}.`);
    const { name } = options;
    if (name !== undefined && typeof name !== 'string') throw invalidArgument(`new ShareableList(): expected \`name\` to be a string, got ${describe(name)}.`);
    if (sequence == null && name !== undefined) {
      this.shm = openSegment(name);
      const layout = readLayout(this.shm);
      this.length = layout.length;
      this.#offsets = layout.offsets;
      return;
    }
    const packed = packAll(sequence ?? []);
    this.length = packed.length;
    this.#offsets = [0];
    for (const item of packed) this.#offsets.push(this.#offsets.at(-1)! + slotSize(item.format));
    this.shm = createSegment(name, sizeOf(this.length, this.#offsets.at(-1)!));
    this.#writeAll(packed);
  }

  /** The item at `index` (negative counts from the end, as in Python). */
  get(index: number): ShareableValue {
    const position = this.#position('get', index);
    const memory = this.#open('get');
    const offset = this.#dataStart + this.#offsets[position]!;
    const format = this.#formatAt(memory, position);
    const code = memory.view.getInt8(this.#codesStart + position);
    return unpack(memory, offset, format, code, this.shm.name);
  }

  /**
   * Sets the item at `index`. Any item may become a number, bigint, boolean or null; a str or bytes
   * must fit the slot's size, fixed at creation (8 bytes for a number, bool or null).
   */
  set(index: number, value: ShareableItem): void {
    const position = this.#position('set', index);
    const memory = this.#open('set');
    const item = pack(`ShareableList.set(): the value for index ${index}`, value);
    const allocated = this.#offsets[position + 1]! - this.#offsets[position]!;
    if (item.value instanceof Uint8Array) {
      if (item.value.byteLength > allocated) throw tooLarge(index, item, allocated);
      // Python keeps a str/bytes slot's own format; any other slot becomes '<allocated>s'.
      const current = this.#formatAt(memory, position);
      item.format = current.endsWith('s') ? current : `${allocated}s`;
    }
    this.#write(memory, position, item);
  }

  /** The struct formats of all items, concatenated (Python's `format`), e.g. 'qd8sxxxxxxx?'. */
  get format(): string {
    const memory = this.#open('format');
    return Array.from({ length: this.length }, (_, i) => this.#formatAt(memory, i)).join('');
  }

  /** How many items equal `value` (bytes by content, an int as number or bigint alike). */
  count(value: ShareableItem): number {
    return this.toArray().filter((item) => same(item, value)).length;
  }

  /** The first index whose item equals `value`; throws a RangeError when there is none (Python's ValueError). */
  index(value: ShareableItem): number {
    const found = this.toArray().findIndex((item) => same(item, value));
    if (found < 0) {
      throw outOfRange(`ShareableList.index(): ${describe(value)} is not in the list '${this.shm.name}'. Check with count() first.`, 'ERR_MP_VALUE_NOT_FOUND');
    }
    return found;
  }

  /** A plain copy of the items. */
  toArray(): ShareableValue[] {
    return Array.from({ length: this.length }, (_, i) => this.get(i));
  }

  [Symbol.iterator](): Iterator<ShareableValue> {
    return this.toArray()[Symbol.iterator]();
  }

  /** Closes the segment in this process (as `list.shm.close()`); the list is unusable here after it. */
  [Symbol.dispose](): void {
    this.shm.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.shm.close();
  }

  toString(): string {
    let items = '<closed>';
    try {
      items = `[${this.toArray().map(show).join(', ')}]`;
    } catch {
      // closed in this process: the name is still worth printing
    }
    return `ShareableList(${items}, name='${this.shm.name}')`;
  }

  get #dataStart(): number {
    return (this.length + 2) * 8;
  }

  get #formatsStart(): number {
    return this.#dataStart + this.#offsets[this.length]!;
  }

  get #codesStart(): number {
    return this.#formatsStart + this.length * 8;
  }

  #position(method: string, index: number): number {
    if (typeof index !== 'number' || !Number.isInteger(index)) {
      throw invalidArgument(`ShareableList.${method}(): expected an integer index, got ${describe(index)}.`);
    }
    const position = index < 0 ? index + this.length : index;
    if (position < 0 || position >= this.length) {
      const range = this.length === 0 ? 'the list is empty' : `the list has ${this.length} items: -${this.length}..${this.length - 1}`;
      throw outOfRange(`ShareableList.${method}(): index ${index} is out of range (${range}).`);
    }
    return position;
  }

  // The current view of the memory; throws the list's own error once shm.close() was called.
  #open(method: string): Memory {
    let bytes: Uint8Array;
    try {
      bytes = this.shm.buf;
    } catch (error) {
      throw new ProcessError(`ShareableList.${method}(): the list's segment '${this.shm.name}' was closed in this process. Open it again with new ShareableList(null, { name: '${this.shm.name}' }).`, { code: 'ERR_MP_CLOSED', cause: error });
    }
    if (this.#memory?.bytes !== bytes) this.#memory = { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    return this.#memory;
  }

  #formatAt(memory: Memory, position: number): string {
    const start = this.#formatsStart + position * 8;
    let end = start + 8;
    while (end > start && memory.bytes[end - 1] === 0) end--;
    return Buffer.from(memory.bytes.buffer, memory.bytes.byteOffset + start, end - start).toString('latin1');
  }

  // Python's order: the format, then the back-transform code, then the value.
  #write(memory: Memory, position: number, item: Packed): void {
    const formatAt = this.#formatsStart + position * 8;
    memory.bytes.fill(0, formatAt, formatAt + 8);
    memory.bytes.set(encoder.encode(item.format), formatAt);
    memory.view.setInt8(this.#codesStart + position, item.code);
    const offset = this.#dataStart + this.#offsets[position]!;
    const { bytes, view } = memory;
    const { value } = item;
    if (item.format === INT) view.setBigInt64(offset, value as bigint, LE);
    else if (item.format === FLOAT) view.setFloat64(offset, value as number, LE);
    else if (value instanceof Uint8Array) {
      bytes.fill(0, offset, offset + slotSize(item.format)); // 's' pads with NULs, erasing a longer old value
      bytes.set(value, offset);
    } else {
      bytes.fill(0, offset, offset + 8); // the 'x' pad bytes are zeros; '?' is 0 or 1
      if (item.format === BOOL && value === true) bytes[offset + 7] = 1;
    }
  }

  #writeAll(items: Packed[]): void {
    const memory = this.#open('constructor');
    memory.view.setBigInt64(0, BigInt(this.length), LE);
    this.#offsets.forEach((offset, i) => memory.view.setBigInt64(8 * (i + 1), BigInt(offset), LE));
    items.forEach((item, i) => this.#write(memory, i, item));
  }

  static {
    // As Python's __reduce__: the list travels by name and is opened on the other side.
    registerReducer(ShareableList, 'ShareableList', {
      reduce: (list: ShareableList) => list.shm.name,
      rebuild: (name: string) => new ShareableList(null, { name }),
    });
  }
}

/** struct.calcsize of the whole segment: the header, the data, the formats and the codes. */
function sizeOf(length: number, dataBytes: number): number {
  return 8 + 8 * (length + 1) + dataBytes + 8 * length + length;
}

function slotSize(format: string): number {
  return format.endsWith('s') ? Number(format.slice(0, -1)) : 8;
}

function packAll(sequence: Iterable<ShareableItem>): Packed[] {
  if (typeof sequence === 'string' || typeof (sequence as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function') {
    throw invalidArgument(
      `new ShareableList(): expected an iterable of items (an array), got ${describe(sequence)}. To open an existing list by name: new ShareableList(null, { name }).`,
    );
  }
  return Array.from(sequence, (item, i) => {
    const packed = pack(`new ShareableList(): item ${i}`, item);
    // A str/bytes slot: the next multiple of 8 above its length in bytes, as in CPython. (CPython
    // 3.11 counts a str's characters, not its UTF-8 bytes, and so cuts non-ASCII strings short,
    // python/cpython#88336; the offsets are stored, so Python reads our larger slots all the same.)
    if (packed.value instanceof Uint8Array) {
      const size = 8 * (Math.floor(packed.value.byteLength / 8) + 1);
      if (size > MAX_SLOT) throw outOfRange(`new ShareableList(): item ${i} is ${packed.value.byteLength} bytes; a str or bytes item holds less than ${MAX_SLOT - 7} (its struct format must fit in 8 characters).`);
      packed.format = `${size}s`;
    }
    return packed;
  });
}

/** The format, code and value to store for `value`; str/bytes get their format from the slot. */
function pack(where: string, value: unknown): Packed {
  switch (typeof value) {
    case 'boolean':
      return { format: BOOL, code: PLAIN, value };
    case 'number':
      // JS has one number type: integers (but -0) are stored as Python ints, the rest as floats.
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return { format: INT, code: PLAIN, value: BigInt(value) };
      return { format: FLOAT, code: PLAIN, value };
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) throw outOfRange(`${where} is ${value}n: an int item is 64-bit, from -(2n ** 63n) to 2n ** 63n - 1n. Store larger numbers as strings.`);
      return { format: INT, code: PLAIN, value };
    case 'string':
      if (/\p{Cs}/u.test(value)) throw invalidArgument(`${where} is a string with a lone surrogate, which UTF-8 (and Python) cannot encode. Fix the string, or store it as bytes.`);
      return { format: '', code: STR, value: encoder.encode(value) };
    case 'object':
      if (value === null) return { format: NONE, code: NONE_CODE, value: null };
      if (value instanceof Uint8Array) return { format: '', code: BYTES, value: new Uint8Array(value) };
  }
  throw invalidArgument(
    `${where} is ${describe(value)}: a ShareableList holds numbers, bigints (64-bit), booleans, strings, bytes (Uint8Array or Buffer) and null. ` +
      'Store other values as a string (JSON.stringify), or use a Manager list.',
  );
}

function unpack(memory: Memory, offset: number, format: string, code: number, name: string): ShareableValue {
  if (code === NONE_CODE) return null;
  if (code < PLAIN || code > NONE_CODE) throw notAList(name, `an unknown back-transform code ${code}`);
  if (format === INT) {
    const int = memory.view.getBigInt64(offset, LE);
    return int >= BigInt(Number.MIN_SAFE_INTEGER) && int <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(int) : int;
  }
  if (format === FLOAT) return memory.view.getFloat64(offset, LE);
  if (format === BOOL) return memory.bytes[offset + 7] !== 0;
  if (format === NONE) return memory.bytes[offset + 6] !== 0;
  if (!/^\d+s$/.test(format)) throw notAList(name, `an unsupported struct format '${format}'`);
  let end = offset + slotSize(format);
  // CPython strips trailing NULs from str and bytes (python/cpython#96779): so do we, to read alike.
  if (code !== PLAIN) while (end > offset && memory.bytes[end - 1] === 0) end--;
  const raw = memory.bytes.subarray(offset, end);
  return code === STR ? decoder.decode(raw) : Buffer.from(raw);
}

/** True when a stored item equals `value`: by content for bytes, by numeric value for number/bigint. */
function same(item: ShareableValue, value: unknown): boolean {
  if (item instanceof Uint8Array) return value instanceof Uint8Array && Buffer.from(item).equals(value);
  if (typeof item === 'bigint' && typeof value === 'number') return Number.isInteger(value) && BigInt(value) === item;
  if (typeof item === 'number' && typeof value === 'bigint') return Number.isInteger(item) && BigInt(item) === value;
  return item === value;
}

function show(item: ShareableValue): string {
  if (item === null) return 'null';
  if (typeof item === 'string') return JSON.stringify(item);
  if (typeof item === 'bigint') return `${item}n`;
  if (item instanceof Uint8Array) return `<Buffer ${item.toString('hex')}>`;
  return String(item);
}

function tooLarge(index: number, item: Packed, allocated: number): RangeError {
  const kind = item.code === STR ? 'string' : 'bytes';
  const size = (item.value as Uint8Array).byteLength;
  return outOfRange(
    `ShareableList.set(): the ${kind} for index ${index} is ${size} bytes${kind === 'string' ? ' in UTF-8' : ''}, but that slot holds ${allocated}: ` +
      `slot sizes are fixed when the list is created. Create the list with an item of at least ${size} bytes at that index (a placeholder such as ' '.repeat(${size})), or store a shorter value.`,
  );
}

function notAList(name: string, what: string): ProcessError {
  return new ProcessError(`ShareableList: the segment '${name}' holds ${what}: it is not a ShareableList (or was overwritten). Open it with new SharedMemory({ name: '${name}' }) instead.`, {
    code: 'ERR_MP_NOT_A_SHAREABLE_LIST',
  });
}

function createSegment(name: string | undefined, size: number): SharedMemory {
  try {
    return new SharedMemory(name === undefined ? { create: true, size } : { name, create: true, size });
  } catch (error) {
    if ((error as ProcessError).code !== 'EEXIST') throw error;
    throw new ProcessError(`new ShareableList(): a segment named '${name}' already exists. Open the list with new ShareableList(null, { name: '${name}' }), or choose another name.`, { code: 'EEXIST', cause: error });
  }
}

function openSegment(name: string): SharedMemory {
  try {
    return new SharedMemory({ name });
  } catch (error) {
    if ((error as ProcessError).code !== 'ENOENT') throw error;
    throw new ProcessError(`new ShareableList(): no segment named '${name}' exists (it was never created, or was unlinked). Create the list with new ShareableList(items, { name: '${name}' }).`, { code: 'ENOENT', cause: error });
  }
}

/** Reads and checks the header of an existing list: its length and slot offsets. */
function readLayout(shm: SharedMemory): { length: number; offsets: number[] } {
  const { buf } = shm;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = buf.byteLength >= 16 ? view.getBigInt64(0, LE) : -1n;
  if (header < 0n || sizeOf(Number(header), 0) > buf.byteLength) throw notAList(shm.name, `${buf.byteLength} bytes that do not start with a list header`);
  const length = Number(header);
  const offsets = Array.from({ length: length + 1 }, (_, i) => Number(view.getBigInt64(8 * (i + 1), LE)));
  const ordered = offsets.every((offset, i) => offset >= (i === 0 ? 0 : offsets[i - 1]!) && offset % 8 === 0);
  if (offsets[0] !== 0 || !ordered || sizeOf(length, offsets[length]!) > buf.byteLength) {
    throw notAList(shm.name, `a header (${length} items, data ending at ${offsets[length]}) that does not fit its ${buf.byteLength} bytes`);
  }
  return { length, offsets };
}
