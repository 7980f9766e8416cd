// The human table run.ts prints: per bench, one row per implementation (ours per backend, CPython
// per start method, the peers), then for each compared metric the ratio ours / other with what
// it means ("1.5x faster"), since lower is better for _ms and higher for _per_s.

import { betterOf, type Workload } from './workload.ts';

export type Line = Record<string, unknown>;

// A line is suspect when other processes used more than this share of one CPU while it ran.
const NOISY = 0.1;

function label(line: Line): string {
  if (line.impl === 'multiproc') return `multiproc ${String(line.backend)} (${String(line.lib)})`;
  const impl = String(line.impl);
  if (impl.startsWith('cpython-')) return `${impl.replace(/-multiprocessing$/, '')} ${String(line.start_method)}`;
  return impl;
}

function cell(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
  if (value === undefined || value === null) return '-';
  return String(value);
}

function noisy(line: Line): boolean {
  const wall = Number(line.wall_s);
  const other = Number(line.other_cpu_s);
  return wall > 0 && other / wall > NOISY;
}

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function ratioCell(ours: unknown, other: unknown, better: 'lower' | 'higher'): string {
  if (typeof ours !== 'number' || typeof other !== 'number' || ours <= 0 || other <= 0) return '-';
  const ratio = ours / other;
  const speedup = better === 'lower' ? 1 / ratio : ratio; // > 1: ours is better
  const verdict = speedup >= 1 ? `${speedup.toFixed(2)}x faster` : `${(1 / speedup).toFixed(2)}x slower`;
  return `${ratio.toFixed(2)} (${verdict})`;
}

/** The table of one bench from the lines of this run. */
export function benchTable(workload: Workload, lines: Line[]): string {
  const mine = lines.filter((l) => l.bench === workload.key);
  const ours = mine.filter((l) => l.impl === 'multiproc');
  const others = mine.filter((l) => l.impl !== 'multiproc');
  const cpython = others.filter((l) => String(l.impl).startsWith('cpython-'));
  const peers = others.filter((l) => !String(l.impl).startsWith('cpython-'));
  const out = [`${workload.key}: ${workload.describe}`];

  const header = ['', ...workload.show, 'wall_s', 'other_cpu_s'];
  const rows = [header];
  for (const line of [...ours, ...cpython, ...peers]) {
    if (line.error) {
      rows.push([label(line), `failed: ${String(line.error)}`]);
      continue;
    }
    rows.push([label(line), ...workload.show.map((k) => cell(line[k])), cell(line.wall_s), `${cell(line.other_cpu_s)}${noisy(line) ? ' *' : ''}`]);
  }
  out.push(table(rows.map((r) => [...r, ...Array<string>(header.length - r.length).fill('')])));

  const measured = (l: Line) => !l.error;
  for (const compared of workload.compare) {
    const { key, better, against: theirs } = betterOf(compared);
    const against = [...cpython, ...peers].filter((l) => measured(l) && l[theirs] !== undefined);
    if (ours.length === 0 || against.length === 0) continue;
    const meaning = better === 'lower' ? '< 1 means ours is faster' : '> 1 means ours is faster';
    const mineOk = ours.filter(measured);
    const vs = theirs === key ? '' : ` against their ${theirs}`;
    out.push('', `  ${key}${vs}: ratio ours / other (${better} is better, so ${meaning})`);
    const ratioRows = [['ours / ...', ...mineOk.map(label)]];
    for (const other of against) ratioRows.push([label(other), ...mineOk.map((line) => ratioCell(line[key], other[theirs], better))]);
    out.push(table(ratioRows, '    '));
  }
  if (mine.some(noisy)) out.push('', `  * other processes used more than ${NOISY * 100}% of a CPU while this line ran (other_cpu_s / wall_s): distrust it.`);
  return out.join('\n');
}
