// bench_mp.py's run_group(ctx, jobs), for the workloads: each job runs in its own Process (of the
// backend under test); all start work at one Barrier release. Returns the jobs' results and the
// seconds from the parent's release to the last job's end (CLOCK_MONOTONIC across processes, as
// Python's time.monotonic()). Every Process is joined, and must exit 0, before it returns.

import { monotonicNs, timed, type JobName } from './targets.ts';
import type { OurContext } from './workload.ts';

export async function runGroup({ mp, Process }: OurContext, jobs: [JobName, unknown[]][]): Promise<{ results: unknown[]; secs: number }> {
  const barrier = new mp.Barrier(jobs.length + 1);
  const out = new mp.SimpleQueue<[number, unknown, number]>();
  const procs = jobs.map(([job, args], i) => new Process({ target: timed, args: [barrier, out, i, job, args] }));
  for (const p of procs) p.start();
  // A child that fails never reaches the Barrier or never puts its result: fail instead of hanging.
  const failed = new Promise<never>((_, reject) => {
    for (const p of procs) void p.join().then(() => p.exitCode !== 0 && reject(new Error(`${p.name} exited with ${p.exitCode}`)));
  });
  failed.catch(() => {});
  try {
    await Promise.race([barrier.wait(), failed]);
    const t0 = monotonicNs();
    const res: [number, unknown, number][] = [];
    for (let i = 0; i < procs.length; i++) res.push(await Promise.race([out.get(), failed]));
    res.sort((x, y) => x[0] - y[0]);
    for (const p of procs) await p.join();
    for (const p of procs) if (p.exitCode !== 0) throw new Error(`${p.name} exited with ${p.exitCode}`);
    return { results: res.map(([, r]) => r), secs: (Math.max(...res.map(([, , t]) => t)) - t0) / 1e9 };
  } finally {
    // On a failure (a child that threw, say): leave no process behind.
    for (const p of procs) if (p.isAlive()) p.kill();
    for (const p of procs) await p.join();
  }
}
