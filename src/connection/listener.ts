// Listener and Client (Python's multiprocessing.connection): Connections over Unix sockets or TCP,
// optionally guarded by an authkey handshake in both directions. A Unix socket is created in a
// private directory (mode 0700, so only this user can connect) and removed on close(), or at the
// exit of a process that did not close it (as Python's Finalize removes it).

import type { Server, Socket } from 'node:net';
import { chmodSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationError, ProcessError, TimeoutError, describe, invalidArgument, outOfRange } from '../errors.ts';
import { native, type NativeBinding } from '../native/binding.ts';
import { deadlineOf } from '../internal/futex.ts';
import { monotonicMs } from '../internal/clock.ts';
import { knownOptions, timerFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { WaitList } from '../internal/wait-list.ts';
import { connectionOver, type Connection } from './connection.ts';
import { SocketTransport } from './socket-transport.ts';
import { announceKey, answerChallenge, deliverChallenge, refuse } from './auth.ts';
import { atSignalDeath } from '../internal/at-exit.ts';

/** Listeners not yet closed in this process (or thread): their socket files go at its exit. */
const open = new Set<Listener>();
// node:net is loaded by the first Listener or Client, not by every child that loads the library.
const net = () => process.getBuiltinModule('node:net');
const closeAtExit = () => {
  for (const listener of open) listener.close();
};

/** A Unix socket path, or a TCP host and port (port 0: any free port). */
export type Address = string | { host: string; port: number };

export interface ListenerOptions {
  /** @default a fresh Unix socket path in a private temporary directory */
  address?: Address;
  /** Clients must prove they know this key (HMAC-SHA256 challenge both ways). @default no authentication */
  authkey?: Uint8Array | string;
  /** @default 128 */
  backlog?: number;
}

export interface ClientOptions extends WaitOptions {
  authkey?: Uint8Array | string;
}

/**
 * Accepts Connections (Python's multiprocessing.connection.Listener).
 * @example
 * await using listener = new Listener({ address: { host: '127.0.0.1', port: 0 }, authkey: 'secret' });
 * console.log(listener.address); // the real port at once
 * const conn = await listener.accept();
 */
export class Listener {
  readonly #server: Server;
  readonly #authkey: Buffer | null;
  readonly #requested: Address;
  readonly #privateDir: string | null;
  readonly #listening: Promise<void>;
  /** The TCP address the server bound, with the real port (kept after close()). */
  #bound: { host: string; port: number } | undefined;
  readonly #pending: Socket[] = [];
  readonly #accepting = new WaitList<Socket | null>();
  #closed = false;
  /** Resolves at close(): a server closed before it bound never says 'listening'. */
  #onClose: () => void = () => {};
  readonly #closing = new Promise<void>((resolve) => (this.#onClose = resolve));
  /** Whether this side bound the socket file (listenNow()), so that close() removes it, not Node. */
  readonly #boundFile: boolean;
  #lastAccepted: { host: string; port: number } | null = null;

  constructor(options: ListenerOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument(`new Listener(): expected options { address, authkey, backlog }, got ${describe(options)}. To listen at an address: new Listener({ address }).`);
    }
    knownOptions('new Listener()', options, ['address', 'authkey', 'backlog']);
    this.#authkey = keyFrom('new Listener()', options.authkey);
    const { address, dir } = resolveAddress(options.address);
    this.#requested = address;
    this.#privateDir = dir;
    const backlog = options.backlog ?? 128;
    const boundNow = listenNow(address, backlog, dir);
    if (boundNow?.length === 3) this.#bound = { host: boundNow[1], port: boundNow[2] };
    this.#boundFile = boundNow !== undefined && typeof address === 'string';
    this.#server = net().createServer((socket) => this.#arrived(socket));
    this.#server.on('error', () => {}); // reported through ready()/accept() by #listening
    this.#listening = new Promise((resolve, reject) => {
      this.#server.once('listening', () => {
        const bound = this.#server.address();
        if (bound && typeof bound === 'object') this.#bound = { host: bound.address, port: bound.port };
        if (!boundNow && typeof address === 'string' && !dir) chmodSync(address, 0o600);
        resolve();
      });
      this.#server.once('error', (error) => reject(listenError(address, error)));
    });
    this.#listening.catch(() => {}); // observed by ready() and accept()
    if (boundNow) this.#server.listen({ fd: boundNow[0], backlog });
    else if (typeof address === 'string') this.#server.listen({ path: address, backlog });
    else this.#server.listen({ host: address.host, port: address.port, backlog });
    this.#server.unref();
    if (open.size === 0) process.on('exit', closeAtExit);
    atSignalDeath(closeAtExit);
    open.add(this);
  }

  /**
   * Resolves once the listener is bound: at once, as it is bound when the constructor returns,
   * but for a host name other than localhost or a process without the native addon (see
   * listenNow()), where Node binds it on a later turn; `address` of such a port-0 listener has its
   * real port only after this.
   */
  async ready(): Promise<this> {
    await this.#whenBound();
    return this;
  }

  // Bound, or the closed error once close() came first.
  #whenBound(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return Promise.race([this.#listening, this.#closing.then(() => Promise.reject(this.#closedError()))]);
  }

  /**
   * The bound address: the socket path, or { host, port } with the real port for port 0. (Without
   * the native addon, reading it before `await ready()` throws ERR_MP_NOT_READY for port 0.)
   */
  get address(): Address {
    if (this.#bound) return this.#bound;
    const requested = this.#requested;
    if (typeof requested === 'object' && requested.port === 0) {
      throw new ProcessError(`Listener.address: port 0 gets its real port once the listener is bound (Node binds asynchronously). Call await listener.ready() first.`, { code: 'ERR_MP_NOT_READY' });
    }
    return requested;
  }

  /**
   * The next authenticated Connection. A client with a wrong key makes this reject with
   * AuthenticationError; the Listener stays usable. `timeout` (ms, or `{ timeout, signal }`) bounds
   * the wait for a client to connect: TimeoutError then, or the signal's reason when it aborts; a
   * client that connects later waits for the next accept().
   */
  async accept<T = unknown>(options?: number | WaitOptions): Promise<Connection<T>> {
    const { timeout, signal } = waitOptions('Listener.accept()', options);
    const deadline = deadlineOf('Listener.accept()', timeout);
    await this.#whenBound();
    signal?.throwIfAborted(); // before taking a connection: an aborted accept() takes none
    if (this.#closed) throw this.#closedError();
    const socket = this.#pending.shift() ?? (await this.#nextSocket(deadline, signal));
    if (socket === 'timed-out') {
      throw new TimeoutError(`Listener.accept() on ${formatAddress(this.address)}: no client connected within ${timeout} ms.`);
    }
    if (!socket) throw this.#closedError();
    const where = `Listener.accept() on ${formatAddress(this.address)}`;
    const transport = new SocketTransport(socket, { authenticating: this.#authkey !== null, client: false, where });
    if (this.#authkey) {
      try {
        await deliverChallenge(transport, this.#authkey, where);
        await answerChallenge(transport, this.#authkey, where);
      } catch (error) {
        refuse(transport);
        throw error;
      }
      transport.authenticated();
    }
    // A Unix socket's client is unnamed: Python's last_accepted is '' there, null here.
    this.#lastAccepted = socket.remoteAddress !== undefined && socket.remotePort !== undefined ? { host: socket.remoteAddress, port: socket.remotePort } : null;
    return connectionOver<T>(transport);
  }

  /** The address of the client that the last accept() gave a Connection to (Python's last_accepted): TCP's { host, port }, or null. */
  get lastAccepted(): { host: string; port: number } | null {
    return this.#lastAccepted;
  }

  /** Stops listening and removes the socket file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    open.delete(this);
    if (open.size === 0) process.off('exit', closeAtExit);
    this.#server.close();
    for (const socket of this.#pending.splice(0)) socket.destroy();
    this.#accepting.wakeAll(null);
    if (this.#privateDir) rmSync(this.#privateDir, { recursive: true, force: true });
    // Node unlinks a socket file it bound itself; one bound by listenNow() is this side's to remove.
    else if (this.#boundFile) rmSync(this.#requested as string, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #arrived(socket: Socket): void {
    // Until accept() takes it, a connection neither keeps the process alive nor crashes it by a reset.
    socket.unref();
    socket.on('error', () => {});
    if (!this.#accepting.wakeOne(socket)) this.#pending.push(socket);
  }

  // While accept() waits, the server keeps the process alive, as a blocking accept() does.
  #nextSocket(deadline: number | undefined, signal: AbortSignal | undefined): Promise<Socket | null | 'timed-out'> {
    this.#server.ref();
    const left = deadline === undefined ? undefined : Math.max(0, deadline - monotonicMs());
    return this.#accepting.wait(left, signal).finally(() => {
      if (this.#accepting.length === 0) this.#server.unref();
    });
  }

  #closedError(): ProcessError {
    return new ProcessError(`Listener.accept(): the listener on ${formatAddress(this.#requested)} was closed.`, { code: 'ERR_MP_LISTENER_CLOSED' });
  }
}

/**
 * Connects to a Listener (Python's multiprocessing.connection.Client). `timeout` (ms) bounds the
 * connect and the authkey handshake together (TimeoutError), and `signal` aborts them; either way
 * the half-made connection is closed.
 * @example
 * const conn = await Client({ host: '127.0.0.1', port }, { authkey: 'secret' });
 */
export async function Client<T = unknown>(address: Address, options: ClientOptions = {}): Promise<Connection<T>> {
  if (typeof options !== 'object' || options === null) throw invalidArgument(`Client(): expected options { authkey, timeout, signal }, got ${describe(options)}.`);
  knownOptions('Client()', options, ['authkey', 'timeout', 'signal']);
  const authkey = keyFrom('Client()', options.authkey);
  checkAddress('Client()', address);
  const { timeout, signal } = waitOptions('Client()', { timeout: options.timeout, signal: options.signal });
  signal?.throwIfAborted();
  const socket = typeof address === 'string' ? net().createConnection({ path: address }) : net().createConnection({ host: address.host, port: address.port });
  const connecting = connect<T>(socket, address, authkey);
  if (timeout === undefined && signal === undefined) return connecting;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = timerFor(timeout, () => reject(new TimeoutError(`Client(): no connection to ${formatAddress(address)} within ${timeout} ms.`)));
    onAbort = () => reject(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([connecting, stopped]);
  } catch (error) {
    socket.destroy();
    connecting.then((conn) => conn.close(), () => {}); // it may still finish, or fail, on its own
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

async function connect<T>(socket: Socket, address: Address, authkey: Buffer | null): Promise<Connection<T>> {
  try {
    await once(socket, 'connect');
  } catch (error) {
    throw new ProcessError(`Client(): cannot connect to ${formatAddress(address)}: ${(error as Error).message}. Is a Listener running there?`, { code: 'ERR_MP_CONNECT', cause: error });
  }
  const where = `Client(${formatAddress(address)})`;
  const transport = new SocketTransport(socket, { authenticating: authkey !== null, client: true, where });
  if (authkey) {
    try {
      announceKey(transport);
      await answerChallenge(transport, authkey, where);
      await deliverChallenge(transport, authkey, where);
    } catch (error) {
      refuse(transport);
      throw error instanceof AuthenticationError ? error : new AuthenticationError(`${where}: the authkey handshake failed: ${(error as Error).message}`, { cause: error });
    }
    transport.authenticated();
  }
  return connectionOver<T>(transport);
}

function keyFrom(where: string, key: Uint8Array | string | undefined): Buffer | null {
  if (key === undefined) return null;
  if (typeof key === 'string') return Buffer.from(key);
  if (key instanceof Uint8Array) return Buffer.from(key);
  throw invalidArgument(`${where}: expected \`authkey\` to be a string or bytes (Uint8Array), got ${describe(key)}.`);
}

function checkAddress(where: string, address: unknown): asserts address is Address {
  if (typeof address === 'string' && address.length > 0) return;
  if (typeof address === 'object' && address !== null && typeof (address as { host: unknown }).host === 'string' && Number.isInteger((address as { port: unknown }).port)) {
    const { port } = address as { port: number };
    if (port >= 0 && port <= 65535) return;
    throw outOfRange(`${where}: expected \`port\` to be from 0 to 65535, got ${port}.`);
  }
  throw invalidArgument(`${where}: expected an address: a Unix socket path or { host, port }, got ${describe(address)}.`);
}

// Bound and listening now, as Python's Listener is when its constructor returns: the real port of
// port 0 known at once, and an address in use an error here rather than at ready(). Node's listen()
// binds on a later turn of the event loop; it takes this socket over by its fd. Undefined (Node
// binds) without the addon, and for a host name other than localhost: resolving it may wait on
// DNS, which would block the event loop here.
function listenNow(address: Address, backlog: number, dir: string | null): [fd: number] | [fd: number, host: string, port: number] | undefined {
  if (typeof address === 'object' && address.host !== 'localhost' && net().isIP(address.host) === 0) return undefined;
  let binding: NativeBinding;
  try {
    binding = native();
  } catch {
    return undefined;
  }
  let socket: [fd: number] | [fd: number, host: string, port: number] | undefined;
  try {
    socket = typeof address === 'string' ? binding.listenSocket(address, backlog) : binding.listenSocket(address.host, address.port, backlog);
    if (typeof address === 'string' && !dir) chmodSync(address, 0o600);
    return socket;
  } catch (error) {
    if (socket) closeSync(socket[0]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw listenError(address, error as Error);
  }
}

function listenError(address: Address, error: Error): ProcessError {
  return new ProcessError(`new Listener(): cannot listen on ${formatAddress(address)}: ${error.message}. Choose another address.`, { code: 'ERR_MP_LISTEN', cause: error });
}

function resolveAddress(address: Address | undefined): { address: Address; dir: string | null } {
  if (address !== undefined) {
    checkAddress('new Listener()', address);
    return { address, dir: null };
  }
  const dir = mkdtempSync(join(tmpdir(), 'mp-listener-'));
  chmodSync(dir, 0o700);
  return { address: join(dir, 'socket'), dir };
}

export function formatAddress(address: Address): string {
  return typeof address === 'string' ? address : `${address.host}:${address.port}`;
}

