// How values cross processes: by structured clone (v8.serialize), plus a registry of reducers for
// library objects that travel as a description of themselves (a segment name, a socket address)
// and are rebuilt on the other side, as CPython's reduction.py registers picklers.
//
// reduce() walks a value before it is sent. It replaces registered objects by a marker and fails
// early, naming where, on what a structured clone would break or silently corrupt: a function
// (functions travel only as targets, by reference) and a class instance whose prototype, and so
// whose methods, would be dropped.
//
// A reducer is registered by its class's own module, at import. A child imports only what it
// needs (not the whole library), so a marker may arrive for a class whose module this thread has
// not loaded yet: the receive paths that can wait import it first (ensureReducers), and those
// that cannot say which import fixes it.

import { extname } from 'node:path';
import { ProcessError, invalidArgument, describe as describeValue } from './errors.ts';
import { native } from './native/binding.ts';
import { decode as decodePlain, encode as encodePlain, lackedRoom } from './internal/plain-data.ts';
import { importModule } from './internal/import-module.ts';
import { referenceOf } from './internal/function-ref.ts';
import { copyMessage, messageArrayBuffer, messageBuffer } from './internal/message-buffer.ts';

export interface Reducer<T extends object, State> {
  /** Describes `object` as structured-cloneable data. */
  reduce(object: T): State;
  /** Rebuilds a usable object in the receiving process or thread. */
  rebuild(state: State): T;
  /** The copy reduce() made was sent: what it left pending is done (see Effects). */
  commit?(object: T, state: State): void;
  /** The copy reduce() made will never be received (its send failed): undoes what reduce() did. */
  undo?(object: T, state: State): void;
  /** Throws if `object` cannot be sent now, naming `where`, without reduce()'s effects (see checkSendable()). */
  check?(object: T, where: string): void;
  /**
   * In the receiver: a copy that arrived and will never be rebuilt (its message was skipped, or
   * failed to rebuild) lets go of what reduce() counted for it, as a rebuilt copy that closed would.
   */
  discard?(state: State): void;
}

/**
 * What the reductions of one send did that must be made final or undone once it is known whether
 * the send happened: a Queue counts the copy in flight as a holder, a socket Connection shares
 * its fd. dumps() and reduce() settle them when they return (undone if they throw); a sender
 * that may still fail afterwards (a bounded Queue's put) takes them with dumpsKeepingEffects().
 */
export interface Effects {
  commit(): void;
  undo(): void;
}

interface Effect {
  reducer: Reducer<object, unknown>;
  object: object;
  state: unknown;
}

/** The effects of the reductions under way, settled when the outermost reduce()/dumps() ends. */
const pendingEffects: Effect[] = [];
/** How deep in reduce()/dumps() calls this thread is (a getter may send something itself). */
let reducing = 0;
/** Set while checkSendable() walks: library objects are checked, not reduced. */
let checking = false;

function settle(effects: Effect[], commit: boolean): void {
  for (const { reducer, object, state } of effects) (commit ? reducer.commit : reducer.undo)?.(object, state);
}

// Runs work(a, b) as one send's reductions: at the outermost level their effects are committed
// (or, with `keep`, left for takeEffects()), and undone if it throws. A function and its
// arguments rather than a closure: dumps() runs for every message, and most have no effects.
function settling<A, B, R>(keep: boolean, work: (a: A, b: B) => R, a: A, b: B): R {
  if (keep) keptEffects = null;
  const from = pendingEffects.length;
  reducing++;
  let result: R;
  try {
    result = work(a, b);
  } catch (error) {
    effectsEnded(from, false, keep);
    throw error;
  }
  effectsEnded(from, true, keep);
  return result;
}

function effectsEnded(from: number, succeeded: boolean, keep: boolean): void {
  reducing--;
  if (pendingEffects.length === from) return;
  if (!succeeded) return settle(pendingEffects.splice(from), false);
  if (reducing > 0) return; // the outermost call settles them
  const effects = pendingEffects.splice(from);
  if (!keep) return settle(effects, true);
  let settled = false;
  const once = (commit: boolean) => () => {
    if (settled) return;
    settled = true;
    settle(effects, commit);
  };
  keptEffects = { commit: once(true), undo: once(false) };
}

