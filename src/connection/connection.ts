// Connection and Pipe (Python's multiprocessing.connection.Connection and Pipe()). Objects cross as
// structured-clone bytes (see reduction.ts dumps/loads); sendBytes/recvBytes carry raw bytes.
// send() never blocks (it queues when the other side is slow); recv() and poll() are Promises.

import { BufferTooShort, ProcessError, TimeoutError, describe, invalidArgument, outOfRange } from '../errors.ts';
import { deadlineOf } from '../internal/futex.ts';
import { Ring, Tag } from '../internal/ring.ts';
import { waitOptions, type WaitOptions } from '../internal/validate.ts';
import { dumps, holdsLibraryObjects, isScratch, loads, loadsImporting, registerReducer } from '../reduction.ts';
import { NOT_READY, RingTransport, type RingEnds } from './ring-transport.ts';
import { SocketTransport, type HandedOff } from './socket-transport.ts';
import { native } from '../native/binding.ts';
import { randomBytes } from '../internal/random.ts';
import type { Message, ReadEnd, Transport } from './transport.ts';

export interface RecvOptions extends WaitOptions {
  /** false: this wait does not keep the process alive (as an unref'd timer). @default true */
  keepAlive?: boolean;
}

/** receiveReady()'s decoder: made once, not per message (it runs for every result a pool gets). */
const decodeReady = (bytes: Uint8Array): unknown => (holdsLibraryObjects(bytes) ? NOT_READY : loads(bytes, 'Connection.recv()', false));

/** Bytes per direction of a Pipe; larger messages pass in chunks. */
const PIPE_RING_BYTES = 1 << 20;
const kCreate = Symbol('multiproc.createConnection');

/**
 * One end of a Pipe, or a socket connection from Listener/Client.
 * @example
 * const [parent, child] = Pipe(); child.send([12, { name: 'chen' }]); await parent.recv();
 */
