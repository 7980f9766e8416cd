// Finding and ending a whole process tree on Linux, by reading /proc. Node offers no event for the
// death of a process that is not our child, and no pidfd, so we poll /proc and identify each process
// by (pid, start time): a pid that was freed and reused by a new process never matches again.

import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { invalidArgument, outOfRange, ProcessError, describe } from './errors.ts';
import { monotonicMs } from './internal/clock.ts';

export interface KillTreeOptions {
  /** The first signal sent to every process of the tree. Default `'SIGTERM'`. */
  signal?: NodeJS.Signals | number;
  /** Milliseconds to wait for the tree to end after `signal`. Default 5000. */
  timeout?: number;
  /** Sent to the survivors after `timeout`; `null` leaves them running. Default `'SIGKILL'`. */
  then?: NodeJS.Signals | number | null;
}

interface Stat { pid: number; ppid: number; state: string; start: string }
/** A process identity: the start time (clock ticks since boot) tells a reused pid apart. */
interface Proc { pid: number; start: string }

const POLL_MS = 10;
// After escalating, how long to wait for the survivors; only a process stuck in the kernel
// (state D) outlives SIGKILL this long, and we will not wait on it forever.
const ESCALATION_WAIT_MS = 2000;
const DEFAULTS = { signal: 'SIGTERM', timeout: 5000, then: 'SIGKILL' } as const;

function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    // ENOENT/ESRCH: the process ended (and was reaped) between listing /proc and reading it.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw err;
  }
  // comm (field 2) is in parentheses and may itself hold spaces and ')', so the fields we want are
  // counted from the LAST ')': state is field 3, ppid field 4, starttime field 22.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(fields[1]), state: fields[0] ?? '?', start: fields[19] ?? '' };
}

/** Zombies (Z) and dying tasks (X) have ended: they run no code and can never be signalled back. */
function isLive(stat: Stat | null): stat is Stat {
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

function key(proc: Proc): string {
  return `${proc.pid}:${proc.start}`;
}

function isAlive(proc: Proc): boolean {
  const stat = readStat(proc.pid);
  return isLive(stat) && stat.start === proc.start;
}

function readTable(): Map<number, Stat[]> {
  const byParent = new Map<number, Stat[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!isLive(stat)) continue;
    const siblings = byParent.get(stat.ppid);
    if (siblings === undefined) byParent.set(stat.ppid, [stat]);
    else siblings.push(stat);
  }
  return byParent;
}

/** Live descendants of `roots`, breadth-first. setsid() leaves ppid alone, so new sessions are found. */
function walk(byParent: Map<number, Stat[]>, roots: number[]): Stat[] {
  const found: Stat[] = [];
  let level = roots;
  while (level.length > 0) {
    const next: Stat[] = level.flatMap((pid) => byParent.get(pid) ?? []);
    found.push(...next);
    level = next.map((stat) => stat.pid);
  }
  return found;
}

function assertLinux(method: string): void {
  if (process.platform !== 'linux') {
    const message = `${method}: reads Linux /proc, which ${process.platform} does not have. Call it on Linux only.`;
    throw new ProcessError(message, { code: 'ERR_MP_UNSUPPORTED_PLATFORM' });
  }
}

function assertPid(method: string, pid: unknown): asserts pid is number {
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0) {
    throw invalidArgument(`${method}: expected \`pid\` to be a positive integer, got ${describe(pid)}.`);
  }
}

/** All live descendants of `pid` (not `pid` itself), breadth-first; zombies are left out. */
export function descendants(pid: number): number[] {
  assertPid('descendants()', pid);
  assertLinux('descendants()');
  return walk(readTable(), [pid]).map((stat) => stat.pid);
}

function checkSignal(name: string, value: unknown): NodeJS.Signals | number {
  if (typeof value === 'string' && Object.hasOwn(constants.signals, value)) return value as NodeJS.Signals;
  // Linux numbers its signals 1..64 (SIGRTMAX); 0 only probes, it ends nothing.
  if (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 64) return value as number;
  throw invalidArgument(
    `killTree(): expected \`${name}\` to be a signal name from os.constants.signals (such as "SIGTERM") ` +
      `or a number from 1 to 64, got ${describe(value)}.`,
  );
}

const TIMEOUT_MESSAGE = 'killTree(): expected `timeout` to be a non-negative number of milliseconds, got ';

function normalizeOptions(options: unknown): Required<KillTreeOptions> {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw invalidArgument(`killTree(): expected \`options\` to be an object or undefined, got ${describe(options)}.`);
  }
  const { signal, timeout, then } = (options ?? {}) as Record<string, unknown>;
  if (timeout !== undefined && typeof timeout !== 'number') {
    throw invalidArgument(TIMEOUT_MESSAGE + describe(timeout) + '.');
  }
  // NaN and Infinity are numbers too, but no deadline can be computed from them.
  if (typeof timeout === 'number' && !(timeout >= 0 && Number.isFinite(timeout))) {
    throw outOfRange(TIMEOUT_MESSAGE + describe(timeout) + '.');
  }
  return {
    signal: signal === undefined ? DEFAULTS.signal : checkSignal('signal', signal),
    timeout: timeout ?? DEFAULTS.timeout,
    then: then === undefined ? DEFAULTS.then : then === null ? null : checkSignal('then', then),
  };
}

