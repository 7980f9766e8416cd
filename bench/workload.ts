// What a bench is: one file in bench/workloads/ default-exports a Workload. The harness (run.ts)
// discovers those files, runs `run()` once per backend of ours and each peer in a fresh Node
// process (worker.ts), runs the CPython anchor's subcommand, and compares the `compare` metrics.
// Workload files are compiled to plain JS before they run (see compile.ts): at run time they may
// import only other bench/ files and node: builtins; the library arrives as `context.mp`.

import { readFileSync } from 'node:fs';
import type * as Multiproc from '../src/index.ts';

/** The library's public API, loaded from dist/ (or src/ with --lib src) by the worker. */
export type Library = typeof Multiproc;
export type BackendName = 'process' | 'thread';
export type Metrics = Record<string, number | string | boolean>;

export interface OurContext {
  mp: Library;
  backend: BackendName;
  /** `mp.getContext(backend).Process`. */
  Process: Library['Process'];
  /**
   * Another entry of the package, as a user imports `multiproc/shared-memory`: `libModule('shared-memory')`
   * loads dist/shared-memory.js (or src/shared-memory.ts with --lib src).
   */
  libModule(name: string): Promise<unknown>;
}

export interface PeerContext {
  /** Absolute path of bench/fixtures/ in the repository (JS files any Node can run as they are). */
  fixtures: string;
}

/**
 * A metric to compare with CPython and the peers; `better` defaults from the unit suffix. `against`
 * names the other side's key when it differs (our `value_incr_1proc_awaited_ns` against CPython's
 * `value_incr_1proc_ns`: the same workload written with another idiom of ours).
 */
export type Compared = string | { key: string; better?: 'lower' | 'higher'; against?: string };

export interface Peer {
  /** The `impl` of its lines, e.g. `node-20.20.2-child_process.fork`. */
  impl: string;
  run(context: PeerContext): Promise<Metrics>;
}

export interface Workload {
  /** The bench name, as in bench_mp.py (`process_start`, `pipe_rtt`...). */
  key: string;
  /** One line for the table header: the fixed workload. */
  describe: string;
  /** bench_mp.py's subcommand and extra arguments (null: CPython has no such bench). */
  cpython: { subcommand: string; args?: string[] } | null;
  /** Metrics shown in the table, in order; the compared ones get ratio rows. */
  show: string[];
  compare: Compared[];
  /** Our backends to run it on. */
  backends: BackendName[];
  /** Our measurement on one backend; its metrics become one JSON line. */
  run(context: OurContext): Promise<Metrics>;
  /** Bare-Node (or other library) baselines, measured in the same run. */
  peers?: Peer[];
  /** Kill a worker that runs longer than this. @default 300 */
  timeoutS?: number;
}

/** Which direction is better for a metric: units are in the key names, as in bench_mp.py. */
export function betterOf(compared: Compared): { key: string; better: 'lower' | 'higher'; against: string } {
  if (typeof compared !== 'string') {
    const { key, against = key } = compared;
    return { key, against, better: compared.better ?? betterOf(key).better };
  }
  if (/_per_s$/.test(compared)) return { key: compared, better: 'higher', against: compared };
  if (/_(ms|us|ns|s)$/.test(compared)) return { key: compared, better: 'lower', against: compared };
  throw new Error(`bench: cannot tell whether lower or higher is better for '${compared}': name its unit (_ms, _per_s) or pass { key, better }.`);
}

// Python's median (bench_mp.py): the upper one of the two middle values for an even count.
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? NaN;
}

export function round(x: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}

/** n, median_ms, min_ms, max_ms of samples in ms (bench_mp.py's process_start keys). */
export function msStats(samples: number[]): Metrics {
  return {
    n: samples.length,
    median_ms: round(median(samples)),
    min_ms: round(Math.min(...samples)),
    max_ms: round(Math.max(...samples)),
  };
}

/**
 * CPU ms used so far by this process, its threads and its reaped children (utime + stime +
 * cutime + cstime from /proc/self/stat, 10 ms ticks). Steadier than wall time on a busy machine.
 */
export function ownCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(')').pop()!.trim().split(/\s+/).map(Number);
  return ((fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0)) * 10;
}
