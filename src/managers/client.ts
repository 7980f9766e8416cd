// One connection per process to each manager server, shared by every proxy of that manager:
// requests carry ids, so many calls can be in flight at once (pipelining). The connection keeps
// the process alive only while a call waits for its reply.

import { Client, type Address } from '../connection/listener.ts';
import { Connection } from '../connection/connection.ts';
import { AuthenticationError, BrokenBarrierError, BufferTooShort, Empty, Full, ProcessError, RemoteError, TimeoutError, WorkerLostError, invalidArgument } from '../errors.ts';
import { awayFromCaller, rebuildError, type ErrorData } from '../internal/remote-error.ts';
import type { WaitOptions } from '../internal/validate.ts';
import { checkSendable } from '../reduction.ts';
import { CANCELLABLE_WAITS, type Reply, type Request } from './protocol.ts';

/** `what` names the call in errors: text, or a function that makes it (only when an error needs it). */
type What = string | (() => string);

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void; what: What; signal?: AbortSignal | undefined; onAbort?: (() => void) | undefined };
type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class ManagerClient {
  readonly #conn: Connection<Request | Reply>;
  /** The socket, kept open and idle once requests go over rings: the server watches it for our end. */
  #socket: Connection<Request | Reply> | undefined;
  readonly #address: Address;
  readonly #pending = new Map<number, Pending>();
  readonly #onBroken: () => void;
  #nextId = 1;
  #broken: ProcessError | undefined;
  /** Ref'd while a call waits for its reply, so the process stays alive for it; one timer for the client's life (toggled, not re-created per call). */
  readonly #keepAlive = setInterval(() => {}, 1 << 30).unref();
  #kept = false;

  private constructor(conn: Connection<Request | Reply>, address: Address, onBroken: () => void) {
    this.#conn = conn;
    this.#address = address;
    this.#onBroken = onBroken;
    void this.#readReplies();
  }

  static async connect(address: Address, authkey: Uint8Array | null, onBroken: () => void, wait: WaitOptions = {}): Promise<ManagerClient> {
    const socket = await Client<Request | Reply>(address, authkey ? { authkey, ...wait } : wait);
    const rings = typeof address === 'string' ? await ringsOver(socket) : undefined;
    const client = new ManagerClient(rings ?? socket, address, onBroken);
    if (rings) client.#watchSocket(socket);
    return client;
  }

  // Over rings, the socket carries nothing more: its end (the server's process died or shut
  // down) fails the client as the rings' end does, whichever comes first.
  #watchSocket(socket: Connection<Request | Reply>): void {
    this.#socket = socket;
    socket.recv({ keepAlive: false }).then(
      () => this.#fail(new ProcessError('Manager: the server sent a message on an idle socket.', { code: 'ERR_MP_BAD_REQUEST' })),
      (error: unknown) => this.#fail(error),
    );
  }

  /** Whether the server went away: this client serves no more calls (clientFor() connects anew). */
  get broken(): boolean {
    return this.#broken !== undefined;
  }

  /**
   * Sends a request; resolves with the server's value or rejects with the remote error. When
   * `signal` aborts, the server is asked to end the call's wait: the call rejects with the signal's
   * reason if the wait ended without doing anything, and keeps its outcome if it had one first
   * (an item got is never lost to an abort).
   */
  request(message: Outgoing, what: What, signal?: AbortSignal): Promise<unknown> {
    if (this.#broken) return Promise.reject(this.#goneFor());
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, what, signal: undefined, onAbort: undefined };
      if (signal) {
        pending.signal = signal;
        pending.onAbort = () => this.#cancel(id);
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#pending.set(id, pending);
      this.#refresh();
      try {
        (message as Request).id = id;
        this.#conn.send(message as Request);
      } catch (error) {
        this.#settled(id, pending);
        reject(namedForTheCall(error, message, what));
      }
    });
  }

  #cancel(of: number): void {
    if (!this.#pending.has(of) || this.#broken) return;
    try {
      this.#conn.send({ id: 0, op: 'cancel', of });
    } catch {
      // the connection broke: #fail() rejects the call
    }
  }

  #settled(id: number, pending: Pending): void {
    this.#pending.delete(id);
    if (pending.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
    this.#refresh();
  }

  close(): void {
    // Broken from now on: proxies that kept this client connect anew (and learn the manager is gone).
    this.#fail(new ProcessError('Manager: this process closed its connection to the manager.', { code: 'ERR_MP_MANAGER_GONE' }));
    clearInterval(this.#keepAlive);
    this.#conn.close();
    this.#socket?.close();
  }

  async #readReplies(): Promise<void> {
    for (;;) {
      let reply: Reply;
      try {
        reply = (await this.#conn.recv({ keepAlive: false })) as Reply;
      } catch (error) {
        this.#fail(error);
        return;
      }
      const pending = this.#pending.get(reply.id);
      if (!pending) continue;
      this.#settled(reply.id, pending);
      if (reply.ok) pending.resolve(reply.value);
      else if (reply.cancelled) pending.reject(pending.signal?.reason);
      else pending.reject(rebuildManagerError(reply.error, `manager at ${describeAddress(this.#address)} (${typeof pending.what === 'string' ? pending.what : pending.what()})`));
    }
  }

  // The server went away (shutdown, crash, SIGKILL): every call waiting and every later one rejects.
  #fail(cause: unknown): void {
    if (this.#broken) return;
    this.#socket?.close();
    this.#broken = new ProcessError(
      `Manager: the manager process at ${describeAddress(this.#address)} is gone (it was shut down or died); its proxies no longer work. Start a new manager.`,
      { code: 'ERR_MP_MANAGER_GONE', cause },
    );
    for (const [id, pending] of [...this.#pending]) {
      this.#settled(id, pending);
      pending.reject(this.#goneFor());
    }
    clearInterval(this.#keepAlive); // no call can wait any more
    // The next call connects anew: to nothing (and rejects), or to a server started since at this
    // address, which refuses the old proxies (ProxyState.server) and serves new ones.
    this.#onBroken();
  }

  // Each call gets an error of its own, thrown with the stack of the code awaiting it (one shared
  // error would show the stack of whichever call threw it last).
  #goneFor(): Error {
    const broken = this.#broken!;
    return awayFromCaller(new ProcessError(broken.message, { code: broken.code, cause: broken.cause }));
  }

  #refresh(): void {
    const keep = this.#pending.size > 0;
    if (keep === this.#kept) return;
    this.#kept = keep;
    if (keep) this.#keepAlive.ref();
    else this.#keepAlive.unref();
  }
}

/**
 * Asks a manager on this machine to go on over shared-memory rings; undefined (stay on the socket)
 * if it cannot: a server without shared memory, or one that does not know the request.
 */
async function ringsOver(socket: Connection<Request | Reply>): Promise<Connection<Request | Reply> | undefined> {
  socket.send({ id: 0, op: 'rings' });
  const reply = (await socket.recv()) as Reply;
  return reply.ok && reply.value instanceof Connection ? (reply.value as Connection<Request | Reply>) : undefined;
}

// The server's own errors (a Queue's Empty, a Barrier's BrokenBarrierError, a ProcessError with
// its code) come back as multiproc's classes, so that `instanceof Empty` works on a proxy's error
// as it does on a local Queue's (Python pickles queue.Empty by reference). rebuildError alone would
// make a look-alike class of the same name.
const libraryErrors: Record<string, new (message: string, fields: { cause?: unknown; code?: string }) => Error> = {
  ProcessError, TimeoutError, AuthenticationError, BufferTooShort, RemoteError, WorkerLostError, Empty, Full, BrokenBarrierError,
};

function rebuildManagerError(data: ErrorData, where: string): Error {
  const error = rebuildError(data, where);
  const Class = Object.hasOwn(libraryErrors, data.name) ? libraryErrors[data.name] : undefined;
  if (!Class) return error;
  return awayFromCaller(new Class(data.message, { cause: error.cause, ...(typeof data.code === 'string' ? { code: data.code } : {}) }));
}

// Keyed by address and authkey: a connection authenticated with one key must not serve a manager
// or proxy that holds another (a wrong key gets its own handshake, and its AuthenticationError).
const clients = new Map<string, Map<string, Promise<ManagerClient>>>();

/** This process's client for the manager at `address` with `authkey` (connecting on first use). */
/**
 * The client of this process for the server at `address`, connecting on first use. `wait` bounds
 * a connection made now (given up on, its socket is closed and it is forgotten: the next call
 * connects anew); a connection already under way is shared as it is.
 */
export function clientFor(address: Address, authkey: Uint8Array | null, wait?: WaitOptions): Promise<ManagerClient> {
  const where = describeAddress(address);
  const key = authkey ? keyOf(authkey) : '';
  let byKey = clients.get(where);
  if (!byKey) clients.set(where, (byKey = new Map()));
  let client = byKey.get(key);
  if (!client) {
    const forget = () => {
      if (byKey.get(key) === mine) byKey.delete(key);
    };
    const mine = ManagerClient.connect(address, authkey, forget, wait);
    mine.catch(forget);
    byKey.set(key, mine);
    client = mine;
  }
  return client;
}

// clientFor() runs at every proxy call: each key's text is made once.
const keyTexts = new WeakMap<Uint8Array, string>();

function keyOf(authkey: Uint8Array): string {
  let text = keyTexts.get(authkey);
  if (text === undefined) {
    text = Buffer.from(authkey.buffer, authkey.byteOffset, authkey.byteLength).toString('base64');
    keyTexts.set(authkey, text);
  }
  return text;
}

/** Forgets the clients of a manager that was shut down, so a new manager at that address reconnects. */
export function forgetClient(address: Address): void {
  const where = describeAddress(address);
  for (const client of clients.get(where)?.values() ?? []) void client.then((c) => c.close(), () => undefined);
  clients.delete(where);
}

export function describeAddress(address: Address): string {
  return typeof address === 'string' ? address : `${address.host}:${address.port}`;
}

// A request that cannot be sent fails in Connection.send(), whose error names the request's
// fields; the same scan again, only on this failure, names the call instead ("dict.set() args[1]
// is a function: ...").
function namedForTheCall(error: unknown, message: Outgoing, what: What): unknown {
  if ((error as NodeJS.ErrnoException).code !== 'ERR_MP_NOT_CLONEABLE' || !('args' in message)) return error;
  // A signal the proxy did not take out: this call is no wait that one can end.
  if (message.args.some((arg) => typeof arg === 'object' && arg !== null && (arg as { signal?: unknown }).signal instanceof AbortSignal)) {
    return invalidArgument(`${typeof what === 'string' ? what : what()}: takes no AbortSignal (a signal ends the waits of ${CANCELLABLE_WAITS}). Use a timeout.`);
  }
  try {
    checkSendable(message.args, `${typeof what === 'string' ? what : what()} args`);
  } catch (named) {
    return named;
  }
  return error;
}
