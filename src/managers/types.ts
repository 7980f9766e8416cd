// The proxies SyncManager returns, as types: every method is a request to the server, so every
// method returns a Promise.

import type { BaseProxy } from './proxy.ts';

/**
 * A wait's timeout in milliseconds, given as a number (Python's order) or as `{ timeout }`, the
 * library's own objects' options. A Condition's wait() takes no AbortSignal: it must take its lock
 * again, however the wait ends.
 */
export type ProxyTimeout = number | { timeout?: number } | null;

/**
 * A wait's timeout, or `{ timeout, signal }`: when the signal aborts, the client asks the server
 * to end the wait, and the call rejects with the signal's reason if the wait ended without doing
 * anything (an item got, a lock acquired first, is kept: the call resolves with it).
 */
export type ProxyWait = number | { timeout?: number; signal?: AbortSignal } | null;

/** A queue proxy's put()/get() options, as the library's own Queue takes them. */
export interface ProxyQueueOptions {
  block?: boolean;
  timeout?: number;
  /** Ends the wait in the server (see ProxyWait). */
  signal?: AbortSignal;
}

export interface DictProxy<K = unknown, V = unknown> extends BaseProxy {
  get(key: K): Promise<V | undefined>;
  get<D>(key: K, fallback: D): Promise<V | D>;
  set(key: K, value: V): Promise<void>;
  has(key: K): Promise<boolean>;
  delete(key: K): Promise<boolean>;
  keys(): Promise<K[]>;
  values(): Promise<V[]>;
  entries(): Promise<[K, V][]>;
  items(): Promise<[K, V][]>;
  size(): Promise<number>;
  /** `other` may be a dict's or list's proxy of the same manager: its contents are used. */
  update(other: Map<K, V> | Iterable<[K, V]> | Record<string, V> | DictProxy<K, V> | ListProxy<[K, V]>): Promise<void>;
  pop(key: K, fallback?: V): Promise<V>;
  /** Removes and returns the last pair set (Python's popitem()); ERR_MP_KEY_ERROR when empty. */
  popitem(): Promise<[K, V]>;
  setdefault(key: K, value: V): Promise<V>;
  clear(): Promise<void>;
  /** A plain copy, as a Map. */
  copy(): Promise<Map<K, V>>;
}

export interface ListProxy<T = unknown> extends BaseProxy {
  append(item: T): Promise<void>;
  /** `items` may be a list's proxy of the same manager: its items are used. */
  extend(items: Iterable<T> | ListProxy<T>): Promise<void>;
  get(index: number): Promise<T>;
  set(index: number, item: T): Promise<void>;
  pop(index?: number): Promise<T>;
  insert(index: number, item: T): Promise<void>;
  remove(item: T): Promise<void>;
  index(item: T): Promise<number>;
  count(item: T): Promise<number>;
  /** Whether an equal item is in the list (Python's `item in list`). */
  has(item: T): Promise<boolean>;
  /** A copy of items start..end (Python's `list[start:end]`). */
  slice(start?: number, end?: number): Promise<T[]>;
  length(): Promise<number>;
  reverse(): Promise<void>;
  sort(options?: { reverse?: boolean }): Promise<void>;
  /** A plain copy, as an array. */
  copy(): Promise<T[]>;
}

export interface NamespaceProxy extends BaseProxy {
  get(name: string): Promise<unknown>;
  set(name: string, value: unknown): Promise<void>;
  delete(name: string): Promise<boolean>;
  has(name: string): Promise<boolean>;
  copy(): Promise<Record<string, unknown>>;
}

export interface LockProxy extends BaseProxy {
  acquire(block?: boolean, timeout?: ProxyWait): Promise<boolean>;
  release(): Promise<void>;
  locked(): Promise<boolean>;
  /** Python's `with lock:`: `await using held = await lock.hold()`; a timeout rejects with TimeoutError. */
  hold(timeout?: number): Promise<AsyncDisposable>;
}

export interface SemaphoreProxy extends BaseProxy {
  acquire(block?: boolean, timeout?: ProxyWait): Promise<boolean>;
  release(n?: number): Promise<void>;
  getValue(): Promise<number>;
  /** Python's `with semaphore:`: `await using held = await slots.hold()`. */
  hold(timeout?: number): Promise<AsyncDisposable>;
}

export interface EventProxy extends BaseProxy {
  isSet(): Promise<boolean>;
  set(): Promise<void>;
  clear(): Promise<void>;
  wait(timeout?: ProxyWait): Promise<boolean>;
}

export interface ConditionProxy extends BaseProxy {
  acquire(block?: boolean, timeout?: ProxyWait): Promise<boolean>;
  release(): Promise<void>;
  /** Python's `with cond:`: `await using held = await cond.hold()`. */
  hold(timeout?: number): Promise<AsyncDisposable>;
  wait(timeout?: ProxyTimeout): Promise<boolean>;
  /**
   * Python's wait_for(): waits until `predicate()` (run here, between waits in the server) is
   * truthy, or `timeout` ms pass; its last value. Call it holding the condition.
   */
  waitFor<T>(predicate: () => T | Promise<T>, timeout?: number): Promise<T>;
  notify(n?: number): Promise<void>;
  notifyAll(): Promise<void>;
}

export interface BarrierProxy extends BaseProxy {
  /** How many parties must wait (Python's `parties`). */
  parties(): Promise<number>;
  wait(timeout?: ProxyWait): Promise<number>;
  reset(): Promise<void>;
  abort(): Promise<void>;
  nWaiting(): Promise<number>;
  broken(): Promise<boolean>;
}

export interface QueueProxy<T = unknown> extends BaseProxy {
  put(item: T, block?: boolean, timeout?: ProxyWait): Promise<void>;
  put(item: T, options: ProxyQueueOptions): Promise<void>;
  putNowait(item: T): Promise<void>;
  get(block?: boolean, timeout?: ProxyWait): Promise<T>;
  get(options: ProxyQueueOptions): Promise<T>;
  getNowait(): Promise<T>;
  qsize(): Promise<number>;
  empty(): Promise<boolean>;
  full(): Promise<boolean>;
  taskDone(): Promise<void>;
  join(timeout?: ProxyWait): Promise<void>;
}

export interface ValueProxy<T = unknown> extends BaseProxy {
  get(): Promise<T>;
  set(value: T): Promise<void>;
}

export interface ArrayProxy<T = unknown> extends BaseProxy {
  get(index: number): Promise<T>;
  set(index: number, value: T): Promise<void>;
  length(): Promise<number>;
  copy(): Promise<T[]>;
}