/** What the last dumpsKeepingEffects() left to its caller (see takeEffects()). */
let keptEffects: Effects | null = null;

interface Registered {
  name: string;
  reducer: Reducer<object, unknown>;
  /** For a class registered by registerClass(): it, and whether its reducer is the default one. */
  userClass?: { Class: Function; module: string | undefined; byDefault: boolean };
}

const kReduced = '\u0000multiproc:reduced';
const byPrototype = new Map<object, Registered>();
const byName = new Map<string, Registered>();

/** @internal The library module (relative to this folder, without extension) that registers each reducer. */
export const reducerModules: Readonly<Record<string, string>> = {
  Connection: 'connection/connection',
  Queue: 'queues',
  Value: 'sharedctypes',
  SharedArray: 'sharedctypes',
  Lock: 'synchronize/lock',
  RLock: 'synchronize/lock',
  Semaphore: 'synchronize/semaphore',
  BoundedSemaphore: 'synchronize/semaphore',
  Event: 'synchronize/event',
  Barrier: 'synchronize/barrier',
  Condition: 'synchronize/condition',
  ManagerProxy: 'managers/proxy',
  SharedMemory: 'shared-memory',
  ShareableList: 'shareable-list',
  // Never sent (its reducer refuses it): registered so that a Process is refused by name.
  Process: 'process',
};
/** The names above whose module has not registered yet in this thread: empty once the library is loaded. */
const unloaded = new Set(Object.keys(reducerModules));
// With this file's own extension, as bootstrap/location.ts does. Only src/*.ts (through tsx) needs
// it: the built library is one module, which registers every reducer as it loads.
const extension = extname(new URL(import.meta.url).pathname);

/** @internal The reducers registered in this thread, by name (for tests of what a child loaded). */
export function registeredReducers(): string[] {
  return [...byName.keys()];
}

/** Registers how instances of `Class` travel; called next to the class, in its own module. */
export function registerReducer<T extends object, State>(
  Class: abstract new (...args: never[]) => T,
  name: string,
  reducer: Reducer<T, State>,
): void {
  const entry: Registered = { name, reducer: reducer as Reducer<object, unknown> };
  byPrototype.set(Class.prototype as object, entry);
  byName.set(name, entry);
  unloaded.delete(name);
}

/** How registerClass() makes an instance's state, and the instance from it. */
export interface ClassReducer<T extends object, State> {
  /** The name the class travels under (unique among registered classes). @default Class.name */
  name?: string;
  /** The instance's state, structured-cloneable (library objects and registered classes inside are fine). @default its own enumerable properties */
  reduce?: (object: T) => State;
  /** The instance from its state, in the receiving process. @default an object of the class's prototype with the state's properties, made without calling the constructor (as pickle does) */
  rebuild?: (state: State) => T;
}

const CLASS_PREFIX = 'class:';

/**
 * Lets instances of `Class` be sent to other processes and threads, as Python pickles instances of
 * a class by its module and name. Call it next to the class, at the top level of the module that
 * exports it: the receiving side imports that module (if it has not) to find the class. By
 * default an instance travels as its own enumerable properties and is rebuilt without calling
 * the constructor, as pickle does; `reduce` and `rebuild` replace that, for state kept elsewhere
 * (#private fields, say). Subclasses are not covered: register each.
 * @example
 * export class Point { constructor(public x: number, public y: number) {} norm() { return Math.hypot(this.x, this.y); } }
 * registerClass(Point);
 */
