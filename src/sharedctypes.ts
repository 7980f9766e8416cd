// Value, SharedArray, RawValue and RawArray: typed values in shared memory, with Python's ctypes
// typecodes. Reads and writes of one element are atomic (Atomics on the integer types; aligned
// 4- and 8-byte float accesses are single instructions on x64). As in Python, `v.value += 1` is a
// read and then a write: hold getLock() around a read-modify-write.

import { describe, invalidArgument, outOfRange, ProcessError, badNumber } from './errors.ts';
import { allocate, attach, type Slot } from './internal/arena.ts';
import { registerReducer } from './reduction.ts';
import { Lock, RLock } from './synchronize/lock.ts';

/** Node's util.inspect hook, without loading node:util. */
const inspectCustom = Symbol.for('nodejs.util.inspect.custom');

type IntArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
type View = IntArray | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

/**
 * Python's ctypes typecodes; 'l'/'L' are 64-bit as C long is on Linux x64. 'c' is a byte (c_char),
 * 'u' a character (c_wchar: 4 bytes on Linux, one Unicode code point).
 */
export type Typecode = 'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' | 'f' | 'd' | 'c' | 'u';

/** The typecodes of characters, whose arrays are also strings (`.value`). */
export type CharTypecode = 'c' | 'u';

/** The JS type of a typecode's values: bigint for 64-bit integers, a 1-character string for 'c' and 'u'. */
export type ValueOf<T extends Typecode> = T extends 'l' | 'L' | 'q' | 'Q' ? bigint : T extends CharTypecode ? string : number;

interface TypeInfo {
  View: new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => View;
  atomic: boolean;
}

const types: Record<Typecode, TypeInfo> = {
  b: { View: Int8Array, atomic: true },
  B: { View: Uint8Array, atomic: true },
  c: { View: Uint8Array, atomic: true },
  u: { View: Uint32Array, atomic: true },
  h: { View: Int16Array, atomic: true },
  H: { View: Uint16Array, atomic: true },
  i: { View: Int32Array, atomic: true },
  I: { View: Uint32Array, atomic: true },
  l: { View: BigInt64Array, atomic: true },
  L: { View: BigUint64Array, atomic: true },
  q: { View: BigInt64Array, atomic: true },
  Q: { View: BigUint64Array, atomic: true },
  f: { View: Float32Array, atomic: false },
  d: { View: Float64Array, atomic: false },
};

/** The lock option: true (a new RLock, as Python's default), false (none), or a lock to use. */
export type LockOption = boolean | Lock | RLock;

export interface SharedOptions {
  /** @default true */
  lock?: LockOption;
}

function typeInfo(where: string, typecode: unknown): TypeInfo {
  if (typeof typecode !== 'string' || !Object.hasOwn(types, typecode)) {
    throw invalidArgument(`${where}: expected a typecode of ${Object.keys(types).map((t) => `'${t}'`).join(', ')}, got ${describe(typecode)}.`, 'ERR_MP_BAD_TYPECODE');
  }
  return types[typecode as Typecode];
}

function lockFor(where: string, option: LockOption | undefined): Lock | RLock | null {
  if (option === undefined || option === true) return new RLock();
  if (option === false) return null;
  if (option instanceof Lock || option instanceof RLock) return option;
  throw invalidArgument(`${where}: expected \`lock\` to be true, false, a Lock or an RLock, got ${describe(option)}.`);
}

// Converts between a typecode's JS values and the numbers or bigints the typed array holds.
function toStored(where: string, typecode: Typecode, value: unknown): number | bigint {
  if (typecode === 'c') {
    if (typeof value === 'string' && value.length === 1 && value.charCodeAt(0) < 256) return value.charCodeAt(0);
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 256) return value;
    // Python's Value('c', b'a'): a bytes object of one byte.
    if (value instanceof Uint8Array && value.length === 1) return value[0] as number;
    throw invalidArgument(`${where}: typecode 'c' holds one byte: a 1-character string, a number from 0 to 255 or a 1-byte Buffer, got ${describe(value)}.`);
  }
  if (typecode === 'u') {
    if (typeof value === 'string' && value.length > 0 && value.length === String.fromCodePoint(value.codePointAt(0) as number).length) return value.codePointAt(0) as number;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0x10ffff) return value;
    throw invalidArgument(`${where}: typecode 'u' holds one character: a 1-character string (one code point) or a number from 0 to 0x10FFFF, got ${describe(value)}.`);
  }
  const bigints = typecode === 'l' || typecode === 'L' || typecode === 'q' || typecode === 'Q';
  const floats = typecode === 'f' || typecode === 'd';
  if (bigints) {
    if (typeof value === 'bigint') return value;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  } else if (typeof value === 'number' && (floats || Number.isInteger(value))) {
    // As ctypes does, an integer typecode refuses a fraction (1.5, NaN) rather than truncate it.
    return value;
  }
  throw invalidArgument(`${where}: typecode '${typecode}' holds ${bigints ? 'a bigint (64-bit integer)' : floats ? 'a number' : 'an integer (a number)'}, got ${describe(value)}.`);
}

