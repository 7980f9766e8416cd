// A ring's reader against a writer in another process or thread, in a ring small enough to wrap
// every few messages: every message arrives whole, in order, byte for byte. A reader used to check
// for padding and then for data in two steps; a wrap written between them was read as a record (the
// Wrap marker taken for a chunk), which corrupted the message or killed a pool worker mid-task.
// Likewise a message written just before its writer closed must come before the end of stream.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { allocate } from '../../src/internal/arena.ts';
import { Ring } from '../../src/internal/ring.ts';
import { thisProcessKey } from '../../src/internal/holders.ts';
import { messageOf, writeMessages, writeOneAndClose } from '../fixtures/ring/writer.ts';

const COUNT = 100_000;

forEachBackend((ctx) => {
  it(`${COUNT.toLocaleString('en')} messages through a 4 KiB ring (thousands of wraps, some chunked, some written blocking) arrive intact and in order`, { timeout: 120_000 }, async (t) => {
    const ring = Ring.create(4096);
    ring.openReader();
    ring.count('writers'); // for the writer, which takes it over as it attaches (as a Connection's share() does)
    const writer = new ctx.Process({ target: writeMessages, args: [ring.slot, thisProcessKey(), COUNT] });
    writer.start();
    t.after(async () => {
      if (writer.exitCode === null) writer.kill();
      await writer.join();
    });
    for (let i = 0; i < COUNT; i++) {
      const message = await ring.read();
      if (typeof message === 'string') assert.fail(`message ${i}: the read ended (${message})`);
      const expected = messageOf(i, ring.capacity);
      if (!message.bytes.equals(expected)) assert.fail(`message ${i} (${expected.length} bytes) arrived as ${message.bytes.length} bytes that differ`);
    }
    assert.equal(await ring.read(), 'writer-closed');
    await writer.join();
    assert.equal(writer.exitCode, 0);
  });
});

const RINGS = 2_000;

forEachBackend((ctx) => {
  it(`a message written right before its writer closes is read before the end of stream (${RINGS.toLocaleString('en')} rings)`, { timeout: 120_000 }, async (t) => {
    const rings = Array.from({ length: RINGS }, () => Ring.create(4096));
    for (const ring of rings) {
      ring.openReader();
      ring.count('writers');
    }
    const counter = allocate(4);
    const reading = new Int32Array(counter.buffer, counter.offset, 1);
    const writer = new ctx.Process({ target: writeOneAndClose, args: [rings.map((ring) => ring.slot), thisProcessKey(), { segment: counter.segment, offset: counter.offset }] });
    writer.start();
    t.after(async () => {
      if (writer.exitCode === null) writer.kill();
      await writer.join();
    });
    for (const [i, ring] of rings.entries()) {
      const next = ring.read();
      Atomics.add(reading, 0, 1);
      Atomics.notify(reading, 0);
      const message = await next;
      if (typeof message === 'string') assert.fail(`ring ${i}: the end of stream (${message}) came before the message written ahead of it`);
      assert.equal(message.bytes.readUInt32LE(0), i);
      assert.equal(await ring.read(), 'writer-closed');
    }
    await writer.join();
    assert.equal(writer.exitCode, 0);
  });
});