export function registerClass<T extends object, State = Record<string, unknown>>(Class: abstract new (...args: never[]) => T, options: ClassReducer<T, State> = {}): void {
  if (typeof Class !== 'function' || typeof Class.prototype !== 'object' || Class.prototype === null) {
    throw invalidArgument(`registerClass(): expected a class, got ${describeValue(Class)}.`);
  }
  const name = options.name ?? Class.name;
  if (typeof name !== 'string' || name === '') throw invalidArgument(`registerClass(): the class has no name: pass { name } (unique among registered classes).`);
  if ((options.reduce === undefined) !== (options.rebuild === undefined)) {
    throw invalidArgument(`registerClass(${name}): pass both \`reduce\` and \`rebuild\`, or neither.`);
  }
  const library = registeredFor(Class.prototype as object);
  if (library && !library.userClass) {
    const what = Class.name === library.name ? `${name} is the library's own class` : `${name} extends the library's ${library.name}`;
    throw invalidArgument(`registerClass(${name}): ${what}, and the library decides how its objects cross (a Queue or a Lock as it is, a Process not at all). Remove the registerClass() call.`);
  }
  const key = CLASS_PREFIX + name;
  const taken = byName.get(key);
  if (taken && taken.userClass?.Class !== Class) {
    throw invalidArgument(`registerClass(${name}): another class is registered under the name '${name}'. Pass { name } to tell them apart.`);
  }
  const proto = Class.prototype as object;
  // (rebuildAt() makes an instance of the default reducer in two steps, so that cycles through it work.)
  const reducer: Reducer<object, unknown> = {
    reduce: (options.reduce as ((object: object) => unknown) | undefined) ?? ((object) => ({ ...object })),
    rebuild: (options.rebuild as ((state: unknown) => object) | undefined) ?? ((state) => Object.assign(Object.create(proto) as object, state)),
  };
  const entry: Registered = { name: key, reducer, userClass: { Class, module: undefined, byDefault: options.reduce === undefined } };
  byPrototype.set(proto, entry);
  byName.set(key, entry);
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
  return settling(false, reduceValue, value, where);
}

/**
 * Throws as reduce() would if `value` cannot be sent, without reducing the library objects in it
 * (reducing one has effects: a Queue counts a copy in flight, a socket Connection moves), whose
 * own check() runs instead. For checks at a call whose sending comes later (a pool's tasks).
 */
export function checkSendable(value: unknown, where: string): void {
  const outer = checking;
  checking = true;
  try {
    reduceValue(value, where);
  } finally {
    checking = outer;
  }
}

function reduceValue(value: unknown, where: string): unknown {
  markedClasses = false;
  if (typeof value !== 'object' || value === null) {
    if (typeof value === 'function' || typeof value === 'symbol') fail(value, where, []);
    return value;
  }
  quickBudget = QUICK_NODES;
  if (isPlainData(value, 0)) return value;
  const keys: (string | number)[] = [];
  return scan(value, where, keys, new Set()) ? reduceAt(value, where, new Map()) : value;
}

// The common case first, without allocating: arrays and plain objects of primitives, a few levels
// deep. Anything else (a class instance, a Map, a library object, a function, a big or deep or
// cyclic value) answers false and takes the full scan, which also explains what fails. The full
// scan costs 1 us or more per object or array: plain values of up to 4,096 of them skip it (an
// in-process Pipe round trip of 1,000 small objects: 651 us against 761 with 64).
const QUICK_NODES = 4096;
const QUICK_DEPTH = 8;
let quickBudget = 0;

function isPlainData(value: object, depth: number): boolean {
  if (--quickBudget < 0 || depth > QUICK_DEPTH) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) if (!isPlainItem(value[i], depth)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) if (!isPlainItem((value as Record<string, unknown>)[key], depth)) return false;
  return true;
}

