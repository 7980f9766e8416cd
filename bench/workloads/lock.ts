// lock: bench_mp.py's b_lock. Lock(): 1,000,000 acquire(false) + release() in one process (the
// synchronous uncontended path, loop included). Value('i'): 200,000 increments under its getLock()
// (an RLock, as Python's) in the parent alone; then 2 processes x 200,000 increments of one Value,
// from a Barrier release to the last one finishing; the final count must be exactly 400,000.
//
// Two idioms for an increment: the fast one, `if (!lock.acquire(false)) await lock.acquire()`, which
// costs no microtask when the lock is free, carries bench_mp.py's key names; the plain
// `await lock.acquire()` gets `_awaited` keys. Unlike Python, `v.value` does not take the lock again.

import { performance } from 'node:perf_hooks';
import { runGroup } from '../group.ts';
import { lockIncr } from '../targets.ts';
import { round, type Metrics, type Workload } from '../workload.ts';

const UNCONTENDED = 1_000_000;
const PER = 200_000;

const workload: Workload = {
  key: 'lock',
  describe: `Lock: ${UNCONTENDED.toLocaleString('en')} acquire(false)+release(); Value('i') +1 under getLock(): ${PER.toLocaleString('en')} in 1 process, 2 procs x ${PER.toLocaleString('en')} from a Barrier`,
  cpython: { subcommand: 'lock' },
  show: ['lock_acquire_release_ns', 'value_incr_1proc_ns', 'value_incr_1proc_awaited_ns', 'contended_ops_per_s', 'contended_awaited_ops_per_s', 'count_exact'],
  compare: [
    'lock_acquire_release_ns',
    'value_incr_1proc_ns',
    { key: 'value_incr_1proc_awaited_ns', against: 'value_incr_1proc_ns' },
    'contended_ops_per_s',
    { key: 'contended_awaited_ops_per_s', against: 'contended_ops_per_s' },
  ],
  backends: ['process', 'thread'],

  async run(context) {
    const { mp } = context;
    const m: Metrics = {};

    // As bench_mp.py: one timed pass, no separate warm-up (so it includes V8's tier-up).
    const lock = new mp.Lock();
    let t0 = performance.now();
    for (let i = 0; i < UNCONTENDED; i++) {
      lock.acquire(false);
      lock.release();
    }
    m.uncontended_ops = UNCONTENDED;
    m.lock_acquire_release_ns = round(((performance.now() - t0) * 1e6) / UNCONTENDED, 1);
    // A second pass: the optimized steady state.
    t0 = performance.now();
    for (let i = 0; i < UNCONTENDED; i++) {
      lock.acquire(false);
      lock.release();
    }
    m.lock_acquire_release_warm_ns = round(((performance.now() - t0) * 1e6) / UNCONTENDED, 1);
    if (lock.locked()) throw new Error('lock: the Lock is still held after the loop');

    const v = new mp.Value('i', 0);
    t0 = performance.now();
    await lockIncr(v, PER, true);
    m.value_incr_1proc_ns = round(((performance.now() - t0) * 1e6) / PER, 1);
    t0 = performance.now();
    await lockIncr(v, PER, false);
    m.value_incr_1proc_awaited_ns = round(((performance.now() - t0) * 1e6) / PER, 1);
    if (v.value !== 2 * PER) throw new Error(`lock: 1-process count ${v.value}, expected ${2 * PER}`);

    for (const [fast, suffix] of [[true, ''], [false, '_awaited']] as const) {
      v.value = 0;
      const { secs } = await runGroup(context, [
        ['lockIncr', [v, PER, fast]],
        ['lockIncr', [v, PER, fast]],
      ]);
      m[`contended${suffix}_wall_ms`] = round(secs * 1e3, 1);
      m[`contended${suffix}_ops_per_s`] = Math.round((2 * PER) / secs);
      m[`count_exact${suffix}`] = v.value === 2 * PER;
    }
    m.contended_procs = 2;
    m.contended_incr_per_proc = PER;
    return m;
  },
};

export default workload;
