// A byte ring in shared memory: the transport under Pipe and Queue. One writer and one reader at
// a time (Queue serializes its producers and its consumers with locks); messages are records that
// never straddle the end of the ring. A large message goes in chunks (writeNow() and write()), so
// that a message of any size passes while the reader drains it, and the reader copies one chunk
// out while the writer copies the next in.
//
// Header words: HEAD and TAIL count bytes written and read (unsigned, wrapping: the capacity is a
// power of two); the WAITING words tell the other side whether a
// wake is needed, and the WOKEN words that one is already on its way (a burst of messages to a
// parked reader costs one wake, not one per message); FLAGS holds the closed bits; the OPEN words
// count the copies of each end, and the holder tables say whose they are, so that a reader can
// tell that every writer died without closing (holders.ts). Records: [length, kind, tag, total] then the bytes,
// padded to 8. A full ring can be sealed with the name of a next ring: the reader drains it and
// moves on (Queue grows this way, so that put() never waits for a reader).

import { allocate, attach, forget, ownSegmentFor, type Slot } from './arena.ts';
import { unlinkQuietly } from '../resource-tracker.ts';
import { expired, park, parkSync, wake, type Park } from './futex.ts';
import { monotonicMs } from './clock.ts';
import { ExitStep, atExit, daemonsEnding } from './at-exit.ts';
import { isMainThread, threadId } from './threads.ts';
import { Spinner } from './spin.ts';
import { copyMessage, messageBuffer } from './message-buffer.ts';
import { HOLDERS_BYTES, Holders, thisProcessKey, thisThreadKey, type HolderKey } from './holders.ts';

// The words are grouped by who writes them, a cache line each (the ring starts on one, see
// arena.ts): the writer's counters, the reader's, and the rarely written rest. In one line, every
// message moved the line between the writer's and the reader's CPUs several times.
const FLAGS = 0;
const CAPACITY = 1;
/** The process that last opened the reading end, and its thread: see readerEndsWithExit(). */
const READER_PID = 3;
const WRITERS_OPEN = 4;
const READERS_OPEN = 5;
const READER_TID = 6;
const HEAD = 16;
/** @internal The word a waiting reader sleeps on (tests check that whatever ends a wait moves it). */
export const READER_WAITS_ON = HEAD;
const TAIL = 32;
/** @internal The word a writer waiting for room sleeps on. */
export const WRITER_WAITS_ON = TAIL;
/** Written only by a side about to wait (and by the first wake): read on every message, rarely moved. */
const READERS_WAITING = 48;
const WRITERS_WAITING = 49;
/** Set by the first wake of waiting readers (writers), cleared by a reader (writer) about to wait. */
const READERS_WOKEN = 50;
const WRITERS_WOKEN = 51;
/** Where a sealed ring names the ring that follows it (a Queue grows by chaining rings). */
const NEXT_NAME_AT = 256;
const NEXT_NAME_BYTES = 64;
const WRITER_HOLDERS_AT = NEXT_NAME_AT + NEXT_NAME_BYTES;
const READER_HOLDERS_AT = WRITER_HOLDERS_AT + HOLDERS_BYTES;
/** Whole cache lines, so that the data starts on one. */
const HEADER_BYTES = Math.ceil((READER_HOLDERS_AT + HOLDERS_BYTES) / 64) * 64;
const RECORD_HEADER = 16;

const WRITER_CLOSED = 1;
const READER_CLOSED = 2;
const SEALED = 4;

const enum Kind {
  Whole = 1,
  First = 2,
  Middle = 3,
  Last = 4,
  Wrap = 5,
}

/** What a message is: a structured-clone payload, or raw bytes from sendBytes(). */
export const enum Tag {
  Object = 0,
  Bytes = 1,
}

export interface Message {
  bytes: Buffer;
  tag: Tag;
}

/**
 * A message being written: `bytes` are its bytes from `from` on, of `total` (written before: the
 * others); `done` once its last record is in (set at once, where the write's continuation may
 * come too late: after an exit began).
 */
export interface Outgoing {
  bytes: Uint8Array;
  tag: Tag;
  from: number;
  total: number;
  done?: boolean;
}

/**
 * Why a read stopped without a message ('sealed': drained, go on to the next ring; 'closed': this
 * process closed its reading end meanwhile).
 */
