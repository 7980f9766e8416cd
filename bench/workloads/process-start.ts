// process_start: Process(target=noop): start() -> join() resolved, 30 runs after 1 warm-up, as
// bench_mp.py's b_process_start; and bare Node `child_process.fork` of an empty script -> 'exit',
// the floor for any library that starts a Node process (DESIGN.md: "cold no slower than bare fork").

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { noop } from '../targets.ts';
import { median, msStats, ownCpuMs, round, type Workload } from '../workload.ts';

const RUNS = 30;

const workload: Workload = {
  key: 'process_start',
  describe: `Process(target=noop): start() -> join() resolved, ${RUNS} runs after 1 warm-up`,
  cpython: { subcommand: 'process_start' }, // spawn, fork and forkserver
  show: ['median_ms', 'min_ms', 'max_ms', 'first_ms', 'start_call_median_ms', 'cpu_per_start_ms'],
  compare: ['median_ms', 'min_ms'],
  backends: ['process', 'thread'],

  async run({ Process }) {
    const one = async (): Promise<[total: number, startCall: number]> => {
      const t0 = performance.now();
      const p = new Process({ target: noop });
      p.start();
      const t1 = performance.now();
      await p.join();
      const t2 = performance.now();
      if (p.exitCode !== 0) throw new Error(`process_start: ${p.name} exited with ${p.exitCode}`);
      return [t2 - t0, t1 - t0];
    };
    // The warm-up is the cold start: it also pays the parent's first target lookup and imports.
    const [first] = await one();
    const total: number[] = [];
    const startCall: number[] = [];
    const cpu0 = ownCpuMs();
    for (let i = 0; i < RUNS; i++) {
      const [t, s] = await one();
      total.push(t);
      startCall.push(s);
    }
    return {
      ...msStats(total),
      first_ms: round(first),
      start_call_median_ms: round(median(startCall)),
      cpu_per_start_ms: round((ownCpuMs() - cpu0) / RUNS, 1),
    };
  },

  peers: [
    {
      impl: `node-${process.versions.node}-child_process.fork`,
      async run({ fixtures }) {
        const script = join(fixtures, 'empty.mjs');
        const one = async (): Promise<number> => {
          const t0 = performance.now();
          // execArgv [] : no loader (tsx) even when the worker runs under one.
          const child = fork(script, [], { execArgv: [] });
          const [code] = (await once(child, 'exit')) as [number | null];
          if (code !== 0) throw new Error(`bare fork: the empty child exited with ${code}`);
          return performance.now() - t0;
        };
        await one();
        const samples: number[] = [];
        const cpu0 = ownCpuMs();
        for (let i = 0; i < RUNS; i++) samples.push(await one());
        return { ...msStats(samples), cpu_per_start_ms: round((ownCpuMs() - cpu0) / RUNS, 1) };
      },
    },
  ],
};

export default workload;
