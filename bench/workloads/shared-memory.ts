// shared_memory: bench_mp.py's b_shared_memory. new SharedMemory({ create: true, size: 1 MiB }),
// attach by name, close both, unlink; 1,000 iterations after 20 warm-up, in one process (no child,
// so it runs on one backend only). Phases are timed separately; medians in µs.
//
// Note: close() only drops this process's view; the mapping itself goes when V8 collects the
// SharedArrayBuffer (the GC's cost lands inside whichever phase it interrupts). Python's close()
// munmaps at once.

import { performance } from 'node:perf_hooks';
import type * as ShmModule from '../../src/shared-memory.ts';
import { median, round, type Metrics, type Workload } from '../workload.ts';

type SharedMemoryModule = typeof ShmModule;

const MiB = 1 << 20;
const WARM = 20;
const ITERATIONS = 1_000;
const PHASES = ['create', 'attach', 'close', 'unlink', 'total'] as const;

const workload: Workload = {
  key: 'shared_memory',
  describe: `SharedMemory 1 MiB: create + attach by name + close both + unlink, ${ITERATIONS.toLocaleString('en')} iterations after ${WARM} warm-up (one process)`,
  cpython: { subcommand: 'shared_memory' },
  show: PHASES.map((p) => `${p}_median_us`).concat('total_mean_us'),
  compare: PHASES.map((p) => `${p}_median_us`),
  backends: ['process'],

  async run({ libModule }) {
    // Users import it from multiproc/shared-memory, as Python's multiprocessing.shared_memory.
    const { SharedMemory } = (await libModule('shared-memory')) as SharedMemoryModule;
    const phases: Record<(typeof PHASES)[number], number[]> = { create: [], attach: [], close: [], unlink: [], total: [] };
    const created: string[] = [];
    try {
      for (let i = 0; i < WARM + ITERATIONS; i++) {
        const t0 = performance.now();
        const a = new SharedMemory({ create: true, size: MiB });
        created.push(a.name);
        const t1 = performance.now();
        const b = new SharedMemory({ name: a.name });
        const t2 = performance.now();
        b.close();
        a.close();
        const t3 = performance.now();
        a.unlink();
        const t4 = performance.now();
        created.pop();
        if (i >= WARM) [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0].forEach((dt, k) => phases[PHASES[k]!].push(dt * 1e3));
      }
    } finally {
      for (const name of created) new SharedMemory({ name }).unlink();
    }
    const m: Metrics = { iterations: ITERATIONS, size_bytes: MiB };
    for (const p of PHASES) m[`${p}_median_us`] = round(median(phases[p]), 2);
    m.total_mean_us = round(phases.total.reduce((a, b) => a + b, 0) / ITERATIONS, 2);
    return m;
  },
};

export default workload;
