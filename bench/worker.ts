// The measured process: run.ts starts one per (bench, backend) and one per bench for its peers,
// with NODE_EXTRA_CA_CERTS and NODE_OPTIONS unset, and reads the JSON lines it prints.
//   node <compiled bench>/worker.js '<config JSON>'      (--lib dist: no loader in this process)
//   node --import tsx bench/worker.ts '<config JSON>'    (--lib src)
// Each line carries wall_s and other_cpu_s, computed as bench_mp.py's emit() does.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ownCpuMs, type BackendName, type Library, type Metrics, type Workload } from './workload.ts';

export interface WorkerConfig {
  key: string;
  /** The workload's file, relative to bench/, with its .ts name. */
  file: string;
  mode: 'ours' | 'peers';
  backend?: BackendName;
  lib: 'dist' | 'src';
  /** The library's entry: dist/index.js or src/index.ts, as a file URL. */
  libUrl: string;
  /** bench/fixtures/ in the repository. */
  fixtures: string;
}

/**
 * [ms, CPU s busy on the whole machine, CPU s of this process + its reaped children]. Our
 * children are reaped by Node as they exit, so they count as ours (cutime/cstime); worker threads
 * are in utime/stime. Everything else (run.ts itself, idle meanwhile, included) counts as "other".
 */
function cpuSnapshot(): [number, number, number] {
  // user nice system irq softirq, in USER_HZ ticks (100 per second on Linux)
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const busy = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (f[i] ?? 0), 0) / 100;
  return [performance.now(), busy, ownCpuMs() / 1000];
}

let snapshot = cpuSnapshot();

function emit(head: Record<string, unknown>, metrics: Metrics): void {
  const [t, busy, own] = cpuSnapshot();
  const pinned = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?';
  const line = {
    ...head,
    node: process.versions.node,
    cpus: cpus().length,
    cpus_allowed: pinned,
    ...metrics,
    wall_s: Math.round((t - snapshot[0]) / 100) / 10,
    other_cpu_s: Math.round(Math.max(0, busy - snapshot[1] - (own - snapshot[2])) * 100) / 100,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  snapshot = cpuSnapshot();
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
// Compiled, this file is worker.js beside workloads/*.js; through tsx it is worker.ts.
const extension = extname(new URL(import.meta.url).pathname);
const moduleUrl = new URL(config.file.replace(/\.ts$/, extension), import.meta.url);
const workload = ((await import(moduleUrl.href)) as { default: Workload }).default;

if (config.mode === 'ours') {
  const backend = config.backend ?? 'process';
  const mp = (await import(config.libUrl)) as Library;
  const libModule = (name: string) => import(new URL(`${name}${extname(new URL(config.libUrl).pathname)}`, config.libUrl).href);
  const metrics = await workload.run({ mp, backend, Process: mp.getContext(backend).Process, libModule });
  emit({ bench: workload.key, impl: 'multiproc', backend, lib: config.lib }, metrics);
} else {
  for (const peer of workload.peers ?? []) {
    emit({ bench: workload.key, impl: peer.impl }, await peer.run({ fixtures: config.fixtures }));
  }
}
