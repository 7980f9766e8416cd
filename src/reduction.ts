// How values cross processes: by structured clone (v8.serialize), plus a registry of reducers for
// library objects that travel as a description of themselves (a segment name, a socket address)
// and are rebuilt on the other side, as CPython's reduction.py registers picklers.
//
// reduce() walks a value before it is sent. It replaces registered objects by a marker and fails
// early, naming where, on what a structured clone would break or silently corrupt: a function
// (functions travel only as targets, by reference) and a class instance whose prototype, and so
// whose methods, would be dropped.

import { DefaultDeserializer, DefaultSerializer } from 'node:v8';
import { invalidArgument, describe as describeValue } from './errors.ts';

export interface Reducer<T extends object, State> {
  /** Describes `object` as structured-cloneable data. */
  reduce(object: T): State;
  /** Rebuilds a usable object in the receiving process or thread. */
  rebuild(state: State): T;
}

interface Registered {
  name: string;
  reducer: Reducer<object, unknown>;
}

const kReduced = '\u0000multiproc:reduced';
const byPrototype = new Map<object, Registered>();
const byName = new Map<string, Registered>();

/** Registers how instances of `Class` travel; called next to the class, in its own module. */
export function registerReducer<T extends object, State>(
  Class: abstract new (...args: never[]) => T,
  name: string,
  reducer: Reducer<T, State>,
): void {
  const entry: Registered = { name, reducer: reducer as Reducer<object, unknown> };
  byPrototype.set(Class.prototype as object, entry);
  byName.set(name, entry);
}

// A Buffer crosses a process as a Buffer (v8.serialize knows it) but a thread as a plain
// Uint8Array (structured clone does not): as a reduced object it arrives a Buffer on both.
registerReducer(Buffer, 'Buffer', {
  // Only the Buffer's own bytes: a small Buffer is a view of a shared 8 KiB pool.
  reduce: (buffer) => (buffer.byteLength === buffer.buffer.byteLength ? new Uint8Array(buffer.buffer) : new Uint8Array(buffer)),
  rebuild: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
});

// Objects that structured clone keeps whole, prototype and all.
const cloneable: Function[] = [
  Array, Date, RegExp, Map, Set, Error, ArrayBuffer, DataView, Boolean, Number, String,
  ...(typeof SharedArrayBuffer === 'function' ? [SharedArrayBuffer] : []),
];

function isCloneableBuiltin(value: object): boolean {
  if (ArrayBuffer.isView(value)) return true; // typed arrays and Buffer
  return cloneable.some((Class) => value instanceof Class);
}

/**
 * `value` ready for structured clone: the value itself when it holds no library object, else a
 * copy with those objects replaced by markers. Throws a TypeError naming where it fails.
 */
export function reduce(value: unknown, where: string): unknown {
  if (typeof value !== 'object' || value === null) {
    if (typeof value === 'function' || typeof value === 'symbol') fail(value, where, []);
    return value;
  }
  const keys: (string | number)[] = [];
  return scan(value, where, keys, new Set()) ? reduceAt(value, where, new Map()) : value;
}

// The fast first pass: checks every value and tells whether any library object needs a marker.
// Paths are built only for an error message, from the stack of keys.
function scan(value: object, where: string, keys: (string | number)[], seen: Set<object>): boolean {
  if (seen.has(value)) return false;
  seen.add(value);
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) {
    if (registeredFor(proto)) return true;
    if (!isCloneableBuiltin(value)) fail(value, where, keys);
    if (!(value instanceof Map) && !(value instanceof Set)) return false;
  }
  let found = false;
  const visit = (item: unknown, key: string | number) => {
    if (typeof item !== 'object' || item === null) {
      if (typeof item === 'function' || typeof item === 'symbol') {
        keys.push(key);
        fail(item, where, keys);
      }
      return;
    }
    keys.push(key);
    if (scan(item, where, keys, seen)) found = true;
    keys.pop();
  };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' || typeof item === 'function' || typeof item === 'symbol') visit(item, i);
    }
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      visit(k, ' (a Map key)');
      visit(v, `.get(${String(k)})`);
    }
  } else if (value instanceof Set) {
    for (const item of value) visit(item, ' (a Set item)');
  } else {
    for (const key of Object.keys(value)) visit((value as Record<string, unknown>)[key], key);
  }
  return found;
}

function pathOf(where: string, keys: (string | number)[]): string {
  return where + keys.map((k) => (typeof k === 'number' ? `[${k}]` : k.startsWith(' ') || k.startsWith('.') ? k : `.${k}`)).join('');
}

function fail(value: unknown, where: string, keys: (string | number)[]): never {
  reduceAt(value, pathOf(where, keys), new Map());
  throw new Error(`bug in multiproc: ${pathOf(where, keys)} failed the scan but not the reduction`);
}

