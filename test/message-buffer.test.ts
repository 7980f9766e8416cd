// Large messages arrive in memory that the native addon reuses once V8 has freed the Buffer that
// held it (src/internal/message-buffer.ts, native/recycle.cc): reuse must never show one message's
// bytes in another's Buffer, and trimRecycled() gives the memory back.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from './helpers/backends.ts';
import { runScript, TSX_IMPORT } from './helpers/spawn-script.ts';
import { native } from '../src/native/binding.ts';
import { messageArrayBuffer, messageBuffer } from '../src/internal/message-buffer.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = join(root, 'test/fixtures/scripts/recycled-buffers.ts');

describe('message buffers', () => {
  it('are exactly as long as asked, from 64 KiB in reused blocks, below it ordinary Buffers (ArrayBuffers too)', () => {
    for (const length of [0, 1, 4095, 65_535, 65_536, 65_537, 1 << 20, 5_000_001]) {
      const buffer = messageBuffer(length);
      assert.ok(Buffer.isBuffer(buffer));
      assert.equal(buffer.byteLength, length);
      if (length >= 65_536) assert.equal(buffer.buffer.byteLength, length, 'no stale tail of a larger block is reachable');
    }
    for (const length of [0, 8, 65_528, 65_536, 80_000, 1_000_000]) {
      const buffer = messageArrayBuffer(length);
      assert.ok(buffer instanceof ArrayBuffer, 'an ArrayBuffer, for a Float64Array over all of it');
      assert.equal(buffer.byteLength, length);
    }
    assert.throws(() => native().allocRecycled(1000), { name: 'TypeError', message: /64 KiB/ });
    assert.throws(() => (native().allocRecycled as (x?: unknown) => ArrayBuffer)('big'), TypeError);
  });

  forEachBackend((_context, backend) => {
    it('carry Pipe and Queue messages intact while their blocks are reused; trimRecycled() empties the list', { timeout: 60_000 }, async () => {
      const run = await runScript(script, [backend], { execArgv: ['--expose-gc', ...TSX_IMPORT], cwd: root });
      assert.equal(run.stderr, '');
      assert.equal(run.code, 0);
      assert.deepEqual(JSON.parse(run.stdout), { echoed: 48, kept: 13, keptIntact: true, reused: true, trimmed: true, exitCode: 0 });
    });
  });
});
