// The known benches: every file in bench/workloads/ default-exports a Workload (see workload.ts).
// Adding a bench = adding a file there; run.ts lists them, in bench_mp.py's order.

import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Workload } from './workload.ts';

export interface Entry {
  /** The workload's file relative to bench/ (`workloads/process-start.ts`). */
  file: string;
  workload: Workload;
}

export const benchDir = dirname(fileURLToPath(import.meta.url));

// bench_mp.py's order; benches it does not have come after them, by name.
const ORDER = ['process_start', 'pipe_rtt', 'queue_throughput', 'pool_map', 'manager_ops', 'lock', 'shared_memory'];

export async function loadRegistry(): Promise<Entry[]> {
  const files = readdirSync(join(benchDir, 'workloads')).filter((f) => f.endsWith('.ts')).sort();
  const entries: Entry[] = [];
  for (const name of files) {
    const file = `workloads/${name}`;
    const workload = ((await import(pathToFileURL(join(benchDir, file)).href)) as { default?: Workload }).default;
    if (!workload || typeof workload.key !== 'string' || typeof workload.run !== 'function') {
      throw new Error(`bench/${file}: expected \`export default\` of a Workload ({ key, run, ... }, see bench/workload.ts).`);
    }
    const twin = entries.find((e) => e.workload.key === workload.key);
    if (twin) throw new Error(`bench/${file}: bench key '${workload.key}' is also defined by bench/${twin.file}.`);
    entries.push({ file, workload });
  }
  const rank = (key: string) => (ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length);
  return entries.sort((a, b) => rank(a.workload.key) - rank(b.workload.key) || a.workload.key.localeCompare(b.workload.key));
}
