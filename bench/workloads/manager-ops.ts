// manager_ops: bench_mp.py's b_manager_ops. `await Manager()` (the server on the backend under
// test: ctx.Manager()) then shutdown(), median of 5 each. Then one child Process (group.ts, from a
// Barrier release, as Python's run_group) on a dict and a list of one manager: 20,000 awaited
// d.set('k<i>', i), 20,000 awaited d.get('k<i>'), 20,000 awaited lst.append(i) (targets.ts
// managerChild), µs per op; the parent checks d.size() == lst.length() == 20,000 and d.get('k7') == 7.
// Extra (ours only): dict_set_pipelined_us, the same 20,000 sets on a second dict issued
// PIPELINE at a time (Promise.all per batch), µs per op; compared against CPython's awaited
// dict_set_us (DESIGN.md's target: 5x the throughput when calls are pipelined).

import { performance } from 'node:perf_hooks';
import { runGroup } from '../group.ts';
import { median, round, type Workload } from '../workload.ts';

const CYCLES = 5;
const N = 20_000;
const PIPELINE = 1_000;

const workload: Workload = {
  key: 'manager_ops',
  describe: `Manager() start / shutdown (median of ${CYCLES}); a child: ${N.toLocaleString('en')} awaited d.set, d.get, lst.append; extra: ${N.toLocaleString('en')} d.set ${PIPELINE} in flight`,
  cpython: { subcommand: 'manager_ops' },
  show: ['manager_start_ms', 'manager_shutdown_ms', 'dict_set_us', 'dict_get_us', 'list_append_us', 'dict_set_pipelined_us'],
  compare: ['manager_start_ms', 'manager_shutdown_ms', 'dict_set_us', 'dict_get_us', 'list_append_us', { key: 'dict_set_pipelined_us', against: 'dict_set_us' }],
  backends: ['process', 'thread'],

  async run(context) {
    const ctx = context.mp.getContext(context.backend);
    const starts: number[] = [];
    const stops: number[] = [];
    for (let k = 0; k < CYCLES; k++) {
      const t0 = performance.now();
      const mgr = await ctx.Manager();
      const t1 = performance.now();
      await mgr.shutdown();
      starts.push(t1 - t0);
      stops.push(performance.now() - t1);
    }

    const mgr = await ctx.Manager();
    try {
      const d = await mgr.dict<string, number>();
      const lst = await mgr.list<number>();
      const pipelined = await mgr.dict<string, number>();
      const { results } = await runGroup(context, [['managerChild', [d, lst, N, pipelined, PIPELINE]]]);
      const [tSet, tGet, tAppend, tPipelined] = results[0] as number[];
      const [size, length, k7, pipelinedSize] = await Promise.all([d.size(), lst.length(), d.get('k7'), pipelined.size()]);
      if (size !== N || length !== N || k7 !== 7 || pipelinedSize !== N) {
        throw new Error(`manager_ops: after the child: d.size() ${size}, lst.length() ${length}, d.get('k7') ${String(k7)}, pipelined.size() ${pipelinedSize}; expected ${N}, ${N}, 7, ${N}`);
      }
      const perOp = (secs: number | undefined) => round(((secs ?? NaN) / N) * 1e6, 2);
      return {
        ops: N,
        manager_start_ms: round(median(starts), 2),
        manager_shutdown_ms: round(median(stops), 2),
        dict_set_us: perOp(tSet),
        dict_get_us: perOp(tGet),
        list_append_us: perOp(tAppend),
        pipeline_depth: PIPELINE,
        dict_set_pipelined_us: perOp(tPipelined),
      };
    } finally {
      await mgr.shutdown();
    }
  },
};

export default workload;
