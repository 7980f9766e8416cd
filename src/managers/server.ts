// A manager's server (Python's managers.Server): owns the objects, answers requests from proxies.
// Each request runs as its own task, so a call that waits (a Lock's acquire, a Queue's get) never
// holds up the others; calls that do not wait run in the order they arrived. Only registered
// types are created and only their exposed methods are called: values cross by structured clone,
// so no request can make the server run code it did not register.

import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isMainThread } from '../internal/threads.ts';
import { Pipe, type Connection } from '../connection/connection.ts';
import { Listener, formatAddress, type Address } from '../connection/listener.ts';
import { ProcessError, invalidArgument } from '../errors.ts';
import { importReference, unbind, type ModuleRef } from '../internal/function-ref.ts';
import { debug, info } from '../logging.ts';
import { describeError } from '../internal/remote-error.ts';
import { unlinkQuietly } from '../resource-tracker.ts';
import { asCaller, endedEmpty, syncTypes, waitsOf } from './builtins.ts';
import { CANCELLABLE_WAITS, type Created, type Reply, type Request } from './protocol.ts';
import { becomeServer, callerId } from './proxy.ts';

/** The signal of a call made in the server itself (a LocalRef's method): its caller never goes away. */
const NEVER = new AbortController().signal;

/** How the server makes a type: a built-in (SyncManager's) or a registered factory, and what it exposes. */
export interface TypeSpec {
  factory: ModuleRef | null;
  exposed: string[] | null;
  /** The proxies' class, for the processes that create or receive them (the server does not use it). */
  proxytype?: ModuleRef | null;
}

export type Registry = Record<string, TypeSpec>;

interface Held {
  object: object;
  typeid: string;
  exposed: string[];
}

export class Server {
  readonly #registry: Registry;
  readonly #listener: Listener;
  readonly #objects = new Map<number, Held>();
  /** Each connection's signal aborts when it goes, ending its callers' waits (builtins.ts). */
  readonly #connections = new Map<Connection<Request | Reply>, AbortController>();
  readonly #segments = new Set<string>();
  #nextOid = 1;
  /** This server's identity, in every proxy of its objects (see ProxyState.server): 48 random bits. */
  readonly #id = randomId48();
  #stopping = false;
  /** The directory of its socket that this server made and removes (see ownDir()). */
  readonly #privateDir: string | null;

