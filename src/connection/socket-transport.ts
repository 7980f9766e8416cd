// A Connection's bytes over a stream socket (Listener/Client): frames of [u32 length][u8 tag] and
// the bytes. The socket is ref'd only while this process waits for a message or has bytes to
// write, so an idle connection never keeps a process alive (as an idle fd does not in Python).
//
// The frames of the authkey handshake (auth.ts) carry their own tag and are never delivered as
// messages. A Client without an authkey says so in its first frame (NO_AUTHKEY), a Client with
// one announces it in its first frame, and a handshake frame reaching a side that takes no part
// in one fails that connection with an AuthenticationError (after answering NO_AUTHKEY): a
// mismatch of authkey on one side only fails both sides at once.
//
// A Listener without an authkey writes nothing before its user does. A client may connect, send
// its last messages and close before accept() runs: a write then fails (EPIPE), and Node destroys
// the socket with what the client sent still unread. (It did: the keyless Listener's NO_AUTHKEY,
// written at accept(), lost such a client's messages now and then.)

import type { Socket } from 'node:net';
import { AuthenticationError, ProcessError } from '../errors.ts';
import { Tag, type Message, type ReadEnd } from '../internal/ring.ts';
import { copyMessage } from '../internal/message-buffer.ts';
import type { Transport } from './transport.ts';
import { monotonicMs } from '../internal/clock.ts';
import { WaitList } from '../internal/wait-list.ts';

const FRAME_HEADER = 5;
/** The tag of a handshake frame (messages are Tag.Object or Tag.Bytes). */
const HANDSHAKE = 0xa5;
/** The first frame of a side without an authkey. */
export const NO_AUTHKEY = Buffer.from('#NO-AUTHKEY#');
/**
 * How long a refused connection is kept half-closed, reading and dropping what the peer still
 * sends, so that the peer reads our last frames: closing a socket with unread input sends a reset,
 * which makes the peer's system drop what it had not read yet.
 */
const LINGER_MS = 20_000;

export interface SocketTransportOptions {
  /** This side has an authkey: auth.ts runs the handshake, then calls authenticated(). */
  authenticating: boolean;
  /** The connecting side (Client()): without an authkey, it says so at once. */
  client: boolean;
  /** Names this side in errors: 'Client(/tmp/x)', 'Listener.accept() on /tmp/x'. */
  where: string;
}

/** A socket connection on its way to another process or thread (see handOff()). */
export interface HandedOff {
  /** The sharer that holds the socket's fd for the receiver (native/fd-share.cc). */
  sharer: string;
  key: string;
  /** What this side had read and not delivered yet: whole frames, then part of one. */
  unread: Uint8Array;
  where: string;
  pid: number;
}

export class SocketTransport implements Transport {
  readonly #socket: Socket;
  readonly #where: string;
  readonly #inbox: Message[] = [];
  readonly #waiters = new WaitList<true | ReadEnd | 'failed'>();
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  /** Bytes the next frame needs buffered before it is worth parsing (a large one comes in many chunks). */
  #needed = FRAME_HEADER;
  #ended = false;
  #waiting = 0;
  #handshaking: boolean;
  #failure: AuthenticationError | null = null;
  /** Refused: what still comes is dropped. */
  #refused = false;
  /** This side closed: a wait ends as 'closed', not as the other side's end of stream. */
  #closedHere = false;
  /** NO_AUTHKEY was written. */
  #saidNoKey = false;
  /** Sent to another process or thread: the socket is theirs now. */
  #handedOff: HandedOff | null = null;
  /** Until the send of the hand-off is known to have happened: what to restore if it failed. */
  #handedOffFrom: { inbox: Message[]; buffered: Buffer[]; bufferedBytes: number } | null = null;

