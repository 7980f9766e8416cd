// Managers (Python's multiprocessing.managers): a server process that owns shared objects, and
// proxies to them from any process. BaseManager serves what is register()ed; SyncManager (what
// Manager() starts) serves dict, list, Namespace, the locks, Queue, Value and Array.

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from '../connection/listener.ts';
import { Pipe } from '../connection/connection.ts';
import { getContext, type Context } from '../context.ts';
import { AuthenticationError, ProcessError, TimeoutError, describe, invalidArgument, outOfRange } from '../errors.ts';
import { knownOptions, waitFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { referenceOf, type ModuleRef } from '../internal/function-ref.ts';
import { runtime } from '../internal/runtime.ts';
import type { Process } from '../process.ts';
import { SharedMemory } from '../shared-memory.ts';
import { ShareableList, type ShareableItem } from '../shareable-list.ts';
import { clientFor, forgetClient, describeAddress, type ManagerClient } from './client.ts';
import type { Created, ProxyState } from './protocol.ts';
import { BaseProxy, makeProxy, registerProxyClass, type ProxyClass } from './proxy.ts';
import { Server, managerServerTarget, type Registry } from './server.ts';
import type { ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy, NamespaceProxy, QueueProxy, SemaphoreProxy, ValueProxy } from './types.ts';
import { debug } from '../logging.ts';
import { randomBytes } from '../internal/random.ts';

export { BaseProxy } from './proxy.ts';
export { Namespace } from './namespace.ts';
export { Server } from './server.ts';
export type * from './types.ts';

export interface ManagerOptions {
  /** A Unix socket path or { host, port } (port 0: any free port). @default a private Unix socket */
  address?: Address;
  /** Clients must know it (HMAC challenge both ways). @default currentProcess().authkey */
  authkey?: Uint8Array | string;
  /** The backend of the server: a process (default) or a thread. */
  context?: Context | 'process' | 'thread';
}

export interface ManagerStartOptions extends WaitOptions {
  /** Runs in the server process before it serves (Python's initializer); exported by its module. */
  initializer?: Function | ModuleRef;
  initargs?: unknown[];
}

export interface RegisterOptions {
  /** The methods proxies may call. @default the object's public methods (names not starting with '_') */
  exposed?: string[];
  /** false: register the type without adding a creating method to the manager. @default true */
  createMethod?: boolean;
  /**
   * The class of this type's proxies (Python's proxytype): a subclass of BaseProxy, exported from
   * its module, whose methods call `this.callMethod(name, args)`. Every process that has run this
   * register() (by importing its module) builds those proxies with it. @default a BaseProxy that
   * answers every exposed method by name
   */
  proxytype?: ProxyClass;
}

const registries = new WeakMap<Function, Registry>();

function registryOf(Class: Function): Registry {
  for (let C: Function | null = Class; C && C !== Function.prototype; C = Object.getPrototypeOf(C) as Function | null) {
    const registry = registries.get(C);
    if (registry) return registry;
  }
  return {};
}

/**
 * The base of managers: register types, start a server (or connect to one), create objects there.
 * @example
 * export class MathsManager extends BaseManager {}
 * MathsManager.register('Counter', Counter);
 * await using m = new MathsManager(); await m.start(); const c = await m.create('Counter');
 */
export class BaseManager {
  readonly #options: ManagerOptions;
  readonly #authkey: Uint8Array | null;
  #address: Address | undefined;
  #process: Process | undefined;
  /** The directory of the server's private socket (no `address` given), named here: see start(). */
  #privateDir: string | null = null;
  #state: 'initial' | 'started' | 'connected' | 'shutdown' = 'initial';

  constructor(options: ManagerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgument(`new ${new.target.name}(): expected options { address, authkey, context }, got ${describe(options)}.`);
    knownOptions(`new ${new.target.name}()`, options, ['address', 'authkey', 'context']);
    this.#options = options;
    this.#authkey = options.authkey === undefined ? new Uint8Array(runtime().authkey) : typeof options.authkey === 'string' ? new TextEncoder().encode(options.authkey) : new Uint8Array(options.authkey);
    this.#address = options.address;
  }

  /**
   * Registers a type: `factory` (a class or function exported by its module) makes objects in the
   * server, and `manager[typeid](...args)` creates one and returns its proxy.
   */
  static register(typeid: string, factory?: Function | ModuleRef, options: RegisterOptions = {}): void {
    if (typeof typeid !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(typeid)) throw invalidArgument(`${this.name}.register(): expected \`typeid\` to be an identifier, got ${describe(typeid)}.`);
    if (options.exposed !== undefined && (!Array.isArray(options.exposed) || options.exposed.some((m) => typeof m !== 'string'))) {
      throw invalidArgument(`${this.name}.register('${typeid}'): expected \`exposed\` to be an array of method names, got ${describe(options.exposed)}.`);
    }
    let registry = registries.get(this);
    if (!registry) {
      registry = { ...registryOf(this) };
      registries.set(this, registry);
    }
    if (options.proxytype !== undefined && !(typeof options.proxytype === 'function' && options.proxytype.prototype instanceof BaseProxy)) {
      throw invalidArgument(`${this.name}.register('${typeid}'): expected \`proxytype\` to be a class that extends BaseProxy, got ${describe(options.proxytype)}.`);
    }
    const proxytype = options.proxytype === undefined ? null : registerProxyClass(options.proxytype, referenceOf(options.proxytype, `${this.name}.register('${typeid}') (its proxytype)`));
    registry[typeid] = { factory: factory === undefined ? null : referenceOf(factory, `${this.name}.register('${typeid}')`), exposed: options.exposed ?? null, proxytype };
    // Also without a factory, as Python's register() adds the method: a client's manager class
    // registers the typeids that the server it connect()s to makes (`register('getQueue')`).
    if (options.createMethod !== false && !(typeid in this.prototype)) {
      Object.defineProperty(this.prototype, typeid, {
        value(this: BaseManager, ...args: unknown[]) {
          return this.create(typeid, ...args);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  /** The server's address (once started or connected). */
  get address(): Address {
    if (!this.#address) throw new ProcessError(`${this.constructor.name}.address: the manager has not started. Call await start() first.`, { code: 'ERR_MP_MANAGER_NOT_STARTED' });
    return this.#address;
  }

  /**
   * Starts the server in a new process (or thread, with the thread context). `initializer(...initargs)`
   * runs there first, as Python's start(initializer, initargs): say, to ignore SIGINT, so that the
   * server outlives a Ctrl-C that the main process handles (`process.on('SIGINT', () => {})`).
   */
  async start(options: ManagerStartOptions = {}): Promise<this> {
    const where = `${this.constructor.name}.start()`;
    if (typeof options === 'object' && options !== null) knownOptions(where, options, ['initializer', 'initargs', 'timeout', 'signal']);
    if (this.#state !== 'initial') throw new ProcessError(`${where}: the manager has already ${this.#state === 'shutdown' ? 'shut down' : 'started'}. Create a new manager.`, { code: 'ERR_MP_MANAGER_STARTED' });
    const initializer = options.initializer === undefined ? null : referenceOf(options.initializer, `${where} (its initializer)`);
    const initargs = options.initargs ?? [];
    if (!Array.isArray(initargs)) throw invalidArgument(`${where}: expected \`initargs\` to be an array of arguments, got ${describe(initargs)}.`);
    const context = typeof this.#options.context === 'string' ? getContext(this.#options.context) : this.#options.context ?? getContext();
    const { timeout, signal } = waitOptions(where, { timeout: options.timeout, signal: options.signal });
    signal?.throwIfAborted();
    const [mine, theirs] = Pipe<Address>();
    const registry = registryOf(this.constructor);
    // The server makes its private socket directory, but under a name chosen here: a start() that
    // gives up kills the server, maybe before it said where it listens, and still knows what to remove.
    this.#privateDir = this.#options.address === undefined ? privateDirName() : null;
    const address = this.#privateDir === null ? this.#options.address ?? null : join(this.#privateDir, 'socket');
    const server = new context.Process({ target: managerServerTarget, args: [registry, address, this.#authkey, theirs, initializer, initargs, this.#privateDir !== null], daemon: true, name: `${this.constructor.name}-server` });
    this.#process = server;
    server.start();
    theirs.close();
    try {
      this.#address = await mine.recv({ timeout, signal });
    } catch (error) {
      await this.#abandon(server);
      if (signal?.aborted && error === signal.reason) throw error;
      if (error instanceof TimeoutError) {
        throw new TimeoutError(`${where}: the server process (pid ${server.pid}) was not ready within ${timeout} ms; it was killed. Give start() a longer timeout, or look at what its initializer waits for.`, { processName: server.name });
      }
      throw new ProcessError(`${where}: the server process exited before it was ready (exit code ${server.exitCode}); its error is on stderr.`, { code: 'ERR_MP_MANAGER_START', cause: error });
    } finally {
      mine.close();
    }
    this.#state = 'started';
    return this;
  }

  // A server that is not ready in time (an initializer that hangs, say) is not left running, nor
  // its socket directory: SIGKILL gives it no chance to remove it, so it goes here once it is dead.
  async #abandon(server: Process): Promise<void> {
    server.kill();
    await server.join();
    if (this.#privateDir !== null) rmSync(this.#privateDir, { recursive: true, force: true });
  }

  /**
   * Connects to a server that runs elsewhere (started by another process, or serveForever()).
   * `timeout` and `signal` bound the wait for it: the connection and its authentication.
   */
  async connect(options: WaitOptions = {}): Promise<this> {
    const where = `${this.constructor.name}.connect()`;
    if (typeof options === 'object' && options !== null) knownOptions(where, options, ['timeout', 'signal']);
    if (!this.#address) throw invalidArgument(`${where}: give the server's \`address\` in the options.`);
    const { timeout, signal } = waitOptions(where, options);
    const address = this.#address;
    const timedOut = () => new TimeoutError(`${where}: the server at ${describeAddress(address)} did not answer within ${timeout} ms. Check that it runs and that the address is right.`);
    let answered: boolean;
    try {
      // A connection made for this call ends with it; one another call began is waited for.
      answered = await waitFor(clientFor(address, this.#authkey, { timeout, signal }).then(() => {}), { timeout, signal });
    } catch (error) {
      if (error instanceof TimeoutError) throw timedOut();
      if ((error as ProcessError).code !== 'ERR_MP_CONNECT') throw error;
      throw new ProcessError(`${where}: no manager server answers at ${describeAddress(address)} (${((error as Error).cause as Error)?.message ?? (error as Error).message}). Start one there first (start(), or getServer().serveForever()), or check the address.`, { code: 'ERR_MP_CONNECT', cause: error });
    }
    if (!answered) throw timedOut();
    this.#state = 'connected';
    return this;
  }

  /** A server in this process, for serveForever() (Python's get_server()). */
  getServer(): Server {
    return new Server(registryOf(this.constructor), { ...(this.#address ? { address: this.#address } : {}), authkey: this.#authkey });
  }

  /** Creates a `typeid` object in the server and returns its proxy. */
  async create<T extends object = Record<string, (...args: unknown[]) => Promise<unknown>>>(typeid: string, ...args: unknown[]): Promise<BaseProxy & T> {
    if (this.#state === 'shutdown') {
      throw new ProcessError(`${this.constructor.name}.${typeid}(): the manager was shut down; it creates nothing more. Start a new manager.`, { code: 'ERR_MP_MANAGER_GONE' });
    }
    if (!this.#address) {
      const name = this.constructor.name;
      throw new ProcessError(
        `${name}.${typeid}(): the manager has not started. Start it first: \`await m.start()\`, or \`await using m = await new ${name}().start();\` ` +
          `(Python's \`with ${name}() as m:\` starts it; \`await using\` only shuts it down), or connect() to a server that runs.`,
        { code: 'ERR_MP_MANAGER_NOT_STARTED' },
      );
    }
    const address = this.#address;
    const client = await this.#client(`${this.constructor.name}.${typeid}()`);
    const created = (await client.request({ op: 'create', typeid, args }, `${this.constructor.name}.${typeid}()`)) as Created;
    const proxytype = registryOf(this.constructor)[typeid]?.proxytype ?? null;
    const state: ProxyState = { address, authkey: this.#authkey, server: created.server, oid: created.oid, typeid, exposed: created.exposed, proxytype, ...(created.waits ? { waits: created.waits } : {}) };
    return makeProxy<T>(state);
  }

  /** Stops the server; its proxies reject from then on. */
  async shutdown(): Promise<void> {
    if (this.#state === 'shutdown' || this.#state === 'initial') return;
    const address = this.address;
    this.#state = 'shutdown';
    // A server process of ours that died is not asked: another server may listen at its address now.
    if (this.#process?.isAlive() !== false) {
      debug(() => `sending shutdown message to manager at ${JSON.stringify(address)}`);
      try {
        const client = await clientFor(address, this.#authkey);
        await client.request({ op: 'shutdown' }, `${this.constructor.name}.shutdown()`);
      } catch {
        // the server is already gone: that is what shutdown() wanted
      }
    }
    forgetClient(address);
    await this.#process?.join();
    // A server that was SIGKILLed could not remove its socket: its private directory goes here.
    if (this.#privateDir !== null) rmSync(this.#privateDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** @internal For SharedMemoryManager: a request to this manager's server. */
  protected async request(message: { op: 'track'; name: string }): Promise<void> {
    const client = await this.#client(`${this.constructor.name}.${message.op}()`);
    await client.request(message, `${this.constructor.name}.${message.op}()`);
  }

  // This process's connection to the server: a server that was reached before and cannot be now is gone.
  async #client(what: string): Promise<ManagerClient> {
    try {
      return await clientFor(this.address, this.#authkey);
    } catch (error) {
      if (error instanceof AuthenticationError || this.#state === 'initial') throw error;
      throw new ProcessError(`${what}: the manager at ${describeAddress(this.address)} is gone (it was shut down or died). Start a new manager.`, { code: 'ERR_MP_MANAGER_GONE', cause: error });
    }
  }

  toString(): string {
    return `<${this.constructor.name} ${this.#state}${this.#address ? ` at ${describeAddress(this.#address)}` : ''}>`;
  }
}

// A fresh name in the temporary directory, as a Listener's own private directories are named
// (the server creates it, failing if it exists).
function privateDirName(): string {
  return join(tmpdir(), `mp-listener-${Buffer.from(randomBytes(8)).toString('hex')}`);
}

const builtin = (...typeids: string[]) => Object.fromEntries(typeids.map((t) => [t, { factory: null, exposed: null }]));
registries.set(BaseManager, {});

/** The manager Manager() starts: dict, list, Namespace, the locks, Queue, Value and Array (Python's SyncManager). */
export class SyncManager extends BaseManager {
  /** `init` may be a dict's or list's proxy of this manager: the new dict starts with a copy of its contents. */
  dict<K = unknown, V = unknown>(init?: Map<K, V> | Iterable<[K, V]> | Record<string, V> | DictProxy<K, V> | ListProxy<[K, V]>): Promise<DictProxy<K, V>> {
    return this.create('dict', ...(init === undefined ? [] : [init])) as Promise<DictProxy<K, V>>;
  }
  /** `init` may be a list's proxy of this manager: the new list starts with a copy of its items. */
  list<T = unknown>(init?: Iterable<T> | ListProxy<T>): Promise<ListProxy<T>> {
    return this.create('list', ...(init === undefined ? [] : [init instanceof BaseProxy ? init : [...init]])) as Promise<ListProxy<T>>;
  }
  /** A Namespace in the server, starting with the attributes of `init` (a plain object or a Namespace). */
  Namespace(init?: Record<string, unknown>): Promise<NamespaceProxy> {
    // A Namespace instance crosses as its attributes: the class stays here, as Python's proxy does.
    return this.create('Namespace', ...(init === undefined ? [] : [{ ...init }])) as Promise<NamespaceProxy>;
  }
  Lock(): Promise<LockProxy> {
    return this.create('Lock') as Promise<LockProxy>;
  }
  RLock(): Promise<LockProxy> {
    return this.create('RLock') as Promise<LockProxy>;
  }
  Semaphore(value = 1): Promise<SemaphoreProxy> {
    return this.create('Semaphore', value) as Promise<SemaphoreProxy>;
  }
  BoundedSemaphore(value = 1): Promise<SemaphoreProxy> {
    return this.create('BoundedSemaphore', value) as Promise<SemaphoreProxy>;
  }
  /** A Condition in the server, over `lock` (a Lock or RLock of this manager) or a new RLock. */
  Condition(lock?: LockProxy): Promise<ConditionProxy> {
    return (lock === undefined ? this.create('Condition') : this.create('Condition', lock)) as Promise<ConditionProxy>;
  }
  Event(): Promise<EventProxy> {
    return this.create('Event') as Promise<EventProxy>;
  }
  /**
   * Python's Barrier(parties, action=None, timeout=None). The action runs in the server (as in
   * Python), when the last party arrives and before the others are released: it crosses by
   * reference (export it, or pass partial() or `{ module, name }`), and the server imports its module.
   */
  Barrier(parties: number, action?: (() => unknown) | ModuleRef | null, timeout?: number): Promise<BarrierProxy> {
    const reference = action === undefined || action === null ? null : referenceOf(action, 'SyncManager.Barrier() (its action)');
    return this.create('Barrier', parties, reference, timeout) as Promise<BarrierProxy>;
  }
  Queue<T = unknown>(maxsize = 0): Promise<QueueProxy<T>> {
    return this.create('Queue', maxsize) as Promise<QueueProxy<T>>;
  }
  JoinableQueue<T = unknown>(maxsize = 0): Promise<QueueProxy<T>> {
    return this.create('JoinableQueue', maxsize) as Promise<QueueProxy<T>>;
  }
  Value<T = unknown>(typecode: string, value?: T): Promise<ValueProxy<T>> {
    return this.create('Value', typecode, value) as Promise<ValueProxy<T>>;
  }
  Array<T = unknown>(typecode: string, sizeOrInitial: number | Iterable<T>): Promise<ArrayProxy<T>> {
    return this.create('Array', typecode, typeof sizeOrInitial === 'number' ? sizeOrInitial : [...sizeOrInitial]) as Promise<ArrayProxy<T>>;
  }
}
registries.set(SyncManager, builtin('dict', 'list', 'Namespace', 'Lock', 'RLock', 'Semaphore', 'BoundedSemaphore', 'Condition', 'Event', 'Barrier', 'Queue', 'JoinableQueue', 'Value', 'Array'));

/**
 * Starts a SyncManager in its own process (Python's multiprocessing.Manager()).
 * @example
 * await using manager = await Manager(); const d = await manager.dict(); await d.set(0, '1');
 */
export async function Manager(options: ManagerOptions = {}): Promise<SyncManager> {
  return new SyncManager(options).start();
}

/** Creates SharedMemory blocks and ShareableLists whose segments its server unlinks at shutdown (Python's SharedMemoryManager). */
export class SharedMemoryManager extends BaseManager {
  /** A new SharedMemory of `size` bytes (or `{ size }`, Python's `smm.SharedMemory(size=128)`), unlinked when this manager shuts down. */
  async SharedMemory(size: number | { size: number }): Promise<SharedMemory> {
    const where = 'SharedMemoryManager.SharedMemory()';
    if (typeof size === 'object' && size !== null) knownOptions(where, size, ['size']);
    const bytes: unknown = typeof size === 'object' && size !== null ? size.size : size;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes <= 0) {
      throw (typeof bytes === 'number' ? outOfRange : invalidArgument)(`${where}: expected \`size\`, a positive integer number of bytes (or { size }), got ${describe(bytes)}.`);
    }
    const shm = new SharedMemory({ create: true, size: bytes });
    await this.#track(shm);
    return shm;
  }

  /** A new ShareableList of `sequence`'s items, unlinked when this manager shuts down. */
  async ShareableList(sequence: Iterable<ShareableItem>): Promise<ShareableList> {
    if (typeof sequence === 'string' || typeof (sequence as Partial<Iterable<unknown>>)?.[Symbol.iterator] !== 'function') {
      throw invalidArgument(`SharedMemoryManager.ShareableList(): expected an iterable of items (an array), got ${describe(sequence)}.`);
    }
    const list = new ShareableList(sequence);
    await this.#track(list.shm);
    return list;
  }

  async #track(shm: SharedMemory): Promise<void> {
    try {
      await this.request({ op: 'track', name: `/${shm.name}` });
    } catch (error) {
      // Not tracked, so not ours to keep: the caller gets the error and no segment is left behind.
      shm.close();
      shm.unlink();
      throw error;
    }
  }
}
registries.set(SharedMemoryManager, {});