function isPlainItem(item: unknown, depth: number): boolean {
  const type = typeof item;
  if (type === 'object') return item === null || isPlainData(item as object, depth + 1);
  return type !== 'function' && type !== 'symbol';
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
    if (checking && !registered.userClass) {
      registered.reducer.check?.(value, path);
      seen.set(value, null);
      return null;
    }
    const marker: Record<string, unknown> = { [kReduced]: registered.name };
    if (registered.userClass) {
      marker.module = classModule(registered.userClass, path);
      markedClasses = true;
    }
    seen.set(value, marker);
    const state = registered.reducer.reduce(value);
    if (registered.reducer.commit || registered.reducer.undo) pendingEffects.push({ reducer: registered.reducer, object: value, state });
    // The state may itself hold library objects (a Value's lock, a Condition's semaphores).
    marker.state = reduceAt(state, path, seen);
    return marker;
  }
  if (proto !== Object.prototype && proto !== null && !isCloneableBuiltin(value)) {
    const className = (proto as { constructor?: { name?: string } }).constructor?.name || 'an anonymous class';
    throw invalidArgument(
      `${path} is an instance of ${className}: a structured clone would drop its class, and its methods with it. ` +
        `Register the class so that its instances cross, next to it in the module that exports it (\`registerClass(${className})\`), ` +
        `or send plain data instead (e.g. { ...value }) and rebuild the ${className} on the other side.`,
      'ERR_MP_NOT_CLONEABLE',
    );
  }
  return reduceContainer(value, path, seen);
}

/** Set by reduceAt() when it made a marker for a class of the program's (see dumpsInto()). */
let markedClasses = false;

// The URL of the module that exports a registered class, found at its first send (the module may
// still be evaluating when it registers the class).
function classModule(userClass: NonNullable<Registered['userClass']>, path: string): string {
  userClass.module ??= referenceOf(userClass.Class, `${path} (an instance of the registered class ${userClass.Class.name})`).module;
  return userClass.module;
}

function registeredFor(proto: object): Registered | undefined {
  if (byPrototype.size === 0) return undefined;
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const entry = byPrototype.get(p);
    // A subclass of a registered class of the program's is not that class: it is refused unless registered itself.
    if (entry) return entry.userClass && p !== proto ? undefined : entry;
  }
  return undefined;
}

function reduceContainer(value: object, path: string, seen: Map<object, unknown>): unknown {
  if (Array.isArray(value)) {
    // Its length, holes and all: a sparse array arrives as structured clone sends one.
    const copy: unknown[] = new Array(value.length);
    seen.set(value, copy);
    value.forEach((item, i) => (copy[i] = reduceAt(item, `${path}[${i}]`, seen)));
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

/**
 * Rebuilds the registered objects inside a value that reduce() prepared and structured clone
 * copied (in place). `where` names the receiving call in the error for a class whose module this
 * thread has not loaded: await ensureReducers(value) first where the caller can wait.
 */
export function rebuild(value: unknown, where: string, classes = false): unknown {
  // Found before anything is rebuilt: the value is received again once the module is imported
  // (Queue.getNowait() keeps it), and a library object beside it must not be rebuilt twice.
  const missing = (unloaded.size > 0 || classes) && typeof value === 'object' && value !== null ? missingReducers(value) : undefined;
  if (missing) {
    const library = [...missing].filter((name) => Object.hasOwn(reducerModules, name));
    if (library.length > 0) throw notLoaded(where, new Set(library));
    eachMarker(value as object, (marker) => {
      if (marker.module !== undefined && !byName.has(marker[kReduced])) throw classNotLoaded(marker);
    });
  }
  return rebuildOrDiscard(value);
}

// A value that fails to rebuild is never delivered: the copies in it not rebuilt yet let go of
// their counts, or a Pipe's reader would wait for a writer that no longer exists. Not for a class
// whose module is missing: that value is received again once it is imported (Queue.getNowait()).
function rebuildOrDiscard(value: unknown): unknown {
  const rebuilt = new Map<object, unknown>();
  try {
    return rebuildAt(value, rebuilt);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ERR_MP_NOT_LOADED') discardAt(value, new Set(), rebuilt);
    throw error;
  }
}

/**
 * For dumps()'s bytes that will never be loaded (a message skipped unread): the library objects
 * in them let go of what their sending counted (a Queue's holder, a Pipe end's opener).
 */
export async function discardLibraryObjects(bytes: Uint8Array): Promise<void> {
  if (!holdsLibraryObjects(bytes)) return;
  const value = native().deserialize(bytes, 1, bytes.byteLength - 1);
  await ensureReducers(value, false);
  discardAt(value, new Set(), new Map());
}

/**
 * For a value reduce() prepared and sent to a child that ended before it began to rebuild it: the
 * library objects in it let go of what sending them counted, as the child's discard would have.
 */
export function discardUnreceived(value: unknown): void {
  discardAt(value, new Set(), new Map());
}

// Best effort: a copy whose memory is gone already (the program is ending) has nothing to let go.
// A marker that `rebuilt` holds became an object, which lets go of its hold itself (a Map's or
// Set's entries are rebuilt aside, so the markers stay in it).
function discardAt(value: unknown, seen: Set<object>, rebuilt: Map<object, unknown>): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (kReduced in value) {
    const marker = value as Marker;
    discardAt(marker.state, seen, rebuilt);
    if (rebuilt.has(marker)) return;
    try {
      byName.get(marker[kReduced])?.reducer.discard?.(marker.state);
    } catch {
      // its segment was unlinked, or it failed to rebuild for the same reason
    }
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) discardAt(item, seen, rebuilt);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      discardAt(k, seen, rebuilt);
      discardAt(v, seen, rebuilt);
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    for (const item of Object.values(value)) discardAt(item, seen, rebuilt);
  }
}

