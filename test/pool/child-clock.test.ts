// A pool worker never loads perf_hooks: the library's clock is process.hrtime, where the
// `performance` global would load perf_hooks and ten internal modules (1.3 ms of each child's
// start, paid as the worker first waited for a task).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { testFile } from '../helpers/test-file.ts';
import { poolFor } from '../fixtures/pool/harness.ts';
import { perfHooksLoaded } from '../fixtures/pool/targets.ts';

const timeout = 30_000;
testFile();

describe('the clock of a pool worker', () => {
  forEachBackend((ctx) => {
    it('a worker that has waited for its tasks has not loaded perf_hooks', { timeout }, async (t) => {
      const pool = poolFor(t, ctx, 1);
      assert.equal(await pool.apply(perfHooksLoaded), false);
      // Sent once the first result is back: meanwhile the worker went back to waiting (spinning, then parked).
      assert.equal(await pool.apply(perfHooksLoaded), false);
    });
  });
});
