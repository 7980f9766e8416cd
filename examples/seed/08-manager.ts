// 进程间通信 (communication between processes), 方案二 (option two; the seed numbers its Pipe section
// 方案二 too): a Manager.
//
// A Pipe or a Queue only carries data from one process to another; they do not share data, that
// is, one process cannot change the data of another. A Manager can: it runs a server process that
// owns the objects, and every process changes them through proxies. A Manager supports list,
// dict, Namespace, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Queue, Value and
// Array.
//
// Run it: node --import tsx examples/seed/08-manager.ts

import { Manager, Process, isMain } from 'multiproc';
import type { DictProxy, ListProxy } from 'multiproc/managers';

// Exported, so that each child can import this module and find it (functions cross by reference).
// Every proxy method is a request to the manager's server process, so each one is awaited.
export async function f(d: DictProxy<number | string, string | number>, l: ListProxy<number>, n: number): Promise<void> {
  await d.set(n, '1'); // d[n] = '1'      {0: '1'}
  await d.set('2', 2); // d['2'] = 2      {0: '1', '2': 2}: 0 and '2' stay different keys, as in Python
  await l.append(n); // l.append(n)       [0, 1, 2, 3, 4,   0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
}

/** Python's repr() of the values this program prints: {0: '1', '2': 2} and [0, 1, 2]. */
function repr(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value instanceof Map) return `{${[...value].map(([k, v]) => `${repr(k)}: ${repr(v)}`).join(', ')}}`;
  if (Array.isArray(value)) return `[${value.map(repr).join(', ')}]`;
  return String(value);
}

if (isMain(import.meta)) {
  // Python's `with Manager() as manager:` (the with statement closes it by itself): leaving this
  // block shuts the manager down.
  await using manager = await Manager();

  const d = await manager.dict<number | string, string | number>(); // a dict from the manager
  const l = await manager.list<number>([0, 1, 2, 3, 4]); // a list from the manager: list(range(5))

  const pList: Process[] = [];
  for (let i = 0; i < 10; i++) {
    const p = new Process({ target: f, args: [d, l, i] }); // pass the objects the manager made to the children as args
    p.start();
    pList.push(p);
  }

  for (const res of pList) {
    await res.join();
  }

  // print(d) and print(l): the proxies' copy() gives a plain Map and array to print.
  console.log(repr(await d.copy()));
  console.log(repr(await l.copy()));
}

// Note (注): communication between processes costs resources. The processes live in two separate
// memories, so in essence one process copies the data to the other, and that takes memory (and
// here, a round trip to the manager's process for each call).
