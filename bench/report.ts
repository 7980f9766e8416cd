// The human table run.ts prints: per bench, one row per implementation (ours per backend, CPython
// per start method, the peers), then for each compared metric the ratio ours / other with what
// it means ("1.5x faster"), since lower is better for _ms and higher for _per_s. With --rounds,
// each row is the median of the rounds, and each ratio the median of the rounds' ratios (ours and
// theirs of one round ran a few seconds apart, where the machine's speed drifts over minutes),
// with their range.

import { betterOf, median, type Workload } from './workload.ts';

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

/** The lines of one implementation (one per round), by label, in the order first met. */
function byImplementation(lines: Line[]): Line[][] {
  const groups = new Map<string, Line[]>();
  for (const line of lines) {
    const key = label(line);
    const group = groups.get(key);
    if (group) group.push(line);
    else groups.set(key, [line]);
  }
  return [...groups.values()];
}

/** One row's line: the only one, or the median of every number over the rounds that did not fail. */
export function medianLine(group: Line[]): Line {
  const ok = group.filter((line) => !line.error);
  if (group.length === 1 || ok.length === 0) return group[group.length - 1]!;
  const merged: Line = { ...ok[0], rounds: ok.length };
  for (const key of Object.keys(ok[0]!)) {
    const values = ok.map((line) => line[key]);
    if (key !== 'round' && values.every((v) => typeof v === 'number')) merged[key] = median(values as number[]);
  }
  return merged;
}

/** ours / theirs of `key` (theirs' `against`): one number, or per round with the median and range. */
export function ratioText(ours: Line[], theirs: Line[], key: string, against: string, better: 'lower' | 'higher'): string {
  const ratios: number[] = [];
  for (const mine of ours) {
    const other = theirs.find((line) => line.round === mine.round);
    const a = mine[key];
    const b = other?.[against];
    if (!mine.error && !other?.error && typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0) ratios.push(a / b);
  }
  if (ratios.length === 0) return '-';
  const speedup = (ratio: number) => (better === 'lower' ? 1 / ratio : ratio); // > 1: ours is better
  const verdict = (ratio: number) => (speedup(ratio) >= 1 ? `${speedup(ratio).toFixed(2)}x faster` : `${(1 / speedup(ratio)).toFixed(2)}x slower`);
  const middle = median(ratios);
  if (ratios.length === 1) return `${middle.toFixed(2)} (${verdict(middle)})`;
  const sorted = [...ratios].sort((x, y) => x - y);
  return `${middle.toFixed(2)} (${verdict(middle)}; ${sorted[0]!.toFixed(2)}-${sorted[sorted.length - 1]!.toFixed(2)} in ${ratios.length} rounds)`;
}

/** The table of one bench from the lines of this run. */
export function benchTable(workload: Workload, lines: Line[]): string {
  const mine = lines.filter((l) => l.bench === workload.key);
  const ours = byImplementation(mine.filter((l) => l.impl === 'multiproc'));
  const others = byImplementation(mine.filter((l) => l.impl !== 'multiproc'));
  const cpython = others.filter(([l]) => String(l!.impl).startsWith('cpython-'));
  const peers = others.filter(([l]) => !String(l!.impl).startsWith('cpython-'));
  const rounds = Math.max(...mine.map((l) => Number(l.round ?? 1)));
  const out = [`${workload.key}: ${workload.describe}${rounds > 1 ? ` (medians of ${rounds} rounds)` : ''}`];

  const header = ['', ...workload.show, 'wall_s', 'other_cpu_s'];
  const rows = [header];
  for (const group of [...ours, ...cpython, ...peers]) {
    const line = medianLine(group);
    if (line.error) {
      rows.push([label(line), `failed: ${String(line.error)}`]);
      continue;
    }
    rows.push([label(line), ...workload.show.map((k) => cell(line[k])), cell(line.wall_s), `${cell(line.other_cpu_s)}${group.some(noisy) ? ' *' : ''}`]);
  }
  out.push(table(rows.map((r) => [...r, ...Array<string>(header.length - r.length).fill('')])));

  const measured = (group: Line[]) => group.some((l) => !l.error);
  for (const compared of workload.compare) {
    const { key, better, against: theirs } = betterOf(compared);
    const against = [...cpython, ...peers].filter((group) => measured(group) && group.some((l) => l[theirs] !== undefined));
    if (ours.length === 0 || against.length === 0) continue;
    const meaning = better === 'lower' ? '< 1 means ours is faster' : '> 1 means ours is faster';
    const mineOk = ours.filter(measured);
    const vs = theirs === key ? '' : ` against their ${theirs}`;
    out.push('', `  ${key}${vs}: ratio ours / other (${better} is better, so ${meaning})`);
    const ratioRows = [['ours / ...', ...mineOk.map((group) => label(group[0]!))]];
    for (const other of against) ratioRows.push([label(other[0]!), ...mineOk.map((group) => ratioText(group, other, key, theirs, better))]);
    out.push(table(ratioRows, '    '));
  }
  if (mine.some(noisy)) out.push('', `  * other processes used more than ${NOISY * 100}% of a CPU while this line ran (other_cpu_s / wall_s): distrust it.`);
  return out.join('\n');
}