function rebuildAt(value: unknown, seen: Map<object, unknown>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value);
  if (kReduced in value) {
    const marker = value as Marker;
    const entry = byName.get(marker[kReduced]);
    if (!entry) {
      if (marker.module !== undefined) throw classNotLoaded(marker);
      throw new Error(`bug in multiproc: no reducer is registered for '${marker[kReduced]}' in process ${process.pid}`);
    }
    if (entry.userClass?.byDefault) {
      // Made before its state is rebuilt, so that the state may refer back to it (a cycle).
      const object = Object.create((entry.userClass.Class as { prototype: object }).prototype) as object;
      seen.set(value, object);
      return Object.assign(object, rebuildAt(marker.state, seen));
    }
    const object = entry.reducer.rebuild(rebuildAt(marker.state, seen));
    seen.set(value, object);
    return object;
  }
  seen.set(value, value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => (value[i] = rebuildAt(item, seen)));
  } else if (value instanceof Map) {
    // Keys too, as reduce() replaced them: the entries are set again, in their order.
    const entries = [...value].map(([k, v]) => [rebuildAt(k, seen), rebuildAt(v, seen)] as const);
    value.clear();
    for (const [k, v] of entries) value.set(k, v);
  } else if (value instanceof Set) {
    const items = [...value].map((item) => rebuildAt(item, seen));
    value.clear();
    for (const item of items) value.add(item);
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = rebuildAt(record[key], seen);
  }
  return value;
}

interface Marker {
  [kReduced]: string;
  state: unknown;
  /** For a class of the program's (registerClass()): the URL of the module that exports it. */
  module?: string;
}

function classNotLoaded(marker: Marker): ProcessError {
  const name = marker[kReduced].slice(CLASS_PREFIX.length);
  return new ProcessError(
    `The value received holds an instance of the class ${name}, which this process or thread (pid ${process.pid}) has not registered: ` +
      `its module (${marker.module}) was not imported here, and this receiving call cannot wait for an import. ` +
      `Import that module in the module that receives, or receive with an awaited call (Queue.get(), Connection.recv()), which imports it first.`,
    { code: 'ERR_MP_NOT_LOADED' },
  );
}

/**
 * Imports the library modules that register the reducers of the markers in `value` (a cloned,
 * not yet rebuilt value) that this thread lacks; undefined when none is missing (no await needed).
 */
export function ensureReducers(value: unknown, classes = true): Promise<void> | undefined {
  if ((unloaded.size === 0 && !classes) || typeof value !== 'object' || value === null) return undefined;
  const missing = missingReducers(value);
  if (!missing) return undefined;
  const urls = new Set([...missing].map((name) => (Object.hasOwn(reducerModules, name) ? new URL(`./${reducerModules[name]}${extension}`, import.meta.url).href : name)));
  return Promise.all([...urls].map(importModule)).then(() => undefined);
}

