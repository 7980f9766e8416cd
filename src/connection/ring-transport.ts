// A Connection's bytes over shared-memory rings (Pipe): one ring per direction. send() writes
// straight into the ring when there is room and otherwise queues the message in this process and
// writes it as the reader makes room (Python's feeder thread, without a thread). The pending
// writes keep the process alive, so a process that exits normally has delivered all it sent.

import { Ring, Tag, flushAtExit, type Message, type Outgoing, type ReadEnd } from '../internal/ring.ts';
import type { Slot } from '../internal/arena.ts';
import { thisProcessKey, type HolderKey } from '../internal/holders.ts';
import type { Transport } from './transport.ts';
import { copyMessage } from '../internal/message-buffer.ts';
import { isMainThread, threadId } from '../internal/threads.ts';

/** What takeNow() gives when no message is taken. */
export const NOT_READY: unique symbol = Symbol('multiproc.notReady');

export interface RingEnds {
  read: Slot | null;
  write: Slot | null;
  /** Who holds the copy until it arrives (see Ring.count()). */
  sender: HolderKey;
}


export class RingTransport implements Transport {
  readonly #read: Ring | null;
  readonly #write: Ring | null;
  /** Messages waiting for room, from the first byte that writeNow() could not write. */
  readonly #pending: Outgoing[] = [];
  #flushing: Promise<void> | undefined;
  /** How many of #pending the flusher has written (it trims them in batches). */
  #written = 0;
  #closed = false;

  /** `sender`: of a copy that the sender already counted as an opener of its ends (see share()). */
  constructor(read: Ring | null, write: Ring | null, sender?: HolderKey) {
    this.#read = read;
    this.#write = write;
    read?.openReader(sender);
    write?.openWriter(sender);
  }

  /** The ends of a copy that share() counted, attached in the receiving process or thread. */
  static attach(ends: RingEnds): RingTransport {
    return new RingTransport(ends.read && Ring.attach(ends.read), ends.write && Ring.attach(ends.write), ends.sender);
  }

  /**
   * The ends to send to another process, counted as opened by it from now on: the sender may
   * close its copy right after (Python's `p.start(); child_conn.close()`) without the other side
   * seeing end-of-stream before the receiver attached. A copy that is never received stays counted.
   */
  share(): RingEnds {
    this.#read?.count('readers');
    this.#write?.count('writers');
    return { read: this.#read?.slot ?? null, write: this.#write?.slot ?? null, sender: thisProcessKey() };
  }

  /** In the receiver: lets go of the ends of a copy that share() counted and that will never be attached. */
  static discard(ends: RingEnds): void {
    if (ends.read) Ring.attach(ends.read).discardCopy('readers', ends.sender);
    if (ends.write) Ring.attach(ends.write).discardCopy('writers', ends.sender);
  }

  /** Undoes a share() whose copy was never sent (see Ring.uncount()). */
  unshare(): void {
    this.#read?.uncount('readers');
    this.#write?.uncount('writers');
  }

  get readable(): boolean {
    return this.#read !== null;
  }

  get writable(): boolean {
    return this.#write !== null;
  }

  send(bytes: Uint8Array, tag: Tag, owned = false): void {
    const ring = this.#write as Ring;
    // What fits now goes in now (a large message's first chunks too); only the rest waits, copied
    // unless it is ours (the caller may reuse its buffer, and dumps() reuses its scratch).
    const written = this.#pending.length === 0 ? ring.writeNow(bytes, tag) : 0;
    if (written === bytes.byteLength) return;
    const rest = bytes.subarray(written);
    this.#pending.push({ bytes: owned ? rest : copyMessage(rest), tag, from: written, total: bytes.byteLength, done: false });
    this.#flushing ??= this.#flush(ring);
  }

  async #flush(ring: Ring): Promise<void> {
    // Written by index and trimmed in batches: shift() per message is quadratic in a long backlog.
    this.#written = 0;
    const stopFlushingAtExit = flushAtExit(this.#flushBlocking);
    while (this.#written < this.#pending.length) {
      await ring.write(this.#pending[this.#written] as Outgoing);
      if (++this.#written >= 1024) {
        this.#pending.splice(0, this.#written);
        this.#written = 0;
      }
    }
    stopFlushingAtExit();
    this.#pending.length = 0;
    this.#written = 0;
    this.#flushing = undefined;
    if (this.#closed) ring.closeWriter();
  }

  // At exit (process.exit(), an uncaught error), where the flusher's wait for room can no longer
  // end: the rest is written now, blocking this thread while the reader makes room, as a normal
  // exit waits for it; the message the flusher was writing goes on where it was. Not for a reader
  // that ends with this exit (a daemon being terminated, a thread of this ending process), and not
  // for ever: a reader that reads nothing for 10 s is given up on, with a word on stderr.
  readonly #flushBlocking = (): void => {
    const ring = this.#write as Ring;
    const pending = this.#pending;
    for (let i = this.#written; i < pending.length && !ring.readerEndsWithExit(); i++) {
      if (ring.writeAtExit(pending[i] as Outgoing)) continue;
      const who = isMainThread() ? `process ${process.pid}` : `thread ${threadId()} of process ${process.pid}`;
      // Written at once: process.stderr is asynchronous in a worker thread, and this thread is ending.
      process.getBuiltinModule('node:fs').writeSync(2, `multiproc: ${who} exits with ${pending.length - i} message(s) sent on a Pipe unwritten: its reader (pid ${ring.readerPid}) read nothing for 10 s.\n`);
      break;
    }
    pending.length = 0;
    this.#written = 0;
  };

  /** How many messages wait in this process for room in the ring. */
  get pendingCount(): number {
    return this.#pending.length - this.#written;
  }

  flushed(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  recv(deadline?: number, signal?: AbortSignal, keepAlive = true): Promise<Message | ReadEnd> {
    return (this.#read as Ring).read(deadline, signal, keepAlive);
  }

  /**
   * The next object message decoded where it lies in the ring, when one is whole and here now, and
   * `decode` takes it; NOT_READY otherwise (the message stays for recv()). No copy, no Promise.
   */
  takeNow<R>(decode: (bytes: Uint8Array) => R | typeof NOT_READY): R | typeof NOT_READY {
    const ring = this.#read as Ring;
    const bytes = ring.peekTagged(Tag.Object);
    if (!bytes) return NOT_READY;
    const value = decode(bytes);
    if (value !== NOT_READY) ring.release();
    return value;
  }

  tryRecv(): Message | undefined {
    return (this.#read as Ring).tryRead();
  }

  // As in Python, the end of the stream counts as readable: recv() would not wait, it would reject.
  async poll(deadline?: number, signal?: AbortSignal): Promise<boolean> {
    return (await (this.#read as Ring).waitReadable(deadline, signal)) !== 'timed-out';
  }

  /**
   * For a peer that was the only holder of the other ends and is gone without closing them (its
   * process was killed): closes them on its behalf (see Ring.closeForGonePeer()).
   */
  closeForGonePeer(): void {
    this.#read?.closeForGonePeer('writer');
    this.#write?.closeForGonePeer('reader');
  }

  /** Closes this process's hold on both ends; what is still pending is delivered first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#read?.closeReader();
    if (this.#write && !this.#flushing) this.#write.closeWriter();
  }
}
