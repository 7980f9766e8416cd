// The two ways an asynchronous futex wait can wait (native/futex-uring.cc: the kernel completes it
// on the event loop's io_uring; native/futex.cc: a waiter thread), each in a program of its own,
// since a thread chooses once: the same results in every case, and the same exits.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runScript } from '../helpers/spawn-script.ts';

const timeout = 60_000;
const scripts = fileURLToPath(new URL('../fixtures/sync/scripts/', import.meta.url));

/** What fixtures/sync/scripts/async-waits.ts reports about every case. */
function expected(waiter: string): Record<string, unknown> {
  return {
    waiter,
    notEqual: 'not-equal',
    timeout: ['timed-out', true],
    zeroTimeout: 'timed-out',
    cancel: 'cancelled',
    spurious: [false, 'ok'],
    spuriousTimed: ['timed-out', true],
    wokenByWorker: 'ok',
    many: ['ok'],
    flood: ['ok'],
    // The second wait ends: the wake is not lost. The first was cancelled, unless the waiter
    // thread had already ended it (it ends every wait of a word at a wake) when the cancel came.
    wakeOne: [waiter === 'io_uring' ? 'cancelled' : 'cancelled or ok', 'ok'],
  };
}

async function reportOf(env: Record<string, string>): Promise<Record<string, unknown>> {
  const run = await runScript(join(scripts, 'async-waits.ts'), [], { env });
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as Record<string, unknown> & { wakeOne: string[] };
  if (report.waiter === 'thread' && ['cancelled', 'ok'].includes(report.wakeOne[0] as string)) report.wakeOne[0] = 'cancelled or ok';
  return report;
}

describe('asynchronous futex waits', () => {
  it('through io_uring where the kernel has futex operations (Linux 6.7+): not-equal, timeouts, cancels, wakes that change nothing, other threads, floods, a wake-one passed on', { timeout }, async (t) => {
    const report = await reportOf({ MULTIPROC_FUTEX_WAITER: '' });
    if (report.waiter !== 'io_uring') return t.skip(`this kernel or process has no io_uring futex waits; the waiter thread served: ${JSON.stringify(report)}`);
    assert.deepEqual(report, expected('io_uring'));
  });

  it('through the waiter thread (MULTIPROC_FUTEX_WAITER=thread, or where io_uring cannot): the same results', { timeout }, async () => {
    assert.deepEqual(await reportOf({ MULTIPROC_FUTEX_WAITER: 'thread' }), expected('thread'));
  });

  // A Lock's release and a Semaphore's wake one waiter: one that reaches this thread's wait as it is
  // cancelled (an AbortSignal, a timeout) must go on to the worker that sleeps behind it on the word.
  for (const waiter of ['thread', 'default'] as const) {
    it(`a wake-one that reaches a wait as it is cancelled goes on to a waiter elsewhere (waiter: ${waiter})`, { timeout }, async (t) => {
      const run = await runScript(join(scripts, 'wake-one-after-cancel.ts'), ['20'], { env: { MULTIPROC_FUTEX_WAITER: waiter === 'thread' ? 'thread' : '' } });
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { waiter: string; skip?: string; rounds: [string, string, number][] };
      if (report.skip) return t.skip(report.skip);
      if (waiter === 'thread') assert.equal(report.waiter, 'thread');
      // Cancelled: the worker was woken (none left asleep). Ended 'ok' (the waiter thread had
      // ended it before the cancel came): the wake was its own, and the worker sleeps on.
      const expectedRounds = report.rounds.map(([order, result]) => [order, order === 'cancel, then wake' || report.waiter === 'io_uring' ? 'cancelled' : result, result === 'ok' ? 1 : 0]);
      assert.deepEqual(report.rounds, expectedRounds);
      assert.ok(report.rounds.every(([, result]) => result === 'cancelled' || result === 'ok'), JSON.stringify(report.rounds));
    });
  }

  for (const waiter of ['thread', 'default'] as const) {
    const outcomes = { timeout: 'timed-out', cancel: 'cancelled', 'woken-by-worker': 'ok', 'worker-only': 'timed-out' } as const;
    it(`a program whose only wait ends, and then has nothing left to do, exits (waiter: ${waiter})`, { timeout }, async () => {
      for (const how of ['timeout', 'cancel', 'woken-by-worker', 'worker-only'] as const) {
        const run = await runScript(join(scripts, 'wait-then-exit.ts'), [how], { env: { MULTIPROC_FUTEX_WAITER: waiter === 'thread' ? 'thread' : '' } });
        assert.deepEqual([how, run.signal, run.code, run.stdout.trim()], [how, null, 0, outcomes[how]], run.stderr);
      }
    });
  }
});
