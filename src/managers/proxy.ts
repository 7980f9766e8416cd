// Proxies (Python's BaseProxy): a handle in any process on an object that lives in a manager's
// server. Every method call is a request over the process's connection to that server, so every
// proxy method returns a Promise. A proxy travels to other processes (as Process args, through
// queues, stored inside other proxies) as its state, and reconnects there.

import { describe, invalidArgument, ProcessError, TimeoutError } from '../errors.ts';
import { monotonicMs } from '../internal/clock.ts';
import { timeoutMs } from '../internal/validate.ts';
import { dumps, isScratch, loadsImporting, registerReducer } from '../reduction.ts';
import { threadId } from '../internal/threads.ts';
import { clientFor, describeAddress, type ManagerClient } from './client.ts';
import type { ProxyState, Request } from './protocol.ts';
import type { ModuleRef } from '../internal/function-ref.ts';
import { thrownToCaller } from '../internal/remote-error.ts';

const states = new WeakMap<object, ProxyState>();
/** Each proxy's client once it connected (checked for `broken` at every call). */
const connected = new WeakMap<ProxyState, ManagerClient>();

// Two literals, not a spread: this runs for every call, and most carry no signal (nor the key).
function callOf(state: ProxyState, method: string, args: unknown[], signal: AbortSignal | undefined): Omit<Extract<Request, { op: 'call' }>, 'id'> {
  if (signal) return { op: 'call', server: state.server, oid: state.oid, method, args, caller: callerId(), cancellable: true };
  return { op: 'call', server: state.server, oid: state.oid, method, args, caller: callerId() };
}

/**
 * Where a wait's options carry an AbortSignal; -1 if they do not, or the call is no wait that a
 * signal can end (its server said which are, when it made the object: ProxyState.waits).
 */
function signalAt(state: ProxyState, method: string, args: unknown[]): number {
  const places = state.waits?.[method];
  if (places === undefined) return -1;
  for (const i of places) {
    const arg = args[i];
    if (typeof arg === 'object' && arg !== null && (arg as { signal?: unknown }).signal !== undefined) return i;
  }
  return -1;
}

/**
 * The AbortSignal cannot travel: the options go on without it (in a copy of the arguments), and
 * the client ends the wait in the server when it aborts.
 */
function takeSignal(args: unknown[], at: number, where: string): [unknown[], AbortSignal] {
  const { signal, ...rest } = args[at] as { signal: unknown };
  if (!(signal instanceof AbortSignal)) throw invalidArgument(`${where}: expected \`signal\` to be an AbortSignal, got ${describe(signal)}.`);
  return [args.with(at, rest), signal];
}

/** The state of a proxy (or of a server-side reference to one of the server's own objects). */
export function proxyState(proxy: object): ProxyState {
  const state = states.get(proxy);
  if (!state) throw invalidArgument('expected a manager proxy.');
  return state;
}

/**
 * The base of every proxy. Calls on methods its referent exposes become requests to the manager.
 * @example
 * const counter = await manager.Counter(); await counter.increment(); // a registered type's proxy
 */
export class BaseProxy {
  constructor(state: ProxyState) {
    states.set(this, state);
  }

  /** The registered type name of the referent ('dict', 'list', 'Lock', a user's typeid...). */
  get typeid(): string {
    return proxyState(this).typeid;
  }

  /** Calls `method` on the referent with `args` (Python's _callmethod). */
  // Async, awaiting the call: an error from the manager is thrown with the stack of the code that
  // awaits it (about a third of a microsecond per call, 2-4% of a pipelined one).
  async callMethod(method: string, args: unknown[] = []): Promise<unknown> {
    try {
      return await this.#call(method, args);
    } catch (error) {
      throw thrownToCaller(error, BaseProxy.prototype.callMethod);
    }
  }