// What `value`'s markers need and this thread lacks: the names of this library's reducers whose
// modules it has not loaded, and the URLs of the modules that export the program's registered
// classes it has not registered.
function missingReducers(value: object): Set<string> | undefined {
  let found: Set<string> | undefined;
  eachMarker(value, ({ [kReduced]: name, module }) => {
    if (unloaded.has(name)) (found ??= new Set()).add(name);
    else if (module !== undefined && !byName.has(name)) (found ??= new Set()).add(module);
  });
  return found;
}

/** Calls `visit` on each marker in `value`, a cloned value not rebuilt yet (markers in markers' states too). */
function eachMarker(value: object, visit: (marker: Marker) => void, seen = new Set<object>()): void {
  if (seen.has(value)) return;
  seen.add(value);
  const inner = (item: unknown) => {
    if (typeof item === 'object' && item !== null) eachMarker(item, visit, seen);
  };
  if (kReduced in value) {
    visit(value as Marker);
    inner((value as Marker).state);
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) inner(item);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      inner(k);
      inner(v);
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    for (const key of Object.keys(value)) inner((value as Record<string, unknown>)[key]);
  }
}

function notLoaded(where: string, names: Set<string>): ProcessError {
  const [name = ''] = names;
  return new ProcessError(
    `${where}: the value received holds ${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}, and this process or thread (pid ${process.pid}) has not loaded its module yet: ` +
      `a child loads multiproc's modules as the objects it receives need them, and ${where} cannot wait for an import. ` +
      `Add \`import 'multiproc';\` to the module that calls it, or receive with an awaited call (Queue.get(), Connection.recv()), which imports the module first.`,
    { code: 'ERR_MP_NOT_LOADED' },
  );
}

/** Where small clones are written; a larger one gets a buffer of its own. */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Uint8Array | undefined;
/**
 * Where plain data larger than the scratch is written, reused as the scratch is, up to this size
 * (a pool's chunk of 10,000 numbers is 80 KB): a fresh buffer per message was a fresh block of
 * memory per chunk until V8 collected them.
 */
const LARGE_SCRATCH_KEPT = 4 * 1024 * 1024;
let largeScratch: Uint8Array | undefined;

/** Set while dumps() writes into scratch (see dumps()). */
let dumping = false;

/**
 * A value as bytes for another process: reduce() then V8's structured clone, with errors that say
 * where; primitives and small plain data are written without the serializer, as it would. The
 * first byte says whether the value holds markers, so that loads() skips the rebuild walk for
 * plain data (the common case), or that it is a Buffer's bytes or a primitive. The result may be a
 * view of a buffer that the next dumps() in this thread reuses: write it out at once, or keep(it).
 */
export function dumps(value: unknown, where: string): Uint8Array {
  return settling(false, dumpsOwnBuffer, value, where);
}

/**
 * dumps(), leaving the effects of its reductions for the caller, who takes them at once with
 * takeEffects() and commits them once the bytes are sent, or undoes them if they never will be.
 */
export function dumpsKeepingEffects(value: unknown, where: string): Uint8Array {
  return settling(true, dumpsOwnBuffer, value, where);
}

/**
 * Runs `body`, whose reduce() and dumps() calls leave their effects for the caller (see
 * dumpsKeepingEffects()): for a send made of several reductions (Process.start()'s args and fields).
 */
export function keepingEffects<R>(body: () => R): R {
  return settling(true, body, undefined, undefined);
}

/** The effects the last dumpsKeepingEffects() or keepingEffects() left (null: none, the usual case). */
export function takeEffects(): Effects | null {
  const effects = keptEffects;
  keptEffects = null;
  return effects;
}

function dumpsOwnBuffer(value: unknown, where: string): Uint8Array {
  // A getter of the value being written may send something itself: that dumps() gets a buffer of
  // its own, not the scratch half written under it.
  if (dumping) return dumpsInto(value, where, new Uint8Array(4096));
  scratch ??= new Uint8Array(SCRATCH_BYTES);
  dumping = true;
  try {
    return dumpsInto(value, where, scratch);
  } finally {
    dumping = false;
  }
}

/**
 * The first `length` bytes of `into`: for the scratch, one view per length, made once (most
 * messages are short, and many of one length: a view per dumps() was a tenth of a small put()'s
 * garbage). A view of the scratch is only ever read before the next dumps(), like the scratch.
 */
