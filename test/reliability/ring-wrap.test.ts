// A ring's reader against a writer in another process or thread, in a ring small enough to wrap
// every few messages: every message arrives whole, in order, byte for byte. A reader used to check
// for padding and then for data in two steps; a wrap written between them was read as a record (the
// Wrap marker taken for a chunk), which corrupted the message or killed a pool worker mid-task.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { Ring } from '../../src/internal/ring.ts';
import { messageOf, writeMessages } from '../fixtures/ring/writer.ts';

const COUNT = 100_000;

forEachBackend((ctx) => {
  it(`${COUNT.toLocaleString('en')} messages through a 4 KiB ring (thousands of wraps, some chunked) arrive intact and in order`, { timeout: 120_000 }, async (t) => {
    const ring = Ring.create(4096);
    ring.openReader();
    ring.openWriter(); // counted for the writer until it attaches (as a Connection's share() does)
    const writer = new ctx.Process({ target: writeMessages, args: [ring.slot, COUNT] });
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
