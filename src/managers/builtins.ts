// The objects a SyncManager serves (Python's SyncManager types), as they live in the server
// process. They run on the server's one event loop, so they need no locks of their own; waits are
// Promises the server answers later. Who calls (for RLock and Condition ownership) comes from the
// request: asCaller() names it while a method's synchronous part runs, and a method that waits
// captures it first (callerNow()) and carries it across its awaits. (An AsyncLocalStorage would
// carry it by itself, but its promise hooks slow every request the server handles.)

import { isDeepStrictEqual } from 'node:util';
import { BrokenBarrierError, Empty, Full, ProcessError, TimeoutError, describe, invalidArgument, badNumber } from '../errors.ts';
import { timeoutMs, timerFor } from '../internal/validate.ts';
import { LocalRef, referentOf } from './proxy.ts';
import { typedItem } from '../sharedctypes.ts';
import { importReference, isModuleRef, type ModuleRef } from '../internal/function-ref.ts';

/** Who calls ("pid:tid"), and a signal that aborts when its connection goes (the client died or the server stops). */
interface Caller {
  who: string;
  gone?: AbortSignal;
}

const SERVER: Caller = { who: 'server' };
let current: Caller = SERVER;

/** Runs a method call on behalf of `who` ("pid:tid"); its waits end (as timed out) when `gone` aborts. */
export function asCaller<T>(who: string, call: () => T, gone?: AbortSignal): T {
  const previous = current;
  current = gone ? { who, gone } : { who };
  try {
    return call();
  } finally {
    current = previous;
  }
}

/** The caller of the method whose synchronous part runs now: capture it before the first await. */
function callerNow(): Caller {
  return current;
}

/** True when the caller's connection is gone: what it would take (an item, a lock) would be lost. */
function isGone(caller: Caller): boolean {
  return caller.gone?.aborted === true;
}

/**
 * A waiter list with timeouts: the building block of the blocking types below. A wait ends with
 * false at its timeout, or when its caller's connection goes: a client that died must not be
 * handed an item or a lock that nobody would receive.
 */
class Waiters {
  readonly #list: { wake: (woken: boolean) => void }[] = [];

  wait(timeout: number | undefined, caller: Caller): Promise<boolean> {
    const gone = caller.gone;
    return new Promise((resolve) => {
      if (gone?.aborted) return resolve(false);
      let timer: NodeJS.Timeout | undefined;
      const settle = (woken: boolean) => {
        clearTimeout(timer);
        gone?.removeEventListener('abort', drop);
        resolve(woken);
      };
      const entry = { wake: settle };
      const drop = () => {
        const i = this.#list.indexOf(entry);
        if (i >= 0) {
          this.#list.splice(i, 1);
          settle(false);
        }
      };
      this.#list.push(entry);
      timer = timerFor(timeout, drop);
      gone?.addEventListener('abort', drop, { once: true });
    });
  }

  wakeOne(): boolean {
    const entry = this.#list.shift();
    entry?.wake(true);
    return entry !== undefined;
  }

  wakeAll(): void {
    while (this.wakeOne());
  }

  get length(): number {
    return this.#list.length;
  }
}

/**
 * A wait's timeout as a proxy passes it: Python's milliseconds (or null, Python's None), or the
 * `{ timeout }` that the library's own objects take (`lock.acquire(true, { timeout })`).
 */
function waitTimeout(where: string, timeout: unknown): number | undefined {
  if (timeout === undefined || timeout === null) return undefined;
  if (typeof timeout === 'object') return waitTimeout(where, (timeout as { timeout?: unknown }).timeout);
  return timeoutMs(where, timeout);
}

/**
 * `(block, timeout)` as a proxy passes them: Python's positional pair (`q.get(true, 500)`), or
 * the options object of the library's own Queue (`q.get({ timeout: 500 })`).
 */
function blocking(where: string, block: unknown, timeout: unknown): { block: boolean; timeout: number | undefined } {
  if (block === undefined || block === null) return { block: true, timeout: waitTimeout(where, timeout) };
  if (typeof block === 'boolean') return { block, timeout: block ? waitTimeout(where, timeout) : undefined };
  if (typeof block === 'object') {
    const options = block as { block?: unknown; timeout?: unknown };
    if (options.block !== undefined && typeof options.block !== 'boolean') {
      throw invalidArgument(`${where}: expected \`block\` to be a boolean, got ${describe(options.block)}.`);
    }
    return blocking(where, options.block, options.timeout);
  }
  throw invalidArgument(`${where}: expected Python's (block, timeout) or options ({ block, timeout }), got ${describe(block)}.`);
}