/** The copy with markers (and the detailed errors): the slow path, for values that hold library objects. */
function reduceAt(value: unknown, path: string, seen: Map<object, unknown>): unknown {
  if (typeof value === 'function') {
    throw invalidArgument(
      `${path} is ${value.name ? `the function ${value.name}` : 'a function'}: functions cannot be sent to another process inside values. ` +
        'Pass the data it needs instead, or make it the target of a Process or a pool task (exported from its module).',
      'ERR_MP_NOT_CLONEABLE',
    );
  }
  if (typeof value === 'symbol') {
    throw invalidArgument(
      `${path} is ${String(value)}: a symbol cannot be sent to another process, where it would be a different symbol. ` +
        'Send its description (a string) instead, or Symbol.for(key)\'s key, and look the symbol up on the other side.',
      'ERR_MP_NOT_CLONEABLE',
    );
  }
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value);
  const proto = Object.getPrototypeOf(value) as object | null;
  const registered = proto ? registeredFor(proto) : undefined;
  if (registered) {
    const marker: Record<string, unknown> = { [kReduced]: registered.name };
    seen.set(value, marker);
    // The state may itself hold library objects (a Value's lock, a Condition's semaphores).
    marker.state = reduceAt(registered.reducer.reduce(value), path, seen);
    return marker;
  }
  if (proto !== Object.prototype && proto !== null && !isCloneableBuiltin(value)) {
    const className = (proto as { constructor?: { name?: string } }).constructor?.name || 'an anonymous class';
    throw invalidArgument(
      `${path} is an instance of ${className}: a structured clone would drop its class, and its methods with it. ` +
        `Send plain data instead (e.g. { ...value } or a plain object), and rebuild the ${className} on the other side.`,
      'ERR_MP_NOT_CLONEABLE',
    );
  }
  return reduceContainer(value, path, seen);
}

function registeredFor(proto: object): Registered | undefined {
  if (byPrototype.size === 0) return undefined;
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const entry = byPrototype.get(p);
    if (entry) return entry;
  }
  return undefined;
}

function reduceContainer(value: object, path: string, seen: Map<object, unknown>): unknown {
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    value.forEach((item, i) => copy.push(reduceAt(item, `${path}[${i}]`, seen)));
    return copy;
  }
  if (value instanceof Map) {
    const copy = new Map();
    seen.set(value, copy);
    for (const [k, v] of value) copy.set(reduceAt(k, `${path} (a Map key)`, seen), reduceAt(v, `${path}.get(${String(k)})`, seen));
    return copy;
  }
  if (value instanceof Set) {
    const copy = new Set();
    seen.set(value, copy);
    for (const item of value) copy.add(reduceAt(item, `${path} (a Set item)`, seen));
    return copy;
  }
  if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    const copy: Record<string, unknown> = {};
    seen.set(value, copy);
    for (const key of Object.keys(value)) copy[key] = reduceAt((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
    return copy;
  }
  seen.set(value, value);
  return value; // a built-in that structured clone copies whole (Date, typed array, Error...)
}

/** Rebuilds the registered objects inside a value that reduce() prepared and structured clone copied. */
export function rebuild(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value);
  if (kReduced in value) {
    const marker = value as { [kReduced]: string; state: unknown };
    const entry = byName.get(marker[kReduced]);
    if (!entry) throw new Error(`bug in multiproc: no reducer is registered for '${marker[kReduced]}' in process ${process.pid}`);
    const object = entry.reducer.rebuild(rebuild(marker.state, seen));
    seen.set(value, object);
    return object;
  }
  seen.set(value, value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => (value[i] = rebuild(item, seen)));
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, rebuild(v, seen));
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = rebuild(record[key], seen);
  }
  return value;
}

/**
 * A value as bytes for another process: reduce() then v8's serializer, with errors that say where.
 * The first word says whether the value holds markers, so that loads() skips the rebuild walk
 * for plain data (the common case).
 */
export function dumps(value: unknown, where: string): Buffer {
  const reduced = reduce(value, where);
  try {
    const serializer = new DefaultSerializer();
    serializer.writeUint32(reduced === value ? PLAIN : MARKED);
    serializer.writeHeader();
    serializer.writeValue(reduced);
    return serializer.releaseBuffer();
  } catch (error) {
    throw invalidArgument(`${where}: ${describeValue(value)} cannot be sent to another process: ${(error as Error).message}. Send plain data.`, 'ERR_MP_NOT_CLONEABLE');
  }
}

/** The value that dumps() made bytes of, with its library objects rebuilt. */
export function loads(bytes: Uint8Array): unknown {
  const deserializer = new DefaultDeserializer(bytes as Buffer);
  const kind = deserializer.readUint32();
  deserializer.readHeader();
  const value: unknown = deserializer.readValue();
  return kind === PLAIN ? value : rebuild(value);
}

const PLAIN = 0;
const MARKED = 1;