export type ReadEnd = 'timed-out' | 'writer-closed' | 'writer-died' | 'sealed' | 'closed';

/** How often a waiting reader checks that the writer's process still runs. */
const LIVENESS_MS = 200;

/**
 * writeNow() and write() send larger messages in chunks of this size (or half the ring, if less).
 * In half-ring chunks the writer waited for the reader to drain one before it wrote the next:
 * a 1 MiB Pipe round trip took 0.83-0.97 ms in 512 KiB chunks, 0.51-0.60 in 64 KiB ones, 256 KiB
 * 0.33 ms whole and 0.17 in chunks (medians of alternating blocks in one run).
 */
const CHUNK_BYTES = 64 * 1024;

const align8 = (n: number) => (n + 7) & ~7;

function chunkKind(offset: number, end: number, total: number): Kind {
  return offset === 0 ? Kind.First : end === total ? Kind.Last : Kind.Middle;
}

/** Resolves after the microtasks and I/O callbacks already queued in this thread have run. */
const afterPendingWork = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Resolves after the microtasks and process.nextTick() callbacks already queued, without a turn of the event loop. */
const afterQueuedCallbacks = () => new Promise<void>((resolve) => process.nextTick(resolve));

// A Pipe's ring has a segment of its own. It is unlinked once no process holds either end (the
// counts include copies in flight), and each thread drops its mapping once it holds no end of it:
// a program that makes a Pipe per request, or a Pool whose workers are replaced, no longer keeps
// every segment until it exits (the kernel caps a process at about 65,000 mappings). A thread
// that exits closes the ends it still holds, as the kernel closes a process's file descriptors.
interface EndsHeld {
  ring: Ring;
  writers: number;
  readers: number;
}
/** This thread's open ends, by segment. */
const endsHeld = new Map<string, EndsHeld>();
let closingAtExit = false;
/** How long a write at exit waits for a reader that reads nothing before it gives up, saying so. */
const EXIT_STALL_MS = 10_000;

function hold(ring: Ring, end: 'writers' | 'readers'): void {
  let held = endsHeld.get(ring.slot.segment);
  if (!held) {
    closeEndsAtExit();
    held = { ring, writers: 0, readers: 0 };
    endsHeld.set(ring.slot.segment, held);
  }
  held[end]++;
}

// At exit: this thread's reading ends close first (a write waiting for a reader that is only this
// thread then sees the end and drops), then the pending writes are flushed, then the writing ends
// close (a reader sees the end after the last message).
function closeEndsAtExit(): void {
  if (closingAtExit) return;
  closingAtExit = true;
  atExit(ExitStep.Flush, () => {
    for (const { ring, readers } of [...endsHeld.values()]) for (let i = 0; i < readers; i++) ring.closeReader();
    for (const flush of exitFlushes) flush();
  });
  atExit(ExitStep.LetGo, () => {
    for (const { ring, writers } of [...endsHeld.values()]) for (let i = 0; i < writers; i++) ring.closeWriter();
  });
}

/** Writes that wait for room in this thread, to finish at exit before its ends close (see RingTransport). */
const exitFlushes = new Set<() => void>();

/** Runs `flush` at this thread's exit, before its ends are closed, unless the returned function is called first. */
export function flushAtExit(flush: () => void): () => void {
  closeEndsAtExit();
  exitFlushes.add(flush);
  return () => exitFlushes.delete(flush);
}

export class Ring {
  readonly slot: Slot;
  readonly capacity: number;
  /** Whether the ring is alone in its segment (a Pipe's: allocate() gave it one), so closing may unlink it. */
  readonly #ownSegment: boolean;
  readonly #words: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;

  readonly #header: Uint8Array;
  readonly #writers: Holders;
  readonly #readers: Holders;
  /** Set once a writer here saw every reader dead: later writes are dropped at once. */
  #readerGone = false;
  /** Set once a reader here saw every writer dead: a later poll() says so at once (wait() needs it). */
  #writerDied = false;
  /** When this reader last looked whether its writers live, without waiting (see #writersDied()). */
  #writersCheckedAt = -Infinity;
  readonly #spinner = new Spinner();
  /** Aborted when this process closes its reading end: its reads still waiting end at once. */
  readonly #closing = new AbortController();
  readonly #readable = () => this.hasData();
  // Each side remembers the other's counter as last read, and reads it again only when that says
  // full (writer) or empty (reader): a counter read every message moves its cache line from the
  // other CPU, which has just written it. A remembered value is only used while this side was the
  // last to move its own counter (no other writer or reader since), so it is never ahead of the
  // truth: a stale one only understates the room or the data, and is then read again.
  #tailSeen = 0;
  #headWritten = -1;
  #headSeen = 0;
  #tailWritten = -1;
  /** TAIL as this reader last read or moved it: one load per message, not one per step. */
  #tail = 0;

