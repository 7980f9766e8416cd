// 进程同步 (process synchronization) with a lock. Processes share no data, but they do share
// system resources such as the terminal: when several processes print at once, their output can
// come out jumbled. A lock makes sure that only one process at a time uses the shared resource.
//
// Run it: node --import tsx examples/seed/04-lock.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Lock, Process, isMain } from 'multiproc';

// The seed sleeps 1 s while holding the lock, so its ten processes take ten seconds, one after the
// other. We hold it for 100 ms, to keep the demo short; the behaviour is the same.
const HOLD_MS = 100;

// Exported, so that each child can import this module and find it (functions cross by reference).
export async function f(lock: Lock, i: number): Promise<void> {
  await lock.acquire(); // request the lock
  // Not in the seed: a line before the sleep, so the output shows that no other process printed
  // while this one held the lock (each `begin i` is followed at once by its own `hello world  i`).
  console.log('begin', i);
  await sleep(HOLD_MS); // time.sleep(1)
  console.log('hello world ', i); // as Python's print('hello world ', i): "hello world  3"
  lock.release(); // release the lock
}

if (isMain(import.meta)) {
  const lock = new Lock(); // create the lock

  // As in the seed, the main process does not join: non-daemonic children keep the program
  // running until they have all finished, as in Python.
  for (let num = 0; num < 10; num++) {
    new Process({ target: f, args: [lock, num] }).start();
  }
}
