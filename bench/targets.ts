// Functions the bench's child processes run. They cross processes by module URL and export name,
// so each is exported here; compiled with the rest of bench/ to plain JS for a --lib dist run.
// The library's objects (Connection, Queue, Value, Barrier) arrive in `args`, rebuilt in the child;
// only types are imported from src/ (this file must not import the library at run time).

import { performance } from 'node:perf_hooks';
import type { Barrier, Connection, Lock, Queue, RLock, SimpleQueue, Value } from '../src/index.ts';
import type { DictProxy, ListProxy } from '../src/managers/index.ts';

/** process_start's target, and pool_map's first task: Python's `noop(*_)`. */
export function noop(..._args: unknown[]): void {}

/** pool_map's task: Python's `square(x)`. */
export function square(x: number): number {
  return x * x;
}

/** pipe_rtt's child: Python's `echo(conn)`: recv -> send until the null sentinel. */
export async function echo(conn: Connection): Promise<void> {
  for (;;) {
    const obj = await conn.recv();
    if (obj === null) break;
    conn.send(obj);
  }
  conn.close();
}

type AnyQueue = Queue<unknown> | SimpleQueue<unknown>;

/** queue_throughput's producer: Python's `producer(q, n, msg)`: n puts, then one null sentinel. */
export async function producer(q: AnyQueue, n: number, msg: unknown, nowait = false): Promise<number> {
  if (nowait) {
    for (let i = 0; i < n; i++) q.putNowait(msg);
    q.putNowait(null);
  } else {
    for (let i = 0; i < n; i++) await q.put(msg);
    await q.put(null);
  }
  return n;
}

/** queue_throughput's consumer: Python's `consumer(q)`: gets until the null sentinel, returns the count. */
export async function consumer(q: AnyQueue): Promise<number> {
  let n = 0;
  while ((await q.get()) !== null) n++;
  return n;
}

/**
 * lock's worker: Python's `lock_incr(v, n)`: n increments of v under v.getLock(). `fast` tries the
 * lock synchronously first (`if (!lock.acquire(false)) await lock.acquire()`), which costs no
 * microtask when the lock is free; otherwise every increment awaits acquire().
 */
export async function lockIncr(v: Value<'i'>, n: number, fast = true): Promise<number> {
  const lock: Lock | RLock = v.getLock();
  if (fast) {
    for (let i = 0; i < n; i++) {
      if (!lock.acquire(false)) await lock.acquire();
      v.value += 1;
      lock.release();
    }
  } else {
    for (let i = 0; i < n; i++) {
      await lock.acquire();
      v.value += 1;
      lock.release();
    }
  }
  return n;
}

/**
 * manager_ops's child: Python's `manager_child(d, lst, n)`: n awaited `d.set('k<i>', i)`, n awaited
 * `d.get('k<i>')`, n awaited `lst.append(i)`; returns the seconds of each loop. Then (ours only) the
 * same n sets on `pipelined`, issued `batch` at a time without awaiting each (`Promise.all` per
 * batch): the 4th duration. A proxy connects at its first call (Python's at unpickling, before
 * the Barrier), so one untimed call comes first.
 */
export async function managerChild(d: DictProxy<string, number>, lst: ListProxy<number>, n: number, pipelined: DictProxy<string, number>, batch: number): Promise<number[]> {
  const keys = Array.from({ length: n }, (_, i) => `k${i}`);
  await lst.length();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await d.set(keys[i]!, i);
  const t1 = performance.now();
  for (let i = 0; i < n; i++) await d.get(keys[i]!);
  const t2 = performance.now();
  for (let i = 0; i < n; i++) await lst.append(i);
  const t3 = performance.now();
  for (let start = 0; start < n; start += batch) {
    const calls: Promise<void>[] = [];
    for (let i = start; i < Math.min(n, start + batch); i++) calls.push(pipelined.set(keys[i]!, i));
    await Promise.all(calls);
  }
  const t4 = performance.now();
  return [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map((ms) => ms / 1e3);
}

const JOBS = { producer, consumer, lockIncr, managerChild } as const;
export type JobName = keyof typeof JOBS;

/** CLOCK_MONOTONIC in ns as a number (exact below 2^53 ns, about 104 days of uptime): comparable across processes. */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

/**
 * bench_mp.py's `_timed(barrier, out, fn, args)`: waits at the Barrier, runs the job, and puts
 * [its index, its result, CLOCK_MONOTONIC ns at its end] on `out`. Functions cannot travel inside
 * args, so the job is named. (Python's run_group returns results in completion order; the index
 * puts them back in job order, since a consumer may finish before the last producer reports.)
 */
export async function timed(barrier: Barrier, out: SimpleQueue<[number, unknown, number]>, index: number, job: JobName, args: unknown[]): Promise<void> {
  await barrier.wait();
  const run = JOBS[job] as (...a: unknown[]) => Promise<unknown>;
  const result = await run(...args);
  await out.put([index, result, monotonicNs()]);
}