  private constructor(slot: Slot, buffer: SharedArrayBuffer) {
    this.slot = slot;
    this.#words = new Int32Array(buffer, slot.offset, HEADER_BYTES / 4);
    this.#header = new Uint8Array(buffer, slot.offset, HEADER_BYTES);
    this.capacity = Atomics.load(this.#words, CAPACITY);
    this.#ownSegment = slot.offset === 0 && ownSegmentFor(HEADER_BYTES + this.capacity);
    this.#data = new Uint8Array(buffer, slot.offset + HEADER_BYTES, this.capacity);
    this.#view = new DataView(buffer, slot.offset + HEADER_BYTES, this.capacity);
    this.#writers = new Holders(buffer, slot.offset + WRITER_HOLDERS_AT);
    this.#readers = new Holders(buffer, slot.offset + READER_HOLDERS_AT);
  }

  /** A new ring of `capacity` bytes (rounded up to a power of two, at least 4 KiB). */
  static create(capacity: number): Ring {
    const size = Ring.bytesFor(capacity);
    const placed = allocate(HEADER_BYTES + size);
    Atomics.store(new Int32Array(placed.buffer, placed.offset, HEADER_BYTES / 4), CAPACITY, size);
    return new Ring({ segment: placed.segment, offset: placed.offset }, placed.buffer);
  }

  static attach(slot: Slot): Ring {
    return new Ring(slot, attach(slot).buffer);
  }

  /** Allocates `capacity` rounded to a power of two; big rings get a segment of their own (offset 0). */
  static bytesFor(capacity: number): number {
    return 2 ** Math.max(12, Math.ceil(Math.log2(capacity)));
  }

  /** The largest message that writeNow() and write() write whole; larger ones go in chunks of this size. */
  get #chunk(): number {
    return Math.min(this.#maxRecord, CHUNK_BYTES - RECORD_HEADER);
  }

  /** The largest record: what tryWrite() takes whole (Queue grows its ring for a larger item). */
  get #maxRecord(): number {
    return this.capacity / 2 - RECORD_HEADER;
  }

  // ---- writer side ----

  /** Writes `bytes` whole if it is small enough and fits now; false otherwise. */
  tryWrite(bytes: Uint8Array, tag: Tag): boolean {
    return bytes.byteLength <= this.#maxRecord && this.#put(bytes, Kind.Whole, tag, bytes.byteLength);
  }

