// The bench's table (bench/report.ts): with --rounds, rows are medians over the rounds and each
// ratio is the median of the rounds' own ratios, with their range.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { benchTable, medianLine, ratioText, type Line } from '../bench/report.ts';
import type { Workload } from '../bench/workload.ts';

const workload = { key: 'pipe_rtt', describe: 'round trips', show: ['small_median_us'], compare: ['small_median_us'], backends: ['process'] } as unknown as Workload;
const ours = (round: number | undefined, us: number): Line => ({ bench: 'pipe_rtt', impl: 'multiproc', backend: 'process', lib: 'dist', small_median_us: us, wall_s: 1, other_cpu_s: 0, ...(round ? { round } : {}) });
const cpython = (round: number | undefined, us: number): Line => ({ bench: 'pipe_rtt', impl: 'cpython-3.11-multiprocessing', start_method: 'fork', small_median_us: us, wall_s: 1, other_cpu_s: 0, ...(round ? { round } : {}) });

describe('bench report', () => {
  it('one round: the numbers and the ratio as measured', () => {
    assert.equal(ratioText([ours(undefined, 10)], [cpython(undefined, 40)], 'small_median_us', 'small_median_us', 'lower'), '0.25 (4.00x faster)');
    const text = benchTable(workload, [ours(undefined, 10), cpython(undefined, 40)]);
    assert.match(text, /multiproc process \(dist\)\s+10\s/);
    assert.doesNotMatch(text, /rounds/);
  });

  it('several rounds: medians per row, and the median and range of the per-round ratios', () => {
    // Round 2 ran on a slow moment for both: its ratio is like the others'.
    const lines = [ours(1, 10), cpython(1, 40), ours(2, 30), cpython(2, 90), ours(3, 12), cpython(3, 36)];
    assert.equal(medianLine(lines.filter((l) => l.impl === 'multiproc')).small_median_us, 12);
    assert.equal(ratioText(lines.filter((l) => l.impl === 'multiproc'), lines.filter((l) => l.impl !== 'multiproc'), 'small_median_us', 'small_median_us', 'lower'), '0.33 (3.00x faster; 0.25-0.33 in 3 rounds)');
    const text = benchTable(workload, lines);
    assert.match(text, /medians of 3 rounds/);
    assert.match(text, /multiproc process \(dist\)\s+12\s/);
    assert.match(text, /cpython-3.11 fork\s+40\s/);
  });

  it('a failed round is left out of the medians and ratios', () => {
    const failed: Line = { bench: 'pipe_rtt', impl: 'multiproc', backend: 'process', lib: 'dist', round: 2, error: 'exit 1' };
    const lines = [ours(1, 10), cpython(1, 40), failed, cpython(2, 90), ours(3, 20), cpython(3, 40)];
    assert.equal(medianLine([ours(1, 10), failed, ours(3, 20)]).small_median_us, 20);
    assert.equal(ratioText([ours(1, 10), failed, ours(3, 20)], lines.filter((l) => l.impl !== 'multiproc'), 'small_median_us', 'small_median_us', 'lower'), '0.50 (2.00x faster; 0.25-0.50 in 2 rounds)');
  });
});
