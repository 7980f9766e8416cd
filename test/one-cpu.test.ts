// On one CPU (taskset, a one-CPU container) a reader that finds its ring empty yields the CPU
// between looks, so the writer it waits for runs at once, and it looks before the event loop's next
// turn (src/internal/spin.ts); with two CPUs it only looks, after that turn. This runs Pipe round trips and a two-producer, two-consumer Queue pinned to one CPU,
// on both backends, in a program of its own (the pinning and availableParallelism() are per process).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';

const timeout = 60_000;
const script = fileURLToPath(new URL('./fixtures/scripts/one-cpu.ts', import.meta.url));
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

after(killRuns);

describe('one CPU', () => {
  it('Pipe round trips, a writer in a later callback and a 2->2 Queue deliver everything on both backends when pinned; early looks come back after a miss', { timeout, skip: hasTaskset ? false : 'taskset (util-linux) is not installed' }, async () => {
    const run = await runScript('-c', ['0', process.execPath, '--import', 'tsx', script], { command: 'taskset' });
    assert.equal(run.code, 0, run.stderr);
    const reports = lines(run.stdout).map((line) => JSON.parse(line));
    assert.deepEqual(reports.map((r) => r.method), ['process', 'thread']);
    for (const report of reports) {
      assert.deepEqual(report, { method: report.method, cpus: 1, answered: 2000, laterSends: 200, items: 10_000, everyItemOnce: true, earlyProbes: 2 });
    }
    assert.deepEqual(taggedProcesses(run.tag), []);
  });
});