  /** `privateDir`: listen at `socket` in that directory, which the server makes and removes. */
  constructor(registry: Registry, options: { address?: Address; authkey: Uint8Array | null; privateDir?: string }) {
    this.#registry = registry;
    this.#privateDir = options.privateDir ?? null;
    const address = this.#privateDir === null ? options.address : ownDir(this.#privateDir);
    try {
      this.#listener = new Listener({ ...(address ? { address } : {}), ...(options.authkey ? { authkey: options.authkey } : {}) });
    } catch (error) {
      if (this.#privateDir !== null) rmSync(this.#privateDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The bound address (after ready()). */
  get address(): Address {
    return this.#listener.address;
  }

  async ready(): Promise<this> {
    await this.#listener.ready();
    becomeServer({
      address: this.address,
      id: this.#id,
      resolve: (state) => (state.server === this.#id ? this.#objects.get(state.oid)?.object : undefined),
      call: (state, method, args) => this.#call({ op: 'call', id: 0, server: state.server, oid: state.oid, method, args, caller: callerId() }, NEVER),
    });
    return this;
  }

  /** Serves until shutdown() (a proxy's manager.shutdown(), or a call here). */
  async serveForever(): Promise<void> {
    await this.ready();
    info(() => `manager serving at ${JSON.stringify(this.address)}`);
    while (!this.#stopping) {
      let conn: Connection<Request | Reply>;
      try {
        conn = await this.#listener.accept<Request | Reply>();
      } catch (error) {
        if (this.#stopping) break;
        continue; // a client with a wrong authkey: it was refused, the server goes on
      }
      const gone = new AbortController();
      this.#connections.set(conn, gone);
      void this.#serve(conn, gone);
    }
  }

  // A client on this machine asks to go on over a Pipe (shared-memory rings: a round trip there
  // costs a fraction of a socket's). Its socket stays open, idle: its closing is how the server
  // learns that the client went, even a worker thread that ended. Either connection's end ends both.
  #rings(socket: Connection<Request | Reply>, gone: AbortController): Connection<Request | Reply> {
    const [mine, theirs] = Pipe<Request | Reply>();
    this.#connections.set(mine, gone);
    gone.signal.addEventListener('abort', () => mine.close(), { once: true });
    void this.#serve(mine, gone, socket);
    return theirs;
  }

  shutdown(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    debug(() => `manager at ${JSON.stringify(this.address)} stopping: ${this.#objects.size} objects, ${this.#connections.size} connections`);
    for (const name of this.#segments) unlinkQuietly(name);
    this.#listener.close();
    if (this.#privateDir !== null) rmSync(this.#privateDir, { recursive: true, force: true });
    for (const [conn, gone] of this.#connections) {
      conn.close();
      gone.abort(); // pending waits end now, and their timers no longer keep this process alive
    }
  }

  async #serve(conn: Connection<Request | Reply>, gone: AbortController, socket?: Connection<Request | Reply>): Promise<void> {
    /** The calls of this connection whose caller passed an AbortSignal, while they run. */
    const cancels = new Map<number, AbortController>();
    for (;;) {
      let request: Request;
      try {
        request = (await conn.recv()) as Request;
      } catch {
        // The client went away: its calls still waiting (a get(), an acquire()) end without taking anything.
        this.#connections.delete(conn);
        if (socket) this.#connections.delete(socket);
        gone.abort();
        socket?.close();
        return;
      }
      if (request.op === 'rings') this.#sendRings(conn, request.id, gone);
      else if (request.op === 'cancel') cancels.get(request.of)?.abort();
      else void this.#handle(conn, request, gone.signal, cancels);
    }
  }

  #sendRings(conn: Connection<Request | Reply>, id: number, gone: AbortController): void {
    let rings: Connection<Request | Reply>;
    try {
      rings = this.#rings(conn, gone);
    } catch (error) {
      conn.send({ id, ok: false, error: describeError(error) }); // no shared memory here: the client stays on the socket
      return;
    }
    conn.send({ id, ok: true, value: rings });
    rings.close(); // sending counted the client's copy
  }

  async #handle(conn: Connection<Request | Reply>, request: Request, gone: AbortSignal, cancels: Map<number, AbortController>): Promise<void> {
    const cancel = request.op === 'call' && request.cancellable ? new AbortController() : undefined;
    const endCall = cancel && (() => cancel.abort());
    if (cancel) {
      cancels.set(request.id, cancel);
      gone.addEventListener('abort', endCall as () => void, { once: true });
    }
    let reply: Reply;
    try {
      reply = { id: request.id, ok: true, value: await this.#run(request, cancel?.signal ?? gone) };
    } catch (error) {
      reply = { id: request.id, ok: false, error: describeError(error) };
    }
    if (cancel) {
      cancels.delete(request.id);
      gone.removeEventListener('abort', endCall as () => void);
      if (cancel.signal.aborted && this.#endedEmpty(request as Extract<Request, { op: 'call' }>, reply)) reply = { id: request.id, ok: false, error: reply.ok ? describeError(new Error('cancelled')) : reply.error, cancelled: true };
    }
    // A client that went away while its call waited gets no reply, and must not bring the server down.
    if (!gone.aborted && !conn.closed && conn.writable) {
      try {
        conn.send(reply);
      } catch (error) {
        try {
          conn.send({ id: request.id, ok: false, error: describeError(error) }); // the value could not cross
        } catch {
          // the connection broke between the two sends: nobody is left to tell
        }
      }
    }
    if (request.op === 'shutdown') {
      debug(() => 'manager received shutdown message');
      await conn.flushed();
      this.shutdown();
    }
  }

  #run(request: Request, gone: AbortSignal): unknown {
    switch (request.op) {
      case 'create':
        return this.#create(request.typeid, request.args);
      case 'call':
        if (request.server !== this.#id) {
          throw new ProcessError(`Manager: this proxy's manager at ${formatAddress(this.address)} is gone; the manager there now is another one (it was restarted). Use proxies of the new manager.`, { code: 'ERR_MP_MANAGER_GONE' });
        }
        return this.#call(request, gone);
      case 'track':
        this.#segments.add(request.name);
        return null;
      case 'shutdown':
        return null;
      case 'rings':
      case 'cancel':
        throw new ProcessError(`Manager server: a ${request.op} request is answered where requests are read.`, { code: 'ERR_MP_BAD_REQUEST' });
      default:
        throw new ProcessError(`Manager server: unknown request ${JSON.stringify((request as { op: unknown }).op)}.`, { code: 'ERR_MP_BAD_REQUEST' });
    }
  }

  async #create(typeid: string, args: unknown[]): Promise<Created> {
    // Own names only: 'toString' or '__proto__' is no registered type.
    const spec = typeof typeid === 'string' && Object.hasOwn(this.#registry, typeid) ? this.#registry[typeid] : undefined;
    if (!spec || (!spec.factory && !Object.hasOwn(syncTypes, typeid))) throw new ProcessError(`Manager server: no type '${typeid}' is registered. Register it with register('${typeid}', factory) on the manager class before start().`, { code: 'ERR_MP_UNKNOWN_TYPEID' });
    const object = spec.factory ? await constructFrom(spec.factory, args, typeid) : (syncTypes[typeid] as (...a: unknown[]) => object)(...args);
    const exposed = spec.exposed ?? publicMethods(object);
    const oid = this.#nextOid++;
    this.#objects.set(oid, { object, typeid, exposed });
    const waits = waitsOf(object);
    return waits ? { server: this.#id, oid, exposed, waits } : { server: this.#id, oid, exposed };
  }

  // A call whose wait a cancel ended, with the outcome of a wait that did nothing (see builtins.ts).
  #endedEmpty(request: Extract<Request, { op: 'call' }>, reply: Reply): boolean {
    const held = this.#objects.get(request.oid);
    return held !== undefined && endedEmpty(held.object as object, request.method, reply.ok ? reply.value : undefined, reply.ok ? undefined : reply.error);
  }

  #call(request: Extract<Request, { op: 'call' }>, gone: AbortSignal): unknown {
    const { oid, method, args, caller } = request;
    const held = this.#objects.get(oid);
    if (!held) throw new ProcessError(`Manager server: no object #${oid} (it belongs to another manager, or this one restarted).`, { code: 'ERR_MP_UNKNOWN_OBJECT' });
    if (!held.exposed.includes(method)) {
      throw new ProcessError(`${held.typeid}.${method}(): the method is not exposed (exposed: ${held.exposed.join(', ')}).`, { code: 'ERR_MP_NOT_EXPOSED' });
    }
    if (request.cancellable && waitsOf(held.object as object)?.[method] === undefined) {
      throw invalidArgument(`${held.typeid}.${method}(): takes no AbortSignal. A proxy's signal ends the waits of ${CANCELLABLE_WAITS}; use a timeout here.`);
    }
    const fn = (held.object as Record<string, unknown>)[method];
    if (typeof fn !== 'function') throw new ProcessError(`${held.typeid}.${method}: not a method of the object.`, { code: 'ERR_MP_NOT_EXPOSED' });
    return asCaller(caller, () => (fn as Function).apply(held.object, args), gone);
  }
}

// A partial() factory's bound arguments are passed here, not bound to it: a bound class would no
// longer read as a class, and would be called without `new`.
async function constructFrom(reference: ModuleRef, args: unknown[], typeid: string): Promise<object> {
  const [factory, bound] = unbind(reference);
  return construct(await importReference(factory), bound.length ? [...bound, ...args] : args, typeid);
}

function construct(factory: unknown, args: unknown[], typeid: string): object {
  if (typeof factory !== 'function') throw new ProcessError(`Manager server: the factory of '${typeid}' is not a function or class.`, { code: 'ERR_MP_BAD_FACTORY' });
  const isClass = /^class[\s{]/.test(Function.prototype.toString.call(factory));
  const object: unknown = isClass ? Reflect.construct(factory, args) : (factory as Function)(...args);
  if (typeof object !== 'object' || object === null) throw new ProcessError(`Manager server: the factory of '${typeid}' returned ${String(object)}, not an object.`, { code: 'ERR_MP_BAD_FACTORY' });
  return object;
}

// A private socket directory under the name its manager chose (BaseManager.start()): made here, as
// a Listener makes its own, only by this process (it fails if the name exists) and for it alone.
function ownDir(dir: string): string {
  mkdirSync(dir, { mode: 0o700 });
  return join(dir, 'socket');
}

/** Python's public_methods: every method reachable on the object whose name does not start with '_'. */
export function publicMethods(object: object): string[] {
  const names = new Set<string>();
  for (let proto: object | null = object; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || name.startsWith('_')) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof descriptor?.value === 'function') names.add(name);
    }
  }
  return [...names];
}

// From Web Crypto, which is always loaded: node:crypto would cost this process 3-5 ms to load.
function randomId48(): number {
  const [high = 0, low = 0] = crypto.getRandomValues(new Uint32Array(2));
  return (high & 0xffff) * 2 ** 32 + low;
}

/** runManagerServer by name, as pool/worker-loop.ts names its target (no inspector lookup). */
export const managerServerTarget: ModuleRef = { module: import.meta.url, name: 'runManagerServer' };

/**
 * The target of a manager's server process: runs the initializer (Python's start(initializer,
 * initargs)), then serves, after telling the parent where.
 */
export async function runManagerServer(registry: Registry, address: Address | null, authkey: Uint8Array | null, ready: Connection<Address>, initializer?: ModuleRef | null, initargs: unknown[] = [], ownsDir = false): Promise<void> {
  if (initializer) await ((await importReference(initializer)) as (...args: unknown[]) => unknown)(...initargs);
  // ownsDir: `address` is `socket` in a directory named by the manager, for this server to make.
  const where = ownsDir && typeof address === 'string' ? { privateDir: dirname(address) } : address ? { address } : {};
  const server = new Server(registry, { ...where, authkey });
  await server.ready();
  // The server is daemonic: when its parent exits without shutdown() (or dies), it gets SIGTERM.
  // It then does what shutdown() does (removes its socket file, unlinks a SharedMemoryManager's
  // segments) and dies of the signal as before. Worker threads get no signals.
  const terminated = () => {
    server.shutdown();
    process.kill(process.pid, 'SIGTERM');
  };
  if (isMainThread()) process.once('SIGTERM', terminated);
  ready.send(server.address);
  ready.close();
  try {
    await server.serveForever();
  } finally {
    process.off('SIGTERM', terminated);
  }
  // Python's server exits once it stops serving (serve_forever() ends in sys.exit(0)): what its
  // objects still have scheduled (a timer, a socket) does not keep it, and shutdown(), which
  // joins it, from returning. Its replies are written by then (shutdown() closed each client).
  process.exit(0);
}

