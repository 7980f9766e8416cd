// A reader waiting on an empty ring sleeps on one word (HEAD) and is woken when it changes. A seal
// (a Queue moving on to a larger ring) and the last writer's close used to set a flag and wake
// without moving that word: a reader that had seen the flags unset and then went to sleep missed
// the wake and slept until its 200 ms liveness check (a Queue consumer stalled so with 94,000 items
// waiting). They now pad the ring to its end, which moves the word; these tests pin that down, and
// that the padding is never read as a message. Likewise the last reader's close, for a writer waiting
// for room.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attach } from '../../src/internal/arena.ts';
import { READER_WAITS_ON, Ring, Tag, WRITER_WAITS_ON } from '../../src/internal/ring.ts';

function waitWord(ring: Ring, index = READER_WAITS_ON): () => number {
  const placed = attach(ring.slot);
  const words = new Int32Array(placed.buffer, placed.offset, index + 1);
  return () => Atomics.load(words, index);
}

/** A ring whose next write lands `offset` bytes in (its earlier messages written and read). */
function ringAt(offset: number): Ring {
  const ring = Ring.create(4096);
  ring.openReader();
  ring.openWriter();
  for (let written = 0; written < offset; written += 64) {
    assert.ok(ring.tryWrite(new Uint8Array(48), Tag.Bytes));
    assert.ok(ring.tryRead());
  }
  return ring;
}

describe('a seal or a close wakes a reader that waits on an empty ring', () => {
  for (const offset of [0, 64 * 20, 4096 - 64, 4096 - 8]) {
    it(`seal() moves the word the reader sleeps on, and the reader gets 'sealed', no message (next write at byte ${offset})`, async () => {
      const ring = ringAt(offset);
      const word = waitWord(ring);
      const before = word();
      ring.seal('next');
      assert.notEqual(word(), before);
      assert.equal(ring.hasData(), true); // the padding, which no read returns
      assert.equal(await ring.waitReadable(), 'sealed');
      assert.equal(ring.tryRead(), undefined);
      assert.equal(await ring.read(), 'sealed');
    });
  }

  it("closeWriter() moves it too, and the reader gets 'writer-closed'", async () => {
    const ring = ringAt(64 * 7);
    const word = waitWord(ring);
    const before = word();
    ring.closeWriter();
    assert.notEqual(word(), before);
    assert.equal(await ring.read(), 'writer-closed');
  });

  it('the last reader\'s close moves the word a writer waiting for room sleeps on, and that write ends (dropped, as on a closed pipe)', async () => {
    const ring = ringAt(0);
    while (ring.tryWrite(new Uint8Array(1000), Tag.Bytes));
    const word = waitWord(ring, WRITER_WAITS_ON);
    const before = word();
    const waiting = ring.write({ bytes: new Uint8Array(1000), tag: Tag.Bytes, from: 0, total: 1000 });
    await new Promise((resolve) => setImmediate(resolve)); // the writer finds no room and sleeps
    ring.closeReader();
    assert.notEqual(word(), before);
    assert.equal(await waiting, true);
  });

  it('a reader already asleep wakes on the seal; a message left unread before it still comes first', async () => {
    const ring = ringAt(64 * 3);
    const waiting = ring.waitReadable();
    await new Promise((resolve) => setImmediate(resolve)); // the reader spins, then sleeps
    ring.seal('next');
    assert.equal(await waiting, 'sealed');

    const withMessage = ringAt(64 * 5);
    assert.ok(withMessage.tryWrite(Buffer.from('last'), Tag.Bytes));
    withMessage.seal('next'); // padded after the message, which is still unread
    const message = await withMessage.read();
    assert.ok(typeof message !== 'string');
    assert.equal(Buffer.from(message.bytes).toString(), 'last');
    assert.equal(await withMessage.read(), 'sealed');
  });
});
