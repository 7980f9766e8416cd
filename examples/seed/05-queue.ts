// 进程间通信 (communication between processes), 方案一 (option one): a process Queue.
//
// Communication between processes is not like communication between threads. Threads share one
// memory, so simple communication between threads needs no more than a global variable or a
// synchronization object such as an Event; processes live in two separate memories. A Queue
// carries values from one to the other.
//
// Run it: node --import tsx examples/seed/05-queue.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Process, Queue, isMain } from 'multiproc';

// Python's id(q) prints where the object lives in this process's memory, and the child prints
// another number than the parent: each process has its own Queue object, attached to the same
// shared queue. JavaScript has no id(); this stand-in numbers objects per process and names the
// process, so the two lines differ for the same reason.
const ids = new WeakMap<object, number>();
let lastId = 0;
function id(object: object): string {
  if (!ids.has(object)) ids.set(object, ++lastId);
  return `${process.pid}#${ids.get(object)}`;
}

// Exported, so that the child can import this module and find it (functions cross by reference).
export async function foo(q: Queue): Promise<void> {
  await sleep(1000); // time.sleep(1)
  console.log('son process', id(q));
  await q.put(123); // put values in the queue, in the child process
  await q.put('chen');
}

if (isMain(import.meta)) {
  const q = new Queue(); // create a process queue
  const p = new Process({ target: foo, args: [q] }); // pass the queue to the child process, as the seed says: like a global variable shared by both
  p.start();

  console.log('main process', id(q));
  console.log(await q.get()); // take the data out in the main process
  console.log(await q.get());
  // As in the seed, no join(): a non-daemonic child keeps the program running until it exits.
}