  constructor(socket: Socket, options: SocketTransportOptions) {
    this.#socket = socket;
    this.#where = options.where;
    this.#handshaking = options.authenticating;
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('close', () => this.#end());
    socket.on('end', () => this.#end());
    // A reset connection ends the stream like a close; recv() then reports it.
    socket.on('error', () => this.#end());
    if (!options.authenticating && options.client) this.#sayNoKey();
  }

  get readable(): boolean {
    return true;
  }

  // A socket connection is duplex: both ends stay writable. What is sent after the other end
  // closed is dropped, as on a Pipe whose reader closed.
  get writable(): boolean {
    return true;
  }

  send(bytes: Uint8Array, tag: Tag): void {
    if (this.#failure) throw this.#failure;
    this.#write(bytes, tag);
  }

  /** Sends one frame of the authkey handshake. */
  sendHandshake(bytes: Buffer): void {
    this.#write(bytes, HANDSHAKE);
  }

  /** The next handshake frame, 'message' if the peer sent a message instead, or why none came. */
  async recvHandshake(deadline: number): Promise<Buffer | 'message' | ReadEnd> {
    const ready = await this.#wait(deadline, undefined, true);
    if (ready === 'failed') return 'writer-closed';
    if (ready !== true) return ready;
    const frame = this.#inbox.shift() as Message;
    return (frame.tag as number) === HANDSHAKE ? frame.bytes : 'message';
  }

  /** The handshake succeeded: from now on a handshake frame is a failure of the connection. */
  authenticated(): void {
    this.#handshaking = false;
  }

  /** The handshake failed: writes what was sent (a FAILURE verdict) and then closes the socket. */
  abandon(): void {
    this.#refused = true;
    this.#inbox.length = 0;
    this.#linger();
  }

  flushed(): Promise<void> {
    if (this.#socket.writableLength === 0 || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.#socket.write(Buffer.alloc(0), () => resolve()));
  }

  async recv(deadline?: number, signal?: AbortSignal, keepAlive = true): Promise<Message | ReadEnd> {
    const ready = await this.#wait(deadline, signal, keepAlive);
    if (ready === 'failed') throw this.#failure;
    if (ready !== true) return ready;
    return this.#inbox.shift() as Message;
  }

  // As in Python, the end of the stream counts as readable: recv() would not wait, it would reject.
  async poll(deadline?: number, signal?: AbortSignal): Promise<boolean> {
    return (await this.#wait(deadline, signal, true)) !== 'timed-out';
  }

  close(): void {
    this.#closedHere = true;
    // A socket handed off lives on elsewhere: ending it here would end it there too (a shutdown
    // is the socket's, not this fd's).
    if (this.#handedOff) this.#socket.destroy();
    else this.#socket.end();
    this.#end();
  }

  /**
   * Lets another process or thread take this connection over (Python's resource_sharer):
   * `share(fd)` keeps a duplicate of the socket's fd for the receiver and says where; this side
   * stops reading and hands over what it had read and not delivered. The send that carries the
   * hand-off then commits it (this side lets go of its fd, without ending the connection) or, if
   * it failed, undoes it (this side reads on, as before). Done once: sending it again gives the
   * same hand-off, which only one receiver can take.
   */
  handOff(share: (fd: number) => { sharer: string; key: string }, what: string): HandedOff {
    if (this.#handedOff) return this.#handedOff;
    this.checkHandOff(what);
    const handle = this.#handle() as { fd: number; readStop(): number };
    const { sharer, key } = share(handle.fd);
    // Read no more here. The handle still says it reads, so that Node does not start it again.
    handle.readStop();
    const frames = this.#inbox.map(({ bytes, tag }) => frameOf(bytes, tag));
    this.#handedOff = { sharer, key, unread: Buffer.concat([...frames, ...this.#buffered]), where: this.#where, pid: process.pid };
    this.#handedOffFrom = { inbox: [...this.#inbox], buffered: this.#buffered, bufferedBytes: this.#bufferedBytes };
    this.#inbox.length = 0;
    this.#buffered = [];
    this.#bufferedBytes = 0;
    return this.#handedOff;
  }

  /** Throws (as handOff() would, changing nothing) if this connection cannot be handed off now. */
  checkHandOff(what: string): void {
    if (this.#handedOff) return;
    const refuse = (why: string, fix: string) => new ProcessError(`${what}: ${why}. ${fix}`, { code: 'ERR_MP_NOT_CLONEABLE' });
    if (this.#failure || this.#refused) throw refuse('its authkey handshake failed', 'Connect again with the right authkey.');
    const fd = this.#handle()?.fd;
    if (this.#ended || this.#socket.destroyed || typeof fd !== 'number' || fd < 0) throw refuse('the connection has ended (its other side closed it, or it was reset)', 'Read what is left with recv() here.');
    if (this.#socket.writableLength > 0) throw refuse(`${this.#socket.writableLength} bytes sent on it are still being written`, 'Send it after `await conn.flushed()`.');
    if (this.#waiting > 0 || this.#waiters.length > 0) throw refuse('a recv() or poll() on it is waiting in this process', 'Send it when no call waits on it here.');
  }

  /** The hand-off was sent: this side closes its fd (only its fd: the duplicate carries the connection on). */
  commitHandOff(): void {
    this.#handedOffFrom = null;
    this.#socket.destroy();
  }

  /**
   * The send of the hand-off failed: the duplicate goes, and this side reads on with what it had.
   * False when there is nothing to undo (another send of it was committed).
   */
  undoHandOff(unshare: (key: string) => void): boolean {
    const handedOff = this.#handedOff;
    const from = this.#handedOffFrom;
    if (!handedOff || !from) return false;
    unshare(handedOff.key);
    this.#handedOff = null;
    this.#handedOffFrom = null;
    this.#inbox.push(...from.inbox);
    this.#buffered = from.buffered;
    this.#bufferedBytes = from.bufferedBytes;
    (this.#handle() as { readStart(): number } | undefined)?.readStart();
    return true;
  }

  #handle(): { fd?: number; readStop?(): number; readStart?(): number } | undefined {
    return (this.#socket as unknown as { _handle?: { fd?: number } })._handle;
  }

  /** The receiving side of handOff(): the connection over `fd`, with what the sender had read first. */
  static adopt(fd: number, handedOff: HandedOff): SocketTransport {
    // node:net is loaded here, not at the top: a child that receives no socket never loads it.
    const { Socket } = process.getBuiltinModule('node:net');
    const socket = new Socket({ fd, readable: true, writable: true });
    const transport = new SocketTransport(socket, { authenticating: false, client: false, where: `${handedOff.where}, received from process ${handedOff.pid}` });
    if (handedOff.unread.length > 0) transport.#receive(Buffer.from(handedOff.unread));
    return transport;
  }

  #sayNoKey(): void {
    if (this.#saidNoKey) return;
    this.#saidNoKey = true;
    this.#write(NO_AUTHKEY, HANDSHAKE);
  }

  // One write per frame (header and bytes in one buffer, which is also the copy the socket keeps).
  #write(bytes: Uint8Array, tag: number): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return; // nothing will read it
    this.#socket.ref();
    this.#socket.write(frameOf(bytes, tag), () => this.#refresh());
  }

  async #wait(deadline: number | undefined, signal: AbortSignal | undefined, keepAlive: boolean): Promise<true | ReadEnd | 'failed'> {
    signal?.throwIfAborted();
    if (this.#failure) return 'failed';
    if (this.#inbox.length > 0) return true;
    if (this.#ended) return this.#closedHere ? 'closed' : 'writer-closed';
    const timeout = deadline === undefined ? undefined : Math.max(0, deadline - monotonicMs());
    if (timeout === 0) return 'timed-out';
    if (keepAlive) this.#waiting++;
    this.#refresh();
    try {
      return await this.#waiters.wait(timeout, signal, keepAlive);
    } finally {
      if (keepAlive) this.#waiting--;
      this.#refresh();
    }
  }

  #receive(chunk: Buffer): void {
    if (this.#failure || this.#refused) return;
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    if (this.#bufferedBytes < this.#needed) return; // joining the chunks of a large frame once, not at each chunk
    let data = this.#buffered.length === 1 ? chunk : Buffer.concat(this.#buffered, this.#bufferedBytes);
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER) {
      const length = data.readUInt32LE(offset);
      if (data.length - offset < FRAME_HEADER + length) break;
      const tag = data.readUInt8(offset + 4);
      const bytes = copyMessage(data.subarray(offset + FRAME_HEADER, offset + FRAME_HEADER + length));
      offset += FRAME_HEADER + length;
      if (tag === HANDSHAKE && !this.#handshaking) {
        if (bytes.equals(NO_AUTHKEY)) continue; // a peer without an authkey, as this side
        this.#sayNoKey(); // so that the peer, which has one, fails at once too
        this.#fail(new AuthenticationError(`the connection from ${this.#where} was refused: the other side has an authkey and began the authkey handshake, but this side has none. Give both sides the same authkey (or neither).`));
        return;
      }
      this.#inbox.push({ bytes, tag: tag as Tag });
    }
    data = offset > 0 ? Buffer.from(data.subarray(offset)) : data; // a copy: the rest does not hold the parsed bytes
    this.#buffered = data.length > 0 ? [data] : [];
    this.#bufferedBytes = data.length;
    this.#needed = data.length < FRAME_HEADER ? FRAME_HEADER : FRAME_HEADER + data.readUInt32LE(0);
    if (this.#inbox.length > 0) this.#wakeAll();
  }

  // Nothing from this connection is delivered after a failed handshake, and the peer sees it end.
  #fail(error: AuthenticationError): void {
    this.#failure = error;
    this.#inbox.length = 0;
    this.#buffered = [];
    this.#bufferedBytes = 0;
    this.#linger();
    this.#end();
  }

  // Ends our side after what was written, drops what still comes, and closes once the peer ends
  // too (or after LINGER_MS).
  #linger(): void {
    this.#socket.end();
    const timer = setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
    this.#socket.once('close', () => clearTimeout(timer));
  }

  #end(): void {
    this.#ended = true;
    this.#wakeAll();
  }

  #wakeAll(): void {
    if (this.#waiters.length === 0) return;
    this.#waiters.wakeAll(this.#failure ? 'failed' : this.#inbox.length > 0 ? true : this.#closedHere ? 'closed' : 'writer-closed');
  }

  #refresh(): void {
    if (this.#waiting > 0 || this.#socket.writableLength > 0) this.#socket.ref();
    else this.#socket.unref();
  }
}

function frameOf(bytes: Uint8Array, tag: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER + bytes.byteLength);
  frame.writeUInt32LE(bytes.byteLength, 0);
  frame.writeUInt8(tag, 4);
  frame.set(bytes, FRAME_HEADER);
  return frame;
}
