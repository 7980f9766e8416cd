// A Connection's bytes over a stream socket (Listener/Client): frames of [u32 length][u8 tag] and
// the bytes. The socket is ref'd only while this process waits for a message or has bytes to
// write, so an idle connection never keeps a process alive (as an idle fd does not in Python).

import type { Socket } from 'node:net';
import { Tag, type Message, type ReadEnd } from '../internal/ring.ts';
import type { Transport } from './transport.ts';

const FRAME_HEADER = 5;

export class SocketTransport implements Transport {
  readonly #socket: Socket;
  readonly #inbox: Message[] = [];
  #waiters: (() => void)[] = [];
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #ended = false;
  #waiting = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('close', () => this.#end());
    socket.on('end', () => this.#end());
    // A reset connection ends the stream like a close; recv() then reports it.
    socket.on('error', () => this.#end());
  }

  get readable(): boolean {
    return true;
  }

  get writable(): boolean {
    return !this.#socket.destroyed;
  }

  send(bytes: Buffer, tag: Tag): void {
    const header = Buffer.allocUnsafe(FRAME_HEADER);
    header.writeUInt32LE(bytes.length, 0);
    header.writeUInt8(tag, 4);
    this.#socket.ref();
    this.#socket.write(header);
    this.#socket.write(bytes, () => this.#refresh());
  }

  flushed(): Promise<void> {
    if (this.#socket.writableLength === 0 || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.#socket.write(Buffer.alloc(0), () => resolve()));
  }

  async recv(deadline?: number, signal?: AbortSignal): Promise<Message | ReadEnd> {
    const ready = await this.#wait(deadline, signal);
    if (ready !== true) return ready;
    return this.#inbox.shift() as Message;
  }

  // As in Python, the end of the stream counts as readable: recv() would not wait, it would reject.
  async poll(deadline?: number, signal?: AbortSignal): Promise<boolean> {
    return (await this.#wait(deadline, signal)) !== 'timed-out';
  }

  close(): void {
    this.#socket.end();
    this.#end();
  }

  async #wait(deadline: number | undefined, signal: AbortSignal | undefined): Promise<true | ReadEnd> {
    signal?.throwIfAborted();
    if (this.#inbox.length > 0) return true;
    if (this.#ended) return 'writer-closed';
    const timeout = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    if (timeout === 0) return 'timed-out';
    this.#waiting++;
    this.#refresh();
    try {
      return await new Promise<true | ReadEnd>((resolve, reject) => {
        const timer = timeout === undefined ? undefined : setTimeout(() => settle(() => resolve('timed-out')), timeout);
        const onAbort = () => settle(() => reject(signal?.reason));
        const wake = () => settle(() => resolve(this.#inbox.length > 0 ? true : 'writer-closed'));
        const settle = (done: () => void) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          done();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(wake);
      });
    } finally {
      this.#waiting--;
      this.#refresh();
    }
  }

  #receive(chunk: Buffer): void {
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    let data = this.#buffered.length === 1 ? chunk : Buffer.concat(this.#buffered);
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER) {
      const length = data.readUInt32LE(offset);
      if (data.length - offset < FRAME_HEADER + length) break;
      const tag = data.readUInt8(offset + 4) as Tag;
      this.#inbox.push({ bytes: Buffer.from(data.subarray(offset + FRAME_HEADER, offset + FRAME_HEADER + length)), tag });
      offset += FRAME_HEADER + length;
    }
    data = data.subarray(offset);
    this.#buffered = data.length > 0 ? [data] : [];
    this.#bufferedBytes = data.length;
    if (this.#inbox.length > 0) this.#wakeAll();
  }

  #end(): void {
    this.#ended = true;
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #refresh(): void {
    if (this.#waiting > 0 || this.#socket.writableLength > 0) this.#socket.ref();
    else this.#socket.unref();
  }
}