type PlainKey = unknown;

/**
 * Python's dict with JavaScript's Map semantics for primitive keys (0, '0' and 0n are three keys).
 * A key that is an array, a plain object or a Date is compared by value, as Python compares
 * tuples: every call brings a copy of its key, so a key compared by identity, as a Map compares
 * objects, could never be found again. The first copy stored stands for all equal ones (its value
 * is the key's `token`); other objects (a Map, a Set, a proxy...) are refused, as Python refuses
 * unhashable keys.
 */
export class DictServer {
  readonly #map = new Map<PlainKey, unknown>();
  /** The key stored for each value of an object key, by its canonical text (see canonicalKey()). */
  readonly #objectKeys = new Map<string, object>();

  constructor(init?: Map<PlainKey, unknown> | Record<string, unknown> | Iterable<[PlainKey, unknown]>) {
    for (const [k, v] of toEntries(contentsOf(init, 'pairs'))) this.#map.set(this.#token(k, 'dict()', true), v);
  }

  get(key: PlainKey, fallback?: unknown): unknown {
    const token = this.#token(key, 'dict.get()');
    return this.#map.has(token) ? this.#map.get(token) : fallback;
  }
  set(key: PlainKey, value: unknown): void {
    this.#map.set(this.#token(key, 'dict.set()', true), value);
  }
  has(key: PlainKey): boolean {
    return this.#map.has(this.#token(key, 'dict.has()'));
  }
  delete(key: PlainKey): boolean {
    return this.#forget(this.#token(key, 'dict.delete()'));
  }
  keys(): unknown[] {
    return [...this.#map.keys()];
  }
  values(): unknown[] {
    return [...this.#map.values()];
  }
  entries(): [unknown, unknown][] {
    return [...this.#map.entries()];
  }
  items(): [unknown, unknown][] {
    return this.entries();
  }
  size(): number {
    return this.#map.size;
  }
  update(other: Map<PlainKey, unknown> | Record<string, unknown> | Iterable<[PlainKey, unknown]>): void {
    for (const [k, v] of toEntries(contentsOf(other, 'pairs'))) this.#map.set(this.#token(k, 'dict.update()', true), v);
  }
  pop(key: PlainKey, ...fallback: unknown[]): unknown {
    const token = this.#token(key, 'dict.pop()');
    if (this.#map.has(token)) {
      const value = this.#map.get(token);
      this.#forget(token);
      return value;
    }
    if (fallback.length > 0) return fallback[0];
    throw new ProcessError(`dict.pop(): no key ${String(key)}. Pass a default: pop(key, fallback).`, { code: 'ERR_MP_KEY_ERROR' });
  }
  /** Removes and returns the last pair set, as Python's popitem() (LIFO); rejects when empty. */
  popitem(): [unknown, unknown] {
    let last: [unknown, unknown] | undefined;
    for (const entry of this.#map) last = entry;
    if (!last) throw new ProcessError('dict.popitem(): the dict is empty.', { code: 'ERR_MP_KEY_ERROR' });
    this.#forget(last[0]);
    return last;
  }
  setdefault(key: PlainKey, value: unknown = null): unknown {
    const token = this.#token(key, 'dict.setdefault()', true);
    if (!this.#map.has(token)) this.#map.set(token, value);
    return this.#map.get(token);
  }
  clear(): void {
    this.#map.clear();
    this.#objectKeys.clear();
  }
  copy(): Map<PlainKey, unknown> {
    return new Map(this.#map);
  }

  // What the map is keyed by: a primitive key itself; for an object key, the first equal one
  // stored (recorded when `storing`, so that a lookup of a missing key leaves nothing behind).
  #token(key: PlainKey, where: string, storing = false): PlainKey {
    if (typeof key !== 'object' || key === null) return key;
    const canonical = canonicalKey(key, where);
    const stored = this.#objectKeys.get(canonical);
    if (stored !== undefined || !storing) return stored ?? key;
    this.#objectKeys.set(canonical, key);
    return key;
  }

  #forget(token: PlainKey): boolean {
    if (typeof token === 'object' && token !== null) this.#objectKeys.delete(canonicalKey(token, 'dict'));
    return this.#map.delete(token);
  }
}

/** Nested keys deeper than this are refused (a cyclic key would never end). */
const MAX_KEY_DEPTH = 32;

/**
 * A text equal for keys equal by value, as isDeepStrictEqual() sees them (the list compares items
 * so) but for -0, which is 0 here as in a Map: each primitive tagged by its type, arrays in order,
 * plain objects by their own keys in sorted order, Dates by their time.
 */
function canonicalKey(key: object, where: string, depth = 0): string {
  if (depth > MAX_KEY_DEPTH) {
    throw invalidArgument(`${where}: a key nested more than ${MAX_KEY_DEPTH} deep (or holding itself) cannot be compared by value. Use a primitive key.`, 'ERR_MP_UNHASHABLE');
  }
  const part = (value: unknown): string => {
    switch (typeof value) {
      case 'number':
        return value === 0 ? 'n0' : `n${value}`;
      case 'string':
        return `s${JSON.stringify(value)}`;
      case 'bigint':
        return `b${value}`;
      case 'boolean':
        return value ? 't' : 'f';
      case 'undefined':
        return 'u';
      default:
        return value === null ? 'l' : canonicalKey(value as object, where, depth + 1);
    }
  };
  if (Array.isArray(key)) return `[${Array.from(key, part).join(',')}]`;
  if (key instanceof Date) return `d${key.getTime()}`;
  const proto = Object.getPrototypeOf(key) as unknown;
  if (proto === Object.prototype || proto === null) {
    const record = key as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((name) => `${JSON.stringify(name)}:${part(record[name])}`).join(',')}}`;
  }
  throw invalidArgument(
    `${where}: a key must be a primitive, or an array, a plain object or a Date of them (compared by value, as Python compares tuples); got ${describe(key)}. ` +
      'Each call brings a copy of its key, so an object compared by identity would never be found again: key by a primitive (an id, or JSON.stringify(...) of the object).',
    'ERR_MP_UNHASHABLE',
  );
}

/**
 * A dict or list of this server passed in (its proxy) stands for what Python's iteration of it
 * gives: a list's items, a dict's keys (or its pairs, for a dict being filled). Another object of
 * this server cannot be iterated.
 */
function contentsOf(value: unknown, dictAs: 'keys' | 'pairs'): unknown {
  if (!(value instanceof LocalRef)) return value;
  const referent = referentOf(value);
  if (referent instanceof ListServer) return referent.copy();
  if (referent instanceof DictServer) return dictAs === 'keys' ? referent.keys() : referent.copy();
  throw invalidArgument(`a proxy of ${describe(referent)} cannot be iterated: pass a dict's or list's proxy, or its copy().`);
}

function toEntries(init: unknown): Iterable<[PlainKey, unknown]> {
  if (init === undefined || init === null) return [];
  if (init instanceof Map) return init.entries();
  if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') return init as Iterable<[PlainKey, unknown]>;
  return Object.entries(init as Record<string, unknown>);
}

export class ListServer {
  readonly #items: unknown[];

  constructor(init?: Iterable<unknown>) {
    this.#items = init ? [...(contentsOf(init, 'keys') as Iterable<unknown>)] : [];
  }

  append(item: unknown): void {
    this.#items.push(item);
  }
  extend(items: Iterable<unknown>): void {
    this.#items.push(...(contentsOf(items, 'keys') as Iterable<unknown>));
  }
  get(index: number): unknown {
    return this.#items[this.#index(index)];
  }
  set(index: number, item: unknown): void {
    this.#items[this.#index(index)] = item;
  }
  pop(index = -1): unknown {
    return this.#items.splice(this.#index(index), 1)[0];
  }
  insert(index: number, item: unknown): void {
    this.#items.splice(index < 0 ? Math.max(0, this.#items.length + index) : index, 0, item);
  }
  remove(item: unknown): void {
    const i = this.#find(item);
    if (i < 0) throw new ProcessError(`list.remove(x): x (${String(item)}) is not in the list.`, { code: 'ERR_MP_VALUE_ERROR' });
    this.#items.splice(i, 1);
  }
  index(item: unknown): number {
    const i = this.#find(item);
    if (i < 0) throw new ProcessError(`list.index(x): x (${String(item)}) is not in the list.`, { code: 'ERR_MP_VALUE_ERROR' });
    return i;
  }
  /** Whether an equal item is in the list (Python's `item in list`). */
  has(item: unknown): boolean {
    return this.#find(item) >= 0;
  }
  /** A copy of items start..end (Python's list[start:end]; negative indices count from the end). */
  slice(start?: number, end?: number): unknown[] {
    return this.#items.slice(start, end);
  }
  count(item: unknown): number {
    return this.#items.filter((x) => isDeepStrictEqual(x, item)).length;
  }
  length(): number {
    return this.#items.length;
  }
  reverse(): void {
    this.#items.reverse();
  }
  /** Sorts in place, ascending, or descending with `{ reverse: true }` (Python's key= cannot cross: a function). */
  sort(options: { reverse?: boolean } = {}): void {
    const order = options.reverse === true ? -1 : 1;
    this.#items.sort((a, b) => order * compareItems(a, b));
  }
  copy(): unknown[] {
    return [...this.#items];
  }

  // Items arrive by structured clone, so an object is never the one stored: compare by value, as
  // Python's == does for lists and dicts.
  #find(item: unknown): number {
    return this.#items.findIndex((x) => isDeepStrictEqual(x, item));
  }

  #index(index: number): number {
    return checkedIndex('list', index, this.#items.length);
  }
}

/**
 * Python's order for list.sort(): numbers, bigints and booleans by value, strings by their
 * characters, Dates by time, arrays item by item (as tuples); two things Python could not compare
 * (a string and a number, null, a plain object) are a TypeError, not a silent non-order.
 */
function compareItems(a: unknown, b: unknown): number {
  const [kindA, kindB] = [sortKind(a), sortKind(b)];
  if (kindA === null || kindA !== kindB) {
    throw invalidArgument(`list.sort(): ${describe(a)} and ${describe(b)} cannot be compared (Python: '<' not supported). Sort numbers, strings, Dates or arrays of them, one kind at a time.`);
  }
  if (kindA === 'array') {
    const [x, y] = [a as unknown[], b as unknown[]];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const order = compareItems(x[i], y[i]);
      if (order !== 0) return order;
    }
    return x.length - y.length;
  }
  const [x, y] = kindA === 'date' ? [(a as Date).getTime(), (b as Date).getTime()] : [a as number | string, b as number | string];
  return x < y ? -1 : x > y ? 1 : 0;
}

function sortKind(value: unknown): 'number' | 'string' | 'date' | 'array' | null {
  switch (typeof value) {
    case 'number':
    case 'bigint':
    case 'boolean':
      return 'number';
    case 'string':
      return 'string';
    default:
      return Array.isArray(value) ? 'array' : value instanceof Date ? 'date' : null;
  }
}

export class NamespaceServer {
  readonly #attributes: Map<string, unknown>;

  constructor(init: Record<string, unknown> = {}) {
    this.#attributes = new Map(Object.entries(init));
  }
  get(name: string): unknown {
    if (!this.#attributes.has(name)) throw new ProcessError(`Namespace has no attribute '${name}'.`, { code: 'ERR_MP_ATTRIBUTE_ERROR' });
    return this.#attributes.get(name);
  }
  set(name: string, value: unknown): void {
    this.#attributes.set(name, value);
  }
  delete(name: string): boolean {
    return this.#attributes.delete(name);
  }
  has(name: string): boolean {
    return this.#attributes.has(name);
  }
  copy(): Record<string, unknown> {
    return Object.fromEntries(this.#attributes);
  }
}

export class LockServer {
  #owner: string | null = null;
  #count = 0;
  readonly #waiters = new Waiters();
  readonly #recursive: boolean;

  constructor(recursive = false) {
    this.#recursive = recursive;
  }

  acquire(block?: unknown, timeout?: unknown): Promise<boolean> {
    const wait = blocking(`${this.#recursive ? 'RLock' : 'Lock'}.acquire()`, block, timeout);
    return this.acquireFor(callerNow(), wait.block, wait.timeout);
  }

  /** @internal Acquires on behalf of `caller` (Condition.wait() takes the lock back this way). */
  async acquireFor(caller: Caller, block = true, timeout?: number): Promise<boolean> {
    const me = caller.who;
    if (isGone(caller)) return false;
    if (this.#recursive && this.#owner === me) {
      this.#count++;
      return true;
    }
    while (this.#owner !== null) {
      if (!block) return false;
      if (!(await this.#waiters.wait(timeout, caller))) return false;
    }
    this.#owner = me;
    this.#count = 1;
    return true;
  }

  release(): void {
    if (this.#owner === null) throw new ProcessError('Lock.release(): the lock is not held; it was released too many times. Release once per acquire().', { code: 'ERR_MP_LOCK_NOT_HELD' });
    if (this.#recursive && this.#owner !== callerNow().who) throw new ProcessError('RLock.release(): the caller does not hold the lock. Only the process and thread that acquired an RLock can release it.', { code: 'ERR_MP_LOCK_NOT_OWNED' });
    if (--this.#count > 0) return;
    this.#owner = null;
    this.#waiters.wakeOne();
  }

  locked(): boolean {
    return this.#owner !== null;
  }

  /** @internal For Condition: whether `who` holds it, and releasing or restoring every level. */
  ownedBy(who: string): boolean {
    return this.#owner === who;
  }
  releaseAll(): number {
    const count = this.#count;
    this.#count = 1;
    this.release();
    return count;
  }
  async restore(count: number, caller: Caller): Promise<void> {
    // A caller whose connection went does not take the lock back: nobody would release it. The
    // levels go on top of those another task of the same caller may hold meanwhile (it re-entered).
    if (await this.acquireFor(caller, true)) this.#count += count - 1;
  }
}

/** `value` if it is an integer of at least `least` (as Python's threading.Semaphore checks); a TypeError or RangeError naming it otherwise. */
function countOf(where: string, name: string, value: unknown, least: number): number {
  if (Number.isInteger(value) && (value as number) >= least) return value as number;
  const message = `${where}: expected \`${name}\` to be an integer of at least ${least}, got ${describe(value)}.`;
  throw badNumber(value, message);
}

export class SemaphoreServer {
  #value: number;
  readonly #bound: number | null;
  readonly #waiters = new Waiters();

  constructor(value = 1, bounded = false) {
    const name = bounded ? 'BoundedSemaphore' : 'Semaphore';
    this.#value = countOf(`${name}()`, 'value', value, 0);
    this.#bound = bounded ? value : null;
  }

  async acquire(block?: unknown, timeout?: unknown): Promise<boolean> {
    const wait = blocking('Semaphore.acquire()', block, timeout);
    const caller = callerNow();
    if (isGone(caller)) return false;
    while (this.#value === 0) {
      if (!wait.block) return false;
      if (!(await this.#waiters.wait(wait.timeout, caller))) return false;
    }
    this.#value--;
    return true;
  }

  release(n = 1): void {
    countOf(`${this.#bound === null ? 'Semaphore' : 'BoundedSemaphore'}.release()`, 'n', n, 1);
    if (this.#bound !== null && this.#value + n > this.#bound) {
      throw new ProcessError('BoundedSemaphore.release(): released more times than acquired (above its start value). Release once per acquire().', { code: 'ERR_MP_SEMAPHORE_OVER_RELEASED' });
    }
    this.#value += n;
    for (let i = 0; i < n; i++) this.#waiters.wakeOne();
  }

  getValue(): number {
    return this.#value;
  }
}

export class EventServer {
  #flag = false;
  readonly #waiters = new Waiters();

  isSet(): boolean {
    return this.#flag;
  }
  set(): void {
    this.#flag = true;
    this.#waiters.wakeAll();
  }
  clear(): void {
    this.#flag = false;
  }
  async wait(timeout?: unknown): Promise<boolean> {
    const ms = waitTimeout('Event.wait()', timeout);
    if (this.#flag) return true;
    await this.#waiters.wait(ms, callerNow());
    return this.#flag;
  }
}

// Python's manager.Condition(lock): the lock is a Lock or RLock proxy of the same manager, which
// arrives here as a reference to the server's own lock object.
function conditionLock(lock: unknown): LockServer | undefined {
  if (lock === undefined || lock === null) return undefined;
  const referent = referentOf(lock);
  if (referent instanceof LockServer) return referent;
  throw invalidArgument(`Condition(lock): expected a Lock or RLock of this same manager (await manager.Lock()), got ${referent === undefined ? describe(lock) : `a proxy of its ${(referent as object).constructor.name.replace(/Server$/, '')}`}. A shared-memory Lock, or one of another manager, cannot be the lock of a manager's Condition.`);
}

export class ConditionServer {
  readonly #lock: LockServer;
  readonly #waiters = new Waiters();

  constructor(lock?: LockServer) {
    this.#lock = lock ?? new LockServer(true);
  }

  acquire(block?: unknown, timeout?: unknown): Promise<boolean> {
    return this.#lock.acquire(block, timeout);
  }
  release(): void {
    this.#lock.release();
  }
  async wait(timeout?: unknown): Promise<boolean> {
    const ms = waitTimeout('Condition.wait()', timeout);
    const caller = callerNow();
    this.#owned('wait', caller.who);
    const levels = this.#lock.releaseAll();
    const notified = await this.#waiters.wait(ms, caller);
    await this.#lock.restore(levels, caller);
    return notified;
  }
  notify(n = 1): void {
    this.#owned('notify', callerNow().who);
    for (let i = 0; i < n && this.#waiters.wakeOne(); i++);
  }
  notifyAll(): void {
    this.#owned('notifyAll', callerNow().who);
    this.#waiters.wakeAll();
  }
  #owned(method: string, who: string): void {
    if (!this.#lock.ownedBy(who)) throw new ProcessError(`Condition.${method}(): the caller does not hold the condition's lock. Call await cond.acquire() first.`, { code: 'ERR_MP_LOCK_NOT_OWNED' });
  }
}

export class BarrierServer {
  readonly #parties: number;
  /** Runs in the server when the last party arrives, before the others are released (as in Python). */
  #action: ModuleRef | (() => unknown) | undefined;
  /** The default timeout of wait() (Python's Barrier(parties, action, timeout)). */
  readonly #timeout: number | undefined;
  #arrived = 0;
  #generation = 0;
  #resets = 0;
  #broken = false;
  /** This round's waiters (a round being released, while its action runs, has its own). */
  #waiters = new Waiters();
  /** The actions running, by the generation of the round they release (a next round may fill meanwhile). */
  readonly #acting: Record<number, Promise<void> | undefined> = {};

  constructor(parties: number, action?: unknown, timeout?: unknown) {
    if (!Number.isInteger(parties) || parties < 1) throw invalidArgument(`Barrier(): expected \`parties\` to be a positive integer, got ${describe(parties)}.`);
    if (action !== undefined && action !== null && !isModuleRef(action)) {
      throw invalidArgument(`Barrier(): expected \`action\` to be a function exported by its module (or partial(), or { module, name }), got ${describe(action)}.`);
    }
    this.#action = action ?? undefined;
    this.#parties = parties;
    this.#timeout = waitTimeout('Barrier()', timeout);
  }

  /** How many parties must wait for the barrier to pass (Python's `parties`). */
  parties(): number {
    return this.#parties;
  }

  async wait(timeout?: unknown): Promise<number> {
    const ms = waitTimeout('Barrier.wait()', timeout) ?? this.#timeout;
    if (this.#broken) throw new BrokenBarrierError('Barrier.wait(): the barrier is broken. Call reset() to use it again.');
    const caller = callerNow();
    const index = this.#arrived++;
    const generation = this.#generation;
    const resets = this.#resets;
    if (this.#arrived === this.#parties) {
      // A new round starts now: parties that arrive while the action runs are the next round's.
      this.#arrived = 0;
      this.#generation++;
      const released = this.#waiters;
      this.#waiters = new Waiters();
      const acting = this.#action === undefined ? undefined : this.#runAction(resets);
      this.#acting[generation] = acting;
      try {
        await acting;
      } finally {
        delete this.#acting[generation];
        released.wakeAll();
      }
      return index;
    }
    if (!(await this.#waiters.wait(ms, caller))) {
      // Its round filled up while it gave up (its timeout, its caller's abort): it passes with its
      // round, once that round's action has run, as Python's re-check under the lock does.
      // Otherwise it breaks the barrier.
      if (this.#generation !== generation) await this.#acting[generation]?.catch(() => {});
      else this.abort();
    }
    if (this.#broken || this.#resets !== resets || this.#generation === generation) {
      throw new BrokenBarrierError('Barrier.wait(): the barrier broke (reset, aborted or timed out) while this party waited.');
    }
    return index;
  }
  // Python's: an action that throws breaks the barrier (the others get BrokenBarrierError) and
  // its error reaches the last party's wait().
  async #runAction(resets: number): Promise<void> {
    try {
      if (isModuleRef(this.#action)) this.#action = (await importReference(this.#action)) as () => unknown;
      await (this.#action as () => unknown)();
    } catch (error) {
      if (this.#resets === resets) this.abort();
      throw error;
    }
  }
  reset(): void {
    this.#resets++;
    this.#arrived = 0;
    this.#broken = false;
    this.#waiters.wakeAll();
  }
  abort(): void {
    this.#broken = true;
    this.#arrived = 0;
    this.#waiters.wakeAll();
  }
  nWaiting(): number {
    return this.#arrived;
  }
  broken(): boolean {
    return this.#broken;
  }
}

export class QueueServer {
  readonly #items: unknown[] = [];
  readonly #maxsize: number;
  readonly #getters = new Waiters();
  readonly #putters = new Waiters();
  #unfinished = 0;
  readonly #joiners = new Waiters();

  constructor(maxsize = 0) {
    this.#maxsize = maxsize;
  }

  async put(item: unknown, block?: unknown, timeout?: unknown): Promise<void> {
    const wait = blocking('Queue.put()', block, timeout);
    const caller = callerNow();
    while (this.full()) {
      if (!wait.block || !(await this.#putters.wait(wait.timeout, caller))) throw new Full('Queue.put(): the queue is full.');
    }
    this.#items.push(item);
    this.#unfinished++;
    this.#getters.wakeOne();
  }
  putNowait(item: unknown): Promise<void> {
    return this.put(item, false);
  }
  async get(block?: unknown, timeout?: unknown): Promise<unknown> {
    const wait = blocking('Queue.get()', block, timeout);
    const caller = callerNow();
    while (this.#items.length === 0) {
      if (!wait.block || !(await this.#getters.wait(wait.timeout, caller))) throw new Empty('Queue.get(): the queue is empty.');
    }
    const item = this.#items.shift();
    this.#putters.wakeOne();
    return item;
  }
  getNowait(): Promise<unknown> {
    return this.get(false);
  }
  qsize(): number {
    return this.#items.length;
  }
  empty(): boolean {
    return this.#items.length === 0;
  }
  full(): boolean {
    return this.#maxsize > 0 && this.#items.length >= this.#maxsize;
  }
  taskDone(): void {
    if (this.#unfinished <= 0) throw new ProcessError('JoinableQueue.taskDone(): called more times than there were items put. Call it once per item you got.', { code: 'ERR_MP_TASK_DONE_TOO_MANY' });
    if (--this.#unfinished === 0) this.#joiners.wakeAll();
  }
  async join(timeout?: unknown): Promise<void> {
    const ms = waitTimeout('JoinableQueue.join()', timeout);
    if (this.#unfinished === 0) return;
    if (!(await this.#joiners.wait(ms, callerNow())) && this.#unfinished > 0) throw new TimeoutError('JoinableQueue.join(): items are still unfinished.');
  }
}

export class ValueServer {
  #value: unknown;
  readonly typecode: string;

  constructor(typecode: string, value: unknown = 0) {
    this.typecode = typecode;
    this.#value = value;
  }
  get(): unknown {
    return this.#value;
  }
  set(value: unknown): void {
    this.#value = value;
  }
}

/** Python's array.array: items of one typecode, checked as a SharedArray checks them ('i' takes integers, 'd' numbers, 'q' bigints, 'c' one byte). */
export class ArrayServer {
  readonly #items: unknown[];
  readonly typecode: string;

  constructor(typecode: string, sizeOrInitial: number | Iterable<unknown>) {
    this.typecode = typecode;
    const items = typeof sizeOrInitial === 'number' ? Array.from({ length: sizeOrInitial }, () => 0) : [...sizeOrInitial];
    this.#items = items.map((item, i) => typedItem(`Array() (item ${i})`, typecode, item));
  }
  get(index: number): unknown {
    return this.#items[checkedIndex('Array', index, this.#items.length)];
  }
  set(index: number, value: unknown): void {
    this.#items[checkedIndex('Array', index, this.#items.length)] = typedItem('Array.set()', this.typecode, value);
  }
  length(): number {
    return this.#items.length;
  }
  copy(): unknown[] {
    return [...this.#items];
  }
}

// Python's negative indices count from the end; out of range is an IndexError.
function checkedIndex(what: string, index: number, length: number): number {
  if (!Number.isInteger(index)) throw invalidArgument(`${what} indices must be integers, got ${describe(index)}.`);
  const i = index < 0 ? length + index : index;
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new ProcessError(`${what} index ${index} out of range (length ${length}).`, { code: 'ERR_MP_INDEX_ERROR' });
  }
  return i;
}

/** SyncManager's types: typeid → how the server makes one. */
// The waits a caller's AbortSignal can end (a 'cancel' request): for each, the outcome of a wait
// that ended without doing anything (Python's timed-out outcome). Only such an outcome is reported
// as cancelled: a wait that got its item, lock or release first keeps it, abort or not. A
// Condition's wait is not among them: it must take its lock again, whatever ended the wait.
// With each wait, where its options (`{ timeout, signal }`) may be among its arguments: the proxy
// takes the signal out there, and only there (elsewhere a `signal` is data: an item, a value).
type Waits = Record<string, number[]>;
const notDone = (value: unknown, error: { name: string } | undefined) => !error && value === false;
const cancellable: [new (...args: never[]) => object, Waits, (value: unknown, error: { name: string } | undefined) => boolean][] = [
  [QueueServer, { get: [0, 1], put: [1, 2], join: [0] }, (_, error) => error?.name === 'Empty' || error?.name === 'Full' || error?.name === 'TimeoutError'],
  [LockServer, { acquire: [0, 1] }, notDone],
  [SemaphoreServer, { acquire: [0, 1] }, notDone],
  [ConditionServer, { acquire: [0, 1] }, notDone],
  [EventServer, { wait: [0] }, notDone],
  [BarrierServer, { wait: [0] }, (_, error) => error?.name === 'BrokenBarrierError'],
];

/** The waits of `object` that an AbortSignal may end, with where their options are; undefined if none. */
export function waitsOf(object: object): Waits | undefined {
  return cancellable.find(([Class]) => object instanceof Class)?.[1];
}

/** Whether a cancellable wait's outcome is the one of a wait that ended without doing anything. */
export function endedEmpty(object: object, method: string, value: unknown, error: { name: string } | undefined): boolean {
  const entry = cancellable.find(([Class]) => object instanceof Class);
  return entry !== undefined && entry[1][method] !== undefined && entry[2](value, error);
}

export const syncTypes: Record<string, (...args: never[]) => object> = {
  dict: (init?: never) => new DictServer(init),
  list: (init?: never) => new ListServer(init),
  Namespace: (init?: never) => new NamespaceServer(init),
  Lock: () => new LockServer(false),
  RLock: () => new LockServer(true),
  Semaphore: (value?: never) => new SemaphoreServer(value ?? 1),
  BoundedSemaphore: (value?: never) => new SemaphoreServer(value ?? 1, true),
  Condition: (lock?: never) => new ConditionServer(conditionLock(lock)),
  Event: () => new EventServer(),
  Barrier: (parties: never, action: never, timeout: never) => new BarrierServer(parties, action, timeout),
  Queue: (maxsize?: never) => new QueueServer(maxsize ?? 0),
  JoinableQueue: (maxsize?: never) => new QueueServer(maxsize ?? 0),
  Value: (typecode: never, value?: never) => new ValueServer(typecode, value),
  Array: (typecode: never, init: never) => new ArrayServer(typecode, init),
};