  /**
   * Writes what fits now without waiting: the whole message, or its first chunks. Returns how many
   * bytes went in (0: nothing; a large message then goes on with write(rest, ..., from)).
   */
  writeNow(bytes: Uint8Array, tag: Tag): number {
    const total = bytes.byteLength;
    if (total <= this.#chunk) return this.#put(bytes, Kind.Whole, tag, total) ? total : 0;
    let offset = 0;
    while (offset < total) {
      const end = Math.min(total, offset + this.#chunk);
      if (!this.#put(bytes.subarray(offset, end), chunkKind(offset, end, total), tag, total)) break;
      offset = end;
    }
    return offset;
  }

  /**
   * Writes the rest of `message` (in chunks if large), waiting for room; false if `deadline` passed
   * before its first byte went in. `message` moves on as its chunks go in, so that a write cut
   * short (by an exit) can be finished by writeAtExit().
   */
  async write(message: Outgoing, deadline?: number, signal?: AbortSignal): Promise<boolean> {
    const steps = this.#writing(message, deadline);
    try {
      for (let step = steps.next(); ; ) {
        if (step.done) return step.value;
        // Once the first chunk is in, the message must finish: later chunks wait without a deadline.
        step = steps.next(await park(this.#words, TAIL, step.value, message.from === 0 ? deadline : undefined, signal, LIVENESS_MS, true, true));
      }
    } finally {
      steps.return(false); // a wait that threw (an abort) still counts itself out of the waiting writers
    }
  }

  /**
   * At exit: write(), blocking this thread for room, where no Promise can settle any more. False
   * if the reader read nothing for EXIT_STALL_MS (the rest of the message is not written): an
   * exit waits for a slow reader, not for ever.
   */
  writeAtExit(message: Outgoing): boolean {
    const steps = this.#writing(message, undefined);
    let tail = -1;
    let since = 0;
    for (let step = steps.next(); !step.done; ) {
      if (step.value !== tail) {
        tail = step.value; // the reader made room since the last wait
        since = monotonicMs();
      } else if (monotonicMs() - since >= EXIT_STALL_MS) {
        steps.return(false);
        return false;
      }
      step = steps.next(parkSync(this.#words, TAIL, step.value, undefined, LIVENESS_MS));
    }
    return true;
  }

  /** The process that last opened the reading end (0: none open, or it closed). */
  get readerPid(): number {
    return Atomics.load(this.#words, READER_PID);
  }

  /**
   * At exit: whether this ring's reader ends with this exit, so that nothing written now would be
   * read: a daemonic child being terminated, or, when the process itself ends (its main thread
   * exits), another thread of it.
   */
  readerEndsWithExit(): boolean {
    const pid = Atomics.load(this.#words, READER_PID);
    if (daemonsEnding.has(pid)) return true;
    return pid === process.pid && isMainThread() && Atomics.load(this.#words, READER_TID) !== threadId();
  }

  // write()'s steps: each yields the TAIL to wait on while the ring is full, and goes on with how
  // the wait ended (asynchronously for write(), blocking for writeAtExit()). True once the message
  // is in, or dropped because nobody will read it; false if `deadline` passed first.
  *#writing(message: Outgoing, deadline: number | undefined): Generator<number, boolean, Park> {
    const words = this.#words;
    for (;;) {
      if (message.done) return true;
      if (this.#putNext(message)) continue;
      if (Atomics.load(words, FLAGS) & READER_CLOSED) return true; // nobody will read it: drop, as a closed pipe does
      if (this.#readerGone) return true;
      if (message.from === 0 && expired(deadline)) return false;
      Atomics.add(words, WRITERS_WAITING, 1);
      Atomics.store(words, WRITERS_WOKEN, 0);
      try {
        // The reader may have made room before it could see this writer waiting: look again.
        const tail = Atomics.load(words, TAIL);
        if (tail >>> 0 !== this.#tailSeen) continue;
        // Every reader died holding its copy: nobody will read it, as when they closed.
        if ((yield tail) === 'timed-out' && this.#readers.allDead()) {
          this.#readerGone = true;
          return true;
        }
      } finally {
        Atomics.sub(words, WRITERS_WAITING, 1);
      }
    }
  }

  // The next record of `message`: the whole of a small one, or its next chunk. It moves on if written.
  #putNext(message: Outgoing): boolean {
    const { bytes, total } = message;
    if (total <= this.#chunk) {
      if (!this.#put(bytes, Kind.Whole, message.tag, total)) return false;
      message.from = total;
      message.done = true;
      return true;
    }
    const end = Math.min(total, message.from + this.#chunk);
    if (!this.#put(bytes.subarray(0, end - message.from), chunkKind(message.from, end, total), message.tag, total)) return false;
    message.bytes = bytes.subarray(end - message.from);
    message.from = end;
    message.done = end === total;
    return true;
  }

  /** One record; a chunk's header also carries the whole message's length (`total`). */
  #put(bytes: Uint8Array, kind: Kind, tag: Tag, total: number): boolean {
    const words = this.#words;
    const head = Atomics.load(words, HEAD) >>> 0;
    const size = align8(RECORD_HEADER + bytes.byteLength);
    const position = head & (this.capacity - 1);
    const contiguous = this.capacity - position;
    const padding = contiguous < size ? contiguous : 0;
    if (head !== this.#headWritten || ((head - this.#tailSeen) >>> 0) + padding + size > this.capacity) {
      this.#tailSeen = Atomics.load(words, TAIL) >>> 0;
      if (((head - this.#tailSeen) >>> 0) + padding + size > this.capacity) return false;
    }
    if (padding >= RECORD_HEADER) this.#view.setUint32(position + 4, Kind.Wrap, true);
    const at = padding ? 0 : position;
    this.#view.setUint32(at, bytes.byteLength, true);
    this.#view.setUint32(at + 4, kind, true);
    this.#view.setUint32(at + 8, tag, true);
    this.#view.setUint32(at + 12, total, true);
    this.#data.set(bytes, at + RECORD_HEADER);
    this.#headWritten = (head + padding + size) >>> 0;
    Atomics.store(words, HEAD, this.#headWritten | 0);
    if (Atomics.load(words, READERS_WAITING) > 0 && Atomics.compareExchange(words, READERS_WOKEN, 0, 1) === 0) wake(words, HEAD);
    return true;
  }

  // Each process (or thread) that holds an end counts as one opener: an end is closed for the
  // other side once every holder closed it, as a pipe's end is once every copy of its fd is.
  // A copy sent to another process counts from the moment it is sent (as Python dups the fd when
  // it pickles a Connection: count()), so the sender may close its own copy at once; the receiver
  // then takes the copy over from its `sender`, and holds it from then on.
  openWriter(sender?: HolderKey): void {
    if (sender === undefined) {
      Atomics.add(this.#words, WRITERS_OPEN, 1);
      this.#writers.add(thisThreadKey());
    } else this.#writers.transfer(sender, thisThreadKey());
    hold(this, 'writers');
  }

  openReader(sender?: HolderKey): void {
    if (sender === undefined) {
      Atomics.add(this.#words, READERS_OPEN, 1);
      this.#readers.add(thisThreadKey());
    } else this.#readers.transfer(sender, thisThreadKey());
    this.#nameReader();
    hold(this, 'readers');
  }

  /**
   * Counts a copy of an end on its way to another process or thread. It is not this thread's end:
   * the receiver holds it once it arrives, and this thread's exit does not close it (it closed
   * the receiver's count, and dropped what the receiver had still to read). Until it arrives, this
   * process (thisProcessKey()) holds it.
   */
  count(end: 'writers' | 'readers'): void {
    if (end === 'writers') {
      Atomics.add(this.#words, WRITERS_OPEN, 1);
      this.#writers.add(thisProcessKey());
    } else {
      Atomics.add(this.#words, READERS_OPEN, 1);
      this.#readers.add(thisProcessKey());
      this.#nameReader();
    }
  }

  #nameReader(): void {
    Atomics.store(this.#words, READER_TID, threadId());
    Atomics.store(this.#words, READER_PID, process.pid);
  }

  /** Undoes a count() of a copy that was never sent (its send failed), as if that copy had been closed. */
  uncount(end: 'writers' | 'readers', sender: HolderKey = thisProcessKey()): void {
    (end === 'writers' ? this.#writers : this.#readers).remove(sender);
    if (end === 'writers' ? this.#dropWriter() : this.#dropReader()) this.#unlink();
  }

  /** uncount() in a receiver, of a copy from `sender` it will never attach: this thread's mapping goes too, unless it holds ends of the ring. */
  discardCopy(end: 'writers' | 'readers', sender: HolderKey): void {
    this.uncount(end, sender);
    if (this.#ownSegment && !endsHeld.has(this.slot.segment)) forget(this.slot.segment);
  }

  closeWriter(): void {
    this.#writers.remove(thisThreadKey());
    this.#letGo('writers', this.#dropWriter());
  }

  closeReader(): void {
    this.#closing.abort();
    this.#readers.remove(thisThreadKey());
    Atomics.compareExchange(this.#words, READER_PID, process.pid, 0);
    this.#letGo('readers', this.#dropReader());
  }

  /**
   * Closes the other side's end of this ring (the reader's if this process writes it, and the
   * reverse) for a peer whose process or thread has ended without closing it (a SIGKILL), when
   * that peer was its only holder: then its reader sees the end of the stream at once, after what
   * was written, and the ring can be freed. Does nothing if the peer closed it.
   */
  closeForGonePeer(end: 'writer' | 'reader'): void {
    const index = end === 'writer' ? WRITERS_OPEN : READERS_OPEN;
    if (Atomics.load(this.#words, index) <= 0) return;
    (end === 'writer' ? this.#writers : this.#readers).removeDead();
    if (end === 'writer' ? this.#dropWriter() : this.#dropReader()) this.#unlink();
  }

  /** One writer fewer; true when that leaves no end open anywhere. */
  #dropWriter(): boolean {
    const last = Atomics.sub(this.#words, WRITERS_OPEN, 1) === 1;
    if (!last) return false;
    Atomics.or(this.#words, FLAGS, WRITER_CLOSED);
    this.#padToEnd();
    wake(this.#words, HEAD);
    return Atomics.load(this.#words, READERS_OPEN) === 0;
  }

  /** One reader fewer; true when that leaves no end open anywhere. */
  #dropReader(): boolean {
    const last = Atomics.sub(this.#words, READERS_OPEN, 1) === 1;
    if (!last) return false;
    Atomics.or(this.#words, FLAGS, READER_CLOSED);
    // Nobody will read what is left: it is freed, which moves TAIL, the word a writer waiting for
    // room sleeps on (a flag alone could miss a writer about to sleep, as #padToEnd() explains).
    this.#storeTail(Atomics.load(this.#words, HEAD) >>> 0);
    wake(this.#words, TAIL);
    return Atomics.load(this.#words, WRITERS_OPEN) === 0;
  }

  // After this thread closed an end: `unused` when no end is open anywhere (each count dropped, then
  // read the other: of two last closes at once, at least one sees both at zero). A second unlink
  // finds it gone.
  #letGo(end: 'writers' | 'readers', unused: boolean): void {
    const segment = this.slot.segment;
    if (unused) this.#unlink();
    const held = endsHeld.get(segment);
    if (held && held[end] > 0) held[end]--;
    if (held && held.writers + held.readers > 0) return;
    endsHeld.delete(segment);
    if (this.#ownSegment) forget(segment);
  }

  /**
   * Unlinks the ring's segment and lets go of this thread's mapping, when the ring is alone in its
   * segment: for a Queue that no process holds any more (see queues.ts).
   */
  free(): void {
    this.#unlink();
    if (this.#ownSegment) forget(this.slot.segment);
  }

  /** Unlinks the segment if the ring is alone in it (never an arena's). */
  #unlink(): void {
    if (this.#ownSegment) unlinkQuietly(this.slot.segment);
  }

  /** Marks this ring full for good and names the ring that follows (written first). */
  seal(next: string): void {
    const name = Buffer.from(next, 'latin1');
    if (name.length >= NEXT_NAME_BYTES) throw new Error(`bug in multiproc: ring name too long: ${next}`);
    this.#header.fill(0, NEXT_NAME_AT, NEXT_NAME_AT + NEXT_NAME_BYTES);
    this.#header.set(name, NEXT_NAME_AT);
    Atomics.or(this.#words, FLAGS, SEALED);
    this.#padToEnd();
    wake(this.#words, HEAD);
  }

  // A reader waits for HEAD to move, and a wake only reaches a reader already asleep: one that saw
  // the flags unset, then slept, would miss the seal's (or close's) wake and sleep on until its
  // liveness check (200 ms; a Queue's consumer stalled so with 90,000 items waiting). So both move
  // HEAD too, by padding the ring to its end as a wrap does, where that space is free. Where it is
  // not, unread records are there, and the reader reads them and sees the flag before it waits.
  #padToEnd(): void {
    const words = this.#words;
    const head = Atomics.load(words, HEAD) >>> 0;
    const position = head & (this.capacity - 1);
    const contiguous = this.capacity - position;
    if (((head - (Atomics.load(words, TAIL) >>> 0)) >>> 0) + contiguous > this.capacity) return;
    if (contiguous >= RECORD_HEADER) this.#view.setUint32(position + 4, Kind.Wrap, true);
    this.#headWritten = (head + contiguous) >>> 0;
    Atomics.store(words, HEAD, this.#headWritten | 0);
  }

  sealed(): boolean {
    return (Atomics.load(this.#words, FLAGS) & SEALED) !== 0;
  }

  /** The ring that follows a sealed one. */
  nextName(): string {
    const bytes = this.#header.subarray(NEXT_NAME_AT, NEXT_NAME_AT + NEXT_NAME_BYTES);
    return Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
  }

  /** Whether a message of `length` bytes can ever be written whole here. */
  fitsWhole(length: number): boolean {
    return length <= this.#maxRecord;
  }

  // ---- reader side ----

  /** True when a record is waiting to be read. */
  hasData(): boolean {
    const tail = (this.#tail = Atomics.load(this.#words, TAIL) >>> 0);
    if (tail === this.#tailWritten && tail !== this.#headSeen && ((this.#headSeen - tail) >>> 0) <= this.capacity) return true;
    this.#headSeen = Atomics.load(this.#words, HEAD) >>> 0;
    return this.#headSeen !== tail;
  }

  writerClosed(): boolean {
    return (Atomics.load(this.#words, FLAGS) & WRITER_CLOSED) !== 0;
  }

  /** Reads the next message if it is whole and here now (a chunked one needs read()). */
  tryRead(): Message | undefined {
    if (!this.#recordReady() || this.#kindAt(this.#tailPosition()) !== Kind.Whole) return undefined;
    return this.#take();
  }

  /**
   * The next message's bytes where they lie in the ring, if it is whole and here now: no copy,
   * for a reader that decodes them at once. They stay the message's until release(), and may be
   * overwritten after it.
   */
  peek(): Uint8Array | undefined {
    const start = this.peekStart();
    return start < 0 ? undefined : this.#data.subarray(start, start + this.peekedLength());
  }

  /**
   * peek() without a view: where the next whole message starts in `data` (peekedLength() long),
   * or -1. A reader that decodes in place makes no object per message (a view was a tenth of
   * a small Queue.get()).
   */
  peekStart(): number {
    if (!this.#recordReady()) return -1;
    const position = this.#tailPosition();
    return this.#kindAt(position) === Kind.Whole ? position + RECORD_HEADER : -1;
  }

  /** The length of the message that peekStart() found. */
  peekedLength(): number {
    return this.#view.getUint32(this.#tailPosition(), true);
  }

  /** The ring's data, where peekStart() points. */
  get data(): Uint8Array {
    return this.#data;
  }

  /** peek() of a message of this tag only. */
  peekTagged(tag: Tag): Uint8Array | undefined {
    const bytes = this.peek();
    return bytes && this.#view.getUint32(this.#tailPosition() + 8, true) === tag ? bytes : undefined;
  }

  /** Frees the message that peek() gave. */
  release(): void {
    this.#consume(this.#view.getUint32(this.#tailPosition(), true));
  }

  /** Reads the next message, waiting for it; or says why none came. */
  async read(deadline?: number, signal?: AbortSignal, keepAlive = true): Promise<Message | ReadEnd> {
    const first = await this.#next(deadline, signal, keepAlive);
    if (typeof first === 'string') return first;
    if (this.#kindAt(this.#tailPosition()) === Kind.Whole) return this.#take();
    // A chunked message: its first chunk says how long it is, and every chunk is copied into place.
    const message = messageBuffer(this.#view.getUint32(this.#tailPosition() + 12, true));
    let filled = 0;
    for (;;) {
      const position = this.#tailPosition();
      const kind = this.#kindAt(position);
      const length = this.#view.getUint32(position, true);
      const tag = this.#view.getUint32(position + 8, true) as Tag;
      message.set(this.#data.subarray(position + RECORD_HEADER, position + RECORD_HEADER + length), filled);
      filled += length;
      this.#consume(length);
      if (kind === Kind.Last) return { bytes: message, tag };
      // The writer is mid-message: its remaining chunks are coming, so no deadline applies.
      const more = await this.#next(undefined, signal, keepAlive);
      if (typeof more === 'string') return more;
    }
  }

  /** Waits until a record is readable (true), or says why not. */
  waitReadable(deadline?: number, signal?: AbortSignal): Promise<true | ReadEnd> {
    return this.#next(deadline, signal);
  }

  async #next(deadline: number | undefined, signal: AbortSignal | undefined, keepAlive = true): Promise<true | ReadEnd> {
    const words = this.#words;
    let yielded = false;
    for (;;) {
      if (this.#recordReady()) return true;
      if (this.#closing.signal.aborted) return 'closed';
      // Looked at again after the flag: a writer that wrote and then closed (or sealed) between
      // the two reads must not have its last message taken for the end of the stream.
      if (this.writerClosed()) return this.#recordReady() ? true : 'writer-closed';
      if (this.sealed()) return this.#recordReady() ? true : 'sealed';
      if (this.#writerDied) return this.#recordReady() ? true : 'writer-died';
      if (expired(deadline)) {
        if (this.#writersDied()) continue;
        return 'timed-out';
      }
      // Spin only once this thread has nothing else to do: what is queued here (the code that
      // sends the request whose reply this read awaits, say) runs first.
      if (!yielded && this.#spinner.willSpin()) {
        yielded = true;
        if (this.#spinner.willSpinEarly()) {
          await afterQueuedCallbacks();
          if (this.#spinner.spinEarly(this.#readable)) continue;
        }
        await afterPendingWork();
        continue;
      }
      if (this.#spinner.spin(this.#readable)) continue;
      Atomics.add(words, READERS_WAITING, 1);
      Atomics.store(words, READERS_WOKEN, 0);
      try {
        const head = Atomics.load(words, HEAD);
        if (this.#recordReady()) return true;
        const closing = this.#closing.signal;
        let parked;
        try {
          parked = await park(words, HEAD, head, deadline, signal ? AbortSignal.any([signal, closing]) : closing, LIVENESS_MS, keepAlive, true);
        } catch (error) {
          if (closing.aborted && !signal?.aborted) return 'closed';
          throw error;
        }
        this.#spinner.settled();
        if (parked === 'timed-out') this.#checkWriters();
      } finally {
        Atomics.sub(words, READERS_WAITING, 1);
      }
    }
  }

  /**
   * Whether every writer died without closing its end (remembered once seen). Looked at on each
   * liveness wake of a waiting read, and by a read that does not wait (poll(0)) at most once a
   * LIVENESS_MS, as it costs a system call per holder.
   */
  #writersDied(): boolean {
    if (this.#writerDied || monotonicMs() - this.#writersCheckedAt < LIVENESS_MS) return this.#writerDied;
    return this.#checkWriters();
  }

  #checkWriters(): boolean {
    this.#writersCheckedAt = monotonicMs();
    this.#writerDied = this.#writers.allDead();
    return this.#writerDied;
  }

  #wakeWriters(): void {
    const words = this.#words;
    if (Atomics.load(words, WRITERS_WAITING) > 0 && Atomics.compareExchange(words, WRITERS_WOKEN, 0, 1) === 0) wake(words, TAIL);
  }

  // Where the next record is: TAIL as hasData() (which every read starts with) or #consume() left it.
  // Only this reader moves TAIL meanwhile: Queue's consumers take turns through a lock.
  #tailPosition(): number {
    return this.#tail & (this.capacity - 1);
  }

  #kindAt(position: number): Kind {
    return this.#view.getUint32(position + 4, true) as Kind;
  }

  // Whether a record is at the tail, skipping the padding before it: a record never straddles the
  // end, the writer left padding there (with a Wrap record when it fit). One check of HEAD decides
  // both: checking for padding and then for data would let a wrap written in between be read as
  // a record (a reader took the Wrap marker for a chunk and overran its message).
  #recordReady(): boolean {
    if (!this.hasData()) return false;
    const position = this.#tailPosition();
    const contiguous = this.capacity - position;
    if (contiguous < RECORD_HEADER || this.#kindAt(position) === Kind.Wrap) {
      this.#storeTail(this.#tail + contiguous);
      this.#wakeWriters();
      // A write moves HEAD past its padding and its record at once, so a record follows, unless
      // the padding was a seal's or a close's (see #padToEnd()).
      return this.hasData();
    }
    return true;
  }

  #take(): Message {
    const position = this.#tailPosition();
    const length = this.#view.getUint32(position, true);
    const tag = this.#view.getUint32(position + 8, true) as Tag;
    const bytes = copyMessage(this.#data.subarray(position + RECORD_HEADER, position + RECORD_HEADER + length));
    this.#consume(length);
    return { bytes, tag };
  }

  #storeTail(tail: number): void {
    this.#tail = this.#tailWritten = tail >>> 0;
    Atomics.store(this.#words, TAIL, tail | 0);
  }

  /** Frees the record at the tail, of `length` bytes, for the writer. */
  #consume(length: number): void {
    this.#storeTail(this.#tail + align8(RECORD_HEADER + length));
    this.#wakeWriters();
  }
}