function prefix(into: Uint8Array, length: number): Uint8Array {
  if (into !== scratch || length > CACHED_VIEWS) return into.subarray(0, length);
  return (scratchViews[length] ??= into.subarray(0, length));
}
const CACHED_VIEWS = 1024;
const scratchViews: (Uint8Array | undefined)[] = [];

/** Whether `bytes` from dumps() are its reused scratch (to copy if kept), not a buffer of their own. */
export function isScratch(bytes: Uint8Array): boolean {
  return bytes.buffer === scratch?.buffer || bytes.buffer === largeScratch?.buffer;
}

function dumpsInto(value: unknown, where: string, into: Uint8Array): Uint8Array {
  if (typeof value !== 'object' || value === null) {
    const bytes = dumpsPrimitive(value, into);
    if (bytes) return bytes;
  }
  if (value instanceof Buffer) return dumpsBuffer(value, into);
  const end = encodePlain(value, into, 1);
  if (end !== undefined) {
    into[0] = PLAIN_DATA;
    return prefix(into, end);
  }
  const large = dumpsLargePlain(value, into === scratch);
  if (large) return large;
  const reduced = reduceValue(value, where);
  let written: number | Uint8Array;
  try {
    written = native().serialize(reduced, into, 1);
  } catch (error) {
    throw invalidArgument(`${where}: ${describeValue(value)} cannot be sent to another process: ${(error as Error).message}. Send plain data.`, 'ERR_MP_NOT_CLONEABLE');
  }
  const bytes = typeof written === 'number' ? prefix(into, written + 1) : written;
  bytes[0] = reduced === value ? PLAIN : markedClasses ? MARKED_CLASSES : MARKED;
  return bytes;
}

// Plain data that did not fit (a long array of numbers, a pool's batch of chunks packed as
// Float64Arrays) is still plain data, in the large scratch (past 4 MiB, a buffer of its own),
// larger at each try: the serializer would read such numbers back as a heap object each, or its
// typed arrays into fresh memory.
// `reuse`: the large scratch may be written (not in a dumps() nested in another, see dumps()).
function dumpsLargePlain(value: unknown, reuse: boolean): Uint8Array | undefined {
  for (let lacked = lackedRoom(), size = 0; lacked > 0; lacked = lackedRoom()) {
    size = Math.max(2 * size, Math.ceil(lacked * 1.25) + 64);
    if (size > MAX_PLAIN_BYTES) return undefined;
    const own = reuse && size <= LARGE_SCRATCH_KEPT ? largeScratchOf(size) : messageBuffer(size);
    const end = encodePlain(value, own, 1);
    if (end !== undefined) {
      own[0] = PLAIN_DATA;
      return own.subarray(0, end);
    }
  }
  return undefined;
}
const MAX_PLAIN_BYTES = 2 ** 31;

function largeScratchOf(size: number): Uint8Array {
  if (!largeScratch || largeScratch.byteLength < size) largeScratch = new Uint8Array(messageArrayBuffer(Math.min(LARGE_SCRATCH_KEPT, 2 ** Math.ceil(Math.log2(size)))));
  return largeScratch;
}

// A Buffer (the payload of most large messages) as its bytes: one copy, instead of structured
// clone's several (into V8's growing buffer, then out of it).
function dumpsBuffer(buffer: Buffer, into: Uint8Array): Uint8Array {
  const bytes = buffer.byteLength < into.byteLength ? into.subarray(0, buffer.byteLength + 1) : messageBuffer(buffer.byteLength + 1);
  bytes[0] = BUFFER;
  bytes.set(buffer, 1);
  return bytes;
}