/** Refuses pid 1 and the caller's own ancestry: signalling them would take this process down too. */
function assertKillable(pid: number): void {
  const fix = 'Pass the pid of a process you started.';
  if (pid === 1) throw invalidArgument(`killTree(): refusing to kill pid 1 (init): its tree is the whole system. ${fix}`);
  for (let p = process.pid; p > 0; p = readStat(p)?.ppid ?? 0) {
    if (p !== pid) continue;
    throw invalidArgument(`killTree(): refusing to kill pid ${pid}: it is this process (pid ${process.pid}) or its ancestor. ${fix}`);
  }
}

/** Sends `signal` if `proc` is still the same live process; returns whether it was sent. */
function send(proc: Proc, signal: NodeJS.Signals | number): boolean {
  if (!isAlive(proc)) return false;
  try {
    process.kill(proc.pid, signal);
    return true;
  } catch (err) {
    // ESRCH: no process has this pid any more (it died after isAlive() looked), so the signal
    // reached nobody, and a dead process is what we want anyway.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code !== 'EPERM') throw err;
    const message =
      `killTree(): not permitted to signal pid ${proc.pid}, a member of the tree. ` +
      'Run as the user that owns it (or with CAP_KILL), or kill only processes this user started.';
    throw new ProcessError(message, { code: 'ERR_MP_KILL_TREE_PERMISSION', pid: proc.pid, cause: err });
  }
}

function resumeAll(procs: Proc[]): void {
  for (const proc of procs) {
    try {
      send(proc, 'SIGCONT');
    } catch {
      // Best effort, maybe while already failing: we could stop it, so we can normally continue it,
      // and the first error (the one that made us give up) is the one worth reporting.
    }
  }
}

/**
 * Stops `roots` and all their descendants with SIGSTOP, re-scanning until a scan finds nobody new,
 * so that no member can fork a child we would miss: a fork that races a pending SIGSTOP is restarted
 * by the kernel after the stop, so a stable scan of stopped processes is complete. Adds them to
 * `tree` and returns this round's processes, breadth-first; on failure continues them again.
 */
function freeze(roots: Proc[], tree: Map<string, Proc>): Proc[] {
  const round = [...roots];
  // Only pids we actually stopped are scanned for children: a pid that died may already be reused.
  const stopped: number[] = [];
  try {
    let fresh = roots;
    while (fresh.length > 0) {
      for (const proc of fresh) {
        tree.set(key(proc), proc);
        if (send(proc, 'SIGSTOP')) stopped.push(proc.pid);
      }
      fresh = walk(readTable(), stopped).filter((s) => !tree.has(key(s))).map(({ pid, start }) => ({ pid, start }));
      round.push(...fresh);
    }
  } catch (err) {
    resumeAll(round);
    throw err;
  }
  return round;
}

/** Freezes the tree of `roots`, sends `signal` to every member, then continues them so it is delivered. */
function signalTree(roots: Proc[], signal: NodeJS.Signals | number, tree: Map<string, Proc>): Proc[] {
  const round = freeze(roots, tree);
  try {
    for (const proc of round) send(proc, signal);
  } finally {
    resumeAll(round);
  }
  return round;
}

/** Polls until every process has ended or `ms` have passed; returns the survivors. */
async function waitGone(procs: Proc[], ms: number): Promise<Proc[]> {
  const deadline = monotonicMs() + ms;
  let alive = procs.filter(isAlive);
  while (alive.length > 0 && monotonicMs() < deadline) {
    // A ref'd timer on purpose: the pending wait must keep the process alive. (Not node:timers/promises: every child would load it.)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    alive = alive.filter(isAlive);
  }
  return alive;
}

/**
 * Ends `pid` and all its descendants: freezes the tree, sends `signal` to all, waits up to `timeout`
 * ms, then sends `then` to the survivors (and anything they forked) and waits up to 2 s more.
 * Resolves with the pids that ended, breadth-first from `pid` (the order they were signalled); a
 * process still alive at the end (e.g. one ignoring SIGTERM with `then: null`) is left out.
 * Resolves `[]` if `pid` does not exist. Processes whose parent died before they were seen
 * (re-parented to init) are no longer part of the tree and are not found.
 */
export async function killTree(pid: number, options?: KillTreeOptions): Promise<number[]> {
  assertPid('killTree()', pid);
  const opts = normalizeOptions(options);
  assertLinux('killTree()');
  assertKillable(pid);
  const rootStat = readStat(pid);
  if (!isLive(rootStat)) return [];
  const tree = new Map<string, Proc>();
  let survivors = await waitGone(signalTree([{ pid, start: rootStat.start }], opts.signal, tree), opts.timeout);
  if (survivors.length > 0 && opts.then !== null) {
    survivors = await waitGone(signalTree(survivors, opts.then, tree), ESCALATION_WAIT_MS);
  }
  const alive = new Set(survivors.map(key));
  return [...tree.values()].filter((proc) => !alive.has(key(proc))).map((proc) => proc.pid);
}