  #call(method: string, args: unknown[]): Promise<unknown> {
    const state = proxyState(this);
    let signal: AbortSignal | undefined;
    const at = signalAt(state, method, args);
    if (at >= 0) [args, signal] = takeSignal(args, at, `${state.typeid}.${method}()`);
    // The connected client, once known, is used at once: no await (a promise and a turn) per call.
    const client = connected.get(state);
    if (client && !client.broken && state.exposed.includes(method)) return client.request(callOf(state, method, args, signal), () => `${state.typeid}.${method}()`, signal);
    return this.#callConnecting(state, method, args, signal);
  }

  async #callConnecting(state: ProxyState, method: string, args: unknown[], signal: AbortSignal | undefined): Promise<unknown> {
    if (!state.exposed.includes(method)) {
      throw new ProcessError(`${state.typeid} proxy: '${method}' is not exposed by the manager (exposed: ${state.exposed.join(', ') || 'nothing'}). Add it to \`exposed\` in register().`, { code: 'ERR_MP_NOT_EXPOSED' });
    }
    let client;
    try {
      client = await clientFor(state.address, state.authkey);
    } catch (error) {
      throw new ProcessError(`${state.typeid}.${method}(): cannot reach the proxy's manager at ${describeAddress(state.address)} (shut down, or its process died). Start a new manager.`, { code: 'ERR_MP_MANAGER_GONE', cause: error });
    }
    connected.set(state, client);
    return client.request(callOf(state, method, args, signal), () => `${state.typeid}.${method}()`, signal);
  }

  toString(): string {
    return describeProxy(proxyState(this));
  }

  /** console.log() shows what it is a proxy of, and where. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function describeProxy(state: ProxyState): string {
  return `<${state.typeid} proxy #${state.oid} at ${describeAddress(state.address)}>`;
}

/** Who calls (pid and thread): the server's RLock and Condition need to know their owner. */
export function callerId(): string {
  return (caller ??= `${process.pid}:${threadId()}`);
}

let caller: string | undefined;

// Names that code asks of any object (await asks for `then`): they must not look like methods.
const notMethods = new Set(['then', 'toJSON', 'inspect', 'asymmetricMatch', 'nodeType', '$$typeof']);

type ClientMethod = (proxy: BaseProxy, ...args: never[]) => Promise<unknown>;

// Python's `with lock_proxy:`: `await using held = await lock.hold(timeout?)` (the release is a call
// to the server, so the block's end awaits it).
async function hold(proxy: BaseProxy, timeout?: number): Promise<AsyncDisposable> {
  if (!(await proxy.callMethod('acquire', [true, timeout]))) {
    throw new TimeoutError(`${proxy.typeid}.hold(): not acquired within ${timeout} ms.`);
  }
  let held = true;
  return {
    async [Symbol.asyncDispose]() {
      if (!held) return;
      held = false;
      await proxy.callMethod('release');
    },
  };
}

// Python's ConditionProxy.wait_for(): the predicate runs here, in the caller, between wait()s in
// the server (a function cannot reach the server). Call it holding the condition.
async function waitFor(proxy: BaseProxy, predicate: () => unknown, timeout?: number): Promise<unknown> {
  if (typeof predicate !== 'function') throw invalidArgument(`Condition.waitFor(): expected a predicate function, got ${typeof predicate}.`);
  const deadline = timeout === undefined ? undefined : monotonicMs() + timeoutMs('Condition.waitFor()', timeout);
  let result = await predicate();
  while (!result) {
    const left = deadline === undefined ? undefined : deadline - monotonicMs();
    if (left !== undefined && left <= 0) break;
    await proxy.callMethod('wait', [left]);
    result = await predicate();
  }
  return result;
}

/** Methods that run in the client, by typeid, where the server's object exposes none of that name. */
const clientMethods: Record<string, Record<string, ClientMethod>> = {
  Lock: { hold },
  RLock: { hold },
  Semaphore: { hold },
  BoundedSemaphore: { hold },
  Condition: { hold, waitFor: waitFor as ClientMethod },
};

/** A BaseProxy subclass given as register()'s proxytype. */
export type ProxyClass = new (state: ProxyState) => BaseProxy;

/** The proxytypes this process registered, by module and export name (a received proxy finds its class here). */
const proxyClasses = new Map<string, ProxyClass>();
const keyOfRef = (ref: ModuleRef) => `${ref.module}#${ref.name}`;

export function registerProxyClass(Class: ProxyClass, ref: ModuleRef): ModuleRef {
  proxyClasses.set(keyOfRef(ref), Class);
  return ref;
}

/**
 * A proxy of `state`: an instance of its proxytype when this process registered one, else a
 * proxy whose exposed methods are callable as methods (`d.get(k)`), through an ES Proxy.
 */
export function makeProxy<T extends object = Record<string, (...args: unknown[]) => Promise<unknown>>>(state: ProxyState): BaseProxy & T {
  const Class = state.proxytype ? proxyClasses.get(keyOfRef(state.proxytype)) : undefined;
  if (Class) return new Class(state) as BaseProxy & T;
  const base = new BaseProxy(state);
  const proxy = new Proxy(base, {
    get(target, property, receiver) {
      if (typeof property === 'string' && !(property in target) && !notMethods.has(property)) {
        const local = state.exposed.includes(property) ? undefined : clientMethods[state.typeid]?.[property];
        if (local) return (...args: never[]) => local(receiver as BaseProxy, ...args);
        // An exposed method calls the server; any other name rejects, naming what is exposed.
        return (...args: unknown[]) => target.callMethod(property, args);
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as Function).bind(target) : value;
    },
    // Python's `v.value = 5` or `ns.x = 1` reaches the object in the server; here it would only
    // change this process's proxy object, silently: refused, naming the call that does it.
    set(_target, property) {
      throw assignmentRefused(state, String(property));
    },
  });
  states.set(proxy, state);
  return proxy as BaseProxy & T;
}