export class Connection<T = unknown> {
  readonly #transport: Transport;
  #closed = false;
  /** A socket Connection sent to another process or thread: it moved there. */
  #sentAway = false;
  /** recv() calls in this process take turns: a message is read whole by one of them. */
  #readsPending = 0;
  #lastRead: Promise<unknown> = Promise.resolve();
  readonly #readDone = (): void => {
    this.#readsPending--;
  };

  /** Not for users: Connections come from Pipe(), Listener.accept() and Client() (it throws otherwise). */
  constructor(token: typeof kCreate, transport: Transport) {
    if (token !== kCreate) throw invalidArgument('new Connection(): Connections come from Pipe(), Listener.accept() or Client(); they are not constructed directly.');
    this.#transport = transport;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get readable(): boolean {
    return this.#transport.readable;
  }

  get writable(): boolean {
    return this.#transport.writable;
  }

  /** Sends a structured-cloneable object. Never blocks; throws (sending nothing) for a value that cannot cross. */
  send(obj: T): void {
    this.#assertOpen('send', 'writable');
    // A Buffer travels as its bytes (recv() gives a Buffer back): no clone of large payloads.
    if (Buffer.isBuffer(obj)) this.#transport.send(obj, Tag.Bytes);
    else {
      const bytes = dumps(obj, 'Connection.send()');
      this.#transport.send(bytes, Tag.Object, !isScratch(bytes));
    }
  }

  /**
   * Receives the next object; rejects once the other end is closed (or its process died) and
   * nothing is left. `keepAlive: false` lets the process exit while it waits.
   */
  recv(options?: RecvOptions): Promise<T> {
    // A library object whose module this process has not loaded yet is imported first (within
    // this recv()'s turn, so that messages still arrive in order).
    return this.#read('recv', options, (message) => (message.tag === Tag.Bytes ? message.bytes : loadsImporting(message.bytes, 'Connection.recv()')) as T | Promise<T>);
  }

  /** Sends `size` bytes of `buf` from `offset` as one message. */
  sendBytes(buf: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): void {
    this.#assertOpen('sendBytes', 'writable');
    const bytes = ArrayBuffer.isView(buf) ? Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength) : Buffer.from(buf as ArrayBuffer);
    if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) throw outOfRange(`Connection.sendBytes(): offset ${describe(offset)} is outside the buffer (length ${bytes.length}).`);
    const length = size ?? bytes.length - offset;
    if (!Number.isInteger(length) || length < 0 || offset + length > bytes.length) throw outOfRange(`Connection.sendBytes(): size ${describe(size)} from offset ${offset} runs past the buffer (length ${bytes.length}).`);
    this.#transport.send(bytes.subarray(offset, offset + length), Tag.Bytes);
  }

  /**
   * Receives one message as bytes; rejects (and closes) if it is longer than `maxLength`, as
   * Python does. `options` as recv()'s: a `timeout` rejects with TimeoutError, a `signal` aborts.
   */
  recvBytes(maxLength?: number, options?: RecvOptions): Promise<Buffer> {
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 0)) {
      return Promise.reject(outOfRange(`Connection.recvBytes(): expected \`maxLength\` to be a non-negative integer, got ${describe(maxLength)}.`));
    }
    return this.#read('recvBytes', options, (message) => {
      if (maxLength !== undefined && message.bytes.length > maxLength) {
        this.close();
        throw new ProcessError(`Connection.recvBytes(): the message is ${message.bytes.length} bytes, more than maxLength ${maxLength}; the connection was closed, as Python does.`, { code: 'ERR_MP_MESSAGE_TOO_LONG' });
      }
      return message.bytes;
    });
  }

  /**
   * Receives one message into `buf` at `offset`; returns its length. Too small a buffer rejects
   * with BufferTooShort carrying the message. `options` as recv()'s.
   */
  recvBytesInto(buf: ArrayBufferView, offset = 0, options?: RecvOptions): Promise<number> {
    const target = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (!Number.isInteger(offset) || offset < 0 || offset > target.length) {
      return Promise.reject(outOfRange(`Connection.recvBytesInto(): offset ${describe(offset)} is outside the buffer (length ${target.length}).`));
    }
    return this.#read('recvBytesInto', options, (message) => {
      if (message.bytes.length > target.length - offset) {
        throw Object.assign(new BufferTooShort(`Connection.recvBytesInto(): the message is ${message.bytes.length} bytes and the buffer has room for ${target.length - offset}; the message is in the error's \`received\` field.`), { received: message.bytes });
      }
      message.bytes.copy(target, offset);
      return message.bytes.length;
    });
  }

  /** True when a message is ready, waiting up to `timeout` ms (0, the default, does not wait). */
  async poll(timeout: number | WaitOptions = 0): Promise<boolean> {
    this.#assertOpen('poll', 'readable');
    const options = waitOptions('Connection.poll()', timeout);
    return this.#transport.poll(deadlineOf('Connection.poll()', options.timeout), options.signal);
  }

  /** Closes this process's end; messages already sent are still delivered. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close();
  }

  /** Resolves once everything sent from this process has been handed to the other side. */
  flushed(): Promise<void> {
    return this.#transport.flushed();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#transport.flushed();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #read<R>(method: string, options: RecvOptions | undefined, take: (message: Message) => R | Promise<R>): Promise<R> {
    let waiting: RecvOptions;
    let deadline: number | undefined;
    try {
      this.#assertOpen(method, 'readable');
      // A bad timeout rejects, as every wait does, rather than throwing.
      waiting = waitOptions(`Connection.${method}()`, options) as RecvOptions;
      deadline = deadlineOf(`Connection.${method}()`, waiting.timeout);
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal, keepAlive } = waiting;
    const receive = () => this.#transport.recv(deadline, signal, keepAlive ?? true).then((message) => take(receivedOrThrow(method, message)));
    // Reads take turns, each after the one before; with none pending, the usual case, it starts
    // now (a chain on the last read cost three more promises per recv()).
    const turn = this.#readsPending === 0 ? receive() : this.#lastRead.then(receive);
    this.#readsPending++;
    this.#lastRead = turn.then(this.#readDone, this.#readDone);
    return turn;
  }

  #assertOpen(method: string, direction: 'readable' | 'writable'): void {
    if (this.#sentAway) throw new ProcessError(`Connection.${method}(): this connection was sent to another process or thread (a socket Connection moves where it is sent, with what was read of it); use it there.`, { code: 'ERR_MP_CONNECTION_CLOSED' });
    if (this.#closed) throw new ProcessError(`Connection.${method}(): this connection was closed in process ${process.pid}. Use another Connection.`, { code: 'ERR_MP_CONNECTION_CLOSED' });
    if (!this.#transport[direction]) {
      throw new ProcessError(`Connection.${method}(): this end is not ${direction} (a one-way Pipe(false) gives [reader, writer]).`, { code: 'ERR_MP_CONNECTION_DIRECTION' });
    }
  }

  /**
   * @internal The next message, decoded where it lies in shared memory, when one is here now and
   * holds no library object (whose module might need importing); NOT_READY otherwise, and recv()
   * gets it. No Promise, no copy: a pool's listener takes each worker's results this way (a
   * result through recv() cost several Promises and turns). Only for a reader that has no recv()
   * pending meanwhile, which would be overtaken.
   */
  static receiveReady<T>(connection: Connection<T>): T | typeof NOT_READY {
    const transport = connection.#transport;
    if (connection.#closed || !(transport instanceof RingTransport) || !transport.readable) return NOT_READY;
    return transport.takeNow(decodeReady) as T | typeof NOT_READY;
  }

  // A socket Connection moves to where it is sent, as Python's resource_sharer passes its fd: the
  // fd is duplicated for the receiver, which takes it from this process (native/fd-share.cc).
  // Reduced twice (a pool checks its arguments before it sends them), it gives the same hand-off.
  #handOff(transport: SocketTransport): HandedOff {
    const handedOff = transport.handOff((fd) => {
      const key = Buffer.from(randomBytes(16)).toString('hex');
      return { sharer: native().shareFd(fd, key), key };
    }, `a socket Connection cannot be sent from process ${process.pid} now`);
    this.#sentAway = true;
    this.#closed = true;
    return handedOff;
  }

  // Closed here it cannot be sent; sent away already, it is sent again as the same hand-off.
  #assertSendable(prefix: string): void {
    if (this.#closed && !this.#sentAway) throw invalidArgument(`${prefix}a closed Connection cannot be sent to another process.`, 'ERR_MP_NOT_CLONEABLE');
  }

  /** @internal The transport, for wait() and the reducer. */
  static transportOf(connection: Connection<unknown>): Transport {
    return connection.#transport;
  }

  static {
    registerReducer(Connection, 'Connection', {
      reduce: (connection: Connection<unknown>): RingEnds | HandedOff => {
        connection.#assertSendable('');
        const transport = connection.#transport;
        return transport instanceof SocketTransport ? connection.#handOff(transport) : (transport as RingTransport).share();
      },
      rebuild: (state: RingEnds | HandedOff) => new Connection(kCreate, 'sharer' in state ? adoptSocket(state) : RingTransport.attach(state)),
      // A socket's copy holds nothing until adopted: its sender still shares it, and may send it again.
      discard: (state: RingEnds | HandedOff) => {
        if (!('sharer' in state)) RingTransport.discard(state);
      },
      commit: (connection: Connection<unknown>) => {
        const transport = connection.#transport;
        if (transport instanceof SocketTransport) transport.commitHandOff();
      },
      undo: (connection: Connection<unknown>) => {
        const transport = connection.#transport;
        if (transport instanceof RingTransport) return transport.unshare();
        if (!(transport instanceof SocketTransport) || !transport.undoHandOff((key) => native().unshareFd(key))) return;
        connection.#sentAway = false;
        connection.#closed = false;
      },
      check: (connection: Connection<unknown>, where: string) => {
        connection.#assertSendable(`${where}: `);
        const transport = connection.#transport;
        if (transport instanceof SocketTransport) transport.checkHandOff(`${where}: a socket Connection cannot be sent from process ${process.pid} now`);
      },
    });
  }
}

