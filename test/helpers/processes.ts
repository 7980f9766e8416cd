// Facts about OS processes that tests wait for or check, and cleanup.

import { readFileSync, readlinkSync } from 'node:fs';
import { descendants } from '../../src/index.ts';

/** True while `pid` runs (a zombie counts as gone: it has exited and only waits to be reaped). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Resolves true once every pid has exited, false if some still run after `limit` ms. There is no
 * event for the death of a process that is not our child, so this checks /proc every few ms: a
 * bounded wait for a fact, not a sleep standing in for one.
 */
export async function allGone(pids: number[], limit: number): Promise<boolean> {
  const deadline = Date.now() + limit;
  while (pids.some(isRunning)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Whether `pid` runs this Node (a child process of ours), not a helper such as tsx's esbuild service. */
export function isNode(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/exe`) === process.execPath;
  } catch {
    return false; // gone
  }
}

/** SIGKILLs every descendant of this test process: the cleanup of a test that failed half-way. */
export function killStrays(): void {
  for (const pid of descendants(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
