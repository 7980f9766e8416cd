// 进程池 (process pool). Many tasks are waiting to run: running all of them at once as processes
// costs too much, and running them one by one takes too long. A pool is the middle way: it keeps
// at most N worker processes, and as soon as one finishes a task, the next waiting task runs on
// it, until every task is done. Here, 100 tasks on a pool of 5 (Python: Pool(5), apply_async).
//
// Run it: node --import tsx examples/seed/07-pool.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Lock, Pool, RawValue, isMain } from 'multiproc';

// The seed sleeps 1 s in each task (5 tasks per second, 20 s in all). We sleep 50 ms, to keep the
// demo short; the behaviour is the same.
const WORK_MS = 50;

// Not in the seed: two counters in shared memory, so that the program can show at the end that
// no more than 5 tasks ever ran at once. Each worker gets them once, from the pool's initializer.
let running: RawValue<'i'>;
let peak: RawValue<'i'>;
let lock: Lock;

export function keepCount(runningNow: RawValue<'i'>, mostAtOnce: RawValue<'i'>, counterLock: Lock): void {
  running = runningNow;
  peak = mostAtOnce;
  lock = counterLock;
}

// Exported, so that each worker can import this module and find it (functions cross by reference).
export async function Foo(i: number): Promise<string> {
  await lock.acquire();
  running.value += 1;
  peak.value = Math.max(peak.value, running.value);
  lock.release();

  await sleep(WORK_MS); // time.sleep(1)
  console.log(i);

  await lock.acquire();
  running.value -= 1;
  lock.release();
  return `HELLO ${i}`; // "HELLO %s" % i
}

// The callback runs in the main process, with Foo's result, as each task finishes.
export function Bar(arg: string): void {
  console.log(arg);
  console.log('hello');
}

if (isMain(import.meta)) {
  const runningNow = new RawValue('i', 0);
  const mostAtOnce = new RawValue('i', 0);
  // Pool(5): at most 5 worker processes. Without a number, as many as the machine has CPUs.
  const pool = new Pool(5, { initializer: keepCount, initargs: [runningNow, mostAtOnce, new Lock()] });
  for (let i = 0; i < 100; i++) { // a hundred tasks
    // callback: the function to call with the result once the task has run successfully.
    pool.applyAsync(Foo, [i], { callback: Bar });
  }

  pool.close();
  await pool.join(); // close() first, then join(), always in this order
  console.log(`at most ${mostAtOnce.value} tasks ran at once`);
}
