// The two ways a wait with `timeout | { timeout, signal }` ends early, asserted alike for every
// such wait (Listener.accept(), Pool.join(), Queue.joinThread()...).

import assert from 'node:assert/strict';
import { TimeoutError } from '../../src/index.ts';

/**
 * `wait(ms)` rejects with TimeoutError (ERR_MP_TIMEOUT, its message matching `message`), no sooner
 * than `ms`; `wait({ signal })` rejects with the signal's reason when it aborts meanwhile.
 */
export async function assertTimesOutAndAborts(wait: (options: number | { signal: AbortSignal }) => Promise<unknown>, ms: number, message: RegExp): Promise<void> {
  const t0 = performance.now();
  await assert.rejects(wait(ms), (error: Error & { code?: string }) => {
    assert.ok(error instanceof TimeoutError, `expected a TimeoutError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_MP_TIMEOUT');
    assert.match(error.message, message);
    return true;
  });
  assert.ok(performance.now() - t0 >= ms - 1, `the wait of ${ms} ms gave up early`);
  const controller = new AbortController();
  const aborted = wait({ signal: controller.signal });
  const reason = new Error('stop waiting');
  controller.abort(reason);
  await assert.rejects(aborted, (error) => error === reason);
}