/**
 * `value` as an item of `typecode` would hold it (a number for 'l' becomes a bigint), or a
 * TypeError naming `where`: for a manager's Array, which holds plain values of one typecode.
 */
export function typedItem(where: string, typecode: string, value: unknown): unknown {
  typeInfo(where, typecode);
  return fromStored(typecode as Typecode, toStored(where, typecode as Typecode, value));
}

/** The largest Unicode code point: a 'u' item above it is no character. */
const MAX_CODE_POINT = 0x10ffff;

function fromStored<T extends Typecode>(typecode: T, stored: number | bigint): ValueOf<T> {
  if (typecode === 'c') return String.fromCharCode(stored as number) as ValueOf<T>;
  if (typecode === 'u') return String.fromCodePoint(stored as number) as ValueOf<T>;
  return stored as ValueOf<T>;
}

let attaching: Slot | undefined;

/** The typed array of a new object: fresh shared memory, or the slot being attached. */
function viewFor(info: TypeInfo, length: number): { slot: Slot; view: View } {
  const bytes = Math.max(1, length) * (info.View as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const placed = attaching ? attach(attaching) : allocate(bytes);
  attaching = undefined;
  return { slot: { segment: placed.segment, offset: placed.offset }, view: new info.View(placed.buffer, placed.offset, length) };
}

function load(info: TypeInfo, view: View, index: number): number | bigint {
  return info.atomic ? Atomics.load(view as IntArray, index) : (view[index] as number);
}

function store(info: TypeInfo, view: View, index: number, value: number | bigint): void {
  if (info.atomic) Atomics.store(view as IntArray, index, value as number);
  else view[index] = value as number;
}

/**
 * One typed value in shared memory, with a lock (an RLock unless `lock` says otherwise).
 * @example
 * const counter = new Value('i', 0);
 * const lock = counter.getLock(); await lock.acquire(); counter.value += 1; lock.release();
 */
export class Value<T extends Typecode = Typecode> {
  readonly typecode: T;
  readonly #info: TypeInfo;
  readonly #view: View;
  readonly #slot: Slot;
  readonly #lock: Lock | RLock | null;

  /** `initial` of a 'c' Value may also be a 1-byte Buffer, as Python's `Value('c', b'a')`. */
  constructor(typecode: T, initial?: ValueOf<T> | (T extends 'c' ? Uint8Array : never), options: SharedOptions = {}) {
    const where = `new ${new.target.name}()`;
    this.#info = typeInfo(where, typecode);
    this.typecode = typecode;
    this.#lock = rebuildingLock !== undefined ? rebuildingLock : new.target === RawValue ? null : lockFor(where, options.lock);
    const fresh = attaching === undefined;
    const { slot, view } = viewFor(this.#info, 1);
    this.#slot = slot;
    this.#view = view;
    if (fresh && initial !== undefined) store(this.#info, view, 0, toStored(where, typecode, initial));
  }

  /** The value, read atomically. */
  get value(): ValueOf<T> {
    return fromStored(this.typecode, load(this.#info, this.#view, 0));
  }

  /** Writes the value atomically. */
  set value(value: ValueOf<T>) {
    store(this.#info, this.#view, 0, toStored(`${this.constructor.name}.value`, this.typecode, value));
  }

  /** The lock guarding read-modify-write sequences; throws for a RawValue or `lock: false`. */
  getLock(): Lock | RLock {
    if (!this.#lock) throw new ProcessError(`${this.constructor.name}.getLock(): this value has no lock (created as RawValue or with lock: false). Create it with new Value(typecode, initial) to get one.`, { code: 'ERR_MP_NO_LOCK' });
    return this.#lock;
  }

  toString(): string {
    return `<${this.constructor.name}('${this.typecode}', ${String(this.value)})>`;
  }

  /** console.log() shows the value, as Python's repr does. */
  [inspectCustom](): string {
    return this.toString();
  }

  static {
    registerReducer(Value, 'Value', {
      reduce: (v: Value) => ({ typecode: v.typecode, slot: v.#slot, lock: v.#lock, raw: v instanceof RawValue }),
      rebuild: ({ typecode, slot, lock, raw }: { typecode: Typecode; slot: Slot; lock: Lock | RLock | null; raw: boolean }) =>
        rebuilding(slot, lock, () => (raw ? new RawValue(typecode) : new Value(typecode))),
    });
  }
}

/** A Value without a lock (Python's RawValue). */
export class RawValue<T extends Typecode = Typecode> extends Value<T> {}

/**
 * SharedArray's class: the type of its instances has no `value` and `raw`, which only arrays of
 * characters have; the exported SharedArray adds them to the arrays whose typecode may have them.
 */
class SharedArrayBase<T extends Typecode = Typecode> {
  readonly typecode: T;
  readonly length: number;
  readonly #info: TypeInfo;
  readonly #view: View;
  readonly #slot: Slot;
  readonly #lock: Lock | RLock | null;

  /** `sizeOrInitial`: a length (zero-filled) or the initial values. */
  constructor(typecode: T, sizeOrInitial: number | Iterable<ValueOf<T>>, options: SharedOptions = {}) {
    const where = `new ${new.target.name}()`;
    this.#info = typeInfo(where, typecode);
    this.typecode = typecode;
    const iterable = typeof (sizeOrInitial as Partial<Iterable<unknown>> | null)?.[Symbol.iterator] === 'function';
    const initial = typeof sizeOrInitial !== 'number' && iterable ? [...sizeOrInitial] : undefined;
    const length = initial ? initial.length : sizeOrInitial;
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      const message = `${where}: expected a length (a non-negative integer) or an iterable of initial values, got ${describe(sizeOrInitial)}.`;
      throw badNumber(length, message);
    }
    this.length = length as number;
    this.#lock = rebuildingLock !== undefined ? rebuildingLock : new.target === RawArrayBase ? null : lockFor(where, options.lock);
    const fresh = attaching === undefined;
    const { slot, view } = viewFor(this.#info, this.length);
    this.#slot = slot;
    this.#view = view;
    if (fresh && initial) initial.forEach((item, i) => store(this.#info, view, i, toStored(`${where} (item ${i})`, typecode, item)));
  }

  /** The element at `index` (negative: from the end). */
  get(index: number): ValueOf<T> {
    const at = this.#index('get', index);
    const stored = load(this.#info, this.#view, at);
    if (this.typecode === 'u' && (stored as number) > MAX_CODE_POINT) throw this.#noCharacter(at, stored as number);
    return fromStored(this.typecode, stored);
  }

  // Only the view can write such a number into a 'u' array. Python's c_wchar read of it raises
  // ValueError ("character U+110000 is not in range"): so does get(), naming where it is.
  #noCharacter(index: number, code: number): RangeError {
    return outOfRange(
      `${this.constructor.name}.get(${index}): this 'u' array's item ${index} holds 0x${code.toString(16).toUpperCase()}, which is no character (a code point is 0 to 0x10FFFF); ` +
        'it was written through .view. Write characters with set(), or code points in that range through the view.',
    );
  }

  set(index: number, value: ValueOf<T>): void {
    store(this.#info, this.#view, this.#index('set', index), toStored(`${this.constructor.name}.set()`, this.typecode, value));
  }

  /** A plain copy of the elements. */
  toArray(): ValueOf<T>[] {
    return Array.from({ length: this.length }, (_, i) => this.get(i));
  }

  /** The typed array over the shared memory itself: fast bulk access, no per-element checks. */
  get view(): View {
    return this.#view;
  }

  // The `value` of a 'c' or 'u' array (see CharArrayMembers).
  #text(): string {
    this.#charsOnly('value');
    const view = this.#view as Uint8Array | Uint32Array;
    const end = view.indexOf(0);
    const length = end < 0 ? this.length : end;
    if (this.typecode === 'c') return Buffer.from(view.buffer, view.byteOffset, length).toString('latin1');
    // In slices: a spread of a long array would overflow the stack. A code point that no
    // character has (written through the view) reads as U+FFFD.
    let text = '';
    for (let at = 0; at < length; at += 8192) {
      const codes = Array.from(view.subarray(at, Math.min(length, at + 8192)), (code) => (code <= MAX_CODE_POINT ? code : 0xfffd));
      text += String.fromCodePoint(...codes);
    }
    return text;
  }

  #setText(text: unknown): void {
    this.#charsOnly('value');
    const where = `${this.constructor.name}.value`;
    if (typeof text !== 'string') throw invalidArgument(`${where}: expected a string, got ${describe(text)}.`);
    const chars = [...text];
    if (chars.length > this.length) throw outOfRange(`${where}: the string has ${chars.length} characters, more than the array's ${this.length}.`);
    // Every character checked before any is written: a refused string leaves the array as it was.
    const codes = chars.map((char, i) => toStored(`${where} (character ${i})`, this.typecode, char));
    codes.forEach((code, i) => store(this.#info, this.#view, i, code));
    if (codes.length < this.length) store(this.#info, this.#view, codes.length, 0);
  }

  // The `raw` of a 'c' array (see ByteArrayMembers).
  #bytes(): Uint8Array {
    this.#charsOnly('raw', 'c');
    return (this.#view as Uint8Array).slice();
  }

  #setBytes(bytes: unknown): void {
    this.#charsOnly('raw', 'c');
    const where = `${this.constructor.name}.raw`;
    const data = typeof bytes === 'string' ? Uint8Array.from(bytes, (char) => toStored(where, 'c', char) as number) : bytes;
    if (!(data instanceof Uint8Array)) throw invalidArgument(`${where}: expected a Uint8Array (or a string of 1-byte characters), got ${describe(bytes)}.`);
    if (data.length > this.length) throw outOfRange(`${where}: ${data.length} bytes are more than the array's ${this.length}.`);
    (this.#view as Uint8Array).set(data);
  }

  #charsOnly(property: string, typecodes: string = 'cu'): void {
    if (!typecodes.includes(this.typecode)) {
      const which = typecodes === 'c' ? "typecode 'c'" : "typecodes 'c' and 'u'";
      throw invalidArgument(`${this.constructor.name}.${property}: only arrays of ${which} have it (this one is '${this.typecode}'); use get(i), toArray() or view.`, 'ERR_MP_BAD_TYPECODE');
    }
  }

  getLock(): Lock | RLock {
    if (!this.#lock) throw new ProcessError(`${this.constructor.name}.getLock(): this array has no lock (created as RawArray or with lock: false). Create it with new SharedArray(...) to get one.`, { code: 'ERR_MP_NO_LOCK' });
    return this.#lock;
  }

  [Symbol.iterator](): Iterator<ValueOf<T>> {
    return this.toArray()[Symbol.iterator]();
  }

  // A negative index counts from the end, as in Python (and ShareableList): -1 is the last element.
  #index(method: string, index: number): number {
    if (!Number.isInteger(index) || index < -this.length || index >= this.length) {
      throw outOfRange(`${this.constructor.name}.${method}(): index ${describe(index)} is out of range ${-this.length}..${this.length - 1}.`);
    }
    return index < 0 ? index + this.length : index;
  }

  toString(): string {
    return `<${this.constructor.name}('${this.typecode}', [${this.toArray().map(String).join(', ')}])>`;
  }

  /** console.log() shows the items (the first hundred), as Python's repr does. */
  [inspectCustom](): string {
    if (this.length <= 100) return this.toString();
    const shown = Array.from({ length: 100 }, (_, i) => String(this.get(i)));
    return `<${this.constructor.name}('${this.typecode}', [${shown.join(', ')}, ... ${this.length - 100} more])>`;
  }

  static {
    // Its users' name for it, in its errors (`new ${new.target.name}()`) and descriptions.
    Object.defineProperty(this, 'name', { value: 'SharedArray' });
    // On every array at run time (a wrong typecode throws, naming it); in the type only where it fits.
    Object.defineProperties(this.prototype, {
      value: {
        get(this: SharedArrayBase) {
          return this.#text();
        },
        set(this: SharedArrayBase, text: unknown) {
          this.#setText(text);
        },
        configurable: true,
      },
      raw: {
        get(this: SharedArrayBase) {
          return this.#bytes();
        },
        set(this: SharedArrayBase, bytes: unknown) {
          this.#setBytes(bytes);
        },
        configurable: true,
      },
    });
    registerReducer(SharedArrayBase, 'SharedArray', {
      reduce: (a: SharedArrayBase) => ({ typecode: a.typecode, length: a.length, slot: a.#slot, lock: a.#lock, raw: a instanceof RawArrayBase }),
      rebuild: ({ typecode, length, slot, lock, raw }: { typecode: Typecode; length: number; slot: Slot; lock: Lock | RLock | null; raw: boolean }) =>
        rebuilding(slot, lock, () => (raw ? new RawArrayBase(typecode, length) : new SharedArrayBase(typecode, length))),
    });
  }
}

class RawArrayBase<T extends Typecode = Typecode> extends SharedArrayBase<T> {
  static {
    Object.defineProperty(this, 'name', { value: 'RawArray' });
  }
}

/** What a 'c' or 'u' array has besides (and what an array whose typecode may be one of them has). */
export interface CharArrayMembers {
  /**
   * The array as a string, up to its first NUL (Python's `.value` of a c_char or c_wchar array).
   * Setting it writes the characters and, when they are fewer than the length, a NUL after them;
   * a longer string is refused. As any read-modify-write, hold getLock() where others write.
   */
  get value(): string;
  set value(text: string);
}

/** What a 'c' array has besides. */
export interface ByteArrayMembers {
  /**
   * All the bytes, NULs included (Python's `.raw`): a copy. Setting it writes the bytes at the
   * start (the rest is left as it was); more bytes than the length are refused.
   */
  get raw(): Uint8Array;
  set raw(bytes: Uint8Array | string);
}

/**
 * `value` and `raw` where the typecode may have them: absent from an array of numbers, so that
 * `ints.value` is a type error ("Property 'value' does not exist"), not a `never`.
 */
type CharMembersOf<T extends Typecode> = ([T] extends [Exclude<Typecode, CharTypecode>] ? unknown : CharArrayMembers) & ([T] extends [Exclude<Typecode, 'c'>] ? unknown : ByteArrayMembers);

/** A SharedArray of typecode T: its members, and `value`/`raw` for arrays of characters. */
export type SharedArray<T extends Typecode = Typecode> = SharedArrayBase<T> & CharMembersOf<T>;
/** A RawArray of typecode T. */
export type RawArray<T extends Typecode = Typecode> = RawArrayBase<T> & CharMembersOf<T>;

export interface SharedArrayConstructor {
  /** `sizeOrInitial`: a length (zero-filled) or the initial values. */
  new <T extends Typecode>(typecode: T, sizeOrInitial: number | Iterable<ValueOf<T>>, options?: SharedOptions): SharedArray<T>;
  readonly prototype: SharedArray;
}

export interface RawArrayConstructor {
  /** `options` are accepted and ignored: a RawArray has no lock. */
  new <T extends Typecode>(typecode: T, sizeOrInitial: number | Iterable<ValueOf<T>>, options?: SharedOptions): RawArray<T>;
  readonly prototype: RawArray;
}

/**
 * A fixed-length typed array in shared memory (Python's multiprocessing.Array).
 * @example
 * const a = new SharedArray('d', [1, 2, 3]); a.set(0, 4.5); a.view[1] = 7;
 */
export const SharedArray = SharedArrayBase as SharedArrayConstructor;

/** A SharedArray without a lock (Python's RawArray). */
export const RawArray = RawArrayBase as RawArrayConstructor;

let rebuildingLock: Lock | RLock | null | undefined;

function rebuilding<R>(slot: Slot, lock: Lock | RLock | null, build: () => R): R {
  attaching = slot;
  rebuildingLock = lock;
  try {
    return build();
  } finally {
    attaching = undefined;
    rebuildingLock = undefined;
  }
}