function receivedOrThrow(method: string, result: Message | ReadEnd): Message {
  if (typeof result !== 'string') return result;
  if (result === 'timed-out') throw new TimeoutError(`Connection.${method}(): no message came before the timeout.`);
  if (result === 'closed') throw new ProcessError(`Connection.${method}(): this connection was closed in process ${process.pid} while the call waited.`, { code: 'ERR_MP_CONNECTION_CLOSED' });
  const why = result === 'writer-died' ? "the other end's process exited without closing it" : 'the other end was closed';
  throw new ProcessError(`Connection.${method}(): ${why}, and no message is left to read (Python's EOFError).`, { code: 'ERR_MP_EOF' });
}

// The receiving side of a socket Connection's hand-off: the fd is taken from the sending process.
function adoptSocket(handedOff: HandedOff): SocketTransport {
  let fd: number;
  try {
    fd = native().takeFd(handedOff.sharer, handedOff.key, handedOff.pid);
  } catch (error) {
    const gone = (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    throw new ProcessError(
      gone
        ? `a socket Connection (${handedOff.where}) sent by process ${handedOff.pid} cannot be received: that process has exited, and its socket with it. The sender must stay alive until the receiver has it (as with Python's resource_sharer).`
        : `a socket Connection (${handedOff.where}) sent by process ${handedOff.pid} could not be received: ${(error as Error).message}`,
      { code: 'ERR_MP_CONNECTION_LOST', cause: error },
    );
  }
  if (fd < 0) {
    throw new ProcessError(`a socket Connection (${handedOff.where}) sent by process ${handedOff.pid} was received already, elsewhere or from an earlier message: a socket Connection moves to where it is received, once.`, { code: 'ERR_MP_CONNECTION_LOST' });
  }
  return SocketTransport.adopt(fd, handedOff);
}

/** Wraps a transport in a Connection (for Listener and Client). */
export function connectionOver<T>(transport: Transport): Connection<T> {
  return new Connection<T>(kCreate, transport);
}

/**
 * A pair of Connections (Python's Pipe()): duplex by default; `Pipe(false)` gives [reader, writer].
 * @example
 * const [parentConn, childConn] = Pipe();
 */
export function Pipe<T = unknown>(duplex = true): [Connection<T>, Connection<T>] {
  if (typeof duplex !== 'boolean') throw invalidArgument(`Pipe(): expected \`duplex\` to be a boolean, got ${describe(duplex)}.`);
  const forward = Ring.create(PIPE_RING_BYTES);
  if (!duplex) return [connectionOver(new RingTransport(forward, null)), connectionOver(new RingTransport(null, forward))];
  const backward = Ring.create(PIPE_RING_BYTES);
  return [connectionOver(new RingTransport(backward, forward)), connectionOver(new RingTransport(forward, backward))];
}