function assignmentRefused(state: ProxyState, property: string): TypeError {
  const call = { Value: 'await proxy.set(value)', Namespace: `await proxy.set('${property}', value)`, dict: `await proxy.set('${property}', value)` }[state.typeid] ?? 'one of its methods (await proxy.method(...))';
  return invalidArgument(`${describeProxy(state)}: \`proxy.${property} = ...\` would change only this process's proxy object, not the ${state.typeid} in the manager's server. Call ${call} instead.`);
}

/** What a LocalRef refers to, under a key that no exposed method name can take (see LocalRef). */
const kReferent = Symbol('referent');

/**
 * In the server: a reference to one of its own objects that arrived inside a value (a proxy
 * stored in a dict, or passed to a registered type's method). It stays a reference, and becomes
 * a proxy again wherever it is sent. It answers as the proxy it was (Python rebuilds a proxy
 * there): the same method names (an exposed `toString` through callMethod() only), and calls that
 * take and return copies (see callHere()). It names its object in an enumerable symbol-keyed
 * field, so two references to one object are equal (a list's index() and remove() compare items
 * by value) and others are not, and no exposed method's name is shadowed by a field.
 */
export class LocalRef {
  readonly [kReferent]: { server: number; oid: number };

  constructor(state: ProxyState) {
    this[kReferent] = { server: state.server, oid: state.oid };
    states.set(this, state);
    for (const method of state.exposed) {
      // The names a proxy answers with its own members, or never answers (`then`), as makeProxy().
      if (method in this || notMethods.has(method)) continue;
      Object.defineProperty(this, method, { value: (...args: unknown[]) => callHere(state, method, args) });
    }
  }

  /** As BaseProxy's. */
  get typeid(): string {
    return proxyState(this).typeid;
  }

  /** As BaseProxy's: any exposed method, whatever its name. */
  callMethod(method: string, args: unknown[] = []): Promise<unknown> {
    return callHere(proxyState(this), method, args);
  }

  toString(): string {
    return describeProxy(proxyState(this));
  }
}

interface ServerSide {
  address: ProxyState['address'];
  /** Which server this is: one started earlier at the same address had other objects under the same ids. */
  id: number;
  resolve(state: ProxyState): unknown;
  call(state: ProxyState, method: string, args: unknown[]): unknown;
}

/** Set by the server process: how to tell its own proxies, what they refer to, and how to call it. */
let serverSide: ServerSide | undefined;

export function becomeServer(side: ServerSide): void {
  serverSide = side;
}

/**
 * A method of a LocalRef, asynchronous as a proxy's: its errors reject. Its arguments and result
 * cross as a proxy call's do, as copies (a LocalRef inside stays one): the method must not get
 * its caller's objects to keep, nor its caller the server's object to change behind its back.
 */
async function callHere(state: ProxyState, method: string, args: unknown[]): Promise<unknown> {
  if (!serverSide) throw new ProcessError(`${state.typeid}.${method}(): the manager server of this reference has stopped.`, { code: 'ERR_MP_MANAGER_GONE' });
  const where = `${state.typeid}.${method}()`;
  const result = await serverSide.call(state, method, (await copied(args, `${where} args`)) as unknown[]);
  return copied(result, `${where} result`);
}

// What a send and a receive would make of `value`, here (a Buffer's bytes copied out of the scratch).
function copied(value: unknown, where: string): unknown {
  const bytes = dumps(value, where);
  return loadsImporting(bytes, where, !isScratch(bytes));
}

/**
 * In the server: the object that `value`, a proxy of this server's that arrived in a request's
 * arguments, refers to (Python's RebuildProxy gives the server its referent); undefined for anything else.
 */
export function referentOf(value: unknown): unknown {
  const state = value instanceof LocalRef ? states.get(value) : undefined;
  return state && serverSide?.resolve(state);
}

// A proxy of this very server (same address, same server id) is a reference to its object here;
// one of a server that ran at this address before stays a proxy, whose calls say it is gone.
function rebuildProxy(state: ProxyState): object {
  if (serverSide && state.server === serverSide.id && describeAddress(serverSide.address) === describeAddress(state.address)) return new LocalRef(state);
  return makeProxy(state);
}

registerReducer(BaseProxy, 'ManagerProxy', { reduce: (proxy) => proxyState(proxy), rebuild: rebuildProxy });
registerReducer(LocalRef, 'ManagerProxy', { reduce: (ref) => proxyState(ref), rebuild: rebuildProxy });