// A number, null, undefined or a boolean in one byte or nine, without the serializer: its native
// call and header cost more than such a value (a Queue of ints spent a third of put() and get() there).
function dumpsPrimitive(value: unknown, into: Uint8Array): Uint8Array | undefined {
  switch (typeof value) {
    case 'number':
      number[0] = value;
      into[0] = NUMBER;
      into.set(numberBytes, 1);
      return prefix(into, 9);
    case 'boolean':
      into[0] = value ? TRUE : FALSE;
      return prefix(into, 1);
    case 'undefined':
      into[0] = UNDEFINED;
      return prefix(into, 1);
    default:
      if (value !== null) return undefined;
      into[0] = NULL;
      return prefix(into, 1);
  }
}

function loadsPrimitive(bytes: Uint8Array, at: number): unknown {
  switch (bytes[at]) {
    case NUMBER:
      for (let i = 0; i < 8; i++) numberBytes[i] = bytes[at + 1 + i] as number;
      return number[0];
    case TRUE:
      return true;
    case FALSE:
      return false;
    case NULL:
      return null;
    default:
      return undefined;
  }
}

/**
 * The value that dumps() made bytes of, with its library objects rebuilt. `where` names the
 * receiving call; it throws ERR_MP_NOT_LOADED for a library object whose module this thread has
 * not loaded (see loadsImporting() for the paths that can wait). `own`: the bytes are this
 * message's own, and a Buffer's may be returned as a view of them; false for bytes in shared
 * memory that is about to be reused (everything else is copied out of them as it is decoded).
 */
export function loads(bytes: Uint8Array, where: string, own = true): unknown {
  return loadsAt(bytes, 0, bytes.byteLength, where, own);
}

/**
 * loads() of the `length` bytes at `start` in `data` (a ring's memory, say): plain data and
 * primitives are decoded where they lie, without a view of them per message.
 */
export function loadsAt(data: Uint8Array, start: number, length: number, where: string, own: boolean): unknown {
  const format = data[start] as number;
  if (format === PLAIN_DATA) return decodePlain(data, start + 1);
  if (format >= NUMBER) return loadsPrimitive(data, start);
  if (format === BUFFER) return own ? Buffer.from(data.buffer, data.byteOffset + start + 1, length - 1) : copyMessage(data.subarray(start + 1, start + length));
  const value = native().deserialize(data, start + 1, length - 1);
  return format === PLAIN ? value : rebuild(value, where, format === MARKED_CLASSES);
}

/** Whether dumps()'s bytes hold library objects (to rebuild, maybe after importing their modules). */
export function holdsLibraryObjects(bytes: Uint8Array): boolean {
  return bytes[0] === MARKED || bytes[0] === MARKED_CLASSES;
}

/**
 * loads() for a receive path that can wait: the value, or (only when it holds a library object
 * whose module this thread has not loaded yet) a Promise of it, once that module is imported.
 */
export function loadsImporting(bytes: Uint8Array, where: string, own = true): unknown {
  return loadsImportingAt(bytes, 0, bytes.byteLength, where, own);
}

/** loadsImporting() of the `length` bytes at `start` in `data`, in place as loadsAt(). */
export function loadsImportingAt(data: Uint8Array, start: number, length: number, where: string, own: boolean): unknown {
  const format = data[start];
  if (format !== MARKED && format !== MARKED_CLASSES) return loadsAt(data, start, length, where, own);
  const value = native().deserialize(data, start + 1, length - 1);
  // ensureReducers() has looked for missing modules already: rebuild without a second walk.
  const importing = ensureReducers(value, format === MARKED_CLASSES);
  return importing ? importing.then(() => rebuildOrDiscard(value)) : rebuildOrDiscard(value);
}

/**
 * The first byte of dumps()'s bytes: plain data, data holding library objects, a Buffer's bytes;
 * a primitive written without the serializer (a number's 8 bytes follow, in this machine's order);
 * or small plain data written without it (internal/plain-data.ts).
 */
const PLAIN = 0;
const MARKED = 1;
/** Holding instances of the program's registered classes too (their modules may need importing). */
const MARKED_CLASSES = 2;
const BUFFER = 3;
const NUMBER = 4;
const NULL = 5;
const UNDEFINED = 6;
const TRUE = 7;
const FALSE = 8;
const PLAIN_DATA = 9;
const number = new Float64Array(1);
const numberBytes = new Uint8Array(number.buffer);
